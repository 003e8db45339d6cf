"""The rotation role end to end: emulator over HTTPS, real ansible-playbook runs, local and SSH hosts.

After every run the invariant is checked against the emulator from every host: the credential each
host's ``current`` points at must work from that host (mc_verify), and one active credential must be
deployed and verified everywhere (inventory.invariant_holds on the remote list and the hosts' facts).
"""

import os
import signal
import time

import pytest

import fleet as F

os.environ.setdefault("NETNS_PREFIX", "mcrot")  # our own namespaces: `down` never touches another run's

from ansible_collections.mcdev.credentials.plugins.module_utils import _time, inventory


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    emu = F.Emulator.start(str(tmp_path_factory.mktemp("emulator")))
    try:
        yield emu
    finally:
        emu.stop()


@pytest.fixture
def make_fleet(tmp_path, emulator):
    fleets = []
    emulator.admin("POST", "/clock", {"offset_seconds": 0})

    def make(**kwargs):
        fl = F.Fleet(str(tmp_path / ("fleet%d" % len(fleets))), emulator, **kwargs)
        fleets.append(fl)
        return fl
    yield make
    for fl in fleets:
        fl.close()


def check_invariant(fl):
    """Every host serves a credential that works from it, and one active credential is verified everywhere."""
    probes = fl.probe()
    broken = dict((h, p["msg"]) for h, p in probes.items() if not p["success"])
    assert not broken, "hosts whose current credential does not work: %s" % broken
    facts = {}
    for host, probe in probes.items():
        hf = dict(probe["host_facts"])
        hf["verified_fingerprint"] = probe["fingerprint"]
        facts[host] = hf
    holds, why = inventory.invariant_holds(fl.credentials(), facts, F.iso(fl.emulator_now()))
    assert holds, why
    return probes


def active(fl):
    return sorted(c["id"] for c in fl.credentials() if c["status"] == "ACTIVE")


def test_full_rotation_over_local_hosts_then_nothing(make_fleet):
    fl = make_fleet(kind="oauth1", local_hosts=5)
    old = fl.seed(expires_in_days=100)  # inside the default lead time (1/3 of 395 days)
    fl.bootstrap(old)
    check_invariant(fl)
    fl.reset_counters()

    first = fl.rotate()
    calls = fl.api_calls()
    assert calls <= 6, "one rotation made %d Developers API calls" % calls
    creds = dict((c["id"], c) for c in fl.credentials())
    assert creds[old["id"]]["status"] == "REVOKED"
    new = [c for c in creds.values() if c["status"] == "ACTIVE"]
    assert len(new) == 1 and new[0]["alias"].startswith(fl.name + "-")
    probes = check_invariant(fl)
    assert set(p["current"] for p in probes.values()) == {new[0]["id"]}
    for host in fl.hosts:
        assert fl.reloads(host) == ["versions/%s" % new[0]["id"]], host
        root = fl.host_root(host)
        key = os.path.join(root, "versions", new[0]["id"], "key.p12")
        assert oct(os.stat(key).st_mode & 0o777) == "0o600"
        assert os.readlink(os.path.join(root, "current")) == "versions/%s" % new[0]["id"]
    assert "Revoked %s" % old["id"] in first.output

    # Second run: nothing due, no host contacted, no API change.
    fl.reset_counters()
    second = fl.rotate()
    assert second.contacted() == [], second.output[-3000:]
    assert second.recap()["localhost"]["changed"] == 0
    assert fl.api_calls() == 1  # the credential list
    assert active(fl) == [new[0]["id"]]


