# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one Mastercard Developers API client of the collection.

One DevApiClient per task: one requests.Session, every call signed with
OAuth 1.0a (mastercard-oauth1-signer) using the account's Developers API key,
bounded retries with full-jitter backoff, Mastercard's error envelope mapped to
DevApiError, and typed results (Credential, Project, IssuedCertificate).

Modules use it like this::

    missing = devapi.missing_requirement()
    if missing:
        errors.fail_missing_library(module, missing[0], missing[1])
    try:
        client = devapi.client_from_params(module.params, module.warn)
        creds = client.list_credentials(project_id, environment='sandbox')
    except devapi.DevApiError as exc:
        errors.fail_from(module, exc)

Third-party imports are guarded so that the module_utils import without them
(ansible-test sanity imports module_utils in a bare environment).
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import functools
import json
import os
import random
import re
import time
import traceback
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import quote, urlparse

# The connection options live in connection.py (so a module can take them without importing this
# client); they are re-exported here under their historical names.
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _fingerprint, _time, crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.connection import (  # noqa: F401 pylint: disable=unused-import
    CONNECTION_MUTUALLY_EXCLUSIVE,
    CONNECTION_REQUIRED_TOGETHER,
    DEFAULT_API_URL,
    DEFAULT_RETRIES,
    DEFAULT_TIMEOUT,
    ENV_VARS,
    PASSWORD_FILE_ENV,
    SIGNING_KEY_OPTIONS as _SIGNING_KEY_OPTIONS,
    connection_argument_spec,
    connection_constraints,
)
from ansible_collections.mcdev.credentials.plugins.module_utils.devapi_contract import DEFAULT_CONTRACT, Contract, ContractError
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import python_window_problem

REQUESTS_IMPORT_ERROR = None
try:
    import requests
    import requests.adapters
    import requests.exceptions
    from urllib3.exceptions import InsecureRequestWarning, MaxRetryError, NewConnectionError
    from urllib3.exceptions import ConnectTimeoutError as Urllib3ConnectTimeoutError
    HAS_REQUESTS = True
except ImportError:
    REQUESTS_IMPORT_ERROR = traceback.format_exc()
    HAS_REQUESTS = False

OAUTH1_IMPORT_ERROR = None
try:
    from oauth1 import authenticationutils as oauth1_authenticationutils
    from oauth1.oauth_ext import OAuth1RSA
    HAS_OAUTH1 = True
except ImportError:
    OAUTH1_IMPORT_ERROR = traceback.format_exc()
    HAS_OAUTH1 = False

CRYPTOGRAPHY_IMPORT_ERROR = None
try:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import pkcs12
    HAS_CRYPTOGRAPHY = True
except ImportError:
    CRYPTOGRAPHY_IMPORT_ERROR = traceback.format_exc()
    HAS_CRYPTOGRAPHY = False


def missing_requirement():
    """Return (pip package name, traceback) of the first missing library, or None.

    Modules pass both to errors.fail_missing_library().
    """
    if not HAS_REQUESTS:
        return 'requests', REQUESTS_IMPORT_ERROR
    if not HAS_CRYPTOGRAPHY:
        return 'cryptography', CRYPTOGRAPHY_IMPORT_ERROR
    if not HAS_OAUTH1:
        return 'mastercard-oauth1-signer', OAUTH1_IMPORT_ERROR
    return None


def _missing_library_error(package, operation):
    return DevApiError(reason_code='MISSING_LIBRARY', operation=operation,
                       description='the Python library %s is not installed' % package,
                       hint=python_window_problem(package)
                       or 'install it where the module runs (pip install %s)' % package)


# ---------------------------------------------------------------------------
# The API vocabulary: every path, verb, query parameter, body and record field,
# value and reason code the client uses is an entry of the contract
# (devapi_contract_data.py, with its evidence), which a user may correct with a
# contract file (contract_path). Nothing below spells an API name.
# ---------------------------------------------------------------------------

LIST_PAGE_SIZE = 100


def _word(entry):
    return DEFAULT_CONTRACT['values'][entry]['value']


# The client's own words for the API's values (the contract's defaults); records are read into them.
TYPE_MTLS = _word('type_mtls')
TYPE_SIGNING = _word('type_signing')
OAUTH_VERSION_1 = _word('oauth_version_1')
OAUTH_VERSION_2 = _word('oauth_version_2')
STATUS_ACTIVE = _word('status_active')
STATUS_REVOKED = _word('status_revoked')
ENVIRONMENTS = (_word('environment_sandbox'), _word('environment_production'))

# kind (module vocabulary) -> (API type, oauthVersion), in the client's words
KIND_TO_API = {
    'mtls': (TYPE_MTLS, None),
    'oauth1': (TYPE_SIGNING, OAUTH_VERSION_1),
    'oauth2': (TYPE_SIGNING, OAUTH_VERSION_2),
}
_DEFAULT = Contract()

# Response headers that carry the correlation id (seen in the OAuth 2.0 docs).
CORRELATION_HEADERS = ('Correlation-Id', 'X-MC-Correlation-ID')

# ---------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------

