"""OAuth 2.0 token endpoint (FAPI 2.0: client_credentials, private_key_jwt, DPoP) and
the DPoP-bound resource check, verified with PyJWT, independently of any client.
"""
import base64
import hashlib
import hmac
import json
import secrets
import struct
import threading
import time
import urllib.parse

import jwt

from .errors import OAuth2Error

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
ASSERTION_ALGORITHMS = ("PS256", "ES256")
DPOP_ALGORITHMS = ("PS256", "ES256", "RS256")


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def jwk_thumbprint(jwk):
    """RFC 7638: SHA-256 over the required members in lexicographic order, no whitespace."""
    members = {"RSA": ("e", "kty", "n"), "EC": ("crv", "kty", "x", "y")}.get(jwk.get("kty"))
    if not members or any(not isinstance(jwk.get(name), str) for name in members):
        raise ValueError("unsupported JWK")
    canonical = json.dumps({name: jwk[name] for name in members}, separators=(",", ":"), sort_keys=True)
    return b64url(hashlib.sha256(canonical.encode("ascii")).digest())


def canonical_htu(url):
    """Scheme and host lower-cased, default port dropped, no query or fragment (RFC 9449 4.3)."""
    parts = urllib.parse.urlsplit(url)
    host = (parts.hostname or "").lower()
    port = parts.port
    scheme = parts.scheme.lower()
    if port is not None and not ((scheme == "https" and port == 443) or (scheme == "http" and port == 80)):
        host = "%s:%d" % (host, port)
    return "%s://%s%s" % (scheme, host, parts.path or "/")


class ReplayCache:
    """jti values seen recently; a second use inside the window is a replay."""

    def __init__(self):
        self._seen = {}
        self._lock = threading.Lock()

    def first_use(self, value, keep_seconds):
        now = time.monotonic()
        with self._lock:
            if len(self._seen) > 10000:
                self._seen = {key: until for key, until in self._seen.items() if until > now}
            if self._seen.get(value, 0) > now:
                return False
            self._seen[value] = now + keep_seconds
            return True


