# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys, CSRs, certificates and keystores for Mastercard credentials.

Plain Python over ``cryptography``: bytes in, objects or bytes out. Nothing
here knows about AnsibleModule; every refusal is a ``CryptoError`` whose
message says what to change.
"""

from __future__ import annotations

import datetime
import hashlib
import ipaddress
import re
import time
from dataclasses import dataclass, field

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtensionOID, ObjectIdentifier

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as import_error:  # the module reports it with missing_required_lib
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = import_error


class CryptoError(Exception):
    """A key, CSR, certificate or keystore problem, phrased as what to change."""


RSA_SIZES = (2048, 3072, 4096)
MIN_RSA_SIZE = 2048
EC_CURVES = ("secp256r1", "secp384r1")
KEY_FORMATS = ("pkcs1_pem", "pkcs8_pem", "pkcs8_der")
KEYSTORE_FORMATS = ("pkcs12",) + KEY_FORMATS
PKCS12_ENCRYPTIONS = ("modern", "legacy")
PROFILES = ("custom", "oauth1", "oauth2", "mtls_sandbox", "mtls_production")

# Short name -> dotted OID. Dotted strings keep this table importable
# without cryptography (sanity's import test runs without it).
SUBJECT_OIDS = {
    "CN": "2.5.4.3",
    "O": "2.5.4.10",
    "OU": "2.5.4.11",
    "L": "2.5.4.7",
    "ST": "2.5.4.8",
    "C": "2.5.4.6",
    "emailAddress": "1.2.840.113549.1.9.1",
}
_SUBJECT_ALIASES = {
    "cn": "CN", "commonname": "CN", "common_name": "CN",
    "o": "O", "organizationname": "O", "organization_name": "O",
    "ou": "OU", "organizationalunitname": "OU", "organizational_unit_name": "OU",
    "l": "L", "localityname": "L", "locality_name": "L",
    "st": "ST", "stateorprovincename": "ST", "state_or_province_name": "ST",
    "c": "C", "countryname": "C", "country_name": "C",
    "emailaddress": "emailAddress", "email_address": "emailAddress", "email": "emailAddress",
}
_SHORT_NAME_BY_OID = {oid: short for short, oid in SUBJECT_OIDS.items()}

# Mastercard sandbox mTLS CN: <unique>-Client-MTF-<company id or 000000>.
SANDBOX_CN = re.compile(r"^(?P<unique>[A-Za-z0-9][A-Za-z0-9._-]*)-Client-(?P<env>MTF)-(?P<cid>[0-9]{6,})$")
MAX_CN_LENGTH = 64
_URL_LIKE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://|^www\.|/")
# A trailing epoch-seconds suffix, as in the portal's renewal example name-1682563200.
_EPOCH_SUFFIX = re.compile(r"^(?:(?P<base>.*)-)?(?P<epoch>[0-9]{9,11})$")

# PKCS#12 encryption OIDs (DER content bytes), used to tell a legacy keystore
# from a modern one: cryptography loads both but does not report which it read.
_OID_PBE_SHA1_3DES = bytes.fromhex("2a864886f70d010c0103")
_OID_PBES2 = bytes.fromhex("2a864886f70d01050d")


def _require_cryptography():
    if not HAS_CRYPTOGRAPHY:
        raise CryptoError("the Python library 'cryptography' is required on the managed host: %s" % CRYPTOGRAPHY_IMPORT_ERROR)


def _to_bytes(value):
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8")


# --------------------------------------------------------------------------- keys

def generate_private_key(key_type="rsa", size=2048, curve="secp256r1"):
    """A new RSA (2048/3072/4096) or EC (P-256/P-384) private key."""
    _require_cryptography()
    if key_type == "rsa":
        if size not in RSA_SIZES:
            raise CryptoError("size=%s is not allowed for RSA keys; use one of %s" % (size, ", ".join(map(str, RSA_SIZES))))
        return rsa.generate_private_key(public_exponent=65537, key_size=size)
    if key_type == "ec":
        if curve not in EC_CURVES:
            raise CryptoError("curve=%s is not allowed; use one of %s" % (curve, ", ".join(EC_CURVES)))
        return ec.generate_private_key(ec.SECP256R1() if curve == "secp256r1" else ec.SECP384R1())
    raise CryptoError("type=%s is not supported; use rsa or ec" % key_type)


def describe_key(key):
    """Non-secret facts about a private or public key: type, size, curve, fingerprint."""
    public = key.public_key() if hasattr(key, "private_bytes") else key
    if isinstance(public, rsa.RSAPublicKey):
        facts = {"type": "rsa", "size": public.key_size, "curve": None}
    elif isinstance(public, ec.EllipticCurvePublicKey):
        facts = {"type": "ec", "size": public.curve.key_size, "curve": public.curve.name}
    else:
        facts = {"type": type(public).__name__, "size": None, "curve": None}
    facts["public_key_fingerprint"] = public_key_fingerprint(public)
    return facts


def key_spec_difference(key, key_type, size=None, curve=None):
    """Why ``key`` is not a key of the asked type/size/curve, or None when it is."""
    facts = describe_key(key)
    if facts["type"] != key_type:
        return "the key is %s, but type=%s" % (_key_label(facts), key_type)
    if key_type == "rsa" and size is not None and facts["size"] != size:
        return "the key is %s, but size=%s" % (_key_label(facts), size)
    if key_type == "ec" and curve is not None and facts["curve"] != curve:
        return "the key is %s, but curve=%s" % (_key_label(facts), curve)
    return None


def _key_label(facts):
    if facts["type"] == "rsa":
        return "RSA %s" % facts["size"]
    if facts["type"] == "ec":
        return "EC %s" % facts["curve"]
    return facts["type"]


def check_key_strength(key, source="the key"):
    """Refuse what no Mastercard credential accepts: RSA below 2048 bits, other curves or key types."""
    facts = describe_key(key)
    if facts["type"] == "rsa" and facts["size"] < MIN_RSA_SIZE:
        raise CryptoError("%s is RSA %s; Mastercard credentials need RSA of at least %s bits (use size=2048 or larger)"
                          % (source, facts["size"], MIN_RSA_SIZE))
    if facts["type"] == "ec" and facts["curve"] not in EC_CURVES:
        raise CryptoError("%s uses curve %s; use one of %s" % (source, facts["curve"], ", ".join(EC_CURVES)))
    if facts["type"] not in ("rsa", "ec"):
        raise CryptoError("%s is a %s key; use an RSA or EC key" % (source, facts["type"]))


def public_key_fingerprint(obj):
    """Lowercase hex SHA-256 of the DER SubjectPublicKeyInfo of a key, certificate or CSR."""
    public = obj.public_key() if hasattr(obj, "public_key") else obj
    der = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def same_key(first, second):
    """Whether two keys (private or public, or certificates/CSRs) hold the same key pair."""
    return public_key_fingerprint(first) == public_key_fingerprint(second)


# ------------------------------------------------------------- reading key files

@dataclass
class KeyContainer:
    """What a key file holds, with how it is stored (never the passphrase)."""

    key: object
    format: str  # pkcs1_pem | pkcs8_pem | pkcs8_der | pkcs1_der | pkcs12
    encrypted: bool
    certificate: object = None
    chain: list = field(default_factory=list)
    friendly_name: str = None
    pkcs12_encryption: str = None  # modern | legacy | None


def _der_child_tags(data, count=3):
    """Tags of the first elements inside a DER SEQUENCE (enough to tell key containers apart)."""
    def read_length(pos):
        first = data[pos]
        if first < 0x80:
            return first, pos + 1
        octets = first & 0x7F
        return int.from_bytes(data[pos + 1:pos + 1 + octets], "big"), pos + 1 + octets

    tags = []
    try:
        if data[0] != 0x30:
            return tags
        pos = read_length(1)[1]
        while len(tags) < count and pos < len(data):
            tags.append(data[pos])
            length, pos = read_length(pos + 1)
            pos += length
    except IndexError:
        pass
    return tags


def _looks_like_pkcs12(data):
    # PFX: SEQUENCE { INTEGER 3, ContentInfo SEQUENCE, MacData SEQUENCE }
    return data[:1] == b"\x30" and _der_child_tags(data) == [0x02, 0x30, 0x30]


def pkcs12_encryption(data):
    """'legacy' (PBE-SHA1-3DES) or 'modern' (PBES2) for PKCS#12 bytes; None when neither is seen."""
    if _OID_PBES2 in data:
        return "modern"
    if _OID_PBE_SHA1_3DES in data:
        return "legacy"
    return None


