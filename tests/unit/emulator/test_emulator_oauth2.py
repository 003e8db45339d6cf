"""The OAuth 2.0 token endpoint and DPoP ping, driven by mastercard-oauth2-client."""
import time
import uuid

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from mastercard_oauth2_client import (OAuth2Config, OAuth2Handler, OAuth2TokenEndpointError, StaticDPoPKeyProvider,
                                      StaticScopeResolver, build_token_request, create_resource_dpop_proof,
                                      generate_ec_key_pair, load_private_key)
from mastercard_oauth2_client.integrations.requests import OAuth2Session

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import make_csr, new_key


def config_for(emulator, client_id, kid, private_key, dpop_pair=None):
    return OAuth2Config(
        client_id=client_id, token_endpoint=emulator.info["token_url"], issuer=emulator.info["issuer"],
        client_key=private_key, key_id=kid, scope_resolver=StaticScopeResolver({"service:ping"}),
        dpop_key_provider=StaticDPoPKeyProvider(dpop_pair or generate_ec_key_pair()),
    )


def session_for(emulator, config):
    session = OAuth2Session(config)
    session.trust_env = False
    session.verify = emulator.info["ca_path"]
    return session


@pytest.fixture
def oauth2_project(make_devapi):
    return make_devapi("OAUTH10A", oauth2_enabled=True)


def test_token_and_ping_with_the_requests_integration(emulator, oauth2_project):
    key = new_key("EC", 256)
    _key, csr = make_csr("oauth2-key", key=key)
    credential = oauth2_project.create({"type": "SIGNING", "oauthVersion": "2.0", "environment": "SANDBOX",
                                        "alias": "ec-key", "csr": csr})
    assert credential["consumerKey"] is None and len(credential["kid"]) == 48
    before = emulator.admin("GET", "/counters").get("POST /oauth/token", 0)
    session = session_for(emulator, config_for(emulator, credential["clientId"], credential["kid"], key))
    response = session.get(emulator.info["oauth2_ping_url"], timeout=30)
    assert response.status_code == 200, response.text
    assert response.json()["kid"] == credential["kid"]
    assert response.json()["credentialId"] == credential["id"]
    # First token request had no nonce (400 use_dpop_nonce), the retry succeeded: two calls.
    assert emulator.admin("GET", "/counters")["POST /oauth/token"] - before == 2
    # The cached token is reused for the next resource call.
    assert session.get(emulator.info["oauth2_ping_url"], timeout=30).status_code == 200
    assert emulator.admin("GET", "/counters")["POST /oauth/token"] - before == 2


def test_rsa_key_with_handler_and_raw_token_response(emulator, oauth2_project):
    key, credential = oauth2_project.create_key("rsa-2", oauth_version="2.0")
    config = config_for(emulator, credential["clientId"], credential["kid"], key)
    dpop_key = config.dpop_key_provider.get_current_key()
    first = build_token_request(config, {"service:ping"}, dpop_key.key_id)
    answer = requests.post(first.url, data=first.body, headers=dict(first.headers), timeout=30,
                           verify=emulator.info["ca_path"])
    assert answer.status_code == 400 and answer.json()["error"] == "use_dpop_nonce"
    nonce = answer.headers["DPoP-Nonce"]
    retry = build_token_request(config, {"service:ping"}, dpop_key.key_id, nonce)
    token = requests.post(retry.url, data=retry.body, headers=dict(retry.headers), timeout=30,
                          verify=emulator.info["ca_path"])
    assert token.status_code == 200, token.text
    body = token.json()
    assert body["token_type"] == "DPoP" and body["expires_in"] == 900 and body["scope"] == "service:ping"
    assert token.headers["Cache-Control"] == "no-store"
    assert OAuth2Handler(config) is not None


def test_revoked_key_is_refused(emulator, oauth2_project):
    key, credential = oauth2_project.create_key("to-revoke", oauth_version="2.0")
    assert oauth2_project.call("DELETE", "/credentials/" + credential["id"]).status_code == 200
    session = session_for(emulator, config_for(emulator, credential["clientId"], credential["kid"], key))
    with pytest.raises(OAuth2TokenEndpointError) as raised:
        session.get(emulator.info["oauth2_ping_url"], timeout=30)
    assert raised.value.status == 400 and raised.value.error == "invalid_client"
    assert "REVOKED" in raised.value.error_description
    assert raised.value.correlation_id


def test_oauth1_key_works_only_after_the_project_upgrade(emulator, make_devapi):
    project = make_devapi("OAUTH10A")
    key, credential = project.create_key("legacy", oauth_version="1.0a")
    session = session_for(emulator, config_for(emulator, credential["clientId"], credential["kid"], key))
    with pytest.raises(OAuth2TokenEndpointError):
        session.get(emulator.info["oauth2_ping_url"], timeout=30)
    upgraded = project.call("POST", "/oauth2-upgrade", {})
    assert upgraded.status_code == 200 and upgraded.json()["oauth2Enabled"] is True
    session = session_for(emulator, config_for(emulator, credential["clientId"], credential["kid"], key))
    assert session.get(emulator.info["oauth2_ping_url"], timeout=30).status_code == 200


