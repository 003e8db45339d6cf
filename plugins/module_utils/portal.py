# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The portal-assisted backend: Mastercard Developers through a person at the portal, for who has no
Developers API access.

PRIVATE to this collection: the API may change without notice.

A PortalDesk stands where DevApiClient stands for CredentialManager and mc_revoke. It lists the credentials
the person brought back (``<portal_dir>/<project_id>/credentials.json``). A create or a revoke it cannot do
itself becomes a work order, as JSON (for scripts and AWX) and as a Markdown page (for the person), and
AwaitingPerson: the run ends there, not failed. The next run finds what the person supplied (the ``issued``
option, or a file in the inbox beside the work order), checks it against the work order, and carries on.

The key never leaves the key store; the work order holds the CSR, which is public.
"""

from __future__ import annotations

import json
import os
import re

from ansible_collections.mcdev.credentials.plugins.module_utils import _io, _time
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.common import InputError
from ansible_collections.mcdev.credentials.plugins.module_utils.devapi import Credential, IssuedCertificate, Project
from ansible_collections.mcdev.credentials.plugins.module_utils.devapi_contract import Contract
from ansible_collections.mcdev.credentials.plugins.module_utils.inventory import (
    AWAITING_ISSUE, AWAITING_REVOKE, DEFAULT_LIFETIME)

WORK_ORDER_VERSION = 1

# What the seeds name on the portal's screens.
SCREENS = {"sandbox": "Sandbox credentials", "production": "Production credentials"}
ADD_BUTTON = {"mtls": "Add certificate", "oauth1": "Add project key", "oauth2": "Add project key"}
ADD_METHOD = {"mtls": "Paste in a CSR", "oauth1": "Paste in a CSR file", "oauth2": "Paste in a CSR file"}
REVOKE_ACTION = {"mtls": "Manage \u2192 Revoke certificate", "oauth1": "\u22ee \u2192 Revoke key",
                 "oauth2": "\u22ee \u2192 Revoke key"}
# What the portal shows once it made the credential, and so what the person brings back.
BRING_BACK = {
    "mtls": {"certificate": "the issued certificate and its chain (PEM), as downloaded from the credentials screen"},
    "oauth1": {"consumer_key": "the consumer key the credentials screen shows for the new key"},
    "oauth2": {"client_id": "the client ID the credentials screen shows", "kid": "the key ID (kid) of the new key"},
}
# An OAuth key's certificate, when the task's outputs (certificate_dest, a PKCS#12) need one.
CERTIFICATE_BACK = {"certificate": "the certificate the credentials screen offers for the new key (PEM, with its chain); "
                                   "the files this run writes need it"}
OPTIONAL_BACK = {"credential_id": "the credential's id, where the portal shows one",
                 "expires": "the expiry date the credentials screen shows (YYYY-MM-DD), for OAuth keys"}
# Shapes seen in Mastercard's pages (reference/mastercard-api.md section 5): <client id>!<hex key id>.
_CLIENT_ID = r"[A-Za-z0-9_-]{20,}"
_KID = r"[0-9a-fA-F]{16,}"
SHAPES = {
    "consumer_key": (re.compile(r"^%s!%s$" % (_CLIENT_ID, _KID)),
                     "<client id>!<hex key id>, e.g. 48 characters, '!' and 48 hex digits"),
    "client_id": (re.compile(r"^%s$" % _CLIENT_ID), "at least 20 letters, digits, '-' or '_'"),
    "kid": (re.compile(r"^%s$" % _KID), "at least 16 hex digits"),
}
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def portal_argument_spec():
    """backend and portal_dir, as mc_certificate, mc_oauth_key, mc_revoke and mc_rotation_plan take them."""
    return {"backend": dict(type="str", default="api", choices=["api", "portal"]), "portal_dir": dict(type="path")}


def issued_argument_spec():
    """issued and escalate_before (doc fragment portal.ISSUED), as the create modules and mc_rotation_plan take them."""
    return {"issued": dict(type="dict", no_log=False, options=dict(
        certificate=dict(type="str"), chain=dict(type="list", elements="str"),
        consumer_key=dict(type="str", no_log=False), client_id=dict(type="str"), kid=dict(type="str", no_log=False),
        credential_id=dict(type="str"), expires=dict(type="str"))),
        "escalate_before": dict(type="int", default=DEFAULT_ESCALATE_BEFORE)}


class AwaitingPerson(Exception):
    """The run waits for a person at the portal; ``order`` is the work order, ``written`` whether it is new,
    ``answered`` whether the person supplied something since (which the step that reads it then checks)."""

    def __init__(self, status, order, paths, written, answered=False):
        self.status = status
        self.order = order
        self.paths = paths
        self.written = written
        self.answered = answered
        super().__init__("%s: work order %s" % (status, paths["json"]))


class SuppliedMaterialError(InputError):
    """What the person supplied does not fit the work order; nothing changed and the work order stays open."""

    def __init__(self, message, source):
        self.option = "issued"
        super().__init__("issued: %s (from %s); the work order stays open" % (message, source))

    def fields(self):
        # not a failed attempt: the work order stays open for the right material (the rotation role reads status)
        return {"option": self.option, "status": AWAITING_ISSUE, "api_calls": 0}


def _read_json(path, what):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise InputError("portal_dir: %s %s cannot be read (%s); fix or move the file" % (what, path, exc)) from None


def _active_record(kind, environment):
    """The fields every credential record of the desk starts with, in the API's words."""
    return {"environment": environment.upper(), "status": "ACTIVE", "type": "MTLS" if kind == "mtls" else "SIGNING",
            "oauthVersion": {"mtls": None, "oauth1": "1.0a", "oauth2": "2.0"}[kind]}


