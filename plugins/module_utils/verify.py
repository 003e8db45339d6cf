# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Probes that prove a credential works the way an application uses it.

PRIVATE to this collection: the API may change without notice.

Three probes, each run from the host that holds the credential files:

* ``mtls``   - an HTTPS request that presents the client certificate and key
               (standard library ``ssl`` + ``http.client``).
* ``oauth1`` - a request signed by ``mastercard-oauth1-signer`` with the
               consumer key and the signing key.
* ``oauth2`` - a FAPI 2.0 token exchange with ``mastercard-oauth2-client``
               (``private_key_jwt`` client assertion + DPoP proof, with the
               server-nonce retry), then optionally a DPoP-bound resource call.

Every probe returns a plain dict (never raises for a *credential* failure):
``success``, ``cause`` (one of ``CAUSES``), ``msg``, ``status``,
``latency_ms`` and the identifiers used (fingerprint, kid, consumer key).
Nothing secret (keys, passwords, access tokens) ever enters the result.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import time
from urllib.parse import urlsplit

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _fingerprint, _time
from ansible_collections.mcdev.credentials.plugins.module_utils.verify_options import KINDS

# Import cost matters: AnsiballZ ships sources without .pyc, and every module process pays for
# what it imports. So this file imports only the standard library at the top; each probe imports
# what it needs when it runs (cryptography pieces per input format, ssl + http.client for mtls,
# requests + the OAuth 1.0a signer for oauth1, requests + the OAuth 2.0 client for oauth2).
# tests/unit/plugins/modules/test_module_imports.py pins this.

#: pip name -> the module that proves it is installed
_LIBRARIES = {
    "cryptography": "cryptography.hazmat.primitives.serialization",
    "requests": "requests",
    "mastercard-oauth1-signer": "oauth1.oauth",
    "mastercard-oauth2-client": "mastercard_oauth2_client",
}
_KIND_LIBRARIES = {
    "mtls": ("cryptography",),
    "oauth1": ("cryptography", "mastercard-oauth1-signer"),
    "oauth2": ("cryptography", "requests", "mastercard-oauth2-client"),
}


# Causes by which the endpoint turns the credential itself away (not the network, not our inputs).
REFUSED_CAUSES = frozenset(("unauthorized", "forbidden", "client_certificate_rejected", "token_rejected",
                            "handshake_refused"))

#: Every value ``cause`` can take, with what it means.
CAUSES = {
    "ok": "the credential worked",
    "invalid_input": "an option or a local file is unusable (nothing was sent)",
    "expired_certificate": "the certificate expired (checked locally, nothing was sent)",
    "not_yet_valid": "the certificate is not valid yet (checked locally, nothing was sent)",
    "key_mismatch": "the private key does not belong to the certificate (checked locally, nothing was sent)",
    "fingerprint_mismatch": "the local certificate is not the expected one (checked locally, nothing was sent)",
    "connection_refused": "nothing listens at the probe address",
    "name_resolution": "the probe host name does not resolve",
    "timeout": "the probe did not answer in time",
    "connection_error": "the connection failed for another network reason",
    "server_certificate_untrusted": "the probe's server certificate is not trusted (see ca_path)",
    "handshake_refused": "the server refused the client certificate during or right after the TLS handshake",
    "client_certificate_rejected": "the server accepted TLS but rejected the client certificate (422 INVALID_CLIENT_CERT)",
    "unauthorized": "HTTP 401 (see reason_code)",
    "forbidden": "HTTP 403 (see reason_code)",
    "token_rejected": "the OAuth 2.0 token endpoint refused the exchange (see reason_code)",
    "http_error": "another HTTP error status",
    "protocol_error": "the server's answer could not be understood",
}

_MAX_BODY = 65536


class VerifyError(CollectionError):
    """A failure that has a cause; turned into a result, never a traceback."""

    def __init__(self, cause, msg, **extra):
        super().__init__(msg)
        self.cause = cause
        self.msg = msg
        self.extra = extra


