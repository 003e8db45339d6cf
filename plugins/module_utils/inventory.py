# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Credential inventory and the rotation planner, as plain Python.

Everything here is a pure function of its arguments (``now`` is always passed
in), except the small :class:`Ledger` file class at the end, which the
planning module uses on the controller.

Sections:

* expiry facts: :func:`days_left`, :func:`notice_bucket`, :func:`lead_time`,
  :func:`renewal_time`, :func:`should_rotate`;
* local <-> remote matching: :func:`match_local`;
* host deployment facts: :func:`build_meta`, :func:`read_host_state`;
* the rotation planner: :func:`plan_rotation`, :func:`ledger_after`, the lock
  helpers, :func:`next_attempt_at`;
* :func:`invariant_holds`, the safety property tests check after every step.

Credentials are the dicts ``devapi.Credential.to_dict()`` returns (snake_case:
id, alias, kind, environment, status, fingerprint, public_key_fingerprint,
created, expires, ...). Times are aware ``datetime`` objects or ISO 8601
strings; naive values are taken as UTC.

docs/rotation.md describes the state machine this module implements.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Iterable, Iterator, Mapping

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _io, _time

# ---------------------------------------------------------------------------
# constants
# ---------------------------------------------------------------------------

NOTICE_DAYS = (90, 60, 30, 15, 7, 1)
"""The portal e-mails key owners this many days before expiry."""

DEFAULT_LIFETIME = timedelta(days=395)
"""Validity of a credential issued by the portal (13 months), used when ``created`` is unknown."""

LEAD_FRACTION = 3
"""Default lead time = lifetime / LEAD_FRACTION (cert-manager, certbot and step all renew at 2/3)."""

LEAD_FLOOR = timedelta(days=14)
"""The default lead time is never shorter than this (but at most half the lifetime)."""

LEAD_CAP = timedelta(days=180)
"""The default lead time is never longer than this."""

DEADLINE_MARGIN = timedelta(days=1)
"""A retry is never scheduled later than this long before the in-use credential expires."""

OAUTH2_KEY_LIMIT = 3
"""A project can have at most this many active OAuth 2.0 keys (per environment, as assumed)."""

DEFAULT_MAX_ATTEMPTS = 5
DEFAULT_LOCK_TTL = timedelta(hours=1)

# Plan states.
IDLE = "IDLE"
CREATING = "CREATING"
STAGED = "STAGED"
DEPLOYING = "DEPLOYING"
VERIFYING = "VERIFYING"
SOAKING = "SOAKING"
REVOKING = "REVOKING"
FAILED_RETRYABLE = "FAILED_RETRYABLE"
BLOCKED = "BLOCKED"
LOCKED = "LOCKED"
# The portal-assisted backend: the next step is a person's (a work order is open, nothing brought back yet).
AWAITING_ISSUE = "AWAITING_ISSUE"
AWAITING_REVOKE = "AWAITING_REVOKE"
# A run that sees one slice of the fleet (AWX job slicing, --limit): its hosts use and verified the new
# credential; the old one stays until a run that sees the whole scope revokes it.
SLICE_VERIFIED = "SLICE_VERIFIED"
STATES = (IDLE, CREATING, STAGED, DEPLOYING, VERIFYING, SOAKING, REVOKING, FAILED_RETRYABLE, BLOCKED, LOCKED,
          AWAITING_ISSUE, AWAITING_REVOKE, SLICE_VERIFIED)

# Action kinds.
CREATE = "create"
ADOPT = "adopt"
REVOKE_ORPHAN = "revoke_orphan"
RECOVER_KEY = "recover_key"
DEPLOY = "deploy"
VERIFY = "verify"
WAIT_SOAK = "wait_soak"
WAIT_RETRY = "wait_retry"
REVOKE = "revoke"
AWAIT_PERSON = "await_person"
NOOP = "noop"
ACTION_KINDS = (CREATE, ADOPT, REVOKE_ORPHAN, RECOVER_KEY, DEPLOY, VERIFY, WAIT_SOAK, WAIT_RETRY, REVOKE, AWAIT_PERSON,
                NOOP)
# Actions that attempt nothing: a plan made only of these ends the run at the plan, and records no outcome.
IDLE_ACTIONS = frozenset((NOOP, WAIT_SOAK, WAIT_RETRY, AWAIT_PERSON))
# Actions that change the lineage (or the key store) and so need the rotation lock in a slice's run; deploying
# and verifying the slice's own hosts do not, so the slices of one job roll out side by side.
LOCKED_ACTIONS = frozenset((CREATE, ADOPT, REVOKE_ORPHAN, RECOVER_KEY, REVOKE))

_UNSAFE_ID_CHARS = ("/", "\\", "\0")


# ---------------------------------------------------------------------------
# time helpers
# ---------------------------------------------------------------------------

def _require_now(now: Any) -> datetime:
    parsed = _time.parse(now)
    if parsed is None:
        raise ValueError("now is required")
    return parsed


def _as_timedelta(value: Any, unit: timedelta, what: str) -> timedelta:
    """A timedelta from a timedelta or a number of ``unit``."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError("%s must be a number or a timedelta, not %r" % (what, value))
    return value * unit


def _days(delta: timedelta) -> float:
    return delta.total_seconds() / 86400.0


def _days_text(delta: timedelta) -> str:
    days = _days(delta)
    if days == int(days):
        return "%d days" % days
    return "%.1f days" % days


# ---------------------------------------------------------------------------
# credential records
# ---------------------------------------------------------------------------

def is_active(status: Any, expires: datetime | None = None, now: datetime | None = None) -> bool:
    """The one definition of "active": ACTIVE at Mastercard and, when ``now`` is given, not past its expiry
    (Mastercard's own EXPIRED may lag behind its clock)."""
    if str(status or "").upper() != "ACTIVE":
        return False
    return now is None or expires is None or expires > now


@dataclass(frozen=True)
class RemoteCredential:
    """The facts the planner needs from one remote credential record."""

    id: str
    alias: str = ""
    kind: str = ""
    environment: str = ""
    status: str = ""
    fingerprint: str = ""
    public_key_fingerprint: str = ""
    created: datetime | None = None
    expires: datetime | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | RemoteCredential) -> RemoteCredential:
        """Read a ``Credential.to_dict()`` record (extra keys are ignored)."""
        if isinstance(data, RemoteCredential):
            return data
        if not data.get("id"):
            raise ValueError("a credential record without an id: %r" % (sorted(data),))
        return cls(
            id=str(data["id"]),
            alias=str(data.get("alias") or ""),
            kind=str(data.get("kind") or "").lower(),
            environment=str(data.get("environment") or "").lower(),
            status=str(data.get("status") or "").upper(),
            fingerprint=str(data.get("fingerprint") or "").lower(),
            public_key_fingerprint=str(data.get("public_key_fingerprint") or "").lower(),
            created=_time.parse(data.get("created")),
            expires=_time.parse(data.get("expires")),
        )

    def is_active(self, now: datetime) -> bool:
        """ACTIVE at Mastercard and not past its expiry (EXPIRED is derived from the clock)."""
        return is_active(self.status, self.expires, now)

    def state(self, now: datetime) -> str:
        """The status as of ``now``: an ACTIVE record past its expiry reads EXPIRED."""
        if self.status == "ACTIVE" and not self.is_active(now):
            return "EXPIRED"
        return self.status or "UNKNOWN"

    @property
    def lifetime(self) -> timedelta:
        """expires - created, or DEFAULT_LIFETIME when either is unknown or nonsensical."""
        if self.created is not None and self.expires is not None and self.expires > self.created:
            return self.expires - self.created
        return DEFAULT_LIFETIME

    def label(self) -> str:
        """``id ('alias')`` for sentences."""
        return "%s (%r)" % (self.id, self.alias) if self.alias else self.id


