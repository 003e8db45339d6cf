"""OAuth 1.0a request verification (RFC 5849 + the oauth_body_hash extension).

Written from the RFC and reference/mastercard-api.md section 7, independently of
any signer. Header values are taken as sent: Mastercard's own signer sends the
consumer key's "!" and the body hash's "+/=" unencoded and signs those values
as they are, so the oauth_* values enter the base string exactly as they were
sent; only oauth_signature and oauth_body_hash are percent-decoded before use.

The path and the query enter it as sent too (reference section 13: the gateway's
echo shows /api/foo%40bar signed as foo%2540bar, a raw "token1:token2" as
token1%3Atoken2): nothing in the request target is decoded or re-encoded.
"""
import base64
import hashlib
import re
import threading
import time
import urllib.parse

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from .errors import gateway_error

REQUIRED = ("oauth_consumer_key", "oauth_nonce", "oauth_timestamp", "oauth_signature_method",
            "oauth_signature", "oauth_body_hash")
SIGNATURE_METHODS = ("RSA-SHA256", "RSA-PSS")
_PARAM = re.compile(r'\s*([A-Za-z0-9_]+)\s*=\s*"([^"]*)"\s*(?:,|$)')


def percent_encode(value):
    """RFC 3986 unreserved characters stay; everything else is %XX (RFC 5849 3.6)."""
    return urllib.parse.quote(value, safe="-._~")


def parse_header(header):
    """Split 'OAuth k="v", ...' into {k: v as sent}; INVALID_AUTH_HEADER when it is not that."""
    if not header:
        raise gateway_error(400, "INVALID_AUTH_HEADER", "Authorization header is missing")
    scheme, _unused, rest = header.strip().partition(" ")
    if scheme.lower() != "oauth":
        raise gateway_error(400, "INVALID_AUTH_HEADER", "Authorization scheme must be OAuth")
    params = {}
    position = 0
    rest = rest.strip()
    while position < len(rest):
        match = _PARAM.match(rest, position)
        if not match:
            raise gateway_error(400, "INVALID_AUTH_HEADER", "Malformed OAuth Authorization header")
        name, value = match.group(1), match.group(2)
        if name in params:
            raise gateway_error(400, "INVALID_AUTH_HEADER", "Duplicate OAuth parameter %s" % name)
        params[name] = value
        position = match.end()
    missing = [name for name in REQUIRED if not params.get(name)]
    if missing:
        raise gateway_error(400, "INVALID_AUTH_HEADER", "Missing OAuth parameter(s): %s" % ", ".join(missing))
    if params["oauth_signature_method"] not in SIGNATURE_METHODS:
        raise gateway_error(400, "INVALID_AUTH_HEADER",
                            "Unsupported oauth_signature_method %s" % params["oauth_signature_method"])
    if params.get("oauth_version", "1.0") != "1.0":
        raise gateway_error(400, "INVALID_AUTH_HEADER", "oauth_version must be 1.0")
    if not params["oauth_timestamp"].isdigit():
        raise gateway_error(400, "INVALID_AUTH_HEADER", "oauth_timestamp must be epoch seconds")
    return params


def split_target(target):
    """(path, query) of a request target as sent: origin form '/p?q' or absolute form 'https://h/p?q'."""
    if "://" in target.split("?", 1)[0]:
        parts = urllib.parse.urlsplit(target)
        return parts.path or "/", parts.query
    path, _unused, query = target.partition("?")
    return path or "/", query


def normalized_url(scheme, host, path):
    """RFC 5849 3.4.1.2: lower-case scheme and host, default port dropped, no query; the path as sent."""
    scheme = scheme.lower()
    host = host.lower()
    if (scheme == "https" and host.endswith(":443")) or (scheme == "http" and host.endswith(":80")):
        host = host.rsplit(":", 1)[0]
    return "%s://%s%s" % (scheme, host, path or "/")


def query_pairs(query):
    """'k=v' pairs of a query as sent, neither decoded nor re-encoded ('a' alone is 'a=')."""
    pairs = []
    for field in query.split("&"):
        if field:
            name, _unused, value = field.partition("=")
            pairs.append((name, value))
    return pairs


