# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How a module ends when something went wrong that no handler foresaw.

Imports nothing heavy: every module, host-side ones included, wraps its main in it.
"""

from __future__ import annotations

import contextlib
import traceback


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