def _credentials(records: Iterable[Any]) -> list[RemoteCredential]:
    return [RemoteCredential.from_dict(record) for record in records or ()]


def _newest_first(creds: Iterable[RemoteCredential]) -> list[RemoteCredential]:
    floor = _time.EARLIEST

    def key(cred):
        return (cred.created or cred.expires or floor, cred.expires or floor, cred.id)
    return sorted(creds, key=key, reverse=True)


# ---------------------------------------------------------------------------
# expiry facts
# ---------------------------------------------------------------------------

def days_left(expires: Any, now: Any) -> float:
    """Days (fractional) from ``now`` until ``expires``; negative once expired."""
    return _days(_time.parse(expires) - _require_now(now))


def notice_bucket(expires: Any, now: Any) -> int | str | None:
    """The portal's notification bucket: 90, 60, 30, 15, 7, 1, ``"expired"`` or None.

    The bucket is the smallest threshold that is >= the days left, so exactly
    60 days left is bucket 60 and 60 days and one second is bucket 90. No time
    left (or less) is ``"expired"``; more than 90 days is None.
    """
    left = days_left(expires, now)
    if left <= 0:
        return "expired"
    for threshold in sorted(NOTICE_DAYS):
        if left <= threshold:
            return threshold
    return None


def lead_time(lifetime: Any = None, lead: Any = None) -> timedelta:
    """How long before expiry a rotation starts.

    lifetime: the credential's actual lifetime (timedelta or days; None means
    DEFAULT_LIFETIME). lead: an explicit lead (timedelta or days) or None for
    the default, one third of the lifetime, at least LEAD_FLOOR (but at most
    half the lifetime) and at most LEAD_CAP -- about 132 days for 395.

    Raises ValueError when the lead is not positive or not shorter than the
    lifetime: every new credential would be due at once (a renewal loop).
    """
    life = DEFAULT_LIFETIME if lifetime is None else _as_timedelta(lifetime, timedelta(days=1), "lifetime")
    if life <= timedelta(0):
        raise ValueError("the credential lifetime must be positive, not %s" % _days_text(life))
    if lead is None:
        chosen = life / LEAD_FRACTION
        chosen = max(chosen, min(LEAD_FLOOR, life / 2))
        chosen = min(chosen, LEAD_CAP)
        return chosen
    chosen = _as_timedelta(lead, timedelta(days=1), "lead")
    if chosen <= timedelta(0):
        raise ValueError("the lead time must be positive, not %s" % _days_text(chosen))
    if chosen >= life:
        raise ValueError(
            "a lead time of %s is not shorter than the credential's lifetime of %s: every new credential "
            "would be due for rotation as soon as it exists (a renewal loop); choose a shorter lead"
            % (_days_text(chosen), _days_text(life)))
    return chosen


def renewal_time(cred: Mapping[str, Any] | RemoteCredential, lead: Any = None) -> datetime | None:
    """When ``cred`` becomes due: expires - lead_time(its lifetime, lead). None without an expiry."""
    record = RemoteCredential.from_dict(cred)
    if record.expires is None:
        return None
    return record.expires - lead_time(record.lifetime, lead)


def should_rotate(cred: Mapping[str, Any] | RemoteCredential, now: Any, lead: Any = None) -> bool:
    """True when an ACTIVE (or clock-expired) credential has reached its renewal time.

    A REVOKED or INACTIVE credential is never rotated.
    """
    record = RemoteCredential.from_dict(cred)
    if record.status != "ACTIVE":
        return False
    due_at = renewal_time(record, lead)
    return due_at is not None and _require_now(now) >= due_at


# ---------------------------------------------------------------------------
# local <-> remote matching
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class FileMatch:
    """One local file and the remote credential it belongs to (if any).

    matched_by: ``"fingerprint"`` (same certificate), ``"public_key"`` (same key
    pair, e.g. a key-reuse renewal or a bare private key file) or None (unknown:
    no credential of the project has it).
    """

    host: str
    path: str
    fingerprint: str
    credential_id: str | None = None
    status: str | None = None
    matched_by: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"host": self.host, "path": self.path, "fingerprint": self.fingerprint,
                "credential_id": self.credential_id, "status": self.status, "matched_by": self.matched_by}


@dataclass
class Matching:
    """The result of :func:`match_local`."""

    files: list[FileMatch] = field(default_factory=list)
    unknown: list[FileMatch] = field(default_factory=list)
    hosts_by_credential: dict[str, list[str]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"files": [f.to_dict() for f in self.files],
                "unknown": [f.to_dict() for f in self.unknown],
                "hosts_by_credential": {k: list(v) for k, v in self.hosts_by_credential.items()}}


def match_local(remote_credentials: Iterable[Any], local_files: Iterable[Mapping[str, Any]],
                now: Any = None) -> Matching:
    """Map local files to remote credentials.

    local_files: dicts with ``host``, ``path``, ``fingerprint`` (certificate,
    may be empty for a bare key file) and optionally ``public_key_fingerprint``.
    A file matches the credential with the same certificate fingerprint; failing
    that, the credential with the same public-key fingerprint (preferring an
    active one, then the newest). Files that match nothing are ``unknown``
    (foreign to this project, or from a credential that no longer exists).
    ``hosts_by_credential`` lists, for every remote credential, the sorted hosts
    that carry it (an empty list for none). ``now`` (default: the status as
    recorded) decides which credentials count as active.
    """
    creds = _credentials(remote_credentials)
    when = _time.parse(now)
    by_fp: dict[str, RemoteCredential] = {}
    by_key: dict[str, list[RemoteCredential]] = {}
    for cred in _newest_first(creds):
        if cred.fingerprint:
            by_fp.setdefault(cred.fingerprint, cred)
        if cred.public_key_fingerprint:
            by_key.setdefault(cred.public_key_fingerprint, []).append(cred)

    def active(cred):
        return is_active(cred.status, cred.expires, when)

    result = Matching(hosts_by_credential={cred.id: [] for cred in creds})
    for item in local_files or ():
        host = str(item.get("host") or "")
        fingerprint = str(item.get("fingerprint") or "").lower()
        key_fp = str(item.get("public_key_fingerprint") or "").lower()
        cred, how = None, None
        if fingerprint and fingerprint in by_fp:
            cred, how = by_fp[fingerprint], "fingerprint"
        elif key_fp and key_fp in by_key:
            candidates = by_key[key_fp]
            cred = next((c for c in candidates if active(c)), candidates[0])
            how = "public_key"
        status = None
        if cred is not None:
            status = cred.state(when) if when is not None else cred.status
        match = FileMatch(host=host, path=str(item.get("path") or ""), fingerprint=fingerprint or key_fp,
                          credential_id=cred.id if cred else None, status=status, matched_by=how)
        result.files.append(match)
        if cred is None:
            result.unknown.append(match)
        elif host and host not in result.hosts_by_credential[cred.id]:
            result.hosts_by_credential[cred.id].append(host)
    for hosts in result.hosts_by_credential.values():
        hosts.sort()
    return result


# ---------------------------------------------------------------------------
# host deployment facts
# ---------------------------------------------------------------------------

def check_credential_id(value: Any) -> str:
    """A credential id that is safe as one path component (raises ValueError otherwise)."""
    text = str(value or "")
    if not text or text in (".", "..") or any(ch in text for ch in _UNSAFE_ID_CHARS):
        raise ValueError("%r is not usable as a credential id in a path" % (value,))
    return text


