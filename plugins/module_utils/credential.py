# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared backend of mc_certificate and mc_oauth_key: add, rotate, renew and export credentials.

Plain Python, no AnsibleModule: the modules build a CredentialRequest from
their options, hand it to CredentialManager with a DevApiClient, and turn the
result (or a CredentialInputError / DevApiError / CryptoError) into
exit_json / fail_json.

Identity. A credential is identified by project, environment, kind and alias.
Rotation adds a replacement next to it under ``<alias>-<epoch>`` (or a given
``new_alias``); the *family* of an alias is the alias itself, its rotation
aliases and ``new_alias``. The family's newest live member is the *current*
credential; re-running with the same options after a rotation finds the
replacement as current and changes nothing.

Crash safety (generate method). The new private key is written to the key
store directory before the create call; a later run finds it, adopts the
remote credential with that alias whose public key matches, or resumes the
create with the same key and alias. The client itself adopts after an
ambiguous create failure within one run.
"""

from __future__ import annotations

import datetime
import math
import os
import re

from ansible_collections.mcdev.credentials.plugins.module_utils import _io, _time
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto, inventory, portal
from ansible_collections.mcdev.credentials.plugins.module_utils.common import (
    PRIVATE_MODE,
    PUBLIC_MODE,
    InputError,
    read_if_exists,
)
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import HANDLED, fail_from, fail_missing_library
from ansible_collections.mcdev.credentials.plugins.module_utils.portal import portal_argument_spec

KINDS = ("mtls", "oauth1", "oauth2")
METHODS = ("generate", "csr_path", "csr_content", "certificate_path", "certificate_content")
CSR_METHODS = ("csr_path", "csr_content")
CERTIFICATE_METHODS = ("certificate_path", "certificate_content")
ENVIRONMENTS = ("sandbox", "production")
EXPORT_FORMATS = ("pkcs12", "pkcs1_pem", "pkcs8_pem", "pkcs8_der")
LIVE_STATUSES = ("ACTIVE", "INACTIVE", "EXPIRED")
MAX_ACTIVE_OAUTH2_KEYS = 3
MAX_ALIAS_LENGTH = 64
ALIAS_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
KEY_STORE_SUFFIX = ".key.pem"

KIND_LABELS = {"mtls": "mTLS certificate", "oauth1": "OAuth 1.0a key", "oauth2": "OAuth 2.0 key"}
OAUTH_VERSION_KIND = {"1.0a": "oauth1", "2.0": "oauth2"}

# Reason codes of the Developers API -> the option a person should look at.
REASON_OPTIONS = {
    "PROJECT_NOT_FOUND": "project_id",
    "NO_ACCESS_TO_PROJECT": "project_id",
    "BAD_REQUEST": "project_id",
    "CREDENTIAL_ALIAS_ALREADY_EXISTS": "alias",
    "MAX_OAUTH2_KEYS_EXCEEDED": "oauth_version",
    "UNTRUSTED_CERTIFICATE": "certificate",
    "EXPIRED_CERTIFICATE": "certificate",
    "INVALID_CSR": "csr",
    "DUPLICATE_CERTIFICATE": "csr",
    "PROJECT_TYPE_NOT_SUPPORTED": "project_id",
    "RENEWAL_NOT_SUPPORTED": "reuse_key",
}


class CredentialInputError(InputError):
    """A refusal about the task's options; ``option`` names the one to change."""

    def __init__(self, option, message, **facts):
        self.option = option
        self.facts = facts
        super().__init__("%s: %s" % (option, message) if option else message)

    def fields(self):
        return {"option": self.option}


# --------------------------------------------------------------- renewal window

class RenewWindow:
    """When a credential is due for replacement.

    ``renew_before`` is a number of days (``30``, ``"30"``, ``"30d"``), or a
    fraction of the credential's lifetime below 1 (``0.33`` = the last third).
    """

    def __init__(self, value):
        self.raw = value
        text = str(value).strip().lower()
        if text.endswith("d"):
            text = text[:-1].strip()
        try:
            number = float(text)
        except ValueError:
            raise CredentialInputError("renew_before", "%r is neither a number of days (e.g. 30) nor a fraction of the "
                                       "lifetime below 1 (e.g. 0.33)" % (value,)) from None
        if math.isnan(number) or math.isinf(number) or number < 0:
            raise CredentialInputError("renew_before", "must be 0 or more, got %r" % (value,))
        self.fraction = number if number < 1 and number > 0 and "." in text else None
        self.days = None if self.fraction is not None else number

    def starts(self, not_before, expires):
        """The moment the window opens for a credential valid from not_before to expires."""
        if self.fraction is not None:
            lifetime = expires - not_before if not_before else datetime.timedelta(0)
            return expires - lifetime * self.fraction
        return expires - datetime.timedelta(days=self.days)

    def due(self, not_before, expires, now):
        if expires is None:
            return False
        return now >= self.starts(not_before, expires)

    def describe(self):
        if self.fraction is not None:
            return "the last %g%% of its lifetime" % round(self.fraction * 100, 2)
        return "%g days before expiry" % self.days


# ---------------------------------------------------------------- credential facts

def not_before_of(cred):
    value = _time.parse_or_none((cred.raw or {}).get("notBefore")) if getattr(cred, "raw", None) else None
    if value is None and cred.certificate_pem:
        try:
            value = crypto.load_certificate(cred.certificate_pem.encode("ascii")).not_valid_before_utc
        except (crypto.CryptoError, ValueError):
            value = None
    return value or cred.created


def facts(cred, window=None, now=None):
    """Non-secret facts of a credential for results and diffs (no PEM)."""
    if cred is None:
        return {}
    data = cred.to_dict()
    data["not_before"] = _time.iso(not_before_of(cred))
    if window is not None and cred.expires is not None:
        now = now or _time.now()
        data["renew_at"] = _time.iso(window.starts(not_before_of(cred), cred.expires))
        data["days_left"] = (cred.expires - now).days
    return data