# What a person should do about a reason code. Keys are API reason codes or the
# client's own codes (CONNECTION_FAILED, TLS_ERROR, ...).
REASON_HINTS = {
    'AUTHENTICATION_FAILED': 'check that consumer_key and the signing key (signing_key_path or signing_key_content) '
                             'belong to the same Developers API key, and that this host\'s clock is correct',
    'INVALID_CONSUMER_KEY': 'check consumer_key; the Developers API key may have been deleted, or belong to another account',  # assumed code
    'INVALID_TIMESTAMP': 'set the clock of the host that runs the module right (NTP); signed requests carry a timestamp',  # assumed code
    'NONCE_ALREADY_USED': 'a request was replayed; run the task again',  # assumed code
    'INVALID_AUTH_HEADER': 'check consumer_key; it must be the Developers API key\'s consumer key exactly as the Account page shows it',
    'INVALID_BODY_HASH': 'a proxy may be rewriting request bodies; send the request directly or report it as a bug',
    'DECLINED': 'the Developers API key is valid but not entitled; accept the Developers API terms on the Account page',
    'BAD_REQUEST': 'check the project and credential ids you passed',
    'PROJECT_NOT_FOUND': 'check project_id, and that the account of the Developers API key can see the project',
    'CREDENTIAL_NOT_FOUND': 'check credential_id; list the project\'s credentials to see which exist',
    'NOT_FOUND': 'check the ids you passed and api_url',
    'NO_ACCESS_TO_PROJECT': 'ask a project owner to add the Developers API key\'s account to the project',
    'NO_ACCESS_TO_CREDENTIAL': 'a read-only member cannot change credentials; use a Developers API key of a project owner or editor',
    'INVALID_CSR': 'check the CSR: PKCS#10 PEM with a CN, an allowed signature algorithm, and an RSA key for OAuth 1.0a',
    'INVALID_KEY_TYPE': 'this operation does not apply to this credential type',
    'INVALID_CREDENTIAL_STATUS': 'only ACTIVE can be set as a credential status',
    'ACTIVATING_EXPIRED_KEY': 'an expired credential cannot be activated; create a new one instead',
    'PROJECT_TYPE_NOT_SUPPORTED': 'the project\'s auth model does not allow this credential kind (an OAUTH10A project holds no mTLS certificates)',
    'INVALID_PROJECT_STATUS': 'the project is not in a state that allows this change',
    'MAX_OAUTH2_KEYS_EXCEEDED': 'revoke one of the project\'s active OAuth 2.0 keys before adding another',
    'DUPLICATE_CERTIFICATE': 'the renewed certificate would carry the same subject DN as an active one; '
                             'use a new common name (e.g. with a fresh epoch prefix) for the CSR',
    'CREDENTIAL_ALIAS_ALREADY_EXISTS': 'choose another alias, or adopt the existing credential with that alias',
    'UNTRUSTED_CERTIFICATE': 'upload a certificate issued by a CA that Mastercard trusts, or send a CSR instead',
    'EXPIRED_CERTIFICATE': 'the uploaded certificate has expired; upload a current one',
    'REVOKE_LAST_ACTIVE_CREDENTIAL': 'create and deploy a replacement before revoking the last active credential',
    'REVOKE_ACTIVE_MASTERCARD_ENCRYPTION_CREDENTIAL_ERROR': 'activate another key of this kind before revoking this one',
    'REVOKE_LAST_CLIENT_ENCRYPTION_CREDENTIAL_ERROR': 'add another client encryption key before revoking the last one',
    'RENEWAL_NOT_SUPPORTED': 'rotate instead: create a new credential, deploy it, then revoke the old one',
    'RATE_LIMIT_EXCEEDED': 'the API is rate limiting this account; run fewer API tasks in parallel (forks, serial) or retry later',
    'TOO_MANY_REQUESTS': 'the API is rate limiting this account; run fewer API tasks in parallel (forks, serial) or retry later',
    'SERVICE_UNAVAILABLE': 'the API or its gateway is unavailable; retry later or raise retries',
    'CONNECTION_FAILED': 'check api_url and that this host can reach it (proxy, firewall); '
                         'API tasks run on the host that executes the module, usually localhost',
    'TIMEOUT': 'the API did not answer in time; raise timeout or retry later',
    'TLS_ERROR': 'the API server certificate could not be verified; set ca_path to the CA bundle that signs it',
    'OUTCOME_UNKNOWN': 'the request may or may not have taken effect; read the current state before trying again',
    'UNEXPECTED_RESPONSE': 'check api_url; it must point at the Developers API base URL',
}

STATUS_HINTS = {
    401: 'the gateway rejected the Developers API key; check consumer_key and the signing key, and that the key is for this environment',
    403: 'the Developers API key is not allowed to do this; check the account\'s role on the project',
    404: 'check the ids you passed and api_url',
    408: REASON_HINTS['TIMEOUT'],
    429: REASON_HINTS['TOO_MANY_REQUESTS'],
    500: REASON_HINTS['SERVICE_UNAVAILABLE'],
    502: REASON_HINTS['SERVICE_UNAVAILABLE'],
    503: REASON_HINTS['SERVICE_UNAVAILABLE'],
    504: REASON_HINTS['SERVICE_UNAVAILABLE'],
}

_MAX_DESCRIPTION_CHARS = 300
# The gateway echoes its signature base string in AUTHENTICATION_FAILED; it is
# long and no help to the reader of a task failure, so str() leaves it out.
_BASE_STRING_RE = re.compile(r'\s*Acceptable signature base string:.*$', re.IGNORECASE | re.DOTALL)
# Belt and braces: never let an OAuth header or a PEM key through into a message.
_SECRET_PATTERNS = (
    re.compile(r'OAuth\s+oauth_[^\n]*', re.IGNORECASE),
    re.compile(r'oauth_signature="?[^",\s]+"?', re.IGNORECASE),
    re.compile(r'-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)', re.DOTALL),
)


def redact(text):
    """Remove Authorization header values and private keys from text meant for people."""
    if not text:
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub('[redacted]', text)
    return text


def _clean_description(text):
    if text is None:
        return None
    text = _BASE_STRING_RE.sub('', str(text))
    text = redact(' '.join(text.split()))
    if len(text) > _MAX_DESCRIPTION_CHARS:
        text = text[:_MAX_DESCRIPTION_CHARS - 1].rstrip() + '\u2026'
    return text.rstrip(' .')


class DevApiError(CollectionError):
    """A failed Developers API call, or a client-side problem with the connection options.

    status is the HTTP status (None when no answer arrived or for option
    errors); reason_code is Mastercard's ReasonCode, or one of the client's own
    codes (CONNECTION_FAILED, TIMEOUT, TLS_ERROR, OUTCOME_UNKNOWN,
    UNEXPECTED_RESPONSE, INVALID_OPTION). str() is one sentence with what to do.
    """

    def __init__(self, status=None, reason_code=None, description=None, correlation_id=None, source=None,
                 operation=None, details=None, recoverable=None, retry_after=None, attempts=1, hint=None,
                 reason_codes=None):
        self.status = status
        self.reason_code = reason_code
        self.description = description
        self.correlation_id = correlation_id
        self.source = source
        self.operation = operation
        self.details = details
        self.recoverable = recoverable
        self.retry_after = retry_after
        self.attempts = attempts
        self.reason_codes = list(reason_codes or ([reason_code] if reason_code else []))
        self.hint = hint if hint is not None else REASON_HINTS.get(reason_code) or STATUS_HINTS.get(status)
        super().__init__(self.message)

    @property
    def message(self):
        what = self.operation or 'Developers API call'
        if self.status is not None:
            code = 'HTTP %s%s' % (self.status, ' ' + self.reason_code if self.reason_code else '')
            text = '%s failed with %s' % (_capitalize(what), code)
        elif self.reason_code:
            text = '%s failed (%s)' % (_capitalize(what), self.reason_code)
        else:
            text = '%s failed' % _capitalize(what)
        description = _clean_description(self.description)
        if description:
            text += ': ' + description
        if self.attempts and self.attempts > 1:
            text += ' (after %d attempts)' % self.attempts
        if self.hint:
            text += '; ' + self.hint
        if self.correlation_id:
            text += ' (correlation id %s)' % self.correlation_id
        return text + '.'

    def __str__(self):
        return self.message

    def fields(self):
        return {'status': self.status, 'reason_code': self.reason_code, 'correlation_id': self.correlation_id,
                'source': self.source, 'option': getattr(self, 'option', None)}