def missing_libraries(kind):
    """(library name, import error) pairs the given probe kind needs but lacks (imports only that kind's)."""
    missing = []
    for name in _KIND_LIBRARIES.get(kind, ("cryptography",)):
        try:
            importlib.import_module(_LIBRARIES[name])
        except ImportError as exc:
            missing.append((name, exc))
    return missing


# --------------------------------------------------------------------------
# Local material
# --------------------------------------------------------------------------


class Material(object):
    """The credential as the application holds it: key, certificate, chain."""

    def __init__(self, private_key, certificate=None, chain=None, source=None):
        self.private_key = private_key
        self.certificate = certificate
        self.chain = list(chain or [])
        self.source = source
        self.inputs = ""  # the options it came from, e.g. "private_key_path and certificate_path"

    @property
    def fingerprint(self):
        if self.certificate is None:
            return None
        from cryptography.hazmat.primitives import serialization

        return hashlib.sha256(self.certificate.public_bytes(serialization.Encoding.DER)).hexdigest()

    @property
    def public_key_fingerprint(self):
        from cryptography.hazmat.primitives import serialization

        der = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(der).hexdigest()

    def key_matches(self):
        if self.certificate is None:
            return True
        from cryptography.hazmat.primitives import serialization

        mine = self.private_key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        theirs = self.certificate.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return mine == theirs

    def facts(self, now):
        """Non-secret facts about the material (for the result)."""
        out = {
            "public_key_fingerprint": self.public_key_fingerprint,
            "fingerprint": self.fingerprint,
            "not_after": None,
            "days_left": None,
            "subject": None,
            "serial_number": None,
        }
        if self.certificate is not None:
            not_after = self.certificate.not_valid_after_utc
            out["not_after"] = _time.iso(not_after)
            out["days_left"] = int((not_after - now).total_seconds() // 86400)
            out["subject"] = self.certificate.subject.rfc4514_string()
            out["serial_number"] = "%x" % self.certificate.serial_number
        return out


def _read(path, option):
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except (IOError, OSError) as exc:
        raise VerifyError("invalid_input", "Cannot read %s %s: %s" % (option, path, exc.strerror or exc)) from exc


def _password_bytes(password):
    if password is None or password == "":
        return None
    return password.encode("utf-8")


def _load_certificates(data, option, path):
    from cryptography import x509

    try:
        if b"-----BEGIN" in data:
            certs = x509.load_pem_x509_certificates(data)
        else:
            certs = [x509.load_der_x509_certificate(data)]
    except ValueError:
        raise VerifyError("invalid_input", "%s %s holds no readable X.509 certificate (PEM or DER)" % (option, path)) from None
    return certs


def _load_private_key(data, password, option, path):
    from cryptography.hazmat.primitives import serialization

    pw = _password_bytes(password)
    loaders = (
        (serialization.load_pem_private_key,)
        if b"-----BEGIN" in data
        else (serialization.load_der_private_key,)
    )
    for loader in loaders:
        try:
            return loader(data, password=pw)
        except TypeError:
            if pw is None:
                raise VerifyError(
                    "invalid_input", "%s %s is encrypted: set private_key_password" % (option, path)
                ) from None
            raise VerifyError(
                "invalid_input", "%s %s is not encrypted: leave private_key_password unset" % (option, path)
            ) from None
        except ValueError:
            if pw is not None:
                raise VerifyError(
                    "invalid_input",
                    "Cannot decrypt %s %s: wrong private_key_password, or not a private key" % (option, path),
                ) from None
    raise VerifyError("invalid_input", "%s %s holds no readable private key (PEM or DER)" % (option, path))


def load_material(pkcs12_path=None, pkcs12_password=None, certificate_path=None,
                  private_key_path=None, private_key_password=None, need_certificate=False):
    """Load the credential from a PKCS#12 keystore or from PEM/DER files.

    ``certificate_path`` may be given next to ``pkcs12_path`` (a keystore that
    holds only the key) or next to ``private_key_path``.
    """
    key = None
    certificate = None
    chain = []
    source = None
    if pkcs12_path:
        from cryptography.hazmat.primitives.serialization import pkcs12

        data = _read(pkcs12_path, "pkcs12_path")
        try:
            key, certificate, chain = pkcs12.load_key_and_certificates(data, _password_bytes(pkcs12_password))
        except ValueError:
            raise VerifyError(
                "invalid_input",
                "Cannot open pkcs12_path %s: wrong pkcs12_password, or not a PKCS#12 file" % pkcs12_path,
            ) from None
        if key is None:
            raise VerifyError("invalid_input", "pkcs12_path %s holds no private key" % pkcs12_path)
        source = pkcs12_path
    elif private_key_path:
        key = _load_private_key(_read(private_key_path, "private_key_path"), private_key_password,
                                "private_key_path", private_key_path)
        source = private_key_path
    else:
        raise VerifyError("invalid_input", "Give the credential as pkcs12_path, or as private_key_path "
                                           "(with certificate_path for mtls)")
    if certificate_path:
        certs = _load_certificates(_read(certificate_path, "certificate_path"), "certificate_path", certificate_path)
        certificate = certs[0]
        chain = certs[1:] or chain
    if need_certificate and certificate is None:
        raise VerifyError(
            "invalid_input",
            "mtls needs the client certificate: set certificate_path, or use a pkcs12_path that contains it",
        )
    material = Material(key, certificate, chain, source)
    # Which options a mismatch is about, for the message.
    material.inputs = " and ".join(name for name, value in (("pkcs12_path", pkcs12_path),
                                                            ("private_key_path", private_key_path),
                                                            ("certificate_path", certificate_path)) if value)
    return material


def local_checks(material, now, expected_fingerprint=None):
    """Checks done before anything is sent: validity window, key/cert match, identity."""
    if material.certificate is not None:
        cert = material.certificate
        if not material.key_matches():
            raise VerifyError(
                "key_mismatch",
                "The private key does not belong to the certificate %s (key/certificate mismatch); check that %s "
                "hold the key and the certificate issued for it"
                % (material.fingerprint, material.inputs or "the inputs"),
            )
        if now > cert.not_valid_after_utc:
            raise VerifyError(
                "expired_certificate",
                "The certificate %s expired on %s; not sent"
                % (material.fingerprint, _time.iso(cert.not_valid_after_utc)),
            )
        if now < cert.not_valid_before_utc:
            raise VerifyError(
                "not_yet_valid",
                "The certificate %s is valid only from %s; not sent"
                % (material.fingerprint, _time.iso(cert.not_valid_before_utc)),
            )
    if expected_fingerprint:
        wanted = _fingerprint.normalize(expected_fingerprint)
        if wanted is None:
            raise VerifyError("invalid_input", "expected_fingerprint %r is not a fingerprint: give the SHA-256 of the "
                                               "certificate in hex (colons allowed)" % str(expected_fingerprint)[:80])
        have = material.fingerprint
        if have is None:
            raise VerifyError("invalid_input", "expected_fingerprint needs the certificate "
                                               "(certificate_path, or a pkcs12_path that contains it)")
        if have != wanted:
            raise VerifyError(
                "fingerprint_mismatch",
                "The local certificate is %s, not the expected %s: this host does not carry the expected credential"
                % (have, wanted),
            )


# --------------------------------------------------------------------------
# Helpers shared by the probes
# --------------------------------------------------------------------------


def _require_https(url, option="url"):
    parts = urlsplit(url or "")
    if parts.scheme != "https" or not parts.hostname:
        raise VerifyError("invalid_input", "%s must be an absolute https:// URL, got %r" % (option, url))
    return parts


def _error_fields(body, headers):
    """reason_code / description / correlation_id from a Mastercard envelope or an OAuth error."""
    reason_code = description = None
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError, AttributeError):
        data = None
    if isinstance(data, dict):
        errors = data.get("Errors")
        if isinstance(errors, dict):
            items = errors.get("Error")
            if isinstance(items, dict):
                items = [items]
            if isinstance(items, list) and items and isinstance(items[0], dict):
                reason_code = items[0].get("ReasonCode")
                description = items[0].get("Description")
        elif "error" in data:
            reason_code = data.get("error")
            description = data.get("error_description")
    correlation_id = None
    for name in ("Correlation-Id", "X-MC-Correlation-ID", "X-Correlation-Id"):
        for key, value in (headers or {}).items():
            if key.lower() == name.lower():
                correlation_id = value
                break
        if correlation_id:
            break
    if description and len(description) > 300:
        description = description[:300] + "..."
    return reason_code, description, correlation_id


