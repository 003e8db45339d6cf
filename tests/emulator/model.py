"""The portal's behaviour: accounts, projects, credentials and their rules.

HTTP-free: api.py turns requests into these calls and ApiError into envelopes.
"""
import base64
import datetime
import re
import secrets
import threading
import time
import uuid

import unicodedata

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from . import pki
from .errors import ApiError, bad_request, credential_not_found, gateway_error, invalid_csr, invalid_key_type
from .errors import project_not_found
from .rules import DEFAULT_RULES, merge_rules

TYPES = ("MTLS", "SIGNING")
ENVIRONMENTS = ("SANDBOX", "PRODUCTION")
AUTH_MODELS = ("OAUTH10A", "MTLS")
OAUTH_VERSIONS = ("1.0a", "2.0")
LIVE = ("ACTIVE", "INACTIVE")
MAX_LIST_LIMIT = 500


def iso(epoch):
    """ISO 8601 UTC with Z, seconds precision (contracts.md)."""
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value, field):
    """Epoch seconds from a number or an ISO 8601 string."""
    if isinstance(value, bool):
        raise bad_request("%s must be a date" % field)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError as error:
            raise bad_request("%s is not an ISO 8601 date: %s" % (field, error)) from error
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=datetime.timezone.utc)
        return parsed.timestamp()
    raise bad_request("%s must be a date" % field)


def kind_of(record):
    """User-facing kind of a credential row: mtls, oauth1 or oauth2."""
    if record["type"] == "MTLS":
        return "mtls"
    return "oauth2" if record["oauth_version"] == "2.0" else "oauth1"


def key_description(public_key):
    if isinstance(public_key, rsa.RSAPublicKey):
        return "RSA", public_key.key_size
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "EC", public_key.curve.name
    return type(public_key).__name__, None


# Signature algorithm OIDs by the names the CSR requirements page uses (and a few it does not list).
SIGNATURE_ALGORITHM_NAMES = {
    "1.2.840.113549.1.1.5": "sha1WithRSAEncryption",
    "1.2.840.113549.1.1.11": "sha256WithRSAEncryption",
    "1.2.840.113549.1.1.12": "sha384WithRSAEncryption",
    "1.2.840.113549.1.1.13": "sha512WithRSAEncryption",
    "1.2.840.113549.1.1.10": "RSASSA-PSS",
    "1.2.840.10045.4.1": "ecdsa-with-SHA1",
    "1.2.840.10045.4.3.2": "ecdsa-with-SHA256",
    "1.2.840.10045.4.3.3": "ecdsa-with-SHA384",
    "1.2.840.10045.4.3.4": "ecdsa-with-SHA512",
}


def _self_signature_holds(csr, public_key, algorithm):
    """Verify the CSR's own signature; SHA-1 by hand, since cryptography's check refuses SHA-1 outright."""
    if "SHA1" not in algorithm.upper().replace("-", ""):
        return csr.is_signature_valid
    try:
        if isinstance(public_key, rsa.RSAPublicKey):
            public_key.verify(csr.signature, csr.tbs_certrequest_bytes, padding.PKCS1v15(), hashes.SHA1())
        else:
            public_key.verify(csr.signature, csr.tbs_certrequest_bytes, ec.ECDSA(hashes.SHA1()))
    except (InvalidSignature, TypeError, ValueError):
        return False
    return True


def _not_for_client_auth(certificate):
    """Why a certificate is not for TLS client authentication, or an empty string."""
    extensions = {ext.oid.dotted_string: ext.value for ext in certificate.extensions}
    constraints = extensions.get("2.5.29.19")
    if constraints is not None and constraints.ca:
        return "it is a CA certificate"
    usage = extensions.get("2.5.29.15")
    if usage is not None and not usage.digital_signature:
        return "keyUsage does not allow digitalSignature"
    purposes = extensions.get("2.5.29.37")
    if purposes is not None and not {p.dotted_string for p in purposes} & {"1.3.6.1.5.5.7.3.2", "2.5.29.37.0"}:
        return "extendedKeyUsage does not include clientAuth"
    return ""


