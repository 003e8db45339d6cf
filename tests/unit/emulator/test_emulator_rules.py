"""The portal's rules, one by one, through the signed Developers API."""
import base64
import datetime
import hashlib
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import (DevApi, external_ca, issue_with, make_csr,
                                                                               new_key, pem_of, reason,
                                                                               self_signed_ca)


def parse_date(text):
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


# --- record shape ------------------------------------------------------------

def test_signing_credential_record_matches_the_contract(emulator, devapi):
    key, credential = devapi.create_key("shape")
    client_id, key_id = credential["consumerKey"].split("!")
    assert len(client_id) == 48 and client_id == credential["clientId"] == devapi.project["clientId"]
    assert re.fullmatch(r"[0-9a-f]{48}", key_id) and key_id == credential["kid"]
    certificate = x509.load_pem_x509_certificate(credential["certificate"].encode("ascii"))
    assert credential["fingerprint"] == hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    assert credential["publicKeyFingerprint"] == hashlib.sha256(spki).hexdigest()
    assert credential["serialNumber"] == "%x" % certificate.serial_number
    assert credential["subjectDn"] == "CN=shape"
    assert credential["status"] == "ACTIVE" and credential["oauthVersion"] == "1.0a"
    with open(emulator.info["ca_path"], "rb") as handle:
        certificate.verify_directly_issued_by(x509.load_pem_x509_certificate(handle.read()))


def test_validity_defaults_to_395_days_and_is_configurable(devapi, rules):
    _key, credential = devapi.create_key("validity")
    lifetime = parse_date(credential["expiryDate"]) - parse_date(credential["createdDate"])
    assert abs(lifetime - datetime.timedelta(days=395)) < datetime.timedelta(minutes=2)
    rules(validity_days=30)
    _key, short = devapi.create_key("short")
    lifetime = parse_date(short["expiryDate"]) - parse_date(short["createdDate"])
    assert abs(lifetime - datetime.timedelta(days=30)) < datetime.timedelta(minutes=2)


def test_certificate_endpoint_returns_the_chain(emulator, devapi):
    _key, credential = devapi.create_key("chain")
    answer = devapi.call("GET", "/credentials/%s/certificate" % credential["id"]).json()
    assert answer["certificate"] == credential["certificate"]
    with open(emulator.info["ca_path"], encoding="ascii") as handle:
        assert answer["chain"] == [handle.read()]


def test_list_filters_and_pages(devapi):
    for index in range(3):
        devapi.create_key("page-%d" % index)
    devapi.create_key("prod", environment="PRODUCTION")
    page = devapi.call("GET", "/credentials?environment=SANDBOX&offset=1&limit=1").json()
    assert page["total"] == 3 and page["offset"] == 1 and page["limit"] == 1
    assert [item["alias"] for item in page["items"]] == ["page-1"]
    assert devapi.call("GET", "/credentials?type=MTLS").json()["total"] == 0


# --- OAuth 2.0 key limit --------------------------------------------------------------

def test_at_most_three_active_oauth2_keys(make_devapi, rules):
    project = make_devapi("OAUTH10A", oauth2_enabled=True)
    created = [project.create_key("k%d" % index, oauth_version="2.0")[1] for index in range(3)]
    _key, csr = make_csr("k3")
    body = {"type": "SIGNING", "oauthVersion": "2.0", "environment": "SANDBOX", "alias": "k3", "csr": csr}
    assert reason(project.call("POST", "/credentials", body)) == (409, "DEVELOPERS_API", "MAX_OAUTH2_KEYS_EXCEEDED")
    # OAuth 1.0a keys do not count.
    project.create_key("legacy", oauth_version="1.0a")
    assert project.call("DELETE", "/credentials/" + created[0]["id"]).status_code == 200
    assert project.call("POST", "/credentials", body).status_code == 201
    rules(max_active_oauth2_keys=5)
    project.create_key("k4", oauth_version="2.0")


def test_activating_a_fourth_oauth2_key_is_refused(make_devapi):
    project = make_devapi("OAUTH10A", oauth2_enabled=True)
    inactive = project.seed(type="SIGNING", oauthVersion="2.0", environment="SANDBOX", status="INACTIVE")
    for index in range(3):
        project.create_key("a%d" % index, oauth_version="2.0")
    response = project.call("PATCH", "/credentials/" + inactive["id"], {"status": "ACTIVE"})
    assert reason(response) == (409, "DEVELOPERS_API", "MAX_OAUTH2_KEYS_EXCEEDED")


