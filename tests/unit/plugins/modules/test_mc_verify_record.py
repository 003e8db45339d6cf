# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mc_verify record: a credential deployed by mc_deploy, proved against the emulator's probe, recorded in meta.json."""

from __future__ import annotations

import base64
import json
import os

import pytest

from ansible_collections.mcdev.credentials.plugins.action.mc_deploy import build_bundle
from ansible_collections.mcdev.credentials.plugins.modules import mc_deploy, mc_verify
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import (
    ModuleFail,
    assert_no_secrets,
    run_module,
)

PASSWORD = "Record-p12-Pa55"


@pytest.fixture(scope="module")
def keys(emulator, tmp_path_factory):
    """Two ACTIVE OAuth 1.0a keys and a revoked one, their PEM files on the controller side."""
    work = tmp_path_factory.mktemp("record-src")
    account = emulator.new_account()
    project = emulator.new_project(account["account_id"], auth_model="OAUTH10A")["id"]
    out = {}
    for name, status in (("good", "ACTIVE"), ("other", "ACTIVE"), ("revoked", "REVOKED")):
        cred = emulator.admin("POST", "/projects/%s/credentials" % project,
                              {"type": "SIGNING", "oauthVersion": "1.0a", "status": status})
        key_path = work / (name + ".key.pem")
        key_path.write_text(cred["private_key_pem"])
        out[name] = dict(cred, key_path=str(key_path))
    return out


def deploy(base, cred, name="app"):
    """mc_deploy state=present of one credential (the bundle built as the action plugin builds it)."""
    files = build_bundle({"private_key_src": cred["key_path"], "certificate": cred["certificate"],
                          "keystore_password": PASSWORD, "key_formats": ["p12"]})
    return run_module(mc_deploy, {
        "path": base, "name": name, "credential_id": cred["id"],
        "credential": {"id": cred["id"], "fingerprint": cred["fingerprint"], "expires": cred["expiryDate"]},
        "_bundle": dict((k, base64.b64encode(v).decode()) for k, v in files.items()),
        "keystore_password": PASSWORD})


def verify_args(emulator, base, cred, name="app", record_id=None, **extra):
    args = {"kind": "oauth1", "url": emulator.info["oauth1_ping_url"], "ca_path": emulator.info["ca_path"],
            "consumer_key": cred["consumerKey"], "pkcs12_path": os.path.join(base, name, "current", "key.p12"),
            "pkcs12_password": PASSWORD,
            "record": {"path": base, "name": name, "credential_id": record_id or cred["id"]}}
    args.update(extra)
    return args


def read_meta(base, cid, name="app"):
    with open(os.path.join(base, name, "versions", cid, "meta.json"), encoding="utf-8") as handle:
        return json.load(handle)


def test_check_mode_then_record_then_idempotent(emulator, keys, tmp_path):
    base = str(tmp_path / "base")
    good = keys["good"]
    deploy(base, good)
    args = verify_args(emulator, base, good, expected_fingerprint=good["fingerprint"])

    check = run_module(mc_verify, args, check_mode=True, diff=True)
    assert check["success"] and check["changed"] and check["recorded"]["changed"]
    assert check["host_facts"]["verified_fingerprint"] == good["fingerprint"]  # predicted
    assert check["diff"]["before"]["verified_fingerprint"] is None
    assert check["diff"]["after"]["verified_fingerprint"] == good["fingerprint"]
    assert read_meta(base, good["id"])["verified_at"] is None  # nothing written

    first = run_module(mc_verify, args, diff=True)
    assert first["success"] and first["changed"]
    meta = read_meta(base, good["id"])
    assert meta["verified_fingerprint"] == good["fingerprint"] and meta["verified_at"]
    assert first["recorded"] == {"changed": True, "credential_id": good["id"],
                                 "verified_fingerprint": good["fingerprint"], "verified_at": meta["verified_at"],
                                 "version_path": os.path.join(base, "app", "versions", good["id"])}
    # the same host_facts as mc_deploy returns (what the rotation's finish step reads)
    query = run_module(mc_deploy, {"path": base, "name": "app", "state": "query"})
    assert first["host_facts"] == query["host_facts"]
    assert first["host_facts"]["current_id"] == good["id"]
    assert first["host_facts"]["verified_at"] == meta["verified_at"]
    assert_no_secrets(first, PASSWORD)

    again = run_module(mc_verify, args, check_mode=True)
    assert again["success"] and not again["changed"] and not again["recorded"]["changed"]
    again = run_module(mc_verify, args)
    assert again["success"] and not again["changed"] and not again["recorded"]["changed"]
    assert again["recorded"]["verified_at"] == meta["verified_at"]
    assert read_meta(base, good["id"]) == meta


