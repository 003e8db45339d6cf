"""The portal's rules, each configurable (``--rules`` JSON, ``POST /_admin/rules``).

Defaults follow the seeds (portal pages) and reference/mastercard-api.md; where
the reference marks a number unverified, it is a default here, not a fact.
"""
import copy
import re

DEFAULT_RULES = {
    # "valid for about 13 months" (mTLS FAQ); the OAuth key page gives no number.
    "validity_days": 395,
    # "A project can have a maximum of 3 OAuth 2.0 keys at any time."
    "max_active_oauth2_keys": 3,
    # A renewed certificate's DN must differ from an active one's (mTLS page).
    "unique_mtls_dn": True,
    "rsa_min_bits": 2048,
    # CSR requirements page: CN required; mTLS CN <= 64 chars and not a URL.
    "cn_max_length": 64,
    # CSR requirements page: the signature algorithms listed, by name (RSA-PSS, SHA-384 and the rest are not).
    "csr_signature_algorithms": ["sha1WithRSAEncryption", "sha256WithRSAEncryption", "sha512WithRSAEncryption",
                                 "ecdsa-with-SHA1", "ecdsa-with-SHA256", "ecdsa-with-SHA512"],
    # Uploaded mTLS certificates must be usable by a TLS client (keyUsage, extendedKeyUsage, not a CA).
    "require_client_auth_usage": True,
    # mTLS Sandbox CSR: [unique string]-Client-[ENV]-[CID]; ENV=MTF, CID or 000000.
    "mtls_cn_patterns": {
        "SANDBOX": r"^[A-Za-z0-9._]+(-[A-Za-z0-9._]+)*-Client-MTF-([0-9A-Za-z]+)$",
        "PRODUCTION": None,
    },
    # Certificate uploads must chain to the emulator CA or the trusted external CA.
    "accept_external_ca": True,
    # Optional guard (off by default, as on the portal): refuse to revoke the
    # last active credential of a kind in a project environment.
    "guard_last_active": False,
    # OAuth 1.0a gateway: allowed clock skew of oauth_timestamp, seconds.
    "timestamp_skew_seconds": 300,
    # Which clock timestamps are checked against: "real", "emulated" or "either".
    # "either" keeps real clients working while the emulated clock is shifted.
    "timestamp_clock": "either",
    # OAuth 2.0 token endpoint.
    "token_lifetime_seconds": 900,
    "dpop_nonce_required": True,
    "dpop_nonce_lifetime_seconds": 300,
    "jwt_max_lifetime_seconds": 300,
    "jwt_leeway_seconds": 30,
    # The issuer the token endpoint names, and wants as the client assertion's audience; "" is the
    # endpoint's own origin. Mastercard's docs name both api.mastercard.com/oauth/token and auth.mastercard.com.
    "oauth2_issuer": "",
    "max_body_bytes": 1048576,
}


TIMESTAMP_CLOCKS = ("real", "emulated", "either")


def check_rule(name, value):
    """ValueError unless value has the shape of the rule's default (so a bad override never becomes a 500 later)."""
    if name not in DEFAULT_RULES:
        raise ValueError("unknown rule %r" % name)
    default = DEFAULT_RULES[name]
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError("rule %s must be true or false" % name)
    elif isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("rule %s must be a non-negative integer" % name)
    elif isinstance(default, list):
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise ValueError("rule %s must be a list of strings" % name)
    elif isinstance(default, dict):
        if not isinstance(value, dict):
            raise ValueError("rule %s must be an object" % name)
        for key, pattern in value.items():
            if key not in default or not (pattern is None or isinstance(pattern, str)):
                raise ValueError("rule %s takes %s: a regular expression or null" % (name, ", ".join(default)))
            if pattern is not None:
                try:
                    re.compile(pattern)
                except re.error as error:
                    raise ValueError("rule %s.%s is not a regular expression: %s" % (name, key, error)) from error
    elif not isinstance(value, str):
        raise ValueError("rule %s must be a string" % name)
    elif name == "oauth2_issuer" and value and not re.match(r"^https://[^/?#\s]+(/[^?#\s]*)?$", value):
        raise ValueError("rule oauth2_issuer must be empty or an https URL")
    elif name == "timestamp_clock" and value not in TIMESTAMP_CLOCKS:
        raise ValueError("rule timestamp_clock must be one of %s" % ", ".join(TIMESTAMP_CLOCKS))


def merge_rules(base, overrides):
    """Return base updated by overrides; unknown names and wrong shapes are refused so typos show."""
    merged = copy.deepcopy(base)
    for name, value in (overrides or {}).items():
        check_rule(name, value)
        if isinstance(DEFAULT_RULES[name], dict):
            merged[name].update(value)
        else:
            merged[name] = value
    return merged