def read_key_container(data, passphrase=None, source="the key file", passphrase_option="privatekey_passphrase"):
    """Load a private key from PEM (PKCS#1, PKCS#8, encrypted or not), DER or PKCS#12.

    A passphrase given for an unencrypted key is ignored here; the container
    reports ``encrypted=False`` so the caller can decide whether that matters.
    """
    _require_cryptography()
    data = _to_bytes(data) or b""
    password = _to_bytes(passphrase) or None
    if not data.strip():
        raise CryptoError("%s is empty; it should hold a private key" % source)
    if data.lstrip().startswith(b"-----BEGIN"):
        return _read_pem_key(data, password, source, passphrase_option)
    if _looks_like_pkcs12(data):
        return _read_pkcs12(data, password, source, passphrase_option)
    return _read_der_key(data, password, source, passphrase_option)


def _read_pem_key(data, password, source, passphrase_option):
    if b"-----BEGIN RSA PRIVATE KEY" in data or b"-----BEGIN EC PRIVATE KEY" in data:
        fmt, encrypted = "pkcs1_pem", b"Proc-Type: 4,ENCRYPTED" in data
    elif b"-----BEGIN ENCRYPTED PRIVATE KEY" in data:
        fmt, encrypted = "pkcs8_pem", True
    elif b"-----BEGIN PRIVATE KEY" in data:
        fmt, encrypted = "pkcs8_pem", False
    else:
        raise CryptoError("%s is not a PEM private key (no BEGIN ... PRIVATE KEY block); point the option at the key file"
                          % source)
    key = _load_key(serialization.load_pem_private_key, data, password, encrypted, source, passphrase_option)
    return KeyContainer(key=key, format=fmt, encrypted=encrypted)


