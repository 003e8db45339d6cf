# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which credentials mc_revoke revokes, and the guards it applies first.

PRIVATE to this collection: the API may change without notice.

Pure functions over devapi.Credential-like records (attributes id, alias,
status, fingerprint, created, expires); no I/O, so the selection and the
guards are unit-testable without a server. The caller lists the credentials
of one project + environment + kind and passes them here.
"""

from __future__ import annotations


from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _fingerprint, _time
from ansible_collections.mcdev.credentials.plugins.module_utils import inventory

REVOKED = "REVOKED"
ACTIVE = "ACTIVE"
EXPIRED = "EXPIRED"
SELECTORS = ("expired", "all_but_newest")


class RevokeRefused(CollectionError):
    """A guard refused the revocation; ``msg`` says which option would allow it."""

    def __init__(self, msg, reason, credentials=None):
        super().__init__(msg)
        self.msg = msg
        self.reason = reason
        self.credentials = list(credentials or [])

    def fields(self):
        return {"refused": [c.to_dict() for c in self.credentials], "reason": self.reason}


class SelectionError(CollectionError):
    """The selection options are unusable or match nothing; ``msg`` names the option."""

    def __init__(self, msg):
        super().__init__(msg)
        self.msg = msg


def parse_selector(value):
    """Turn the ``selector`` option into (name, keep).

    Accepted: ``expired``; ``{expired: true}``; ``{all_but_newest: N}`` with N >= 0;
    the string ``all_but_newest: N`` is accepted too.
    """
    if value is None or value == "":
        return None
    if isinstance(value, str):
        text = value.strip()
        if text == "expired":
            return ("expired", None)
        if text.startswith("all_but_newest"):
            rest = text[len("all_but_newest"):].strip().lstrip(":=").strip()
            return ("all_but_newest", _keep_count(rest))
        raise SelectionError("selector must be 'expired' or {all_but_newest: N}, got %r" % value)
    if isinstance(value, dict):
        if len(value) != 1:
            raise SelectionError("selector takes exactly one of expired or all_but_newest, got %s"
                                 % ", ".join(sorted(str(k) for k in value)) if value else
                                 "selector is empty; use 'expired' or {all_but_newest: N}")
        name, arg = list(value.items())[0]
        if name == "expired":
            if arg not in (True, "true", "yes", None):
                raise SelectionError("selector {expired: ...} takes true, got %r" % (arg,))
            return ("expired", None)
        if name == "all_but_newest":
            return ("all_but_newest", _keep_count(arg))
        raise SelectionError("unknown selector %r; use 'expired' or {all_but_newest: N}" % (name,))
    raise SelectionError("selector must be 'expired' or {all_but_newest: N}, got a %s" % type(value).__name__)


def _keep_count(arg):
    try:
        keep = int(arg)
        if isinstance(arg, bool) or (isinstance(arg, float) and arg != keep):
            raise ValueError
    except (TypeError, ValueError):
        raise SelectionError("selector all_but_newest needs a whole number of credentials to keep, got %r" % (arg,)) from None
    if keep < 0:
        raise SelectionError("selector all_but_newest must be 0 or more, got %d" % keep)
    return keep


def _status(cred):
    return (getattr(cred, "status", None) or "").upper()


def _record(cred):
    """The planner's view of a credential (inventory.RemoteCredential), for status questions."""
    return inventory.RemoteCredential(
        id=str(cred.id), status=_status(cred),
        created=getattr(cred, "created", None), expires=getattr(cred, "expires", None))


def is_revoked(cred):
    return _status(cred) == REVOKED


def is_expired(cred, now):
    """EXPIRED at Mastercard, or ACTIVE there but past its expiry by our clock."""
    return _record(cred).state(now) == EXPIRED


def is_active(cred, now):
    """ACTIVE at Mastercard and not past its expiry (inventory's definition)."""
    return _record(cred).is_active(now)


def _newest_first_key(cred):
    floor = _time.EARLIEST
    return (getattr(cred, "created", None) or floor, getattr(cred, "expires", None) or floor, str(cred.id))


def describe(cred):
    """'id (alias)' for messages."""
    alias = getattr(cred, "alias", None)
    return "%s (%s)" % (cred.id, alias) if alias else str(cred.id)


