"""The emulator's certificate authorities, its TLS server certificate, and issuance.

Two CAs are generated at first start and kept next to the state file: the
emulator's own CA (issues every credential certificate and the server
certificate) and a "trusted external CA" that the emulator does not use
itself, so tests can make a foreign-but-trusted certificate for upload.
EC P-256 keys keep the first start fast.
"""
import datetime
import hashlib
import ipaddress
import os
import secrets

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc


def utc(epoch):
    return datetime.datetime.fromtimestamp(epoch, UTC)


def fingerprint(certificate):
    """Lowercase hex SHA-256 of the DER certificate (contracts.md)."""
    return hashlib.sha256(certificate.public_bytes(serialization.Encoding.DER)).hexdigest()


def public_key_fingerprint(public_key):
    """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo (contracts.md)."""
    der = public_key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def pem(certificate):
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def private_pem(key):
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")


def public_pem(public_key):
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def generate_key(key_type="RSA", key_size=2048):
    if key_type.upper() == "EC":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=key_size)


def _write_private(path, data):
    # The CA keys are secrets even in a test tree: create them 0600.
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as handle:
        handle.write(data)


class Authority:
    """One CA: certificate + key, loaded from or created in a directory."""

    def __init__(self, certificate, key):
        self.certificate = certificate
        self.key = key

    @classmethod
    def load_or_create(cls, directory, stem, common_name):
        cert_path = os.path.join(directory, stem + ".pem")
        key_path = os.path.join(directory, stem + ".key")
        if os.path.exists(cert_path) and os.path.exists(key_path):
            with open(cert_path, "rb") as handle:
                certificate = x509.load_pem_x509_certificate(handle.read())
            with open(key_path, "rb") as handle:
                key = serialization.load_pem_private_key(handle.read(), password=None)
            return cls(certificate, key)
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "mcdev emulator"),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ])
        now = datetime.datetime.now(UTC)
        certificate = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            # Wide validity both ways so time travel never outruns the CA.
            .not_valid_before(now - datetime.timedelta(days=3650))
            .not_valid_after(now + datetime.timedelta(days=7300))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, content_commitment=False, key_encipherment=False,
                    data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        _write_private(key_path, private_pem(key).encode("ascii"))
        with open(cert_path, "w", encoding="ascii") as handle:
            handle.write(pem(certificate))
        return cls(certificate, key)

    def issue(self, subject, public_key, not_before, not_after, client_auth=True, server_names=None):
        """Sign a leaf certificate for public_key; dates are epoch seconds."""
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self.certificate.subject)
            .public_key(public_key)
            .serial_number(int.from_bytes(secrets.token_bytes(16), "big") >> 1)
            .not_valid_before(utc(not_before))
            .not_valid_after(utc(not_after))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False
            )
        )
        usages = [ExtendedKeyUsageOID.CLIENT_AUTH] if client_auth else [ExtendedKeyUsageOID.SERVER_AUTH]
        builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        if server_names:
            alt_names = []
            for entry in server_names:
                try:
                    alt_names.append(x509.IPAddress(ipaddress.ip_address(entry)))
                except ValueError:
                    alt_names.append(x509.DNSName(entry))
            builder = builder.add_extension(x509.SubjectAlternativeName(alt_names), critical=False)
        return builder.sign(self.key, hashes.SHA256())

    def signed(self, certificate):
        """True when certificate carries a valid signature of this CA."""
        if certificate.issuer != self.certificate.subject:
            return False
        try:
            certificate.verify_directly_issued_by(self.certificate)
        except (InvalidSignature, ValueError, TypeError):
            # A bad signature and an unsupported algorithm both mean "not ours".
            return False
        return True


class Pki:
    """The emulator CA, the trusted external CA and the TLS server certificate."""

    def __init__(self, directory, server_names):
        os.makedirs(directory, mode=0o700, exist_ok=True)
        self.directory = directory
        self.ca = Authority.load_or_create(directory, "ca", "mcdev emulator CA")
        self.external_ca = Authority.load_or_create(directory, "external-ca", "mcdev trusted external CA")
        self.ca_path = os.path.join(directory, "ca.pem")
        self.external_ca_path = os.path.join(directory, "external-ca.pem")
        self.external_ca_key_path = os.path.join(directory, "external-ca.key")
        # Both CAs in one bundle: the mTLS probe trusts what the API accepts.
        self.client_ca_bundle_path = os.path.join(directory, "client-cas.pem")
        with open(self.client_ca_bundle_path, "w", encoding="ascii") as handle:
            handle.write(pem(self.ca.certificate) + pem(self.external_ca.certificate))
        self.server_cert_path = os.path.join(directory, "server.pem")
        self.server_key_path = os.path.join(directory, "server.key")
        self._ensure_server_certificate(server_names)

    def _ensure_server_certificate(self, server_names):
        if os.path.exists(self.server_cert_path) and os.path.exists(self.server_key_path):
            with open(self.server_cert_path, "rb") as handle:
                certificate = x509.load_pem_x509_certificates(handle.read())[0]
            if self.ca.signed(certificate):
                return
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(UTC).timestamp()
        certificate = self.ca.issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, server_names[0])]),
            key.public_key(),
            now - 86400 * 3650,
            now + 86400 * 7300,
            client_auth=False,
            server_names=server_names,
        )
        _write_private(self.server_key_path, private_pem(key).encode("ascii"))
        with open(self.server_cert_path, "w", encoding="ascii") as handle:
            handle.write(pem(certificate) + pem(self.ca.certificate))

    def trusted_issuer(self, certificate, accept_external):
        """Which CA signed certificate: "emulator", "external" or None."""
        if self.ca.signed(certificate):
            return "emulator"
        if accept_external and self.external_ca.signed(certificate):
            return "external"
        return None