def test_records_what_mc_deploy_state_verified_records(emulator, keys, tmp_path):
    base = str(tmp_path / "base")
    good = keys["good"]
    deploy(base, good, name="by-verify")
    deploy(base, good, name="by-deploy")
    run_module(mc_verify, verify_args(emulator, base, good, name="by-verify"))
    stamped = run_module(mc_deploy, {"path": base, "name": "by-deploy", "state": "verified",
                                     "credential_id": good["id"], "verified_fingerprint": good["fingerprint"]})
    assert stamped["changed"]
    by_verify, by_deploy = read_meta(base, good["id"], "by-verify"), read_meta(base, good["id"], "by-deploy")
    for meta in (by_verify, by_deploy):
        meta.pop("verified_at")
        meta.pop("deployed_at")
        meta.pop("name")
        meta.pop("files")  # a PKCS#12 is salted: two builds of the same bundle differ
    assert by_verify == by_deploy


def test_failed_verification_records_nothing(emulator, keys, tmp_path):
    base = str(tmp_path / "base")
    revoked = keys["revoked"]
    deploy(base, revoked)
    before = read_meta(base, revoked["id"])
    soft = run_module(mc_verify, verify_args(emulator, base, revoked, fail_on_error=False))
    assert soft["success"] is False and soft["changed"] is False
    assert "recorded" not in soft and "host_facts" not in soft
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, verify_args(emulator, base, revoked))
    assert "recorded" not in info.value.result
    assert read_meta(base, revoked["id"]) == before


def test_refuses_a_version_that_is_not_current(emulator, keys, tmp_path):
    base = str(tmp_path / "base")
    good, other = keys["good"], keys["other"]
    deploy(base, good)
    deploy(base, other)  # current -> other
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, verify_args(emulator, base, other, record_id=good["id"]))
    result = info.value.result
    assert result["success"] is True  # the probe worked; the record was refused
    assert "current points at %s" % other["id"] in result["msg"]
    assert read_meta(base, good["id"])["verified_at"] is None
    assert read_meta(base, other["id"])["verified_at"] is None


def test_refuses_a_fingerprint_other_than_the_deployed_one(emulator, keys, tmp_path):
    base = str(tmp_path / "base")
    good, other = keys["good"], keys["other"]
    deploy(base, good)
    args = verify_args(emulator, base, other, record_id=good["id"],
                       private_key_path=other["key_path"], certificate_path=str(tmp_path / "other.pem"))
    del args["pkcs12_path"], args["pkcs12_password"]
    (tmp_path / "other.pem").write_text(other["certificate"])
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, args)
    assert "is not the one deployed" in info.value.result["msg"]
    assert read_meta(base, good["id"])["verified_at"] is None


def test_record_needs_the_certificate(emulator, keys, tmp_path):
    base = str(tmp_path / "base")
    good = keys["good"]
    deploy(base, good)
    args = verify_args(emulator, base, good, private_key_path=good["key_path"])
    del args["pkcs12_path"], args["pkcs12_password"]
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, args)
    assert "certificate_path" in info.value.result["msg"]
    assert read_meta(base, good["id"])["verified_at"] is None


@pytest.mark.parametrize("record, words", [
    ({"path": "relative/dir", "name": "app", "credential_id": "c1"}, "absolute"),
    ({"path": "/tmp", "name": "../app", "credential_id": "c1"}, "name '../app' is not a safe folder name"),
    ({"path": "/tmp", "name": "app", "credential_id": "c1/.."}, "credential_id"),
])
def test_bad_record_target_fails_before_the_probe(emulator, keys, record, words):
    before = emulator.admin("GET", "/counters")
    args = verify_args(emulator, "/tmp", keys["good"])
    args["record"] = record
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, args)
    assert info.value.result["msg"].startswith("record: ") and words in info.value.result["msg"]
    assert emulator.admin("GET", "/counters") == before  # nothing was sent


def test_nothing_deployed_is_a_clear_failure(emulator, keys, tmp_path):
    good = keys["good"]
    src = tmp_path / "src.p12"
    deploy(str(tmp_path / "elsewhere"), good)
    src.write_bytes((tmp_path / "elsewhere" / "app" / "current" / "key.p12").read_bytes())
    args = verify_args(emulator, str(tmp_path / "empty"), good, pkcs12_path=str(src))
    with pytest.raises(ModuleFail) as info:
        run_module(mc_verify, args)
    assert "nothing is deployed" in info.value.result["msg"]