# --- CSR rules ---------------------------------------------------------------

@pytest.mark.parametrize("version, key_type, size, message", [
    ("1.0a", "EC", 256, "RSA"),
    ("1.0a", "RSA", 1024, "2048"),
    ("2.0", "EC", 384, "secp256r1"),
])
def test_key_rules_per_version(make_devapi, version, key_type, size, message):
    project = make_devapi("OAUTH10A", oauth2_enabled=True)
    _key, csr = make_csr("keyrule", key=new_key(key_type, size))
    response = project.call("POST", "/credentials", {"type": "SIGNING", "oauthVersion": version,
                                                     "environment": "SANDBOX", "alias": "r", "csr": csr})
    assert reason(response) == (400, "DEVELOPERS_PLATFORM", "INVALID_CSR")
    assert message in response.json()["Errors"]["Error"][0]["Description"]


def test_ec_p256_is_accepted_for_oauth2(make_devapi):
    project = make_devapi("OAUTH10A", oauth2_enabled=True)
    _key, credential = project.create_key("ec", oauth_version="2.0", key=new_key("EC", 256))
    assert credential["consumerKey"] is None and credential["kid"]


@pytest.mark.parametrize("csr_text", ["", "   ", "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n",
                                      "not a csr", None])
def test_blank_or_garbage_csr_is_invalid(devapi, csr_text):
    body = {"type": "SIGNING", "environment": "SANDBOX", "alias": "bad"}
    if csr_text is not None:
        body["csr"] = csr_text
    assert reason(devapi.call("POST", "/credentials", body)) == (400, "DEVELOPERS_PLATFORM", "INVALID_CSR")


def test_csr_without_cn_or_with_long_cn_is_invalid(devapi):
    for common_name in (None, "x" * 65, "https://example.com"):
        _key, csr = make_csr(common_name)
        response = devapi.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX",
                                                        "alias": "cn", "csr": csr})
        assert reason(response) == (400, "DEVELOPERS_PLATFORM", "INVALID_CSR"), common_name


def test_csr_with_broken_signature_is_invalid(devapi):
    _key, csr = make_csr("sig")
    der = bytearray(x509.load_pem_x509_csr(csr.encode("ascii")).public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # a bit inside the signature
    pem = "-----BEGIN CERTIFICATE REQUEST-----\n%s\n-----END CERTIFICATE REQUEST-----\n" % (
        base64.encodebytes(bytes(der)).decode("ascii").strip())
    response = devapi.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX", "alias": "s",
                                                    "csr": pem})
    assert reason(response) == (400, "DEVELOPERS_PLATFORM", "INVALID_CSR")
    assert "signature" in response.json()["Errors"]["Error"][0]["Description"]


def test_mtls_sandbox_cn_pattern(make_devapi, rules):
    project = make_devapi("MTLS")
    for common_name in ("myapp", "1700000000-Client-PRD-000000", "1700000000-Server-MTF-000000"):
        _key, csr = make_csr(common_name)
        response = project.call("POST", "/credentials", {"type": "MTLS", "environment": "SANDBOX", "alias": "p",
                                                         "csr": csr})
        assert reason(response) == (400, "DEVELOPERS_PLATFORM", "INVALID_CSR"), common_name
    project.create_mtls("ok", common_name="1700000000-Client-MTF-000000")
    project.create_mtls("cid", common_name="1700000001-Client-MTF-123456")
    # Production has no pattern by default (its rules are not public).
    project.create_mtls("prod", common_name="myapp", environment="PRODUCTION")
    rules(mtls_cn_patterns={"SANDBOX": None})
    project.create_mtls("free", common_name="anything-goes")


# --- DN uniqueness, uploads ------------------------------------------------------------

def test_renewed_certificate_dn_must_differ_from_an_active_one(make_devapi, rules):
    project = make_devapi("MTLS")
    _key, first = project.create_mtls("old", common_name="1700000000-Client-MTF-000000")
    _key, csr = make_csr("1700000000-Client-MTF-000000")
    body = {"type": "MTLS", "environment": "SANDBOX", "alias": "new", "csr": csr}
    assert reason(project.call("POST", "/credentials", body)) == (409, "DEVELOPERS_API", "DUPLICATE_CERTIFICATE")
    project.create_mtls("renamed", common_name="1700003600-Client-MTF-000000")
    rules(unique_mtls_dn=False)
    assert project.call("POST", "/credentials", dict(body, alias="dup-allowed")).status_code == 201
    rules(unique_mtls_dn=True)
    project.call("DELETE", "/credentials/" + first["id"])
    # Still one active certificate with that DN (the one just allowed).
    assert reason(project.call("POST", "/credentials", dict(body, alias="again"))) == (
        409, "DEVELOPERS_API", "DUPLICATE_CERTIFICATE")