def _json_or_none(body):
    if not body:
        return None
    try:
        data = json.loads(body.decode("utf-8") if isinstance(body, bytes) else body)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(data, dict):
        # A probe's answer is facts; drop anything that looks like a token.
        return dict((k, v) for k, v in data.items() if "token" not in k.lower())
    return None


def _http_failure(status, body, headers, what):
    reason_code, description, correlation_id = _error_fields(body, headers)
    if status == 401:
        cause = "unauthorized"
    elif status == 403:
        cause = "forbidden"
    elif status == 422 and reason_code == "INVALID_CLIENT_CERT":
        cause = "client_certificate_rejected"
    else:
        cause = "http_error"
    msg = "%s answered HTTP %s" % (what, status)
    if reason_code:
        msg += " %s" % reason_code
    if description:
        msg += ": %s" % description
    return VerifyError(cause, msg, status=status, reason_code=reason_code, correlation_id=correlation_id)


def _network_failure(exc, url):
    """Map a socket/TLS exception to a cause and a sentence."""
    import http.client
    import socket
    import ssl

    host = urlsplit(url).netloc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return VerifyError(
            "server_certificate_untrusted",
            "The server certificate of %s is not trusted (%s); set ca_path to the CA that issued it"
            % (host, getattr(exc, "verify_message", None) or exc.reason),
        )
    if isinstance(exc, ConnectionRefusedError):
        return VerifyError("connection_refused", "Connection to %s refused: nothing listens there" % host)
    if isinstance(exc, socket.gaierror):
        return VerifyError("name_resolution", "Cannot resolve %s: %s" % (host, exc))
    if isinstance(exc, (socket.timeout, TimeoutError)):
        return VerifyError("timeout", "No answer from %s within the timeout" % host)
    if isinstance(exc, ssl.SSLError):
        reason = getattr(exc, "reason", None) or str(exc)
        if "CERTIFICATE_VERIFY_FAILED" in str(exc):
            return VerifyError(
                "server_certificate_untrusted",
                "The server certificate of %s is not trusted; set ca_path to the CA that issued it" % host,
            )
        return VerifyError(
            "handshake_refused",
            "%s refused the TLS handshake with the client certificate (%s)" % (host, reason),
            tls_alert=reason,
        )
    if isinstance(exc, (ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected, ssl.SSLEOFError)):
        return VerifyError(
            "handshake_refused",
            "%s closed the connection during or right after the TLS handshake: the client certificate "
            "was refused" % host,
        )
    return VerifyError("connection_error", "Connection to %s failed: %s" % (host, exc))


