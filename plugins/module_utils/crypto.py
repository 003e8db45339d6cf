# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Keys, CSRs, certificates and keystores for Mastercard credentials.

Plain Python over ``cryptography``: bytes in, objects or bytes out. Nothing
here knows about AnsibleModule; every refusal is a ``CryptoError`` whose
message says what to change.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import time
import unicodedata
import warnings
from dataclasses import dataclass, field

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _time

try:
    from cryptography import x509
    from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import ExtensionOID, ObjectIdentifier

    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as import_error:  # the module reports it with missing_required_lib
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = import_error


class CryptoError(CollectionError):
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
# How a refusal names an attribute: its short name and the mc_csr option that sets it.
ATTRIBUTE_LABELS = {
    "CN": "CN (common_name)", "O": "O (organization_name)", "OU": "OU (organizational_unit_name)",
    "L": "L (locality_name)", "ST": "ST (state_or_province_name)", "C": "C (country_name)",
    "emailAddress": "emailAddress (email_address)",
}
# X.520 upper bounds that Mastercard's CSR pages repeat (CN and O at most 64 characters).
MAX_ATTRIBUTE_LENGTHS = {"CN": 64, "O": 64, "OU": 64}
_LENGTH_LABELS = {"CN": "the common name (common_name)", "O": "organization (O)", "OU": "organizational unit (OU)"}

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
        # "Ed25519PublicKey" -> "Ed25519": the algorithm, not the library's class name.
        facts = {"type": re.sub(r"(Public|Private)Key$", "", type(public).__name__).lstrip("_"), "size": None,
                 "curve": None}
    facts["public_key_fingerprint"] = public_key_fingerprint(public)
    return facts


def key_spec_difference(key, key_type, size=None, curve=None):
    """Why ``key`` is not a key of the asked type/size/curve, or None when it is.

    A key no Mastercard credential takes says so first: "below the 2048-bit
    minimum" is what to fix, not "size differs".
    """
    facts = describe_key(key)
    weak = key_strength_problem(facts)
    if weak:
        return "the key is %s" % weak
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


def key_strength_problem(facts):
    """What no Mastercard credential accepts about a key (describe_key facts), or None."""
    if facts["type"] == "rsa" and facts["size"] < MIN_RSA_SIZE:
        return "RSA %s; Mastercard credentials need RSA of at least %s bits" % (facts["size"], MIN_RSA_SIZE)
    if facts["type"] == "ec" and facts["curve"] not in EC_CURVES:
        return "EC on curve %s, which Mastercard does not take (use %s)" % (facts["curve"], " or ".join(EC_CURVES))
    if facts["type"] not in ("rsa", "ec"):
        return "an %s key; Mastercard credentials take RSA (2048 bits or more) or EC (%s) keys" % (
            facts["type"], " or ".join(EC_CURVES))
    return None


def check_key_strength(key, source="the key", fix="use size=2048 or larger"):
    """Refuse what no Mastercard credential accepts: RSA below 2048 bits, other curves or key types."""
    facts = describe_key(key)
    problem = key_strength_problem(facts)
    if problem:
        raise CryptoError("%s is %s (%s)" % (source, problem, fix if facts["type"] == "rsa" else
                                             "use an RSA or EC key"))


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


def _der_header(data, pos, end=None):
    """(tag, content start, content end) of the DER element at ``pos``.

    ValueError when the header is cut short, or when ``end`` is given and the
    content runs past it; without ``end`` a content longer than the data is
    allowed (enough to sniff the first tags of a truncated file).
    """
    if pos + 2 > len(data):
        raise ValueError("truncated DER header")
    tag, first = data[pos], data[pos + 1]
    pos += 2
    if first & 0x80:
        octets = first & 0x7F
        if not 0 < octets <= 4 or pos + octets > len(data):
            raise ValueError("bad DER length")
        length = int.from_bytes(data[pos:pos + octets], "big")
        pos += octets
    else:
        length = first
    if end is not None and pos + length > end:
        raise ValueError("DER element runs past its container")
    return tag, pos, pos + length


def _der_children(data, start, end):
    """[(tag, start, end)] of the elements between start and end; ValueError for malformed DER."""
    children, pos = [], start
    while pos < end:
        tag, content_start, content_end = _der_header(data, pos, end)
        children.append((tag, content_start, content_end))
        pos = content_end
    return children