def diff_facts(data):
    """What a diff shows: id, alias, status, fingerprints, serial, subject, expiry."""
    keys = ("id", "alias", "status", "kind", "environment", "fingerprint", "public_key_fingerprint", "serial",
            "subject", "expires", "consumer_key", "client_id", "kid")
    return {key: data.get(key) for key in keys if data.get(key) is not None}


def is_live(cred):
    return (cred.status or "").upper() in LIVE_STATUSES


def is_active(cred):
    """ACTIVE at Mastercard (inventory.is_active without a clock: the API's word is the manager's)."""
    return inventory.is_active(cred.status)


def sort_key(cred):
    lowest = _time.EARLIEST
    return (cred.expires or lowest, cred.created or lowest, cred.id)


def rotation_alias(alias, now):
    return "%s-%d" % (alias, int(now.timestamp()))


def family_pattern(alias):
    return re.compile(r"^%s-[0-9]{9,11}$" % re.escape(alias))


def in_family(candidate, alias, new_alias=None):
    if candidate is None:
        return False
    return candidate == alias or candidate == new_alias or bool(family_pattern(alias).match(candidate))


def family_of(creds, alias, new_alias=None):
    """Live members of the alias family, oldest first (by expiry, then creation)."""
    return sorted((c for c in creds if is_live(c) and in_family(c.alias, alias, new_alias)), key=sort_key)


def active_oauth2_keys(creds):
    return sorted((c for c in creds if c.kind == "oauth2" and is_active(c)), key=sort_key)


def oauth2_limit_message(keys, project_id, limit=MAX_ACTIVE_OAUTH2_KEYS):
    listing = "; ".join("%s (id %s, kid %s, %s, expires %s)" % (k.alias, k.id, k.kid, (k.environment or "").lower(),
                                                                _time.iso(k.expires)) for k in keys)
    example = keys[0] if keys else None
    how = ("revoke one first, e.g. mcdev.credentials.mc_revoke with project_id: %s and credential_id: %s (alias %s)"
           % (project_id, example.id, example.alias)) if example else "revoke one first with mcdev.credentials.mc_revoke"
    return ("project %s already has %d active OAuth 2.0 keys, the most a project may hold: %s. Nothing was created; %s"
            % (project_id, len(keys), listing, how)) if len(keys) >= limit else None


# ------------------------------------------------------------------ key store

class KeyStore:
    """Private keys of generated credentials, one PEM file per alias, written before any API call.

    Layout: ``<dir>/<project_id>/<environment>/<alias>.key.pem`` (directories
    0700, files 0600, PKCS#8, encrypted with the keystore password when given).
    """

    def __init__(self, directory, project_id, environment, passphrase=None, option="key_store"):
        self.root = directory
        self.option = option
        safe_project = re.sub(r"[^A-Za-z0-9._-]", "_", str(project_id))
        self.directory = os.path.join(directory, safe_project, environment)
        self.passphrase = passphrase

    def path(self, alias):
        return os.path.join(self.directory, alias + KEY_STORE_SUFFIX)

    def check_root(self):
        if os.path.exists(self.root) and not os.path.isdir(self.root):
            raise CredentialInputError(self.option, "%s exists and is not a directory" % self.root)

    def load(self, alias):
        """The private key stored for alias, or None. Unreadable files are refused, never replaced."""
        path = self.path(alias)
        data = read_if_exists(path, self.option)
        if data is None:
            return None
        try:
            container = crypto.read_key_container(data, self.passphrase, source="the key store file %s" % path,
                                                  passphrase_option="keystore_password")
        except crypto.CryptoError as exc:
            text = str(exc)
            option = "keystore_password" if "keystore_password" in text else self.option
            if text.startswith(option + " "):
                text = text[len(option) + 1:]
            raise CredentialInputError(option, "%s; the key store keeps the private key of alias %s, so it is never "
                                       "replaced automatically (fix the password, or move the file away to start over)"
                                       % (text, alias)) from None
        return container.key

    def pending_aliases(self, alias, new_alias=None):
        """Aliases of the family that have a stored key (newest first by name)."""
        try:
            names = os.listdir(self.directory)
        except OSError:
            return []
        found = []
        for name in names:
            if name.endswith(KEY_STORE_SUFFIX):
                candidate = name[:-len(KEY_STORE_SUFFIX)]
                if in_family(candidate, alias, new_alias):
                    found.append(candidate)
        return sorted(found, reverse=True)

    def save(self, alias, key):
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        data = crypto.dump_private_key(key, "pkcs8_pem", self.passphrase or None)
        path = self.path(alias)
        _io.write_atomically(path, data)
        os.chmod(path, PRIVATE_MODE)
        return path


# ------------------------------------------------------------------ the request

class ExportSpec:
    """One output file of the private key (and certificate, for PKCS#12)."""

    def __init__(self, fmt, path, passphrase=None, option="export"):
        if fmt not in EXPORT_FORMATS:
            raise CredentialInputError(option, "format=%s is not known; use one of %s" % (fmt, ", ".join(EXPORT_FORMATS)))
        if not path:
            raise CredentialInputError(option, "path is required for format=%s" % fmt)
        if fmt == "pkcs12" and not passphrase:
            raise CredentialInputError(option, "format=pkcs12 needs a passphrase (set passphrase, or keystore_password)")
        if passphrase and fmt in ("pkcs1_pem", "pkcs8_der"):
            raise CredentialInputError(option, "format=%s cannot carry a passphrase; use pkcs8_pem or pkcs12, or drop "
                                       "the passphrase" % fmt)
        self.format = fmt
        self.path = path
        self.passphrase = passphrase
        self.option = option


