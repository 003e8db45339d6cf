# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mc_revoke run in-process against the emulator (real HTTPS, real OAuth 1.0a signing)."""

from __future__ import annotations

import json
import time

import pytest

from ansible_collections.mcdev.credentials.plugins.modules import mc_revoke
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module


@pytest.fixture(scope="module")
def account(emulator):
    return emulator.new_account()


@pytest.fixture
def conn(emulator, account, monkeypatch):
    for name in ("MC_DEVAPI_URL", "MC_DEVAPI_CONSUMER_KEY", "MC_DEVAPI_SIGNING_KEY_PATH",
                 "MC_DEVAPI_SIGNING_KEY_CONTENT", "MC_DEVAPI_SIGNING_KEY_PASSWORD", "MC_DEVAPI_CA_PATH"):
        monkeypatch.delenv(name, raising=False)
    return dict(api_url=emulator.info["api_url"], consumer_key=account["consumer_key"],
                signing_key_content=account["signing_key_pem"], ca_path=emulator.info["ca_path"], retries=0)


@pytest.fixture
def project(emulator, account):
    return emulator.new_project(account["account_id"], auth_model="MTLS")["id"]


def seed(emulator, project_id, **body):
    body.setdefault("type", "MTLS")
    cred = emulator.admin("POST", "/projects/%s/credentials" % project_id, body)
    cred.pop("private_key_pem", None)
    return cred


def run(conn, project_id, check_mode=False, diff=False, **args):
    full = dict(conn, project_id=project_id, environment="sandbox", kind="mtls")
    full.update(args)
    return run_module(mc_revoke, full, check_mode=check_mode, diff=diff)


def api_status(conn, project_id, cred_id):
    from ansible_collections.mcdev.credentials.plugins.module_utils import devapi
    with devapi.client_from_params(conn) as client:
        return client.get_credential(project_id, cred_id).status


@pytest.mark.parametrize("confirm", [None, "revoke", "yes", "REVOKE "])
def test_confirm_must_be_exactly_revoke_and_nothing_is_called(emulator, conn, project, confirm):
    old = seed(emulator, project)
    seed(emulator, project)
    before = emulator.admin("GET", "/counters")
    args = {"credential_id": [old["id"]]}
    if confirm is not None:
        args["confirm"] = confirm
    with pytest.raises(ModuleFail) as info:
        run(conn, project, **args)
    assert "confirm to REVOKE" in info.value.result["msg"]
    assert info.value.result["api_calls"] == 0
    assert emulator.admin("GET", "/counters") == before
    assert api_status(conn, project, old["id"]) == "ACTIVE"


def test_check_apply_idempotent_by_alias_with_diff(emulator, conn, project):
    old = seed(emulator, project, alias="payments-1700000000")
    new = seed(emulator, project, alias="payments-1800000000")

    checked = run(conn, project, check_mode=True, diff=True, alias=["payments-1700000000"], confirm="REVOKE")
    assert checked["changed"] is True
    assert [r["id"] for r in checked["revoked"]] == [old["id"]]
    assert checked["api_calls"] == 1  # the list only; no DELETE in check mode
    assert checked["diff"]["before"]["credentials"][0]["status"] == "ACTIVE"
    assert checked["diff"]["after"]["credentials"][0]["status"] == "REVOKED"
    assert api_status(conn, project, old["id"]) == "ACTIVE"

    applied = run(conn, project, diff=True, alias=["payments-1700000000"], confirm="REVOKE")
    assert applied["changed"] is True
    assert applied["revoked"][0]["status"] == "REVOKED"
    assert applied["revoked"][0]["fingerprint"] == old["fingerprint"]
    assert applied["remaining_active"] == [new["id"]]
    assert applied["api_calls"] == 2  # list + DELETE
    assert api_status(conn, project, old["id"]) == "REVOKED"

    again = run(conn, project, alias=["payments-1700000000"], confirm="REVOKE")
    assert again["changed"] is False
    assert again["revoked"] == [] and again["already_revoked"] == [old["id"]]
    assert again["api_calls"] == 1


def test_refuses_last_active_unless_force_last(emulator, conn, project):
    only = seed(emulator, project)
    seed(emulator, project, status="REVOKED")
    with pytest.raises(ModuleFail) as info:
        run(conn, project, credential_id=[only["id"]], confirm="REVOKE")
    result = info.value.result
    assert "last active" in result["msg"] and "force_last=true" in result["msg"]
    assert result["reason"] == "last_active" and result["api_calls"] == 1
    assert api_status(conn, project, only["id"]) == "ACTIVE"

    forced = run(conn, project, credential_id=[only["id"]], confirm="REVOKE", force_last=True)
    assert forced["changed"] is True and forced["remaining_active"] == []