def host_paths(base: str, name: str, credential_id: str, key_file: str = "key.p12") -> dict[str, str]:
    """The on-host paths of one credential version and the ``current`` link.

    ``<base>/<name>/versions/<credential-id>/{key_file,cert.pem,meta.json}`` and
    ``<base>/<name>/current -> versions/<credential-id>`` (the link target is relative).
    """
    cid = check_credential_id(credential_id)
    root = os.path.join(base, name)
    version = os.path.join(root, "versions", cid)
    return {"root": root, "version": version, "key": os.path.join(version, key_file),
            "cert": os.path.join(version, "cert.pem"), "meta": os.path.join(version, "meta.json"),
            "current": os.path.join(root, "current"), "link_target": os.path.join("versions", cid)}


def build_meta(cred: Mapping[str, Any] | RemoteCredential, deployed_at: Any, verified_at: Any = None,
               rotation_id: str | None = None) -> dict[str, Any]:
    """The non-secret ``meta.json`` facts of one deployed credential version.

    Keys: credential_id, fingerprint, kind, expires, deployed_at, verified_at,
    rotation_id (times as ISO 8601 ``Z`` strings, None when unknown). Serialise
    with :func:`dump_meta` so equal facts give equal bytes.
    """
    record = RemoteCredential.from_dict(cred)
    return {
        "credential_id": check_credential_id(record.id),
        "fingerprint": record.fingerprint or None,
        "kind": record.kind or None,
        "expires": _time.iso(record.expires),
        "deployed_at": _time.iso(_time.parse(deployed_at)),
        "verified_at": _time.iso(_time.parse(verified_at)),
        "rotation_id": rotation_id,
    }


def dump_meta(meta: Mapping[str, Any]) -> str:
    """``meta.json`` text: sorted keys, two-space indent, trailing newline."""
    return json.dumps(dict(meta), indent=2, sort_keys=True) + "\n"


@dataclass(frozen=True)
class VersionFact:
    """One ``versions/<credential-id>`` folder on a host (from its meta.json)."""

    credential_id: str
    fingerprint: str | None = None
    verified_at: datetime | None = None


@dataclass(frozen=True)
class HostState:
    """What one in-scope host carries, as gathered from its ``current`` link and meta.json.

    An unreachable host carries nothing we know of: every question about it
    answers False, so it never counts as deployed or verified.
    """

    name: str
    reachable: bool = False
    current_id: str | None = None
    current_fingerprint: str | None = None
    verified_fingerprint: str | None = None
    verified_at: datetime | None = None
    deployed_at: datetime | None = None
    versions: tuple[VersionFact, ...] = ()

    def uses(self, cred: RemoteCredential) -> bool:
        """``current`` points at ``cred`` (by id; by fingerprint when the id is unknown)."""
        if not self.reachable:
            return False
        if self.current_id:
            return self.current_id == cred.id
        return bool(self.current_fingerprint) and self.current_fingerprint == cred.fingerprint

    def carries(self, cred: RemoteCredential) -> bool:
        """``cred`` is current or kept in ``versions/`` (its private key is on this host)."""
        return self.uses(cred) or (self.reachable and any(v.credential_id == cred.id for v in self.versions))

    def verified(self, cred: RemoteCredential) -> bool:
        """``cred`` is current here and the last verification on this host proved it.

        The verified fingerprint must equal the current files' fingerprint (or
        the credential's, when the host did not report one), so a verification of
        the previous version does not count for the new one.
        """
        if not self.uses(cred) or not self.verified_fingerprint:
            return False
        return self.verified_fingerprint == (self.current_fingerprint or cred.fingerprint)

    def verified_anywhere(self, cred: RemoteCredential) -> bool:
        """``cred`` is deployed here and was verified here: as current, or as a kept version."""
        if self.verified(cred):
            return True
        return self.reachable and any(v.credential_id == cred.id and v.verified_at is not None
                                      and (not v.fingerprint or not cred.fingerprint
                                           or v.fingerprint == cred.fingerprint)
                                      for v in self.versions)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "reachable": self.reachable, "current_id": self.current_id,
                "current_fingerprint": self.current_fingerprint,
                "verified_fingerprint": self.verified_fingerprint,
                "verified_at": _time.iso(self.verified_at), "deployed_at": _time.iso(self.deployed_at),
                "versions": [{"credential_id": v.credential_id, "fingerprint": v.fingerprint,
                              "verified_at": _time.iso(v.verified_at)} for v in self.versions]}


def _version_fact(item: Any) -> VersionFact:
    if isinstance(item, VersionFact):
        return item
    if isinstance(item, Mapping):
        return VersionFact(credential_id=str(item.get("credential_id") or item.get("id") or ""),
                           fingerprint=(str(item["fingerprint"]).lower() if item.get("fingerprint") else None),
                           verified_at=_time.parse(item.get("verified_at")))
    return VersionFact(credential_id=str(item))


def read_host_state(name: str, facts: Mapping[str, Any] | None) -> HostState:
    """A typed :class:`HostState` from a host fact dict.

    facts: ``{current_id, current_fingerprint, verified_fingerprint,
    verified_at, deployed_at?, versions: [...], reachable: bool}``; versions are
    credential ids or dicts ``{credential_id, fingerprint, verified_at}``.
    ``reachable`` must be true for the host to count: a missing or false value
    (or no facts at all) makes an unreachable host whose other facts are ignored.
    """
    facts = facts or {}
    if facts.get("reachable") is not True:
        return HostState(name=str(name), reachable=False)

    def lower(key):
        value = facts.get(key)
        return str(value).lower() if value else None
    return HostState(
        name=str(name),
        reachable=True,
        current_id=str(facts["current_id"]) if facts.get("current_id") else None,
        current_fingerprint=lower("current_fingerprint"),
        verified_fingerprint=lower("verified_fingerprint"),
        verified_at=_time.parse(facts.get("verified_at")),
        deployed_at=_time.parse(facts.get("deployed_at")),
        versions=tuple(v for v in (_version_fact(i) for i in facts.get("versions") or ()) if v.credential_id),
    )


def read_hosts(hosts: Mapping[str, Any] | Iterable[HostState] | None) -> list[HostState]:
    """HostStates sorted by name, from ``{name: facts}`` or from HostState objects."""
    if hosts is None:
        return []
    if isinstance(hosts, Mapping):
        states = [read_host_state(name, facts) for name, facts in hosts.items()]
    else:
        states = list(hosts)
        for state in states:
            if not isinstance(state, HostState):
                raise ValueError("hosts must be a {name: facts} mapping or HostState objects, not %r" % (state,))
    return sorted(states, key=lambda h: h.name)


def _names(hosts: Iterable[HostState]) -> str:
    return ", ".join(h.name for h in hosts)


def _ids(creds: Iterable[RemoteCredential]) -> str:
    return ", ".join(c.label() for c in creds)


# ---------------------------------------------------------------------------
# the invariant
# ---------------------------------------------------------------------------