def select(credentials, ids=None, aliases=None, fingerprints=None, selector=None, now=None):
    """Pick the credentials to revoke.

    Returns ``(targets, already_revoked, missing)``: credentials to revoke
    (not revoked yet), the matched ones that are already revoked, and the
    requested ids / aliases / fingerprints that match nothing (as
    ``(option, value)`` pairs).
    """
    now = now or _time.now()
    ids = [str(i) for i in (ids or []) if str(i).strip()]
    aliases = [str(a) for a in (aliases or []) if str(a).strip()]
    fingerprints = [str(f).strip() for f in (fingerprints or []) if str(f).strip()]
    parsed = parse_selector(selector) if not isinstance(selector, tuple) else selector

    matched = []
    missing = []

    def add(cred):
        if all(cred is not m for m in matched):
            matched.append(cred)

    for wanted in ids:
        hits = [c for c in credentials if str(c.id) == wanted]
        if not hits:
            missing.append(("credential_id", wanted))
        for cred in hits:
            add(cred)
    for wanted in aliases:
        hits = [c for c in credentials if getattr(c, "alias", None) == wanted]
        if not hits:
            missing.append(("alias", wanted))
        for cred in hits:
            add(cred)
    for given in fingerprints:
        wanted = _fingerprint.normalize(given)  # None (not a fingerprint) matches nothing, not every unknown one
        hits = [c for c in credentials if wanted and _fingerprint.normalize(getattr(c, "fingerprint", None)) == wanted]
        if not hits:
            missing.append(("fingerprint", wanted or given))
        for cred in hits:
            add(cred)

    if parsed is not None:
        name, keep = parsed
        if name == "expired":
            for cred in credentials:
                if not is_revoked(cred) and is_expired(cred, now):
                    add(cred)
        else:
            # Keep the N newest *active* credentials; every other credential that
            # is not revoked yet goes (older active ones, expired, inactive).
            active = sorted((c for c in credentials if is_active(c, now)), key=_newest_first_key, reverse=True)
            kept = active[:keep]
            for cred in sorted(credentials, key=_newest_first_key):
                if is_revoked(cred) or any(cred is k for k in kept):
                    continue
                add(cred)

    targets = [c for c in matched if not is_revoked(c)]
    already = [c for c in matched if is_revoked(c)]
    return targets, already, missing


def check_guards(credentials, targets, in_use_fingerprints=None, force_last=False, ignore_in_use=False, now=None,
                 scope="this project environment"):
    """Refuse what the portal would let you regret. Raises RevokeRefused.

    * a target whose certificate fingerprint is in ``in_use_fingerprints``
      (unless ``ignore_in_use``);
    * revoking every active credential of the kind in the environment
      (unless ``force_last``).
    """
    now = now or _time.now()
    in_use = set(_fingerprint.normalize(f) for f in (in_use_fingerprints or [])) - {None}
    if in_use and not ignore_in_use:
        busy = [c for c in targets if _fingerprint.normalize(getattr(c, "fingerprint", None)) in in_use]
        if busy:
            raise RevokeRefused(
                "Refusing to revoke %s: %s still in use (its fingerprint is in in_use_fingerprints); "
                "move the hosts to another credential first, or set ignore_in_use=true"
                % (", ".join(describe(c) for c in busy), "it is" if len(busy) == 1 else "they are"),
                "in_use",
                busy,
            )
    if not force_last:
        active = [c for c in credentials if is_active(c, now)]
        going = [c for c in active if any(c is t for t in targets)]
        if going and len(going) == len(active):
            raise RevokeRefused(
                "Refusing to revoke %s: %s the last active credential of this kind in %s, and revoking takes "
                "effect immediately; create and deploy a replacement first, or set force_last=true"
                % (", ".join(describe(c) for c in going), "it is" if len(going) == 1 else "they are", scope),
                "last_active",
                going,
            )


def status_diff(targets, after_status=REVOKED):
    """Diff mode facts: id, alias, fingerprint, expiry and status before/after."""
    def facts(cred, status):
        expires = getattr(cred, "expires", None)
        return {
            "id": str(cred.id),
            "alias": getattr(cred, "alias", None),
            "fingerprint": getattr(cred, "fingerprint", None),
            "expires": _time.iso(expires) if expires else None,
            "status": status,
        }

    return {
        "before": {"credentials": [facts(c, _status(c) or None) for c in targets]},
        "after": {"credentials": [facts(c, after_status) for c in targets]},
    }
