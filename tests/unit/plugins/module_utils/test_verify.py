# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""plugins/module_utils/verify.py against the emulator's probes: real mTLS handshakes,
real OAuth 1.0a signatures (mastercard-oauth1-signer), real OAuth 2.0 token exchanges
(mastercard-oauth2-client, DPoP with the server nonce). No HTTP mocks.
"""

from __future__ import annotations

import datetime
import json
import select
import socket
import socketserver
import threading
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.mcdev.credentials.plugins.module_utils import verify

UTC = datetime.timezone.utc
P12_PASSWORD = "s3cret-keystore-pw"


def _write(path, data):
    path.write_bytes(data if isinstance(data, bytes) else data.encode("ascii"))
    return str(path)


def _seed(emulator, project_id, **body):
    return emulator.admin("POST", "/projects/%s/credentials" % project_id, body)


def _counter(emulator, needle):
    return sum(v for k, v in emulator.admin("GET", "/counters").items() if needle in k)


@pytest.fixture(scope="module")
def world(emulator, tmp_path_factory):
    """One account, an mTLS project and an OAuth project (upgraded to OAuth 2.0), with credentials."""
    tmp = tmp_path_factory.mktemp("verify")
    account = emulator.new_account()
    mtls_project = emulator.new_project(account["account_id"], auth_model="MTLS")
    oauth_project = emulator.new_project(account["account_id"], auth_model="OAUTH10A", oauth2_enabled=True)
    now = time.time()
    w = {"tmp": tmp, "info": emulator.info, "mtls_project": mtls_project["id"], "oauth_project": oauth_project["id"]}
    w["mtls"] = _seed(emulator, mtls_project["id"], type="MTLS")
    w["mtls2"] = _seed(emulator, mtls_project["id"], type="MTLS")
    w["mtls_revoked"] = _seed(emulator, mtls_project["id"], type="MTLS", status="REVOKED")
    w["mtls_expired"] = _seed(emulator, mtls_project["id"], type="MTLS", notBefore=now - 400 * 86400,
                              expiryDate=now - 5 * 86400)
    w["oauth1"] = _seed(emulator, oauth_project["id"], type="SIGNING", oauthVersion="1.0a")
    w["oauth1_revoked"] = _seed(emulator, oauth_project["id"], type="SIGNING", oauthVersion="1.0a", status="REVOKED")
    w["oauth2"] = _seed(emulator, oauth_project["id"], type="SIGNING", oauthVersion="2.0")
    w["oauth2_revoked"] = _seed(emulator, oauth_project["id"], type="SIGNING", oauthVersion="2.0", status="REVOKED")
    for name in ("mtls", "mtls2", "mtls_revoked", "mtls_expired", "oauth1", "oauth1_revoked", "oauth2", "oauth2_revoked"):
        cred = w[name]
        cred["key_path"] = _write(tmp / (name + ".key.pem"), cred["private_key_pem"])
        cred["cert_path"] = _write(tmp / (name + ".cert.pem"), cred["certificate"])
    # The PKCS#12 keystore an application would carry (key + certificate), password protected.
    key = serialization.load_pem_private_key(w["mtls"]["private_key_pem"].encode(), None)
    cert = x509.load_pem_x509_certificate(w["mtls"]["certificate"].encode())
    w["mtls"]["p12_path"] = _write(tmp / "mtls.p12", pkcs12.serialize_key_and_certificates(
        b"keyalias", key, cert, None, serialization.BestAvailableEncryption(P12_PASSWORD.encode())))
    return w


def _mtls(world, cred, **extra):
    params = dict(kind="mtls", url=world["info"]["mtls_ping_url"], ca_path=world["info"]["ca_path"],
                  private_key_path=cred["key_path"], certificate_path=cred["cert_path"], timeout=10)
    params.update(extra)
    return verify.run_probe(params)


# ----------------------------------------------------------------- mTLS

def test_mtls_pem_success_reports_fingerprint_status_latency(world):
    result = _mtls(world, world["mtls"])
    assert result["success"] is True, result["msg"]
    assert result["cause"] == "ok" and result["status"] == 200
    assert result["fingerprint"] == world["mtls"]["fingerprint"]
    # The server saw the same certificate we think we sent.
    assert result["response"]["fingerprint"] == world["mtls"]["fingerprint"]
    assert result["response"]["credentialId"] == world["mtls"]["id"]
    assert isinstance(result["latency_ms"], int) and result["latency_ms"] >= 0
    assert result["days_left"] > 300


def test_mtls_pkcs12_with_password_success_and_no_secret_in_result(world):
    cred = world["mtls"]
    result = verify.run_probe(dict(kind="mtls", url=world["info"]["mtls_ping_url"], ca_path=world["info"]["ca_path"],
                                   pkcs12_path=cred["p12_path"], pkcs12_password=P12_PASSWORD))
    assert result["success"] is True, result["msg"]
    assert result["fingerprint"] == cred["fingerprint"]
    text = json.dumps(result)
    assert P12_PASSWORD not in text
    key_body = cred["private_key_pem"].splitlines()[1]
    assert key_body not in text


def test_mtls_wrong_pkcs12_password_is_invalid_input_naming_the_option(world):
    result = verify.run_probe(dict(kind="mtls", url=world["info"]["mtls_ping_url"], ca_path=world["info"]["ca_path"],
                                   pkcs12_path=world["mtls"]["p12_path"], pkcs12_password="wrong"))
    assert result["success"] is False
    assert result["cause"] == "invalid_input"
    assert "pkcs12_password" in result["msg"]
    assert "wrong" not in json.dumps(result).replace("wrong pkcs12_password", "")


def test_mtls_revoked_certificate_is_rejected_by_the_server(world):
    result = _mtls(world, world["mtls_revoked"])
    assert result["success"] is False
    assert result["cause"] == "client_certificate_rejected"
    assert result["status"] == 422 and result["reason_code"] == "INVALID_CLIENT_CERT"
    assert "REVOKED" in result["msg"]
    assert result["correlation_id"]


def test_mtls_expired_certificate_is_caught_locally_and_never_sent(world, emulator):
    before = _counter(emulator, "mtls/ping")
    result = _mtls(world, world["mtls_expired"])
    assert result["cause"] == "expired_certificate"
    assert result["status"] is None and "expired on" in result["msg"]
    assert _counter(emulator, "mtls/ping") == before


def test_mtls_key_certificate_mismatch_is_caught_locally(world, emulator):
    before = _counter(emulator, "mtls/ping")
    result = _mtls(world, world["mtls"], private_key_path=world["mtls2"]["key_path"])
    assert result["cause"] == "key_mismatch"
    assert "does not belong" in result["msg"]
    assert _counter(emulator, "mtls/ping") == before


def test_mtls_expected_fingerprint_mismatch(world):
    result = _mtls(world, world["mtls"], expected_fingerprint=world["mtls2"]["fingerprint"])
    assert result["cause"] == "fingerprint_mismatch"
    colon = ":".join(world["mtls"]["fingerprint"][i:i + 2] for i in range(0, 64, 2)).upper()
    assert _mtls(world, world["mtls"], expected_fingerprint=colon)["success"] is True


def test_mtls_foreign_certificate_is_refused_in_the_handshake(world, tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "1700000000-Client-MTF-000000")])
    now = datetime.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30)).sign(key, hashes.SHA256()))
    cred = {
        "key_path": _write(tmp_path / "k.pem", key.private_bytes(serialization.Encoding.PEM,
                                                                 serialization.PrivateFormat.PKCS8,
                                                                 serialization.NoEncryption())),
        "cert_path": _write(tmp_path / "c.pem", cert.public_bytes(serialization.Encoding.PEM)),
    }
    result = _mtls(world, cred)
    assert result["success"] is False
    assert result["cause"] == "handshake_refused", result["msg"]


def test_mtls_untrusted_server_certificate_without_ca_path(world):
    result = _mtls(world, world["mtls"], ca_path=None)
    assert result["cause"] == "server_certificate_untrusted"
    assert "ca_path" in result["msg"]


def test_mtls_connection_refused(world):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _mtls(world, world["mtls"], url="https://127.0.0.1:%d/ping" % port)
    assert result["cause"] == "connection_refused"


def test_mtls_needs_a_certificate(world):
    result = verify.run_probe(dict(kind="mtls", url=world["info"]["mtls_ping_url"],
                                   private_key_path=world["mtls"]["key_path"]))
    assert result["cause"] == "invalid_input" and "certificate_path" in result["msg"]


def test_plain_http_url_is_refused(world):
    result = _mtls(world, world["mtls"], url="http://127.0.0.1:1/ping")
    assert result["cause"] == "invalid_input" and "https://" in result["msg"]


# ----------------------------------------------------------------- OAuth 1.0a

def _oauth1(world, cred, **extra):
    params = dict(kind="oauth1", url=world["info"]["oauth1_ping_url"], ca_path=world["info"]["ca_path"],
                  private_key_path=cred["key_path"], consumer_key=cred["consumerKey"])
    params.update(extra)
    return verify.run_probe(params)


def test_oauth1_signed_request_succeeds(world):
    result = _oauth1(world, world["oauth1"])
    assert result["success"] is True, result["msg"]
    assert result["consumer_key"] == world["oauth1"]["consumerKey"]
    assert result["response"]["credentialId"] == world["oauth1"]["id"]
    assert result["public_key_fingerprint"] == world["oauth1"]["publicKeyFingerprint"]


def test_oauth1_post_with_body_is_signed_with_body_hash(world):
    result = _oauth1(world, world["oauth1"], method="POST")
    assert result["success"] is True, result["msg"]


def test_oauth1_revoked_key_is_401_with_reason_code(world):
    result = _oauth1(world, world["oauth1_revoked"])
    assert result["success"] is False
    assert result["cause"] == "unauthorized" and result["status"] == 401
    assert result["reason_code"]
    assert "REVOKED" in result["msg"]


def test_oauth1_wrong_signing_key_fails_signature_check(world):
    result = _oauth1(world, world["oauth1"], private_key_path=world["oauth1_revoked"]["key_path"])
    assert result["success"] is False
    assert result["cause"] in ("unauthorized", "forbidden")
    assert result["reason_code"] == "AUTHENTICATION_FAILED"


def test_oauth1_untrusted_server_certificate_and_refused_connection(world):
    result = _oauth1(world, world["oauth1"], ca_path=None)
    assert result["cause"] == "server_certificate_untrusted" and "ca_path" in result["msg"]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = _oauth1(world, world["oauth1"], url="https://127.0.0.1:%d/ping" % port)
    assert result["cause"] == "connection_refused"


class _ConnectProxy(socketserver.ThreadingTCPServer):
    """A real HTTP CONNECT proxy on loopback that notes every tunnel it opens (and the auth header it got)."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self):
        self.tunnels = []
        super().__init__(("127.0.0.1", 0), _ConnectHandler)