def _read_der_key(data, password, source, passphrase_option):
    tags = _der_child_tags(data, 2)
    encrypted = tags[:1] == [0x30]  # EncryptedPrivateKeyInfo starts with an AlgorithmIdentifier
    if tags == [0x02, 0x30] or encrypted:
        fmt = "pkcs8_der"
    elif tags[:1] == [0x02]:
        fmt = "pkcs1_der"
    else:
        raise CryptoError("%s is neither a PEM/DER private key nor a PKCS#12 keystore; check the file" % source)
    key = _load_key(serialization.load_der_private_key, data, password, encrypted, source, passphrase_option)
    return KeyContainer(key=key, format=fmt, encrypted=encrypted)


def _load_key(loader, data, password, encrypted, source, passphrase_option):
    if encrypted and not password:
        raise CryptoError("%s is missing: %s is encrypted" % (passphrase_option, source))
    try:
        return loader(data, password if encrypted else None)
    except ValueError as exc:
        if encrypted:
            raise CryptoError("%s is wrong for %s: the key could not be decrypted with it" % (passphrase_option, source)) from exc
        raise CryptoError("%s is not a readable private key (corrupt or truncated); replace the file" % source) from exc
    except (TypeError, UnsupportedAlgorithm) as exc:
        raise CryptoError("%s could not be read as a private key (%s); replace the file" % (source, exc)) from exc


def _read_pkcs12(data, password, source, passphrase_option):
    try:
        bundle = pkcs12.load_pkcs12(data, password)
    except ValueError as exc:
        if not password:
            raise CryptoError("%s is missing: %s is a PKCS#12 keystore protected by a password"
                              % (passphrase_option, source)) from exc
        raise CryptoError("%s is wrong for %s (or the PKCS#12 file is damaged)" % (passphrase_option, source)) from exc
    if bundle.key is None:
        raise CryptoError("%s is a PKCS#12 keystore without a private key; use the keystore that holds the key" % source)
    cert = bundle.cert.certificate if bundle.cert else None
    name = bundle.cert.friendly_name if bundle.cert else None
    return KeyContainer(
        key=bundle.key, format="pkcs12", encrypted=True, certificate=cert,
        chain=[extra.certificate for extra in bundle.additional_certs],
        friendly_name=name.decode("utf-8", "replace") if name else None,
        pkcs12_encryption=pkcs12_encryption(data),
    )


def load_private_key(data, passphrase=None, source="the key file", passphrase_option="privatekey_passphrase"):
    """The private key from PEM, DER or PKCS#12 bytes (see read_key_container)."""
    return read_key_container(data, passphrase, source, passphrase_option).key


