# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a module ends when something goes wrong: the collection's one error root (:class:`CollectionError`), the one
way a driver turns an error into ``fail_json`` (:func:`fail_from`), a missing library, and what no handler foresaw.

Imports nothing heavy: every module, host-side ones included, wraps its main in it.
"""

from __future__ import annotations

import contextlib
import errno
import sys
import traceback


class CollectionError(Exception):
    """The root of every error the collection raises for a person to act on.

    ``str(error)`` is the sentence (``fail_json``'s ``msg``); :meth:`fields` the facts returned with it (the option to
    change, an HTTP status, a correlation id); ``retryable`` says the same task may succeed later without a change.
    """

    retryable = False

    def fields(self):
        return {}

    def result(self):
        """The keyword arguments of ``fail_json`` for this error (no None values)."""
        out = dict((key, value) for key, value in self.fields().items() if value is not None)
        out["msg"] = str(self)
        if self.retryable:
            out["retryable"] = True
        return out


HANDLED = (CollectionError, OSError)
"""What a driver ends with :func:`fail_from`; anything else is for :func:`unforeseen_errors`."""


def os_error_sentence(error):
    """One sentence a person can act on, for a failed file operation."""
    where = error.filename or "a file"
    if error.errno in (errno.EACCES, errno.EPERM):
        return "%s: permission denied; fix its owner/mode or use become" % where
    if error.errno == errno.ENOENT:
        return "%s does not exist; check the path" % where
    if error.errno == errno.ENOSPC:
        return "no space left on the device holding %s; free some space and re-run" % where
    if error.errno == errno.EROFS:
        return "%s is on a read-only file system; choose a writable path" % where
    return "%s: %s" % (where, error.strerror or error)


def fail_from(module, error, **facts):
    """End the module for ``error`` (one of :data:`HANDLED`), with ``facts`` (the driver's result keys) over the
    error's own. Anything else is re-raised, for :func:`unforeseen_errors`."""
    if isinstance(error, CollectionError):
        result = error.result()
    elif isinstance(error, OSError):
        result = {"msg": os_error_sentence(error)}
    else:
        raise error
    result.update(facts)
    module.fail_json(**result)


# The Python versions Mastercard's libraries declare (Requires-Python of the versions in requirements.txt).
# Outside them pip does not install the library, so an import error there means "wrong Python", not "pip install".
MASTERCARD_PYTHON = {
    "mastercard-oauth1-signer": ("1.9.2", (3, 8), (3, 13)),
    "mastercard-oauth2-client": ("1.0.0", (3, 11), None),
}
MASTERCARD_PYTHON_SENTENCE = (
    "Mastercard's libraries need Python 3.11 or 3.12 (mastercard-oauth1-signer 1.9.2 supports Python below 3.13, "
    "mastercard-oauth2-client 1.0.0 Python 3.11 and later)")


def _running_version():
    return tuple(sys.version_info)[:3]


def python_window_problem(package, version_info=None, executable=None):
    """The sentence for a Mastercard library that cannot be installed on this Python, or None."""
    if package not in MASTERCARD_PYTHON:
        return None
    version = tuple(version_info or _running_version())[:3]
    _release, lowest, below = MASTERCARD_PYTHON[package]
    if version[:2] >= lowest and (below is None or version[:2] < below):
        return None
    return ("%s; this host runs Python %s (%s). Set ansible_python_interpreter to a Python 3.11 or 3.12 that has "
            "the collection's requirements.txt installed" % (MASTERCARD_PYTHON_SENTENCE, ".".join(map(str, version)),
                                                             executable or sys.executable or "python"))


def fail_missing_library(module, package, exception=None):
    """End the module for a missing Python library: what to install, or, for Mastercard's, which Python to use."""
    from ansible.module_utils.basic import missing_required_lib  # pylint: disable=import-outside-toplevel

    msg = python_window_problem(package) or missing_required_lib(package)
    module.fail_json(msg=msg, exception=str(exception) if exception is not None else None)


@contextlib.contextmanager
def unforeseen_errors(module, inputs):
    """The last line of defence of a module's main: what no handler foresaw still ends in a sentence.

    ansible-core shows an uncaught error as "Module failed: <library text>",
    which reads like a message but says nothing a person can act on. This
    names the options the module was reading (paths by value; content options
    by name only, they may hold secrets) and what to check; the traceback goes
    where -vvv shows it. fail_json and exit_json end the module with
    SystemExit, which is not an Exception and passes through.
    """
    try:
        yield
    except Exception:  # pylint: disable=broad-exception-caught
        given = []
        for option in inputs:
            value = module.params.get(option)
            if value in (None, "", [], {}):
                continue
            shown = option.endswith(("_path", "_src", "_dir", "_store")) or option in ("path", "paths")
            given.append("%s=%s" % (option, value) if shown else option)
        module.fail_json(
            msg="The task stopped on input it could not read: check that %s hold%s what the option%s ask%s for (the "
                "key, CSR, certificate, keystore or state file of the documented format, not truncated), replace what "
                "does not, and re-run; -vvv shows where it stopped"
                % (", ".join(given) or "the options", "s" if len(given) == 1 else "", "" if len(given) == 1 else "s",
                   "s" if len(given) == 1 else ""),
            exception=traceback.format_exc())