class DevApiConfigError(DevApiError):
    """A connection option is missing or wrong; `option` names it."""

    def __init__(self, option, description, hint=None):
        self.option = option
        super().__init__(reason_code='INVALID_OPTION', description=description, operation='Setting up the Developers API client',
                         hint=hint or '')

    @property
    def message(self):
        text = 'Invalid Developers API connection option %s: %s' % (self.option, _clean_description(self.description))
        if self.hint:
            text += '; ' + self.hint
        return text + '.'


def _capitalize(text):
    return text[:1].upper() + text[1:]


def _lookup(mapping, name):
    """dict.get() that ignores the case of the key (gateways are not consistent)."""
    if not isinstance(mapping, dict):
        return None
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    for key, value in mapping.items():
        if isinstance(key, str) and key.lower() == lowered:
            return value
    return None


def parse_error_response(status, body, headers=None, operation=None, attempts=1, retry_after=None):
    """Turn an error answer (status, raw body bytes/str, headers) into a DevApiError.

    Understands Mastercard's envelope {"Errors": {"Error": [...]}} (Developers
    API and gateway alike), an OAuth 2.0 style {"error", "error_description"},
    and bodies that are not JSON at all (an HTML page from a proxy).
    """
    headers = headers or {}
    correlation_id = None
    for name in CORRELATION_HEADERS:
        value = _header(headers, name)
        if value:
            correlation_id = value
            break
    if isinstance(body, bytes):
        body = body.decode('utf-8', errors='replace')
    document = None
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            document = None

    kwargs = dict(status=status, correlation_id=correlation_id, operation=operation, attempts=attempts, retry_after=retry_after)
    if isinstance(document, dict):
        errors = _lookup(document, 'Errors')
        entries = _lookup(errors, 'Error') if isinstance(errors, dict) else errors
        if isinstance(entries, dict):
            entries = [entries]
        if isinstance(entries, list) and entries and all(isinstance(e, dict) for e in entries):
            first = entries[0]
            return DevApiError(
                reason_code=_lookup(first, 'ReasonCode'),
                description=_lookup(first, 'Description'),
                source=_lookup(first, 'Source'),
                details=_lookup(first, 'Details'),
                recoverable=_lookup(first, 'Recoverable'),
                reason_codes=[_lookup(e, 'ReasonCode') for e in entries if _lookup(e, 'ReasonCode')],
                **kwargs)
        if isinstance(document.get('error'), str):
            return DevApiError(reason_code=document['error'], description=document.get('error_description'), **kwargs)
    content_type = _header(headers, 'Content-Type') or 'no content type'
    if body:
        description = 'the server answered with a body that is not a Mastercard error (%s)' % content_type.split(';')[0]
    else:
        description = 'the server answered with an empty body'
    return DevApiError(description=description, **kwargs)


def _header(headers, name):
    try:
        return headers.get(name)  # requests' CaseInsensitiveDict, or a plain dict
    except AttributeError:
        return None


# ---------------------------------------------------------------------------
# Retry policy
# ---------------------------------------------------------------------------

RETRY_STATUSES = frozenset((408, 429, 500, 502, 503, 504))
# Answers that prove the request was not acted upon, so even a create may be resent.
NOT_COMMITTED_STATUSES = frozenset((408, 429))
# Answers that may mean the request did not match the API (a path, verb or field the contract has wrong).
CONTRACT_STATUSES = frozenset((400, 404, 405, 415, 422))
# Reason codes that say no more than the status (a route or field the API does not know).
GENERIC_REASONS = frozenset(('BAD_REQUEST', 'NOT_FOUND', 'METHOD_NOT_ALLOWED', 'UNSUPPORTED_MEDIA_TYPE'))
MAX_RETRY_AFTER_SECONDS = 60.0
DEFAULT_RETRY_DEADLINE = 120.0
DEFAULT_BACKOFF_BASE = 0.5
DEFAULT_BACKOFF_CAP = 16.0


def parse_retry_after(value, now=None):
    """Seconds to wait from a Retry-After header value (delta-seconds or HTTP-date); None if unusable.

    Never negative; clamping to the client's maximum is the caller's job.
    """
    if value is None:
        return None
    value = str(value).strip()
    if not value:
        return None
    if re.match(r'^\d+(\.\d+)?$', value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=_time.UTC)
    now = now or _time.now()
    return max(0.0, (when - now).total_seconds())


def backoff_delay(retry_number, rng, base=DEFAULT_BACKOFF_BASE, cap=DEFAULT_BACKOFF_CAP):
    """Full-jitter exponential backoff: uniform(0, min(cap, base * 2**(retry_number - 1)))."""
    ceiling = min(cap, base * (2 ** max(0, retry_number - 1)))
    return rng.uniform(0, ceiling)


class _RetryBudget:
    """Retries left and the deadline for one logical call (shared by a create and its adoption)."""

    def __init__(self, retries, deadline_seconds, clock):
        self.retries_left = retries
        self.deadline = clock() + deadline_seconds
        self.attempts = 0
        self.retries_done = 0


class _AmbiguousOutcome(Exception):
    """A non-idempotent request was sent but its outcome is unknown."""

    def __init__(self, error):
        super().__init__(str(error))
        self.error = error


class _TransportFailure(Exception):
    def __init__(self, reason_code, description, sent):
        super().__init__(description)
        self.reason_code = reason_code
        self.description = description
        self.sent = sent


# ---------------------------------------------------------------------------
# Typed records
# ---------------------------------------------------------------------------


def _serial_hex(value):
    """A certificate serial number as lowercase hex digits only (the API may send it with colons)."""
    if value in (None, ''):
        return None
    return re.sub(r'[^0-9a-f]', '', str(value).lower()) or None


def kind_of(api_type, oauth_version):
    """Derive the module-level kind (mtls / oauth1 / oauth2) from the API type and OAuth version."""
    api_type = (api_type or '').upper()
    if api_type == TYPE_MTLS:
        return 'mtls'
    if api_type == TYPE_SIGNING:
        return 'oauth2' if str(oauth_version or '').startswith('2') else 'oauth1'
    return None


def _certificate_facts(certificate_pem):
    """fingerprint, public key fingerprint, serial, subject, not_after of a PEM certificate ({} if unavailable)."""
    if not certificate_pem or not HAS_CRYPTOGRAPHY:
        return {}
    try:
        cert = crypto.load_certificate(certificate_pem, "the certificate the API returned")
    except crypto.CryptoError:
        return {}
    return {
        'fingerprint': crypto.certificate_fingerprint(cert),
        'public_key_fingerprint': crypto.public_key_fingerprint(cert),
        'serial': '%x' % cert.serial_number,
        'subject': cert.subject.rfc4514_string(),
        'expires': cert.not_valid_after_utc,
    }


def csr_public_key_fingerprint(csr_pem):
    """SHA-256 hex of the CSR's SubjectPublicKeyInfo (None if it cannot be parsed)."""
    if not csr_pem or not HAS_CRYPTOGRAPHY:
        return None
    try:
        return crypto.public_key_fingerprint(crypto.load_csr(csr_pem, "the CSR"))
    except crypto.CryptoError:
        return None