def invariant_holds(remote_credentials: Iterable[Any], hosts: Any, now: Any = None) -> tuple[bool, str]:
    """Check the rotation invariant; returns (holds, a sentence saying why).

    It holds when one ACTIVE credential is deployed and verified on every
    in-scope host -- as the ``current`` version, or as a version the host keeps
    whose verification is recorded -- and no host's ``current`` points at a
    credential that is not ACTIVE (revoked, expired, unknown, none). Across a
    cut-over the old credential is the witness, after it the new one. An
    unreachable host never counts, so any unreachable host makes it fail.
    ``now`` (optional) also turns an ACTIVE record past its expiry into EXPIRED.
    """
    creds = _credentials(remote_credentials)
    states = read_hosts(hosts)
    when = _time.parse(now)
    if when is None:
        # No clock given: the recorded status alone decides what is active.
        when = _time.EARLIEST
    if not states:
        return False, "There is no in-scope host, so no credential is deployed and verified anywhere."
    unreachable = [h for h in states if not h.reachable]
    if unreachable:
        return False, ("Host(s) %s are unreachable: an unreachable host never counts as verified."
                       % _names(unreachable))
    by_id = {c.id: c for c in creds}
    by_fp = {c.fingerprint: c for c in creds if c.fingerprint}
    problems = []
    for host in states:
        cred = by_id.get(host.current_id) if host.current_id else by_fp.get(host.current_fingerprint or "")
        if cred is None:
            what = host.current_id or host.current_fingerprint
            served = "an unknown credential %s" % what if what else "no credential"
            problems.append("%s serves %s" % (host.name, served))
        elif not cred.is_active(when):
            problems.append("%s serves %s, which is %s" % (host.name, cred.id, cred.state(when)))
    if problems:
        return False, "The invariant does not hold: %s." % "; ".join(problems)
    witnesses = [c for c in _newest_first(creds) if c.is_active(when)
                 and all(h.verified_anywhere(c) for h in states)]
    if not witnesses:
        return False, ("The invariant does not hold: no single active credential is deployed and verified on "
                       "every host (current: %s)." % ", ".join(
                           "%s: %s%s" % (h.name, h.current_id or h.current_fingerprint,
                                         "" if any(h.verified(c) for c in creds) else " (unverified)")
                           for h in states))
    return True, ("Credential %s is active and deployed and verified on all %d in-scope host(s) (%s)."
                  % (witnesses[0].id, len(states), _names(states)))


# ---------------------------------------------------------------------------
# ledger record, backoff, lock
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class LedgerRecord:
    """What the controller keeps between runs: only what cannot be observed.

    rotation_id: the rotation in flight (the new credential's alias is
    ``<alias_prefix>-<rotation_id>``). credential_id: the new credential once
    created or adopted (a cache; the alias is the truth). attempts, last_error,
    last_failure_at, next_attempt_at: the persisted backoff. soak_started_at:
    when ``credential_id`` was first seen verified on every host. lock_owner,
    lock_expires, lock_acquired_at: the lease lock of the run in progress.
    """

    rotation_id: str | None = None
    credential_id: str | None = None
    attempts: int = 0
    last_error: str | None = None
    last_failure_at: datetime | None = None
    next_attempt_at: datetime | None = None
    soak_started_at: datetime | None = None
    lock_owner: str | None = None
    lock_expires: datetime | None = None
    lock_acquired_at: datetime | None = None

    _TIMES = ("last_failure_at", "next_attempt_at", "soak_started_at", "lock_expires", "lock_acquired_at")

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | LedgerRecord | None) -> LedgerRecord:
        """Read a record (None or {} is an empty ledger; unknown keys are ignored)."""
        if isinstance(data, LedgerRecord):
            return data
        data = data or {}
        return cls(
            rotation_id=str(data["rotation_id"]) if data.get("rotation_id") else None,
            credential_id=str(data["credential_id"]) if data.get("credential_id") else None,
            attempts=int(data.get("attempts") or 0),
            last_error=data.get("last_error") or None,
            last_failure_at=_time.parse(data.get("last_failure_at")),
            next_attempt_at=_time.parse(data.get("next_attempt_at")),
            soak_started_at=_time.parse(data.get("soak_started_at")),
            lock_owner=data.get("lock_owner") or None,
            lock_expires=_time.parse(data.get("lock_expires")),
            lock_acquired_at=_time.parse(data.get("lock_acquired_at")),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO 8601 ``Z`` strings)."""
        out: dict[str, Any] = {}
        for name in ("rotation_id", "credential_id", "attempts", "last_error", "last_failure_at",
                     "next_attempt_at", "soak_started_at", "lock_owner", "lock_expires", "lock_acquired_at"):
            value = getattr(self, name)
            out[name] = _time.iso(value) if name in self._TIMES else value
        return out


@dataclass(frozen=True)
class Backoff:
    """Retry delay after the n-th consecutive failure: base * 2**(n-1), at most cap."""

    base: timedelta = timedelta(hours=1)
    cap: timedelta = timedelta(hours=24)

    def delay(self, attempts: int) -> timedelta:
        if attempts < 1:
            return timedelta(0)
        # Stop doubling once past the cap, so large counts cannot overflow.
        delay = self.base
        doublings = attempts - 1
        while doublings > 0 and delay < self.cap:
            delay = delay * 2
            doublings -= 1
        return min(delay, self.cap)


def next_attempt_at(last_failure: datetime, attempts: int, backoff: Backoff | None = None,
                    deadline: datetime | None = None) -> datetime:
    """last_failure + backoff.delay(attempts), never later than ``deadline`` (nor before last_failure)."""
    when = last_failure + (backoff or Backoff()).delay(attempts)
    if deadline is not None and when > deadline:
        when = max(deadline, last_failure)
    return when


class LockHeld(CollectionError):
    """Another live owner holds the rotation lock."""


def lock_holder(record: LedgerRecord | Mapping[str, Any] | None, now: Any) -> str | None:
    """The owner of a live (unexpired) lock, or None when the lock is free or expired."""
    rec = LedgerRecord.from_dict(record)
    if rec.lock_owner and rec.lock_expires is not None and rec.lock_expires > _require_now(now):
        return rec.lock_owner
    return None


def take_lock(record: LedgerRecord | Mapping[str, Any] | None, owner: str, now: Any,
              ttl: Any = DEFAULT_LOCK_TTL) -> LedgerRecord:
    """The record with the lock taken (or renewed) by ``owner`` until now + ttl (seconds or timedelta).

    Raises LockHeld when another owner's lock has not expired; an expired lock is taken over.
    """
    rec = LedgerRecord.from_dict(record)
    when = _require_now(now)
    if not owner:
        raise ValueError("a lock owner is required")
    holder = lock_holder(rec, when)
    if holder is not None and holder != owner:
        raise LockHeld("Another run (%s) holds the rotation lock until %s; this run stops without "
                       "changing anything. If that run died, the lock expires by itself."
                       % (holder, _time.iso(rec.lock_expires)))
    acquired = rec.lock_acquired_at if holder == owner and rec.lock_acquired_at else when
    return replace(rec, lock_owner=owner, lock_expires=when + _as_timedelta(ttl, timedelta(seconds=1), "ttl"),
                   lock_acquired_at=acquired)


def release_lock(record: LedgerRecord | Mapping[str, Any] | None, owner: str) -> LedgerRecord:
    """The record with ``owner``'s lock released (unchanged if someone else holds it)."""
    rec = LedgerRecord.from_dict(record)
    if rec.lock_owner != owner:
        return rec
    return replace(rec, lock_owner=None, lock_expires=None, lock_acquired_at=None)