def test_upload_rules(emulator, make_devapi, clock):
    project = make_devapi("MTLS")
    ca_key, ca_cert = external_ca(emulator)
    _key, trusted = issue_with(ca_cert, ca_key, "upload-Client-MTF-000000")
    foreign_key, foreign_ca = self_signed_ca()
    _key, untrusted = issue_with(foreign_ca, foreign_key, "foreign-Client-MTF-000000")
    _key, expired = issue_with(ca_cert, ca_key, "expired-Client-MTF-000000", days=-1, start_days=-10)

    def upload(certificate, alias):
        return project.call("POST", "/credentials", {"type": "MTLS", "environment": "SANDBOX", "alias": alias,
                                                     "certificate": pem_of(certificate)})

    assert reason(upload(untrusted, "u")) == (400, "DEVELOPERS_API", "UNTRUSTED_CERTIFICATE")
    assert reason(upload(expired, "e")) == (400, "DEVELOPERS_API", "EXPIRED_CERTIFICATE")
    clock(60 * 86400)
    assert reason(upload(trusted, "t")) == (400, "DEVELOPERS_API", "EXPIRED_CERTIFICATE")
    clock(0)
    uploaded = upload(trusted, "t")
    assert uploaded.status_code == 201 and uploaded.json()["certificate"] == pem_of(trusted)
    chain = project.call("GET", "/credentials/%s/certificate" % uploaded.json()["id"]).json()["chain"]
    assert chain == [pem_of(ca_cert)]


def test_certificate_upload_for_a_signing_key_is_an_invalid_key_type(emulator, devapi):
    ca_key, ca_cert = external_ca(emulator)
    _key, certificate = issue_with(ca_cert, ca_key, "upload")
    response = devapi.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX", "alias": "x",
                                                    "certificate": pem_of(certificate)})
    assert reason(response) == (400, "DEVELOPERS_PLATFORM", "INVALID_KEY_TYPE")


# --- project auth model ------------------------------------------------------------

def test_project_auth_model_is_enforced(make_devapi, devapi):
    mtls_project = make_devapi("MTLS")
    _key, csr = make_csr("key")
    response = mtls_project.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX",
                                                          "alias": "s", "csr": csr})
    assert reason(response) == (400, "DEVELOPERS_API", "PROJECT_TYPE_NOT_SUPPORTED")
    _key, csr = make_csr("1700000000-Client-MTF-000000")
    response = devapi.call("POST", "/credentials", {"type": "MTLS", "environment": "SANDBOX", "alias": "m",
                                                    "csr": csr})
    assert reason(response) == (400, "DEVELOPERS_API", "PROJECT_TYPE_NOT_SUPPORTED")
    _key, csr = make_csr("k2")
    response = devapi.call("POST", "/credentials", {"type": "SIGNING", "oauthVersion": "2.0",
                                                    "environment": "SANDBOX", "alias": "o2", "csr": csr})
    assert reason(response) == (400, "DEVELOPERS_API", "PROJECT_TYPE_NOT_SUPPORTED")
    assert reason(mtls_project.call("POST", "/oauth2-upgrade", {})) == (
        400, "DEVELOPERS_API", "PROJECT_TYPE_NOT_SUPPORTED")
    assert devapi.call("POST", "/oauth2-upgrade", {}).json()["oauth2Enabled"] is True
    devapi.create_key("o2", oauth_version="2.0")


# --- alias, status, lifecycle ----------------------------------------------------------

def test_alias_is_unique_among_live_credentials_of_a_project_environment(devapi):
    _key, first = devapi.create_key("same")
    _key, csr = make_csr("same")
    body = {"type": "SIGNING", "environment": "SANDBOX", "alias": "same", "csr": csr}
    expected = (409, "DEVELOPERS_API", "CREDENTIAL_ALIAS_ALREADY_EXISTS")
    assert reason(devapi.call("POST", "/credentials", body)) == expected
    assert devapi.call("POST", "/credentials", dict(body, environment="PRODUCTION")).status_code == 201
    devapi.call("DELETE", "/credentials/" + first["id"])
    assert devapi.call("POST", "/credentials", body).status_code == 201


