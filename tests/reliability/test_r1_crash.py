"""R1: SIGKILL the rotation playbook right after task k, for every k of a full rotation, then run it again.

After every kill and every re-run each host's deployed files are probed live against the emulator and the
invariant is checked (one ACTIVE credential deployed and verified everywhere); the end state has exactly
one ACTIVE credential of the lineage, current and verified on every host: no orphan, no duplicate.
"""
import datetime
import json
import os

import pytest

from ansible_collections.mcdev.credentials.tests.reliability import harness

# The short version kills at MC_R1_SHORT_POINTS points spread over the rotation (k = 1, 1+step, ...), or
# every MC_R1_SHORT_STEP tasks when that is set; the step follows the task count of the reference run.
SHORT_STEP = int(os.environ.get("MC_R1_SHORT_STEP", "0")) or None
SHORT_POINTS = int(os.environ.get("MC_R1_SHORT_POINTS", "3"))
# The long version kills after every task k (MC_R1_STEP=1), one test per kind. MC_R1_SHARDS=S splits each
# kind further (k = 1+i, 1+i+S, ... for shard i), each shard with its own project, fleet and bootstrap, so
# that the shards run on separate xdist workers; together they cover every k.
LONG_STEP = int(os.environ.get("MC_R1_STEP", "1"))
SHARDS = int(os.environ.get("MC_R1_SHARDS", "1"))
MAX_RERUNS = 3


class VirtualClock(object):
    """The planner's clock (mc_rotation_now). Every run is 2 minutes after the previous one, so the 1-minute
    lock of a killed run has expired by the next run, as it would after waiting out the lock TTL."""

    def __init__(self):
        self.now = datetime.datetime.now(harness.UTC).replace(microsecond=0)

    def tick(self):
        self.now += datetime.timedelta(minutes=2)
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")


def crash_suite(emulator, workdir, kind, step, ssh_hosts=None, shard=0, shards=1):
    project = harness.Project(emulator, os.path.join(workdir, "ctl"), kind)
    fleet = harness.Fleet(os.path.join(workdir, "fleet"), local_hosts=2, ssh_hosts=ssh_hosts)
    name = "app-" + kind
    invariant = harness.Invariant(project, fleet, name)
    clock = VirtualClock()
    base_vars = harness.rotation_vars(project, fleet, name, {"mc_rotation_lock_ttl_minutes": 1})
    runs = os.path.join(workdir, "runs")

    def rotate(force=False, kill_at=None):
        variables = dict(base_vars, mc_rotation_now=clock.tick(), mc_rotation_force=force)
        return harness.rotate(fleet, variables, runs, kill_at=kill_at, timeout=900)

    first = rotate()
    assert first.rc == 0, first.text()
    assert invariant.settled() == [], "bootstrap did not settle"
    reference = rotate(force=True)
    assert reference.rc == 0, reference.text()
    assert invariant.settled() == [], "the reference rotation did not settle"
    # The task count comes from this run, whatever the playbook's layout.
    total = reference.tasks
    assert total >= 2 * len(fleet.hosts), "a full rotation ran only %d tasks" % total
    step = step or max(1, -(-total // SHORT_POINTS))
    outcomes = {}
    violations = []
    for k in list(range(1, total + 1, step))[shard::shards]:
        killed = rotate(force=True, kill_at=k)
        assert killed.killed or killed.tasks <= k, "kill at %d did not happen: %s" % (k, killed.text())
        for problem in invariant.check():
            violations.append("after the kill at task %d: %s" % (k, problem))
        reruns = 0
        settled = ["not run"]
        while reruns < MAX_RERUNS:
            reruns += 1
            again = rotate()
            checked = invariant.check()
            for problem in checked:
                violations.append("after re-run %d of the kill at task %d: %s" % (reruns, k, problem))
            settled = invariant.settled(checked)
            if again.rc == 0 and not settled:
                break
        outcomes[k] = {"reruns": reruns, "settled": not settled, "problems": settled}
        with open(os.path.join(workdir, "progress.jsonl"), "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"k": k, "of": total, "violations_so_far": len(violations),
                                     "outcome": outcomes[k]}) + "\n")
    wrong_modes = [p for p in harness.private_files(fleet.workdir) if os.stat(p).st_mode & 0o077]
    recovered = sum(1 for o in outcomes.values() if o["settled"])
    figures = {"kind": kind, "shard": "%d/%d" % (shard + 1, shards), "step": step, "hosts": len(fleet.hosts),
               "tasks": total, "kill_points": len(outcomes), "kill_after": sorted(outcomes), "recovered": recovered,
               "invariant_violations": len(violations), "probes": invariant.probes,
               "max_reruns": max(o["reruns"] for o in outcomes.values()),
               "active_at_end": len(project.active()), "private_files_not_0600": len(wrong_modes)}
    return figures, outcomes, violations, wrong_modes


def _assert_clean(figures, outcomes, violations, wrong_modes):
    failed = {k: o["problems"] for k, o in outcomes.items() if not o["settled"]}
    assert not violations, "invariant violated:\n" + "\n".join(violations[:40])
    assert not failed, "did not converge after a kill: %s" % failed
    assert figures["active_at_end"] == 1
    assert not wrong_modes, wrong_modes


@pytest.mark.quick
def test_crash_at_sampled_steps(emulator, tmp_path):
    figures, outcomes, violations, wrong_modes = crash_suite(emulator, str(tmp_path), "oauth1", SHORT_STEP)
    harness.record_figure("R1 crash (short)", **figures)
    _assert_clean(figures, outcomes, violations, wrong_modes)


@pytest.mark.soak
@pytest.mark.parametrize("shard", range(SHARDS), ids=lambda i: "shard%d" % (i + 1))
@pytest.mark.parametrize("kind", ["mtls", "oauth1", "oauth2"])
def test_crash_at_every_step(emulator, tmp_path, kind, shard, ssh_hosts):
    figures, outcomes, violations, wrong_modes = crash_suite(emulator, str(tmp_path), kind, LONG_STEP, ssh_hosts,
                                                             shard, SHARDS)
    harness.record_figure("R1 crash (every k)", **figures)
    _assert_clean(figures, outcomes, violations, wrong_modes)
