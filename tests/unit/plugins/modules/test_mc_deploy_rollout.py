# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mc_deploy reload_command + verify: the host side of a rotation in one module run, against the emulator's probe.

The reload is a real command (a shell script that logs which version it loaded); the probe is real HTTPS
to the emulator; the files are real. Nothing is mocked but exit_json/fail_json.
"""

from __future__ import annotations

import base64
import os
import stat

import pytest

from ansible_collections.mcdev.credentials.plugins.action.mc_deploy import build_bundle
from ansible_collections.mcdev.credentials.plugins.modules import mc_deploy
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import test_mc_verify_record as record_tests
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import (
    ModuleFail,
    assert_no_secrets,
    run_module,
)

PASSWORD = record_tests.PASSWORD
read_meta = record_tests.read_meta
# The pytest fixture of the mc_verify record tests: two ACTIVE OAuth 1.0a keys and a revoked one.
keys = record_tests.keys

# Logs the version `current` points at; refuses (rc 3) while <base>/refuse-<version> exists.
RELOAD_SCRIPT = """#!/bin/sh
now=$(readlink "$1/app/current")
echo "$now" >> "$1/reloads.log"
if [ -e "$1/refuse-${now##*/}" ]; then echo "refusing ${now##*/}" >&2; exit 3; fi
"""


@pytest.fixture()
def base(tmp_path):
    base = tmp_path / "base"
    base.mkdir()
    script = tmp_path / "reload.sh"
    script.write_text(RELOAD_SCRIPT)
    script.chmod(stat.S_IRWXU)
    return str(base)


def reload_command(base):
    return "%s %s" % (os.path.join(os.path.dirname(base), "reload.sh"), base)


def reloads(base):
    try:
        with open(os.path.join(base, "reloads.log"), encoding="ascii") as handle:
            return [line.strip().split("/")[-1] for line in handle]
    except FileNotFoundError:
        return []


def rollout_args(emulator, base, cred, **extra):
    """What the rotation role's fleet task passes: the bundle, the reload command, the probe."""
    files = build_bundle({"private_key_src": cred["key_path"], "certificate": cred["certificate"],
                          "keystore_password": PASSWORD, "key_formats": ["p12"]})
    args = {
        "path": base, "name": "app", "credential_id": cred["id"],
        "credential": {"id": cred["id"], "fingerprint": cred["fingerprint"], "expires": cred["expiryDate"]},
        "_bundle": dict((k, base64.b64encode(v).decode()) for k, v in files.items()),
        "keystore_password": PASSWORD,
        "reload_command": reload_command(base),
        "verify": {"kind": "oauth1", "url": emulator.info["oauth1_ping_url"], "ca_path": emulator.info["ca_path"],
                   "consumer_key": cred["consumerKey"]},
    }
    args.update(extra)
    return args


def test_deploy_reload_verify_record_in_one_run_then_idempotent(emulator, keys, base):
    good = keys["good"]
    args = rollout_args(emulator, base, good)

    check = run_module(mc_deploy, args, check_mode=True)
    assert check["changed"] and check["reload_due"] and check["reloaded"]  # predicted
    assert check["verification"] is None and reloads(base) == []
    assert not os.path.exists(os.path.join(base, "app"))

    first = run_module(mc_deploy, args, diff=True)
    assert first["changed"] and first["flipped"] and first["reloaded"]
    assert reloads(base) == [good["id"]]
    assert first["verification"]["success"] and first["verification"]["status"] == 200
    assert first["verification"]["fingerprint"] == good["fingerprint"]
    meta = read_meta(base, good["id"])
    assert meta["verified_fingerprint"] == good["fingerprint"] and meta["verified_at"]
    assert first["recorded"] == {"changed": True, "credential_id": good["id"],
                                 "verified_fingerprint": good["fingerprint"], "verified_at": meta["verified_at"]}
    # host_facts after the record: what mc_deploy state=query reads afterwards (the rotation's finish input)
    assert first["host_facts"] == run_module(mc_deploy, {"path": base, "name": "app", "state": "query"})["host_facts"]
    assert first["rolled_back_to"] is None
    assert_no_secrets(first, PASSWORD)

    # Verified already: no reload, the probe still runs (a proof from now), nothing changes.
    again = run_module(mc_deploy, args)
    assert not again["changed"] and not again["reload_due"] and not again["reloaded"]
    assert again["verification"]["success"] and not again["recorded"]["changed"]
    assert reloads(base) == [good["id"]]
    assert read_meta(base, good["id"]) == meta