def test_status_update_accepts_only_active(devapi):
    _key, credential = devapi.create_key("status")
    for status in ("INACTIVE", "REVOKED", "active", None):
        response = devapi.call("PATCH", "/credentials/" + credential["id"], {"status": status})
        assert reason(response) == (400, "DEVELOPERS_API", "INVALID_CREDENTIAL_STATUS"), status
    inactive = devapi.seed(type="SIGNING", environment="SANDBOX", status="INACTIVE")
    assert inactive["status"] == "INACTIVE"
    response = devapi.call("PATCH", "/credentials/" + inactive["id"], {"status": "ACTIVE"})
    assert response.status_code == 200 and response.json()["status"] == "ACTIVE"
    devapi.call("DELETE", "/credentials/" + credential["id"])
    response = devapi.call("PATCH", "/credentials/" + credential["id"], {"status": "ACTIVE"})
    assert reason(response) == (400, "DEVELOPERS_API", "INVALID_CREDENTIAL_STATUS")


def test_activating_an_expired_key_is_refused(devapi):
    expired = devapi.seed(type="SIGNING", environment="SANDBOX", status="INACTIVE",
                          notBefore="2020-01-01T00:00:00Z", expiryDate="2021-01-01T00:00:00Z")
    assert expired["status"] == "EXPIRED"
    response = devapi.call("PATCH", "/credentials/" + expired["id"], {"status": "ACTIVE"})
    assert reason(response) == (400, "DEVELOPERS_API", "ACTIVATING_EXPIRED_KEY")


def test_revoked_credentials_stay_listed(devapi):
    _key, credential = devapi.create_key("gone")
    revoked = devapi.call("DELETE", "/credentials/" + credential["id"])
    assert revoked.status_code == 200 and revoked.json()["status"] == "REVOKED" and revoked.json()["revokedDate"]
    listed = devapi.call("GET", "/credentials").json()["items"]
    assert [(item["id"], item["status"]) for item in listed] == [(credential["id"], "REVOKED")]
    assert devapi.call("DELETE", "/credentials/" + credential["id"]).json()["status"] == "REVOKED"


def test_expired_status_follows_the_emulated_clock(devapi, clock):
    _key, credential = devapi.create_key("clock")
    clock(394 * 86400)
    assert devapi.get(credential["id"])["status"] == "ACTIVE"
    clock(396 * 86400)
    assert devapi.get(credential["id"])["status"] == "EXPIRED"
    clock(0)
    assert devapi.get(credential["id"])["status"] == "ACTIVE"


def test_revoke_guard_for_the_last_active_credential(devapi, rules):
    _key, first = devapi.create_key("one")
    rules(guard_last_active=True)
    response = devapi.call("DELETE", "/credentials/" + first["id"])
    assert reason(response) == (409, "DEVELOPERS_API", "REVOKE_LAST_ACTIVE_CREDENTIAL")
    devapi.create_key("two")
    assert devapi.call("DELETE", "/credentials/" + first["id"]).status_code == 200
    rules(guard_last_active=False)


def test_renewal_keeps_the_key_and_issues_a_new_certificate(make_devapi):
    project = make_devapi("OAUTH10A", oauth2_enabled=True)
    _key, credential = project.create_key("renew")
    renewed = project.call("POST", "/credentials/%s/renewal" % credential["id"], {})
    assert renewed.status_code == 200, renewed.text
    renewed = renewed.json()
    assert renewed["id"] == credential["id"] and renewed["consumerKey"] == credential["consumerKey"]
    assert renewed["publicKeyFingerprint"] == credential["publicKeyFingerprint"]
    assert renewed["fingerprint"] != credential["fingerprint"]
    _key, oauth2 = project.create_key("o2", oauth_version="2.0")
    assert reason(project.call("POST", "/credentials/%s/renewal" % oauth2["id"], {})) == (
        400, "DEVELOPERS_API", "RENEWAL_NOT_SUPPORTED")


# --- ids and access ------------------------------------------------------------