class CredentialRequest:
    """The normalized options of one mc_certificate / mc_oauth_key task."""

    def __init__(self, kind, params):
        p = dict(params)
        if kind not in KINDS:
            raise CredentialInputError("oauth_version", "kind %r is not supported" % kind)
        self.kind = kind
        self.project_id = p.get("project_id")
        if not self.project_id:
            raise CredentialInputError("project_id", "is required")
        self.environment = (p.get("environment") or "sandbox").lower()
        if self.environment not in ENVIRONMENTS:
            raise CredentialInputError("environment", "must be sandbox or production, got %r" % p.get("environment"))
        self.alias = p.get("alias")
        self._check_alias("alias", self.alias)
        self.new_alias = p.get("new_alias")
        if self.new_alias is not None:
            self._check_alias("new_alias", self.new_alias)
            if self.new_alias == self.alias:
                raise CredentialInputError("new_alias", "must differ from alias (%s)" % self.alias)
        self.profile = {"oauth1": "oauth1", "oauth2": "oauth2"}.get(kind) or "mtls_" + self.environment
        self.reuse_key = bool(p.get("reuse_key"))
        self.window = RenewWindow(p["renew_before"]) if p.get("renew_before") not in (None, "") else None
        self.upgrade_to_oauth2 = bool(p.get("upgrade_to_oauth2"))
        self.keystore_password = p.get("keystore_password")
        self.key_store = p.get("key_store")
        self.key_type = p.get("key_type") or "rsa"
        self.key_size = int(p.get("key_size") or 2048)
        self.curve = p.get("curve") or "secp256r1"
        self.common_name = p.get("common_name")
        self.subject = p.get("subject") or {}
        self.company_id = str(p.get("company_id") or "000000")
        self.certificate_dest = p.get("certificate_dest")
        self.chain_dest = p.get("chain_dest")
        self.backend = p.get("backend") or "api"
        self.portal_dir = p.get("portal_dir")
        self.issued = p.get("issued")
        self.escalate_before = p.get("escalate_before")
        if self.escalate_before is None:
            self.escalate_before = portal.DEFAULT_ESCALATE_BEFORE
        if self.backend != "portal" and self.issued:
            raise CredentialInputError("issued", "is what a person brings back from the portal; it goes with "
                                       "backend: portal")

        self.method = "generate"
        given = [name for name in METHODS[1:] if p.get(name)]
        if len(given) > 1:
            raise CredentialInputError(given[1], "is mutually exclusive with %s" % given[0])
        if given:
            self.method = given[0]
        if self.method in CERTIFICATE_METHODS and kind != "mtls":
            raise CredentialInputError(self.method, "certificate uploads exist only for mTLS certificates")
        if self.method in CERTIFICATE_METHODS and self.backend == "portal":
            raise CredentialInputError(self.method, "backend: portal takes a CSR or a generated key; upload a "
                                       "certificate in the portal yourself (Add certificate, Upload a certificate)")
        self.csr = None
        self.certificate = None
        self.warnings = []  # what the module says with module.warn (a SHA-1 CSR, say)
        self.trusted_ca_path = p.get("trusted_ca_path")
        if self.trusted_ca_path and self.method not in CERTIFICATE_METHODS:
            raise CredentialInputError("trusted_ca_path", "goes with certificate_path or certificate_content (the "
                                       "uploaded certificate's chain is checked against it); drop it")
        if self.method in CSR_METHODS:
            self.csr = self._load_csr(p)
        elif self.method in CERTIFICATE_METHODS:
            self.certificate = self._load_certificate(p)
        elif not self.key_store:
            raise CredentialInputError("key_store", "is required when the key pair is generated (no csr_path, "
                                       "csr_content, certificate_path or certificate_content given): the new private key "
                                       "is stored there before the API call")
        if self.method == "generate" and self.kind == "oauth1" and self.key_type != "rsa":
            raise CredentialInputError("key_type", "OAuth 1.0a keys must be RSA; set key_type: rsa or oauth_version: '2.0'")

        self.exports = []
        for index, entry in enumerate(p.get("export") or []):
            option = "export[%d]" % index
            passphrase = entry.get("passphrase")
            if entry.get("format") == "pkcs12" and not passphrase:
                passphrase = self.keystore_password
            self.exports.append(ExportSpec(entry.get("format"), entry.get("path"), passphrase, option))
        if p.get("keystore_dest"):
            if not self.keystore_password:
                raise CredentialInputError("keystore_password", "is required with keystore_dest (the PKCS#12 keystore is "
                                           "password protected)")
            self.exports.append(ExportSpec("pkcs12", p["keystore_dest"], self.keystore_password, "keystore_dest"))
        if p.get("private_key_dest"):
            self.exports.append(ExportSpec("pkcs8_pem", p["private_key_dest"], p.get("private_key_passphrase"),
                                           "private_key_dest"))
        if self.exports and self.method != "generate":
            raise CredentialInputError(self.exports[0].option, "exporting the private key needs the generate method (the "
                                       "module only holds private keys it generated); drop %s or the %s option"
                                       % (self.exports[0].option, self.method))
        for option, path in self.output_paths():
            self._check_parent(option, path)

    @staticmethod
    def _check_alias(option, value):
        if not value:
            raise CredentialInputError(option, "is required")
        if len(value) > MAX_ALIAS_LENGTH or not ALIAS_RE.match(value):
            raise CredentialInputError(option, "%r must be 1-%d letters, digits, '.', '_' or '-', starting with a letter "
                                       "or digit" % (value, MAX_ALIAS_LENGTH))

    def output_paths(self):
        paths = []
        if self.certificate_dest:
            paths.append(("certificate_dest", self.certificate_dest))
        if self.chain_dest:
            paths.append(("chain_dest", self.chain_dest))
        paths.extend((spec.option, spec.path) for spec in self.exports)
        return paths

    @staticmethod
    def _check_parent(option, path):
        parent = os.path.dirname(os.path.abspath(path))
        if not os.path.isdir(parent):
            raise CredentialInputError(option, "the directory %s does not exist; create it first" % parent)
        if os.path.isdir(path):
            raise CredentialInputError(option, "%s is a directory; give a file path" % path)

    def _read_input(self, p, option):
        if option.endswith("_path"):
            path = p[option]
            data = read_if_exists(path, option)
            if data is None:
                raise CredentialInputError(option, "%s does not exist" % path)
            return data, "%s %s" % (option, path)
        return str(p[option]).encode("utf-8"), option

    def _load_csr(self, p):
        data, source = self._read_input(p, self.method)
        try:
            csr = crypto.load_csr(data, source=source)
        except crypto.CryptoError as exc:
            raise CredentialInputError(None, str(exc)) from None
        try:
            self.warnings.extend(crypto.check_csr_for_profile(csr, self.profile))
        except crypto.CryptoError as exc:
            raise CredentialInputError(self.method, "the CSR is not acceptable for an %s: %s"
                                       % (KIND_LABELS[self.kind], exc)) from None
        return csr

    def _load_certificate(self, p):
        data, source = self._read_input(p, self.method)
        try:
            certs = crypto.load_certificates(data, source=source)
        except crypto.CryptoError as exc:
            raise CredentialInputError(None, str(exc)) from None
        cert = certs[0]
        trusted = None
        if self.trusted_ca_path:
            data = read_if_exists(self.trusted_ca_path, "trusted_ca_path")
            if data is None:
                raise CredentialInputError("trusted_ca_path", "%s does not exist" % self.trusted_ca_path)
            try:
                trusted = crypto.load_certificates(data, source="trusted_ca_path %s" % self.trusted_ca_path)
            except crypto.CryptoError as exc:
                raise CredentialInputError(None, str(exc)) from None
        problems = crypto.client_certificate_problems(certs, trusted, _time.now())
        if problems:
            raise CredentialInputError(self.method, problems[0])
        try:
            crypto.check_key_strength(cert.public_key(), "the certificate's key", "upload a certificate for a key of "
                                      "2048 bits or more")
        except crypto.CryptoError as exc:
            raise CredentialInputError(self.method, str(exc)) from None
        return cert

    # -- what this request sends -------------------------------------------------

    def input_public_key_fingerprint(self):
        if self.csr is not None:
            return crypto.public_key_fingerprint(self.csr)
        if self.certificate is not None:
            return crypto.public_key_fingerprint(self.certificate)
        return None

    def input_subject(self):
        obj = self.csr if self.csr is not None else self.certificate
        return obj.subject.rfc4514_string() if obj is not None else None

    def default_common_name(self, alias, now):
        epoch = int(now.timestamp())
        base = re.sub(r"[^A-Za-z0-9._-]", "-", alias).strip("-._") or "key"
        if self.profile == "mtls_sandbox":
            tail = "-%d-Client-MTF-%s" % (epoch, self.company_id)
            return base[:crypto.MAX_CN_LENGTH - len(tail)] + tail
        tail = "-%d" % epoch
        return base[:crypto.MAX_CN_LENGTH - len(tail)] + tail

    def subject_pairs(self, alias, now):
        pairs = crypto.normalize_subject(self.subject) if self.subject else []
        cn = self.common_name or crypto.common_name(pairs) or self.default_common_name(alias, now)
        pairs = [pair for pair in pairs if pair[0] != "CN"]
        return [("CN", cn)] + pairs


