"""crypto.py against real cryptography, with the openssl CLI as the independent check."""

from __future__ import annotations

import datetime
import hashlib
import os
import shutil
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.crypto import CryptoError

OPENSSL = shutil.which("openssl")
needs_openssl = pytest.mark.skipif(OPENSSL is None, reason="the openssl CLI is not installed")
UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 1, 1, tzinfo=UTC)


def openssl(*args, data=None):
    done = subprocess.run([OPENSSL] + list(args), input=data, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.fixture(scope="module")
def rsa_key():
    return crypto.generate_private_key("rsa", 2048)


@pytest.fixture(scope="module")
def other_rsa_key():
    return crypto.generate_private_key("rsa", 2048)


@pytest.fixture(scope="module")
def ec_key():
    return crypto.generate_private_key("ec", curve="secp256r1")


def make_cert(key, issuer_key=None, cn="example-1682563200", issuer_cn=None, days=395, sans=None, start=NOW, serial=0x0ABC):
    issuer_key = issuer_key or key
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_cn or cn)]))
               .public_key(key.public_key())
               .serial_number(serial)
               .not_valid_before(start)
               .not_valid_after(start + datetime.timedelta(days=days)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in sans]), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope="module")
def ca_key():
    return crypto.generate_private_key("ec", curve="secp256r1")


@pytest.fixture(scope="module")
def ca_cert(ca_key):
    return make_cert(ca_key, cn="Test CA")


@pytest.fixture(scope="module")
def leaf_cert(rsa_key, ca_key):
    return make_cert(rsa_key, ca_key, issuer_cn="Test CA", sans=["api.example.com"])


def write(tmp_path, name, data):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


# ---------------------------------------------------------------- keys

@pytest.mark.parametrize("size", [2048, 3072])
def test_generate_rsa_sizes(size):
    key = crypto.generate_private_key("rsa", size)
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == size
    assert key.private_numbers().public_numbers.e == 65537


@pytest.mark.parametrize("curve, cls", [("secp256r1", ec.SECP256R1), ("secp384r1", ec.SECP384R1)])
def test_generate_ec_curves(curve, cls):
    key = crypto.generate_private_key("ec", curve=curve)
    assert isinstance(key.curve, cls)


@pytest.mark.parametrize("kwargs, message", [
    ({"key_type": "rsa", "size": 1024}, "size=1024"),
    ({"key_type": "ec", "curve": "secp521r1"}, "curve=secp521r1"),
    ({"key_type": "dsa"}, "type=dsa"),
])
def test_generate_refuses(kwargs, message):
    with pytest.raises(CryptoError, match=message):
        crypto.generate_private_key(**kwargs)


@needs_openssl
def test_describe_key_matches_openssl(rsa_key, ec_key):
    for key in (rsa_key, ec_key):
        der = openssl("pkey", "-pubout", "-outform", "DER", data=crypto.dump_private_key(key, "pkcs8_pem"))
        assert crypto.describe_key(key)["public_key_fingerprint"] == hashlib.sha256(der).hexdigest()
    assert crypto.describe_key(rsa_key)["type"] == "rsa" and crypto.describe_key(rsa_key)["size"] == 2048
    facts = crypto.describe_key(ec_key.public_key())
    assert (facts["type"], facts["curve"], facts["size"]) == ("ec", "secp256r1", 256)


def test_key_spec_difference(rsa_key, ec_key):
    assert crypto.key_spec_difference(rsa_key, "rsa", 2048) is None
    assert crypto.key_spec_difference(ec_key, "ec", curve="secp256r1") is None
    assert "size=4096" in crypto.key_spec_difference(rsa_key, "rsa", 4096)
    assert "type=ec" in crypto.key_spec_difference(rsa_key, "ec", curve="secp256r1")
    assert "curve=secp384r1" in crypto.key_spec_difference(ec_key, "ec", curve="secp384r1")


def test_check_key_strength_refuses_weak_keys(rsa_key, ec_key):
    crypto.check_key_strength(rsa_key)
    crypto.check_key_strength(ec_key)
    weak = rsa.generate_private_key(65537, 1024)
    with pytest.raises(CryptoError, match="RSA 1024.*at least 2048"):
        crypto.check_key_strength(weak, "src_path /x")
    with pytest.raises(CryptoError, match="secp521r1"):
        crypto.check_key_strength(ec.generate_private_key(ec.SECP521R1()))