def test_unknown_ids_and_other_accounts(emulator, devapi):
    assert reason(devapi.signed("GET", emulator.info["api_url"] + "/projects/nope")) == (
        404, "DEVELOPERS_API", "PROJECT_NOT_FOUND")
    assert reason(devapi.call("GET", "/credentials/nope")) == (404, "DEVELOPERS_API", "CREDENTIAL_NOT_FOUND")
    assert reason(devapi.call("DELETE", "/credentials/nope")) == (404, "DEVELOPERS_API", "CREDENTIAL_NOT_FOUND")
    stranger = DevApi(emulator)
    assert reason(stranger.signed("GET", devapi.base)) == (403, "DEVELOPERS_API", "NO_ACCESS_TO_PROJECT")
    assert reason(stranger.signed("GET", devapi.base + "/credentials")) == (403, "DEVELOPERS_API",
                                                                            "NO_ACCESS_TO_PROJECT")
    _key, credential = devapi.create_key("mine")
    # A credential id from another project is not found there.
    assert reason(stranger.call("GET", "/credentials/" + credential["id"])) == (
        404, "DEVELOPERS_API", "CREDENTIAL_NOT_FOUND")


def test_oauth1_probe_accepts_active_project_keys_only(emulator, devapi):
    key, credential = devapi.create_key("probe")
    response = devapi.signed("GET", emulator.info["oauth1_ping_url"], consumer_key=credential["consumerKey"],
                             signing_key=key)
    assert response.status_code == 200 and response.json()["credentialId"] == credential["id"]
    # The account's Developers API key is not a project key.
    unknown_key = (401, "Gateway", "INVALID_CONSUMER_KEY")
    assert reason(devapi.signed("GET", emulator.info["oauth1_ping_url"])) == unknown_key
    devapi.call("DELETE", "/credentials/" + credential["id"])
    response = devapi.signed("GET", emulator.info["oauth1_ping_url"], consumer_key=credential["consumerKey"],
                             signing_key=key)
    assert reason(response) == (401, "Gateway", "INVALID_CONSUMER_KEY")


# --- content rules, the same cases the collection refuses locally (tests/unit/content_cases.py) ----------

def _content_cases():
    from ansible_collections.mcdev.credentials.tests.unit import content_cases  # pylint: disable=import-outside-toplevel
    return content_cases


@pytest.mark.parametrize("index", range(0, 60, 3))
def test_csr_subject_that_is_not_clean_text_is_invalid(devapi, index):
    cases = _content_cases()
    case = cases.BAD_SUBJECTS[index % len(cases.BAD_SUBJECTS)]
    csr = cases.bad_subject_csr(new_key(), case)
    response = devapi.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX", "alias": "txt",
                                                    "csr": csr})
    assert reason(response) == (400, "DEVELOPERS_PLATFORM", "INVALID_CSR"), case[0]


def test_csr_signature_algorithms_follow_the_list(devapi):
    from cryptography.hazmat.primitives import hashes  # pylint: disable=import-outside-toplevel
    cases = _content_cases()
    key = new_key()
    refused = [cases.signed_csr(key, pss=True), cases.signed_csr(key, algorithm=hashes.SHA384())]
    for csr in refused:
        response = devapi.call("POST", "/credentials", {"type": "SIGNING", "environment": "SANDBOX", "alias": "alg",
                                                        "csr": csr})
        assert reason(response) == (400, "DEVELOPERS_PLATFORM", "INVALID_CSR")
        assert "signature algorithm" in response.json()["Errors"]["Error"][0]["Description"]
    # SHA-1 is on the list, and its signature is verified, not refused as unverifiable.
    sha1 = cases.openssl_csr(key, "sha1", "alg-sha1")
    devapi.create({"type": "SIGNING", "environment": "SANDBOX", "alias": "alg-sha1", "csr": sha1})


def test_uploaded_certificate_must_be_for_client_auth(emulator, make_devapi):
    cases = _content_cases()
    api = make_devapi("MTLS")
    ca_key, ca_cert = external_ca(emulator)
    for case_id, options, _expect in cases.UNFIT_FOR_CLIENT:
        cert = cases.certificate(new_key(), "upload-%s" % case_id, issuer_key=ca_key, issuer_name=ca_cert.subject,
                                 **options)
        response = api.call("POST", "/credentials", {"type": "MTLS", "environment": "PRODUCTION", "alias": case_id,
                                                     "certificate": pem_of(cert)})
        assert reason(response)[2] == "INVALID_CERTIFICATE_USAGE", case_id
    for case_id, options in cases.FIT_FOR_CLIENT:
        cert = cases.certificate(new_key(), "upload-%s" % case_id, issuer_key=ca_key, issuer_name=ca_cert.subject,
                                 **options)
        api.create({"type": "MTLS", "environment": "PRODUCTION", "alias": case_id, "certificate": pem_of(cert)})