# ------------------------------------------------------------------ the manager

class RunOutcome:
    """What one run of mc_certificate / mc_oauth_key did or would do (check mode)."""

    def __init__(self):
        self.changed = False
        self.action = "none"
        self.credential = None
        self.predicted = None
        self.before = None
        self.superseded = []
        self.project = None
        self.private_key_path = None
        self.files = []
        self.warnings = []
        self.renewal_due = False
        self.upgraded = False


class CredentialManager:
    """Reconcile one credential with the Developers API and the files asked for."""

    def __init__(self, client, request, check_mode=False, now=None, warn=None):
        self.client = client
        self.req = request
        self.check_mode = check_mode
        self.now = now or _time.now()
        self._warn = warn or (lambda message: None)
        self.outcome = RunOutcome()
        self.key_store = None
        if request.method == "generate":
            self.key_store = KeyStore(request.key_store, request.project_id, request.environment,
                                      request.keystore_password)
            self.key_store.check_root()
        self.key = None  # private key of the current / new credential, when held

    def warn(self, message):
        self.outcome.warnings.append(message)
        self._warn(message)

    # -- reading -------------------------------------------------------------

    def list_all(self):
        """All credentials of the project of this kind's API type (one list call, every environment)."""
        api_type = "MTLS" if self.req.kind == "mtls" else "SIGNING"
        return self.client.list_credentials(self.req.project_id, credential_type=api_type)

    def in_scope(self, creds):
        env = self.req.environment.upper()
        return [c for c in creds if (c.environment or "").upper() == env and c.kind == self.req.kind]

    def project(self):
        if self.outcome.project is None:
            self.outcome.project = self.client.get_project(self.req.project_id)
        return self.outcome.project

    # -- the run ---------------------------------------------------------------

    def run(self):
        req = self.req
        if req.kind in ("oauth1", "oauth2") and req.upgrade_to_oauth2:
            self.ensure_oauth2_upgrade()
        creds = self.list_all()
        scope = self.in_scope(creds)
        family = family_of(scope, req.alias, req.new_alias)
        current = family[-1] if family else None
        self.outcome.before = current
        self.outcome.superseded = [c for c in family[:-1] if is_active(c)]

        if current is None:
            self.add(creds, req.alias, previous=None)
        else:
            self.check_identity(current)
            due = req.window is not None and req.window.due(not_before_of(current), current.expires, self.now)
            self.outcome.renewal_due = due
            if due:
                self.renew(creds, current)
            else:
                self.outcome.credential = current
                self.hold_key_for(current)
        self.write_outputs()
        return self.outcome

    # -- identity of an existing credential ------------------------------------------

    def check_identity(self, current):
        """Refuse an alias that names a credential made from other input than this task's."""
        req = self.req
        if req.method == "generate":
            key = self.key_store.load(current.alias)
            if key is not None and crypto.public_key_fingerprint(key) != current.public_key_fingerprint:
                raise CredentialInputError(
                    "alias", "%s is already used by credential %s, whose public key (%s) does not match the private key "
                    "stored for it in %s; choose another alias, or move that key file away if it is stale"
                    % (current.alias, current.id, current.public_key_fingerprint, self.key_store.path(current.alias)))
            return
        wanted = req.input_public_key_fingerprint()
        if req.certificate is not None:
            if crypto.certificate_fingerprint(req.certificate) == current.fingerprint:
                return
        elif wanted == current.public_key_fingerprint and req.input_subject() == current.subject:
            return
        # The input differs from the current credential: that is a renewal input when it is due, else a clash.
        due = req.window is not None and req.window.due(not_before_of(current), current.expires, self.now)
        if not due:
            raise CredentialInputError(
                "alias", "%s is already used by credential %s (subject %s, expires %s), which was not made from this %s; "
                "choose another alias, or set renew_before so that a due credential is replaced by one made from it"
                % (current.alias, current.id, current.subject, _time.iso(current.expires), req.method))

    def hold_key_for(self, cred):
        if self.key_store is not None:
            self.key = self.key_store.load(cred.alias)
            self.outcome.private_key_path = self.key_store.path(cred.alias) if self.key is not None else None
            if self.key is None and self.req.exports:
                raise CredentialInputError(
                    "key_store", "no private key for %s (credential %s) in %s, so %s cannot be written; this credential "
                    "was not generated with this key store" % (cred.alias, cred.id, self.key_store.directory,
                                                               self.req.exports[0].option))

    # -- adding -----------------------------------------------------------------

    def add(self, creds, alias, previous):
        """Create a credential (first add, or rotation next to ``previous``)."""
        req = self.req
        self.precheck_create(creds, alias, previous)
        csr_pem = certificate_pem = None
        if req.method == "generate":
            key, alias = self.key_for_new(creds, alias, previous)
            self.key = key
            self.outcome.private_key_path = self.key_store.path(alias)
            if previous is not None and req.reuse_key and req.kind == "mtls":
                self.warn("reuse_key is true: the replacement of %s certifies the same private key with a new subject DN; "
                          "this is less secure than rotating to a new key" % previous.alias)
            if not self.check_mode:
                subject = self.subject_for(alias, previous)
                try:
                    crypto.check_profile(req.profile, key, subject)
                except crypto.CryptoError as exc:
                    raise CredentialInputError("common_name" if req.common_name else "subject", str(exc)) from None
                csr_pem = crypto.dump_csr(crypto.build_csr(key, subject)).decode("ascii")
        elif req.csr is not None:
            self.check_renewal_input(previous)
            csr_pem = crypto.dump_csr(req.csr).decode("ascii")
        else:
            self.check_renewal_input(previous)
            certificate_pem = crypto.dump_certificates([req.certificate]).decode("ascii")

        self.outcome.changed = True
        self.outcome.action = "create" if previous is None else "rotate"
        if previous is not None:
            self.outcome.superseded = self._merge_superseded(previous)
        if self.check_mode:
            self.outcome.predicted = {"alias": alias, "status": "ACTIVE", "kind": req.kind,
                                      "environment": req.environment,
                                      "public_key_fingerprint": (crypto.public_key_fingerprint(self.key) if self.key is not None
                                                                 else req.input_public_key_fingerprint())}
            return
        # A person at the portal is told which credential stays in use meanwhile.
        # An OAuth key's files (certificate_dest, a PKCS#12) need its certificate: the work order asks for it.
        extra = {"in_use": portal.in_use_facts(previous), "need_certificate": bool(req.output_paths())} \
            if req.backend == "portal" else {}
        created = self.client.create_credential(req.project_id, req.kind, req.environment, alias,
                                                csr_pem=csr_pem, certificate_pem=certificate_pem, **extra)
        if getattr(self.client, "last_create_adopted", False):
            self.warn("the answer to creating %s was lost; adopted credential %s, which the API had created"
                      % (alias, created.id))
        self.outcome.credential = created

    def _merge_superseded(self, previous):
        ids = {c.id for c in self.outcome.superseded}
        merged = list(self.outcome.superseded)
        if previous.id not in ids and is_active(previous):
            merged.append(previous)
        return sorted(merged, key=sort_key)

    def precheck_create(self, creds, alias, previous):
        """Refusals that must come before anything is written or sent."""
        req = self.req
        for cred in creds:
            if is_live(cred) and cred.alias == alias and (cred.environment or "").upper() == req.environment.upper():
                if self._is_ours(cred):
                    continue
                raise CredentialInputError(
                    "new_alias" if previous is not None and req.new_alias else "alias",
                    "%s is already used by %s credential %s in %s; choose another alias"
                    % (alias, cred.kind, cred.id, req.environment))
        if req.kind == "oauth2":
            message = oauth2_limit_message(active_oauth2_keys(creds), req.project_id)
            if message:
                raise CredentialInputError("oauth_version", message)
        project = self.project()
        if req.environment.upper() not in [e.upper() for e in project.environments]:
            raise CredentialInputError("environment", "project %s has no %s environment (it has %s)"
                                       % (req.project_id, req.environment,
                                          ", ".join(e.lower() for e in project.environments) or "none"))
        if req.kind == "mtls" and (project.auth_model or "").upper() != "MTLS":
            raise CredentialInputError("project_id", "project %s uses %s authentication; mTLS certificates need an MTLS "
                                       "project (OAuth keys are added with mcdev.credentials.mc_oauth_key)"
                                       % (req.project_id, project.auth_model))
        if req.kind != "mtls" and (project.auth_model or "").upper() == "MTLS":
            raise CredentialInputError("project_id", "project %s uses mTLS authentication; OAuth keys need an OAuth "
                                       "project (mTLS certificates are added with mcdev.credentials.mc_certificate)"
                                       % req.project_id)
        if req.kind == "oauth2" and not project.oauth2_enabled and not (req.upgrade_to_oauth2 and self.check_mode):
            raise CredentialInputError("upgrade_to_oauth2", "project %s is not upgraded to OAuth 2.0; set "
                                       "upgrade_to_oauth2: true to upgrade it (one-time, keeps OAuth 1.0a working)"
                                       % req.project_id)

    def _is_ours(self, cred):
        """A live credential with the target alias that this task's key or input made (a resumed create)."""
        if self.key_store is not None:
            key = self.key_store.load(cred.alias)
            return key is not None and crypto.public_key_fingerprint(key) == cred.public_key_fingerprint
        return False

    def key_for_new(self, creds, alias, previous):
        """(key, alias) for a new credential: a pending stored key (resume), the reused key, or a new one."""
        req = self.req
        remote_aliases = {c.alias for c in self.in_scope(creds)}
        if previous is not None:
            if req.reuse_key:
                key = self.key_store.load(previous.alias)
                if key is None:
                    raise CredentialInputError("reuse_key", "no private key for %s in %s to reuse; set reuse_key: false "
                                               "to rotate to a new key" % (previous.alias, self.key_store.directory))
                if not self.check_mode and self.key_store.load(alias) is None:
                    self.key_store.save(alias, key)
                    self.outcome.files.append({"path": self.key_store.path(alias), "changed": True})
                return key, alias
            # Resume a rotation whose create never completed: a stored key for a family alias the API does not know.
            for pending in self.key_store.pending_aliases(req.alias, req.new_alias):
                if pending not in remote_aliases and pending != previous.alias:
                    return self.key_store.load(pending), pending
        key = self.key_store.load(alias)
        if key is not None:
            spent = [c for c in self.in_scope(creds) if c.alias == alias and not is_live(c)
                     and c.public_key_fingerprint == crypto.public_key_fingerprint(key)]
            if not spent:
                self.check_key_spec(key, alias)
                return key, alias
            self.warn("the stored key for %s belongs to revoked credential %s; a new key replaces it" % (alias, spent[0].id))
        if self.check_mode:
            return None, alias
        try:
            key = crypto.generate_private_key(req.key_type, req.key_size, req.curve)
        except crypto.CryptoError as exc:
            raise CredentialInputError("key_type", str(exc)) from None
        try:
            crypto.check_profile(req.profile, key, [("CN", "x")] if req.kind != "mtls" else
                                 [("CN", req.default_common_name(alias, self.now))])
        except crypto.CryptoError as exc:
            raise CredentialInputError("key_type", str(exc)) from None
        self.key_store.save(alias, key)
        self.outcome.files.append({"path": self.key_store.path(alias), "changed": True})
        return key, alias

    def check_key_spec(self, key, alias):
        try:
            crypto.check_profile(self.req.profile, key, [("CN", self.req.default_common_name(alias, self.now))])
        except crypto.CryptoError as exc:
            raise CredentialInputError("key_store", "the stored key for %s cannot be used: %s" % (alias, exc)) from None

    def subject_for(self, alias, previous):
        req = self.req
        if previous is None:
            return req.subject_pairs(alias, self.now)
        old_pairs = crypto.name_pairs(crypto.load_certificate(previous.certificate_pem.encode("ascii")).subject) \
            if previous.certificate_pem else req.subject_pairs(alias, self.now)
        return crypto.renewal_subject(old_pairs, now=self.now.timestamp())

    def check_renewal_input(self, previous):
        """A CSR or certificate offered as the replacement of ``previous`` must differ from it as the portal requires."""
        if previous is None:
            return
        req = self.req
        subject = req.input_subject()
        if subject == previous.subject:
            raise CredentialInputError(req.method, "its subject DN (%s) is the same as that of %s (credential %s), which "
                                       "is due for renewal; the portal refuses a renewed certificate with an unchanged DN. "
                                       "Change the CN, e.g. %s" % (subject, previous.alias, previous.id,
                                                                   crypto.renewal_common_name(
                                                                       (subject.split(",")[0].split("=", 1)[-1]),
                                                                       now=self.now.timestamp())))
        if req.csr is not None and req.input_public_key_fingerprint() == previous.public_key_fingerprint and not req.reuse_key:
            raise CredentialInputError("reuse_key", "the CSR certifies the same key as %s (credential %s); rotating to a new "
                                       "key is safer; set reuse_key: true to renew with the same key anyway"
                                       % (previous.alias, previous.id))
        if req.csr is not None and req.reuse_key and req.input_public_key_fingerprint() == previous.public_key_fingerprint:
            self.warn("reuse_key is true: the replacement of %s certifies the same private key with a new subject DN; "
                      "this is less secure than rotating to a new key" % previous.alias)

    # -- renewing -----------------------------------------------------------------

    def renew(self, creds, current):
        req = self.req
        days_left = (current.expires - self.now).days if current.expires else None
        if req.reuse_key and req.kind == "oauth2":
            raise CredentialInputError("reuse_key", "key-reuse renewal exists only for OAuth 1.0a keys; OAuth 2.0 keys are "
                                       "rotated (set reuse_key: false)")
        if req.reuse_key and req.kind == "oauth1":
            self.warn("reuse_key is true: %s keeps its private key and only gets a new certificate; this is less secure "
                      "than rotating to a new key" % current.alias)
            self.outcome.changed = True
            self.outcome.action = "renew"
            self.hold_key_for(current)
            if self.check_mode:
                self.outcome.predicted = dict(diff_facts(facts(current)), status="ACTIVE")
                self.outcome.predicted.pop("fingerprint", None)
                self.outcome.predicted.pop("serial", None)
                self.outcome.predicted.pop("expires", None)
                return
            self.outcome.credential = self.client.renew_credential(req.project_id, current.id)
            return
        if req.method != "generate" and not self._input_differs(current):
            # Nothing new to send: the replacement has to come from the user.
            self.warn("%s (credential %s) expires in %s days and is due for renewal (%s), but the %s given is the one it was "
                      "made from; give a new one (with a new subject DN) to rotate"
                      % (current.alias, current.id, days_left, req.window.describe(), req.method))
            self.outcome.credential = current
            return
        alias = req.new_alias or rotation_alias(req.alias, self.now)
        if len(alias) > MAX_ALIAS_LENGTH:
            raise CredentialInputError("new_alias", "the rotation alias %s is longer than %d characters; set new_alias"
                                       % (alias, MAX_ALIAS_LENGTH))
        self.add(creds, alias, previous=current)

    def _input_differs(self, current):
        req = self.req
        if req.certificate is not None:
            return crypto.certificate_fingerprint(req.certificate) != current.fingerprint
        return not (req.input_public_key_fingerprint() == current.public_key_fingerprint
                    and req.input_subject() == current.subject)

    # -- OAuth 2.0 upgrade ------------------------------------------------------------

    def ensure_oauth2_upgrade(self):
        project = self.project()
        if project.oauth2_enabled:
            return
        if (project.auth_model or "").upper() != "OAUTH10A":
            raise CredentialInputError("upgrade_to_oauth2", "project %s uses %s authentication; only OAuth 1.0a projects "
                                       "can be upgraded to OAuth 2.0" % (self.req.project_id, project.auth_model))
        self.outcome.changed = True
        self.outcome.upgraded = True
        if not self.check_mode:
            self.outcome.project = self.client.upgrade_project_oauth2(self.req.project_id)

    # -- files --------------------------------------------------------------------------

    def write_outputs(self):
        cred = self.outcome.credential
        req = self.req
        if cred is None:  # check mode with a predicted create: every output file would be written
            for option, path in req.output_paths():
                self.outcome.files.append({"path": path, "changed": True, "option": option})
            if req.output_paths():
                self.outcome.changed = True
            return
        cert = crypto.load_certificate(cred.certificate_pem.encode("ascii"), source="the issued certificate") \
            if cred.certificate_pem else None
        chain = None

        def get_chain():
            issued = self.client.get_certificate(req.project_id, cred.id)
            certs = []
            for pem in issued.chain_pem:
                certs.extend(crypto.load_certificates(pem.encode("ascii"), source="the issuer chain"))
            if cert is None:
                return crypto.load_certificate(issued.certificate_pem.encode("ascii")), certs
            return cert, certs

        if cert is None and req.output_paths():
            cert, chain = get_chain()

        if req.certificate_dest:
            wanted = crypto.dump_certificates([cert])
            existing = read_if_exists(req.certificate_dest, "certificate_dest")
            self._write("certificate_dest", req.certificate_dest, wanted, PUBLIC_MODE,
                        same=existing is not None and _same_certificates(existing, [cert]))
        if req.chain_dest:
            existing = read_if_exists(req.chain_dest, "chain_dest")
            if existing is not None and _chain_issues(existing, cert):
                self._write("chain_dest", req.chain_dest, None, PUBLIC_MODE, same=True)
            else:
                if chain is None:
                    cert, chain = get_chain()
                self._write("chain_dest", req.chain_dest, crypto.dump_certificates(chain), PUBLIC_MODE, same=False)
        for spec in req.exports:
            if self.key is None:
                raise CredentialInputError(spec.option, "the private key of %s is not held, so %s cannot be written"
                                           % (cred.alias, spec.path))
            existing = read_if_exists(spec.path, spec.option)
            same = existing is not None and _same_export(existing, spec, self.key, cert)
            data = None
            if not same:
                if spec.format == "pkcs12":
                    if chain is None:
                        cert, chain = get_chain()
                    try:
                        data = crypto.dump_pkcs12(self.key, cert, chain, spec.passphrase, friendly_name=cred.alias)
                    except crypto.CryptoError as exc:
                        raise CredentialInputError(spec.option, str(exc)) from None
                else:
                    data = crypto.dump_private_key(self.key, spec.format, spec.passphrase)
            self._write(spec.option, spec.path, data, PRIVATE_MODE, same=same)

    def _write(self, option, path, data, mode, same):
        changed = not same
        if not same and not self.check_mode:
            _io.write_atomically(path, data)
        if not self.check_mode and os.path.exists(path) and (os.stat(path).st_mode & 0o7777) != mode:
            os.chmod(path, mode)
            changed = True
        elif self.check_mode and os.path.exists(path) and (os.stat(path).st_mode & 0o7777) != mode:
            changed = True
        if changed:
            self.outcome.changed = True
        self.outcome.files.append({"path": path, "changed": changed, "option": option})

    # -- result -----------------------------------------------------------------------

    def result(self):
        out = self.outcome
        cred_facts = facts(out.credential, self.req.window, self.now) if out.credential is not None else None
        after = diff_facts(cred_facts) if cred_facts else dict(out.predicted or {})
        # For a rotation the old credential stays; the diff shows it before and its replacement after.
        before = diff_facts(facts(out.before)) if out.before is not None else {}
        result = {
            "changed": out.changed,
            "action": out.action,
            "method": self.req.method,
            "credential": cred_facts if cred_facts is not None else dict(out.predicted or {}),
            "superseded": [facts(c, self.req.window, self.now) for c in out.superseded],
            "renewal_due": out.renewal_due,
            "files": out.files,
            "diff": {"before": before, "after": after},
        }
        if out.private_key_path:
            result["private_key_path"] = out.private_key_path
        if self.req.kind != "mtls":
            data = result["credential"]
            result["consumer_key"] = data.get("consumer_key")
            result["client_id"] = data.get("client_id")
            result["kid"] = data.get("kid")
            result["oauth2_upgraded"] = out.upgraded
            if out.project is not None:
                result["project"] = out.project.to_dict()
        return result


