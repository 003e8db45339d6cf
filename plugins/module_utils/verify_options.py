# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The probe options: mc_verify's, and mc_deploy's ``verify`` suboptions.

Apart from verify.py so that mc_deploy can declare them without loading the probe code, which it imports only
when a task sets ``verify`` (tests/unit/plugins/modules/test_module_imports.py pins this).
"""

from __future__ import annotations

KINDS = ("mtls", "oauth1", "oauth2")


def probe_argument_spec():
    """The probe options of mc_verify, also mc_deploy's ``verify`` suboptions (a fresh copy per call).

    Where the key and certificate come from is not here: mc_verify takes paths, mc_deploy uses the version it
    just wrote.
    """
    return dict(
        kind=dict(type="str", required=True, choices=list(KINDS)),
        url=dict(type="str"),
        method=dict(type="str", default="GET", choices=["GET", "POST", "HEAD"]),
        expected_fingerprint=dict(type="str"),
        consumer_key=dict(type="str", no_log=False),
        client_id=dict(type="str"),
        kid=dict(type="str"),
        token_url=dict(type="str", no_log=False),
        issuer=dict(type="str"),
        scopes=dict(type="list", elements="str", default=[]),
        ca_path=dict(type="path"),
        validate_certs=dict(type="bool", default=True),
        timeout=dict(type="int", default=10),
    )


def timeout_problem(timeout, option="timeout"):
    """The failure message for a timeout that is not a positive number of seconds, else None."""
    if timeout <= 0:
        return "%s must be a positive number of seconds, got %s" % (option, timeout)
    return None


#: What each kind needs among the probe options.
PROBE_REQUIRED_IF = [
    ("kind", "mtls", ("url",)),
    ("kind", "oauth1", ("url", "consumer_key")),
    ("kind", "oauth2", ("token_url", "client_id", "kid")),
]