def _requests_failure(exc, url):
    """Unwrap a requests exception to the socket/TLS error underneath."""
    import socket
    import ssl

    import requests

    seen = set()
    inner = exc
    while inner is not None and id(inner) not in seen:
        seen.add(id(inner))
        if isinstance(inner, (ssl.SSLError, ConnectionRefusedError, socket.gaierror, socket.timeout,
                              TimeoutError, ConnectionResetError)):
            return _network_failure(inner, url)
        nxt = inner.__cause__ or inner.__context__
        if nxt is None and getattr(inner, "args", None):
            candidates = [a for a in inner.args if isinstance(a, BaseException)]
            nxt = candidates[0] if candidates else getattr(inner, "reason", None)
            if not isinstance(nxt, BaseException):
                nxt = None
        inner = nxt
    text = str(exc)
    host = urlsplit(url).netloc
    if isinstance(exc, requests.exceptions.Timeout):
        return VerifyError("timeout", "No answer from %s within the timeout" % host)
    if isinstance(exc, requests.exceptions.SSLError):
        if "CERTIFICATE_VERIFY_FAILED" in text:
            return VerifyError(
                "server_certificate_untrusted",
                "The server certificate of %s is not trusted; set ca_path to the CA that issued it" % host,
            )
        return VerifyError("handshake_refused", "TLS with %s failed: %s" % (host, text))
    if "Connection refused" in text or "Errno 111" in text:
        return VerifyError("connection_refused", "Connection to %s refused: nothing listens there" % host)
    if "Name or service not known" in text or "nodename nor servname" in text:
        return VerifyError("name_resolution", "Cannot resolve %s" % host)
    return VerifyError("connection_error", "Connection to %s failed: %s" % (host, text))