def _der_child_tags(data, count=3):
    """Tags of the first elements inside a DER SEQUENCE (enough to tell key containers apart)."""
    tags = []
    try:
        tag, pos, _end = _der_header(data, 0)
        if tag != 0x30:
            return tags
        while len(tags) < count and pos < len(data):
            tags.append(data[pos])
            pos = _der_header(data, pos)[2]
    except ValueError:
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
        legacy = _unreadable_legacy_algorithm(data)
        if legacy:
            raise CryptoError("%s is encrypted with %s, which this host's OpenSSL reads only with its legacy provider, "
                              "and that provider is off here (FIPS mode, or CRYPTOGRAPHY_OPENSSL_NO_LEGACY): the "
                              "passphrase is probably not the problem. Re-export the keystore with modern encryption "
                              "where it opens, e.g. openssl pkcs12 -legacy -in old.p12 -nodes | openssl pkcs12 -export "
                              "-out new.p12, or mc_keystore format=pkcs12" % (source, legacy)) from exc
        raise CryptoError("%s is wrong for %s (or the PKCS#12 file is damaged)" % (passphrase_option, source)) from exc
    if bundle.key is None:
        raise CryptoError("%s is a PKCS#12 keystore without a private key; use the keystore that holds the key" % source)
    cert = bundle.cert.certificate if bundle.cert else None
    name = (bundle.cert.friendly_name if bundle.cert else None) or _key_bag_friendly_name(data)
    return KeyContainer(
        key=bundle.key, format="pkcs12", encrypted=True, certificate=cert,
        chain=[extra.certificate for extra in bundle.additional_certs],
        friendly_name=name.decode("utf-8", "replace") if name else None,
        pkcs12_encryption=pkcs12_encryption(data),
    )


_OID_FRIENDLY_NAME = bytes.fromhex("06092a864886f70d010914")


def _key_bag_friendly_name(data):
    """The friendlyName bag attribute stored beside the key (cryptography reports only the certificate's).

    Bag attributes are not encrypted, so the BMPString after the attribute's
    OID is read from the raw PKCS#12 bytes; None when there is none.
    """
    at = data.find(_OID_FRIENDLY_NAME)
    if at < 0:
        return None
    try:
        tag, start, end = _der_header(data, at + len(_OID_FRIENDLY_NAME), len(data))
        value_tag, value_start, value_end = _der_header(data, start, end) if tag == 0x31 else (None, 0, 0)
        if value_tag != 0x1E:
            return None
        return data[value_start:value_end].decode("utf-16-be").encode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


# PKCS#12 PBE algorithms that OpenSSL 3 moved to its legacy provider (keytool and `openssl pkcs12 -legacy`
# exports, Mastercard's own test keystore), by DER OID content.
_LEGACY_PBE_OIDS = {
    bytes.fromhex("2a864886f70d010c0106"): "RC2-40 (pbeWithSHAAnd40BitRC2-CBC)",
    bytes.fromhex("2a864886f70d010c0105"): "RC2-128 (pbeWithSHAAnd128BitRC2-CBC)",
    bytes.fromhex("2a864886f70d010c0101"): "RC4-128 (pbeWithSHAAnd128BitRC4)",
    bytes.fromhex("2a864886f70d010c0102"): "RC4-40 (pbeWithSHAAnd40BitRC4)",
}


def _unreadable_legacy_algorithm(data):
    """The legacy algorithm a PKCS#12 uses when this OpenSSL cannot read it (legacy provider off), else None."""
    try:
        from cryptography.hazmat.bindings._rust import openssl as rust_openssl  # pylint: disable=import-outside-toplevel
    except ImportError:
        return None
    if getattr(rust_openssl, "_legacy_provider_loaded", True):
        return None  # with the provider loaded, a failure is the passphrase or the file
    for oid, name in _LEGACY_PBE_OIDS.items():
        if oid in data:
            return name
    return None


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
            bad = character_problem(text)
            if bad:
                raise CryptoError("subject %s %s; remove it" % (ATTRIBUTE_LABELS.get(short, short), bad))
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
            raise CryptoError("subject %s of %d characters is not valid: %s" % (label, len(value), exc)) from exc
    return x509.Name(attributes)


