# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host side of a credential deployment: versioned folders and an atomic ``current`` flip.

Layout on a host::

    <base>/<name>/versions/<credential-id>/{key.p12,key.pem,cert.pem,meta.json}
    <base>/<name>/current -> versions/<credential-id>

Every path below ``<base>`` is opened relative to a directory file descriptor
with ``O_NOFOLLOW``, so a symlink planted anywhere under ``<base>/<name>`` is
refused instead of followed. Files are written to a temporary name with mode
0600 (``O_CREAT | O_EXCL | O_NOFOLLOW``), fsynced, given their final mode and
owner, and renamed into place; ``current`` is flipped by creating a symlink
under a temporary name and renaming it over the old one.

``meta.json`` holds only non-secret facts (credential id, fingerprint, expiry,
identifiers, sha256 of the files written, when it was deployed and the
version it replaced), so a rollback target can be checked before use.

Pure functions of a path; nothing here imports Ansible, so the unit tests and
the module share one implementation.
"""

from __future__ import annotations

import errno
import grp
import hashlib
import json
import os
import pwd
import re
import stat

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _io, _time

META_NAME = "meta.json"
CURRENT = "current"
VERSIONS = "versions"
META_FORMAT = 1
# file name -> default mode. Keys are secrets; certificates and meta are not.
FILE_MODES = {"key.p12": 0o600, "key.pem": 0o600, "cert.pem": 0o644, "chain.pem": 0o644}
DIR_MODE = 0o755
_SAFE_COMPONENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


class DeployError(CollectionError):
    """A refusal or failure with a sentence a person can act on."""


def check_component(value, what):
    """A single, safe path component (no separators, no '..', no leading dot)."""
    if not isinstance(value, str) or not _SAFE_COMPONENT.match(value) or value in (".", ".."):
        raise DeployError(
            "%s %r is not a safe folder name: use 1-128 letters, digits, '.', '_', '-', '@' or '+', "
            "starting with a letter or digit" % (what, value)
        )
    return value


def resolve_ids(owner=None, group=None):
    """(uid, gid) for owner/group given as a name or a number; -1 leaves it unchanged."""
    uid = gid = -1
    try:
        if owner:
            uid = int(owner) if str(owner).isdigit() else pwd.getpwnam(owner).pw_uid
        if group:
            gid = int(group) if str(group).isdigit() else grp.getgrnam(group).gr_gid
    except KeyError as exc:
        raise DeployError("owner/group %s does not exist on this host" % exc) from exc
    return uid, gid


def check_record_target(path, name, credential_id):
    """Refuse a bad base path, name or credential id before anything is sent or read."""
    if not path or not os.path.isabs(path):
        raise DeployError("path %r must be an absolute directory path" % (path,))
    check_component(name, "name")
    check_component(credential_id, "credential_id")


def record_verification(path, name, credential_id, fingerprint=None, check_mode=False, owner=None, group=None):
    """Record in ``<path>/<name>/versions/<credential_id>/meta.json`` that this host verified it.

    The one implementation behind mc_deploy ``state=verified`` and mc_verify ``record``.
    ``credential_id`` must be the version ``current`` points at, and ``fingerprint`` (if given) the one
    deployed there. Idempotent: a version that already records this fingerprint as verified is left
    alone (``changed`` false, ``verified_at`` kept). In check mode nothing is written and ``host_facts``
    shows the predicted verification.

    Returns ``changed``, ``current``, ``meta`` (the version's meta.json after the change), ``before``
    (``verified_fingerprint``/``verified_at`` before it), ``versions``, ``host_facts`` and ``recorded`` (the
    summary the modules return: ``changed``, ``credential_id``, ``verified_fingerprint``, ``verified_at``).
    """
    uid, gid = resolve_ids(owner, group)
    with Layout(path, name, create=False) as layout:
        if layout.root_fd is None or layout.versions_fd is None:
            raise DeployError("nothing is deployed here")
        cur = layout.current()
        stamped = layout.stamp_verified(credential_id, fingerprint, check_mode=check_mode, uid=uid, gid=gid)
        versions = layout.versions()
        host_facts = layout.host_facts()
    if check_mode and stamped["changed"]:
        # predict what the planner would read after a real run
        meta = stamped["meta"]
        host_facts["verified_fingerprint"] = meta["verified_fingerprint"]
        host_facts["verified_at"] = meta["verified_at"]
        for item in host_facts["versions"]:
            if item["credential_id"] == cur:
                item["verified_at"] = meta["verified_at"]
    meta = stamped["meta"]
    recorded = {"changed": stamped["changed"], "credential_id": credential_id,
                "verified_fingerprint": meta.get("verified_fingerprint"), "verified_at": meta.get("verified_at")}
    return {"changed": stamped["changed"], "current": cur, "meta": meta, "before": stamped["before"],
            "versions": versions, "host_facts": host_facts, "recorded": recorded}


def _open_dir(name, dir_fd, create, mode=DIR_MODE, what="folder"):
    """Open (optionally create) a directory relative to dir_fd without following symlinks."""
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except FileNotFoundError:
        if not create:
            raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DeployError("refusing to use %s %r: it is a symlink or not a directory" % (what, name)) from exc
        raise
    try:
        os.mkdir(name, mode, dir_fd=dir_fd)
    except FileExistsError:
        pass
    try:
        return os.open(name, flags, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise DeployError("refusing to use %s %r: it is a symlink or not a directory" % (what, name)) from exc
        raise


def _lstat(name, dir_fd):
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def _read_regular(name, dir_fd, limit=16 * 1024 * 1024):
    """Read a regular file relative to dir_fd; refuse a symlink or anything else."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise DeployError("refusing to read %r: it is a symlink" % name) from exc
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise DeployError("refusing to read %r: not a regular file" % name)
        chunks = []
        size = 0
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise DeployError("%r is larger than expected" % name)
            chunks.append(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _write_atomic(name, data, dir_fd, mode, uid=-1, gid=-1):
    existing = _lstat(name, dir_fd)
    if existing is not None and stat.S_ISDIR(existing.st_mode):
        raise DeployError("refusing to replace %r: it is a directory" % name)
    _io.write_atomically(name, data, mode, uid, gid, dir_fd=dir_fd)


def sha256_hex(data):
    return hashlib.sha256(data).hexdigest()


def _read_link(name, dir_fd):
    """Target of a symlink, None if absent; refuse anything that is not a symlink."""
    st = _lstat(name, dir_fd)
    if st is None:
        return None
    if not stat.S_ISLNK(st.st_mode):
        raise DeployError("refusing to touch %r: it exists and is not a symlink" % name)
    return os.readlink(name, dir_fd=dir_fd)


def _version_of(target):
    """'versions/<id>' -> '<id>'; anything else is not ours."""
    if target is None:
        return None
    parts = target.split("/")
    if len(parts) == 2 and parts[0] == VERSIONS and _SAFE_COMPONENT.match(parts[1]) and parts[1] not in (".", ".."):
        return parts[1]
    raise DeployError("%r points to %r, which is not a versions/<credential-id> folder; fix it by hand"
                      % (CURRENT, target))


def _flip(dir_fd, version):
    """Point ``current`` at versions/<version> in one rename."""
    tmp = ".%s.tmp-%d-%s" % (CURRENT, os.getpid(), os.urandom(4).hex())
    os.symlink("%s/%s" % (VERSIONS, version), tmp, dir_fd=dir_fd)
    with _io.unlinked_on_failure(tmp, dir_fd):
        os.rename(tmp, CURRENT, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    os.fsync(dir_fd)


def _load_meta(vfd):
    raw = _read_regular(META_NAME, vfd)
    if raw is None:
        return None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except ValueError:
        return None
    return meta if isinstance(meta, dict) else None


def _version_complete(vfd, meta, files):
    """True when every expected file exists with the digest meta.json recorded."""
    if not meta or meta.get("complete") is not True:
        return False
    recorded = meta.get("files") or {}
    for fname in files:
        if fname not in recorded:
            return False
    for fname, digest in recorded.items():
        data = _read_regular(fname, vfd)
        if data is None or sha256_hex(data) != digest:
            return False
    return True


def _fix_attrs(name, dir_fd, mode, uid, gid):
    """Mode/owner of an existing regular file; True when something changed."""
    st = _lstat(name, dir_fd)
    if st is None or not stat.S_ISREG(st.st_mode):
        return False
    changed = False
    if stat.S_IMODE(st.st_mode) != mode:
        _chmod_nofollow(name, dir_fd, mode)
        changed = True
    if (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid):
        os.chown(name, uid, gid, dir_fd=dir_fd, follow_symlinks=False)
        changed = True
    return changed


def _chmod_nofollow(name, dir_fd, mode):
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=dir_fd)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)


class Layout(object):
    """Operations on ``<base>/<name>``. Use as a context manager (it holds directory fds)."""

    def __init__(self, base, name, create=True):
        if not base or not os.path.isabs(base):
            raise DeployError("path %r must be an absolute directory path" % (base,))
        self.base = base
        self.name = check_component(name, "name")
        self.create = create
        self._fds = []
        self.root_fd = None
        self.versions_fd = None

    def __enter__(self):
        try:
            if self.create:
                os.makedirs(self.base, mode=DIR_MODE, exist_ok=True)
            base_fd = os.open(self.base, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_CLOEXEC", 0))
        except FileNotFoundError:
            if not self.create:
                return self  # nothing deployed here yet (root_fd stays None)
            raise DeployError("base path %r does not exist" % self.base) from None
        except NotADirectoryError:
            raise DeployError("base path %r is not a directory" % self.base) from None
        self._fds.append(base_fd)
        try:
            self.root_fd = _open_dir(self.name, base_fd, self.create, what="credential folder")
        except FileNotFoundError:
            self.root_fd = None
            return self
        self._fds.append(self.root_fd)
        try:
            self.versions_fd = _open_dir(VERSIONS, self.root_fd, self.create, what="versions folder")
            self._fds.append(self.versions_fd)
        except FileNotFoundError:
            self.versions_fd = None
        return self

    def __exit__(self, *exc):
        for fd in reversed(self._fds):
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds = []

    # ---- facts -------------------------------------------------------------------
    def current(self):
        if self.root_fd is None:
            return None
        return _version_of(_read_link(CURRENT, self.root_fd))

    def versions(self):
        if self.versions_fd is None:
            return []
        out = []
        for entry in sorted(os.listdir(self.versions_fd)):
            if entry.startswith(".") or not _SAFE_COMPONENT.match(entry):
                continue
            st = _lstat(entry, self.versions_fd)
            if st is not None and stat.S_ISDIR(st.st_mode):
                out.append(entry)
        return out

    def meta(self, version):
        if self.versions_fd is None:
            return None
        try:
            vfd = _open_dir(check_component(version, "credential_id"), self.versions_fd, False)
        except FileNotFoundError:
            return None
        try:
            return _load_meta(vfd)
        finally:
            os.close(vfd)

    def facts(self):
        cur = self.current()
        return {
            "path": os.path.join(self.base, self.name),
            "current": cur,
            "versions": self.versions(),
            "meta": self.meta(cur) if cur else None,
        }

    def host_facts(self):
        """The planner's view of this host (inventory.read_host_state input); non-secret."""
        cur = self.current()
        versions = []
        current_meta = None
        for version in self.versions():
            meta = self.meta(version) or {}
            if version == cur:
                current_meta = meta
            versions.append({"credential_id": version, "fingerprint": meta.get("fingerprint"),
                             "verified_at": meta.get("verified_at")})
        current_meta = current_meta or {}
        return {
            "reachable": True,
            "current_id": cur,
            "current_fingerprint": current_meta.get("fingerprint"),
            "verified_fingerprint": current_meta.get("verified_fingerprint"),
            "verified_at": current_meta.get("verified_at"),
            "deployed_at": current_meta.get("deployed_at"),
            # what the portal-assisted backend records of a credential made before it took over
            "current_expires": current_meta.get("expires"),
            "current_kind": current_meta.get("kind"),
            "versions": versions,
        }

    def stamp_verified(self, version, fingerprint=None, check_mode=False, uid=-1, gid=-1):
        """Record in versions/<version>/meta.json that this host verified it (must be current)."""
        version = check_component(version, "credential_id")
        cur = self.current()
        if cur != version:
            raise DeployError("cannot record a verification of %s: current points at %s" % (version, cur))
        vfd = _open_dir(version, self.versions_fd, False, what="version folder")
        try:
            meta = _load_meta(vfd)
            if not meta or meta.get("complete") is not True:
                raise DeployError("versions/%s has no complete meta.json" % version)
            fingerprint = (fingerprint or meta.get("fingerprint") or "").lower() or None
            if meta.get("fingerprint") and fingerprint and fingerprint != meta["fingerprint"]:
                raise DeployError("the verified fingerprint %s is not the one deployed in versions/%s (%s)"
                                  % (fingerprint, version, meta["fingerprint"]))
            before = {"verified_fingerprint": meta.get("verified_fingerprint"), "verified_at": meta.get("verified_at")}
            if meta.get("verified_fingerprint") == fingerprint and meta.get("verified_at"):
                return {"changed": False, "meta": meta, "before": before}
            meta = dict(meta, verified_fingerprint=fingerprint, verified_at=_time.iso(_time.now()))
            if not check_mode:
                _write_atomic(META_NAME, _dump_meta(meta), vfd, 0o644, uid, gid)
                os.fsync(vfd)
            return {"changed": True, "meta": meta, "before": before}
        finally:
            os.close(vfd)

    # ---- changes -----------------------------------------------------------------
    def deploy(self, version, files, meta, check_mode=False, uid=-1, gid=-1, modes=None, keep=3):
        """Write versions/<version> (unless already complete) and point ``current`` at it.

        files: {file name: bytes or None}. None means "must already be there" (redeploy
        by id without the secret, e.g. an ephemeral controller resuming).
        Returns a result dict: changed, previous, current, written, flipped, pruned, meta.
        """
        version = check_component(version, "credential_id")
        modes = dict(FILE_MODES, **(modes or {}))
        for fname in files:
            if fname not in modes:
                raise DeployError("unknown bundle file %r" % fname)
        previous = self.current()
        result = {"changed": False, "previous": previous, "current": version, "written": [], "flipped": False,
                  "pruned": []}
        vfd = None
        try:
            try:
                vfd = _open_dir(version, self.versions_fd, False, what="version folder") if self.versions_fd else None
            except FileNotFoundError:
                vfd = None
            existing_meta = _load_meta(vfd) if vfd is not None else None
            complete = vfd is not None and _version_complete(vfd, existing_meta, files)
            # an existing complete version of the same credential is kept as is
            if complete and meta.get("fingerprint") and existing_meta.get("fingerprint") \
                    and meta["fingerprint"] != existing_meta["fingerprint"]:
                raise DeployError(
                    "versions/%s on this host holds a different credential (fingerprint %s, expected %s); "
                    "remove it by hand if it is stale" % (version, existing_meta["fingerprint"], meta["fingerprint"]))
            if not complete:
                missing = [f for f, data in files.items() if data is None]
                if missing:
                    raise DeployError(
                        "versions/%s is not (completely) deployed on this host and no content for %s was given; "
                        "the controller's key store no longer has this credential" % (version, ", ".join(missing)))
                result["changed"] = True
                result["written"] = sorted(files)
                if not check_mode:
                    if vfd is None:
                        vfd = _open_dir(version, self.versions_fd, True, what="version folder")
                    digests = {}
                    for fname in sorted(files):
                        _write_atomic(fname, files[fname], vfd, modes[fname], uid, gid)
                        digests[fname] = sha256_hex(files[fname])
                    new_meta = dict(meta)
                    new_meta.update({
                        "format": META_FORMAT,
                        "credential_id": version,
                        "name": self.name,
                        "deployed_at": _time.iso(_time.now()),
                        "previous": previous if previous != version else (existing_meta or {}).get("previous"),
                        "files": digests,
                        "complete": True,
                        "verified_at": None,
                        "verified_fingerprint": None,
                    })
                    _write_atomic(META_NAME, _dump_meta(new_meta), vfd, 0o644, uid, gid)
                    os.fsync(vfd)
                    existing_meta = new_meta
                else:
                    existing_meta = dict(meta, credential_id=version, previous=previous)
            elif not check_mode:
                for fname in files:
                    if _fix_attrs(fname, vfd, modes[fname], uid, gid):
                        result["changed"] = True
            elif any(_attrs_differ(fname, vfd, modes[fname], uid, gid) for fname in files):
                result["changed"] = True
            if previous != version:
                result["changed"] = True
                result["flipped"] = True
                if not check_mode:
                    _flip(self.root_fd, version)
            result["meta"] = existing_meta
        finally:
            if vfd is not None:
                os.close(vfd)
        if not check_mode and keep:
            result["pruned"] = self.prune(keep, protect=(version, previous))
            if result["pruned"]:
                result["changed"] = True
        return result

    def rollback(self, target=None, check_mode=False, now=None, allow_expired=False, only_from=None):
        """Point ``current`` back at ``target`` (default: the current version's recorded previous).

        only_from: roll back only when ``current`` points at this version (a failed deploy that never
        flipped leaves the host alone).
        """
        cur = self.current()
        if only_from and cur != only_from:
            return {"changed": False, "previous": cur, "current": cur, "flipped": False,
                    "msg": "current points at %s, not %s: nothing to roll back" % (cur, only_from)}
        if target is None:
            cur_meta = self.meta(cur) if cur else None
            target = (cur_meta or {}).get("previous")
        if not target:
            return {"changed": False, "previous": cur, "current": cur, "flipped": False,
                    "msg": "nothing to roll back to: no previous version is recorded"}
        target = check_component(target, "credential_id")
        if target == cur:
            return {"changed": False, "previous": cur, "current": cur, "flipped": False}
        meta = self.meta(target)
        if meta is None or meta.get("complete") is not True:
            raise DeployError("cannot roll back to versions/%s: it is missing or incomplete on this host" % target)
        expiry = _time.parse_or_none(meta.get("expires") or meta.get("expiry"))
        now = now or _time.now()
        if expiry is not None and expiry <= now and not allow_expired:
            raise DeployError("refusing to roll back to versions/%s: that credential expired at %s"
                              % (target, meta.get("expires") or meta.get("expiry")))
        if not check_mode:
            _flip(self.root_fd, target)
        return {"changed": True, "previous": cur, "current": target, "flipped": True, "meta": meta}

    def prune(self, keep, protect=()):
        """Remove the oldest version folders beyond ``keep`` (never ``current`` or ``protect``)."""
        cur = self.current()
        keep_set = set(p for p in protect if p) | ({cur} if cur else set())
        candidates = []
        for version in self.versions():
            if version in keep_set:
                continue
            meta = self.meta(version) or {}
            candidates.append((meta.get("deployed_at") or "", version))
        candidates.sort()
        excess = len(candidates) + len(keep_set) - keep
        removed = []
        for _unused, version in candidates[:max(0, excess)]:
            self._remove_version(version)
            removed.append(version)
        return removed

    def _remove_version(self, version):
        vfd = _open_dir(version, self.versions_fd, False, what="version folder")
        try:
            for entry in os.listdir(vfd):
                st = _lstat(entry, vfd)
                if st is not None and not stat.S_ISDIR(st.st_mode):
                    os.unlink(entry, dir_fd=vfd)
        finally:
            os.close(vfd)
        os.rmdir(version, dir_fd=self.versions_fd)


def _attrs_differ(name, dir_fd, mode, uid, gid):
    st = _lstat(name, dir_fd)
    if st is None:
        return True
    return stat.S_IMODE(st.st_mode) != mode or (uid != -1 and st.st_uid != uid) or (gid != -1 and st.st_gid != gid)


def _dump_meta(meta):
    return (json.dumps(meta, indent=2, sort_keys=True) + "\n").encode("utf-8")
