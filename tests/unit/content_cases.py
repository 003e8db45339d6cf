"""Bad CSRs and certificates, built byte by byte where cryptography would refuse to build them.

Shared by the collection's content-check tests and the emulator's: both sides must refuse
the same inputs, each with its own code. The DER here is written from X.690, not from the
collection's reader, so a bug in one does not hide in the other. SHA-1 CSRs come from the
openssl CLI (cryptography will not sign with SHA-1).
"""

from __future__ import annotations

import datetime
import os
import subprocess
import tempfile
import warnings

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

UTC = datetime.timezone.utc
SHA256_WITH_RSA = "1.2.840.113549.1.1.11"
OIDS = {"CN": "2.5.4.3", "O": "2.5.4.10", "OU": "2.5.4.11", "L": "2.5.4.7", "ST": "2.5.4.8"}
UTF8, PRINTABLE, IA5, NUMERIC, BMP, UNIVERSAL = 0x0C, 0x13, 0x16, 0x12, 0x1E, 0x1C


def der(tag, content):
    """One DER element: tag, definite length, content."""
    length = len(content)
    if length < 0x80:
        header = bytes([length])
    else:
        octets = length.to_bytes((length.bit_length() + 7) // 8, "big")
        header = bytes([0x80 | len(octets)]) + octets
    return bytes([tag]) + header + content


def oid(dotted):
    arcs = [int(part) for part in dotted.split(".")]
    body = bytes([40 * arcs[0] + arcs[1]])
    for arc in arcs[2:]:
        chunk = [arc & 0x7F]
        rest = arc >> 7
        while rest:
            chunk.insert(0, 0x80 | (rest & 0x7F))
            rest >>= 7
        body += bytes(chunk)
    return der(0x06, body)


def name(*attributes):
    """A Name from (short name, ASN.1 tag, raw value bytes) triples, one RDN each."""
    return der(0x30, b"".join(der(0x31, der(0x30, oid(OIDS[short]) + der(tag, raw))) for short, tag, raw in attributes))


def csr_der(key, subject_der):
    """A PKCS#10 request with this exact subject, signed sha256WithRSAEncryption by ``key``."""
    spki = key.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    info = der(0x30, der(0x02, b"\x00") + subject_der + spki + der(0xA0, b""))
    signature = key.sign(info, padding.PKCS1v15(), hashes.SHA256())
    algorithm = der(0x30, oid(SHA256_WITH_RSA) + der(0x05, b""))
    return der(0x30, info + algorithm + der(0x03, b"\x00" + signature))


def pem(der_bytes, label="CERTIFICATE REQUEST"):
    import base64  # pylint: disable=import-outside-toplevel
    body = base64.encodebytes(der_bytes).decode("ascii").replace("\n", "")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    return "-----BEGIN %s-----\n%s\n-----END %s-----\n" % (label, "\n".join(lines), label)


# (case id, attribute, tag, raw value bytes, what the refusal must name)
BAD_SUBJECTS = []
for _attribute in ("CN", "O", "OU", "L", "ST"):
    for _char, _label in (("\x1b", "U+001B"), ("\x07", "U+0007"), ("\n", "U+000A"), ("\x00", "U+0000"),
                          ("\x7f", "U+007F"), ("\x85", "U+0085"), ("\u202e", "U+202E"), ("\u200b", "U+200B")):
        BAD_SUBJECTS.append(("%s-utf8-%s" % (_attribute, _label), _attribute, UTF8,
                             ("pay" + _char + "ments").encode("utf-8"), _label))
    BAD_SUBJECTS.append(("%s-bmp-esc" % _attribute, _attribute, BMP, "pay\x1bments".encode("utf-16-be"), "U+001B"))
for _raw, _what in ((b"pay\xffments", "UTF-8"), (b"pay\xc3", "UTF-8"), (b"\xc0\x80pay", "UTF-8"),
                    (b"\xed\xa0\x80pay", "UTF-8")):
    BAD_SUBJECTS.append(("CN-utf8-invalid-%s" % _raw.hex(), "CN", UTF8, _raw, _what))
for _char in "@*_&!":
    BAD_SUBJECTS.append(("CN-printable-%02x" % ord(_char), "CN", PRINTABLE, ("pay" + _char).encode("ascii"),
                         "U+%04X" % ord(_char)))
BAD_SUBJECTS += [
    ("O-printable-control", "O", PRINTABLE, b"pay\x1b", "U+001B"),
    ("CN-ia5-high-byte", "CN", IA5, b"caf\xe9", "ASCII"),
    ("CN-numeric-letter", "CN", NUMERIC, b"12a4", "U+0061"),
    ("CN-bmp-odd-length", "CN", BMP, b"\x00p\x00", "UTF-16"),
    ("CN-bmp-lone-surrogate", "CN", BMP, b"\xd8\x00\x00a", "UTF-16"),
    ("CN-universal-bad-length", "CN", UNIVERSAL, b"\x00\x00\x00p\x00", "UTF-32"),
    ("CN-integer-value", "CN", 0x02, b"\x01", "not a text value"),
    ("CN-octet-string-value", "CN", 0x04, b"payments", "not a text value"),
]


def bad_subject_csr(key, case):
    _case_id, attribute, tag, raw, _expect = case
    if attribute == "CN":
        subject = name((attribute, tag, raw))
    else:
        subject = name(("CN", UTF8, b"payments-1"), (attribute, tag, raw))
    return pem(csr_der(key, subject))


def openssl_csr(key, digest, common_name="payments-1"):
    """A CSR made and signed by the openssl CLI (SHA-1 included), PEM text."""
    with tempfile.TemporaryDirectory() as directory:
        key_path = os.path.join(directory, "key.pem")
        with open(key_path, "wb") as handle:
            handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
        done = subprocess.run(["openssl", "req", "-new", "-key", key_path, "-" + digest, "-subj", "/CN=" + common_name],
                              capture_output=True, check=True)
        return done.stdout.decode("ascii")


def openssl_verifies(csr_pem):
    done = subprocess.run(["openssl", "req", "-verify", "-noout"], input=csr_pem.encode("ascii"), capture_output=True,
                          check=False)
    # openssl 3 exits 0 on a failed self-signature check too; its verdict is the "verify OK" line.
    return done.returncode == 0 and b"verify OK" in done.stdout + done.stderr


def signed_csr(key, common_name="payments-1", algorithm=None, pss=False):
    with warnings.catch_warnings():  # _validate=False: a test may build the over-long CN the checks must refuse
        warnings.simplefilter("ignore", UserWarning)
        attribute = x509.NameAttribute(NameOID.COMMON_NAME, common_name, _validate=False)
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([attribute]))
    if isinstance(key, rsa.RSAPrivateKey) and pss:
        csr = builder.sign(key, algorithm or hashes.SHA256(),
                           rsa_padding=padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=32))
    else:
        # Ed25519 signs without a separate hash; RSA and EC default to SHA-256.
        default = None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
        csr = builder.sign(key, algorithm or default)
    return csr.public_bytes(serialization.Encoding.PEM).decode("ascii")