# ---------------------------------------------------------------------------
# the plan
# ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Action:
    """One step for the role to carry out.

    create: alias, rotation_id. adopt: credential_id, alias, rotation_id.
    revoke_orphan / revoke: credential_ids. recover_key: credential_id,
    from_host (copy the private key of a credential the key store lacks from a
    host that carries it). deploy / verify: hosts, credential_id, fingerprint.
    wait_soak / wait_retry: until. await_person: alias (a create work order) or
    credential_ids (revoke work orders) that a person at the portal has yet to carry out. noop: nothing.
    """

    kind: str
    hosts: tuple[str, ...] = ()
    credential_id: str | None = None
    credential_ids: tuple[str, ...] = ()
    fingerprint: str | None = None
    alias: str | None = None
    rotation_id: str | None = None
    from_host: str | None = None
    until: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The action's kind and its non-empty fields."""
        out: dict[str, Any] = {"action": self.kind}
        for name in ("hosts", "credential_id", "credential_ids", "fingerprint", "alias", "rotation_id",
                     "from_host"):
            value = getattr(self, name)
            if value:
                out[name] = list(value) if isinstance(value, tuple) else value
        if self.until is not None:
            out["until"] = _time.iso(self.until)
        return out


@dataclass(frozen=True)
class Plan:
    """The planner's answer: where the rotation stands and the next safe step(s).

    state: one of STATES. actions: carry them out in order, then plan again
    with fresh facts; a plan never spans more than one phase. reason: one
    sentence for a person. invariant_ok / invariant: :func:`invariant_holds` on
    the facts the plan was made from. target_id: the newest usable credential
    (the one the fleet is moving to, or already on). due / due_at: whether and
    when the target needs replacing. deadline: the latest time a retry may be
    scheduled. in_use_id: the credential the hosts use that expires first (what
    a waiting rotation races against). ledger: the record to persist *before*
    carrying out the actions (lock taken, rotation id minted, soak start recorded).
    """

    state: str
    actions: tuple[Action, ...]
    reason: str
    invariant_ok: bool = False
    invariant: str = ""
    target_id: str | None = None
    due: bool = False
    due_at: datetime | None = None
    deadline: datetime | None = None
    rotation_id: str | None = None
    alias: str | None = None
    in_use_id: str | None = None
    ledger: LedgerRecord = field(default_factory=LedgerRecord)
    backoff: Backoff = field(default_factory=Backoff)

    def action_kinds(self) -> list[str]:
        return [a.kind for a in self.actions]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict for module results."""
        return {"state": self.state, "actions": [a.to_dict() for a in self.actions], "reason": self.reason,
                "invariant_ok": self.invariant_ok, "invariant": self.invariant, "target_id": self.target_id,
                "due": self.due, "due_at": _time.iso(self.due_at), "deadline": _time.iso(self.deadline),
                "rotation_id": self.rotation_id, "alias": self.alias, "in_use_id": self.in_use_id,
                "ledger": self.ledger.to_dict()}


@dataclass(frozen=True)
class Outcome:
    """What happened when the role carried out a plan's actions.

    ok: all actions succeeded. at: when it finished. error: a sentence when
    not ok. credential_id: the credential a ``create`` made or an ``adopt`` took.
    """

    ok: bool
    at: datetime
    error: str | None = None
    credential_id: str | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Outcome) -> Outcome:
        if isinstance(data, Outcome):
            return data
        return cls(ok=bool(data.get("ok")), at=_require_now(data.get("at")), error=data.get("error") or None,
                   credential_id=str(data["credential_id"]) if data.get("credential_id") else None)


def ledger_after(plan: Plan, outcome: Outcome | Mapping[str, Any]) -> LedgerRecord:
    """The ledger after the role carried out ``plan`` (pure; persist the result).

    Failure: attempts + 1, last_error, and next_attempt_at from the plan's
    backoff, capped at the plan's deadline. Success: the backoff is cleared; a
    ``create``/``adopt`` records the new credential id; a finished REVOKING
    ends the rotation (rotation id, credential id and soak start cleared). A
    plan whose actions are only noop/wait returns its ledger unchanged. The lock
    is left as it is: release it with :func:`release_lock` when the run ends.
    """
    result = Outcome.from_dict(outcome)
    rec = plan.ledger
    if all(kind in IDLE_ACTIONS for kind in plan.action_kinds()):
        # Nothing was attempted (LOCKED, BLOCKED, waiting, IDLE): nothing to record.
        return rec
    if not result.ok:
        attempts = rec.attempts + 1
        return replace(rec, attempts=attempts, last_error=result.error or "unknown error",
                       last_failure_at=result.at,
                       next_attempt_at=next_attempt_at(result.at, attempts, plan.backoff, plan.deadline))
    rec = replace(rec, attempts=0, last_error=None, last_failure_at=None, next_attempt_at=None)
    kinds = plan.action_kinds()
    if (CREATE in kinds or ADOPT in kinds) and result.credential_id:
        rec = replace(rec, credential_id=result.credential_id, soak_started_at=None)
    if plan.state == REVOKING:
        rec = replace(rec, rotation_id=None, credential_id=None, soak_started_at=None)
    return rec


def rotation_alias(alias_prefix: str, rotation_id: str) -> str:
    """``<alias_prefix>-<rotation_id>`` (the portal's own ``name-<epoch>`` advice)."""
    return "%s-%s" % (alias_prefix, rotation_id)


def _in_lineage(alias: str, alias_prefix: str) -> bool:
    return alias == alias_prefix or alias.startswith(alias_prefix + "-")


def _rotation_id_of(alias: str, alias_prefix: str) -> str | None:
    if alias.startswith(alias_prefix + "-"):
        return alias[len(alias_prefix) + 1:] or None
    return None


class _Planner:
    """One planning pass; plan_rotation() is its only user. Kept as a class so each step reads as a method."""

    def __init__(self, remote, hosts, record, now, *, kind, environment, alias_prefix, lead, soak,
                 force, max_attempts, backoff, key_store, oauth2_key_limit, work_orders, partial_view=False):
        self.now = now
        # The run sees only some of the lineage's hosts (a slice): it never revokes, and a credential whose key
        # it cannot find may be on a host it does not see, so it is never taken for an orphan.
        self.partial_view = partial_view
        # {"create": {alias: answered}, "revoke": {credential id: answered}}
        self.work_orders = {"create": dict(work_orders.get("create") or {}),
                            "revoke": dict(work_orders.get("revoke") or {})}
        self.kind = kind.lower()
        self.environment = environment.lower()
        self.prefix = alias_prefix
        self.lead = lead
        self.soak = soak
        self.force = force
        self.max_attempts = max_attempts
        self.backoff = backoff
        self.key_store = {fp.lower() for fp in key_store}
        self.oauth2_key_limit = oauth2_key_limit
        self.record = record
        self.all_remote = remote
        self.hosts = hosts
        self.reachable = [h for h in hosts if h.reachable]
        self.unreachable = [h for h in hosts if not h.reachable]
        scoped = [c for c in remote if c.kind == self.kind and c.environment == self.environment]
        self.scoped = scoped
        self.lineage = [c for c in scoped
                        if _in_lineage(c.alias, alias_prefix) or any(h.carries(c) for h in hosts)]
        self.active = _newest_first(c for c in self.lineage if c.is_active(now))
        self.target: RemoteCredential | None = None
        self.due = False
        self.due_at: datetime | None = None

    # ---- building the answer ------------------------------------------------------
    def plan(self, state, actions, reason, *, record=None, rotation_id=None, alias=None):
        ok, sentence = invariant_holds(self.scoped, self.hosts, self.now)
        in_use = self.in_use()
        return Plan(state=state, actions=tuple(actions), reason=reason, invariant_ok=ok, invariant=sentence,
                    target_id=self.target.id if self.target else None, due=self.due, due_at=self.due_at,
                    deadline=in_use.expires - DEADLINE_MARGIN if in_use else None,
                    rotation_id=rotation_id or (record or self.record).rotation_id, alias=alias,
                    in_use_id=in_use.id if in_use else None, ledger=record or self.record, backoff=self.backoff)

    def in_use(self) -> RemoteCredential | None:
        """The credential hosts use that expires first (else the target): the deadline is a margin before it."""
        in_use = [c for c in self.active if any(h.uses(c) for h in self.reachable) and c.expires is not None]
        if not in_use and self.target is not None and self.target.expires is not None:
            in_use = [self.target]
        return min(in_use, key=lambda c: c.expires) if in_use else None

    def key_available(self, cred: RemoteCredential) -> bool:
        return cred.public_key_fingerprint in self.key_store or any(h.carries(cred) for h in self.reachable)

    # ---- the steps ------------------------------------------------------------------
    def run(self) -> Plan:
        gate = self.retry_gate()
        if gate is not None:
            return gate
        if not self.hosts:
            return self.plan(BLOCKED, [Action(NOOP)],
                             "No in-scope hosts were given: a rotation needs at least one host to carry the "
                             "new credential; check the inventory group the role runs on.")
        orphans = []
        for cred in self.active:
            if self.key_available(cred):
                self.target = cred
                break
            if self.partial_view:
                continue
            if self.unreachable:
                return self.plan(BLOCKED, [Action(NOOP)], (
                    "Credential %s has no private key in the controller's key store and is on no reachable "
                    "host; host(s) %s are unreachable and may carry it, so it cannot be told apart from an "
                    "orphan. Bring the host(s) back (or take them out of scope) and run again."
                    % (cred.label(), _names(self.unreachable))))
            orphans.append(cred)
        if self.target is None:
            return self.bootstrap(orphans)
        self.due_at = renewal_time(self.target, self.lead)
        pre = [Action(REVOKE_ORPHAN, credential_ids=tuple(c.id for c in orphans))] if orphans else []
        orphan_note = (" First revoke orphan(s) %s: their private key exists nowhere (not in the key store, "
                       "on no host)." % _ids(orphans)) if orphans else ""
        return self.toward_target(pre, orphan_note, orphans)

    def retry_gate(self) -> Plan | None:
        rec = self.record
        if self.force:
            return None
        if rec.attempts >= self.max_attempts:
            return self.plan(BLOCKED, [Action(NOOP)], (
                "Rotation is blocked after %d failed attempt(s) (the limit is %d); the last error was: %s "
                "Fix the cause, then run again with force to try once more."
                % (rec.attempts, self.max_attempts, _sentence(rec.last_error))))
        if rec.next_attempt_at is not None and self.now < rec.next_attempt_at:
            return self.plan(FAILED_RETRYABLE, [Action(WAIT_RETRY, until=rec.next_attempt_at)], (
                "Attempt %d failed (%s); the next attempt is not before %s (backoff). Run with force to "
                "retry now." % (rec.attempts, _sentence(rec.last_error).rstrip("."),
                                _time.iso(rec.next_attempt_at))))
        return None

    def bootstrap(self, orphans: list[RemoteCredential]) -> Plan:
        """No active credential with a usable key: create one (never revoking the last active one first)."""
        kept = orphans[:1] if orphans and len(orphans) == len(self.active) else []
        to_revoke = orphans[len(kept):]
        pre = [Action(REVOKE_ORPHAN, credential_ids=tuple(c.id for c in to_revoke))] if to_revoke else []
        self.due = True
        if not self.active:
            why = "There is no active %s credential in %s for %r" % (self.kind, self.environment, self.prefix)
        else:
            why = ("No active credential has a private key anywhere (orphan(s) %s)" % _ids(orphans))
        note = ""
        if kept:
            note = (" Orphan %s is kept for now, because the last active credential is never revoked; it is "
                    "revoked with the old credentials once the new one is deployed and verified."
                    % kept[0].label())
        return self.create(pre, why + "." + note, revoked=to_revoke)

    def toward_target(self, pre, orphan_note, orphans) -> Plan:
        target = self.target
        need_deploy = [h for h in self.reachable if not h.uses(target)]
        need_verify = [h for h in self.reachable if h.uses(target) and not h.verified(target)]
        on_hosts = any(h.carries(target) for h in self.reachable)
        in_store = target.public_key_fingerprint in self.key_store
        made_by_run_in_flight = (self.partial_view and self.record.rotation_id
                                 and _rotation_id_of(target.alias, self.prefix) == self.record.rotation_id)
        if not on_hosts and self.record.credential_id != target.id and not made_by_run_in_flight:
            rid = _rotation_id_of(target.alias, self.prefix) or self.record.rotation_id
            record = replace(self.record, rotation_id=rid)
            return self.plan(CREATING, pre + [Action(ADOPT, credential_id=target.id, alias=target.alias,
                                                     rotation_id=rid)],
                             "New credential %s already exists and its private key is in the key store, but no "
                             "host carries it yet: adopt it instead of creating another one.%s"
                             % (target.label(), orphan_note), record=record, alias=target.alias)
        if need_deploy:
            actions = list(pre)
            source = "the key store"
            if not in_store:
                donors = [h for h in self.reachable if h.carries(target)]
                donor = sorted(donors, key=lambda h: (not h.verified(target), not h.uses(target), h.name))[0]
                actions.append(Action(RECOVER_KEY, credential_id=target.id, from_host=donor.name))
                source = "host %s (the key store does not have it)" % donor.name
            actions.append(Action(DEPLOY, hosts=tuple(h.name for h in need_deploy), credential_id=target.id,
                                  fingerprint=target.fingerprint))
            state = DEPLOYING if on_hosts else STAGED
            skipped = (" Unreachable host(s) %s are skipped and block revocation." % _names(self.unreachable)
                       if self.unreachable else "")
            return self.plan(state, actions, "Deploy credential %s from %s to %s.%s%s" % (
                target.label(), source, _names(need_deploy), skipped, orphan_note))
        if need_verify:
            return self.plan(VERIFYING, pre + [Action(VERIFY, hosts=tuple(h.name for h in need_verify),
                                                      credential_id=target.id, fingerprint=target.fingerprint)],
                             "Credential %s is current on every reachable host; verify it on %s.%s"
                             % (target.label(), _names(need_verify), orphan_note))
        return self.settled(pre, orphan_note, orphans)

    def settled(self, pre, orphan_note, orphans) -> Plan:
        """Every reachable host uses and has verified the target."""
        target = self.target
        old = [c for c in self.active if c.id != target.id and c not in orphans]
        if old and self.unreachable:
            return self.plan(BLOCKED, pre + [Action(NOOP)], (
                "Credential %s is verified on every reachable host, but host(s) %s are unreachable: they never "
                "count as verified, so old credential(s) %s stay active. Bring the host(s) back, or take them "
                "out of scope, and run again.%s"
                % (target.label(), _names(self.unreachable), _ids(old), orphan_note)))
        record = self.record
        if old and self.partial_view:
            return self.plan(SLICE_VERIFIED, pre + [Action(NOOP)], (
                "Credential %s is deployed and verified on this slice's %d host(s); old credential(s) %s stay "
                "active: only a run that sees the whole scope (view full) revokes them, once every host "
                "verified.%s" % (target.label(), len(self.hosts), _ids(old), orphan_note)))
        if old:
            if record.credential_id != target.id or record.soak_started_at is None:
                record = replace(record, credential_id=target.id, soak_started_at=self.soak_start())
            soak_ends = record.soak_started_at + self.soak
            if self.now < soak_ends:
                return self.plan(SOAKING, pre + [Action(WAIT_SOAK, until=soak_ends)], (
                    "Credential %s is deployed and verified on all %d host(s); old credential(s) %s stay "
                    "active until the soak period ends at %s.%s"
                    % (target.label(), len(self.hosts), _ids(old), _time.iso(soak_ends), orphan_note)),
                    record=record)
            # Every host is reachable and uses the target here; the filter restates the rule anyway.
            revocable = [c for c in old if not any(h.uses(c) for h in self.hosts)]
            waiting = {cid for cid, answered in self.work_orders["revoke"].items() if not answered}
            if revocable and all(c.id in waiting for c in revocable):
                return self.plan(AWAITING_REVOKE, pre + [Action(AWAIT_PERSON, credential_ids=tuple(
                    c.id for c in revocable))], (
                    "Credential %s is deployed and verified on all %d host(s); old credential(s) %s wait for a "
                    "person to revoke them in the portal (revoke work order open).%s"
                    % (target.label(), len(self.hosts), _ids(revocable), orphan_note)), record=record)
            return self.plan(REVOKING, pre + [Action(REVOKE, credential_ids=tuple(c.id for c in revocable))], (
                "Credential %s is deployed and verified on all %d host(s) and the soak period has passed: "
                "revoke old credential(s) %s, which no in-scope host uses.%s"
                % (target.label(), len(self.hosts), _ids(revocable), orphan_note)), record=record)
        self.due = self.is_due() or self.create_in_flight()
        if self.due:
            return self.create(pre, self.due_sentence() + orphan_note, revoked=orphans)
        idle = pre or [Action(NOOP)]
        note = (" Host(s) %s are unreachable." % _names(self.unreachable)) if self.unreachable else ""
        left = self.target.expires - self.now if self.target.expires else None
        return self.plan(IDLE, idle, "Nothing is due: credential %s %s; its rotation starts at %s.%s%s" % (
            target.label(),
            "expires at %s (in %s)" % (_time.iso(target.expires), _days_text(left)) if left else
            "has no expiry", _time.iso(self.due_at), note, orphan_note),
            record=replace(record, rotation_id=None, credential_id=None, soak_started_at=None)
            if not pre else record)

    def soak_start(self) -> datetime:
        """When the soak began: the latest deploy of the target on any host, else now."""
        stamps = [h.deployed_at for h in self.hosts if h.uses(self.target)]
        if stamps and all(s is not None for s in stamps):
            return min(max(stamps), self.now)
        return self.now

    def is_due(self) -> bool:
        target = self.target
        if should_rotate(target, self.now, self.lead):
            return True
        if not self.force:
            return False
        # A forced rotation replaces only a credential that predates this run, so re-planning
        # within the same run does not rotate the brand-new credential again.
        run_start = self.record.lock_acquired_at or self.now
        return target.created is None or target.created < run_start

    def create_in_flight(self) -> bool:
        """The rotation's create work order is open at the portal (the rotation began, say forced, in an earlier
        run): it goes on until done, whatever the due date says."""
        rid = self.record.rotation_id
        return bool(rid) and rotation_alias(self.prefix, rid) in self.work_orders["create"]

    def due_sentence(self) -> str:
        target = self.target
        if not should_rotate(target, self.now, self.lead) and self.create_in_flight():
            return ("The rotation of credential %s to %r is under way (its work order is open at the portal)."
                    % (target.label(), rotation_alias(self.prefix, self.record.rotation_id)))
        if not should_rotate(target, self.now, self.lead):
            return "A rotation of credential %s was forced." % target.label()
        lead = lead_time(target.lifetime, self.lead)
        return ("Credential %s expires at %s, within the lead time of %s." % (
            target.label(), _time.iso(target.expires), _days_text(lead)))

    def create(self, pre, why, revoked) -> Plan:
        """A CREATING plan (or BLOCKED by the OAuth 2.0 key limit)."""
        if self.kind == "oauth2":
            revoked_ids = {c.id for c in revoked}
            keys = [c for c in self.scoped if c.is_active(self.now) and c.id not in revoked_ids]
            if len(keys) >= self.oauth2_key_limit:
                return self.plan(BLOCKED, pre + [Action(NOOP)], "%s But %d of %d OAuth 2.0 keys are already "
                                 "active in %s and none can be revoked safely: %s. Revoke a key that is no "
                                 "longer used by hand, then run again." % (
                                     why, len(keys), self.oauth2_key_limit, self.environment,
                                     "; ".join(self.why_kept(c) for c in keys)))
        rid = self.rotation_id(revoked)
        alias = rotation_alias(self.prefix, rid)
        record = replace(self.record, rotation_id=rid, credential_id=None, soak_started_at=None)
        if self.work_orders["create"].get(alias) is False:
            return self.plan(AWAITING_ISSUE, pre + [Action(AWAIT_PERSON, alias=alias, rotation_id=rid)],
                             "%s The replacement %r waits for a person to add it in the portal (create work "
                             "order open); nothing changes on the hosts meanwhile." % (why, alias), record=record,
                             rotation_id=rid, alias=alias)
        return self.plan(CREATING, pre + [Action(CREATE, alias=alias, rotation_id=rid)],
                         "%s Create the replacement %r." % (why, alias), record=record, rotation_id=rid,
                         alias=alias)

    def why_kept(self, cred: RemoteCredential) -> str:
        users = [h.name for h in self.reachable if h.uses(cred)]
        if users:
            return "%s is in use on %s" % (cred.label(), ", ".join(users))
        if cred in self.lineage:
            return "%s is kept because the last active credential is never revoked first" % cred.label()
        return "%s is not managed by this rotation (alias prefix %r)" % (cred.label(), self.prefix)

    def rotation_id(self, revoked: list[RemoteCredential]) -> str:
        """Reuse the ledger's rotation id unless its alias is taken; else mint ``<epoch seconds>``."""
        taken = {c.alias for c in self.all_remote}
        revoked_aliases = {c.alias for c in revoked}
        rid = self.record.rotation_id
        alias = rotation_alias(self.prefix, rid) if rid else None
        if rid and alias not in taken and alias not in revoked_aliases:
            return rid
        stamp = int(self.now.timestamp())
        while rotation_alias(self.prefix, str(stamp)) in taken:
            stamp += 1
        return str(stamp)


def _sentence(text: str | None) -> str:
    text = (text or "unknown error").strip()
    return text if text.endswith((".", "!", "?")) else text + "."


def plan_rotation(remote_credentials: Iterable[Any], hosts: Any, ledger: Any, now: Any, *,
                  kind: str, environment: str, alias_prefix: str, lead: Any = None, soak_seconds: Any = 0,
                  force: bool = False, max_attempts: int = DEFAULT_MAX_ATTEMPTS, backoff: Backoff | None = None,
                  key_store: Iterable[str] = (), owner: str | None = None, lock_ttl: Any = DEFAULT_LOCK_TTL,
                  oauth2_key_limit: int = OAUTH2_KEY_LIMIT,
                  work_orders: Mapping[str, Mapping[str, bool]] | None = None, partial_view: bool = False) -> Plan:
    """Decide the next safe step(s) of a rotation from the facts. Pure.

    remote_credentials: the project's credential records (all kinds; filtered
    here by ``kind`` and ``environment``). hosts: ``{name: facts}`` (see
    :func:`read_host_state`) for every in-scope host -- the hosts that serve
    traffic with this credential; a host left out is never protected.
    ledger: a :class:`LedgerRecord` or its dict (None: empty). now: the clock.
    alias_prefix: names the lineage; credentials whose alias is the prefix or
    starts with ``prefix-``, and any credential an in-scope host carries, are
    managed here. lead: days or timedelta (None: :func:`lead_time` default).
    soak_seconds: seconds or timedelta. force: rotate now (skips backoff and
    the attempt limit; replaces a credential that predates this run).
    key_store: public-key fingerprints of the private keys the controller's
    key store holds. owner: this run's lock owner (None: a read-only plan
    that takes no lock, e.g. check mode). work_orders: the portal's open
    work orders, ``{"create": {alias: answered}, "revoke": {credential id:
    answered}}`` (answered: the person supplied something, which the step
    then checks). An unanswered one makes an AWAITING_ISSUE / AWAITING_REVOKE
    plan that attempts nothing; an open create work order of the rotation in
    flight keeps it going even when nothing is due any more. partial_view:
    ``hosts`` are one slice of the lineage's hosts: the plan never revokes
    (SLICE_VERIFIED where a full view would), deploys the credential the
    rotation in flight made, and takes the lock only for the steps in
    LOCKED_ACTIONS. Raises ValueError for an invalid lead time.
    """
    when = _require_now(now)
    record = LedgerRecord.from_dict(ledger)
    soak = _as_timedelta(soak_seconds, timedelta(seconds=1), "soak_seconds")

    def planner_for(rec):
        return _Planner(_credentials(remote_credentials), read_hosts(hosts), rec, when, kind=kind,
                        environment=environment, alias_prefix=alias_prefix, lead=lead, soak=soak, force=force,
                        max_attempts=max_attempts, backoff=backoff or Backoff(), key_store=key_store,
                        oauth2_key_limit=oauth2_key_limit, work_orders=dict(work_orders or {}),
                        partial_view=partial_view)

    planner = planner_for(record)
    if planner.active:
        # Validate an explicit lead against the newest credential now, so a bad setting fails loudly.
        lead_time(planner.active[0].lifetime, lead)
    if partial_view and lock_holder(record, when) != owner:
        # A slice's run locks only to change the lineage; rolling out to its own hosts goes on beside the others.
        unlocked = planner.run()
        if not set(unlocked.action_kinds()) & LOCKED_ACTIONS:
            return unlocked
        planner = planner_for(record)
    if owner:
        try:
            planner.record = take_lock(record, owner, when, lock_ttl)
        except LockHeld as exc:
            return planner.plan(LOCKED, [Action(NOOP)], str(exc))
    else:
        holder = lock_holder(record, when)
        if holder is not None:
            return planner.plan(LOCKED, [Action(NOOP)], "Another run (%s) holds the rotation lock until %s."
                                % (holder, _time.iso(record.lock_expires)))
    return planner.run()


# ---------------------------------------------------------------------------
# what the rotation role runs next (the role's plays only carry this out)
# ---------------------------------------------------------------------------

# Plan states after which the role records what the hosts reported (and revokes what the plan allows).
# The others end the run at the plan: nothing to do (IDLE), a wait (SOAKING, FAILED_RETRYABLE, and the
# AWAITING_* states of the portal-assisted backend, where a person has the next step), or a refusal
# (LOCKED, BLOCKED: the plan task fails); GATHER plans again first.
RECORDED_STATES = (CREATING, STAGED, DEPLOYING, VERIFYING, REVOKING)


def rollout_problems(kind: str, key_formats: Iterable[str] = ("p12",), keystore_password_set: bool = False,
                     verify_url: str = "", verify_token_url: str = "", reload_command: str = "",
                     reload_service: str = "") -> list[str]:
    """Settings of the roll-out that depend on each other; one sentence per problem (none: fine).

    Checked before anything is planned, so a run that could not verify or reload the hosts never
    creates a credential.
    """
    problems = []
    if "p12" in list(key_formats or ()) and not keystore_password_set:
        problems.append("mc_rotation_keystore_password is required: mc_rotation_key_formats contains p12.")
    if kind == "oauth2":
        if not verify_token_url:
            problems.append("mc_rotation_verify_token_url is required for kind oauth2: every host proves the new "
                            "key works.")
    elif not verify_url:
        problems.append("mc_rotation_verify_url is required for kind %s: every host proves the new credential "
                        "works." % kind)
    if reload_command and reload_service:
        problems.append("Set only one of mc_rotation_reload_command and mc_rotation_reload_service.")
    return problems


def role_steps(state: str, gather: Iterable[str] = (), create: Mapping[str, Any] | None = None,
               deploy: Mapping[str, Any] | None = None, revoke_orphans: Iterable[str] = (),
               check_mode: bool = False) -> dict[str, Any]:
    """Which of the rotation playbook's later plays run, and on which hosts.

    ``gather``: hosts to ask what they carry (then plan again). ``prepare``: the controller revokes
    orphans and/or creates the new credential. ``rollout_hosts``: the hosts that deploy, reload and
    verify. ``record``: the controller records what the hosts reported and revokes what the plan allows.
    Check mode only plans: it asks unknown hosts (read-only) but creates, deploys and records nothing.
    """
    gather = list(gather or ())
    if gather:
        return {"gather": gather, "prepare": False, "rollout_hosts": [], "record": False}
    if check_mode:
        return {"gather": [], "prepare": False, "rollout_hosts": [], "record": False}
    if deploy:
        hosts = list(deploy.get("hosts") or ())
    elif create:
        hosts = list(create.get("hosts") or ())
    else:
        hosts = []
    return {"gather": [], "prepare": bool(create) or bool(list(revoke_orphans or ())), "rollout_hosts": hosts,
            "record": state in RECORDED_STATES}


# ---------------------------------------------------------------------------
# the ledger file (controller side)
# ---------------------------------------------------------------------------

class LedgerError(CollectionError):
    """The ledger file cannot be read or written."""


class Ledger:
    """One rotation's ledger as a small JSON file, written atomically, guarded by ``fcntl.flock``.

    Use one file per credential lineage (project, environment, kind, alias
    prefix). Hold :meth:`locked` around read -> plan -> write so two runs on
    the same controller cannot interleave; the lease lock in the record
    covers runs that do not share a file lock.
    """

    def __init__(self, path: str):
        self.path = path
        self.lock_path = path + ".lock"

    @contextmanager
    def locked(self) -> Iterator[Ledger]:
        """An exclusive ``flock`` on ``<path>.lock`` for the duration of the block."""
        self._ensure_dir()
        fd = os.open(self.lock_path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def read(self) -> LedgerRecord:
        """The stored record; an empty record when the file does not exist."""
        try:
            with open(self.path, "r", encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return LedgerRecord()
        except (OSError, ValueError) as exc:
            raise LedgerError("cannot read the rotation ledger %s: %s" % (self.path, exc)) from exc
        if not isinstance(data, dict):
            raise LedgerError("the rotation ledger %s does not hold a JSON object" % self.path)
        try:
            return LedgerRecord.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise LedgerError("the rotation ledger %s holds invalid values: %s" % (self.path, exc)) from exc

    def snapshot(self) -> bytes | None:
        """The stored bytes (None: no file), to tell whether another run wrote the ledger meanwhile."""
        try:
            with open(self.path, "rb") as handle:
                return handle.read()
        except OSError:
            return None

    def write(self, record: LedgerRecord | Mapping[str, Any]) -> bool:
        """Write the record (temp file 0600 -> fsync -> rename). Returns False when nothing changed."""
        text = json.dumps(LedgerRecord.from_dict(record).to_dict(), indent=2, sort_keys=True) + "\n"
        self._ensure_dir()
        try:
            return _io.write_if_changed(self.path, text.encode("utf-8"))
        except OSError as exc:
            raise LedgerError("cannot write the rotation ledger %s: %s" % (self.path, exc)) from exc

    def _ensure_dir(self) -> str:
        directory = os.path.dirname(os.path.abspath(self.path))
        os.makedirs(directory, mode=0o700, exist_ok=True)
        return directory