def _requests_verify(ca_path, validate_certs):
    if not validate_certs:
        return False
    return ca_path if ca_path else True


def _ms(start):
    return int(round((time.monotonic() - start) * 1000))


# --------------------------------------------------------------------------
# mTLS
# --------------------------------------------------------------------------


def _server_context(ca_path, validate_certs):
    """TLS 1.2+ client context that checks the probe server's certificate against ca_path or the system CAs."""
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if validate_certs:
        if ca_path:
            try:
                context.load_verify_locations(cafile=ca_path)
            except (ssl.SSLError, OSError) as exc:
                raise VerifyError("invalid_input", "Cannot load ca_path %s: %s" % (ca_path, exc)) from exc
        else:
            context.load_default_certs()
    else:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def _proxy_for(host):
    """The ``HTTPS_PROXY`` that applies to ``host`` (None when unset or when ``NO_PROXY`` covers the host)."""
    proxy = os.environ.get("https_proxy") or os.environ.get("HTTPS_PROXY")
    if not proxy:
        return None
    no_proxy = os.environ.get("no_proxy") or os.environ.get("NO_PROXY") or ""
    host = (host or "").lower()
    for entry in (e.strip().lower().lstrip(".") for e in no_proxy.split(",")):
        if entry == "*" or (entry and (host == entry or host.endswith("." + entry))):
            return None
    return urlsplit(proxy if "://" in proxy else "http://" + proxy)


def _https_call(url, method, headers, body, context, timeout):
    """One HTTPS request with http.client (through an HTTPS_PROXY tunnel when one applies).

    Returns (status, body, headers, latency_ms); network and TLS failures become VerifyError.
    """
    import base64
    import http.client

    parts = _require_https(url)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    proxy = _proxy_for(parts.hostname)
    if proxy:
        connection = http.client.HTTPSConnection(proxy.hostname, proxy.port or 80, context=context,
                                                 timeout=timeout)
        tunnel_headers = {}
        if proxy.username:
            secret = "%s:%s" % (proxy.username, proxy.password or "")
            tunnel_headers["Proxy-Authorization"] = "Basic " + base64.b64encode(secret.encode()).decode("ascii")
        connection.set_tunnel(parts.hostname, parts.port or 443, headers=tunnel_headers)
    else:
        connection = http.client.HTTPSConnection(parts.hostname, parts.port or 443, context=context, timeout=timeout)
    start = time.monotonic()
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        data = response.read(_MAX_BODY)
        latency = _ms(start)
        return response.status, data, dict(response.getheaders()), latency
    except (OSError, http.client.HTTPException) as exc:
        raise _network_failure(exc, url) from exc
    finally:
        connection.close()


def _ssl_context(material, ca_path, validate_certs, workdir):
    import secrets
    import ssl

    from cryptography.hazmat.primitives import serialization

    context = _server_context(ca_path, validate_certs)
    # ssl only loads client credentials from files. The key goes there
    # encrypted with a one-time passphrase that never leaves this process, in
    # a private directory removed right after loading: no clear key on disk.
    one_time = secrets.token_urlsafe(32).encode("ascii")
    cert_file = os.path.join(workdir, "cert.pem")
    key_file = os.path.join(workdir, "key.pem")
    chain = b"".join(c.public_bytes(serialization.Encoding.PEM) for c in [material.certificate] + material.chain)
    key_pem = material.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(one_time),
    )
    for path, data in ((cert_file, chain), (key_file, key_pem)):
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
    try:
        context.load_cert_chain(cert_file, key_file, password=one_time)
    except ssl.SSLError as exc:
        raise VerifyError("key_mismatch", "The TLS library refused the certificate and key: %s" % exc.reason) from exc
    finally:
        for path in (cert_file, key_file):
            try:
                os.unlink(path)
            except OSError:
                pass
    return context


