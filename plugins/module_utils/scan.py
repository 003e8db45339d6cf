# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find and read certificate files on a host, fast, in one process.

PRIVATE to this collection: the API may change without notice.

mc_credential_info scans thousands of files in one task: paths are walked
with os.scandir, each file is read once and parsed in-process with
cryptography (via crypto.py); no subprocess, no per-file module run.
"""

from __future__ import annotations

import fnmatch
import glob
import os

from ansible_collections.mcdev.credentials.plugins.module_utils import _time
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto

DEFAULT_PATTERNS = ("*.pem", "*.crt", "*.cer", "*.der", "*.p12", "*.pfx")
_GLOB_CHARS = set("*?[")
_MAX_FILE_BYTES = 1024 * 1024  # certificates and keystores are small; skip anything larger


def _is_glob(path):
    return any(ch in _GLOB_CHARS for ch in path)


def gather_files(paths, patterns=DEFAULT_PATTERNS, recurse=False, follow_symlinks=False, max_files=None):
    """Expand paths (files, directories, glob patterns) to a sorted, de-duplicated file list.

    Returns ``(files, problems)``; problems are ``{"path", "error"}`` for paths
    that do not exist or cannot be listed. Files named explicitly are scanned
    whatever their name; files found in directories must match ``patterns``.
    Directory symlinks are followed only with ``follow_symlinks`` (the
    ``current -> versions/<id>`` layout would otherwise list a file twice);
    files are de-duplicated by their real path anyway.
    """
    patterns = list(patterns or DEFAULT_PATTERNS)
    files = []
    problems = []
    seen = set()

    def add(path, stat=None):
        # One stat per file (device + inode) instead of realpath's lstat per path component.
        try:
            stat = stat or os.stat(path)
        except OSError as exc:
            problems.append({"path": path, "error": "cannot read %s: %s" % (path, exc.strerror or exc)})
            return
        key = (stat.st_dev, stat.st_ino)
        if key in seen:
            return
        seen.add(key)
        files.append(path)

    def matches(name):
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

    def walk(directory, visited):
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            problems.append({"path": directory, "error": "cannot list %s: %s" % (directory, exc.strerror or exc)})
            return
        subdirs = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=follow_symlinks):
                    if recurse:
                        subdirs.append(entry.path)
                elif entry.is_file(follow_symlinks=True) and matches(entry.name):
                    add(entry.path, entry.stat(follow_symlinks=True))
            except OSError:
                continue
        for sub in sorted(subdirs):
            real = os.path.realpath(sub)
            if real in visited:
                continue  # a symlink loop
            walk(sub, visited | {real})

    for raw in paths or []:
        path = os.path.expanduser(str(raw))
        if _is_glob(path):
            hits = sorted(glob.glob(path, recursive=True))
            if not hits:
                problems.append({"path": path, "error": "no file matches %s" % path})
            for hit in hits:
                if os.path.isdir(hit):
                    walk(hit, {os.path.realpath(hit)})
                elif os.path.isfile(hit):
                    add(hit)
        elif os.path.isdir(path):
            walk(path, {os.path.realpath(path)})
        elif os.path.isfile(path):
            add(path)
        elif os.path.lexists(path):
            problems.append({"path": path, "error": "%s is not a regular file or directory" % path})
        else:
            problems.append({"path": path, "error": "%s does not exist" % path})
        if max_files and len(files) > max_files:
            break
    return files, problems


def _format_of(data):
    head = data.lstrip()[:11]
    if head.startswith(b"-----BEGIN"):
        return "pem"
    if crypto._looks_like_pkcs12(data):
        return "pkcs12"
    return "der"


def read_certificate_file(path, passphrases=(), now=None):
    """One file -> ``(entry, skipped_reason)``.

    ``entry`` has the leaf certificate's facts (crypto.certificate_info) plus
    ``path``, ``format``, ``chain_length``; or ``{"path", "error"}`` when the file
    is a certificate container that cannot be read. ``skipped_reason`` is set
    (and entry None) for files that hold no certificate at all, such as a PEM
    private key next to its certificate.
    """
    try:
        size = os.path.getsize(path)
        if size > _MAX_FILE_BYTES:
            return None, "larger than %d bytes" % _MAX_FILE_BYTES
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return {"path": path, "error": "cannot read %s: %s" % (path, exc.strerror or exc)}, None
    if not data.strip():
        return None, "empty"
    fmt = _format_of(data)
    if fmt == "pem" and b"CERTIFICATE-----" not in data:
        return None, "no certificate in this PEM file"
    if fmt == "der" and data[:1] != b"\x30":
        return None, "not DER"
    try:
        certs = crypto.certificates_in(data, passphrases, path)
    except crypto.CryptoError as exc:
        if fmt == "der":
            # A DER file that is not a certificate (a DER key, say) is not an error.
            return None, "not a DER certificate"
        return {"path": path, "format": fmt, "error": str(exc)}, None
    if not certs:
        return None, "no certificate in this keystore"
    entry = crypto.certificate_info(certs[0], now)
    entry["path"] = path
    entry["format"] = fmt
    entry["chain_length"] = len(certs)
    return entry, None


def scan(paths, patterns=DEFAULT_PATTERNS, recurse=False, follow_symlinks=False, passphrases=(), now=None):
    """Gather and read. Returns ``(entries, errors, skipped_count, files_seen)``."""
    now = now or _time.now()
    files, errors = gather_files(paths, patterns, recurse, follow_symlinks)
    entries = []
    skipped = 0
    for path in files:
        entry, why = read_certificate_file(path, passphrases, now)
        if entry is None:
            skipped += 1
        elif "error" in entry:
            errors.append(entry)
        else:
            entries.append(entry)
    return entries, errors, skipped, len(files)