def name_pairs(name):
    """[(short name, value)] of an x509.Name in encoding order."""
    with warnings.catch_warnings():
        # cryptography warns of an over-long CN on every read; check_profile refuses it with a sentence.
        warnings.simplefilter("ignore", UserWarning)
        return [(_SHORT_NAME_BY_OID.get(attr.oid.dotted_string, attr.oid.dotted_string), attr.value) for attr in name]


def common_name(pairs):
    values = [value for short, value in pairs if short == "CN"]
    return values[0] if values else None


# ------------------------------------------------------------ subject text

# ASN.1 string types an X.520 attribute may claim, with the characters each can carry.
_STRING_TYPES = {
    0x0C: ("UTF8String", "utf-8"),
    0x13: ("PrintableString", "ascii"),
    0x16: ("IA5String", "ascii"),
    0x1A: ("VisibleString", "ascii"),
    0x12: ("NumericString", "ascii"),
    0x14: ("TeletexString", "latin-1"),
    0x1E: ("BMPString", "utf-16-be"),
    0x1C: ("UniversalString", "utf-32-be"),
}
_PRINTABLE_STRING = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789 '()+,-./:=?")
_REPERTOIRES = {
    "PrintableString": _PRINTABLE_STRING,
    "NumericString": frozenset("0123456789 "),
    "VisibleString": frozenset(chr(code) for code in range(0x20, 0x7F)),
}
_CONTROL_NAMES = {0x00: "NUL", 0x07: "BEL", 0x08: "BS", 0x09: "TAB", 0x0A: "LF (newline)", 0x0D: "CR",
                  0x1B: "ESC", 0x7F: "DEL"}
_OID_COMMON_NAME = "2.5.4.3"


def code_point(char):
    """U+001B (ESC): how a refusal names a character without printing it."""
    name = _CONTROL_NAMES.get(ord(char))
    return "U+%04X%s" % (ord(char), " (%s)" % name if name else "")


def character_problem(text):
    """Where ``text`` holds a character no credential name should (control, invisible, unassigned), or None."""
    for position, char in enumerate(text, 1):
        category = unicodedata.category(char)
        if category == "Cc":
            kind = "the control character"
        elif category == "Cf":  # invisible: zero-width characters, text-direction overrides, BOM
            kind = "the invisible formatting character"
        elif category in ("Cs", "Cn"):
            kind = "the unassigned or surrogate code point"
        else:
            continue
        return "holds %s %s at position %d" % (kind, code_point(char), position)
    return None