def probe_mtls(material, url, ca_path=None, validate_certs=True, timeout=10, method="GET", tmpdir=None):
    """One HTTPS request presenting the client certificate; returns (status, body, headers, latency_ms)."""
    import shutil
    import tempfile

    _require_https(url)
    workdir = tempfile.mkdtemp(prefix="mc_verify_", dir=tmpdir)
    try:
        os.chmod(workdir, 0o700)
        context = _ssl_context(material, ca_path, validate_certs, workdir)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    return _https_call(url, method, {"Accept": "application/json", "User-Agent": "mcdev.credentials-mc_verify"},
                       None, context, timeout)


# --------------------------------------------------------------------------
# OAuth 1.0a
# --------------------------------------------------------------------------


def probe_oauth1(material, url, consumer_key, ca_path=None, validate_certs=True, timeout=10, method="GET",
                 body=None):
    """One request signed with mastercard-oauth1-signer; returns (status, body, headers, latency_ms).

    Sent with http.client, like the mTLS probe: importing requests would cost this module process more
    than the probe itself.
    """
    from oauth1.oauth import OAuth as _OAuth1

    _require_https(url)
    if not consumer_key:
        raise VerifyError("invalid_input", "oauth1 needs consumer_key")
    payload = None
    if body is not None:
        payload = body if isinstance(body, str) else json.dumps(body)
    try:
        authorization = _OAuth1.get_authorization_header(url, method, payload, consumer_key, material.private_key)
    except Exception as exc:  # the signer raises plain exceptions for unusable keys
        raise VerifyError("invalid_input", "mastercard-oauth1-signer could not sign with this key: %s" % exc) from exc
    headers = {"Authorization": authorization, "Accept": "application/json",
               "User-Agent": "mcdev.credentials-mc_verify"}
    if payload is not None:
        headers["Content-Type"] = "application/json"
    context = _server_context(ca_path, validate_certs)
    return _https_call(url, method, headers, payload.encode("utf-8") if payload is not None else None, context,
                       timeout)


# --------------------------------------------------------------------------
# OAuth 2.0 (FAPI 2.0: private_key_jwt + DPoP)
# --------------------------------------------------------------------------


def _is_nonce_challenge(response):
    if response.status_code not in (400, 401):
        return False
    if "use_dpop_nonce" in response.headers.get("WWW-Authenticate", "").lower():
        return True
    reason_code = _error_fields(response.content, response.headers)[0]
    return reason_code == "use_dpop_nonce"


