"""R2: rotations while the Developers API misbehaves (5xx, 429 + Retry-After, commit-then-drop, latency).

Faults apply to the Developers API paths only (/developers/*); the probes that stand in for the
application (mTLS, OAuth 1.0a ping, token endpoint) are not faulted, so a failed probe is a real outage.
Each rotation starts with a forced run; later runs are plain re-runs, until the fleet settles on a new
credential (at most 3 runs allowed). The harness switches the faults off while it inspects the state.
"""
import datetime
import os

import pytest

from ansible_collections.mcdev.credentials.tests.reliability import harness

SHORT_ROTATIONS = int(os.environ.get("MC_R2_SHORT_ROTATIONS", "2"))
LONG_ROTATIONS = int(os.environ.get("MC_R2_ROTATIONS", "100"))
# The long version is split into shards of consecutive rotations, each with its own project, fleet, seed and
# (on its xdist worker) emulator, so that they run in parallel; the figures add up to LONG_ROTATIONS.
SHARDS = int(os.environ.get("MC_R2_SHARDS", "10"))
HOSTS = int(os.environ.get("MC_R2_HOSTS", "3"))
MAX_RUNS = 6  # runs allowed before a rotation counts as stuck (the target is <= 3)
API = "/developers/*"
FAULTS = [
    {"route": API, "error_rate": 0.05, "status": 500},
    {"route": API, "error_rate": 0.05, "status": 502},
    {"route": API, "error_rate": 0.05, "status": 503},
    {"route": API, "error_rate": 0.05, "status": 504},
    {"route": API, "error_rate": 0.10, "status": 429, "retry_after": 1},
    {"route": API, "drop_response_rate": 0.05},
    {"route": API, "latency_ms": 40},
]


def _api_calls(emulator):
    counters = emulator.admin("GET", "/counters")
    return sum(n for key, n in counters.items() if "/developers/" in key)


def fault_suite(emulator, workdir, kind, rotations, seed):
    project = harness.Project(emulator, os.path.join(workdir, "ctl"), kind)
    fleet = harness.Fleet(os.path.join(workdir, "fleet"), local_hosts=HOSTS)
    name = "app-" + kind
    invariant = harness.Invariant(project, fleet, name)
    clock = datetime.datetime.now(harness.UTC).replace(microsecond=0)
    base_vars = harness.rotation_vars(project, fleet, name, {"mc_rotation_lock_ttl_minutes": 5})
    runs_dir = os.path.join(workdir, "runs")
    emulator.admin("DELETE", "/faults")
    first = harness.rotate(fleet, dict(base_vars, mc_rotation_now=clock.strftime("%Y-%m-%dT%H:%M:%SZ")), runs_dir)
    assert first.rc == 0 and invariant.settled() == [], first.text()
    calls_before = _api_calls(emulator)
    outages, bad_end_states, runs_needed, failed_runs = [], [], [], 0
    for rotation in range(rotations):
        known = {c["id"] for c in project.credentials()}
        for run_index in range(1, MAX_RUNS + 1):
            created = any(c["id"] not in known for c in project.credentials())
            clock += datetime.timedelta(hours=6)  # the planner's clock moves on between runs
            variables = dict(base_vars, mc_rotation_now=clock.strftime("%Y-%m-%dT%H:%M:%SZ"),
                             mc_rotation_force=not created)
            emulator.admin("POST", "/faults", [dict(f, seed=seed * 1000 + rotation * 10 + run_index)
                                               for f in FAULTS])
            run = harness.rotate(fleet, variables, runs_dir, timeout=900)
            emulator.admin("DELETE", "/faults")
            failed_runs += run.rc != 0
            checked = invariant.check()
            for problem in checked:
                outages.append("rotation %d run %d: %s" % (rotation, run_index, problem))
            fresh = [c for c in project.active() if c["id"] not in known]
            if run.rc == 0 and fresh and not invariant.settled(checked):
                runs_needed.append(run_index)
                break
        else:
            runs_needed.append(MAX_RUNS + 1)
            bad_end_states.append("rotation %d did not settle: %s" % (rotation, invariant.settled()))
        active = project.active()
        if len(active) != 1:
            bad_end_states.append("rotation %d ended with %d ACTIVE lineage credentials" % (rotation, len(active)))
    figures = {"kind": kind, "hosts": len(fleet.hosts), "rotations": rotations, "outages": len(outages),
               "duplicates_or_orphans": len(bad_end_states), "max_runs_to_converge": max(runs_needed),
               "runs": sum(runs_needed), "failed_runs": failed_runs,
               "api_calls": _api_calls(emulator) - calls_before,
               "api_calls_per_rotation": round((_api_calls(emulator) - calls_before) / float(rotations), 1),
               "probes": invariant.probes}
    return figures, outages, bad_end_states


def _assert_clean(figures, outages, bad_end_states):
    assert not outages, "outages:\n" + "\n".join(outages[:30])
    assert not bad_end_states, bad_end_states
    assert figures["max_runs_to_converge"] <= 3, figures


@pytest.mark.quick
def test_rotations_under_faults_short(emulator, tmp_path):
    figures, outages, bad = fault_suite(emulator, str(tmp_path), "oauth1", SHORT_ROTATIONS, seed=1)
    harness.record_figure("R2 faults (short)", **figures)
    _assert_clean(figures, outages, bad)


@pytest.mark.soak
@pytest.mark.parametrize("shard", range(SHARDS), ids=lambda i: "shard%d" % (i + 1))
def test_rotations_under_faults_long(emulator, tmp_path, shard):
    rotations = LONG_ROTATIONS // SHARDS + (1 if shard < LONG_ROTATIONS % SHARDS else 0)
    if not rotations:
        pytest.skip("MC_R2_ROTATIONS=%d leaves nothing for this shard" % LONG_ROTATIONS)
    figures, outages, bad = fault_suite(emulator, str(tmp_path), "oauth1", rotations, seed=2 + shard)
    figures["shard"] = "%d/%d" % (shard + 1, SHARDS)
    harness.record_figure("R2 faults (long)", **figures)
    _assert_clean(figures, outages, bad)