def _same_certificates(data, certs):
    try:
        existing = crypto.load_certificates(data)
    except crypto.CryptoError:
        return False
    return [crypto.certificate_fingerprint(c) for c in existing] == [crypto.certificate_fingerprint(c) for c in certs]


def _chain_issues(data, cert):
    try:
        existing = crypto.load_certificates(data)
    except crypto.CryptoError:
        return False
    return bool(existing) and cert is not None and crypto.certificate_signed_by(cert, existing[0])


def _same_export(data, spec, key, cert):
    """Whether an existing export file already holds this key (and certificate) in the asked form."""
    try:
        if spec.format == "pkcs12":
            got_key, got_cert, chain, _name = crypto.load_pkcs12(data, spec.passphrase)
            return (crypto.same_key(got_key, key) and got_cert is not None
                    and crypto.certificate_fingerprint(got_cert) == crypto.certificate_fingerprint(cert)
                    and bool(chain) and crypto.certificate_signed_by(cert, chain[0]))
        container = crypto.read_key_container(data, spec.passphrase)
    except crypto.CryptoError:
        return False
    if container.format != spec.format or bool(container.encrypted) != bool(spec.passphrase):
        return False
    return crypto.same_key(container.key, key)


def api_error_option(error, request):
    """The option a DevApiError is most likely about, for the failure message."""
    code = getattr(error, "reason_code", None)
    option = REASON_OPTIONS.get(code)
    if option == "csr":
        option = request.method if request.method in CSR_METHODS else "common_name"
    elif option == "certificate":
        option = request.method if request.method in CERTIFICATE_METHODS else None
    elif code == "BAD_REQUEST" and "environment" in (getattr(error, "description", "") or "").lower():
        option = "environment"
    elif code == "PROJECT_TYPE_NOT_SUPPORTED" and "OAuth 2.0" in (getattr(error, "description", "") or ""):
        option = "upgrade_to_oauth2"
    return option