def test_public_key_fingerprint_is_the_same_for_key_cert_and_csr(rsa_key, leaf_cert):
    csr = crypto.build_csr(rsa_key, {"CN": "x"})
    values = {crypto.public_key_fingerprint(obj) for obj in (rsa_key, rsa_key.public_key(), leaf_cert, csr)}
    assert len(values) == 1
    assert crypto.same_key(rsa_key, leaf_cert)


def test_same_key_differs(rsa_key, other_rsa_key):
    assert not crypto.same_key(rsa_key, other_rsa_key)


# ----------------------------------------------------------- reading keys

@needs_openssl
def test_read_key_container_detects_openssl_formats(tmp_path, rsa_key):
    pkcs8 = crypto.dump_private_key(rsa_key, "pkcs8_pem")
    cases = {
        "pkcs1_pem": (openssl("rsa", "-traditional", data=pkcs8), None, False),
        "pkcs8_pem": (openssl("pkey", data=pkcs8), None, False),
        "pkcs1_der": (openssl("rsa", "-traditional", "-outform", "DER", data=pkcs8), None, False),
        "pkcs8_der": (openssl("pkcs8", "-topk8", "-nocrypt", "-outform", "DER", data=pkcs8), None, False),
    }
    enc8 = openssl("pkcs8", "-topk8", "-v2", "aes256", "-passout", "pass:pw1", data=pkcs8)
    enc1 = openssl("rsa", "-traditional", "-aes256", "-passout", "pass:pw1", data=pkcs8)
    enc8der = openssl("pkcs8", "-topk8", "-v2", "aes256", "-outform", "DER", "-passout", "pass:pw1", data=pkcs8)
    cases["enc_pkcs8_pem"] = (enc8, "pw1", True)
    cases["enc_pkcs1_pem"] = (enc1, "pw1", True)
    cases["enc_pkcs8_der"] = (enc8der, "pw1", True)
    for name, (data, password, encrypted) in cases.items():
        box = crypto.read_key_container(data, password)
        assert box.format == name.replace("enc_", ""), name
        assert box.encrypted is encrypted, name
        assert crypto.same_key(box.key, rsa_key), name


def test_read_key_container_ignores_passphrase_for_plain_key(rsa_key):
    box = crypto.read_key_container(crypto.dump_private_key(rsa_key, "pkcs8_pem"), "unused")
    assert box.encrypted is False and crypto.same_key(box.key, rsa_key)


@pytest.mark.parametrize("fmt", ["pkcs8_pem", "pkcs12"])
def test_wrong_and_missing_passphrase_messages(rsa_key, fmt):
    data = (crypto.dump_private_key(rsa_key, "pkcs8_pem", "right") if fmt == "pkcs8_pem"
            else crypto.dump_pkcs12(rsa_key, passphrase="right"))
    with pytest.raises(CryptoError, match="^privatekey_passphrase is wrong for /x/key.pem"):
        crypto.read_key_container(data, "wrong", "/x/key.pem")
    with pytest.raises(CryptoError, match="^src_passphrase is missing"):
        crypto.read_key_container(data, None, "/x/key.pem", "src_passphrase")
    assert crypto.same_key(crypto.load_private_key(data, "right"), rsa_key)