@dataclass
class Credential:
    """One project credential as the API reports it. Holds no secret (a credential record has none)."""

    id: str
    alias: str | None = None
    type: str | None = None
    kind: str | None = None
    environment: str | None = None
    status: str | None = None
    oauth_version: str | None = None
    consumer_key: str | None = None
    client_id: str | None = None
    kid: str | None = None
    fingerprint: str | None = None
    public_key_fingerprint: str | None = None
    serial: str | None = None
    subject: str | None = None
    created: datetime | None = None
    expires: datetime | None = None
    certificate_pem: str | None = field(default=None, repr=False)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data, contract=None):
        contract = contract or _DEFAULT
        if not isinstance(data, dict):
            raise DevApiError(reason_code='UNEXPECTED_RESPONSE', description='a credential record was expected, got %s' % type(data).__name__)
        values = contract.read('credential_fields', data)
        for group in ('type', 'status', 'oauth_version', 'environment'):
            values[group] = contract.our_word(group, values[group])
        if values['id'] is None:
            raise DevApiError(reason_code='UNEXPECTED_RESPONSE', description='a credential record without an id')
        values['id'] = str(values['id'])
        values['created'] = _time.parse_or_none(values['created'])
        values['expires'] = _time.parse_or_none(values['expires'])
        values['fingerprint'] = _fingerprint.normalize(values['fingerprint'])
        values['public_key_fingerprint'] = _fingerprint.normalize(values['public_key_fingerprint'])
        values['serial'] = _serial_hex(values['serial'])
        # Fill what the record lacks from the certificate itself.
        for attr, value in _certificate_facts(values['certificate_pem']).items():
            if values.get(attr) is None:
                values[attr] = value
        values['kind'] = kind_of(values['type'], values['oauth_version'])
        return cls(raw=dict(data), **values)

    def to_dict(self, include_certificate=False):
        """Plain dict for module results; dates as ISO 8601 UTC. The PEM only on request."""
        result = {
            'id': self.id, 'alias': self.alias, 'type': self.type, 'kind': self.kind,
            'environment': self.environment.lower() if self.environment else None,
            'status': self.status, 'oauth_version': self.oauth_version,
            'consumer_key': self.consumer_key, 'client_id': self.client_id, 'kid': self.kid,
            'fingerprint': self.fingerprint, 'public_key_fingerprint': self.public_key_fingerprint,
            'serial': self.serial, 'subject': self.subject,
            'created': _time.iso(self.created), 'expires': _time.iso(self.expires),
        }
        if include_certificate:
            result['certificate_pem'] = self.certificate_pem
        return result


@dataclass
class Project:
    id: str
    name: str | None = None
    auth_model: str | None = None
    oauth2_enabled: bool = False
    environments: list = field(default_factory=list)
    raw: dict = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_api(cls, data, contract=None):
        contract = contract or _DEFAULT
        if not isinstance(data, dict) or data.get(contract.name('project_fields', 'id')) is None:
            raise DevApiError(reason_code='UNEXPECTED_RESPONSE', description='a project record was expected')
        values = contract.read('project_fields', data)
        values['id'] = str(values['id'])
        values['oauth2_enabled'] = bool(values['oauth2_enabled'])
        values['environments'] = list(values['environments'] or [])
        return cls(raw=dict(data), **values)

    def to_dict(self):
        return {'id': self.id, 'name': self.name, 'auth_model': self.auth_model,
                'oauth2_enabled': self.oauth2_enabled,
                'environments': [env.lower() for env in self.environments]}


@dataclass
class IssuedCertificate:
    certificate_pem: str
    chain_pem: list = field(default_factory=list)

    def full_chain_pem(self):
        """Leaf first, then the chain, as one PEM text."""
        parts = [self.certificate_pem] + list(self.chain_pem)
        return ''.join(part if part.endswith('\n') else part + '\n' for part in parts)


# ---------------------------------------------------------------------------
# The client
# ---------------------------------------------------------------------------

def _api_environment(environment):
    if environment is None:
        return None
    value = str(environment).upper()
    if value not in ENVIRONMENTS:
        raise DevApiError(reason_code='INVALID_OPTION', operation='Choosing the environment',
                          description='environment must be sandbox or production, got %r' % environment, hint='')
    return value


def _check_api_url(api_url):
    """Return the URL without a trailing slash; refuse anything but https://."""
    if not api_url:
        raise DevApiConfigError('api_url', 'no Developers API URL given',
                                hint='set api_url or the MC_DEVAPI_URL environment variable on the host that runs the module')
    parsed = urlparse(str(api_url))
    if parsed.scheme.lower() == 'http':
        raise DevApiConfigError('api_url', 'plain http:// is refused (%s): requests and credentials would cross the network '
                                'unencrypted' % api_url, hint='use the https:// URL of the Developers API')
    if parsed.scheme.lower() != 'https' or not parsed.netloc:
        raise DevApiConfigError('api_url', '%r is not an https:// URL' % str(api_url),
                                hint='use the https:// URL of the Developers API, e.g. %s' % DEFAULT_API_URL)
    return str(api_url).rstrip('/')