class _ConnectHandler(socketserver.BaseRequestHandler):
    def handle(self):
        head = b""
        while b"\r\n\r\n" not in head:
            chunk = self.request.recv(4096)
            if not chunk:
                return
            head += chunk
        lines = head.split(b"\r\n")
        method, target = lines[0].split(b" ")[:2]
        auth = [line.split(b":", 1)[1].strip() for line in lines[1:] if line.lower().startswith(b"proxy-authorization:")]
        self.server.tunnels.append((method.decode(), target.decode(), auth[0].decode() if auth else None))
        host, port = target.decode().rsplit(":", 1)
        with socket.create_connection((host, int(port)), timeout=10) as upstream:
            self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            peers = {self.request: upstream, upstream: self.request}
            while True:
                ready, _w, _x = select.select(list(peers), [], [], 10)
                if not ready:
                    return
                for sock in ready:
                    data = sock.recv(65536)
                    if not data:
                        return
                    peers[sock].sendall(data)


@pytest.fixture()
def connect_proxy(monkeypatch):
    server = _ConnectProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("no_proxy", "NO_PROXY", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://probe-user:pr0xy-pw@127.0.0.1:%d" % server.server_address[1])
    yield server
    server.shutdown()
    server.server_close()


def test_probes_go_through_the_https_proxy_of_the_environment(world, connect_proxy, monkeypatch):
    """HTTPS_PROXY applies to the mTLS and OAuth 1.0a probes (a CONNECT tunnel: TLS stays end to end)."""
    target = verify.urlsplit(world["info"]["oauth1_ping_url"]).netloc
    result = _oauth1(world, world["oauth1"])
    assert result["success"] is True, result["msg"]
    assert connect_proxy.tunnels[-1][:2] == ("CONNECT", target)
    assert connect_proxy.tunnels[-1][2] == "Basic cHJvYmUtdXNlcjpwcjB4eS1wdw=="  # probe-user:pr0xy-pw
    result = _mtls(world, world["mtls"])
    assert result["success"] is True, result["msg"]
    assert len(connect_proxy.tunnels) == 2
    # NO_PROXY covering the host: straight there
    monkeypatch.setenv("NO_PROXY", "example.org, %s" % verify.urlsplit(world["info"]["oauth1_ping_url"]).hostname)
    assert _oauth1(world, world["oauth1"])["success"] is True
    assert len(connect_proxy.tunnels) == 2


# ----------------------------------------------------------------- OAuth 2.0

def _oauth2(world, cred, **extra):
    params = dict(kind="oauth2", token_url=world["info"]["token_url"], issuer=world["info"]["issuer"],
                  ca_path=world["info"]["ca_path"], private_key_path=cred["key_path"],
                  client_id=cred["clientId"], kid=cred["kid"])
    params.update(extra)
    return verify.run_probe(params)


def test_oauth2_token_exchange_with_dpop_nonce(world):
    result = _oauth2(world, world["oauth2"])
    assert result["success"] is True, result["msg"]
    assert result["status"] == 200 and result["kid"] == world["oauth2"]["kid"]
    assert result["oauth2"]["token_type"] == "DPoP"
    assert result["oauth2"]["nonce_retries"] == 1  # the emulator demands a server nonce
    assert "access_token" not in json.dumps(result)


@pytest.fixture
def issuer_elsewhere(emulator):
    """The authorization server names an issuer that is not the token endpoint's origin (as auth.mastercard.com)."""
    issuer = "https://auth.mastercard.example"
    emulator.admin("POST", "/rules", {"oauth2_issuer": issuer})
    yield issuer
    emulator.admin("POST", "/rules", {"oauth2_issuer": ""})


def test_oauth2_issuer_apart_from_the_token_endpoint(world, issuer_elsewhere):
    result = _oauth2(world, world["oauth2"], issuer=issuer_elsewhere)
    assert result["success"] is True, result["msg"]
    defaulted = _oauth2(world, world["oauth2"], issuer=None)
    assert defaulted["success"] is False and defaulted["cause"] == "token_rejected"
    origin = world["info"]["issuer"]
    assert "audience was %s (the token URL's origin" % origin in defaulted["msg"]
    assert "set issuer" in defaulted["msg"]
    wrong = _oauth2(world, world["oauth2"], issuer="https://other.example")
    assert "audience was https://other.example (the issuer option)" in wrong["msg"]


def test_oauth2_token_then_dpop_bound_resource_call(world):
    result = _oauth2(world, world["oauth2"], url=world["info"]["oauth2_ping_url"], scopes=["probe:read"])
    assert result["success"] is True, result["msg"]
    assert result["response"]["kid"] == world["oauth2"]["kid"]
    assert result["response"]["credentialId"] == world["oauth2"]["id"]
    assert result["oauth2"]["scopes_granted"] == ["probe:read"]
    assert result["latency_ms"] >= result["oauth2"]["token_latency_ms"]


def test_oauth2_revoked_key_is_token_rejected(world):
    result = _oauth2(world, world["oauth2_revoked"])
    assert result["success"] is False
    assert result["cause"] == "token_rejected"
    assert result["status"] == 400 and result["reason_code"] == "invalid_client"
    assert "REVOKED" in result["msg"]


def test_oauth2_wrong_key_for_kid_is_token_rejected(world):
    result = _oauth2(world, world["oauth2"], private_key_path=world["oauth2_revoked"]["key_path"])
    assert result["cause"] == "token_rejected"
    assert "signature" in result["msg"]


def test_oauth1_key_works_for_oauth2_after_project_upgrade(world):
    cred = world["oauth1"]
    result = _oauth2(world, dict(cred, clientId=cred["clientId"], kid=cred["kid"]))
    assert result["success"] is True, result["msg"]


# ----------------------------------------------------------------- local material

def test_encrypted_pem_key_needs_its_password(world, tmp_path):
    key = serialization.load_pem_private_key(world["mtls"]["private_key_pem"].encode(), None)
    path = _write(tmp_path / "enc.pem", key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.BestAvailableEncryption(b"pw-123456")))
    result = _mtls(world, world["mtls"], private_key_path=path)
    assert result["cause"] == "invalid_input" and "private_key_password" in result["msg"]
    result = _mtls(world, world["mtls"], private_key_path=path, private_key_password="pw-123456")
    assert result["success"] is True, result["msg"]


def test_der_certificate_is_accepted(world, tmp_path):
    cert = x509.load_pem_x509_certificate(world["mtls"]["certificate"].encode())
    path = _write(tmp_path / "c.der", cert.public_bytes(serialization.Encoding.DER))
    assert _mtls(world, world["mtls"], certificate_path=path)["success"] is True


def test_missing_file_names_the_option(world):
    result = _mtls(world, world["mtls"], certificate_path="/nonexistent/cert.pem")
    assert result["cause"] == "invalid_input" and "certificate_path" in result["msg"]


def test_every_cause_is_documented():
    # Every cause the code can produce is in CAUSES (the module documents this set).
    source = open(verify.__file__).read()
    import re
    produced = set(re.findall(r'VerifyError\(\s*"([a-z_]+)"', source))
    produced |= {"unauthorized", "forbidden", "client_certificate_rejected", "http_error", "ok"}
    assert produced <= set(verify.CAUSES)