def load_pkcs12(data, passphrase, source="the keystore", passphrase_option="passphrase"):
    """(key, certificate, chain, friendly_name) from PKCS#12 bytes."""
    _require_cryptography()
    data = _to_bytes(data) or b""
    if not _looks_like_pkcs12(data):
        raise CryptoError("%s is not a PKCS#12 keystore (.p12/.pfx); check the path" % source)
    box = _read_pkcs12(data, _to_bytes(passphrase) or None, source, passphrase_option)
    return box.key, box.certificate, box.chain, box.friendly_name


# ----------------------------------------------------------------- writing keys

def dump_private_key(key, fmt="pkcs8_pem", passphrase=None):
    """Private key bytes in pkcs1_pem, pkcs8_pem (plain or encrypted) or pkcs8_der."""
    _require_cryptography()
    if passphrase and fmt != "pkcs8_pem":
        raise CryptoError("format=%s cannot carry a passphrase; use format=pkcs8_pem or pkcs12, or drop the passphrase" % fmt)
    encryption = (serialization.BestAvailableEncryption(_to_bytes(passphrase)) if passphrase
                  else serialization.NoEncryption())
    if fmt == "pkcs1_pem":
        # PKCS#1 for RSA; the traditional (SEC1) form for EC, which is what openssl writes too.
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, encryption)
    if fmt == "pkcs8_pem":
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption)
    if fmt == "pkcs8_der":
        return key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8, encryption)
    raise CryptoError("format=%s is not a key format; use one of %s" % (fmt, ", ".join(KEY_FORMATS)))


def dump_pkcs12(key, certificate=None, chain=None, passphrase=None, friendly_name=None, encryption="modern"):
    """PKCS#12 bytes. ``legacy`` is PBE-SHA1-3DES with a SHA-1 MAC, which Java 8 and old Windows read."""
    _require_cryptography()
    if not passphrase:
        raise CryptoError("a passphrase is required for format=pkcs12; Mastercard's loaders expect a password-protected keystore")
    password = _to_bytes(passphrase)
    if encryption == "modern":
        algorithm = serialization.BestAvailableEncryption(password)
    elif encryption == "legacy":
        algorithm = (serialization.PrivateFormat.PKCS12.encryption_builder()
                     .kdf_rounds(2048)
                     .key_cert_algorithm(pkcs12.PBES.PBESv1SHA1And3KeyTripleDESCBC)
                     .hmac_hash(hashes.SHA1())  # nosec - the legacy profile exists for readers that know only SHA-1
                     .build(password))
    else:
        raise CryptoError("pkcs12_encryption=%s is not supported; use modern or legacy" % encryption)
    if certificate is not None and not same_key(key, certificate):
        raise CryptoError("the certificate does not belong to the private key (public key fingerprints differ); "
                          "point the certificate option at the certificate issued for this key")
    return pkcs12.serialize_key_and_certificates(
        _to_bytes(friendly_name) if friendly_name else None, key, certificate, list(chain or []) or None, algorithm)


# ---------------------------------------------------------------------- subjects

def normalize_subject(subject):
    """An ordered list of (short name, value) from a dict, a list of one-key dicts or a list of 'K=V' strings."""
    if not subject:
        return []
    pairs = []
    if isinstance(subject, dict):
        items = list(subject.items())
    elif isinstance(subject, (list, tuple)):
        items = []
        for entry in subject:
            if isinstance(entry, dict):
                items.extend(entry.items())
            elif isinstance(entry, str) and "=" in entry:
                items.append(tuple(entry.split("=", 1)))
            elif isinstance(entry, (list, tuple)) and len(entry) == 2:
                items.append(tuple(entry))
            else:
                raise CryptoError("subject entry %r is not understood; use {'CN': 'name'} or 'CN=name'" % (entry,))
    else:
        raise CryptoError("subject must be a dictionary or a list of {name: value} entries")
    for name, value in items:
        short = _SUBJECT_ALIASES.get(str(name).strip().lower())
        if short is None:
            raise CryptoError("subject attribute %r is not supported; use one of %s" % (name, ", ".join(SUBJECT_OIDS)))
        for one in value if isinstance(value, (list, tuple)) else [value]:
            text = "" if one is None else str(one).strip()
            if not text:
                raise CryptoError("subject attribute %s is empty; give it a value or leave it out" % short)
            if short == "C" and not re.match(r"^[A-Za-z]{2}$", text):
                raise CryptoError("subject C=%r must be a two-letter country code such as US or BE" % text)
            pairs.append((short, text))
    return pairs