class DevApiClient:
    """Developers API client for one task. Not thread-safe; one per module run.

    signing_key is a loaded RSA private key (see load_signing_key()). sleep,
    clock (monotonic seconds), now (aware UTC datetime) and rng are injectable
    for tests. Counters: call_count (HTTP requests sent, retries included),
    calls_by_op (same, per operation), retry_count. notes lists what the
    client did on its own (retries, adoption) for modules to report.
    """

    def __init__(self, api_url, consumer_key, signing_key, ca_path=None, validate_certs=True, timeout=DEFAULT_TIMEOUT,
                 retries=DEFAULT_RETRIES, retry_deadline=DEFAULT_RETRY_DEADLINE, backoff_base=DEFAULT_BACKOFF_BASE,
                 backoff_cap=DEFAULT_BACKOFF_CAP, warn=None, sleep=None, clock=None, now=None, rng=None, user_agent=None,
                 contract=None):
        missing = missing_requirement()
        if missing:
            raise _missing_library_error(missing[0], 'Setting up the Developers API client')
        self.api_url = _check_api_url(api_url)
        if not consumer_key:
            raise DevApiConfigError('consumer_key', 'no consumer key given',
                                    hint='set consumer_key or MC_DEVAPI_CONSUMER_KEY to the Developers API key\'s consumer key')
        self.consumer_key = consumer_key
        self.contract = contract or _DEFAULT
        self.validate_certs = bool(validate_certs)
        self.ca_path = ca_path
        self.timeout = float(timeout)
        self.retries = max(0, int(retries))
        self.retry_deadline = float(retry_deadline)
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self._warn = warn or (lambda message: None)
        self._sleep = sleep or time.sleep
        self._clock = clock or time.monotonic
        self._now = now or _time.now
        self._rng = rng or random.Random()
        self.call_count = 0
        self.retry_count = 0
        self.calls_by_op = {}
        self.notes = []
        self.last_create_adopted = False
        if not self.validate_certs:
            self._warn('validate_certs is false: the Developers API server certificate is not verified, so an impostor could '
                       'receive signed requests and return forged credentials; set ca_path instead where a private CA is used')
            self._verify = False
        else:
            self._verify = ca_path if ca_path else True
        self._session = requests.Session()
        # Retries are this class's job (policy per verb, adoption); the adapter must not resend anything.
        adapter = requests.adapters.HTTPAdapter(max_retries=0)
        self._session.mount('https://', adapter)
        self._session.auth = OAuth1RSA(consumer_key, signing_key)
        self._session.headers.update({
            'Accept': 'application/json',
            'User-Agent': user_agent or 'mcdev.credentials devapi (python-requests)',
        })

    # -- lifecycle ---------------------------------------------------------

    def close(self):
        self._session.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.close()

    # -- operations --------------------------------------------------------

    def get_project(self, project_id):
        """The project record (auth model, OAuth 2.0 upgrade state, environments)."""
        data = self._call('get_project', {'project_id': project_id}, what='getting project %s' % project_id)
        return Project.from_api(data, self.contract)

    def list_credentials(self, project_id, environment=None, credential_type=None, kind=None, page_size=LIST_PAGE_SIZE):
        """All credentials of a project, following pagination.

        environment: sandbox / production (any case). credential_type: API type
        (MTLS, SIGNING). kind: mtls / oauth1 / oauth2 (sets the API type and
        filters on the OAuth version locally).
        """
        if kind is not None:
            if kind not in KIND_TO_API:
                raise DevApiError(reason_code='INVALID_OPTION', operation='Listing credentials', hint='',
                                  description='kind must be one of %s, got %r' % (', '.join(sorted(KIND_TO_API)), kind))
            credential_type = KIND_TO_API[kind][0]
        contract = self.contract
        query = {}
        if environment is not None:
            query[contract.name('list_query', 'environment')] = contract.api_value('environment', _api_environment(environment))
        if credential_type is not None:
            query[contract.name('list_query', 'type')] = contract.api_value('type', str(credential_type).upper())
        what = 'listing credentials of project %s' % project_id
        credentials = []
        offset = 0
        seen_ids = set()
        for _page in range(10000):  # a bound against a server that never ends its pages
            query[contract.name('list_query', 'offset')] = str(offset)
            query[contract.name('list_query', 'limit')] = str(page_size)
            data = self._call('list_credentials', {'project_id': project_id}, query=dict(query), what=what)
            items, total = self._page_items(data, what)
            new_items = 0
            for item in items:
                credential = Credential.from_api(item, self.contract)
                if credential.id in seen_ids:
                    continue
                seen_ids.add(credential.id)
                credentials.append(credential)
                new_items += 1
            offset += len(items)
            if not items or new_items == 0 or total is None or offset >= total:
                break
        if kind is not None:
            credentials = [c for c in credentials if c.kind == kind]
        return credentials

    def get_credential(self, project_id, credential_id):
        data = self._call('get_credential', {'project_id': project_id, 'credential_id': credential_id},
                          what='getting credential %s of project %s' % (credential_id, project_id))
        return Credential.from_api(data, self.contract)

    def create_credential(self, project_id, kind, environment, alias, csr_pem=None, certificate_pem=None):
        """Add a credential from a CSR (Mastercard certifies its key) or from an uploaded certificate.

        Never blindly resent: when the outcome of a POST is unknown (connection
        lost after sending, timeout, 5xx), the project's credentials are listed
        and the one with this alias (and this public key, when known) is
        adopted; the create is sent again only if no such credential exists.
        client.last_create_adopted tells whether the result was adopted.
        """
        if kind not in KIND_TO_API:
            raise DevApiError(reason_code='INVALID_OPTION', operation='Creating a credential', hint='',
                              description='kind must be one of %s, got %r' % (', '.join(sorted(KIND_TO_API)), kind))
        if bool(csr_pem) == bool(certificate_pem):
            raise DevApiError(reason_code='INVALID_OPTION', operation='Creating a credential', hint='',
                              description='give exactly one of a CSR or a certificate')
        if not alias:
            raise DevApiError(reason_code='INVALID_OPTION', operation='Creating a credential', hint='',
                              description='an alias is required; it is how a create whose answer was lost is recognised')
        api_type, oauth_version = KIND_TO_API[kind]
        api_environment = _api_environment(environment)
        field_name = functools.partial(self.contract.name, 'create_fields')
        body = {field_name('type'): self.contract.api_value('type', api_type),
                field_name('environment'): self.contract.api_value('environment', api_environment),
                field_name('alias'): alias}
        if oauth_version:
            body[field_name('oauth_version')] = self.contract.api_value('oauth_version', oauth_version)
        if csr_pem:
            body[field_name('csr')] = csr_pem
            expected = {'public_key_fingerprint': csr_public_key_fingerprint(csr_pem)}
        else:
            body[field_name('certificate')] = certificate_pem
            expected = {key: value for key, value in _certificate_facts(certificate_pem).items()
                        if key in ('fingerprint', 'public_key_fingerprint')}
        what = 'creating %s credential %r in project %s' % (kind, alias, project_id)
        self.last_create_adopted = False
        budget = self._new_budget()
        while True:
            try:
                data = self._call('create_credential', {'project_id': project_id}, body=body, what=what,
                                  idempotent=False, budget=budget)
                return Credential.from_api(data, self.contract)
            except _AmbiguousOutcome as ambiguous:
                adopted = self._find_created(project_id, api_environment, api_type, kind, alias, expected)
                if adopted is not None:
                    self.last_create_adopted = True
                    self.notes.append('the answer to creating %r was lost; adopted credential %s, which the API had created'
                                      % (alias, adopted.id))
                    return adopted
                wait = self._next_wait(budget, None)
                if wait is None:
                    raise ambiguous.error from ambiguous
                self.notes.append('the answer to creating %r was lost and no such credential exists; creating it again' % alias)
                self._sleep(wait)
            except DevApiError as exc:
                # Our own earlier attempt may have created it after all (lost answer, then a resend).
                if budget.attempts > 1 and exc.reason_code == self.contract.reason_code('alias_exists'):
                    adopted = self._find_created(project_id, api_environment, api_type, kind, alias, expected)
                    if adopted is not None:
                        self.last_create_adopted = True
                        self.notes.append('adopted credential %s created by an earlier attempt' % adopted.id)
                        return adopted
                raise

    def _find_created(self, project_id, api_environment, api_type, kind, alias, expected):
        candidates = [c for c in self.list_credentials(project_id, environment=api_environment, credential_type=api_type)
                      if c.alias == alias and (c.kind == kind or c.kind is None)]
        for attr, value in expected.items():
            if value:
                candidates = [c for c in candidates if getattr(c, attr) == value]
        if not candidates:
            return None
        # Prefer an active one, then the newest.
        candidates.sort(key=lambda c: (c.status == STATUS_ACTIVE, c.created or _time.EARLIEST))
        return candidates[-1]

    def revoke_credential(self, project_id, credential_id):
        """Revoke (DELETE). A resend that finds the credential already revoked counts as success."""
        params = {'project_id': project_id, 'credential_id': credential_id}
        what = 'revoking credential %s of project %s' % (credential_id, project_id)
        try:
            data = self._call('revoke_credential', params, what=what)
        except DevApiError as exc:
            # A resent DELETE may find its own earlier success.
            if exc.attempts > 1 and exc.status in (400, 404, 409, 410):
                current = self.get_credential(project_id, credential_id)
                if (current.status or '').upper() == STATUS_REVOKED:
                    return current
            raise
        if isinstance(data, dict) and data:
            return Credential.from_api(data, self.contract)
        return self.get_credential(project_id, credential_id)

    def activate_credential(self, project_id, credential_id):
        data = self._call('activate_credential', {'project_id': project_id, 'credential_id': credential_id},
                          body={self.contract.name('activate_fields', 'status'): self.contract.api_value('status', STATUS_ACTIVE)},
                          what='activating credential %s of project %s' % (credential_id, project_id))
        return Credential.from_api(data, self.contract)

    def renew_credential(self, project_id, credential_id):
        """Renew with key reuse (OAuth 1.0a). Not resent after an unknown outcome: that raises OUTCOME_UNKNOWN."""
        what = 'renewing credential %s of project %s' % (credential_id, project_id)
        try:
            data = self._call('renew_credential', {'project_id': project_id, 'credential_id': credential_id},
                              body={}, what=what, idempotent=False)
        except _AmbiguousOutcome as ambiguous:
            error = ambiguous.error
            raise DevApiError(status=error.status, reason_code='OUTCOME_UNKNOWN', operation=what,
                              description='the answer was lost (%s), so the renewal may or may not have happened'
                              % (error.reason_code or 'HTTP %s' % error.status),
                              correlation_id=error.correlation_id, attempts=error.attempts,
                              hint='get or list the credential to see whether it carries a new certificate before renewing again') from ambiguous
        return Credential.from_api(data, self.contract)

    def upgrade_project_oauth2(self, project_id):
        """One-time upgrade of a project to OAuth 2.0. After an unknown outcome, reads the project before resending."""
        what = 'upgrading project %s to OAuth 2.0' % project_id
        budget = self._new_budget()
        while True:
            try:
                data = self._call('upgrade_project_oauth2', {'project_id': project_id}, body={}, what=what,
                                  idempotent=False, budget=budget)
                return Project.from_api(data, self.contract)
            except _AmbiguousOutcome as ambiguous:
                project = self.get_project(project_id)
                if project.oauth2_enabled:
                    self.notes.append('the answer to upgrading project %s was lost; it is upgraded' % project_id)
                    return project
                wait = self._next_wait(budget, None)
                if wait is None:
                    raise ambiguous.error from ambiguous
                self._sleep(wait)

    def get_certificate(self, project_id, credential_id):
        """The issued certificate and its chain (PEM)."""
        data = self._call('get_certificate', {'project_id': project_id, 'credential_id': credential_id},
                          what='getting the certificate of credential %s of project %s' % (credential_id, project_id))
        certificate = data.get(self.contract.name('certificate_fields', 'certificate')) if isinstance(data, dict) else None
        if not certificate:
            raise DevApiError(reason_code='UNEXPECTED_RESPONSE', operation='getting the certificate of credential %s' % credential_id,
                              description='the answer holds no certificate')
        chain = data.get(self.contract.name('certificate_fields', 'chain')) or []
        if isinstance(chain, str):
            chain = [chain]
        return IssuedCertificate(certificate_pem=certificate, chain_pem=list(chain))

    # -- transport ---------------------------------------------------------

    def _new_budget(self):
        return _RetryBudget(self.retries, self.retry_deadline, self._clock)

    def _next_wait(self, budget, retry_after):
        """Seconds to sleep before the next attempt, or None when retries or the deadline are used up."""
        if budget.retries_left <= 0:
            return None
        if retry_after is not None:
            wait = min(max(0.0, retry_after), MAX_RETRY_AFTER_SECONDS)
        else:
            wait = backoff_delay(budget.retries_done + 1, self._rng, self.backoff_base, self.backoff_cap)
        if self._clock() + wait > budget.deadline:
            return None
        budget.retries_left -= 1
        budget.retries_done += 1
        self.retry_count += 1
        return wait

    def _url(self, op, path_params):
        method, path = self.contract.endpoint(op)
        # Ids go into the path percent-encoded, so no id can change the path that is signed and sent.
        quoted = {name: quote(str(value), safe='') for name, value in path_params.items()}
        return method, self.api_url + path.format(**quoted)

    def _call(self, op, path_params, query=None, body=None, what=None, idempotent=True, budget=None):
        """One logical call with retries; returns the decoded JSON answer ({} when empty).

        Raises DevApiError, or _AmbiguousOutcome for a non-idempotent call whose
        outcome is unknown (the caller reconciles).
        """
        method, url = self._url(op, path_params)
        budget = budget or self._new_budget()
        data = None
        headers = {}
        if body is not None:
            data = json.dumps(body, separators=(',', ':'), sort_keys=True).encode('utf-8')
            headers['Content-Type'] = 'application/json'
        while True:
            budget.attempts += 1
            self.call_count += 1
            self.calls_by_op[op] = self.calls_by_op.get(op, 0) + 1
            try:
                response = self._send(method, url, query, data, headers)
            except _TransportFailure as failure:
                error = DevApiError(reason_code=failure.reason_code, description=failure.description, operation=what,
                                    attempts=budget.attempts)
                if failure.sent and not idempotent:
                    raise _AmbiguousOutcome(error) from failure
                wait = self._next_wait(budget, None)
                if wait is None:
                    raise error from failure
                self.notes.append('%s: %s; retrying in %.1f s' % (what, failure.reason_code, wait))
                self._sleep(wait)
                continue

            if 200 <= response.status_code < 300:
                return self._decode(response, what)

            retry_after = parse_retry_after(response.headers.get('Retry-After'), self._now())
            error = parse_error_response(response.status_code, response.content, response.headers, operation=what,
                                         attempts=budget.attempts, retry_after=retry_after)
            if response.status_code not in RETRY_STATUSES:
                raise self._with_contract_note(error, op)
            if not idempotent and response.status_code not in NOT_COMMITTED_STATUSES:
                raise _AmbiguousOutcome(error)
            wait = self._next_wait(budget, retry_after)
            if wait is None:
                raise error
            self.notes.append('%s: HTTP %s; retrying in %.1f s' % (what, response.status_code, wait))
            self._sleep(wait)

    def _with_contract_note(self, error, op):
        """A refusal that may come from calling the API otherwise than it is built says which contract entry the call
        followed, so a user whose API differs knows what to correct."""
        if error.status not in CONTRACT_STATUSES or (error.reason_code in REASON_HINTS
                                                     and error.reason_code not in GENERIC_REASONS):
            return error  # the API understood the request and said what is wrong with it
        note = 'the call followed the contract entry %s' % self.contract.describe(op)
        if self.contract.overridden:
            note += ' of %s' % self.contract.source
        note += '; where the Developers API differs, correct the entry in a contract file (contract_path)'
        error.hint = '%s; %s' % (error.hint, note) if error.hint else note
        return error

    def _send(self, method, url, query, data, headers):
        try:
            with warnings.catch_warnings():
                if not self.validate_certs:
                    # The user was warned once through warn(); urllib3 would repeat it per request.
                    warnings.simplefilter('ignore', InsecureRequestWarning)
                return self._session.request(method, url, params=query, data=data, headers=headers, timeout=self.timeout,
                                             verify=self._verify, allow_redirects=False)
        except requests.exceptions.SSLError as exc:
            text = str(exc)
            if 'CERTIFICATE_VERIFY_FAILED' in text or 'hostname' in text.lower():
                # A certificate the client does not trust will not become trusted by retrying.
                raise DevApiError(reason_code='TLS_ERROR', operation='connecting to %s' % self.api_url,
                                  description='the server certificate was not accepted: %s' % _short_exception(exc)) from exc
            # Other TLS failures (a connection cut during the handshake or a read) may pass; whether the
            # request went out is unknown, so a create treats it as ambiguous.
            raise _TransportFailure('CONNECTION_FAILED', 'TLS failure (%s)' % _short_exception(exc), sent=True) from exc
        except requests.exceptions.ConnectTimeout:
            raise _TransportFailure('TIMEOUT', 'no connection within %g s' % self.timeout, sent=False) from None
        except requests.exceptions.ReadTimeout:
            raise _TransportFailure('TIMEOUT', 'no answer within %g s' % self.timeout, sent=True) from None
        except requests.exceptions.ConnectionError as exc:
            before_send = _failed_before_send(exc)
            description = ('could not connect to %s' % self.api_url) if before_send else 'the connection was lost before an answer arrived'
            raise _TransportFailure('CONNECTION_FAILED', '%s (%s)' % (description, _short_exception(exc)), sent=not before_send) from exc
        except requests.exceptions.RequestException as exc:
            raise DevApiError(reason_code='CONNECTION_FAILED', operation='calling %s' % self.api_url,
                              description=_short_exception(exc)) from exc

    def _decode(self, response, what):
        if not response.content:
            return {}
        try:
            return response.json()
        except ValueError:
            raise DevApiError(status=response.status_code, reason_code='UNEXPECTED_RESPONSE', operation=what,
                              description='the answer is not JSON (%s)' % (response.headers.get('Content-Type') or 'no content type')) from None

    def _page_items(self, data, what):
        if isinstance(data, list):  # an API that answers with a bare list has no further pages
            return data, None
        if not isinstance(data, dict):
            raise DevApiError(reason_code='UNEXPECTED_RESPONSE', operation=what, description='a page of credentials was expected')
        items = data.get(self.contract.name('page_fields', 'items'))
        if items is None:
            items = []
        if not isinstance(items, list):
            raise DevApiError(reason_code='UNEXPECTED_RESPONSE', operation=what, description='the page\'s items are not a list')
        total = data.get(self.contract.name('page_fields', 'total'))
        return items, total if isinstance(total, int) else None