def probe_oauth2(material, token_url, client_id, kid, issuer=None, scopes=None, url=None, ca_path=None,
                 validate_certs=True, timeout=10, method="GET"):
    """Token exchange (and optional resource call); returns a dict of facts.

    The access token is used and dropped here: it is never returned.
    """
    import requests
    from mastercard_oauth2_client import (
        HttpResponse as _O2HttpResponse,
        OAuth2Config as _O2Config,
        OAuth2ConfigError as _O2ConfigError,
        OAuth2Error as _O2Error,
        OAuth2TokenEndpointError as _O2TokenEndpointError,
        StaticDPoPKeyProvider as _O2DPoPKeyProvider,
        StaticScopeResolver as _O2ScopeResolver,
        build_token_request as _o2_build_token_request,
        create_resource_dpop_proof as _o2_resource_proof,
        generate_ec_key_pair as _o2_generate_ec_key_pair,
        parse_token_response as _o2_parse_token_response,
    )

    token_parts = _require_https(token_url, "token_url")
    if url:
        _require_https(url)
    if not client_id or not kid:
        raise VerifyError("invalid_input", "oauth2 needs client_id and kid")
    issuer_given = bool(issuer)
    if not issuer:
        issuer = "%s://%s" % (token_parts.scheme, token_parts.netloc)
    scope_set = frozenset(s for s in (scopes or []) if s)
    try:
        dpop_pair = _o2_generate_ec_key_pair()
        config = _O2Config(
            client_id=client_id,
            token_endpoint=token_url,
            issuer=issuer,
            client_key=material.private_key,
            key_id=kid,
            scope_resolver=_O2ScopeResolver(scope_set),
            dpop_key_provider=_O2DPoPKeyProvider(dpop_pair),
        )
    except _O2ConfigError as exc:
        raise VerifyError("invalid_input", "mastercard-oauth2-client refused the configuration: %s" % exc) from exc
    dpop_key = config.dpop_key_provider.get_current_key()
    verify = _requests_verify(ca_path, validate_certs)
    session = requests.Session()
    facts = {"token_status": None, "token_latency_ms": None, "nonce_retries": 0, "token_type": None,
             "scopes_granted": None}
    try:
        nonce = None
        start = time.monotonic()
        response = None
        for _attempt in range(2):
            request = _o2_build_token_request(config, scope_set, dpop_key.key_id, nonce)
            try:
                response = session.request(request.method, request.url, headers=dict(request.headers),
                                           data=request.body, timeout=timeout, verify=verify,
                                           allow_redirects=False)
            except requests.exceptions.RequestException as exc:
                raise _requests_failure(exc, token_url) from exc
            new_nonce = response.headers.get("DPoP-Nonce")
            if new_nonce:
                nonce = new_nonce
            if not (_is_nonce_challenge(response) and nonce and facts["nonce_retries"] == 0):
                break
            facts["nonce_retries"] += 1
        facts["token_latency_ms"] = _ms(start)
        facts["token_status"] = response.status_code
        try:
            token = _o2_parse_token_response(
                config, _O2HttpResponse(status=response.status_code, headers=dict(response.headers),
                                        body=response.content),
                scope_set, dpop_key.key_id)
        except _O2TokenEndpointError as exc:
            msg = "The token endpoint refused the exchange: HTTP %s" % exc.status
            if exc.error:
                msg += " %s" % exc.error
            if exc.error_description:
                msg += " (%s)" % exc.error_description
            if exc.error == "invalid_client":
                # The assertion's audience must be the issuer, which need not live where the token endpoint does.
                msg += ("; the client assertion's audience was %s (%s)" %
                        (issuer, "the issuer option" if issuer_given else "the token URL's origin, as no issuer "
                         "was given: set issuer if the authorization server names another, e.g. "
                         "https://auth.mastercard.com"))
            raise VerifyError("token_rejected", msg, status=exc.status, reason_code=exc.error,
                              correlation_id=exc.correlation_id, **facts) from exc
        except _O2Error as exc:
            raise VerifyError("protocol_error", "The token response is not usable: %s" % exc,
                              status=response.status_code, **facts) from exc
        facts["token_type"] = "DPoP"
        facts["scopes_granted"] = sorted(token.scopes)
        facts["token_expires_at"] = _time.iso(token.expires_at)
        facts["dpop_jkt"] = token.jkt
        if not url:
            facts.update(status=response.status_code, latency_ms=facts["token_latency_ms"], body=None,
                         headers=dict(response.headers))
            return facts
        # The DPoP-bound resource call, with one nonce retry as the library does.
        rstart = time.monotonic()
        resource = None
        for _attempt in range(2):
            headers = {
                "Authorization": "DPoP %s" % token.token_value,
                "DPoP": _o2_resource_proof(config, dpop_key.key_id, method, url, token.token_value, nonce),
                "Accept": "application/json",
                "User-Agent": config.user_agent,
            }
            try:
                resource = session.request(method, url, headers=headers, timeout=timeout, verify=verify,
                                           allow_redirects=False)
            except requests.exceptions.RequestException as exc:
                raise _requests_failure(exc, url) from exc
            new_nonce = resource.headers.get("DPoP-Nonce")
            retry = _is_nonce_challenge(resource) and new_nonce and new_nonce != nonce
            if new_nonce:
                nonce = new_nonce
            if not retry:
                break
            facts["nonce_retries"] += 1
        facts["resource_latency_ms"] = _ms(rstart)
        facts.update(status=resource.status_code, latency_ms=_ms(start), body=resource.content[:_MAX_BODY],
                     headers=dict(resource.headers))
        return facts
    finally:
        session.close()


