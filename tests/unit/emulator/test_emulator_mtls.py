"""The mTLS probe: handshake only for trusted chains, 200 only for ACTIVE certificates."""
import shutil
import subprocess

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import (issue_with, key_pem, pem_of,
                                                                               reason, self_signed_ca)


@pytest.fixture
def mtls_project(make_devapi):
    return make_devapi("MTLS")


def write_pair(tmp_path, name, certificate_pem, private_key_pem):
    cert_path, key_path = tmp_path / (name + ".pem"), tmp_path / (name + ".key")
    cert_path.write_text(certificate_pem)
    key_path.write_text(private_key_pem)
    return str(cert_path), str(key_path)


def ping(emulator, pair):
    return requests.get(emulator.info["mtls_ping_url"], cert=pair, verify=emulator.info["ca_path"], timeout=30)


def test_issued_certificate_passes_requests_curl_and_openssl(emulator, mtls_project, tmp_path):
    key, credential = mtls_project.create_mtls("app1")
    pair = write_pair(tmp_path, "app1", credential["certificate"], key_pem(key))
    response = ping(emulator, pair)
    assert response.status_code == 200, response.text
    assert response.json()["fingerprint"] == credential["fingerprint"]
    assert response.json()["credentialId"] == credential["id"]

    curl = subprocess.run(["curl", "-sS", "--noproxy", "*", "--cacert", emulator.info["ca_path"], "--cert", pair[0],
                           "--key", pair[1], emulator.info["mtls_ping_url"]],
                          capture_output=True, text=True, timeout=30, check=False)
    assert curl.returncode == 0 and credential["id"] in curl.stdout, curl.stderr

    handshake = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % emulator.info["mtls_port"], "-CAfile",
         emulator.info["ca_path"], "-cert", pair[0], "-key", pair[1], "-verify_return_error", "-brief", "-ign_eof"],
        input="GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
        capture_output=True, text=True, timeout=30, check=False)
    # The probe closes without close_notify, so s_client may exit 1 after printing the answer.
    assert "Verification: OK" in handshake.stderr, handshake.stderr
    assert "200 OK" in handshake.stdout and credential["fingerprint"] in handshake.stdout


def test_revoked_certificate_is_422(emulator, mtls_project, tmp_path):
    key, credential = mtls_project.create_mtls("app2")
    pair = write_pair(tmp_path, "app2", credential["certificate"], key_pem(key))
    assert ping(emulator, pair).status_code == 200
    assert mtls_project.call("DELETE", "/credentials/" + credential["id"]).status_code == 200
    assert reason(ping(emulator, pair)) == (422, "Gateway", "INVALID_CLIENT_CERT")


def test_expired_certificate_is_422_by_the_emulated_clock(emulator, mtls_project, tmp_path, clock):
    key, credential = mtls_project.create_mtls("app3")
    pair = write_pair(tmp_path, "app3", credential["certificate"], key_pem(key))
    clock(396 * 86400)
    assert reason(ping(emulator, pair)) == (422, "Gateway", "INVALID_CLIENT_CERT")
    clock(0)
    assert ping(emulator, pair).status_code == 200


def test_unregistered_certificate_from_the_emulator_ca_is_422(emulator, mtls_project, tmp_path):
    seeded = mtls_project.seed(type="MTLS", environment="SANDBOX", status="INACTIVE")
    pair = write_pair(tmp_path, "inactive", seeded["certificate"], seeded["private_key_pem"])
    assert reason(ping(emulator, pair)) == (422, "Gateway", "INVALID_CLIENT_CERT")


def test_foreign_certificate_fails_the_handshake(emulator, tmp_path):
    ca_key, ca_cert = self_signed_ca()
    key, certificate = issue_with(ca_cert, ca_key, "foreign-Client-MTF-000000")
    pair = write_pair(tmp_path, "foreign", pem_of(certificate), key_pem(key))
    with pytest.raises(requests.exceptions.RequestException):
        ping(emulator, pair)
    handshake = subprocess.run(
        ["openssl", "s_client", "-connect", "127.0.0.1:%d" % emulator.info["mtls_port"], "-CAfile",
         emulator.info["ca_path"], "-cert", pair[0], "-key", pair[1], "-brief", "-ign_eof"],
        input="GET /ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", capture_output=True, text=True, timeout=30,
        check=False)
    assert "200 OK" not in handshake.stdout
    assert "alert" in handshake.stderr.lower() or handshake.returncode != 0


def test_no_client_certificate_fails_the_handshake(emulator):
    with pytest.raises(requests.exceptions.RequestException):
        requests.get(emulator.info["mtls_ping_url"], verify=emulator.info["ca_path"], timeout=30)


def test_uploaded_certificate_from_the_trusted_external_ca_passes(emulator, mtls_project, tmp_path):
    with open(emulator.info["external_ca_path"], "rb") as handle:
        ca_cert = x509.load_pem_x509_certificate(handle.read())
    with open(emulator.info["external_ca_key_path"], "rb") as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), None)
    key, certificate = issue_with(ca_cert, ca_key, "uploaded-Client-MTF-000000")
    credential = mtls_project.create({"type": "MTLS", "environment": "SANDBOX", "alias": "uploaded",
                                      "certificate": pem_of(certificate)})
    assert credential["certificate"] == pem_of(certificate)
    pair = write_pair(tmp_path, "uploaded", pem_of(certificate), key_pem(key))
    assert ping(emulator, pair).json()["credentialId"] == credential["id"]


def test_openssl_and_curl_are_available():
    assert shutil.which("openssl") and shutil.which("curl")


def test_certificate_expired_in_real_time_still_handshakes_and_gets_422(emulator, mtls_project, tmp_path):
    """The probe judges validity by the emulated clock, so an expired certificate is a 422, not a TLS error."""
    seeded = mtls_project.seed(type="MTLS", environment="SANDBOX", notBefore="2020-01-01T00:00:00Z",
                               expiryDate="2021-01-01T00:00:00Z")
    assert seeded["status"] == "EXPIRED"
    pair = write_pair(tmp_path, "old", seeded["certificate"], seeded["private_key_pem"])
    assert reason(ping(emulator, pair)) == (422, "Gateway", "INVALID_CLIENT_CERT")