def _failed_before_send(exc):
    """True when a requests ConnectionError happened while connecting (nothing was sent)."""
    reason = exc.args[0] if exc.args else None
    if isinstance(reason, MaxRetryError):
        reason = reason.reason
    return isinstance(reason, (NewConnectionError, Urllib3ConnectTimeoutError))


def _short_exception(exc):
    text = redact(str(exc))
    # urllib3 wraps the cause in long reprs; the last parenthesised cause is what a person needs.
    match = re.search(r"\(Caused by (\w+\((?:.*)\))\)$", text)
    if match:
        text = match.group(1)
    return text[:300]


# ---------------------------------------------------------------------------
# Connection options: one argument spec, one doc fragment (mcdev.credentials.connection)
# ---------------------------------------------------------------------------

# ENV_VARS, connection_argument_spec() and connection_constraints(): connection.py (imported above).


def load_signing_key(path=None, content=None, password=None):
    """Load the Developers API signing key (RSA) from a PKCS#12 or PEM file or content.

    content may be PEM text or base64 of a PKCS#12 keystore (or raw bytes of
    either). Errors name the option to fix and never echo key material.
    """
    missing = missing_requirement()
    if missing:
        raise _missing_library_error(missing[0], 'Loading the signing key')
    source_option = 'signing_key_path' if path else 'signing_key_content'
    if path:
        try:
            with open(path, 'rb') as handle:
                blob = handle.read()
        except (IOError, OSError) as exc:
            raise DevApiConfigError('signing_key_path', 'cannot read %s (%s)' % (path, exc.strerror or exc.__class__.__name__)) from exc
        source = path
    elif content:
        blob = content.encode('utf-8') if isinstance(content, str) else bytes(content)
        source = 'the given content'
    else:
        raise DevApiConfigError('signing_key_path', 'no signing key given',
                                hint='set signing_key_path or signing_key_content (or MC_DEVAPI_SIGNING_KEY_PATH / '
                                     'MC_DEVAPI_SIGNING_KEY_CONTENT) to the Developers API key\'s PKCS#12 or PEM signing key')
    password_bytes = password.encode('utf-8') if isinstance(password, str) else password

    key = None
    if b'-----BEGIN' in blob:
        key = _load_pem_key(blob, password_bytes, source_option, source)
    else:
        if not path:
            stripped = b''.join(blob.split())
            try:
                blob = base64.b64decode(stripped, validate=True)
            except (binascii.Error, ValueError):
                pass  # raw bytes were passed
        key = _load_pkcs12_key(path, blob, password, password_bytes, source_option, source)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise DevApiConfigError(source_option, 'the signing key in %s is not an RSA key' % source,
                                hint='Developers API keys are RSA; use the key downloaded from the Account page')
    return key


