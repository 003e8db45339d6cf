"""A module whose library is missing says what to install, or, for Mastercard's libraries on a Python they do
not support, which Python to use (issue 13 §4). Only the running Python's version is stood in for: this
machine has no Python 3.13 to run a module under."""

from __future__ import annotations

import sys

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import devapi, errors
from ansible_collections.mcdev.credentials.plugins.modules import mc_revoke, mc_verify
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module


@pytest.mark.parametrize("package, version, outside", [
    ("mastercard-oauth1-signer", (3, 11, 7), False),
    ("mastercard-oauth1-signer", (3, 12, 0), False),
    ("mastercard-oauth1-signer", (3, 13, 1), True),
    ("mastercard-oauth1-signer", (3, 14, 0), True),
    ("mastercard-oauth2-client", (3, 10, 12), True),
    ("mastercard-oauth2-client", (3, 13, 1), False),
    ("cryptography", (3, 13, 1), False),
])
def test_python_window(package, version, outside):
    problem = errors.python_window_problem(package, version, "/usr/bin/python3")
    assert (problem is not None) is outside
    if outside:
        assert "Python 3.11 or 3.12" in problem and "runs Python %s (/usr/bin/python3)" % ".".join(map(str, version)) \
            in problem and "ansible_python_interpreter" in problem


REVOKE_ARGS = dict(project_id="7f0c6c36-3f7b-4a3e-9a49-2f1c2b0e1d55", credential_id="c-1", signing_key_content="x",
                   consumer_key="ck", api_url="https://127.0.0.1:1/developers", environment="sandbox",
                   kind="mtls", confirm="REVOKE")


def _without_signer(monkeypatch):
    monkeypatch.setattr(devapi, "HAS_OAUTH1", False)
    monkeypatch.setattr(devapi, "OAUTH1_IMPORT_ERROR", "ModuleNotFoundError: No module named 'oauth1'")


def test_api_module_outside_the_window_names_the_python(monkeypatch):
    _without_signer(monkeypatch)
    monkeypatch.setattr(errors, "_running_version", lambda: (3, 13, 1))
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_revoke, REVOKE_ARGS)
    msg = failed.value.result["msg"]
    assert msg.startswith("Mastercard's libraries need Python 3.11 or 3.12")
    assert "this host runs Python 3.13.1 (%s)" % sys.executable in msg
    assert "No module named" not in msg


def test_api_module_inside_the_window_says_what_to_install(monkeypatch):
    _without_signer(monkeypatch)
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_revoke, REVOKE_ARGS)
    msg = failed.value.result["msg"]
    assert "mastercard-oauth1-signer" in msg and "Python 3.11 or 3.12" not in msg
    assert "No module named 'oauth1'" in failed.value.result["exception"]


def test_probe_needing_the_oauth2_client_on_an_old_python(monkeypatch, tmp_path):
    # A real ImportError: the library is made unimportable for this test.
    monkeypatch.setitem(sys.modules, "mastercard_oauth2_client", None)
    monkeypatch.setattr(errors, "_running_version", lambda: (3, 10, 12))
    key = tmp_path / "k.pem"
    key.write_text("unused")
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_verify, dict(kind="oauth2", private_key_path=str(key), token_url="https://127.0.0.1:1/t",
                                   client_id="c", kid="k"))
    assert failed.value.result["msg"].startswith("Mastercard's libraries need Python 3.11 or 3.12")
    assert "3.10.12" in failed.value.result["msg"]
