"""Helpers for the emulator's own tests: a signed Developers API client, CSR and certificate builders."""
import contextlib
import datetime
import json
import warnings

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from oauth1.oauth import OAuth

UTC = datetime.timezone.utc


def new_key(key_type="RSA", size=2048):
    if key_type == "EC":
        return ec.generate_private_key({256: ec.SECP256R1(), 384: ec.SECP384R1()}[size])
    return rsa.generate_private_key(public_exponent=65537, key_size=size)


_KEY_POOL = []


def pooled_key():
    """One of a few RSA keys made once per process: RSA generation dominated the suite's CPU.

    Reuse is harmless here (the portal identifies credentials by id, kid and certificate,
    not by public key); tests that need a distinct key call new_key().
    """
    if len(_KEY_POOL) < 4:
        _KEY_POOL.append(new_key())
        return _KEY_POOL[-1]
    _KEY_POOL.append(_KEY_POOL.pop(0))
    return _KEY_POOL[-1]


def make_csr(common_name="oauth-key-1", key=None, organization=None, hash_algorithm=None):
    """(private key, CSR PEM) with the given subject."""
    key = key or pooled_key()
    attributes = []
    if common_name is not None:
        with warnings.catch_warnings():
            # _validate=False lets a test build the over-long CN the portal must refuse.
            warnings.simplefilter("ignore", UserWarning)
            attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False))
    if organization:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    if not attributes:
        attributes.append(x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "no-cn"))
    csr = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(attributes)).sign(
        key, hash_algorithm or hashes.SHA256())
    return key, csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption()).decode("ascii")


def issue_with(ca_cert, ca_key, common_name, days=30, start_days=-1, key=None):
    """A client certificate signed by a given CA (for uploads and the foreign-cert tests)."""
    key = key or new_key("EC", 256)
    now = datetime.datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + datetime.timedelta(days=start_days))
        .not_valid_after(now + datetime.timedelta(days=days))
        .sign(ca_key, hashes.SHA256())
    )
    return key, certificate


def self_signed_ca(name="foreign CA"):
    key = new_key("EC", 256)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, certificate


def external_ca(emulator):
    """(key, certificate) of the emulator's trusted external CA, to issue certificates it accepts for upload."""
    with open(emulator.info["external_ca_path"], "rb") as handle:
        certificate = x509.load_pem_x509_certificate(handle.read())
    with open(emulator.info["external_ca_key_path"], "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), None)
    return key, certificate


def pem_of(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def reason(response):
    """(status, Source, ReasonCode) of a Mastercard error envelope; fails if the body is not one."""
    error = response.json()["Errors"]["Error"][0]
    assert set(error) == {"Source", "ReasonCode", "Description", "Details", "Recoverable"}, error
    return response.status_code, error["Source"], error["ReasonCode"]


class DevApi:
    """A Developers API account + project, signing each call with Mastercard's OAuth 1.0a signer."""

    def __init__(self, emulator, auth_model="OAUTH10A", oauth2_enabled=False, account=None):
        self.emulator = emulator
        self.account = account or emulator.new_account()
        self.project = emulator.new_project(self.account["account_id"], auth_model, oauth2_enabled)
        self.consumer_key = self.account["consumer_key"]
        self.signing_key = serialization.load_pem_private_key(self.account["signing_key_pem"].encode("ascii"), None)
        self.session = requests.Session()
        # REQUESTS_CA_BUNDLE would otherwise replace our CA.
        self.session.trust_env = False
        self.session.verify = emulator.info["ca_path"]

    @property
    def base(self):
        return "%s/projects/%s" % (self.emulator.info["api_url"], self.project["id"])

    def signed(self, method, url, body=None, consumer_key=None, signing_key=None):
        """Send a request signed by oauth1.OAuth.get_authorization_header; body is a dict or str."""
        payload = json.dumps(body) if isinstance(body, (dict, list)) else body
        header = OAuth.get_authorization_header(url, method, payload, consumer_key or self.consumer_key,
                                                signing_key or self.signing_key)
        headers = {"Authorization": header}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        return self.session.request(method, url, data=payload.encode("utf-8") if payload is not None else None,
                                    headers=headers, timeout=30)

    def call(self, method, path, body=None):
        return self.signed(method, self.base + path, body)

    def create(self, body, expect=201):
        response = self.call("POST", "/credentials", body)
        assert response.status_code == expect, response.text
        return response.json()

    def create_key(self, alias, oauth_version="1.0a", key=None, environment="SANDBOX", common_name=None):
        key, csr = make_csr(common_name or alias, key=key)
        body = {"type": "SIGNING", "environment": environment, "alias": alias, "csr": csr}
        if oauth_version:
            body["oauthVersion"] = oauth_version
        return key, self.create(body)

    def create_mtls(self, alias, common_name=None, environment="SANDBOX", key=None):
        key, csr = make_csr(common_name or "%s-Client-MTF-000000" % alias.replace("_", "."), key=key)
        return key, self.create({"type": "MTLS", "environment": environment, "alias": alias, "csr": csr})

    def seed(self, **body):
        return self.emulator.admin("POST", "/projects/%s/credentials" % self.project["id"], body)

    def get(self, credential_id):
        return self.call("GET", "/credentials/" + credential_id).json()


@contextlib.contextmanager
def pem_files(tmp_path, certificate_pem, private_key_pem):
    cert_path, key_path = tmp_path / "client.pem", tmp_path / "client.key"
    cert_path.write_text(certificate_pem)
    key_path.write_text(private_key_pem)
    yield str(cert_path), str(key_path)
