# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared pieces of the file-writing modules.

Atomic writes, backups, the ``regenerate`` ladder, parent-directory checks,
file argument helpers, and the one place that turns errors into fail_json.
"""

from __future__ import annotations

import os

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _io

REGENERATE_CHOICES = ["never", "fail", "partial_idempotence", "full_idempotence", "always"]

# What is found at a key path, as the ladder sees it.
EXISTING_ABSENT = "absent"
EXISTING_MATCHES = "matches"
EXISTING_DIFFERS = "differs"        # readable, but not of the asked type/size/curve
EXISTING_UNREADABLE = "unreadable"  # corrupt, or the passphrase does not open it

PRIVATE_MODE = _io.PRIVATE_MODE
PUBLIC_MODE = 0o644


class InputError(CollectionError):
    """A refusal about the task's options or the files it points at; the message says what to change."""


# ----------------------------------------------------------------- the ladder

def needs_regeneration(regenerate, existing, force=False, what="the private key", reason=None):
    """Whether to create a new key, given what exists. Raises InputError to refuse.

    ``existing`` is one of the EXISTING_* values; ``reason`` says why an
    existing key differs or cannot be read. A refusal names the option value
    that would allow the change, so no key is ever replaced without being asked.
    """
    if regenerate not in REGENERATE_CHOICES:
        raise InputError("regenerate=%s is not known; use one of %s" % (regenerate, ", ".join(REGENERATE_CHOICES)))
    if existing == EXISTING_ABSENT:
        return True
    if force or regenerate == "always":
        return True
    detail = " (%s)" % reason if reason else ""
    if existing == EXISTING_MATCHES:
        return False
    if existing == EXISTING_DIFFERS:
        if regenerate in ("partial_idempotence", "full_idempotence"):
            return True
        if regenerate == "never":
            return False
        raise InputError("%s differs from the options%s; set regenerate=partial_idempotence to replace it "
                         "(backup=true keeps a copy), or change the options to match it" % (what, detail))
    if existing == EXISTING_UNREADABLE:
        if regenerate == "full_idempotence":
            return True
        problem = reason or "%s cannot be read" % what
        raise InputError("%s; fix the passphrase or the file, or set regenerate=full_idempotence to replace %s "
                         "(backup=true keeps a copy)" % (problem, what))
    raise ValueError("unknown existing state %r" % existing)


# -------------------------------------------------------------------- files

def check_parent_dir(path, option):
    """Refuse a path whose directory is missing or not writable, before anything is generated."""
    parent = os.path.dirname(os.path.abspath(path)) or "."
    if not os.path.isdir(parent):
        raise InputError("%s: the directory %s does not exist; create it first (ansible.builtin.file state=directory)"
                         % (option, parent))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError("%s: the directory %s is not writable by this user; fix its permissions or use become"
                         % (option, parent))
    if os.path.isdir(path):
        raise InputError("%s: %s is a directory; give a file path" % (option, path))


def read_if_exists(path, option):
    """The file's bytes, or None when it does not exist. Unreadable files are refused, not skipped."""
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise InputError("%s: %s is a directory; give a file path" % (option, path)) from None
    except PermissionError:
        raise InputError("%s: %s cannot be read (permission denied); fix its owner/mode or use become"
                         % (option, path)) from None


def read_required(path, option):
    """The file's bytes; refuse a missing file naming the option."""
    data = read_if_exists(path, option)
    if data is None:
        raise InputError("%s: %s does not exist" % (option, path))
    return data


def file_args_for(module, path, default_mode):
    """The file common arguments for ``path``, with ``default_mode`` when the task sets no mode."""
    file_args = module.load_file_common_arguments(module.params, path=path)
    if file_args.get("mode") is None:
        file_args["mode"] = default_mode
    return file_args


def atomic_write(module, path, data, default_mode=PRIVATE_MODE):
    """Write ``data`` atomically, then apply owner/group/mode/... from the task. Returns True."""
    _io.write_atomically(path, data)
    module.set_fs_attributes_if_different(file_args_for(module, path, default_mode), True)
    return True


def apply_file_args(module, path, default_mode, changed):
    """Apply the task's file arguments to an existing file; returns the new changed flag."""
    if module.check_mode:
        return changed or _file_args_would_change(module, path, default_mode)
    return module.set_fs_attributes_if_different(file_args_for(module, path, default_mode), changed)


def _file_args_would_change(module, path, default_mode):
    file_args = file_args_for(module, path, default_mode)
    mode = file_args.get("mode")
    if isinstance(mode, int):
        try:
            return (os.stat(path).st_mode & 0o7777) != mode
        except OSError:
            return True
    return False


def backup_local(module, path, private=False):
    """A timestamped copy of ``path`` next to it, or None when there is nothing to keep.

    The copy keeps the file's mode, except that the copy of a private key or keystore (``private``)
    is never readable by group or others, whatever the old file's mode was.
    """
    if not os.path.exists(path):
        return None
    backup = module.backup_local(path)
    if private and backup:
        os.chmod(backup, os.stat(backup).st_mode & 0o700)
    return backup