def _work_orders_in(folder, steps=("create", "revoke")):
    """(path, work order) of the open work orders in one ``work-orders`` folder, by file name (none: no folder)."""
    if not os.path.isdir(folder):
        return
    suffixes = tuple("-%s.json" % step for step in steps)
    for name in sorted(os.listdir(folder)):
        if name.endswith(suffixes):
            path = os.path.join(folder, name)
            yield path, _read_json(path, "the work order") or {}


def _write_json(path, data):
    _io.write_atomically(path, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))


class PortalDesk:
    """One project's desk at the portal: the credentials the person brought back, work orders and the inbox."""

    call_count = 0
    last_create_adopted = False

    def __init__(self, directory, project_id, kind, issued=None, now=None, revoked_confirmed=False):
        """``revoked_confirmed``: True (the person confirms every revocation asked of this desk) or the credential
        ids whose revocation is confirmed."""
        if not directory:
            raise InputError("portal_dir: backend=portal needs portal_dir, the folder for work orders and what the "
                             "person brings back")
        self.root = os.path.join(directory, project_id)
        self.project_id = project_id
        self.kind = kind
        self.issued = issued or None
        self.revoked_confirmed = revoked_confirmed if isinstance(revoked_confirmed, (set, frozenset)) \
            else bool(revoked_confirmed)
        self.now = now or _time.now()
        self.calls_by_op = {}
        self.notes = []
        self.contract = Contract()
        self._records = None

    # -- where things are ---------------------------------------------------------

    def paths(self, environment, alias, step, kind):
        """Where a work order and its inbox file are: a certificate comes back as PEM, anything else as JSON."""
        base = "%s-%s" % (environment.lower(), alias)
        suffix = ".pem" if step == "create" and kind == "mtls" else ".json"
        return {"json": os.path.join(self.root, "work-orders", "%s-%s.json" % (base, step)),
                "page": os.path.join(self.root, "work-orders", "%s-%s.md" % (base, step)),
                "inbox": os.path.join(self.root, "inbox", base + suffix)}

    @property
    def ledger_path(self):
        return os.path.join(self.root, "credentials.json")

    def _ensure_dirs(self):
        for sub in ("work-orders", "inbox", os.path.join("work-orders", "done")):
            os.makedirs(os.path.join(self.root, sub), mode=0o700, exist_ok=True)

    # -- what the client interface asks -------------------------------------------

    def close(self):
        """Nothing to close: the desk is files."""

    def __enter__(self):
        return self

    def __exit__(self, *_exc):
        self.close()

    def confirmed(self, credential_id):
        """Whether the person confirmed the revocation of ``credential_id`` (outside the inbox)."""
        if isinstance(self.revoked_confirmed, (set, frozenset)):
            return credential_id in self.revoked_confirmed
        return self.revoked_confirmed

    def records(self):
        if self._records is None:
            data = _read_json(self.ledger_path, "the portal's credential list") or {"credentials": []}
            self._records = list(data.get("credentials") or [])
        return self._records

    def list_credentials(self, project_id, environment=None, credential_type=None, kind=None):
        found = [Credential.from_api(record) for record in self.records()]
        self._tidy({c.public_key_fingerprint for c in found})
        if environment:
            found = [c for c in found if (c.environment or "").upper() == environment.upper()]
        if credential_type:
            found = [c for c in found if (c.type or "").upper() == credential_type.upper()]
        if kind:
            found = [c for c in found if c.kind == kind]
        return found

    def get_project(self, project_id):
        """The portal shows the project to the person, not to us: it is taken to be what the task says it is, and
        the portal itself refuses what does not fit (the person sees that)."""
        return Project(id=project_id, name=None, auth_model="MTLS" if self.kind == "mtls" else "OAUTH10A", oauth2_enabled=True,
                       environments=["SANDBOX", "PRODUCTION"])

    def upgrade_project_oauth2(self, project_id):
        return self.get_project(project_id)

    def renew_credential(self, project_id, credential_id):
        raise InputError("reuse_key: the portal-assisted backend rotates to a new key; renew the OAuth 1.0a key in the "
                         "portal yourself (Rotate key, Renew key) or set reuse_key: false")

    def get_certificate(self, project_id, credential_id):
        for record in self.records():
            if record.get("id") == credential_id and record.get("certificate"):
                return IssuedCertificate(record["certificate"], list(record.get("chain") or []))
        raise InputError("issued: no certificate was brought back from the portal for credential %s; an OAuth key "
                         "from the portal has none unless you supply it (issued.certificate), so drop certificate_dest, "
                         "chain_dest and pkcs12 exports, or supply it" % credential_id)

    # -- create ---------------------------------------------------------------------

    def create_credential(self, project_id, kind, environment, alias, csr_pem=None, certificate_pem=None,
                          in_use=None, need_certificate=False):
        if certificate_pem:
            raise InputError("certificate_path: the portal-assisted backend takes a CSR (key_store, csr_path or "
                             "csr_content); upload a certificate in the portal yourself (Add certificate, Upload a "
                             "certificate)")
        paths = self.paths(environment, alias, "create", kind)
        order = _read_json(paths["json"], "the work order")
        csr = crypto.load_csr(csr_pem.encode("ascii"), "the CSR")
        fingerprint = crypto.public_key_fingerprint(csr)
        if order is not None and order.get("public_key_fingerprint") == fingerprint and order.get("kind") == kind:
            csr = crypto.load_csr(order["csr"].encode("ascii"), "the CSR of work order %s" % paths["json"])
        else:
            order = None  # a work order for another key (or none): this one replaces it
        wanted = dict(BRING_BACK[kind], **(CERTIFICATE_BACK if need_certificate else {}))
        material, source = self._supplied(paths["inbox"], kind)
        if material is not None:
            record = self._record_from(material, source, kind, environment, alias, csr, wanted)
            self._close(paths, record)
            return self._credential(record)
        written = order is None or order.get("bring_back") != wanted
        if written:
            order = self._create_order(kind, environment, alias, csr, paths, in_use, wanted)
            self._publish(paths, order, _create_page(order))
        raise AwaitingPerson(AWAITING_ISSUE, order, paths, written)

    @staticmethod
    def _credential(record):
        return Credential.from_api(record)

    def _create_order(self, kind, environment, alias, csr, paths, in_use, wanted):
        return {
            "version": WORK_ORDER_VERSION, "step": "create", "status": AWAITING_ISSUE,
            "project_id": self.project_id, "environment": environment.lower(), "kind": kind, "alias": alias,
            "written": _time.iso(self.now),
            "screen": SCREENS[environment.lower()], "button": ADD_BUTTON[kind], "method": ADD_METHOD[kind],
            "csr": crypto.dump_csr(csr).decode("ascii"), "subject": csr.subject.rfc4514_string(),
            "public_key_fingerprint": crypto.public_key_fingerprint(csr),
            "bring_back": dict(wanted), "optional": dict(OPTIONAL_BACK),
            "inbox": paths["inbox"], "in_use": in_use,
        }

    def _supplied(self, inbox, kind):
        """(material dict, where it came from) from the issued option, else the inbox; (None, None) when neither."""
        given = {name: value for name, value in (self.issued or {}).items() if value not in (None, "", [])}
        if given:
            return given, "the issued option"
        return self._inbox(inbox, kind)

    @staticmethod
    def _inbox(inbox, kind=None):
        if not os.path.exists(inbox):
            return None, None
        try:
            with open(inbox, "rb") as handle:
                data = handle.read()
        except OSError as exc:
            raise SuppliedMaterialError("the inbox file cannot be read (%s)" % exc.strerror, inbox) from None
        if kind == "mtls" and not data.lstrip().startswith(b"{"):
            # the certificate as downloaded; a JSON object (certificate, chain, credential_id) is read as for OAuth
            return {"certificate": data.decode("ascii", "replace")}, inbox
        try:
            material = json.loads(data.decode("utf-8"))
        except ValueError as exc:
            raise SuppliedMaterialError("the inbox file is not JSON (%s)" % exc, inbox) from None
        if not isinstance(material, dict):
            raise SuppliedMaterialError("the inbox file must hold a JSON object", inbox)
        return material, inbox

    def _record_from(self, material, source, kind, environment, alias, csr, asked):
        """The credential record of what the person brought back, once it fits the work order (``asked``: its
        bring_back)."""
        wanted = set(asked)
        unknown = sorted(set(material) - wanted - set(OPTIONAL_BACK) - {"chain"})
        if unknown:
            raise SuppliedMaterialError("%s %s not asked for; for %s bring back %s" % (
                ", ".join(unknown), "is" if len(unknown) == 1 else "are", kind, ", ".join(sorted(wanted))), source)
        missing = sorted(name for name in wanted if not material.get(name))
        if missing:
            raise SuppliedMaterialError("%s missing; the portal shows %s" % (
                ", ".join(missing), "; ".join(asked[name] for name in missing)), source)
        record = dict(_active_record(kind, environment), alias=alias, source="portal",
                      publicKeyFingerprint=crypto.public_key_fingerprint(csr), subjectDn=csr.subject.rfc4514_string(),
                      createdDate=_time.iso(self.now))
        for name in ("consumer_key", "client_id", "kid"):
            if name in wanted:
                value = str(material[name]).strip()
                pattern, shape = SHAPES[name]
                if not pattern.match(value):
                    raise SuppliedMaterialError("%s %r does not have the shape of one (%s)" % (name, value, shape), source)
                record[{"consumer_key": "consumerKey", "client_id": "clientId", "kid": "kid"}[name]] = value
        if kind == "oauth1":
            record["clientId"], record["kid"] = record["consumerKey"].split("!", 1)
        if material.get("certificate") or kind == "mtls":
            record.update(self._certificate_facts(material, source, csr))
        elif material.get("expires"):
            record["expiryDate"] = self._expiry(material["expires"], source)
        credential_id = material.get("credential_id")
        if credential_id and not _ID.match(str(credential_id)):
            raise SuppliedMaterialError("credential_id %r is not an id (letters, digits, '.', '_', ':', '-')"
                                        % credential_id, source)
        record["id"] = str(credential_id or record.get("fingerprint") or record.get("kid"))
        return record

    def _certificate_facts(self, material, source, csr):
        text = str(material.get("certificate") or "") + "".join(str(pem) for pem in material.get("chain") or [])
        try:
            certificates = crypto.load_certificates(text.encode("ascii", "replace"), "the certificate")
        except crypto.CryptoError as exc:
            raise SuppliedMaterialError(str(exc), source) from None
        leaf = certificates[0]
        if not crypto.same_key(leaf, csr):
            raise SuppliedMaterialError(
                "the certificate (subject %s) certifies another key than the work order's CSR (public key %s, "
                "certificate %s); bring back the certificate the portal issued for this work order"
                % (leaf.subject.rfc4514_string(), crypto.public_key_fingerprint(csr), crypto.public_key_fingerprint(leaf)),
                source)
        if leaf.subject != csr.subject:
            raise SuppliedMaterialError("the certificate's subject %s is not the CSR's %s" % (
                leaf.subject.rfc4514_string(), csr.subject.rfc4514_string()), source)
        problems = crypto.client_certificate_problems(certificates, now=self.now, allow_self_signed=False)
        if problems:
            raise SuppliedMaterialError("; ".join(problems), source)
        info = crypto.certificate_info(leaf, now=self.now)
        return {"certificate": crypto.dump_certificates([leaf]).decode("ascii"),
                "chain": [crypto.dump_certificates([cert]).decode("ascii") for cert in certificates[1:]],
                "fingerprint": crypto.certificate_fingerprint(leaf), "serialNumber": info["serial_number"],
                "expiryDate": _time.iso(leaf.not_valid_after_utc)}

    def _expiry(self, value, source):
        text = str(value).strip()
        try:
            moment = _time.parse(text)
        except ValueError:
            raise SuppliedMaterialError("expires %r is not a date (YYYY-MM-DD)" % text, source) from None
        if moment <= self.now:
            raise SuppliedMaterialError("expires %s is in the past; the new key cannot have expired" % text, source)
        return _time.iso(moment)

    def _close(self, paths, record):
        """Record the credential, then file the work order and the inbox file away (in that order: a crash between
        leaves a recorded credential with an open work order, which the next run closes)."""
        self._save_records([r for r in self.records() if r.get("id") != record["id"]] + [record])
        self._file_away(paths)

    def _save_records(self, records):
        self._ensure_dirs()
        _write_json(self.ledger_path, {"version": WORK_ORDER_VERSION, "credentials": records})
        self._records = records

    def _tidy(self, recorded_keys):
        """File away create work orders whose credential is already recorded (a run that stopped between the two)."""
        if not recorded_keys:
            return
        for _path, order in _work_orders_in(os.path.join(self.root, "work-orders"), steps=("create",)):
            if order.get("public_key_fingerprint") in recorded_keys:
                self._file_away(self.paths(order["environment"], order["alias"], "create", order["kind"]))

    def _file_away(self, paths):
        done = os.path.join(self.root, "work-orders", "done")
        stamp = self.now.strftime("%Y%m%dT%H%M%SZ")
        for path in (paths["json"], paths["page"], paths["inbox"]):
            if os.path.exists(path):
                os.replace(path, os.path.join(done, "%s.%s" % (stamp, os.path.basename(path))))

    # -- what a rotation asks --------------------------------------------------------

    def open_orders(self, environment):
        """The open work orders of ``environment`` (this desk's kind): ``{"create": {alias: AwaitingPerson},
        "revoke": {credential id: AwaitingPerson}}``. One is answered when its inbox holds something, or ``issued``
        is given (create) or the revocation is confirmed (revoke); the step that reads the answer checks it."""
        found = {"create": {}, "revoke": {}}
        for _path, order in _work_orders_in(os.path.join(self.root, "work-orders")):
            if order.get("environment") != environment.lower() or order.get("kind") != self.kind:
                continue
            paths = self.paths(order["environment"], order["alias"], order["step"], order["kind"])
            dropped = os.path.exists(paths["inbox"])
            if order["step"] == "create":
                found["create"][order["alias"]] = AwaitingPerson(AWAITING_ISSUE, order, paths, False,
                                                                 answered=dropped or bool(self.issued))
            else:
                found["revoke"][order["credential_id"]] = AwaitingPerson(
                    AWAITING_REVOKE, order, paths, False, answered=dropped or self.confirmed(order["credential_id"]))
        return found

    def confirm_revoked(self, person, how, write=True):
        """Answer an open revoke work order for the person (e.g. a probe showed the old credential refused): the
        same ``{"revoked": true}`` in its inbox, with how it was known."""
        person.answered = True
        if write:
            self._ensure_dirs()
            _write_json(person.paths["inbox"], {"revoked": True, "confirmed_by": how})

    def adopt_in_use(self, environment, alias_prefix, hosts, write=True):
        """Record the credentials hosts use that the desk does not know (made in the portal before this collection
        took over; the desk starts empty), from what the hosts' meta.json says of them. Returns the new records
        (only returned, not written, with ``write=False``: check mode)."""
        known = {record.get("id") for record in self.records()}
        adopted = []
        for facts in hosts.values():
            current = facts.get("current_id") if facts.get("reachable") else None
            if not current or current in known or (facts.get("current_kind") or self.kind) != self.kind:
                continue
            if not _ID.match(str(current)):
                continue
            expires = _time.parse(facts.get("current_expires"))
            record = dict(_active_record(self.kind, environment), id=current, alias=alias_prefix, source="hosts",
                          fingerprint=facts.get("current_fingerprint"), expiryDate=_time.iso(expires),
                          adoptedDate=_time.iso(self.now))
            if expires is not None:
                # Not known: taken to be a credential of the usual lifetime, as the planner assumes of one without it
                record.update(createdDate=_time.iso(expires - DEFAULT_LIFETIME), createdInferred=True)
            known.add(current)
            adopted.append(record)
        if adopted and write:
            self._save_records(self.records() + adopted)
        return [self._credential(record) for record in adopted]

    def _publish(self, paths, order, page):
        self._ensure_dirs()
        _write_json(paths["json"], order)
        _io.write_atomically(paths["page"], page.encode("utf-8"))

    # -- revoke -------------------------------------------------------------------------

    def _record(self, credential_id):
        for record in self.records():
            if record.get("id") == credential_id:
                return record
        raise InputError("credential_id: %s is not among the credentials brought back from the portal (%s)"
                         % (credential_id, self.ledger_path))

    def get_credential(self, project_id, credential_id):
        return self._credential(self._record(credential_id))

    def revoke_credential(self, project_id, credential_id):
        """Mark a credential revoked once the person confirmed it; else write the revoke work order."""
        record = self._record(credential_id)
        environment, alias = record["environment"].lower(), record.get("alias") or credential_id
        kind = self._credential(record).kind
        paths = self.paths(environment, alias, "revoke", kind)
        confirmation, source = ({"revoked": True}, None) if self.confirmed(credential_id) \
            else self._inbox(paths["inbox"])
        if confirmation is not None and confirmation.get("revoked") is True:
            record = dict(record, status="REVOKED", revokedDate=_time.iso(self.now))
            self._close(paths, record)
            return self._credential(record)
        if confirmation is not None:
            raise SuppliedMaterialError('the revocation is confirmed only by {"revoked": true}', source=source)
        order = _read_json(paths["json"], "the work order")
        written = order is None or order.get("credential_id") != credential_id
        if written:
            order = {"version": WORK_ORDER_VERSION, "step": "revoke", "status": AWAITING_REVOKE,
                     "project_id": self.project_id, "environment": environment, "kind": kind,
                     "alias": alias, "credential_id": credential_id, "fingerprint": record.get("fingerprint"),
                     "public_key_fingerprint": record.get("publicKeyFingerprint"),
                     "consumer_key": record.get("consumerKey"), "kid": record.get("kid"),
                     "screen": SCREENS[environment], "action": REVOKE_ACTION[kind],
                     "type": "REVOKE", "written": _time.iso(self.now), "inbox": paths["inbox"]}
            self._publish(paths, order, _revoke_page(order))
        raise AwaitingPerson(AWAITING_REVOKE, order, paths, written)