def api_failure(error, request):
    """The facts fail_from adds to a DevApiError of this request: the option it is about, first in the message."""
    option = api_error_option(error, request)
    if not option:
        return {}
    return {"msg": "%s: %s" % (option, error), "option": getattr(error, "option", None) or option}


# ------------------------------------------------------------------ module glue

def argument_spec(kind):
    """Options shared by mc_certificate (kind mtls) and mc_oauth_key (kind oauth), without the connection options."""
    spec = dict(
        project_id=dict(type="str", required=True),
        environment=dict(type="str", default="sandbox", choices=list(ENVIRONMENTS)),
        alias=dict(type="str", required=True),
        new_alias=dict(type="str"),
        csr_path=dict(type="path"),
        csr_content=dict(type="str"),
        key_store=dict(type="path", no_log=False),
        key_type=dict(type="str", default="rsa", choices=["rsa", "ec"], no_log=False),
        key_size=dict(type="int", default=2048, choices=list(crypto.RSA_SIZES), no_log=False),
        curve=dict(type="str", default="secp256r1", choices=list(crypto.EC_CURVES)),
        common_name=dict(type="str"),
        subject=dict(type="dict"),
        keystore_password=dict(type="str", no_log=True),
        renew_before=dict(type="str"),
        reuse_key=dict(type="bool", default=False, no_log=False),
        certificate_dest=dict(type="path"),
        chain_dest=dict(type="path"),
    )
    spec.update(portal_argument_spec())
    spec.update(portal.issued_argument_spec())
    if kind == "mtls":
        spec.update(
            certificate_path=dict(type="path"),
            certificate_content=dict(type="str"),
            trusted_ca_path=dict(type="path"),
            company_id=dict(type="str", default="000000"),
            keystore_dest=dict(type="path", no_log=False),
            private_key_dest=dict(type="path", no_log=False),
            private_key_passphrase=dict(type="str", no_log=True),
        )
    else:
        spec.update(
            oauth_version=dict(type="str", required=True, choices=["1.0a", "2.0"]),
            upgrade_to_oauth2=dict(type="bool", default=False),
            export=dict(type="list", elements="dict", default=[], options=dict(
                format=dict(type="str", required=True, choices=list(EXPORT_FORMATS)),
                path=dict(type="path", required=True),
                passphrase=dict(type="str", no_log=True),
            )),
        )
        spec["key_type"]["default"] = "rsa"
    return spec