class TokenService:
    """Issues DPoP-bound access tokens and checks them at the resource ping."""

    def __init__(self, portal, secret, issuer_of):
        self.portal = portal
        self.secret = secret
        # issuer_of() -> the issuer URL (the scheme://host:port the token endpoint is served at).
        self.issuer_of = issuer_of
        self.replays = ReplayCache()

    # --- DPoP nonces: stateless, an HMAC over the time they were issued ------------
    def new_nonce(self):
        stamp = struct.pack(">Q", int(time.time()))
        return b64url(stamp + hmac.new(self.secret, stamp, hashlib.sha256).digest()[:16])

    def nonce_valid(self, nonce):
        try:
            raw = base64.urlsafe_b64decode(nonce + "=" * (-len(nonce) % 4))
        except (ValueError, TypeError):
            return False
        if len(raw) != 24:
            return False
        stamp, mac = raw[:8], raw[8:]
        if not hmac.compare_digest(mac, hmac.new(self.secret, stamp, hashlib.sha256).digest()[:16]):
            return False
        age = time.time() - struct.unpack(">Q", stamp)[0]
        return -5 <= age <= self.portal.rules()["dpop_nonce_lifetime_seconds"]

    def _time_ok(self, issued_at):
        """iat against the real or the emulated clock, per the timestamp_clock rule."""
        rules = self.portal.rules()
        leeway = rules["jwt_leeway_seconds"] + rules["jwt_max_lifetime_seconds"]
        real_ok = abs(time.time() - issued_at) <= leeway
        emulated_ok = abs(self.portal.now() - issued_at) <= leeway
        mode = rules["timestamp_clock"]
        return real_ok if mode == "real" else emulated_ok if mode == "emulated" else real_ok or emulated_ok

    # --- DPoP proof ----------------------------------------------------------
    def verify_dpop(self, proof, method, url, access_token=None, status=400):
        """Check a DPoP proof; return the JWK thumbprint of its key."""
        def fail(description, error="invalid_dpop_proof"):
            headers = {}
            if status == 401:
                headers["WWW-Authenticate"] = 'DPoP error="%s", error_description="%s"' % (error, description)
            return OAuth2Error(status, error, description, headers)

        if not proof:
            raise fail("DPoP proof header is required")
        try:
            header = jwt.get_unverified_header(proof)
        except jwt.PyJWTError as error:
            raise fail("DPoP proof is not a JWT: %s" % error) from error
        if header.get("typ") != "dpop+jwt":
            raise fail("DPoP proof typ must be dpop+jwt")
        algorithm = header.get("alg")
        jwk = header.get("jwk")
        if algorithm not in DPOP_ALGORITHMS or not isinstance(jwk, dict):
            raise fail("DPoP proof needs an asymmetric alg and a jwk header")
        if any(name in jwk for name in ("d", "p", "q", "dp", "dq", "qi")):
            raise fail("DPoP jwk must not contain private key members")
        try:
            key = jwt.PyJWK(jwk, algorithm=algorithm).key
            claims = jwt.decode(proof, key=key, algorithms=[algorithm],
                                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                                         "verify_aud": False, "require": ["jti", "htm", "htu", "iat"]})
            thumbprint = jwk_thumbprint(jwk)
        except (jwt.PyJWTError, ValueError, TypeError) as error:
            raise fail("DPoP proof signature could not be verified: %s" % error) from error
        if claims["htm"] != method.upper():
            raise fail("DPoP htm %s does not match %s" % (claims["htm"], method.upper()))
        if canonical_htu(str(claims["htu"])) != canonical_htu(url):
            raise fail("DPoP htu %s does not match %s" % (claims["htu"], canonical_htu(url)))
        if not isinstance(claims["iat"], (int, float)) or not self._time_ok(claims["iat"]):
            raise fail("DPoP proof iat is outside the allowed window")
        if access_token is not None:
            expected = b64url(hashlib.sha256(access_token.encode("ascii")).digest())
            if claims.get("ath") != expected:
                raise fail("DPoP ath does not match the access token")
        if self.portal.rules()["dpop_nonce_required"] and not self.nonce_valid(str(claims.get("nonce", ""))):
            # RFC 9449 8: tell the client which nonce to use; the client retries once.
            error = fail("Authorization server requires nonce in DPoP proof", "use_dpop_nonce")
            error.headers["DPoP-Nonce"] = self.new_nonce()
            raise error
        if not self.replays.first_use("dpop:" + str(claims["jti"]), 600):
            raise fail("DPoP proof jti has already been used")
        return thumbprint

    # --- token endpoint ---------------------------------------------------------
    def token(self, form, content_type, dpop_proof, token_url):  # pylint: disable=too-many-locals
        """Return the token response body, or raise OAuth2Error."""
        if not (content_type or "").lower().startswith("application/x-www-form-urlencoded"):
            raise OAuth2Error(400, "invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        if form.get("grant_type") != "client_credentials":
            raise OAuth2Error(400, "unsupported_grant_type", "Only client_credentials is supported")
        if form.get("client_assertion_type") != CLIENT_ASSERTION_TYPE or not form.get("client_assertion"):
            raise OAuth2Error(400, "invalid_client", "private_key_jwt client authentication is required")
        client_id = form.get("client_id")
        jkt = self.verify_dpop(dpop_proof, "POST", token_url)
        assertion = form["client_assertion"]
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.PyJWTError as error:
            raise OAuth2Error(400, "invalid_client", "client_assertion is not a JWT") from error
        kid, algorithm = header.get("kid"), header.get("alg")
        if algorithm not in ASSERTION_ALGORITHMS:
            raise OAuth2Error(400, "invalid_client", "client_assertion alg must be PS256 or ES256")
        row, project, status, capable = self.portal.oauth2_key(str(kid))
        if row is None or not capable:
            raise OAuth2Error(400, "invalid_client", "Unknown key id (kid) for OAuth 2.0")
        if status != "ACTIVE":
            raise OAuth2Error(400, "invalid_client", "The key for this kid is %s" % status)
        if client_id and client_id != project["client_id"]:
            raise OAuth2Error(400, "invalid_client", "client_id does not own this kid")
        issuer = self.issuer_of()
        rules = self.portal.rules()
        try:
            claims = jwt.decode(
                assertion, key=self.portal.public_key_of(row), algorithms=[algorithm],
                audience=issuer, issuer=project["client_id"],
                options={"verify_exp": False, "verify_iat": False, "verify_nbf": False,
                         "require": ["iss", "sub", "aud", "exp", "iat", "jti"]})
        except jwt.PyJWTError as error:
            raise OAuth2Error(400, "invalid_client",
                              "client_assertion signature couldn't be verified: %s" % error) from error
        if claims["sub"] != project["client_id"]:
            raise OAuth2Error(400, "invalid_client", "client_assertion sub must equal the client id")
        if not self._time_ok(claims["iat"]) or claims["exp"] - claims["iat"] > rules["jwt_max_lifetime_seconds"]:
            raise OAuth2Error(400, "invalid_client", "client_assertion iat/exp are outside the allowed window")
        if not self.replays.first_use("assertion:" + str(claims["jti"]), 600):
            raise OAuth2Error(400, "invalid_client", "client_assertion jti has already been used")
        now = int(self.portal.now())
        lifetime = int(rules["token_lifetime_seconds"])
        scope = form.get("scope")
        access = {
            "iss": issuer, "sub": project["client_id"], "client_id": project["client_id"], "kid": kid,
            "credential_id": row["id"], "cnf": {"jkt": jkt}, "iat": now, "exp": now + lifetime,
            "jti": secrets.token_hex(12),
        }
        if scope:
            access["scope"] = scope
        body = {"access_token": jwt.encode(access, self.secret, algorithm="HS256"),
                "token_type": "DPoP", "expires_in": lifetime}
        if scope:
            body["scope"] = scope
        return body

    def check_resource(self, authorization, dpop_proof, method, url):
        """Claims of a valid DPoP-bound access token presented to a resource, or OAuth2Error (401)."""
        def fail(error, description):
            return OAuth2Error(401, error, description,
                               {"WWW-Authenticate": 'DPoP error="%s", error_description="%s"' % (error, description)})

        scheme, _unused, token = (authorization or "").partition(" ")
        if scheme.lower() != "dpop" or not token:
            raise fail("invalid_token", "A DPoP access token is required (Authorization: DPoP <token>)")
        try:
            # exp/iat/nbf are judged on the emulated clock below, not on PyJWT's real one.
            claims = jwt.decode(token.strip(), self.secret, algorithms=["HS256"],
                                options={"verify_exp": False, "verify_aud": False,
                                         "verify_iat": False, "verify_nbf": False})
        except jwt.PyJWTError as error:
            raise fail("invalid_token", "The access token is not valid") from error
        if claims.get("exp", 0) <= self.portal.now():
            raise fail("invalid_token", "The access token has expired")
        jkt = self.verify_dpop(dpop_proof, method, url, access_token=token.strip(), status=401)
        if jkt != claims.get("cnf", {}).get("jkt"):
            raise fail("invalid_token", "The DPoP proof key is not the key the token is bound to")
        return claims