# ------------------------------------------------------------------- the waiting

def open_work_orders(portal_dir):
    """Every open work order under ``portal_dir`` (all projects), oldest first, as the expiry report lists them:
    what a person has yet to do at the portal, whether or not something was dropped into the inbox since."""
    found = []
    if not portal_dir or not os.path.isdir(portal_dir):
        return found
    for project in sorted(os.listdir(portal_dir)):
        for path, order in _work_orders_in(os.path.join(portal_dir, project, "work-orders")):
            if order.get("version") != WORK_ORDER_VERSION:
                continue
            found.append({"project_id": order.get("project_id"), "step": order.get("step"),
                          "status": order.get("status"), "kind": order.get("kind"),
                          "environment": order.get("environment"), "alias": order.get("alias"),
                          "credential_id": order.get("credential_id"), "written": order.get("written"),
                          "in_use": order.get("in_use"), "json": path,
                          "page": path[:-len(".json")] + ".md", "inbox": order.get("inbox"),
                          "answered": bool(order.get("inbox")) and os.path.exists(order["inbox"])})
    return sorted(found, key=lambda o: (o["written"] or "", o["json"]))


DEFAULT_ESCALATE_BEFORE = 7


def in_use_facts(credential):
    """What a work order says of the credential that stays in use until the person is done (None: nothing is)."""
    if credential is None:
        return None
    return {"alias": credential.alias, "id": credential.id, "expires": _time.iso(credential.expires)}