def _x509_name(pairs):
    attributes = []
    for short, value in pairs:
        try:
            attributes.append(x509.NameAttribute(ObjectIdentifier(SUBJECT_OIDS[short]), value))
        except ValueError as exc:
            label = "CN (common_name)" if short == "CN" else short
            raise CryptoError("subject %s of %d characters is not valid: %s" % (label, len(value), exc))
    return x509.Name(attributes)


def name_pairs(name):
    """[(short name, value)] of an x509.Name in encoding order."""
    return [(_SHORT_NAME_BY_OID.get(attr.oid.dotted_string, attr.oid.dotted_string), attr.value) for attr in name]


def common_name(pairs):
    values = [value for short, value in pairs if short == "CN"]
    return values[0] if values else None


# -------------------------------------------------------------------------- SANs

def normalize_sans(sans):
    """Canonical 'DNS:x', 'IP:a.b.c.d', 'email:x', 'URI:x' strings, in the given order."""
    result = []
    for entry in sans or []:
        kind, sep, value = str(entry).partition(":")
        value = value.strip()
        kind_key = kind.strip().lower()
        if not sep or not value:
            raise CryptoError("subject_alt_name entry %r needs a type prefix, e.g. DNS:api.example.com or IP:10.0.0.1" % entry)
        if kind_key == "dns":
            result.append("DNS:" + value)
        elif kind_key in ("ip", "ip address"):
            try:
                result.append("IP:" + str(ipaddress.ip_address(value)))
            except ValueError:
                raise CryptoError("subject_alt_name entry %r is not a valid IP address" % entry) from None
        elif kind_key == "email":
            result.append("email:" + value)
        elif kind_key == "uri":
            result.append("URI:" + value)
        else:
            raise CryptoError("subject_alt_name entry %r has an unsupported type; use DNS:, IP:, email: or URI:" % entry)
    return result


def _general_names(sans):
    names = []
    for entry in sans:
        kind, value = entry.split(":", 1)
        if kind == "DNS":
            names.append(x509.DNSName(value))
        elif kind == "IP":
            names.append(x509.IPAddress(ipaddress.ip_address(value)))
        elif kind == "email":
            names.append(x509.RFC822Name(value))
        else:
            names.append(x509.UniformResourceIdentifier(value))
    return names


def _sans_of(obj):
    try:
        ext = obj.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
    except x509.ExtensionNotFound:
        return []
    result = []
    for name in ext:
        if isinstance(name, x509.DNSName):
            result.append("DNS:" + name.value)
        elif isinstance(name, x509.IPAddress):
            result.append("IP:" + str(name.value))
        elif isinstance(name, x509.RFC822Name):
            result.append("email:" + name.value)
        elif isinstance(name, x509.UniformResourceIdentifier):
            result.append("URI:" + name.value)
        else:
            result.append("%s:%s" % (type(name).__name__, name.value))
    return result


# -------------------------------------------------------------------------- CSRs

def build_csr(key, subject, subject_alt_name=None):
    """A PKCS#10 CSR signed with SHA-256; subject attributes keep the given order."""
    _require_cryptography()
    pairs = normalize_subject(subject)
    if not common_name(pairs):
        raise CryptoError("the subject needs a common name; set common_name or subject.CN")
    builder = x509.CertificateSigningRequestBuilder().subject_name(_x509_name(pairs))
    sans = normalize_sans(subject_alt_name)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(_general_names(sans)), critical=False)
    try:
        return builder.sign(key, hashes.SHA256())
    except ValueError as exc:
        raise CryptoError("the CSR could not be built: %s" % exc) from exc


def load_csr(data, source="the CSR file"):
    """A CSR from PEM or DER bytes."""
    _require_cryptography()
    data = _to_bytes(data) or b""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise CryptoError("%s is not a readable CSR (PEM or DER PKCS#10); replace or remove it" % source) from exc


def dump_csr(csr):
    return csr.public_bytes(serialization.Encoding.PEM)