def _load_pem_key(blob, password_bytes, source_option, source):
    try:
        # The account's own Developers API key, from the user's configuration (never from a peer):
        # skipping cryptography's RSA consistency checks saves their cost in every API module process.
        # (PKCS#12 loading has no such switch, so a keystore is still validated.)
        return serialization.load_pem_private_key(blob, password=password_bytes or None,
                                                  unsafe_skip_rsa_key_validation=True)
    except TypeError:
        if password_bytes:
            raise DevApiConfigError('signing_key_password', 'the PEM signing key in %s is not encrypted but a password was given' % source,
                                    hint='remove signing_key_password') from None
        raise DevApiConfigError('signing_key_password', 'the PEM signing key in %s is encrypted' % source,
                                hint='set signing_key_password (or MC_DEVAPI_SIGNING_KEY_PASSWORD)') from None
    except ValueError:
        if password_bytes:
            raise DevApiConfigError('signing_key_password', 'cannot decrypt the PEM signing key in %s' % source,
                                    hint='check signing_key_password, and that %s holds the PEM private key' % source_option) from None
        raise DevApiConfigError(source_option, '%s does not hold a readable PEM private key' % source) from None
    except Exception as exc:  # cryptography raises its own types for unsupported algorithms
        raise DevApiConfigError(source_option, 'cannot load the PEM signing key in %s (%s)' % (source, exc.__class__.__name__)) from exc