def test_a_deployed_but_unverified_version_is_reloaded_again(emulator, keys, base):
    """A run that died between the flip and the proof: the re-run reloads, although current did not move."""
    good = keys["good"]
    run_module(mc_deploy, rollout_args(emulator, base, good, reload_command=None, verify=None))
    resumed = run_module(mc_deploy, rollout_args(emulator, base, good))
    assert not resumed["flipped"] and resumed["reload_due"] and resumed["reloaded"] and resumed["changed"]
    assert reloads(base) == [good["id"]]
    assert resumed["recorded"]["changed"]


def test_failed_reload_puts_the_host_back_and_reloads_the_previous_version(emulator, keys, base):
    good, other = keys["good"], keys["other"]
    run_module(mc_deploy, rollout_args(emulator, base, good))
    open(os.path.join(base, "refuse-" + other["id"]), "w").close()
    with pytest.raises(ModuleFail) as info:
        run_module(mc_deploy, rollout_args(emulator, base, other))
    failed = info.value.result
    assert "reload_command failed (rc 3): refusing %s" % other["id"] in failed["msg"]
    assert failed["msg"].endswith("rolled back to %s" % good["id"])
    assert failed["rolled_back_to"] == good["id"] and failed["current"] == good["id"] and failed["rc"] == 3
    assert "verification" not in failed  # the probe never ran
    # the new version was loaded, refused, then the previous one was loaded again
    assert reloads(base) == [good["id"], other["id"], good["id"]]
    assert os.readlink(os.path.join(base, "app", "current")).endswith(good["id"])
    assert failed["host_facts"]["current_id"] == good["id"]
    assert read_meta(base, other["id"]).get("verified_at") is None
    assert_no_secrets(failed, PASSWORD)


def test_failed_probe_puts_the_host_back_unless_told_not_to(emulator, keys, base):
    good, revoked = keys["good"], keys["revoked"]
    run_module(mc_deploy, rollout_args(emulator, base, good))
    with pytest.raises(ModuleFail) as info:
        run_module(mc_deploy, rollout_args(emulator, base, revoked))
    failed = info.value.result
    assert failed["msg"].startswith("%s: verify: " % os.path.join(base, "app"))
    assert failed["verification"]["success"] is False and failed["verification"]["status"] == 401
    assert failed["rolled_back_to"] == good["id"]
    assert reloads(base) == [good["id"], revoked["id"], good["id"]]
    assert read_meta(base, revoked["id"]).get("verified_at") is None

    with pytest.raises(ModuleFail) as info:
        run_module(mc_deploy, rollout_args(emulator, base, revoked, rollback_on_failure=False))
    assert "rolled back" not in info.value.result["msg"]
    assert os.readlink(os.path.join(base, "app", "current")).endswith(revoked["id"])


def test_first_deploy_with_nothing_to_go_back_to_says_so(emulator, keys, base):
    revoked = keys["revoked"]
    with pytest.raises(ModuleFail) as info:
        run_module(mc_deploy, rollout_args(emulator, base, revoked))
    assert "not rolled back: nothing to roll back to" in info.value.result["msg"]


@pytest.mark.parametrize("change, words", [
    ({"state": "query"}, "reload_command and verify go with state=present"),
    ({"verify": {"kind": "oauth1", "url": "https://x"}}, "consumer_key"),
    ({"verify": {"kind": "oauth1", "url": "https://x", "consumer_key": "k", "timeout": 0}}, "verify.timeout"),
])
def test_bad_options_fail_before_anything_is_written(emulator, keys, base, change, words):
    with pytest.raises(ModuleFail) as info:
        run_module(mc_deploy, rollout_args(emulator, base, keys["good"], **change))
    assert words in info.value.result["msg"]
    assert not os.path.exists(os.path.join(base, "app")) and reloads(base) == []
