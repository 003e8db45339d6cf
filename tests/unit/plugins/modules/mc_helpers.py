"""Shared helpers of the mc_certificate / mc_oauth_key tests: an account and project on the emulator, connection args."""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

UTC = datetime.timezone.utc


def connection(emulator, account):
    return {
        "api_url": emulator.info["api_url"],
        "consumer_key": account["consumer_key"],
        "signing_key_content": account["signing_key_pem"],
        "ca_path": emulator.info["ca_path"],
        "retries": 3,
    }


def setup_project(emulator, auth_model="OAUTH10A", oauth2_enabled=False, **fields):
    account = emulator.new_account()
    project = emulator.new_project(account["account_id"], auth_model=auth_model, oauth2_enabled=oauth2_enabled, **fields)
    return account, project


def counters(emulator):
    return emulator.admin("GET", "/counters")


def mutating_calls(before, after):
    """Mutating Developers API calls (POST, PATCH, DELETE under /developers) between two counter snapshots."""
    return sum(value - before.get(key, 0) for key, value in after.items()
               if key.split(" ")[0] in ("POST", "PATCH", "DELETE") and "/developers/" in key)


def api_calls(before, after, method="GET", fragment="/developers/"):
    return sum(value - before.get(key, 0) for key, value in after.items()
               if key.split(" ")[0] == method and fragment in key)


def new_key(kind="rsa"):
    if kind == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def csr_pem(key, common_name):
    csr = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])).sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def load_pem_file(path):
    with open(path, "rb") as handle:
        return handle.read()


def issue(ca_cert_path, ca_key_path, common_name, days=30, start_days=-1, key=None):
    """(key, certificate PEM) signed by the CA in the given files."""
    with open(ca_cert_path, "rb") as handle:
        ca_cert = x509.load_pem_x509_certificate(handle.read())
    with open(ca_key_path, "rb") as handle:
        ca_key = serialization.load_pem_private_key(handle.read(), None)
    return issue_by(ca_cert, ca_key, common_name, days, start_days, key)


def issue_by(ca_cert, ca_key, common_name, days=30, start_days=-1, key=None):
    key = key or new_key("ec")
    now = datetime.datetime.now(UTC)
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=start_days))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(ca_key, hashes.SHA256()))
    return key, cert.public_bytes(serialization.Encoding.PEM).decode("ascii")


def foreign_ca():
    key = new_key("ec")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "foreign CA")])
    now = datetime.datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=365))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    return cert, key


def crypto_fp(obj):
    """SHA-256 of the DER SubjectPublicKeyInfo, computed here independently of crypto.py."""
    import hashlib  # pylint: disable=import-outside-toplevel
    public = obj.public_key()
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def days_from_now(days):
    return (datetime.datetime.now(UTC) + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")


def list_remote(emulator, account, project_id):
    from ansible_collections.mcdev.credentials.plugins.module_utils import devapi  # pylint: disable=import-outside-toplevel
    client = devapi.client_from_params(connection(emulator, account))
    try:
        return client.list_credentials(project_id)
    finally:
        client.close()