def mutually_exclusive(kind):
    inputs = ["csr_path", "csr_content"] + (["certificate_path", "certificate_content"] if kind == "mtls" else [])
    return [inputs, ["csr_path", "csr_content", "key_store"]] + (
        [["certificate_path", "certificate_content", "key_store"]] if kind == "mtls" else [])


def run_module(module, kind, devapi):
    """Drive one mc_certificate / mc_oauth_key run; always ends in exit_json or fail_json."""
    params = module.params
    if kind != "mtls":
        kind = OAUTH_VERSION_KIND[params["oauth_version"]]
    if not crypto.HAS_CRYPTOGRAPHY:
        fail_missing_library(module, "cryptography", crypto.CRYPTOGRAPHY_IMPORT_ERROR)
    missing = devapi.missing_requirement()
    if missing:
        fail_missing_library(module, missing[0], missing[1])
    client = None
    request = None
    try:
        request = CredentialRequest(kind, params)
        if request.backend == "portal":
            client = portal.PortalDesk(request.portal_dir, request.project_id, request.kind, issued=request.issued)
        else:
            client = devapi.client_from_params(params, module.warn)
        for warning in request.warnings:
            module.warn(warning)
        manager = CredentialManager(client, request, check_mode=module.check_mode, warn=module.warn)
        try:
            manager.run()
        except portal.AwaitingPerson as waiting:
            result, failed = portal.awaiting_result(waiting, manager.outcome.before, request.escalate_before,
                                                    manager.now, manager.outcome.files)
            (module.fail_json if failed else module.exit_json)(**result)
        result = manager.result()
        if not module._diff:  # pylint: disable=protected-access
            result.pop("diff", None)
        result["api_calls"] = client.call_count
        result["api_calls_by_op"] = dict(client.calls_by_op)
        result["contract_overrides"] = list(client.contract.overridden)
        result["msg"] = summary(manager)
        module.exit_json(**result)
    except portal.SuppliedMaterialError as exc:
        fail_from(module, exc)  # its api_calls is 0: the portal backend calls no API
    except HANDLED as exc:
        facts = api_failure(exc, request) if isinstance(exc, devapi.DevApiError) and request is not None else {}
        if client is not None:
            facts["api_calls"] = client.call_count
        fail_from(module, exc, **facts)
    finally:
        if client is not None:
            client.close()


def summary(manager):
    out = manager.outcome
    label = KIND_LABELS[manager.req.kind]
    cred = out.credential
    name = cred.alias if cred is not None else (out.predicted or {}).get("alias")
    verb = {"create": "Created", "rotate": "Rotated to", "renew": "Renewed", "none": "Kept"}[out.action]
    if manager.check_mode and out.action != "none":
        verb = "Would " + {"create": "create", "rotate": "rotate to", "renew": "renew"}[out.action]
    text = "%s %s %s" % (verb, label, name)
    if cred is not None:
        text += " (id %s, expires %s)" % (cred.id, _time.iso(cred.expires))
    if out.action == "rotate" and out.before is not None:
        text += " next to %s, which stays active until revoked" % out.before.alias
    changed_files = [f["path"] for f in out.files if f.get("changed")]
    if changed_files:
        text += "; %s %s" % ("would write" if manager.check_mode else "wrote", ", ".join(changed_files))
    return text
