# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mc_verify in-process against the emulator: success, failure causes, fail_on_error."""

from __future__ import annotations

import json

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.mcdev.credentials.plugins.modules import mc_verify
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module

PASSWORD = "p12-Pa55word"


@pytest.fixture(scope="module")
def creds(emulator, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mc_verify")
    account = emulator.new_account()
    project = emulator.new_project(account["account_id"], auth_model="MTLS")["id"]
    out = {}
    for name, status in (("good", "ACTIVE"), ("revoked", "REVOKED")):
        cred = emulator.admin("POST", "/projects/%s/credentials" % project, {"type": "MTLS", "status": status})
        key = serialization.load_pem_private_key(cred["private_key_pem"].encode(), None)
        cert = x509.load_pem_x509_certificate(cred["certificate"].encode())
        path = tmp / (name + ".p12")
        path.write_bytes(pkcs12.serialize_key_and_certificates(
            b"keyalias", key, cert, None, serialization.BestAvailableEncryption(PASSWORD.encode())))
        out[name] = dict(cred, p12=str(path))
    return out


def args(emulator, cred, **extra):
    base = dict(kind="mtls", url=emulator.info["mtls_ping_url"], ca_path=emulator.info["ca_path"],
                pkcs12_path=cred["p12"], pkcs12_password=PASSWORD)
    base.update(extra)
    return base


def test_success_in_check_mode_too(emulator, creds):
    for check in (False, True):
        result = run_module(mc_verify, args(emulator, creds["good"]), check_mode=check)
        assert result["success"] is True and result["changed"] is False
        assert result["fingerprint"] == creds["good"]["fingerprint"]
        assert PASSWORD not in json.dumps(result)


def test_revoked_fails_the_task_with_the_cause(emulator, creds):
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, args(emulator, creds["revoked"]))
    result = info.value.result
    assert result["success"] is False and result["cause"] == "client_certificate_rejected"
    assert result["reason_code"] == "INVALID_CLIENT_CERT" and result["status"] == 422
    assert result["fingerprint"] == creds["revoked"]["fingerprint"]


def test_fail_on_error_false_returns_success_false(emulator, creds):
    result = run_module(mc_verify, args(emulator, creds["revoked"], fail_on_error=False))
    assert result["success"] is False and result["cause"] == "client_certificate_rejected"
    assert "failed" not in result


def test_bad_input_fails_even_without_fail_on_error(emulator, creds):
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, args(emulator, creds["good"], pkcs12_password="nope", fail_on_error=False))
    assert info.value.result["cause"] == "invalid_input"
    assert "pkcs12_password" in info.value.result["msg"]


@pytest.mark.parametrize("extra, words", [
    (dict(kind="oauth1"), "consumer_key"),
    (dict(kind="oauth2", url=None), "token_url"),
    (dict(timeout=0), "timeout"),
])
def test_missing_options_are_named(emulator, creds, extra, words):
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, args(emulator, creds["good"], **extra))
    assert words in info.value.result["msg"]