def describe_csr(csr):
    """Non-secret facts about a CSR."""
    pairs = name_pairs(csr.subject)
    return {
        "subject": [list(pair) for pair in pairs],
        "subject_string": csr.subject.rfc4514_string(),
        "common_name": common_name(pairs),
        "subject_alt_name": _sans_of(csr),
        "signature_algorithm": _signature_name(csr),
        "signature_valid": csr.is_signature_valid,
        "public_key": describe_key(csr.public_key()),
        "public_key_fingerprint": public_key_fingerprint(csr),
    }


def _signature_name(obj):
    return getattr(obj.signature_algorithm_oid, "_name", obj.signature_algorithm_oid.dotted_string)


def csr_differences(csr, key, subject, subject_alt_name=None):
    """What differs between an existing CSR and the one asked for (empty when it can be kept)."""
    reasons = []
    if not csr.is_signature_valid:
        reasons.append("signature")
    if not same_key(csr, key):
        reasons.append("public key")
    if name_pairs(csr.subject) != normalize_subject(subject):
        reasons.append("subject")
    if _sans_of(csr) != normalize_sans(subject_alt_name):
        reasons.append("subject_alt_name")
    if not isinstance(csr.signature_hash_algorithm, hashes.SHA256):
        reasons.append("signature hash")
    return reasons


def csr_matches(csr, key, subject, subject_alt_name=None):
    return not csr_differences(csr, key, subject, subject_alt_name)


def key_matches_csr(key, csr):
    return same_key(key, csr)


# ---------------------------------------------------------------------- profiles

def check_profile(profile, key, subject, subject_alt_name=None):
    """Refuse a key/subject that Mastercard would reject for this credential profile.

    Run before anything is written or sent.
    """
    if profile not in PROFILES:
        raise CryptoError("profile=%s is not known; use one of %s" % (profile, ", ".join(PROFILES)))
    check_key_strength(key)
    pairs = normalize_subject(subject)
    normalize_sans(subject_alt_name)
    cn = common_name(pairs)
    if not cn:
        raise CryptoError("the subject needs a common name (CN); set common_name or subject.CN")
    facts = describe_key(key)
    if profile == "oauth1" and facts["type"] != "rsa":
        raise CryptoError("profile=oauth1 accepts RSA keys only (the key is %s); set type=rsa" % _key_label(facts))
    if profile == "oauth2" and not (facts["type"] == "rsa" or facts["curve"] == "secp256r1"):
        raise CryptoError("profile=oauth2 accepts RSA (2048 bits or more) or EC secp256r1 keys (the key is %s); "
                          "set type=rsa or curve=secp256r1" % _key_label(facts))
    if profile in ("mtls_sandbox", "mtls_production"):
        _check_mtls_names(profile, cn, pairs)


def _check_mtls_names(profile, cn, pairs):
    if len(cn) > MAX_CN_LENGTH:
        raise CryptoError("profile=%s: the common name is %s characters; Mastercard allows at most %s"
                          % (profile, len(cn), MAX_CN_LENGTH))
    if _URL_LIKE.search(cn):
        raise CryptoError("profile=%s: the common name %r looks like a URL or path; use a plain name" % (profile, cn))
    for short, value in pairs:
        if short == "O" and len(value) > MAX_CN_LENGTH:
            raise CryptoError("profile=%s: organization (O) is %s characters; Mastercard allows at most %s"
                              % (profile, len(value), MAX_CN_LENGTH))
    if profile == "mtls_sandbox" and not SANDBOX_CN.match(cn):
        raise CryptoError("profile=mtls_sandbox: the common name %r must look like <unique>-Client-MTF-<company id "
                          "or 000000>, e.g. %s-Client-MTF-000000" % (cn, int(time.time())))


# ----------------------------------------------------------------------- renewal

def renewal_common_name(old_cn, now=None):
    """A CN for the replacement of a certificate whose CN is ``old_cn``; always different from it.

    The portal asks for a new DN when renewing and suggests an epoch suffix
    (example-1682563200 -> example-1682566800). The sandbox form
    <unique>-Client-MTF-<cid> renews its <unique> part.
    """
    sandbox = SANDBOX_CN.match(old_cn)
    if sandbox:
        tail = "-Client-%s-%s" % (sandbox.group("env"), sandbox.group("cid"))
        unique = _renew_epoch_suffix(sandbox.group("unique"), now, MAX_CN_LENGTH - len(tail))
        return unique + tail
    return _renew_epoch_suffix(old_cn, now, MAX_CN_LENGTH)