def _load_pkcs12_key(path, blob, password, password_bytes, source_option, source):
    try:
        if path and password is not None:
            # Mastercard's own loader, for the keystore the Account page hands out.
            key = oauth1_authenticationutils.load_signing_key(path, password)
        else:
            key = pkcs12.load_key_and_certificates(blob, password_bytes)[0]
    except ValueError:
        raise DevApiConfigError('signing_key_password', 'cannot open the PKCS#12 signing key in %s' % source,
                                hint='check signing_key_password, and that %s is the PKCS#12 keystore (or PEM key) of the '
                                     'Developers API key' % source_option) from None
    except Exception as exc:
        raise DevApiConfigError(source_option, 'cannot load the PKCS#12 signing key in %s (%s)' % (source, exc.__class__.__name__)) from exc
    if key is None:
        raise DevApiConfigError(source_option, 'the PKCS#12 keystore in %s holds no private key' % source)
    return key


def resolve_connection_params(params, environ=None):
    """Connection options with the environment applied where AnsibleModule did not (or was not used).

    Explicit values win; then MC_DEVAPI_*; then the defaults. Returns a new dict.
    """
    environ = os.environ if environ is None else environ
    spec = connection_argument_spec()
    resolved = {}
    for option, option_spec in spec.items():
        value = params.get(option)
        if value is None and option not in _SIGNING_KEY_OPTIONS:
            value = environ.get(ENV_VARS[option]) or None
            if value is None:
                value = option_spec.get('default')
        resolved[option] = value
    if not resolved['signing_key_path'] and not resolved['signing_key_content']:
        env_path = environ.get(ENV_VARS['signing_key_path']) or None
        env_content = environ.get(ENV_VARS['signing_key_content']) or None
        if env_path and env_content:
            raise DevApiConfigError('signing_key_path', 'both %s and %s are set in the environment'
                                    % (ENV_VARS['signing_key_path'], ENV_VARS['signing_key_content']),
                                    hint='unset one of them, or pass signing_key_path or signing_key_content explicitly')
        resolved['signing_key_path'] = env_path
        resolved['signing_key_content'] = env_content
    elif resolved['signing_key_path'] and resolved['signing_key_content']:
        raise DevApiConfigError('signing_key_path', 'signing_key_path and signing_key_content are mutually exclusive',
                                hint='pass only one of them')
    if not resolved['signing_key_password'] and environ.get(PASSWORD_FILE_ENV):
        resolved['signing_key_password'] = _password_from_file(environ[PASSWORD_FILE_ENV])
    resolved['validate_certs'] = _to_bool(resolved['validate_certs'], 'validate_certs')
    resolved['timeout'] = _to_number(resolved['timeout'], 'timeout', float)
    resolved['retries'] = _to_number(resolved['retries'], 'retries', int)
    if resolved['timeout'] <= 0:
        raise DevApiConfigError('timeout', 'must be more than 0 seconds, got %s' % resolved['timeout'])
    if resolved['retries'] < 0:
        raise DevApiConfigError('retries', 'must be 0 or more, got %s' % resolved['retries'])
    return resolved


def _password_from_file(path):
    """The signing key password from the file an AWX file injector wrote (one line; a final newline is not part of it).

    A file keeps the password out of the job's environment, which ansible-runner writes in plain text to its
    artifacts (artifacts/<id>/command)."""
    try:
        with open(path, 'rb') as handle:
            text = handle.read().decode('utf-8')
    except (OSError, UnicodeDecodeError) as exc:
        raise DevApiConfigError('signing_key_password', '%s names %s, which cannot be read (%s)'
                                % (PASSWORD_FILE_ENV, path, getattr(exc, 'strerror', None) or 'not UTF-8 text'),
                                hint='point %s at the file that holds the password, or unset it' % PASSWORD_FILE_ENV) from None
    return text[:-1] if text.endswith('\n') else text


def _to_bool(value, option):
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ('1', 'true', 'yes', 'on', 'y', 't'):
        return True
    if text in ('0', 'false', 'no', 'off', 'n', 'f'):
        return False
    raise DevApiConfigError(option, '%r is not a boolean' % value)


def _to_number(value, option, kind):
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise DevApiConfigError(option, '%r is not a number' % (value,)) from None


def contract_from_params(params, environ=None):
    """The contract a task's client follows: the defaults, with the file contract_path (or MC_DEVAPI_CONTRACT) names."""
    environ = os.environ if environ is None else environ
    path = params.get('contract_path') or environ.get(ENV_VARS['contract_path']) or None
    try:
        return Contract.load(path)
    except ContractError as exc:
        raise DevApiConfigError('contract_path', str(exc),
                                hint='see docs/devapi-contract.md for the sections and entries a contract file can hold') from None


def client_from_params(params, warn=None, environ=None, **client_kwargs):
    """Build the task's DevApiClient from module params (AnsibleModule.params or a plain dict).

    warn receives the validate_certs warning (pass module.warn). Extra keyword
    arguments go to DevApiClient (tests inject sleep/clock/rng).
    """
    resolved = resolve_connection_params(params, environ)
    api_url = _check_api_url(resolved['api_url'])  # refuse http:// before touching the key
    if not resolved['consumer_key']:
        raise DevApiConfigError('consumer_key', 'no consumer key given',
                                hint='set consumer_key or MC_DEVAPI_CONSUMER_KEY to the Developers API key\'s consumer key')
    if resolved['ca_path'] and not os.path.isfile(resolved['ca_path']):
        raise DevApiConfigError('ca_path', '%s is not a readable file' % resolved['ca_path'],
                                hint='point ca_path at a PEM bundle of the CA certificates that sign the API server certificate')
    contract = contract_from_params(resolved, environ)
    signing_key = load_signing_key(path=resolved['signing_key_path'], content=resolved['signing_key_content'],
                                   password=resolved['signing_key_password'])
    return DevApiClient(api_url, resolved['consumer_key'], signing_key, ca_path=resolved['ca_path'],
                        validate_certs=resolved['validate_certs'], timeout=resolved['timeout'], retries=resolved['retries'],
                        warn=warn, contract=contract, **client_kwargs)