class Portal:  # pylint: disable=too-many-public-methods
    """All state-changing and reading operations, with the portal's rules."""

    def __init__(self, store, pki_, startup_rules=None):
        self.store = store
        self.pki = pki_
        self.startup_rules = merge_rules(DEFAULT_RULES, startup_rules or {})
        self._rules = merge_rules(self.startup_rules, store.get_meta("rules", {}))
        self._offset = float(store.get_meta("clock_offset", 0.0))
        self._lock = threading.RLock()
        self._public_keys = {}

    def _public_key(self, pem_text):
        """Parsed public key, cached: parsing costs more than the signature check it serves."""
        key = self._public_keys.get(pem_text)
        if key is None:
            key = serialization.load_pem_public_key(pem_text.encode("ascii"))
            if len(self._public_keys) > 4096:
                self._public_keys.clear()
            self._public_keys[pem_text] = key
        return key

    # --- clock and rules -------------------------------------------------
    def now(self):
        return time.time() + self._offset

    @property
    def clock_offset(self):
        return self._offset

    def set_clock_offset(self, seconds):
        if abs(seconds) > 100 * 365 * 86400:
            raise bad_request("offset_seconds must be within 100 years")
        self._offset = float(seconds)
        self.store.set_meta("clock_offset", self._offset)

    def rules(self):
        return self._rules

    def update_rules(self, overrides):
        stored = self.store.get_meta("rules", {})
        stored.update(overrides)
        self._rules = merge_rules(self.startup_rules, stored)
        self.store.set_meta("rules", stored)
        return self._rules

    def reset(self):
        self.store.wipe()
        self._offset = 0.0
        self._rules = merge_rules(self.startup_rules, {})

    # --- presentation ------------------------------------------------------
    def status_of(self, row):
        if row["status"] == "REVOKED" or row["revoked"]:
            return "REVOKED"
        if self.now() >= row["expiry"]:
            return "EXPIRED"
        return row["status"]

    def credential_view(self, row):
        project = self.store.one("SELECT client_id FROM projects WHERE id = ?", (row["project_id"],))
        signing = row["type"] == "SIGNING"
        view = {
            "id": row["id"],
            "projectId": row["project_id"],
            "alias": row["alias"],
            "type": row["type"],
            "environment": row["environment"],
            "status": self.status_of(row),
            "oauthVersion": row["oauth_version"],
            "consumerKey": row["consumer_key"],
            "clientId": project["client_id"] if signing and project else None,
            "kid": row["kid"],
            "certificate": row["certificate_pem"],
            "fingerprint": row["fingerprint"],
            "publicKeyFingerprint": row["public_key_fingerprint"],
            "serialNumber": row["serial_number"],
            "subjectDn": row["subject_dn"],
            "createdDate": iso(row["created"]),
            "notBefore": iso(row["not_before"]),
            "expiryDate": iso(row["expiry"]),
        }
        if row["revoked"]:
            view["revokedDate"] = iso(row["revoked"])
        return view

    @staticmethod
    def project_view(row):
        return {
            "id": row["id"],
            "name": row["name"],
            "authModel": row["auth_model"],
            "oauth2Enabled": bool(row["oauth2_enabled"]),
            "environments": row["environments"].split(","),
            "clientId": row["client_id"],
        }

    # --- accounts (Developers API keys) ------------------------------------------
    def create_account(self, name=None, p12_password=None):
        if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 64):
            raise bad_request("name must be a string of 1-64 characters")
        if p12_password is not None and (not isinstance(p12_password, str) or not p12_password):
            raise bad_request("p12_password must be a non-empty string")
        key = pki.generate_key("RSA", 2048)
        account_id = str(uuid.uuid4())
        name = name or "account-%s" % account_id[:8]
        consumer_key = "%s!%s" % (secrets.token_urlsafe(36), secrets.token_hex(24))
        now = self.now()
        certificate = self.pki.ca.issue(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name[:64])]),
            key.public_key(), now - 60, now + self._rules["validity_days"] * 86400,
        )
        self.store.insert("accounts", {
            "id": account_id, "name": name, "consumer_key": consumer_key,
            "public_key_pem": pki.public_pem(key.public_key()), "created": now,
        })
        password = p12_password or "keystorepassword"
        p12 = pkcs12.serialize_key_and_certificates(
            b"keyalias", key, certificate, None, serialization.BestAvailableEncryption(password.encode("utf-8"))
        )
        return {
            "account_id": account_id,
            "name": name,
            "consumer_key": consumer_key,
            "signing_key_pem": pki.private_pem(key),
            "signing_key_p12_b64": base64.b64encode(p12).decode("ascii"),
            "p12_password": password,
            "certificate": pki.pem(certificate),
        }

    def account_key(self, consumer_key):
        """Gateway lookup for the Developers API: consumer key -> (public key, account id)."""
        row = self.store.one("SELECT id, public_key_pem FROM accounts WHERE consumer_key = ?", (consumer_key,))
        if not row:
            raise gateway_error(401, "INVALID_CONSUMER_KEY", "Unknown or invalid oauth_consumer_key")
        return self._public_key(row["public_key_pem"]), row["id"]

    def project_key(self, consumer_key):
        """Gateway lookup for the OAuth 1.0a probe: a project's RSA signing key that is ACTIVE."""
        row = self.store.one("SELECT * FROM credentials WHERE consumer_key = ?", (consumer_key,))
        if not row or row["type"] != "SIGNING" or row["key_type"] != "RSA":
            raise gateway_error(401, "INVALID_CONSUMER_KEY", "Unknown or invalid oauth_consumer_key")
        status = self.status_of(row)
        if status != "ACTIVE":
            raise gateway_error(401, "INVALID_CONSUMER_KEY", "The key for this oauth_consumer_key is %s" % status)
        return self._public_key(row["public_key_pem"]), row

    # --- projects ----------------------------------------------------------
    def create_project(self, body):
        account_id = body.get("account_id")
        if account_id is None:
            latest = self.store.one("SELECT id FROM accounts ORDER BY created DESC, rowid DESC LIMIT 1")
            if not latest:
                raise bad_request("create an account first (POST /_admin/accounts)")
            account_id = latest["id"]
        elif not self.store.one("SELECT id FROM accounts WHERE id = ?", (account_id,)):
            raise bad_request("unknown account_id %s" % account_id)
        name = body.get("name") or "project-%s" % secrets.token_hex(4)
        if not isinstance(name, str) or len(name) > 128:
            raise bad_request("name must be a string of at most 128 characters")
        auth_model = body.get("authModel", "OAUTH10A")
        if auth_model not in AUTH_MODELS:
            raise bad_request("authModel must be one of %s" % ", ".join(AUTH_MODELS))
        environments = body.get("environments", list(ENVIRONMENTS))
        if not isinstance(environments, list) or not environments or \
                any(environment not in ENVIRONMENTS for environment in environments):
            raise bad_request("environments must be a non-empty list of SANDBOX, PRODUCTION")
        with self.store.transaction():
            if self.store.one("SELECT id FROM projects WHERE account_id = ? AND name = ?", (account_id, name)):
                raise ApiError(409, "PROJECT_NAME_ALREADY_EXISTS", "Project name %s already exists" % name)
            row = {
                "id": str(uuid.uuid4()), "account_id": account_id, "name": name, "auth_model": auth_model,
                "oauth2_enabled": int(bool(body.get("oauth2Enabled", False))),
                "client_id": secrets.token_urlsafe(36), "environments": ",".join(environments),
                "created": self.now(),
            }
            self.store.insert("projects", row)
        return self.project_view(row)

    def project_for(self, account_id, project_id):
        row = self.store.one("SELECT * FROM projects WHERE id = ?", (project_id,))
        if not row:
            raise project_not_found(project_id)
        if account_id is not None and row["account_id"] != account_id:
            raise ApiError(403, "NO_ACCESS_TO_PROJECT", "User does not have access to this project")
        return row

    def upgrade_project(self, account_id, project_id):
        project = self.project_for(account_id, project_id)
        if project["auth_model"] != "OAUTH10A":
            raise ApiError(400, "PROJECT_TYPE_NOT_SUPPORTED", "Only OAUTH10A projects can be upgraded to OAuth 2.0")
        self.store.update("projects", project_id, {"oauth2_enabled": 1})
        project["oauth2_enabled"] = 1
        return self.project_view(project)

    # --- credentials: reading ---------------------------------------------------------
    def credential_for(self, account_id, project_id, credential_id):
        self.project_for(account_id, project_id)
        row = self.store.one("SELECT * FROM credentials WHERE id = ? AND project_id = ?", (credential_id, project_id))
        if not row:
            raise credential_not_found(credential_id)
        return row

    def list_credentials(self, account_id, project_id, args):
        self.project_for(account_id, project_id)
        sql = "SELECT * FROM credentials WHERE project_id = ?"
        params = [project_id]
        environment = args.get("environment")
        if environment:
            if environment not in ENVIRONMENTS:
                raise bad_request("environment must be SANDBOX or PRODUCTION")
            sql += " AND environment = ?"
            params.append(environment)
        kind = args.get("type")
        if kind:
            if kind not in TYPES:
                raise bad_request("type must be MTLS or SIGNING")
            sql += " AND type = ?"
            params.append(kind)
        offset = _int_arg(args, "offset", 0, 0, None)
        limit = _int_arg(args, "limit", 100, 1, MAX_LIST_LIMIT)
        rows = self.store.query(sql + " ORDER BY created, rowid", tuple(params))
        items = [self.credential_view(row) for row in rows[offset:offset + limit]]
        return {"items": items, "total": len(rows), "offset": offset, "limit": limit}

    def certificate_of(self, account_id, project_id, credential_id):
        row = self.credential_for(account_id, project_id, credential_id)
        issuer = self.pki.external_ca if row["issuer"] == "external" else self.pki.ca
        return {"certificate": row["certificate_pem"], "chain": [pki.pem(issuer.certificate)]}

    def _live_rows(self, project_id, where="", args=()):
        rows = self.store.query("SELECT * FROM credentials WHERE project_id = ? " + where, (project_id,) + tuple(args))
        return [row for row in rows if self.status_of(row) in LIVE]

    # --- credentials: rules ----------------------------------------------------
    def _check_csr(self, pem_text, kind, environment):
        """INVALID_CSR unless the CSR meets the portal's CSR rules for this kind of credential."""
        if not isinstance(pem_text, str) or not pem_text.strip():
            raise invalid_csr("The CSR should not be blank")
        try:
            csr = x509.load_pem_x509_csr(pem_text.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError) as error:
            raise invalid_csr("The CSR could not be parsed as a PEM PKCS#10 request: %s" % error) from error
        try:
            algorithm = SIGNATURE_ALGORITHM_NAMES.get(csr.signature_algorithm_oid.dotted_string,
                                                      csr.signature_algorithm_oid.dotted_string)
            public_key = csr.public_key()
            subject = csr.subject
        except Exception as error:  # pylint: disable=broad-exception-caught
            # cryptography raises several types for exotic keys/algorithms or malformed names; all mean "not acceptable".
            raise invalid_csr("The CSR uses an unsupported key, signature algorithm or subject encoding") from error
        if algorithm not in self._rules["csr_signature_algorithms"]:
            raise invalid_csr("The CSR signature algorithm %s is not allowed" % algorithm)
        if not _self_signature_holds(csr, public_key, algorithm):
            raise invalid_csr("The CSR signature is not valid")
        self._check_key(public_key, kind, invalid_csr)
        self._check_subject(subject, kind, environment, invalid_csr)
        return csr

    def _check_key(self, public_key, kind, error):
        key_type, size = key_description(public_key)
        if key_type == "RSA":
            if size < self._rules["rsa_min_bits"]:
                raise error("RSA keys must be at least %d bits (got %d)" % (self._rules["rsa_min_bits"], size))
        elif key_type == "EC":
            if kind == "oauth1":
                raise error("OAuth 1.0a keys must be RSA keys")
            allowed = ("secp256r1",) if kind == "oauth2" else ("secp256r1", "secp384r1")
            if size not in allowed:
                raise error("EC keys must use curve %s (got %s)" % (" or ".join(allowed), size))
        else:
            raise error("Unsupported key type %s" % key_type)
        return key_type

    def _check_subject(self, subject, kind, environment, error):
        for attribute in subject:
            text = str(attribute.value)
            if any(unicodedata.category(char) in ("Cc", "Cf") for char in text):
                raise error("The subject attribute %s contains control or formatting characters"
                            % attribute.oid.dotted_string)
        common_names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not common_names or not str(common_names[0].value).strip():
            raise error("The subject DN must contain a CN")
        common_name = str(common_names[0].value)
        if len(common_name) > self._rules["cn_max_length"]:
            raise error("The CN must be at most %d characters" % self._rules["cn_max_length"])
        if "://" in common_name:
            raise error("The CN must not be a URL")
        for organization in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
            if len(str(organization.value)) > 64:
                raise error("The O must be at most 64 characters")
        pattern = (self._rules["mtls_cn_patterns"] or {}).get(environment) if kind == "mtls" else None
        if pattern and not re.match(pattern, common_name):
            raise error("The CN %r does not match the %s mTLS pattern "
                        "[unique string]-Client-MTF-[CID or 000000]" % (common_name, environment))

    def _check_uploaded_certificate(self, pem_text, environment):
        try:
            certificate = x509.load_pem_x509_certificate(pem_text.strip().encode("ascii"))
        except (ValueError, UnicodeEncodeError, AttributeError) as error:
            raise bad_request("certificate is not a PEM X.509 certificate") from error
        issuer = self.pki.trusted_issuer(certificate, self._rules["accept_external_ca"])
        if issuer is None:
            raise ApiError(400, "UNTRUSTED_CERTIFICATE",
                           "The certificate is not signed by a Mastercard trusted Certificate Authority")
        now = self.now()
        if certificate.not_valid_after_utc.timestamp() <= now:
            raise ApiError(400, "EXPIRED_CERTIFICATE", "The certificate has expired")
        if certificate.not_valid_before_utc.timestamp() > now:
            raise ApiError(400, "EXPIRED_CERTIFICATE", "The certificate is not valid yet")
        try:
            public_key = certificate.public_key()
        except (ValueError, TypeError) as error:
            raise bad_request("unsupported certificate key") from error
        self._check_key(public_key, "mtls", bad_request)
        if self._rules["require_client_auth_usage"]:
            unusable = _not_for_client_auth(certificate)
            if unusable:
                raise ApiError(400, "INVALID_CERTIFICATE_USAGE", "The certificate cannot be used as an mTLS client "
                               "certificate: %s" % unusable)
        # Uploaded certificates were named by another CA: only CN presence and length apply.
        common_names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        if not common_names or len(str(common_names[0].value)) > self._rules["cn_max_length"]:
            raise bad_request("The certificate subject must have a CN of at most %d characters"
                              % self._rules["cn_max_length"])
        del environment
        return certificate, issuer

    def _check_alias(self, project_id, environment, alias):
        for row in self._live_rows(project_id, "AND environment = ? AND alias = ?", (environment, alias)):
            raise ApiError(409, "CREDENTIAL_ALIAS_ALREADY_EXISTS",
                           "An active credential with alias %s already exists (%s)" % (alias, row["id"]))

    def _check_unique_dn(self, project_id, subject_dn, fingerprint):
        if not self._rules["unique_mtls_dn"]:
            return
        for row in self._live_rows(project_id, "AND type = 'MTLS'"):
            if self.status_of(row) == "ACTIVE" and (row["subject_dn"] == subject_dn or row["fingerprint"] == fingerprint):
                raise ApiError(409, "DUPLICATE_CERTIFICATE",
                               "An active certificate with the DN %s already exists; change the DN "
                               "(for example the CN) of the renewed certificate" % subject_dn)

    def _check_oauth2_limit(self, project_id):
        active = [row for row in self._live_rows(project_id, "AND type = 'SIGNING' AND oauth_version = '2.0'")
                  if self.status_of(row) == "ACTIVE"]
        if len(active) >= self._rules["max_active_oauth2_keys"]:
            raise ApiError(409, "MAX_OAUTH2_KEYS_EXCEEDED",
                           "A project can have a maximum of %d OAuth 2.0 keys; revoke an unused key first"
                           % self._rules["max_active_oauth2_keys"])

    # --- credentials: writing ------------------------------------------------
    def create_credential(self, account_id, project_id, body):
        project = self.project_for(account_id, project_id)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object")
        cred_type = body.get("type")
        if cred_type not in TYPES:
            if isinstance(cred_type, str) and cred_type:
                raise invalid_key_type("Invalid credential type (%s) for this request" % cred_type)
            raise bad_request("type is required: MTLS or SIGNING")
        environment = body.get("environment")
        if environment not in ENVIRONMENTS:
            raise bad_request("environment is required: SANDBOX or PRODUCTION")
        if environment not in project["environments"].split(","):
            raise bad_request("The project has no %s environment" % environment)
        alias = body.get("alias")
        if not isinstance(alias, str) or not alias.strip() or len(alias) > 64:
            raise bad_request("alias is required (1-64 characters)")
        oauth_version = body.get("oauthVersion")
        if cred_type == "MTLS":
            if project["auth_model"] != "MTLS":
                raise ApiError(400, "PROJECT_TYPE_NOT_SUPPORTED",
                               "MTLS credentials are not supported on an %s project" % project["auth_model"])
            if oauth_version is not None:
                raise bad_request("oauthVersion applies only to SIGNING credentials")
        else:
            if project["auth_model"] != "OAUTH10A":
                raise ApiError(400, "PROJECT_TYPE_NOT_SUPPORTED",
                               "SIGNING credentials are not supported on an %s project" % project["auth_model"])
            oauth_version = oauth_version or "1.0a"
            if oauth_version not in OAUTH_VERSIONS:
                raise bad_request("oauthVersion must be 1.0a or 2.0")
            if oauth_version == "2.0" and not project["oauth2_enabled"]:
                raise ApiError(400, "PROJECT_TYPE_NOT_SUPPORTED",
                               "The project is not upgraded to OAuth 2.0")
        kind = "mtls" if cred_type == "MTLS" else ("oauth2" if oauth_version == "2.0" else "oauth1")
        csr_text, cert_text = body.get("csr"), body.get("certificate")
        if cert_text is not None and csr_text is not None:
            raise bad_request("Send either csr or certificate, not both")
        if cert_text is not None:
            if cred_type != "MTLS":
                raise invalid_key_type("Invalid credential type (SIGNING) for this request")
            if not isinstance(cert_text, str):
                raise bad_request("certificate must be a PEM string")
            certificate, issuer = self._check_uploaded_certificate(cert_text, environment)
            public_key, subject = certificate.public_key(), certificate.subject
        else:
            csr = self._check_csr(csr_text, kind, environment)
            certificate, issuer = None, "emulator"
            public_key, subject = csr.public_key(), csr.subject
        with self._lock, self.store.transaction():
            self._check_alias(project_id, environment, alias)
            if kind == "mtls":
                self._check_unique_dn(project_id, subject.rfc4514_string(),
                                      pki.fingerprint(certificate) if certificate else None)
            if kind == "oauth2":
                self._check_oauth2_limit(project_id)
            now = self.now()
            if certificate is None:
                certificate = self.pki.ca.issue(subject, public_key, now - 60,
                                                now + self._rules["validity_days"] * 86400,
                                                client_auth=True)
            row = self._row(project, cred_type, environment, alias, oauth_version, "ACTIVE",
                            certificate, issuer, now)
            self.store.insert("credentials", row)
        return self.credential_view(row)

    def _row(self, project, cred_type, environment, alias, oauth_version, status, certificate, issuer, created):
        public_key = certificate.public_key()
        key_type = key_description(public_key)[0]
        kid = secrets.token_hex(24) if cred_type == "SIGNING" else None
        consumer_key = "%s!%s" % (project["client_id"], kid) if kid and key_type == "RSA" else None
        return {
            "id": str(uuid.uuid4()), "project_id": project["id"], "alias": alias, "type": cred_type,
            "environment": environment, "status": status, "oauth_version": oauth_version,
            "consumer_key": consumer_key, "kid": kid, "certificate_pem": pki.pem(certificate),
            "fingerprint": pki.fingerprint(certificate),
            "public_key_fingerprint": pki.public_key_fingerprint(public_key),
            "public_key_pem": pki.public_pem(public_key), "key_type": key_type,
            "serial_number": "%x" % certificate.serial_number, "subject_dn": certificate.subject.rfc4514_string(),
            "not_before": certificate.not_valid_before_utc.timestamp(),
            "expiry": certificate.not_valid_after_utc.timestamp(), "created": created, "revoked": None,
            "issuer": issuer,
        }

    def activate(self, account_id, project_id, credential_id, body):
        if not isinstance(body, dict) or "status" not in body:
            raise bad_request("The request body must be {\"status\": \"ACTIVE\"}")
        row = self.credential_for(account_id, project_id, credential_id)
        if body["status"] != "ACTIVE":
            raise ApiError(400, "INVALID_CREDENTIAL_STATUS", "Only active status supported")
        with self._lock, self.store.transaction():
            row = self.store.one("SELECT * FROM credentials WHERE id = ?", (credential_id,))
            status = self.status_of(row)
            if status == "REVOKED":
                raise ApiError(400, "INVALID_CREDENTIAL_STATUS", "A revoked credential cannot be activated")
            if status == "EXPIRED":
                raise ApiError(400, "ACTIVATING_EXPIRED_KEY", "An expired credential cannot be activated")
            if status != "ACTIVE":
                if kind_of(row) == "oauth2":
                    self._check_oauth2_limit(project_id)
                self.store.update("credentials", credential_id, {"status": "ACTIVE"})
                row["status"] = "ACTIVE"
        return self.credential_view(row)

    def revoke(self, account_id, project_id, credential_id):
        row = self.credential_for(account_id, project_id, credential_id)
        with self._lock, self.store.transaction():
            row = self.store.one("SELECT * FROM credentials WHERE id = ?", (credential_id,))
            if self.status_of(row) == "REVOKED":
                return self.credential_view(row)
            if self._rules["guard_last_active"] and self.status_of(row) == "ACTIVE":
                others = [other for other in self._live_rows(project_id, "AND environment = ? AND id != ?",
                                                             (row["environment"], row["id"]))
                          if kind_of(other) == kind_of(row) and self.status_of(other) == "ACTIVE"]
                if not others:
                    raise ApiError(409, "REVOKE_LAST_ACTIVE_CREDENTIAL",
                                   "This is the last active %s credential of the project in %s; "
                                   "add and activate another one first" % (kind_of(row), row["environment"]))
            changes = {"status": "REVOKED", "revoked": self.now()}
            self.store.update("credentials", credential_id, changes)
            row.update(changes)
        return self.credential_view(row)

    def renew(self, account_id, project_id, credential_id):
        row = self.credential_for(account_id, project_id, credential_id)
        if kind_of(row) != "oauth1":
            raise ApiError(400, "RENEWAL_NOT_SUPPORTED", "Only OAuth 1.0a keys can be renewed; rotate instead")
        with self._lock, self.store.transaction():
            row = self.store.one("SELECT * FROM credentials WHERE id = ?", (credential_id,))
            if self.status_of(row) == "REVOKED":
                raise ApiError(400, "INVALID_CREDENTIAL_STATUS", "A revoked credential cannot be renewed")
            old = x509.load_pem_x509_certificate(row["certificate_pem"].encode("ascii"))
            now = self.now()
            certificate = self.pki.ca.issue(old.subject, old.public_key(), now - 60,
                                            now + self._rules["validity_days"] * 86400)
            changes = {
                "certificate_pem": pki.pem(certificate), "fingerprint": pki.fingerprint(certificate),
                "serial_number": "%x" % certificate.serial_number,
                "not_before": certificate.not_valid_before_utc.timestamp(),
                "expiry": certificate.not_valid_after_utc.timestamp(), "issuer": "emulator",
            }
            if row["status"] != "INACTIVE":
                changes["status"] = "ACTIVE"
            self.store.update("credentials", credential_id, changes)
            row.update(changes)
        return self.credential_view(row)

    # --- admin seeding -------------------------------------------------
    def seed_credential(self, project_id, body):  # pylint: disable=too-many-locals
        """Insert a credential with chosen dates and status, bypassing the portal's rules."""
        project = self.project_for(None, project_id)
        if not isinstance(body, dict):
            raise bad_request("The request body must be a JSON object")
        cred_type = body.get("type", "SIGNING" if project["auth_model"] == "OAUTH10A" else "MTLS")
        if cred_type not in TYPES:
            raise bad_request("type must be MTLS or SIGNING")
        environment = body.get("environment", "SANDBOX")
        if environment not in ENVIRONMENTS:
            raise bad_request("environment must be SANDBOX or PRODUCTION")
        oauth_version = body.get("oauthVersion", "1.0a" if cred_type == "SIGNING" else None)
        if cred_type == "SIGNING" and oauth_version not in OAUTH_VERSIONS:
            raise bad_request("oauthVersion must be 1.0a or 2.0")
        status = body.get("status", "ACTIVE")
        if status not in ("ACTIVE", "INACTIVE", "REVOKED"):
            raise bad_request("status must be ACTIVE, INACTIVE or REVOKED")
        now = self.now()
        not_before = parse_time(body.get("notBefore", now - 60), "notBefore")
        expiry = parse_time(body.get("expiryDate", not_before + self._rules["validity_days"] * 86400), "expiryDate")
        if expiry <= not_before:
            raise bad_request("expiryDate must be after notBefore")
        if not 0 < not_before < 253402300799 or expiry >= 253402300799:
            raise bad_request("dates must fall between 1970 and 9999")
        private_key_pem = None
        if body.get("csr"):
            if not isinstance(body["csr"], str):
                raise invalid_csr("csr must be a PEM string")
            try:
                csr = x509.load_pem_x509_csr(body["csr"].encode("ascii"))
                public_key, subject = csr.public_key(), csr.subject
            except (ValueError, AttributeError, UnicodeEncodeError) as error:
                raise invalid_csr("The CSR could not be parsed: %s" % error) from error
        else:
            key_type = body.get("key_type", "EC" if oauth_version == "2.0" else "RSA")
            if key_type not in ("RSA", "EC"):
                raise bad_request("key_type must be RSA or EC")
            key_size = body.get("key_size", 2048)
            if key_type == "RSA" and (isinstance(key_size, bool) or key_size not in (1024, 2048, 3072, 4096)):
                raise bad_request("key_size must be 1024, 2048, 3072 or 4096")
            key = pki.generate_key(key_type, key_size)
            private_key_pem = pki.private_pem(key)
            public_key = key.public_key()
            default_cn = ("seed%d-Client-MTF-000000" % int(now)) if cred_type == "MTLS" else "seed-%d" % int(now)
            common_name = body.get("common_name", default_cn)
            if not isinstance(common_name, str) or not 0 < len(common_name) <= 64:
                raise bad_request("common_name must be a string of 1-64 characters")
            subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
        alias = body.get("alias") or "seed-%s" % secrets.token_hex(4)
        if not isinstance(alias, str) or len(alias) > 64:
            raise bad_request("alias must be a string of at most 64 characters")
        certificate = self.pki.ca.issue(subject, public_key, not_before, expiry)
        row = self._row(project, cred_type, environment, alias, oauth_version if cred_type == "SIGNING" else None,
                        status, certificate, "emulator", min(now, not_before))
        if status == "REVOKED":
            row["revoked"] = now
        self.store.insert("credentials", row)
        view = self.credential_view(row)
        if private_key_pem:
            view["private_key_pem"] = private_key_pem
        return view

    # --- probes -------------------------------------------------------------
    def mtls_credential(self, fingerprint):
        """The MTLS credential whose certificate has this fingerprint, with its derived status."""
        row = self.store.one("SELECT * FROM credentials WHERE fingerprint = ? AND type = 'MTLS' "
                             "ORDER BY created DESC LIMIT 1", (fingerprint,))
        return (row, self.status_of(row)) if row else (None, None)

    def oauth2_key(self, kid):
        """(row, project row, derived status, capable) for a kid, or (None, None, None, False)."""
        row = self.store.one("SELECT * FROM credentials WHERE kid = ?", (kid,))
        if not row:
            return None, None, None, False
        project = self.store.one("SELECT * FROM projects WHERE id = ?", (row["project_id"],))
        capable = row["type"] == "SIGNING" and (row["oauth_version"] == "2.0" or bool(project["oauth2_enabled"]))
        return row, project, self.status_of(row), capable

    def public_key_of(self, row):
        return self._public_key(row["public_key_pem"])


def _int_arg(args, name, default, minimum, maximum):
    raw = args.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError) as error:
        raise bad_request("%s must be an integer" % name) from error
    if value < minimum or (maximum is not None and value > maximum):
        raise bad_request("%s must be between %s and %s" % (name, minimum, maximum or "any"))
    return value