def _renew_epoch_suffix(name, now, max_length):
    epoch = int(time.time() if now is None else now)
    match = _EPOCH_SUFFIX.match(name)
    base = name
    if match:
        base = match.group("base") or ""
        # Within the same second (or with a clock behind the old name), step past the old value.
        epoch = max(epoch, int(match.group("epoch")) + 1)
    suffix = str(epoch)
    if not base:
        return suffix
    base = base[:max(1, max_length - len(suffix) - 1)]
    return "%s-%s" % (base, suffix)


def renewal_subject(subject, now=None):
    """The subject with its CN replaced by renewal_common_name(CN); other attributes keep order."""
    pairs = normalize_subject(subject)
    cn = common_name(pairs)
    if not cn:
        raise CryptoError("the subject needs a common name (CN) to derive a renewal name")
    new_cn = renewal_common_name(cn, now)
    return [(short, new_cn if short == "CN" else value) for short, value in pairs]


# ------------------------------------------------------------------ certificates

def load_certificates(data, source="the certificate file"):
    """All certificates in PEM (one or more) or DER bytes."""
    _require_cryptography()
    data = _to_bytes(data) or b""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_certificates(data)
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise CryptoError("%s is not a readable certificate (PEM or DER X.509); check the file" % source) from exc


def load_certificate(data, source="the certificate file"):
    """The first certificate in PEM or DER bytes."""
    return load_certificates(data, source)[0]


def dump_certificates(certificates):
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def certificate_fingerprint(cert):
    """Lowercase hex SHA-256 of the DER certificate."""
    return cert.fingerprint(hashes.SHA256()).hex()


def _iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def certificate_info(cert, now=None):
    """Non-secret facts about a certificate (formats as in docs/dev/contracts.md)."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    pairs = name_pairs(cert.subject)
    return {
        "subject": cert.subject.rfc4514_string(),
        "common_name": common_name(pairs),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": format(cert.serial_number, "x"),
        "not_before": _iso(not_before),
        "not_after": _iso(not_after),
        "days_left": (not_after - now).days,
        "expired": not_after <= now,
        "fingerprint": certificate_fingerprint(cert),
        "public_key_fingerprint": public_key_fingerprint(cert),
        "public_key": describe_key(cert.public_key()),
        "subject_alt_name": _sans_of(cert),
        "signature_algorithm": _signature_name(cert),
        "self_signed": cert.issuer == cert.subject,
    }


def key_matches_certificate(key, cert):
    return same_key(key, cert)


def certificate_signed_by(cert, issuer):
    """Whether ``issuer``'s key signed ``cert``."""
    try:
        cert.verify_directly_issued_by(issuer)
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def certificates_in(data, passphrases=(), source="the file"):
    """Certificates in PEM, DER or PKCS#12 bytes; PKCS#12 is tried with each passphrase."""
    _require_cryptography()
    data = _to_bytes(data) or b""
    if _looks_like_pkcs12(data):
        for passphrase in list(passphrases) + [None]:
            try:
                bundle = pkcs12.load_pkcs12(data, _to_bytes(passphrase) or None)
            except ValueError:
                continue
            certs = [bundle.cert.certificate] if bundle.cert else []
            return certs + [extra.certificate for extra in bundle.additional_certs]
        raise CryptoError("%s is a PKCS#12 keystore and none of the given passphrases opens it" % source)
    return load_certificates(data, source)


def scan_certificate_files(paths, passphrases=(), now=None):
    """Bulk scan: for each path, {'path', 'certificates': [certificate_info], 'error'}.

    One bad file never stops the scan; its error says what is wrong with it.
    """
    now = now or datetime.datetime.now(datetime.timezone.utc)
    results = []
    for path in paths:
        entry = {"path": path, "certificates": [], "error": None}
        try:
            with open(path, "rb") as handle:
                data = handle.read()
            entry["certificates"] = [certificate_info(cert, now) for cert in certificates_in(data, passphrases, path)]
        except CryptoError as exc:
            entry["error"] = str(exc)
        except OSError as exc:
            entry["error"] = "cannot read %s: %s" % (path, exc.strerror or exc)
        results.append(entry)
    return results