def test_failed_reload_rolls_back_and_rerun_finishes(make_fleet):
    hosts = dict(local_hosts=2, netns_hosts=2) if F.netns_available() else dict(local_hosts=4)
    fl = make_fleet(kind="mtls", **hosts)
    old = fl.seed(expires_in_days=60)
    fl.bootstrap(old)
    names = sorted(fl.hosts)
    broken = names[-1]  # not the canary: the canary batch succeeds first
    open(os.path.join(fl.hosts[broken]["mc_rotation_base_dir"], "break-reload"), "w").close()

    failed = fl.rotate(_check=False)
    assert failed.rc != 0
    assert "stopped on host %s" % broken in failed.output
    assert "reload refused" in failed.output
    # The broken host is back on the old credential; nothing was revoked; the fleet still works.
    probes = check_invariant(fl)
    assert probes[broken]["current"] == old["id"]
    assert old["id"] in active(fl) and len(active(fl)) == 2
    assert fl.reloads(broken)[-1:] == ["versions/%s" % old["id"]] or fl.reloads(broken) == []

    # Fixed, but now an in-scope host cannot be reached: every other host moves on, nothing is revoked.
    os.unlink(os.path.join(fl.hosts[broken]["mc_rotation_base_dir"], "break-reload"))
    fl.add_unreachable_host("ghost")
    blocked = fl.rotate(_check=False)
    assert blocked.rc != 0 and "ghost" in blocked.output and "unreachable" in blocked.output
    assert old["id"] in active(fl) and len(active(fl)) == 2
    fl.remove_host("ghost")
    check_invariant(fl)

    fl.rotate()
    remaining = active(fl)
    assert len(remaining) == 1 and remaining[0] != old["id"]
    probes = check_invariant(fl)
    assert set(p["current"] for p in probes.values()) == set(remaining)


def test_clock_lead_time_and_soak(make_fleet):
    fl = make_fleet(kind="oauth2", local_hosts=3)
    # Start 200 days in the emulator's past, so that after moving the clock forward the new key is issued
    # at the hosts' real time (the hosts' clocks do not move; mc_verify checks notBefore against them).
    fl.move_clock(-200)
    old = fl.seed(expires_in_days=300)
    fl.bootstrap(old)
    soak = {"mc_rotation_soak_hours": 24}

    fl.rotate(**soak)  # first run on a fresh controller: asks the hosts, nothing due
    quiet = fl.rotate(**soak)
    assert quiet.contacted() == [] and "IDLE" in quiet.output
    assert active(fl) == [old["id"]]

    fl.move_clock(200)  # back to the real time: 100 days left, inside the lead time
    rotated = fl.rotate(**soak)
    assert "SOAKING" in rotated.output
    ids = active(fl)
    assert len(ids) == 2 and old["id"] in ids, "the old key must stay active during the soak"
    check_invariant(fl)

    waiting = fl.rotate(**soak)
    assert waiting.contacted() == [] and active(fl) == ids

    fl.move_clock(2)  # soak over: the old key is revoked without contacting any host
    done = fl.rotate(**soak)
    assert done.contacted() == []
    assert active(fl) == [i for i in ids if i != old["id"]]
    # The emulator's resource server rejects its own OAuth 2.0 tokens while its clock runs ahead of the
    # real one (PyJWT refuses an iat in the future); probe at the real time.
    fl.move_clock(-2)
    check_invariant(fl)
    again = fl.rotate(**soak)
    assert again.contacted() == [] and again.recap()["localhost"]["changed"] == 0


def test_crash_after_create_resumes_without_a_duplicate(make_fleet):
    fl = make_fleet(kind="oauth1", local_hosts=2)
    old = fl.seed(expires_in_days=60)
    fl.bootstrap(old)
    fl.rotate(mc_rotation_lead_days=10)  # learn the hosts; nothing due with a 10-day lead
    fast_lock = {"mc_rotation_lock_ttl_minutes": 0.5}
    fl.reset_counters()
    run = fl.start_rotate(**fast_lock)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and run.poll() is None:
        counters = fl.emulator.admin("GET", "/counters")
        if any(k.startswith("POST /developers") and k.endswith("/credentials") for k in counters):
            break
        time.sleep(0.1)
    os.killpg(run.pid, signal.SIGKILL)  # the controller dies right after the create call
    run.wait()
    created = [c for c in fl.credentials() if c["id"] != old["id"]]
    assert len(created) == 1, "the create call was made before the crash"

    holder = fl.ledger()
    assert holder.get("lock_owner"), "the crashed run still holds its lock"
    expires = _time.parse(holder["lock_expires"])
    if (expires - _time.parse(F.iso(time.time()))).total_seconds() > 8:
        locked = fl.rotate(_check=False, **fast_lock)
        assert locked.rc != 0 and "being rotated by another run" in locked.output
    # the dead run's lock expires by itself
    time.sleep(max(0.0, (expires - _time.parse(F.iso(time.time()))).total_seconds()) + 1)
    fl.rotate(**fast_lock)
    creds = fl.credentials()
    assert [c["id"] for c in creds if c["id"] != old["id"]] == [created[0]["id"]], "no duplicate credential"
    assert active(fl) == [created[0]["id"]]
    probes = check_invariant(fl)
    assert set(p["current"] for p in probes.values()) == {created[0]["id"]}
