# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Writing files, in one place: every file the collection writes (keys, keystores, CSRs, the hosts' bundles and
meta.json, the ledger, the fleet cache, reports, work orders) is replaced atomically, so a reader sees the old file
or the new one, never half of either, and a crash leaves no temporary file behind. Standard library only: the
host-side modules use it too."""

from __future__ import annotations

import os
from contextlib import contextmanager

PRIVATE_MODE = 0o600


@contextmanager
def unlinked_on_failure(name, dir_fd=None):
    """Remove the temporary ``name`` if the block fails (even on KeyboardInterrupt), then re-raise."""
    try:
        yield
    except BaseException:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def write_atomically(path, data, mode=PRIVATE_MODE, uid=-1, gid=-1, dir_fd=None):
    """Replace ``path`` with the bytes ``data``: a temporary file created 0600 beside it (``O_EXCL|O_NOFOLLOW``, so a
    planted link is never followed), written, fsynced, given its owner and final ``mode``, then renamed over path.

    With ``dir_fd``, ``path`` is a name in that open directory (the hosts' folders, opened once without following
    links) and the caller makes the rename durable; without it, the directory is fsynced here.
    """
    own_dir = dir_fd is None
    if own_dir:
        directory = os.path.dirname(os.path.abspath(path))
        dir_fd = os.open(directory, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0))
        path = os.path.basename(path)
    try:
        tmp = ".%s.tmp-%d-%s" % (path, os.getpid(), os.urandom(4).hex())
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600,
                     dir_fd=dir_fd)
        with unlinked_on_failure(tmp, dir_fd):
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
                if uid != -1 or gid != -1:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, mode)
            finally:
                os.close(fd)
            os.rename(tmp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        if own_dir:
            try:
                os.fsync(dir_fd)  # make the rename itself durable
            except OSError:
                pass
    finally:
        if own_dir:
            os.close(dir_fd)


def write_if_changed(path, data, mode=PRIVATE_MODE):
    """:func:`write_atomically` unless ``path`` already holds exactly ``data``; True when it wrote.

    Keeps state files (ledger, fleet cache) from being rewritten, and their mtime moving, by runs that change nothing.
    """
    try:
        with open(path, "rb") as handle:
            if handle.read() == data:
                return False
    except FileNotFoundError:
        pass
    write_atomically(path, data, mode)
    return True
