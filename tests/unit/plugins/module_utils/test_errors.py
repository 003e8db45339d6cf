"""errors: one root for what the collection raises (CollectionError) and one way a driver ends with it (fail_from),
issue 12's "11 unrelated exception roots and 6 ways of turning one into fail_json"."""

from __future__ import annotations

import errno

import pytest
from ansible.module_utils.basic import AnsibleModule

from ansible_collections.mcdev.credentials.plugins.module_utils import devapi, errors, portal, state_pg
from ansible_collections.mcdev.credentials.plugins.module_utils.common import InputError
from ansible_collections.mcdev.credentials.plugins.module_utils.crypto import CryptoError
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import patch_module_args


@pytest.fixture
def failed(monkeypatch):
    captured = {}

    def fail_json(self, **kwargs):
        captured.update(kwargs)
        raise SystemExit(1)

    monkeypatch.setattr(AnsibleModule, "fail_json", fail_json)
    with patch_module_args({}):
        module = AnsibleModule(argument_spec={})

    def end(error, **facts):
        captured.clear()
        with pytest.raises(SystemExit):
            errors.fail_from(module, error, **facts)
        return dict(captured)
    return end


@pytest.mark.parametrize("error, expected", [
    (PermissionError(errno.EACCES, "Permission denied", "/etc/k.pem"), "/etc/k.pem: permission denied; fix its owner/mode"),
    (FileNotFoundError(errno.ENOENT, "No such file", "/x"), "/x does not exist"),
    (OSError(errno.ENOSPC, "No space left", "/x"), "no space left on the device holding /x"),
    (OSError(errno.EROFS, "Read-only file system", "/x"), "/x is on a read-only file system"),
    (OSError(errno.EIO, "I/O error", "/x"), "/x: I/O error"),
])
def test_a_failed_file_operation_reads_as_a_sentence(failed, error, expected):
    assert expected in failed(error)["msg"]


def test_an_api_error_carries_its_facts_and_the_driver_adds_its_own(failed):
    error = devapi.DevApiError(status=409, reason_code="CREDENTIAL_ALIAS_ALREADY_EXISTS", correlation_id="abc-123")
    result = failed(error, dest_path="/x")
    assert result["status"] == 409 and result["reason_code"] == "CREDENTIAL_ALIAS_ALREADY_EXISTS"
    assert result["correlation_id"] == "abc-123" and result["dest_path"] == "/x"
    assert "api_calls" not in result and "409 CREDENTIAL_ALIAS_ALREADY_EXISTS" in result["msg"]
    assert failed(devapi.DevApiConfigError("signing_key_path", "cannot read /k"))["option"] == "signing_key_path"
    assert failed(CryptoError("fix it")) == {"msg": "fix it"}
    assert failed(InputError("dest_path: nope"), msg="prefix: dest_path: nope")["msg"] == "prefix: dest_path: nope"


def test_retryable_and_portal_facts_travel_with_the_error(failed):
    assert failed(state_pg.SharedStateError("The shared rotation state is unreachable; run again"))["retryable"] is True
    supplied = failed(portal.SuppliedMaterialError("not the key of the CSR", "inbox/issued.pem"))
    assert supplied["status"] == portal.AWAITING_ISSUE and supplied["option"] == "issued" and supplied["api_calls"] == 0


def test_what_no_handler_foresaw_is_left_to_unforeseen_errors(failed):
    with pytest.raises(RuntimeError):
        failed(RuntimeError("boom"))