# --------------------------------------------------------------------------
# The entry point the module calls
# --------------------------------------------------------------------------


def run_probe(params, now=None, tmpdir=None):
    """Run the probe described by module params; return the result dict (never raises VerifyError)."""
    kind = params.get("kind")
    now = now or _time.now()
    url = params.get("url")
    result = {
        "kind": kind,
        "success": False,
        "cause": None,
        "msg": "",
        "url": url,
        "status": None,
        "latency_ms": None,
        "reason_code": None,
        "correlation_id": None,
        "fingerprint": None,
        "public_key_fingerprint": None,
        "not_after": None,
        "days_left": None,
        "kid": params.get("kid") if kind == "oauth2" else None,
        "client_id": params.get("client_id") if kind == "oauth2" else None,
        "consumer_key": params.get("consumer_key") if kind == "oauth1" else None,
        "response": None,
    }
    try:
        if kind not in KINDS:
            raise VerifyError("invalid_input", "kind must be one of %s, got %r" % (", ".join(KINDS), kind))
        if kind in ("mtls", "oauth1") and not url:
            raise VerifyError("invalid_input", "url is required for kind=%s (the probe to call)" % kind)
        material = load_material(
            pkcs12_path=params.get("pkcs12_path"),
            pkcs12_password=params.get("pkcs12_password"),
            certificate_path=params.get("certificate_path"),
            private_key_path=params.get("private_key_path"),
            private_key_password=params.get("private_key_password"),
            need_certificate=(kind == "mtls"),
        )
        facts = material.facts(now)
        for name in ("fingerprint", "public_key_fingerprint", "not_after", "days_left"):
            result[name] = facts[name]
        local_checks(material, now, params.get("expected_fingerprint"))
        timeout = params.get("timeout") or 10
        ca_path = params.get("ca_path")
        validate_certs = params.get("validate_certs", True)
        method = (params.get("method") or "GET").upper()
        if kind == "mtls":
            status, body, headers, latency = probe_mtls(material, url, ca_path, validate_certs, timeout, method,
                                                        tmpdir=tmpdir)
            what = "The mTLS probe"
        elif kind == "oauth1":
            status, body, headers, latency = probe_oauth1(material, url, params.get("consumer_key"), ca_path,
                                                          validate_certs, timeout, method)
            what = "The OAuth 1.0a probe"
        else:
            if not params.get("token_url"):
                raise VerifyError("invalid_input", "token_url is required for kind=oauth2")
            facts2 = probe_oauth2(material, params.get("token_url"), params.get("client_id"), params.get("kid"),
                                  params.get("issuer"), params.get("scopes"), url, ca_path, validate_certs,
                                  timeout, method)
            status, body, headers, latency = (facts2.pop("status"), facts2.pop("body"), facts2.pop("headers"),
                                              facts2.pop("latency_ms"))
            result["oauth2"] = facts2
            what = "The DPoP-bound resource call"
        result["status"] = status
        result["latency_ms"] = latency
        if not 200 <= status < 300:
            raise _http_failure(status, body, headers, what)
        result["response"] = _json_or_none(body)
        result["correlation_id"] = _error_fields(b"", headers)[2]
        result["success"] = True
        result["cause"] = "ok"
        result["msg"] = _success_msg(kind, result)
    except VerifyError as exc:
        result["cause"] = exc.cause
        result["msg"] = exc.msg
        extra = dict(exc.extra)
        oauth2_facts = dict((k, extra.pop(k)) for k in list(extra) if k in (
            "token_status", "token_latency_ms", "nonce_retries", "token_type", "scopes_granted"))
        if oauth2_facts:
            result.setdefault("oauth2", {}).update(oauth2_facts)
        for key, value in extra.items():
            if value is not None:
                result[key] = value
    return result


def _success_msg(kind, result):
    if kind == "mtls":
        who = "certificate %s" % result["fingerprint"]
    elif kind == "oauth1":
        who = "consumer key %s" % result["consumer_key"]
    else:
        who = "client %s kid %s" % (result["client_id"], result["kid"])
    return "%s probe succeeded with %s: HTTP %s in %s ms" % (kind, who, result["status"], result["latency_ms"])
