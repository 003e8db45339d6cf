"""Run a module's main() in-process and catch its result.

exit_json and fail_json are replaced by exceptions carrying the result, so a
test sees exactly what the module would have printed.
"""

from __future__ import annotations

import contextlib
import datetime
import json
from unittest import mock

from ansible.module_utils import basic
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID
from ansible.module_utils.common.text.converters import to_bytes

try:
    from ansible.module_utils.testing import patch_module_args  # ansible-core >= 2.19
except ImportError:  # ansible-core <= 2.18
    @contextlib.contextmanager
    def patch_module_args(args=None):
        old = basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args or {}}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = old


class ModuleExit(BaseException):
    """The module called exit_json; .result holds what it returned.

    BaseException, like the SystemExit the real exit_json raises, so that a module's last-resort
    handler (errors.unforeseen_errors) lets it through.
    """

    def __init__(self, result):
        super().__init__(result)
        self.result = result


class ModuleFail(BaseException):
    """The module called fail_json; .result holds what it returned (msg included)."""

    def __init__(self, result):
        super().__init__(result.get("msg"))
        self.result = result


def _exit_json(self, **kwargs):
    kwargs.setdefault("changed", False)
    raise ModuleExit(kwargs)


def _fail_json(self, msg, **kwargs):
    kwargs["msg"] = msg
    kwargs["failed"] = True
    raise ModuleFail(kwargs)


def run_module(module, args, check_mode=False, diff=False):
    """Run module.main() with args; return the result, or raise ModuleFail carrying it."""
    full_args = dict(args, _ansible_check_mode=check_mode, _ansible_diff=diff)
    warned = []  # module.warn(), which the real exit_json reports as the result's warnings

    def _warn(self, warning):
        warned.append(warning)

    with mock.patch.object(basic.AnsibleModule, "exit_json", _exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", _fail_json), \
            mock.patch.object(basic.AnsibleModule, "warn", _warn), \
            patch_module_args(full_args):
        try:
            module.main()
        except ModuleExit as done:
            if warned:
                done.result["warnings"] = list(done.result.get("warnings") or []) + warned
            return done.result
    raise AssertionError("the module returned without calling exit_json or fail_json")


def self_signed_certificate(key, common_name="example-1682563200", days=395):
    """A certificate for ``key``, as a stand-in for the one Mastercard issues."""
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=days)).sign(key, hashes.SHA256()))


def assert_no_secrets(result, *secrets):
    """Nothing in the module's result may carry key bytes or the given passphrases."""
    text = json.dumps(result)
    assert "PRIVATE KEY" not in text
    for secret in secrets:
        if secret:
            assert secret not in text, "a secret leaked into the result"
