"""Process behaviour: ready file, start time, restart persistence, clean SIGTERM."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from ansible_collections.mcdev.credentials.tests.emulator.harness import COLLECTION_ROOT, Emulator
from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import DevApi

READY_FIELDS = {"pid", "api_url", "admin_url", "mtls_url", "oauth1_ping_url", "token_url", "issuer",
                "oauth2_ping_url", "ca_path", "admin_token"}


@pytest.fixture
def own_emulator(tmp_path):
    instance = Emulator.start(tmp_path / "own")
    yield instance
    instance.stop()


def test_ready_file_has_the_contract_fields(emulator):
    assert READY_FIELDS <= set(emulator.info)
    assert emulator.info["api_url"].startswith("https://127.0.0.1:")
    assert emulator.info["api_url"].endswith("/developers")
    assert emulator.info["pid"] == emulator.process.pid


def test_state_survives_a_restart(own_emulator):
    devapi = DevApi(own_emulator)
    _key, credential = devapi.create_key("persisted")
    own_emulator.admin("POST", "/clock", {"offset_seconds": 3600})
    own_emulator.admin("POST", "/rules", {"validity_days": 100})
    with open(own_emulator.info["ca_path"], encoding="ascii") as handle:
        ca_before = handle.read()
    old_port, old_pid = own_emulator.info["port"], own_emulator.info["pid"]
    own_emulator.restart()
    assert own_emulator.info["pid"] != old_pid and own_emulator.info["port"] == old_port
    with open(own_emulator.info["ca_path"], encoding="ascii") as handle:
        assert handle.read() == ca_before
    # The account key, project and credential are all still there.
    assert devapi.get(credential["id"])["fingerprint"] == credential["fingerprint"]
    assert own_emulator.admin("GET", "/clock")["offset_seconds"] == 3600
    assert own_emulator.admin("GET", "/rules")["validity_days"] == 100


def test_first_start_makes_pki_and_sigterm_is_clean(tmp_path):
    """A first start creates the PKI and a ready file naming its pid; SIGTERM exits 0 and
    removes the ready file. (Start-up time is measured by bench/emulator_bench.py, not asserted.)
    """
    ready = tmp_path / "ready.json"
    started = time.monotonic()
    process = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "tests.emulator", "--port", "0", "--state", str(tmp_path / "s.sqlite"),
         "--ready-file", str(ready)], cwd=COLLECTION_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while not ready.exists():
            assert process.poll() is None, "emulator exited during start"
            assert time.monotonic() - started < 15
            time.sleep(0.01)
        info = json.loads(ready.read_text())
        assert info["pid"] == process.pid
        process.send_signal(signal.SIGTERM)
        _pid, status, _usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        assert process.returncode == 0
        assert not ready.exists()
        assert os.path.exists(str(tmp_path / "s.sqlite.pki" / "ca.pem"))
    finally:
        if process.returncode is None and process.poll() is None:
            process.kill()
            process.wait()


def test_rules_from_the_command_line(tmp_path):
    with Emulator.start(tmp_path / "rules", rules={"validity_days": 10, "max_active_oauth2_keys": 1}) as instance:
        current = instance.admin("GET", "/rules")
        assert current["validity_days"] == 10 and current["max_active_oauth2_keys"] == 1


def test_reset_wipes_state(own_emulator):
    devapi = DevApi(own_emulator)
    devapi.create_key("wiped")
    own_emulator.admin("POST", "/reset", {})
    assert own_emulator.admin("GET", "/counters") == {}
    response = devapi.signed("GET", devapi.base)
    assert response.status_code == 401  # the account is gone too