def test_wrong_key_for_kid_is_invalid_client(emulator, oauth2_project):
    _key, credential = oauth2_project.create_key("right", oauth_version="2.0")
    session = session_for(emulator, config_for(emulator, credential["clientId"], credential["kid"], new_key()))
    with pytest.raises(OAuth2TokenEndpointError) as raised:
        session.get(emulator.info["oauth2_ping_url"], timeout=30)
    assert raised.value.error == "invalid_client" and "verified" in raised.value.error_description


def test_wrong_audience_is_invalid_client(emulator, oauth2_project):
    key, credential = oauth2_project.create_key("aud", oauth_version="2.0")
    config = config_for(emulator, credential["clientId"], credential["kid"], key)
    dpop_key = config.dpop_key_provider.get_current_key()
    now = int(time.time())
    request = build_token_request(config, set(), dpop_key.key_id)
    nonce = requests.post(request.url, data=request.body, headers=dict(request.headers), timeout=30,
                          verify=emulator.info["ca_path"]).headers["DPoP-Nonce"]
    request = build_token_request(config, set(), dpop_key.key_id, nonce)
    assertion = jwt.encode({"iss": credential["clientId"], "sub": credential["clientId"],
                            "aud": "https://elsewhere.example", "jti": uuid.uuid4().hex, "iat": now, "exp": now + 60},
                           key, algorithm="PS256", headers={"kid": credential["kid"]})
    body = request.body.split("&client_assertion=")[0] + "&client_assertion=" + assertion
    answer = requests.post(request.url, data=body, headers=dict(request.headers), timeout=30,
                           verify=emulator.info["ca_path"])
    assert answer.status_code == 400 and answer.json()["error"] == "invalid_client"


def test_token_expires_with_the_emulated_clock(emulator, oauth2_project, clock):
    key, credential = oauth2_project.create_key("expiring", oauth_version="2.0")
    session = session_for(emulator, config_for(emulator, credential["clientId"], credential["kid"], key))
    assert session.get(emulator.info["oauth2_ping_url"], timeout=30).status_code == 200
    clock(901)
    response = session.get(emulator.info["oauth2_ping_url"], timeout=30)
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_token_issued_after_time_travel_forward_is_accepted(emulator, oauth2_project, clock):
    """A token minted on a clock moved forward carries an iat in the real future; the resource
    probe judges it on the emulated clock, as it judges expiry."""
    clock(3 * 86400)
    key, credential = oauth2_project.create_key("forward", oauth_version="2.0")
    session = session_for(emulator, config_for(emulator, credential["clientId"], credential["kid"], key))
    response = session.get(emulator.info["oauth2_ping_url"], timeout=30)
    assert response.status_code == 200, response.text


def fetch_token(emulator, config):
    """Run the token exchange by hand (nonce dance included); return (access token, nonce)."""
    dpop_key_id = config.dpop_key_provider.get_current_key().key_id
    nonce = None
    for _attempt in range(2):
        request = build_token_request(config, {"service:ping"}, dpop_key_id, nonce)
        answer = requests.post(request.url, data=request.body, headers=dict(request.headers), timeout=30,
                               verify=emulator.info["ca_path"])
        nonce = answer.headers.get("DPoP-Nonce", nonce)
        if answer.status_code == 200:
            return answer.json()["access_token"], nonce
    raise AssertionError(answer.text)


def test_ping_needs_the_dpop_key_the_token_is_bound_to(emulator, oauth2_project):
    key, credential = oauth2_project.create_key("bound", oauth_version="2.0")
    config = config_for(emulator, credential["clientId"], credential["kid"], key)
    token, nonce = fetch_token(emulator, config)
    url = emulator.info["oauth2_ping_url"]

    def ping(proof_config, scheme="DPoP", access_token=token):
        proof = create_resource_dpop_proof(proof_config, proof_config.dpop_key_provider.get_current_key().key_id,
                                           "GET", url, access_token, nonce)
        return requests.get(url, timeout=30, verify=emulator.info["ca_path"],
                            headers={"Authorization": "%s %s" % (scheme, token), "DPoP": proof})

    assert ping(config).status_code == 200
    thief = config_for(emulator, credential["clientId"], credential["kid"], key)
    assert ping(thief).status_code == 401
    assert ping(config, scheme="Bearer").status_code == 401
    # ath must hash the presented token.
    assert ping(config, access_token=token + "x").status_code == 401


def test_pkcs8_pem_from_seeded_credential_loads(emulator, oauth2_project):
    seeded = oauth2_project.seed(type="SIGNING", oauthVersion="2.0", environment="SANDBOX", alias="seeded")
    key = load_private_key(seeded["private_key_pem"].encode("ascii"))
    assert isinstance(key, type(serialization.load_pem_private_key(seeded["private_key_pem"].encode(), None)))
    session = session_for(emulator, config_for(emulator, seeded["clientId"], seeded["kid"], key))
    assert session.get(emulator.info["oauth2_ping_url"], timeout=30).status_code == 200