def base_strings(method, url, query, oauth_params):
    """The base string from the target as sent, plus the variant sorted as whole 'k=v' strings.

    RFC 5849 sorts by name then value; Mastercard's signer sorts the joined
    'k=v' strings. They differ only for names with characters below '='.
    """
    pairs = query_pairs(query)
    pairs += [(name, value) for name, value in oauth_params.items() if name not in ("oauth_signature", "realm")]
    rfc = "&".join("%s=%s" % pair for pair in sorted(pairs))
    joined = "&".join(sorted("%s=%s" % pair for pair in pairs))
    prefix = "%s&%s&" % (method.upper(), percent_encode(url))
    candidates = [prefix + percent_encode(rfc)]
    if joined != rfc:
        candidates.append(prefix + percent_encode(joined))
    return candidates


def body_hash(body):
    return base64.b64encode(hashlib.sha256(body or b"").digest()).decode("ascii")


def verify_signature(public_key, method, base_string, signature_b64):
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (ValueError, TypeError):
        return False
    if not isinstance(public_key, rsa.RSAPublicKey):
        return False
    if method == "RSA-PSS":
        pad = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO)
    else:
        pad = padding.PKCS1v15()
    try:
        public_key.verify(signature, base_string.encode("utf-8"), pad, hashes.SHA256())
    except InvalidSignature:
        return False
    return True


class NonceCache:
    """Seen (consumer key, nonce) pairs, forgotten once their timestamp is out of the window."""

    def __init__(self):
        self._seen = {}
        self._lock = threading.Lock()
        self._next_prune = 0.0

    def check_and_add(self, consumer_key, nonce, keep_seconds):
        now = time.monotonic()
        with self._lock:
            if now >= self._next_prune:
                self._seen = {key: until for key, until in self._seen.items() if until > now}
                self._next_prune = now + 30
            key = (consumer_key, nonce)
            if self._seen.get(key, 0) > now:
                return False
            self._seen[key] = now + keep_seconds
            return True

    def clear(self):
        with self._lock:
            self._seen.clear()


class Verifier:
    """Checks one request the way the gateway does, in the gateway's order."""

    def __init__(self, lookup_key, clock, rules, nonces):
        # lookup_key(consumer_key) -> (public_key, principal); raises the gateway error itself.
        self.lookup_key = lookup_key
        self.clock = clock
        self.rules = rules
        self.nonces = nonces

    def _timestamp_ok(self, timestamp):
        rules = self.rules()
        skew = rules["timestamp_skew_seconds"]
        real_ok = abs(time.time() - timestamp) <= skew
        emulated_ok = abs(self.clock() - timestamp) <= skew
        mode = rules["timestamp_clock"]
        if mode == "real":
            return real_ok
        if mode == "emulated":
            return emulated_ok
        return real_ok or emulated_ok

    def verify(self, method, scheme, host, target, body, authorization):
        """Return the principal of the verified key, or raise the gateway error.

        target: the request target exactly as it came on the request line.
        """
        params = parse_header(authorization)
        consumer_key = urllib.parse.unquote(params["oauth_consumer_key"])
        public_key, principal = self.lookup_key(consumer_key)
        if not self._timestamp_ok(int(params["oauth_timestamp"])):
            raise gateway_error(401, "INVALID_TIMESTAMP",
                                "oauth_timestamp is outside the allowed window of %d seconds"
                                % self.rules()["timestamp_skew_seconds"])
        received_hash = urllib.parse.unquote(params["oauth_body_hash"])
        calculated_hash = body_hash(body)
        if received_hash != calculated_hash:
            raise gateway_error(
                400, "INVALID_BODY_HASH",
                "The provided oauth_body_hash does not match the RSA-SHA256 hash of the request payload. "
                "Calculated: %s, Received: %s" % (calculated_hash, received_hash))
        path, query = split_target(target)
        candidates = base_strings(method, normalized_url(scheme, host, path), query, params)
        signature = urllib.parse.unquote(params["oauth_signature"])
        if not any(verify_signature(public_key, params["oauth_signature_method"], candidate, signature)
                   for candidate in candidates):
            raise gateway_error(
                403, "AUTHENTICATION_FAILED",
                "OAuth signatures did not match. Acceptable signature base string: %s" % candidates[0],
                details=candidates[0])
        # Record the nonce only after the signature holds, so forgeries cannot burn nonces.
        keep = 2 * self.rules()["timestamp_skew_seconds"] + 60
        if not self.nonces.check_and_add(consumer_key, params["oauth_nonce"], keep):
            raise gateway_error(401, "NONCE_ALREADY_USED", "oauth_nonce has already been used")
        return principal
