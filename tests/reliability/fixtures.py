"""Key, certificate and keystore files for the bad-input corpus (generated fresh, never checked in)."""
import datetime
import os

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

UTC = datetime.timezone.utc
PASSWORD = b"right-password"


def _name(common_name):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _cert(key, common_name, issuer_key=None, issuer_name=None, days=30, start_days=-1):
    now = datetime.datetime.now(UTC)
    return (x509.CertificateBuilder().subject_name(_name(common_name))
            .issuer_name(issuer_name or _name(common_name)).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now + datetime.timedelta(days=start_days))
            .not_valid_after(now + datetime.timedelta(days=days))
            .sign(issuer_key or key, hashes.SHA256()))


def _pem_key(key, password=None):
    encryption = (serialization.BestAvailableEncryption(password) if password
                  else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)


def build(directory, emulator_info=None):
    """Write every fixture into directory; return {name: path}. Private files are 0600."""
    os.makedirs(directory, exist_ok=True)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    weak_key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    cert = _cert(rsa_key, "reliability-client")
    expired = _cert(rsa_key, "reliability-expired", days=-2, start_days=-30)
    future = _cert(rsa_key, "reliability-future", days=60, start_days=10)
    foreign_ca_key = ec.generate_private_key(ec.SECP256R1())
    foreign = _cert(rsa_key, "relfor-Client-MTF-000000", issuer_key=foreign_ca_key,
                    issuer_name=_name("Some Foreign CA"))
    csr = (x509.CertificateSigningRequestBuilder().subject_name(_name("reliability-csr"))
           .sign(rsa_key, hashes.SHA256()))
    weak_csr = (x509.CertificateSigningRequestBuilder().subject_name(_name("reliability-weak"))
                .sign(weak_key, hashes.SHA256()))
    p12 = pkcs12.serialize_key_and_certificates(b"keyalias", rsa_key, cert, None,
                                                serialization.BestAvailableEncryption(PASSWORD))
    files = {
        "rsa_key": _pem_key(rsa_key),
        "rsa_key_encrypted": _pem_key(rsa_key, PASSWORD),
        "other_key": _pem_key(other_key),
        "weak_key": _pem_key(weak_key),
        "ec_key": _pem_key(ec_key),
        "cert": cert.public_bytes(serialization.Encoding.PEM),
        "cert_expired": expired.public_bytes(serialization.Encoding.PEM),
        "cert_future": future.public_bytes(serialization.Encoding.PEM),
        "cert_foreign": foreign.public_bytes(serialization.Encoding.PEM),
        "csr": csr.public_bytes(serialization.Encoding.PEM),
        "csr_weak": weak_csr.public_bytes(serialization.Encoding.PEM),
        "p12": p12,
        "p12_truncated": p12[: len(p12) // 2],
        "pem_truncated": _pem_key(rsa_key)[:400],
        "csr_truncated": csr.public_bytes(serialization.Encoding.PEM)[:300],
        "garbage": b"this is not a key, a certificate or a keystore\n" * 3,
        "binary_garbage": bytes(range(256)) * 8,
        "empty": b"",
        "huge": b"A" * (24 * 1024 * 1024),
        "json_not_pem": b'{"privateKey": "nope"}\n',
    }
    files.update(_content_fixtures(rsa_key, emulator_info))
    paths = {}
    for name, data in files.items():
        path = os.path.join(directory, name)
        with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
            handle.write(data)
        os.chmod(path, 0o600 if "key" in name or name.startswith("p12") else 0o644)
        paths[name] = path
    if emulator_info:
        paths["emulator_ca"] = emulator_info["ca_path"]
    return paths


def _content_fixtures(rsa_key, emulator_info):
    """CSRs and certificates whose content is wrong though their form is right (issue: content checks)."""
    from ansible_collections.mcdev.credentials.tests.unit import content_cases as cases  # pylint: disable=import-outside-toplevel
    out = {
        "csr_cn_escape": cases.bad_subject_csr(rsa_key, ("", "CN", cases.UTF8, b"rel\x1b[2Jx", "")),
        "csr_o_nul": cases.bad_subject_csr(rsa_key, ("", "O", cases.UTF8, b"Pay\x00ments", "")),
        "csr_cn_bad_utf8": cases.bad_subject_csr(rsa_key, ("", "CN", cases.UTF8, b"rel\xff", "")),
        "csr_cn_printable_at": cases.bad_subject_csr(rsa_key, ("", "CN", cases.PRINTABLE, b"rel@x", "")),
        "csr_pss": cases.signed_csr(rsa_key, pss=True),
        "csr_sha384": cases.signed_csr(rsa_key, algorithm=hashes.SHA384()),
        "csr_cn_65": cases.signed_csr(rsa_key, common_name="k" * 65),
        "cert_self_signed_client": cases.pem_chain(cases.certificate(rsa_key, "1700000000-Client-MTF-000000")),
    }
    leaf, mid, root, _key = cases.chain_of_three()
    out["cert_chain_reversed"] = cases.pem_chain(leaf, root, mid)
    if emulator_info and emulator_info.get("external_ca_path"):
        with open(emulator_info["external_ca_path"], "rb") as handle:
            ca_cert = x509.load_pem_x509_certificate(handle.read())
        with open(emulator_info["external_ca_key_path"], "rb") as handle:
            ca_key = serialization.load_pem_private_key(handle.read(), None)
        for case_id, options, _expect in cases.UNFIT_FOR_CLIENT:
            cert = cases.certificate(ec.generate_private_key(ec.SECP256R1()), "rel-" + case_id, issuer_key=ca_key,
                                     issuer_name=ca_cert.subject, **options)
            out["cert_" + case_id.replace("-", "_")] = cases.pem_chain(cert)
    return {name: text.encode("ascii") for name, text in out.items()}
