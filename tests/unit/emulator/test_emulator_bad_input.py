"""Bad input gets Mastercard's envelope with a 4xx and a Correlation-Id, never a 500."""
import json

import pytest
import requests

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import make_csr, reason

_key, VALID_CSR = make_csr("bad-input")

BODIES = [
    "{not json",
    "[]",
    "null",
    "42",
    '"text"',
    "{}",
    json.dumps({"type": 7}),
    json.dumps({"type": "SIGNING"}),
    json.dumps({"type": "SIGNING", "environment": "MOON", "alias": "a", "csr": VALID_CSR}),
    json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": ["a"], "csr": VALID_CSR}),
    json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": "a" * 65, "csr": VALID_CSR}),
    json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": "a", "csr": 12}),
    json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": "a", "csr": {"pem": 1}}),
    json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": "a", "oauthVersion": 3, "csr": VALID_CSR}),
    json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": "a", "csr": VALID_CSR, "certificate": "x"}),
    json.dumps({"type": "CLIENT_ENCRYPTION", "environment": "SANDBOX", "alias": "a", "csr": VALID_CSR}),
    json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": "a", "csr": "\u00e9\u00e9"}),
    "\xff\xfe garbage",
]


def assert_envelope(response):
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    error = response.json()["Errors"]["Error"][0]
    assert error["ReasonCode"] and error["Description"] and error["Source"]
    assert response.headers["Correlation-Id"]


@pytest.mark.parametrize("body", BODIES)
def test_bad_create_bodies(devapi, body):
    assert_envelope(devapi.call("POST", "/credentials", body))


@pytest.mark.parametrize("method, path, body", [
    ("PATCH", "/credentials/%s", "{oops"),
    ("PATCH", "/credentials/%s", "[1]"),
    ("PATCH", "/credentials/%s", ""),
    ("POST", "/credentials/%s/renewal", "{oops"),
    ("GET", "/credentials?limit=abc", None),
    ("GET", "/credentials?limit=0", None),
    ("GET", "/credentials?offset=-1", None),
    ("GET", "/credentials?environment=MOON", None),
    ("GET", "/credentials?type=KEY", None),
    ("PUT", "/credentials/%s", "{}"),
    ("GET", "/nothing-here", None),
    ("POST", "/oauth2-upgrade", "{oops"),
])
def test_bad_requests_on_other_routes(devapi, method, path, body):
    _key, credential = devapi.create_key("target")
    if "%s" in path:
        path = path % credential["id"]
    assert_envelope(devapi.call(method, path, body))


def test_oversize_body_is_413(devapi):
    body = json.dumps({"type": "SIGNING", "environment": "SANDBOX", "alias": "big", "csr": "A" * (1024 * 1024)})
    response = devapi.call("POST", "/credentials", body)
    assert reason(response) == (413, "DEVELOPERS_API", "REQUEST_ENTITY_TOO_LARGE")


def test_unknown_route_outside_the_api_is_404_envelope(emulator):
    response = requests.get(emulator.info["issuer"] + "/nowhere", verify=emulator.info["ca_path"], timeout=30)
    assert reason(response) == (404, "DEVELOPERS_API", "NOT_FOUND")


def test_token_endpoint_bad_input_is_an_oauth_error(emulator):
    for body, content_type in (("grant_type=password", "application/x-www-form-urlencoded"),
                               ("{}", "application/json"),
                               ("grant_type=client_credentials&client_assertion_type=x", None),
                               ("grant_type=client_credentials&client_assertion_type="
                                "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer&client_assertion=a.b.c",
                                "application/x-www-form-urlencoded")):
        headers = {"Content-Type": content_type} if content_type else {}
        headers["DPoP"] = "not-a-jwt"
        response = requests.post(emulator.info["token_url"], data=body, headers=headers, timeout=30,
                                 verify=emulator.info["ca_path"])
        assert response.status_code == 400, response.text
        assert response.json()["error"] in ("invalid_request", "unsupported_grant_type", "invalid_client",
                                            "invalid_dpop_proof")


def test_admin_needs_the_token(emulator):
    response = requests.get(emulator.info["admin_url"] + "/counters", verify=emulator.info["ca_path"], timeout=30)
    assert reason(response) == (401, "DEVELOPERS_API", "UNAUTHORIZED")
    response = requests.get(emulator.info["admin_url"] + "/counters", verify=emulator.info["ca_path"], timeout=30,
                            headers={"X-Admin-Token": "wrong"})
    assert response.status_code == 401


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/clock", {"offset_seconds": "soon"}),
    ("POST", "/faults", {"route": "*", "error_rate": 2}),
    ("POST", "/faults", {"route": "*", "status": 200}),
    ("POST", "/rules", {"no_such_rule": 1}),
    ("POST", "/projects", {"authModel": "KERBEROS"}),
    ("POST", "/projects/nope/credentials", {}),
    ("POST", "/reset", {"scope": "everything"}),
    ("POST", "/clock", {"offset_seconds": 1e300}),
    ("POST", "/faults", {"route": "*", "latency_ms": 10 ** 9}),
    ("POST", "/rules", {"validity_days": "long"}),
    ("POST", "/rules", {"mtls_cn_patterns": {"SANDBOX": "(unclosed"}}),
    ("POST", "/rules", {"timestamp_clock": "sundial"}),
    ("POST", "/rules", {"oauth2_issuer": "http://auth.example"}),
    ("POST", "/rules", {"oauth2_issuer": 7}),
    ("POST", "/accounts", {"name": ["list"]}),
    ("POST", "/accounts", {"p12_password": 5}),
    ("POST", "/projects", {"name": {"n": 1}}),
    ("POST", "/accounts", [1, 2]),
])
def test_admin_bad_input(emulator, method, path, body):
    assert_envelope(emulator.admin_response(method, path, body))


@pytest.mark.parametrize("body", [
    {"key_size": "big"},
    {"key_size": 12345},
    {"common_name": "x" * 100},
    {"alias": ["a"]},
    {"notBefore": "yesterday"},
    {"notBefore": 1e300},
    {"expiryDate": "2000-01-01T00:00:00Z"},
    {"csr": 5},
    {"csr": "garbage"},
    {"status": "EXPIRED"},
    {"type": "CLIENT_ENCRYPTION"},
    {"oauthVersion": "3.0"},
    {"key_type": "DSA"},
])
def test_admin_seed_bad_input(emulator, devapi, body):
    assert_envelope(emulator.admin_response("POST", "/projects/%s/credentials" % devapi.project["id"], body))