def awaiting_result(waiting, in_use, escalate_before=DEFAULT_ESCALATE_BEFORE, now=None, files=()):
    """(module result, failed) of a run that waits for the person: the reminder, louder as ``in_use`` (the
    credential the hosts use meanwhile) nears its expiry: a message, a warning once a rotation waits on it,
    a failure (which pages) within ``escalate_before`` days of it."""
    now = now or _time.now()
    order, paths = waiting.order, waiting.paths
    verb = "Wrote" if waiting.written else "Still waiting on"
    if waiting.status == AWAITING_ISSUE:
        wanted = " and ".join(order["bring_back"])
        how = "save it as %s" % order["inbox"] if order["kind"] == "mtls" else "write it as JSON into %s" % order["inbox"]
        todo = "add %s credential %s in the portal (%s, %s, %s), then bring back the %s (%s, or pass it in issued)" % (
            order["kind"], order["alias"], order["screen"], order["button"], order["method"], wanted, how)
    else:
        todo = "revoke %s (id %s) in the portal (%s, %s, type %s), then write {\"revoked\": true} into %s" % (
            order["alias"], order["credential_id"], order["screen"], order["action"], order["type"], order["inbox"])
    msg = "%s work order %s (%s): %s; the run resumes from there" % (verb, paths["page"], waiting.status, todo)
    result = {"changed": bool(waiting.written) or any(f.get("changed") for f in files), "status": waiting.status,
              "work_order": {"json": paths["json"], "page": paths["page"], "inbox": order["inbox"]},
              "action": "wait", "files": list(files), "api_calls": 0, "api_calls_by_op": {}, "contract_overrides": []}
    failed = False
    if in_use is not None and in_use.expires is not None:
        days = (in_use.expires - now).total_seconds() / 86400.0
        result["in_use_days_left"] = int(days // 1)
        tail = "the credential in use, %s, expires %s (in %d days)" % (in_use.alias, _time.iso(in_use.expires), days // 1)
        if days <= escalate_before:
            failed = True
            msg = "%s; %s, within escalate_before (%d days): act now or the integration stops" % (
                msg, tail, escalate_before)
        else:
            result["warnings"] = ["%s is waiting on a person: %s" % (order["alias"], tail)]
            msg = "%s; %s" % (msg, tail)
    result["msg"] = msg
    return result, failed


# ----------------------------------------------------------------------- the pages

def revoke_waiting_result(waiting):
    """What mc_revoke adds to its result while revocations wait for the person."""
    orders = [{"json": person.paths["json"], "page": person.paths["page"], "inbox": person.order["inbox"],
               "credential_id": person.order["credential_id"]} for person in waiting]
    ids = ", ".join(order["credential_id"] for order in orders)
    verb = "Wrote" if any(person.written for person in waiting) else "Still waiting on"
    return {"status": AWAITING_REVOKE, "work_orders": orders,
            "msg": "%s revoke work order(s) for %s (%s): revoke in the portal, type REVOKE, then write "
                   "{\"revoked\": true} into the inbox file or run again with revoked_in_portal: true; see %s"
                   % (verb, ids, AWAITING_REVOKE, ", ".join(order["page"] for order in orders))}


def _create_page(order):
    back = "\n".join("- **%s**: %s" % (name, text) for name, text in order["bring_back"].items())
    if order["kind"] == "mtls":
        how = "Save the certificate (and chain) as `%s`" % order["inbox"]
    else:
        how = "Write them as JSON into `%s`, e.g. `%s`" % (order["inbox"], json.dumps(
            {name: "..." for name in order["bring_back"]}))
    in_use = ""
    if order.get("in_use"):
        in_use = ("\nThe credential in use, %(alias)s (%(id)s), expires %(expires)s. Nothing changes on the hosts "
                  "until this is done.\n" % order["in_use"])
    return """# Work order: add %(kind)s credential `%(alias)s`

Project `%(project_id)s`, %(environment)s. Written %(written)s.
%(in_use)s
1. Open the project in Mastercard Developers, screen **%(screen)s**.
2. Click **%(button)s** and choose **%(method)s**.
3. Enter the alias `%(alias)s` and paste this CSR:

```
%(csr)s```

4. Bring back:
%(back)s

5. %(how)s, or run the job again with `issued` set to them. The run checks them against this work order
   before anything moves.
""" % dict(order, back=back, how=how, in_use=in_use)


def _revoke_page(order):
    return """# Work order: revoke %(kind)s credential `%(alias)s`

Project `%(project_id)s`, %(environment)s. Written %(written)s, after the checks of mc_revoke (the in-use
fingerprints it was given, the last active credential).

1. Open the project in Mastercard Developers, screen **%(screen)s**.
2. Find `%(alias)s` (id `%(credential_id)s`, fingerprint `%(fingerprint)s`) and choose **%(action)s**.
3. Type `%(type)s` and confirm.
4. Write `{"revoked": true}` into `%(inbox)s`, or run the job again with the revocation confirmed.
""" % order