def test_refuses_in_use_fingerprint_unless_ignored(emulator, conn, project):
    old = seed(emulator, project)
    seed(emulator, project)
    in_use = [":".join(old["fingerprint"][i:i + 2] for i in range(0, 64, 2)).upper(), "ab" * 32]
    with pytest.raises(ModuleFail) as info:
        run(conn, project, fingerprint=[old["fingerprint"]], in_use_fingerprints=in_use, confirm="REVOKE")
    assert "still in use" in info.value.result["msg"] and "ignore_in_use=true" in info.value.result["msg"]
    assert info.value.result["refused"][0]["id"] == old["id"]
    assert api_status(conn, project, old["id"]) == "ACTIVE"

    done = run(conn, project, fingerprint=[old["fingerprint"]], in_use_fingerprints=in_use, ignore_in_use=True,
               confirm="REVOKE")
    assert [r["id"] for r in done["revoked"]] == [old["id"]]


def test_selector_all_but_newest(emulator, conn, project):
    now = time.time()
    creds = [seed(emulator, project, notBefore=now - (300 - 100 * i) * 86400) for i in range(3)]
    result = run(conn, project, selector={"all_but_newest": 1}, confirm="REVOKE")
    assert sorted(r["id"] for r in result["revoked"]) == sorted(c["id"] for c in creds[:2])
    assert result["remaining_active"] == [creds[2]["id"]]
    assert result["api_calls"] == 3
    again = run(conn, project, selector={"all_but_newest": 1}, confirm="REVOKE")
    assert again["changed"] is False and again["api_calls"] == 1


def test_selector_expired(emulator, conn, project):
    now = time.time()
    expired = seed(emulator, project, notBefore=now - 400 * 86400, expiryDate=now - 86400)
    live = seed(emulator, project)
    result = run(conn, project, selector="expired", confirm="REVOKE")
    assert [r["id"] for r in result["revoked"]] == [expired["id"]]
    assert result["remaining_active"] == [live["id"]]


def test_unknown_and_wrong_environment_ids_are_named(emulator, conn, project):
    seed(emulator, project)
    prod = seed(emulator, project, environment="PRODUCTION")
    with pytest.raises(ModuleFail) as info:
        run(conn, project, credential_id=["does-not-exist", prod["id"]], confirm="REVOKE")
    msg = info.value.result["msg"]
    assert "credential_id does-not-exist" in msg
    assert "it is a production mtls credential, not sandbox mtls" in msg
    assert "nothing was revoked" in msg


def test_bad_selector_names_the_option(conn, project):
    with pytest.raises(ModuleFail) as info:
        run(conn, project, selector={"all_but_newest": -2}, confirm="REVOKE")
    assert "selector" in info.value.result["msg"] and info.value.result["api_calls"] == 0


def test_api_guard_is_reported_with_reason_code(emulator, conn, project):
    only = seed(emulator, project)
    emulator.admin("POST", "/rules", {"guard_last_active": True})
    try:
        with pytest.raises(ModuleFail) as info:
            run(conn, project, credential_id=[only["id"]], confirm="REVOKE", force_last=True)
    finally:
        emulator.admin("POST", "/rules", {"guard_last_active": False})
    result = info.value.result
    assert result["reason_code"] == "REVOKE_LAST_ACTIVE_CREDENTIAL"
    assert result["status"] == 409
    assert result["msg"].startswith("Revoking credential %s" % only["id"])
    assert "replacement" in result["msg"]


def test_project_not_found_is_a_clear_failure(conn):
    with pytest.raises(ModuleFail) as info:
        run(conn, "no-such-project", credential_id=["x"], confirm="REVOKE")
    assert info.value.result["reason_code"] == "PROJECT_NOT_FOUND"
    assert info.value.result["status"] == 404


def test_no_secret_in_results(emulator, conn, account, project):
    old = seed(emulator, project)
    seed(emulator, project)
    result = run(conn, project, credential_id=[old["id"]], confirm="REVOKE", diff=True)
    text = json.dumps(result)
    assert account["signing_key_pem"].splitlines()[1] not in text