def certificate(key, common_name, issuer_key=None, issuer_name=None, ca=False, key_usage=None, extended=None,
                days=30, start_days=-1):
    """A certificate for ``key``; self-signed unless an issuer is given. key_usage: a dict of KeyUsage flags."""
    now = datetime.datetime.now(UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name or subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now + datetime.timedelta(days=start_days))
               .not_valid_after(now + datetime.timedelta(days=days)))
    if ca:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    if key_usage is not None:
        flags = dict(digital_signature=False, content_commitment=False, key_encipherment=False,
                     data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                     encipher_only=False, decipher_only=False)
        flags.update(key_usage)
        builder = builder.add_extension(x509.KeyUsage(**flags), critical=True)
    if extended is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(extended), critical=False)
    return builder.sign(issuer_key or key, hashes.SHA256())


# (case id, certificate options, what the refusal must say); each is issued by a CA
UNFIT_FOR_CLIENT = [
    ("server-auth-only", dict(extended=[ExtendedKeyUsageOID.SERVER_AUTH]), "without clientAuth"),
    ("code-signing-and-email", dict(extended=[ExtendedKeyUsageOID.CODE_SIGNING, ExtendedKeyUsageOID.EMAIL_PROTECTION]),
     "without clientAuth"),
    ("key-encipherment-only", dict(key_usage={"key_encipherment": True}), "digitalSignature"),
    ("cert-sign-only", dict(key_usage={"key_cert_sign": True}), "digitalSignature"),
    ("ca-certificate", dict(ca=True), "CA certificate"),
]
FIT_FOR_CLIENT = [
    ("no-extensions", {}),
    ("client-auth", dict(extended=[ExtendedKeyUsageOID.CLIENT_AUTH], key_usage={"digital_signature": True})),
    ("client-and-server", dict(extended=[ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])),
    ("any-usage", dict(extended=[ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE])),
]


def chain_of_three():
    """(leaf, intermediate, root) certificates and the leaf's key: root -> intermediate -> leaf."""
    root_key, mid_key, leaf_key = (ec.generate_private_key(ec.SECP256R1()) for _unused in range(3))
    root = certificate(root_key, "Test Root CA", ca=True, days=3650)
    mid = certificate(mid_key, "Test Issuing CA", issuer_key=root_key, issuer_name=root.subject, ca=True, days=1000)
    leaf = certificate(leaf_key, "1700000000-Client-MTF-000000", issuer_key=mid_key, issuer_name=mid.subject)
    return leaf, mid, root, leaf_key


def pem_chain(*certificates):
    return "".join(c.public_bytes(serialization.Encoding.PEM).decode("ascii") for c in certificates)