def _oid_dotted(raw):
    """Dotted form of DER OBJECT IDENTIFIER content bytes."""
    if not raw:
        raise ValueError("empty OID")
    arcs, value = [], 0
    for byte in raw:
        value = (value << 7) | (byte & 0x7F)
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    first = min(arcs[0] // 40, 2)
    return ".".join(str(arc) for arc in [first, arcs[0] - 40 * first] + arcs[1:])


def _string_value_problem(tag, raw):
    """Why a DER attribute value is not clean text of the type it claims, or None."""
    if tag not in _STRING_TYPES:
        return "is not a text value (ASN.1 tag 0x%02X); use a UTF8String or PrintableString" % tag
    type_name, encoding = _STRING_TYPES[tag]
    try:
        text = raw.decode(encoding)
    except UnicodeDecodeError as exc:
        return "is a %s whose bytes are not valid %s (byte %d of the value)" % (type_name, encoding.upper(), exc.start + 1)
    allowed = _REPERTOIRES.get(type_name)
    if allowed is not None:
        for position, char in enumerate(text, 1):
            if char not in allowed:
                return "is a %s but holds %s at position %d, which a %s cannot carry" % (
                    type_name, code_point(char), position, type_name)
    return character_problem(text)


def name_der_problem(data, start, end):
    """The first attribute of the DER Name in data[start:end] that is not clean text, as a sentence part, or None."""
    try:
        for rdn_tag, rdn_start, rdn_end in _der_children(data, start, end):
            if rdn_tag != 0x31:
                return "is not a well-formed distinguished name"
            for atv_tag, atv_start, atv_end in _der_children(data, rdn_start, rdn_end):
                parts = _der_children(data, atv_start, atv_end) if atv_tag == 0x30 else []
                if len(parts) != 2 or parts[0][0] != 0x06:
                    return "is not a well-formed distinguished name"
                oid = _oid_dotted(data[parts[0][1]:parts[0][2]])
                short = _SHORT_NAME_BY_OID.get(oid, oid)
                problem = _string_value_problem(parts[1][0], data[parts[1][1]:parts[1][2]])
                if problem:
                    return "attribute %s %s" % (short, problem)
    except ValueError:
        return "is not well-formed DER"
    return None


def _tbs_names(tbs, certificate):
    """[(label, start, end)] of the Names in a TBSCertificate (subject, issuer) or CertificationRequestInfo."""
    _tag, start, end = _der_header(tbs, 0, len(tbs))
    children = _der_children(tbs, start, end)
    if not certificate:
        return [("subject", children[1][1], children[1][2])]
    if children and children[0][0] == 0xA0:  # [0] EXPLICIT version
        children = children[1:]
    return [("subject", children[4][1], children[4][2]), ("issuer", children[2][1], children[2][2])]


def names_problem(obj):
    """Why the subject (and a certificate's issuer) is not clean text, as a sentence part, or None."""
    certificate = hasattr(obj, "tbs_certificate_bytes")
    return _tbs_names_problem(obj.tbs_certificate_bytes if certificate else obj.tbs_certrequest_bytes, certificate)


def _signed_der_names_problem(data, certificate):
    """names_problem for the raw bytes (PEM or DER) of a file cryptography would not load at all."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            body = b"".join(line for line in data.strip().splitlines()[1:] if not line.startswith(b"-----"))
            data = base64.b64decode(body)
        _tag, start, end = _der_header(data, 0, len(data))
        _tag, tbs_start, tbs_end = _der_header(data, start, end)
        tbs = data[start:tbs_end]
    except (ValueError, binascii.Error):
        return None
    del tbs_start
    return _tbs_names_problem(tbs, certificate)


def _tbs_names_problem(tbs, certificate):
    try:
        names = _tbs_names(tbs, certificate)
    except (ValueError, IndexError):
        return "structure is not well-formed DER"
    for label, start, end in names:
        problem = name_der_problem(tbs, start, end)
        if problem:
            return "%s %s" % (label, problem)
    return None


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


def _load_signed(data, source, certificate, load_pem, load_der):
    """What load_pem / load_der read from PEM or DER bytes; a refusal that names the broken part otherwise."""
    data = _to_bytes(data) or b""
    what, form, fix = (("certificate", "DER X.509", _AS_ISSUED) if certificate else ("CSR", "DER PKCS#10", _NEW_CSR))
    try:
        return load_pem(data) if data.lstrip().startswith(b"-----BEGIN") else load_der(data)
    except ValueError as exc:
        problem = _signed_der_names_problem(data, certificate=certificate)
        if problem:
            raise CryptoError("%s: the %s's %s; %s" % (source, what, problem, fix)) from exc
        advice = "check the file" if certificate else "replace or remove it"
        raise CryptoError("%s is not a readable %s (PEM or %s); %s" % (source, what, form, advice)) from exc


def load_csr(data, source="the CSR file"):
    """A CSR from PEM or DER bytes."""
    _require_cryptography()
    csr = _load_signed(data, source, False, x509.load_pem_x509_csr, x509.load_der_x509_csr)
    _check_readable(csr, source, "CSR", _NEW_CSR)
    return csr


_NEW_CSR = "make a new CSR (mc_csr, or openssl req -new)"
_AS_ISSUED = "replace the file with the certificate as issued"


def _check_readable(obj, source, what, fix):
    """Parse now every part later code reads, so a malformed file is refused here with a sentence.

    cryptography parses names, keys and extensions lazily and raises library
    errors (ValueError, UnsupportedAlgorithm, x509 errors) from wherever they
    are first touched.
    """
    problem = names_problem(obj)
    if problem:
        raise CryptoError("%s: the %s's %s; %s" % (source, what, problem, fix))
    parts = [("subject", lambda: obj.subject), ("public key", obj.public_key),
             ("signature algorithm", lambda: obj.signature_algorithm_oid), ("extensions", lambda: obj.extensions)]
    if hasattr(obj, "issuer"):
        parts += [("issuer", lambda: obj.issuer), ("validity", lambda: obj.not_valid_after_utc)]
    for part, read in parts:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)  # over-long names: the profile check names them
                read()
        except Exception as exc:  # pylint: disable=broad-exception-caught
            # Any library error here means one thing to the user: this part of the file cannot be used.
            raise CryptoError("%s: the %s's %s cannot be read (malformed, or of a type this module does not know); "
                              "%s" % (source, what, part, fix)) from exc


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
        "signature_valid": csr_signature_valid(csr),
        "public_key": describe_key(csr.public_key()),
        "public_key_fingerprint": public_key_fingerprint(csr),
    }


def _signature_name(obj):
    return getattr(obj.signature_algorithm_oid, "_name", obj.signature_algorithm_oid.dotted_string)


def csr_differences(csr, key, subject, subject_alt_name=None):
    """What differs between an existing CSR and the one asked for (empty when it can be kept)."""
    reasons = []
    if not csr_signature_valid(csr):
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

def check_profile(profile, key, subject, subject_alt_name=None, from_csr=False):
    """Refuse a key/subject that Mastercard would reject for this credential profile.

    Run before anything is written or sent. ``from_csr``: the key and subject
    come from a CSR the user brought, so the fix is a new CSR, not an option.
    """
    if profile not in PROFILES:
        raise CryptoError("profile=%s is not known; use one of %s" % (profile, ", ".join(PROFILES)))
    if from_csr:
        check_key_strength(key, "the CSR's key", "make the CSR from an RSA key of 2048 bits or more")
    else:
        check_key_strength(key)
    pairs = normalize_subject(subject)
    normalize_sans(subject_alt_name)
    cn = common_name(pairs)
    if not cn:
        raise CryptoError("the CSR's subject has no common name (CN); make a new CSR whose subject has a CN" if from_csr
                          else "the subject needs a common name (CN); set common_name or subject.CN")
    facts = describe_key(key)
    if profile == "oauth1" and facts["type"] != "rsa":
        raise CryptoError("profile=oauth1 accepts RSA keys only (the key is %s); %s" % (
            _key_label(facts), "make the CSR from an RSA key" if from_csr else "set type=rsa"))
    if profile == "oauth2" and not (facts["type"] == "rsa" or facts["curve"] == "secp256r1"):
        raise CryptoError("profile=oauth2 accepts RSA (2048 bits or more) or EC secp256r1 keys (the key is %s); %s" % (
            _key_label(facts), "make the CSR from an RSA or EC P-256 key" if from_csr
            else "set type=rsa or curve=secp256r1"))
    if profile != "custom":
        _check_mastercard_names(profile, cn, pairs, from_csr)


def _check_mastercard_names(profile, cn, pairs, from_csr):
    fix = "make a new CSR with a shorter value" if from_csr else "shorten it"
    for short, value in pairs:
        limit = MAX_ATTRIBUTE_LENGTHS.get(short)
        if limit and len(value) > limit:
            label = "the CSR's %s" % short if from_csr else _LENGTH_LABELS[short]
            raise CryptoError("profile=%s: %s is %s characters; Mastercard allows at most %s (%s)"
                              % (profile, label, len(value), limit, fix))
    # The portal refuses a URL as CN for every kind; mTLS names refuse paths and www. names too.
    if "://" in cn or (profile.startswith("mtls_") and _URL_LIKE.search(cn)):
        raise CryptoError("profile=%s: the common name %r looks like a URL or path; use a plain name" % (profile, cn))
    if profile == "mtls_sandbox" and not SANDBOX_CN.match(cn):
        raise CryptoError("profile=mtls_sandbox: the common name %r must look like <unique>-Client-MTF-<company id "
                          "or 000000>, e.g. %s-Client-MTF-000000" % (cn, int(time.time())))


# ------------------------------------------------ what Mastercard takes in a CSR

# The CSR signature algorithms Mastercard lists (CSR requirements page; reference/mastercard-api.md §5).
CSR_SIGNATURE_ALGORITHMS = {
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
}
_SHA1_SIGNATURES = ("1.2.840.113549.1.1.5", "1.2.840.10045.4.1")
# Names of algorithms met in the field that are not on the list, so a refusal can say which one it saw.
_OTHER_SIGNATURE_NAMES = {
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.113549.1.1.4": "md5WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.14": "sha224WithRSAEncryption",
    "1.2.840.10045.4.3.1": "ecdsa-with-SHA224",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.3.101.112": "Ed25519",
    "1.3.101.113": "Ed448",
    "2.16.840.1.101.3.4.3.2": "dsa-with-SHA256",
}


def signature_algorithm_label(oid):
    """A name for a dotted signature algorithm OID (the dotted OID when it has none here)."""
    return CSR_SIGNATURE_ALGORITHMS.get(oid) or _OTHER_SIGNATURE_NAMES.get(oid) or oid


def csr_signature_valid(csr):
    """Whether the CSR's self-signature verifies, SHA-1 included (is_signature_valid refuses SHA-1 outright)."""
    oid = csr.signature_algorithm_oid.dotted_string
    if oid not in _SHA1_SIGNATURES:
        try:
            return csr.is_signature_valid
        except (ValueError, TypeError, UnsupportedAlgorithm):
            return False
    public = csr.public_key()
    try:
        if isinstance(public, rsa.RSAPublicKey) and oid == _SHA1_SIGNATURES[0]:
            public.verify(csr.signature, csr.tbs_certrequest_bytes, padding.PKCS1v15(), hashes.SHA1())  # nosec
        elif isinstance(public, ec.EllipticCurvePublicKey) and oid == _SHA1_SIGNATURES[1]:
            public.verify(csr.signature, csr.tbs_certrequest_bytes, ec.ECDSA(hashes.SHA1()))  # nosec
        else:
            return False
    except InvalidSignature:
        return False
    return True


def check_csr_for_profile(csr, profile):
    """Refuse a CSR that Mastercard would not take for ``profile``; returns warnings for what it takes but should not get.

    Checks, in the order a person fixes them: the signature algorithm against
    Mastercard's list, the self-signature, then the key and subject rules of
    the profile. SHA-1 is on Mastercard's list, so it is a warning, not a refusal.
    """
    oid = csr.signature_algorithm_oid.dotted_string
    if profile != "custom" and oid not in CSR_SIGNATURE_ALGORITHMS:
        raise CryptoError("the CSR is signed with %s, which Mastercard does not take (it takes %s); make the CSR "
                          "again with PKCS#1 v1.5 or ECDSA and SHA-256, e.g. openssl req -new -sha256 without "
                          "-sigopt rsa_padding_mode:pss"
                          % (signature_algorithm_label(oid), ", ".join(CSR_SIGNATURE_ALGORITHMS.values())))
    if not csr_signature_valid(csr):
        raise CryptoError("the CSR's signature does not verify against its own public key (it was changed after "
                          "signing, or signed with another key); make a new CSR")
    notes = []
    if oid in _SHA1_SIGNATURES:
        notes.append("the CSR is signed with %s: Mastercard takes it, but SHA-1 is a weak hash; make the next CSR "
                     "with SHA-256 (mc_csr does, as does openssl req -new -sha256)" % signature_algorithm_label(oid))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # an over-long CN: check_profile refuses it
        pairs = name_pairs(csr.subject)
    check_profile(profile, csr.public_key(), pairs, from_csr=True)
    return notes


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


# Seed "Renewal of MTLS certificate": the portal refuses a renewal whose DN is the expiring certificate's.
DUPLICATE_DN = "Mastercard refuses a renewed certificate with the expiring one's DN (duplicate certificate error)"


def renewal_request(certificate, attribute="CN", value=None, now=None, existing_csr=None):
    """(subject pairs, SANs, facts) of the CSR that renews ``certificate`` (the KMP renewal): its DN with
    ``attribute`` changed and its SANs.

    Without ``value`` the attribute gets a new epoch suffix (renewal_common_name for a CN). A CSR made earlier
    for this renewal (``existing_csr``: the same DN but for that attribute) keeps its value, so a re-run
    changes nothing. CryptoError when the DN would not change or cannot be written again.
    """
    short = _SUBJECT_ALIASES.get(str(attribute or "CN").strip().lower())
    if short is None:
        raise CryptoError("renew_attribute %r is not supported; use one of %s" % (attribute, ", ".join(SUBJECT_OIDS)))
    old = name_pairs(certificate.subject)
    foreign = [name for name, _value in old if name not in SUBJECT_OIDS]
    sans = _sans_of(certificate)
    unwritable = [entry for entry in sans if entry.split(":", 1)[0] not in ("DNS", "IP", "email", "URI")]
    if foreign or unwritable:
        raise CryptoError("the expiring certificate holds %s, which mc_csr cannot write; make the renewal CSR with "
                          "openssl req -new" % ", ".join(foreign + unwritable))
    position = next((index for index, (name, _value) in enumerate(old) if name == short), None)
    old_value = None if position is None else old[position][1]
    if value in (None, ""):
        value = _value_kept_by(existing_csr, old, position, short)
    if value in (None, ""):
        if old_value is None:
            raise CryptoError("the expiring certificate has no %s; set renew_value to the value it should get"
                              % ATTRIBUTE_LABELS[short])
        stamp = None if now is None else now.timestamp()
        value = renewal_common_name(old_value, stamp) if short == "CN" else \
            _renew_epoch_suffix(old_value, stamp, MAX_ATTRIBUTE_LENGTHS.get(short, MAX_CN_LENGTH))
    pairs = list(old)
    if position is None:
        position = len(pairs)
        pairs.append((short, value))
    else:
        pairs[position] = (short, value)
    pairs = normalize_subject(pairs)
    if pairs == old:
        raise CryptoError("renew_value %r is the expiring certificate's %s, and %s; give %s another value"
                          % (value, ATTRIBUTE_LABELS[short], DUPLICATE_DN, short))
    facts = {
        "certificate_subject": certificate.subject.rfc4514_string(),
        "certificate_serial_number": "%X" % certificate.serial_number,
        "certificate_not_after": _time.iso(certificate.not_valid_after_utc),
        "attribute": short, "from": old_value, "to": pairs[position][1],
    }
    return pairs, sans, facts


def _value_kept_by(csr, old, position, short):
    """The attribute's value in a CSR made earlier for this renewal, or None."""
    if csr is None:
        return None
    pairs = name_pairs(csr.subject)
    index = len(old) if position is None else position
    if len(pairs) != len(old) + (position is None) or pairs[index][0] != short:
        return None
    if pairs[:index] + pairs[index + 1:] != [pair for number, pair in enumerate(old) if number != position]:
        return None
    if position is not None and pairs[index][1] == old[index][1]:
        return None
    return pairs[index][1]


# ------------------------------------------------------------------ certificates

def load_certificates(data, source="the certificate file"):
    """All certificates in PEM (one or more) or DER bytes."""
    _require_cryptography()
    certificates = _load_signed(data, source, True, x509.load_pem_x509_certificates,
                                lambda der: [x509.load_der_x509_certificate(der)])
    for index, cert in enumerate(certificates):
        what = "certificate" if len(certificates) == 1 else "certificate %d of %d" % (index + 1, len(certificates))
        _check_readable(cert, source, what, _AS_ISSUED)
    return certificates


def load_certificate(data, source="the certificate file"):
    """The first certificate in PEM or DER bytes."""
    return load_certificates(data, source)[0]


def dump_certificates(certificates):
    return b"".join(cert.public_bytes(serialization.Encoding.PEM) for cert in certificates)


def certificate_fingerprint(cert):
    """Lowercase hex SHA-256 of the DER certificate."""
    return cert.fingerprint(hashes.SHA256()).hex()


def certificate_info(cert, now=None):
    """Non-secret facts about a certificate (formats as in docs/dev/contracts.md)."""
    now = now or _time.now()
    not_before = cert.not_valid_before_utc
    not_after = cert.not_valid_after_utc
    pairs = name_pairs(cert.subject)
    return {
        "subject": cert.subject.rfc4514_string(),
        "common_name": common_name(pairs),
        "issuer": cert.issuer.rfc4514_string(),
        "serial_number": format(cert.serial_number, "x"),
        "not_before": _time.iso(not_before),
        "not_after": _time.iso(not_after),
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


_OID_CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"
_OID_ANY_EXTENDED_KEY_USAGE = "2.5.29.37.0"


def _extension(cert, oid):
    try:
        return cert.extensions.get_extension_for_oid(oid).value
    except x509.ExtensionNotFound:
        return None


def client_use_problems(cert):
    """Why ``cert`` cannot serve as a TLS client certificate (basicConstraints, keyUsage, extendedKeyUsage); [] when it can."""
    problems = []
    constraints = _extension(cert, ExtensionOID.BASIC_CONSTRAINTS)
    if constraints is not None and constraints.ca:
        problems.append("it is a CA certificate (basicConstraints CA:TRUE), not a client certificate")
    usage = _extension(cert, ExtensionOID.KEY_USAGE)
    if usage is not None and not usage.digital_signature:
        problems.append("its keyUsage lacks digitalSignature, which a TLS client needs to sign the handshake")
    extended = _extension(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    if extended is not None:
        oids = [purpose.dotted_string for purpose in extended]
        if _OID_CLIENT_AUTH not in oids and _OID_ANY_EXTENDED_KEY_USAGE not in oids:
            names = ", ".join(getattr(purpose, "_name", purpose.dotted_string) for purpose in extended)
            problems.append("its extendedKeyUsage is %s, without clientAuth" % (names or "empty"))
    return problems


def validity_problem(cert, now=None):
    """'expired on …' or 'is not valid before …' for a certificate outside its validity, else None."""
    now = now or _time.now()
    if cert.not_valid_after_utc <= now:
        return "expired on %s" % _time.iso(cert.not_valid_after_utc)
    if cert.not_valid_before_utc > now:
        return "is not valid before %s" % _time.iso(cert.not_valid_before_utc)
    return None


def chain_problem(certificates, trusted=None):
    """Why ``certificates`` (leaf first) are not an ordered chain ending at a trusted CA, or None.

    Each certificate must be issued by the next one. With ``trusted`` (CA
    certificates the user trusts) the last one must be, or be issued by, one
    of them; without it, a lone self-signed certificate is refused, since no
    CA Mastercard trusts issued it.
    """
    def label(index):
        return "certificate %d (%s)" % (index + 1, certificates[index].subject.rfc4514_string())

    for index in range(len(certificates) - 1):
        if not certificate_signed_by(certificates[index], certificates[index + 1]):
            return ("%s is not issued by %s after it; order the file as the client certificate first, then each "
                    "issuer in turn" % (label(index), label(index + 1)))
    last = certificates[-1]
    if trusted is not None:
        trusted_fingerprints = {certificate_fingerprint(ca) for ca in trusted}
        if certificate_fingerprint(last) in trusted_fingerprints or \
                any(certificate_signed_by(last, ca) for ca in trusted):
            return None
        return ("the chain ends at %s, issued by %s, which is none of the CAs given as trusted; add the issuing "
                "CA's certificate, or use a certificate from a CA Mastercard trusts"
                % (label(len(certificates) - 1), last.issuer.rfc4514_string()))
    # Issuer equal to subject is self-issued whether or not its signature still verifies.
    if len(certificates) == 1 and last.issuer == last.subject:
        return ("the certificate (%s) is self-signed; Mastercard takes certificates issued by its CA or a CA it "
                "trusts" % last.subject.rfc4514_string())
    return None


def client_certificate_problems(certificates, trusted=None, now=None, allow_self_signed=False):
    """Sentences on what keeps ``certificates`` (the client certificate first, then its chain) from working as an
    mTLS client certificate: validity, client use, chain order and trust. [] when nothing does.

    mc_certificate refuses an upload on the first; mc_keystore packs anyway and warns with all of them
    (``allow_self_signed``: a keystore may hold a test certificate).
    """
    cert = certificates[0]
    subject = cert.subject.rfc4514_string()
    problems = []
    invalid = validity_problem(cert, now)
    if invalid:
        problems.append("the certificate (subject %s) %s; use a current one" % (subject, invalid))
    unfit = client_use_problems(cert)
    if unfit:
        problems.append("the certificate (subject %s) cannot be an mTLS client certificate: %s; use a certificate "
                        "issued for client authentication" % (subject, "; ".join(unfit)))
    if len(certificates) > 1 or trusted is not None or not allow_self_signed:
        broken = chain_problem(certificates, trusted)
        if broken:
            problems.append(broken)
    return problems


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
    now = now or _time.now()
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
