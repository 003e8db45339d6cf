"""The gateway's OAuth 1.0a check against requests signed by mastercard-oauth1-signer."""
import base64
import hashlib
import re
import time

import pytest
from oauth1 import authenticationutils
from oauth1.oauth import OAuth, SignatureMethod
from oauth1.oauth_ext import OAuth1RSA

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import reason

EMPTY_BODY_HASH = "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU="


def header_params(header):
    return dict(re.findall(r'(\w+)="([^"]*)"', header))


def build_header(params):
    return "OAuth " + ",".join('%s="%s"' % item for item in params.items())


def test_requests_auth_helper_is_accepted(devapi):
    response = devapi.session.get(devapi.base, auth=OAuth1RSA(devapi.consumer_key, devapi.signing_key), timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["id"] == devapi.project["id"]
    assert response.headers["Correlation-Id"]


def test_signed_post_with_body_and_query_is_accepted(devapi):
    devapi.create_key("first")
    response = devapi.signed("GET", devapi.base + "/credentials?environment=SANDBOX&type=SIGNING&limit=5")
    assert response.status_code == 200, response.text
    assert response.json()["total"] == 1


def test_rsa_pss_signatures_are_accepted(devapi):
    auth = OAuth1RSA(devapi.consumer_key, devapi.signing_key, signature_method=SignatureMethod.RSA_PSS_SHA256)
    response = devapi.session.get(devapi.base, auth=auth, timeout=30)
    assert response.status_code == 200, response.text


def test_pkcs12_signing_key_loads_with_mastercard_helper(devapi, tmp_path):
    p12 = tmp_path / "key.p12"
    p12.write_bytes(base64.b64decode(devapi.account["signing_key_p12_b64"]))
    key = authenticationutils.load_signing_key(str(p12), devapi.account["p12_password"])
    response = devapi.signed("GET", devapi.base, signing_key=key)
    assert response.status_code == 200, response.text


def _prepared(devapi, body='{"type":"SIGNING"}', url=None):
    url = url or devapi.base + "/credentials"
    header = OAuth.get_authorization_header(url, "POST", body, devapi.consumer_key, devapi.signing_key)
    return url, body, header


def _send(devapi, url, body, header, method="POST"):
    return devapi.session.request(method, url, data=body.encode("utf-8"), timeout=30,
                                  headers={"Authorization": header, "Content-Type": "application/json"})


def test_untampered_request_reaches_the_api(devapi):
    url, body, header = _prepared(devapi)
    # Past the gateway: the API itself complains about the body (no environment), not the signature.
    assert reason(_send(devapi, url, body, header)) == (400, "DEVELOPERS_API", "BAD_REQUEST")


def test_one_changed_body_byte_is_an_invalid_body_hash(devapi):
    url, body, header = _prepared(devapi)
    response = _send(devapi, url, body.replace("SIGNING", "SIGNINH"), header)
    assert reason(response) == (400, "Gateway", "INVALID_BODY_HASH")
    description = response.json()["Errors"]["Error"][0]["Description"]
    assert "Calculated: " in description and header_params(header)["oauth_body_hash"] in description


def test_one_changed_url_byte_fails_authentication_and_echoes_the_base_string(devapi):
    url, body, header = _prepared(devapi)
    tampered = url.replace("/credentials", "/credentialz")
    response = _send(devapi, tampered, body, header)
    assert reason(response) == (403, "Gateway", "AUTHENTICATION_FAILED")
    params = header_params(header)
    params.pop("oauth_signature")
    expected = OAuth.get_base_string(tampered, "POST", params)
    error = response.json()["Errors"]["Error"][0]
    assert error["Description"].endswith("Acceptable signature base string: " + expected)


def test_changed_query_fails_authentication(devapi):
    url = devapi.base + "/credentials?limit=5"
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    ok = devapi.session.get(url, headers={"Authorization": header}, timeout=30)
    assert ok.status_code == 200, ok.text
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    response = devapi.session.get(url.replace("limit=5", "limit=6"), headers={"Authorization": header}, timeout=30)
    assert reason(response) == (403, "Gateway", "AUTHENTICATION_FAILED")


@pytest.mark.parametrize("name", ["oauth_nonce", "oauth_signature"])
def test_one_changed_header_param_byte_fails_authentication(devapi, name):
    url, body, header = _prepared(devapi)
    params = header_params(header)
    value = params[name]
    params[name] = value[:5] + ("A" if value[5] != "A" else "B") + value[6:]
    assert reason(_send(devapi, url, body, build_header(params))) == (403, "Gateway", "AUTHENTICATION_FAILED")


def test_one_changed_timestamp_digit_fails_authentication(devapi):
    url, body, header = _prepared(devapi)
    params = header_params(header)
    params["oauth_timestamp"] = str(int(params["oauth_timestamp"]) - 1)
    assert reason(_send(devapi, url, body, build_header(params))) == (403, "Gateway", "AUTHENTICATION_FAILED")


def test_stale_timestamp_is_401(devapi, monkeypatch):
    monkeypatch.setattr("oauth1.coreutils.get_timestamp", lambda: int(time.time()) - 3600)
    url, body, header = _prepared(devapi)
    assert reason(_send(devapi, url, body, header)) == (401, "Gateway", "INVALID_TIMESTAMP")


def test_skew_window_is_configurable(devapi, rules, monkeypatch):
    rules(timestamp_skew_seconds=7200)
    monkeypatch.setattr("oauth1.coreutils.get_timestamp", lambda: int(time.time()) - 3600)
    url, body, header = _prepared(devapi)
    assert reason(_send(devapi, url, body, header)) == (400, "DEVELOPERS_API", "BAD_REQUEST")


def test_changed_consumer_key_is_unknown(devapi):
    url, body, header = _prepared(devapi)
    params = header_params(header)
    params["oauth_consumer_key"] = params["oauth_consumer_key"][:-1] + "0"
    if params["oauth_consumer_key"] == devapi.consumer_key:
        params["oauth_consumer_key"] = params["oauth_consumer_key"][:-1] + "1"
    assert reason(_send(devapi, url, body, build_header(params))) == (401, "Gateway", "INVALID_CONSUMER_KEY")


def test_replayed_nonce_is_refused(devapi):
    url = devapi.base
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    first = devapi.session.get(url, headers={"Authorization": header}, timeout=30)
    assert first.status_code == 200, first.text
    again = devapi.session.get(url, headers={"Authorization": header}, timeout=30)
    assert reason(again) == (401, "Gateway", "NONCE_ALREADY_USED")


@pytest.mark.parametrize("header", [
    None,
    "Bearer abc",
    'OAuth oauth_consumer_key="x"',
    'OAuth garbage',
    'OAuth oauth_consumer_key="a",oauth_consumer_key="b"',
])
def test_malformed_authorization_is_invalid_auth_header(devapi, header):
    headers = {"Authorization": header} if header else {}
    response = devapi.session.get(devapi.base, headers=headers, timeout=30)
    assert reason(response) == (400, "Gateway", "INVALID_AUTH_HEADER")


def test_unsupported_signature_method_is_invalid_auth_header(devapi):
    header = OAuth.get_authorization_header(devapi.base, "GET", None, devapi.consumer_key, devapi.signing_key)
    params = header_params(header)
    params["oauth_signature_method"] = "HMAC-SHA1"
    response = devapi.session.get(devapi.base, headers={"Authorization": build_header(params)}, timeout=30)
    assert reason(response) == (400, "Gateway", "INVALID_AUTH_HEADER")


def test_signer_sends_the_reference_header_shape(devapi):
    """The verifier's premise (reference section 7): '!' and the body hash travel unencoded."""
    header = OAuth.get_authorization_header(devapi.base, "GET", None, devapi.consumer_key, devapi.signing_key)
    params = header_params(header)
    assert "!" in params["oauth_consumer_key"]
    assert params["oauth_body_hash"] == EMPTY_BODY_HASH
    assert EMPTY_BODY_HASH == base64.b64encode(hashlib.sha256(b"").digest()).decode("ascii")


def test_strictly_percent_encoded_header_is_also_accepted(devapi):
    """An RFC 5849 signer encodes '!' as %21 and signs the encoded form; the verifier takes values as sent."""
    url = devapi.base
    params = {
        "oauth_consumer_key": devapi.consumer_key.replace("!", "%21"),
        "oauth_nonce": "n%dx" % time.time_ns(),
        "oauth_timestamp": str(int(time.time())),
        "oauth_signature_method": "RSA-SHA256",
        "oauth_version": "1.0",
        "oauth_body_hash": EMPTY_BODY_HASH.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D"),
    }
    base_string = OAuth.get_base_string(url, "GET", params)
    signature = OAuth.sign_message(base_string, devapi.signing_key)
    params["oauth_signature"] = signature.replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    response = devapi.session.get(url, headers={"Authorization": build_header(params)}, timeout=30)
    assert response.status_code == 200, response.text


# The gateway signs the request target as sent (reference section 13, oauth1-signer-java issue 18):
# nothing in the path or the query is decoded or re-encoded before the base string is built.

@pytest.mark.parametrize("credential_id", ["foo%40bar", "a%2Fb", "x%20y%3Az", "%E2%82%AC"])
def test_percent_escaped_ids_are_signed_as_sent(devapi, credential_id):
    url = devapi.base + "/credentials/" + credential_id
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    response = devapi.session.get(url, headers={"Authorization": header}, timeout=30)
    # Past the gateway (the signature held): the API knows no such id, or (for a/b) no such route.
    assert reason(response)[:2] == (404, "DEVELOPERS_API"), response.text


def test_the_echoed_base_string_holds_the_escape_encoded_once_more(devapi):
    """The gateway's echo for /api/foo%40bar holds foo%2540bar: the % of the escape is encoded, the escape kept."""
    url = devapi.base + "/credentials/foo%40bar"
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    params = header_params(header)
    params["oauth_nonce"] += "x"
    response = devapi.session.get(url, headers={"Authorization": build_header(params)}, timeout=30)
    assert reason(response) == (403, "Gateway", "AUTHENTICATION_FAILED")
    description = response.json()["Errors"]["Error"][0]["Description"]
    assert "%2Fcredentials%2Ffoo%2540bar&" in description
    assert "foo%2540bar" in description and "foo%40bar&" not in description


@pytest.mark.parametrize("query", ["alias=token1:token2", "alias=a%40b%20c", "alias=x,y;z", "alias=", "alias",
                                   "alias=%E2%82%AC&limit=5"])
def test_queries_consistently_encoded_are_signed_as_sent(devapi, query):
    url = devapi.base + "/credentials?" + query
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    response = devapi.session.get(url, headers={"Authorization": header}, timeout=30)
    assert response.status_code == 200, response.text


def test_a_raw_colon_is_expected_encoded_once_in_the_base_string(devapi):
    """Per the gateway's echo, ?param=token1:token2 appears as token1%3Atoken2 (as sent, encoded once)."""
    url = devapi.base + "/credentials?alias=token1:token2"
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    params = header_params(header)
    params["oauth_timestamp"] = str(int(params["oauth_timestamp"]) - 1)
    response = devapi.session.get(url, headers={"Authorization": build_header(params)}, timeout=30)
    description = response.json()["Errors"]["Error"][0]["Description"]
    assert "alias%3Dtoken1%253Atoken2" not in description
    assert "alias%3Dtoken1%3Atoken2" in description


def test_a_query_mixing_escapes_and_raw_reserved_characters_is_refused(devapi):
    """The signer re-encodes such a query (reference section 7), so what it signs is not what it sends."""
    url = devapi.base + "/credentials?alias=x%20y&environment=c:d"
    header = OAuth.get_authorization_header(url, "GET", None, devapi.consumer_key, devapi.signing_key)
    response = devapi.session.get(url, headers={"Authorization": header}, timeout=30)
    assert reason(response) == (403, "Gateway", "AUTHENTICATION_FAILED")