@pytest.mark.parametrize("data, message", [
    (b"", "is empty"),
    (b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", "not a readable private key"),
    (b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", "not a PEM private key"),
    (b"\x30\x03\x02\x01\x00garbage", "not a readable private key"),
    (b"hello world", "neither a PEM/DER private key nor a PKCS#12"),
])
def test_corrupt_keys_are_refused(data, message):
    with pytest.raises(CryptoError, match=message):
        crypto.read_key_container(data, None, "privatekey_path /x/key.pem")


def test_truncated_key_is_refused(rsa_key):
    data = crypto.dump_private_key(rsa_key, "pkcs8_pem")
    with pytest.raises(CryptoError, match="privatekey_path /x"):
        crypto.read_key_container(data[:300] + b"\n-----END PRIVATE KEY-----\n", None, "privatekey_path /x")


@needs_openssl
def test_load_pkcs12_from_openssl(tmp_path, rsa_key, leaf_cert, ca_cert):
    key_file = write(tmp_path, "k.pem", crypto.dump_private_key(rsa_key, "pkcs8_pem"))
    cert_file = write(tmp_path, "c.pem", pem(leaf_cert))
    chain_file = write(tmp_path, "ca.pem", pem(ca_cert))
    p12 = openssl("pkcs12", "-export", "-inkey", key_file, "-in", cert_file, "-certfile", chain_file,
                  "-name", "keyalias", "-passout", "pass:keystorepassword")
    key, cert, chain, name = crypto.load_pkcs12(p12, "keystorepassword")
    assert crypto.same_key(key, rsa_key) and cert == leaf_cert and chain == [ca_cert] and name == "keyalias"
    box = crypto.read_key_container(p12, "keystorepassword")
    assert (box.format, box.encrypted, box.pkcs12_encryption) == ("pkcs12", True, "modern")
    legacy = openssl("pkcs12", "-export", "-legacy", "-inkey", key_file, "-in", cert_file, "-passout", "pass:pw")
    assert crypto.pkcs12_encryption(legacy) == "legacy"
    nokey = openssl("pkcs12", "-export", "-nokeys", "-in", cert_file, "-passout", "pass:pw")
    with pytest.raises(CryptoError, match="without a private key"):
        crypto.load_pkcs12(nokey, "pw", "src_path /x.p12")


def test_load_pkcs12_refuses_non_pkcs12(rsa_key):
    with pytest.raises(CryptoError, match="not a PKCS#12 keystore"):
        crypto.load_pkcs12(crypto.dump_private_key(rsa_key, "pkcs8_der"), "pw", "src_path /x")


def test_load_pkcs12_damaged_is_reported(rsa_key):
    data = bytearray(crypto.dump_pkcs12(rsa_key, passphrase="pw"))
    data[-5] ^= 0xFF  # inside the MAC
    with pytest.raises(CryptoError, match="passphrase is wrong for src_path /x.p12 \\(or the PKCS#12 file is damaged\\)"):
        crypto.load_pkcs12(bytes(data), "pw", "src_path /x.p12")


# ----------------------------------------------------------- writing keys

@needs_openssl
def test_dump_private_key_formats_read_by_openssl(rsa_key):
    # `openssl pkey -outform DER` writes one canonical (traditional) DER form: the comparison point.
    reference = openssl("pkey", "-outform", "DER", data=crypto.dump_private_key(rsa_key, "pkcs8_pem"))
    pkcs1 = crypto.dump_private_key(rsa_key, "pkcs1_pem")
    assert pkcs1.startswith(b"-----BEGIN RSA PRIVATE KEY-----")
    assert b"RSA key ok" in openssl("rsa", "-check", "-noout", data=pkcs1)
    assert openssl("pkey", "-outform", "DER", data=pkcs1) == reference
    encrypted = crypto.dump_private_key(rsa_key, "pkcs8_pem", "pw")
    assert encrypted.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert openssl("pkey", "-passin", "pass:pw", "-outform", "DER", data=encrypted) == reference
    der = crypto.dump_private_key(rsa_key, "pkcs8_der")
    assert der == openssl("pkcs8", "-topk8", "-nocrypt", "-outform", "DER", data=pkcs1)  # DER is canonical
    assert openssl("pkey", "-inform", "DER", "-outform", "DER", data=der) == reference
    ec_pem = crypto.dump_private_key(crypto.generate_private_key("ec"), "pkcs1_pem")
    assert ec_pem.startswith(b"-----BEGIN EC PRIVATE KEY-----")


def test_dump_private_key_refuses(rsa_key):
    with pytest.raises(CryptoError, match="format=pkcs1_pem cannot carry a passphrase"):
        crypto.dump_private_key(rsa_key, "pkcs1_pem", "pw")
    with pytest.raises(CryptoError, match="format=jks"):
        crypto.dump_private_key(rsa_key, "jks")


@needs_openssl
@pytest.mark.parametrize("encryption, expected", [
    ("modern", [b"PBES2", b"AES-256-CBC", b"MAC: sha256"]),
    ("legacy", [b"pbeWithSHA1And3-KeyTripleDES-CBC", b"MAC: sha1"]),
])
def test_dump_pkcs12_encryption_profiles(tmp_path, rsa_key, leaf_cert, ca_cert, encryption, expected):
    data = crypto.dump_pkcs12(rsa_key, leaf_cert, [ca_cert], "pw", "keyalias", encryption)
    path = write(tmp_path, "k.p12", data)
    info = subprocess.run([OPENSSL, "pkcs12", "-info", "-in", path, "-passin", "pass:pw", "-nodes"],
                          capture_output=True, check=True)
    text = info.stdout + info.stderr
    for marker in expected + [b"friendlyName: keyalias", b"CN = Test CA"]:
        assert marker in text, marker
    assert crypto.pkcs12_encryption(data) == encryption
    key, cert, chain, name = crypto.load_pkcs12(data, "pw")
    assert crypto.same_key(key, rsa_key) and cert == leaf_cert and chain == [ca_cert] and name == "keyalias"


def test_dump_pkcs12_refuses(rsa_key, other_rsa_key, leaf_cert):
    with pytest.raises(CryptoError, match="passphrase is required"):
        crypto.dump_pkcs12(rsa_key, leaf_cert)
    with pytest.raises(CryptoError, match="does not belong to the private key"):
        crypto.dump_pkcs12(other_rsa_key, leaf_cert, passphrase="pw")
    with pytest.raises(CryptoError, match="pkcs12_encryption=weak"):
        crypto.dump_pkcs12(rsa_key, passphrase="pw", encryption="weak")


def test_pkcs12_encryption_unknown():
    assert crypto.pkcs12_encryption(b"\x30\x00") is None


# ------------------------------------------------------------ subjects

def test_normalize_subject_forms_keep_order():
    expected = [("O", "Example"), ("CN", "api"), ("OU", "A"), ("OU", "B")]
    assert crypto.normalize_subject({"organizationName": "Example", "CN": "api", "OU": ["A", "B"]}) == expected
    assert crypto.normalize_subject([{"O": "Example"}, {"commonName": "api"}, {"ou": "A"}, {"OU": "B"}]) == expected
    assert crypto.normalize_subject(["O=Example", "CN=api", "OU=A", "OU=B"]) == expected
    assert crypto.normalize_subject([("O", "Example"), ("CN", "api"), ("OU", "A"), ("OU", "B")]) == expected
    assert crypto.normalize_subject(None) == []


@pytest.mark.parametrize("subject, message", [
    ({"XX": "1"}, "subject attribute 'XX' is not supported"),
    ({"CN": " "}, "subject attribute CN is empty"),
    ({"C": "USA"}, "two-letter country code"),
    ([42], "subject entry 42 is not understood"),
    ("CN=x", "must be a dictionary or a list"),
])
def test_normalize_subject_refuses(subject, message):
    with pytest.raises(CryptoError, match=message):
        crypto.normalize_subject(subject)


def test_name_pairs_and_common_name(rsa_key):
    csr = crypto.build_csr(rsa_key, [("C", "US"), ("CN", "x"), ("emailAddress", "a@b.c")])
    assert crypto.name_pairs(csr.subject) == [("C", "US"), ("CN", "x"), ("emailAddress", "a@b.c")]
    assert crypto.common_name([("O", "o"), ("CN", "x")]) == "x"
    assert crypto.common_name([("O", "o")]) is None


# ---------------------------------------------------------------- SANs

def test_normalize_sans():
    assert crypto.normalize_sans(["dns:a.example.com", "IP:2001:db8:0::1", "email:a@b.c", "URI:https://x"]) == [
        "DNS:a.example.com", "IP:2001:db8::1", "email:a@b.c", "URI:https://x"]
    assert crypto.normalize_sans(None) == []


@pytest.mark.parametrize("entry, message", [
    ("a.example.com", "needs a type prefix"),
    ("IP:999.1.1.1", "not a valid IP address"),
    ("otherName:x", "unsupported type"),
])
def test_normalize_sans_refuses(entry, message):
    with pytest.raises(CryptoError, match=message):
        crypto.normalize_sans([entry])


# ---------------------------------------------------------------- CSRs

@needs_openssl
@pytest.mark.parametrize("key_name, signature", [("rsa_key", b"sha256WithRSAEncryption"), ("ec_key", b"ecdsa-with-SHA256")])
def test_build_csr_verified_by_openssl(request, key_name, signature):
    key = request.getfixturevalue(key_name)
    csr = crypto.build_csr(key, [{"O": "Example"}, {"CN": "api-1682563200"}, {"C": "US"}],
                           ["DNS:api.example.com", "IP:10.0.0.1"])
    data = crypto.dump_csr(csr)
    done = subprocess.run([OPENSSL, "req", "-verify", "-noout", "-text", "-nameopt", "compat"], input=data,
                          capture_output=True, check=True)
    text = done.stdout + done.stderr
    assert b"verify OK" in text or b"Certificate request self-signature verify OK" in text
    assert b"Subject: O=Example, CN=api-1682563200, C=US" in text
    assert b"DNS:api.example.com, IP Address:10.0.0.1" in text
    assert signature in text


def test_build_csr_requires_cn(rsa_key):
    with pytest.raises(CryptoError, match="needs a common name"):
        crypto.build_csr(rsa_key, {"O": "Example"})


@needs_openssl
def test_load_csr_pem_der_and_garbage(rsa_key):
    csr = crypto.build_csr(rsa_key, {"CN": "x"})
    der = openssl("req", "-outform", "DER", data=crypto.dump_csr(csr))
    assert crypto.load_csr(crypto.dump_csr(csr)) == csr
    assert crypto.load_csr(der) == csr
    with pytest.raises(CryptoError, match="csr_path /x.csr is not a readable CSR"):
        crypto.load_csr(b"-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n", "csr_path /x.csr")


def test_describe_csr(rsa_key):
    csr = crypto.build_csr(rsa_key, {"CN": "api", "O": "Example"}, ["DNS:a.example.com"])
    facts = crypto.describe_csr(csr)
    assert facts["subject"] == [["CN", "api"], ["O", "Example"]]
    assert facts["subject_string"] == "O=Example,CN=api"
    assert facts["common_name"] == "api"
    assert facts["subject_alt_name"] == ["DNS:a.example.com"]
    assert facts["signature_algorithm"] == "sha256WithRSAEncryption" and facts["signature_valid"] is True
    assert facts["public_key_fingerprint"] == crypto.public_key_fingerprint(rsa_key)
    assert facts["public_key"]["size"] == 2048


def test_csr_differences(rsa_key, other_rsa_key):
    subject = [{"CN": "api"}, {"O": "Example"}]
    csr = crypto.build_csr(rsa_key, subject, ["DNS:a.example.com"])
    assert crypto.csr_differences(csr, rsa_key, subject, ["dns:a.example.com"]) == []
    assert crypto.csr_matches(csr, rsa_key, subject, ["DNS:a.example.com"])
    assert crypto.csr_differences(csr, rsa_key, [{"O": "Example"}, {"CN": "api"}], ["DNS:a.example.com"]) == ["subject"]
    assert crypto.csr_differences(csr, rsa_key, subject, []) == ["subject_alt_name"]
    assert crypto.csr_differences(csr, other_rsa_key, subject, ["DNS:a.example.com"]) == ["public key"]
    assert crypto.key_matches_csr(rsa_key, csr) and not crypto.key_matches_csr(other_rsa_key, csr)


@needs_openssl
def test_csr_differences_flags_sha1(tmp_path, rsa_key):
    # cryptography no longer signs with SHA-1; an old CSR made by openssl must still be detected and replaced.
    key_file = write(tmp_path, "k.pem", crypto.dump_private_key(rsa_key, "pkcs8_pem"))
    sha1 = crypto.load_csr(openssl("req", "-new", "-key", key_file, "-subj", "/CN=api", "-sha1"))
    assert "signature hash" in crypto.csr_differences(sha1, rsa_key, {"CN": "api"})


# ------------------------------------------------------------ profiles

def test_check_profile_accepts(rsa_key, ec_key):
    crypto.check_profile("oauth1", rsa_key, {"CN": "example-1682563200"})
    crypto.check_profile("oauth2", ec_key, {"CN": "example"})
    crypto.check_profile("oauth2", rsa_key, {"CN": "example"})
    crypto.check_profile("mtls_sandbox", rsa_key, [{"CN": "1682563200-Client-MTF-000000"}, {"O": "Example"}])
    crypto.check_profile("mtls_sandbox", ec_key, {"CN": "myapp-1682563200-Client-MTF-123456"})
    crypto.check_profile("mtls_production", rsa_key, {"CN": "payments-client-prod"})
    crypto.check_profile("custom", ec_key, {"CN": "x"})


@pytest.mark.parametrize("profile, key_name, subject, message", [
    ("oauth1", "ec_key", {"CN": "x"}, "profile=oauth1 accepts RSA keys only .*set type=rsa"),
    ("oauth2", "p384_key", {"CN": "x"}, "profile=oauth2 accepts RSA .* or EC secp256r1"),
    ("mtls_sandbox", "rsa_key", {"CN": "a" * 50 + "-Client-MTF-000000"}, "68 characters; Mastercard allows at most 64"),
    ("mtls_sandbox", "rsa_key", {"CN": "https://example.com"}, "looks like a URL"),
    ("mtls_sandbox", "rsa_key", {"CN": "1682563200-Client-PROD-000000"}, "must look like <unique>-Client-MTF-"),
    ("mtls_sandbox", "rsa_key", {"CN": "1682563200-Client-MTF-000000", "O": "o" * 65}, "organization \\(O\\) is 65"),
    ("mtls_production", "rsa_key", {"CN": "www.example.com"}, "looks like a URL"),
    ("custom", "weak_key", {"CN": "x"}, "RSA 1024"),
    ("oauth1", "weak_key", {"CN": "x"}, "RSA 1024"),
    ("custom", "rsa_key", {"O": "x"}, "needs a common name"),
    ("nope", "rsa_key", {"CN": "x"}, "profile=nope is not known"),
])
def test_check_profile_refuses(request, profile, key_name, subject, message):
    keys = {"p384_key": lambda: crypto.generate_private_key("ec", curve="secp384r1"),
            "weak_key": lambda: rsa.generate_private_key(65537, 1024)}
    key = keys[key_name]() if key_name in keys else request.getfixturevalue(key_name)
    with pytest.raises(CryptoError, match=message):
        crypto.check_profile(profile, key, subject)


# ------------------------------------------------------------- renewal

def test_renewal_common_name_portal_example():
    assert crypto.renewal_common_name("example-1682563200", now=1682566800) == "example-1682566800"


def test_renewal_common_name_always_differs():
    assert crypto.renewal_common_name("example-1682563200", now=1682563200) == "example-1682563201"
    assert crypto.renewal_common_name("example-1682563200", now=1000) == "example-1682563201"
    assert crypto.renewal_common_name("1682563200", now=1682563200) == "1682563201"
    assert crypto.renewal_common_name("example", now=1682566800) == "example-1682566800"
    name = "example-1682563200"
    seen = {name}
    for _attempt in range(5):  # repeated renewals in the same second still produce fresh names
        name = crypto.renewal_common_name(name, now=1682563200)
        assert name not in seen
        seen.add(name)


def test_renewal_common_name_sandbox_form_and_length():
    new = crypto.renewal_common_name("1682563200-Client-MTF-000000", now=1682566800)
    assert new == "1682566800-Client-MTF-000000"
    assert crypto.SANDBOX_CN.match(new)
    long_cn = "x" * 64
    renewed = crypto.renewal_common_name(long_cn, now=1682566800)
    assert len(renewed) <= 64 and renewed.endswith("-1682566800") and renewed != long_cn
    sandbox_long = "a" * 30 + "-1682563200-Client-MTF-000000"
    assert len(crypto.renewal_common_name(sandbox_long, now=1682566800)) <= 64


def test_renewal_subject_keeps_order():
    assert crypto.renewal_subject([{"O": "Example"}, {"CN": "app-1682563200"}], now=1682566800) == [
        ("O", "Example"), ("CN", "app-1682566800")]
    with pytest.raises(CryptoError, match="common name"):
        crypto.renewal_subject({"O": "x"})


def expiring(pairs, sans=(), serial=0x5A3F0C1B9E):
    """A certificate with the subject ``pairs`` (in order) and SANs, as the KMP renewal starts from."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(x509.ObjectIdentifier(crypto.SUBJECT_OIDS[short]), value)
                      for short, value in pairs])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
               .serial_number(serial).not_valid_before(NOW - datetime.timedelta(days=360))
               .not_valid_after(NOW + datetime.timedelta(days=5)))
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(entry) for entry in sans]), critical=False)
    return builder.sign(key, hashes.SHA256())


KMP_DN = [("C", "US"), ("O", "Example Company"), ("OU", "Payments"), ("CN", "example-1682563200")]


def test_renewal_request_moves_the_cn_stamp_and_keeps_the_rest_in_order():
    cert = expiring(KMP_DN, sans=["api.example.com", "pay.example.com"])
    pairs, sans, facts = crypto.renewal_request(cert, now=datetime.datetime.fromtimestamp(1682566800, UTC))
    assert pairs == KMP_DN[:3] + [("CN", "example-1682566800")]
    assert sans == ["DNS:api.example.com", "DNS:pay.example.com"]
    assert facts == {"certificate_subject": "CN=example-1682563200,OU=Payments,O=Example Company,C=US",
                     "certificate_serial_number": "5A3F0C1B9E", "certificate_not_after": "2026-01-06T00:00:00Z",
                     "attribute": "CN", "from": "example-1682563200", "to": "example-1682566800"}


def test_renewal_request_other_attribute_given_value_and_added_attribute():
    cert = expiring(KMP_DN)
    pairs, _sans, facts = crypto.renewal_request(cert, "organizationalUnitName", now=NOW)
    assert pairs[2] == ("OU", "Payments-%d" % NOW.timestamp()) and pairs[3] == KMP_DN[3]
    assert (facts["attribute"], facts["from"]) == ("OU", "Payments")
    pairs, _sans, facts = crypto.renewal_request(cert, "CN", "example-2027")
    assert pairs[3] == ("CN", "example-2027") and facts["to"] == "example-2027"
    pairs, _sans, facts = crypto.renewal_request(cert, "L", "Purchase")
    assert pairs == KMP_DN + [("L", "Purchase")] and facts["from"] is None
    with pytest.raises(CryptoError, match="has no L .locality_name.; set renew_value"):
        crypto.renewal_request(cert, "L")


def test_renewal_request_refuses_an_unchanged_dn_with_the_duplicate_certificate_sentence():
    cert = expiring(KMP_DN)
    with pytest.raises(CryptoError) as refused:
        crypto.renewal_request(cert, "CN", " example-1682563200 ")
    assert "renew_value ' example-1682563200 ' is the expiring certificate's CN (common_name)" in str(refused.value)
    assert crypto.DUPLICATE_DN in str(refused.value)
    with pytest.raises(CryptoError, match="renew_attribute 'serialNumber' is not supported"):
        crypto.renewal_request(cert, "serialNumber")


def test_renewal_request_keeps_the_value_of_a_csr_made_for_it():
    cert = expiring(KMP_DN)
    key = ec.generate_private_key(ec.SECP256R1())
    first, _sans, _facts = crypto.renewal_request(cert, now=NOW)
    earlier = crypto.build_csr(key, first)
    later = NOW + datetime.timedelta(hours=3)
    assert crypto.renewal_request(cert, now=later, existing_csr=earlier)[0] == first
    # A CSR for something else (another DN, or the expiring DN itself) does not hold the value.
    other = crypto.build_csr(key, [("C", "US"), ("O", "Other"), ("OU", "Payments"), ("CN", "example-1")])
    same = crypto.build_csr(key, KMP_DN)
    for csr in (other, same):
        assert crypto.renewal_request(cert, now=later, existing_csr=csr)[0][3][1] == "example-%d" % later.timestamp()
    added, _sans, _facts = crypto.renewal_request(cert, "L", "Purchase")
    assert crypto.renewal_request(cert, "L", existing_csr=crypto.build_csr(key, added))[0] == added


def test_renewal_request_refuses_names_it_cannot_write_again():
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example-1682563200"),
                      x509.NameAttribute(NameOID.SERIAL_NUMBER, "42")])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(7).not_valid_before(NOW).not_valid_after(NOW + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    with pytest.raises(CryptoError, match="holds 2.5.4.5, which mc_csr cannot write; make the renewal CSR with openssl"):
        crypto.renewal_request(cert)


# -------------------------------------------------------- certificates

@needs_openssl
def test_load_certificates_pem_bundle_and_der(leaf_cert, ca_cert):
    bundle = pem(leaf_cert) + pem(ca_cert)
    assert crypto.load_certificates(bundle) == [leaf_cert, ca_cert]
    assert crypto.load_certificate(bundle) == leaf_cert
    der = openssl("x509", "-outform", "DER", data=pem(leaf_cert))
    assert crypto.load_certificate(der) == leaf_cert
    assert crypto.dump_certificates([leaf_cert, ca_cert]) == bundle
    with pytest.raises(CryptoError, match="certificate_path /c.pem is not a readable certificate"):
        crypto.load_certificate(b"garbage", "certificate_path /c.pem")


@needs_openssl
def test_certificate_info_matches_openssl(leaf_cert):
    info = crypto.certificate_info(leaf_cert, now=NOW + datetime.timedelta(days=30))
    fingerprint = openssl("x509", "-noout", "-fingerprint", "-sha256", data=pem(leaf_cert)).decode()
    assert info["fingerprint"] == fingerprint.split("=", 1)[1].strip().replace(":", "").lower()
    serial = openssl("x509", "-noout", "-serial", data=pem(leaf_cert)).decode()
    assert int(info["serial_number"], 16) == int(serial.split("=", 1)[1], 16) and info["serial_number"] == "abc"
    pub = openssl("x509", "-noout", "-pubkey", data=pem(leaf_cert))
    assert info["public_key_fingerprint"] == hashlib.sha256(openssl("pkey", "-pubin", "-outform", "DER", data=pub)).hexdigest()
    assert info["subject"] == "CN=example-1682563200" and info["issuer"] == "CN=Test CA"
    assert info["common_name"] == "example-1682563200"
    assert info["not_before"] == "2026-01-01T00:00:00Z" and info["not_after"] == "2027-01-31T00:00:00Z"
    assert info["days_left"] == 365 and info["expired"] is False and info["self_signed"] is False
    assert info["subject_alt_name"] == ["DNS:api.example.com"]
    expired = crypto.certificate_info(leaf_cert, now=NOW + datetime.timedelta(days=400))
    assert expired["expired"] is True and expired["days_left"] == -5


def test_key_matches_certificate_and_signed_by(rsa_key, other_rsa_key, leaf_cert, ca_cert):
    assert crypto.key_matches_certificate(rsa_key, leaf_cert)
    assert not crypto.key_matches_certificate(other_rsa_key, leaf_cert)
    assert crypto.certificate_signed_by(leaf_cert, ca_cert)
    assert not crypto.certificate_signed_by(ca_cert, leaf_cert)


def test_certificates_in_all_containers(rsa_key, leaf_cert, ca_cert):
    p12 = crypto.dump_pkcs12(rsa_key, leaf_cert, [ca_cert], "pw")
    assert crypto.certificates_in(p12, ["wrong", "pw"]) == [leaf_cert, ca_cert]
    assert crypto.certificates_in(pem(leaf_cert)) == [leaf_cert]
    with pytest.raises(CryptoError, match="none of the given passphrases"):
        crypto.certificates_in(p12, ["wrong"], "/x.p12")


def test_scan_certificate_files(tmp_path, rsa_key, leaf_cert, ca_cert):
    paths = [
        write(tmp_path, "a.pem", pem(leaf_cert) + pem(ca_cert)),
        write(tmp_path, "b.p12", crypto.dump_pkcs12(rsa_key, leaf_cert, None, "pw")),
        write(tmp_path, "c.txt", b"not a certificate"),
        str(tmp_path / "missing.pem"),
    ]
    results = crypto.scan_certificate_files(paths, ["pw"], now=NOW)
    assert [entry["path"] for entry in results] == paths
    assert [c["common_name"] for c in results[0]["certificates"]] == ["example-1682563200", "Test CA"]
    assert results[1]["certificates"][0]["fingerprint"] == crypto.certificate_fingerprint(leaf_cert)
    assert results[0]["error"] is None and results[1]["error"] is None
    assert "not a readable certificate" in results[2]["error"]
    assert "cannot read" in results[3]["error"] and results[3]["certificates"] == []


def test_scan_is_fast_enough_for_many_files(tmp_path, leaf_cert):
    paths = [write(tmp_path, "c%03d.pem" % i, pem(leaf_cert)) for i in range(200)]
    start = datetime.datetime.now()
    results = crypto.scan_certificate_files(paths)
    elapsed = (datetime.datetime.now() - start).total_seconds()
    assert all(entry["certificates"] for entry in results)
    assert elapsed < 2.0, "scanning 200 PEM files took %.2fs" % elapsed


def test_to_bytes_and_require():
    assert crypto._to_bytes("pw") == b"pw" and crypto._to_bytes(None) is None
    assert os.path.basename(crypto.__file__) == "crypto.py"
