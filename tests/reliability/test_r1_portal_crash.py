"""R1 for the portal-assisted backend: the rotation is three runs of rotate.yml with a person in between (the
create work order, the resume that deploys and verifies, the close after the revocation). SIGKILL one of those
runs right after task k, then go on as a scheduled job and the person would: the person carries out what an open
work order asks (reading only its JSON), runs follow, until the rotation is closed.

After every kill and every run each host's files are probed live and the invariant is checked; the end state
has one ACTIVE credential current and verified everywhere, no open work order, no duplicate at the portal.
"""
import json
import os

import pytest

from ansible_collections.mcdev.credentials.tests.emulator.person import ScriptedPerson
from ansible_collections.mcdev.credentials.tests.reliability import harness
from ansible_collections.mcdev.credentials.tests.reliability.test_r1_crash import VirtualClock

# The short set kills at MC_R1_PORTAL_POINTS points spread over the three runs; the long one after every task.
SHORT_POINTS = int(os.environ.get("MC_R1_PORTAL_POINTS", "2"))
MAX_STEPS = 6


def work_orders(variables):
    folder = os.path.join(variables["mc_rotation_state_dir"], "portal", variables["mc_rotation_project_id"],
                          "work-orders")
    if not os.path.isdir(folder):
        return []
    return [os.path.join(folder, name) for name in sorted(os.listdir(folder))
            if name.endswith(("-create.json", "-revoke.json"))]


def attend(person, variables):
    """The person carries out every open work order nobody answered yet; returns how many."""
    done = 0
    for path in work_orders(variables):
        order = person.read(path)
        if os.path.exists(order["inbox"]):
            continue
        if order["step"] == "create":
            person.add(path)
        else:
            person.revoke(path)
        done += 1
    return done


def portal_crash_suite(emulator, workdir, kind, points=None):
    project = harness.Project(emulator, os.path.join(workdir, "ctl"), kind)
    fleet = harness.Fleet(os.path.join(workdir, "fleet"), local_hosts=2)
    name = "app-" + kind
    invariant = harness.Invariant(project, fleet, name)
    clock = VirtualClock()
    base_vars = harness.rotation_vars(project, fleet, name, {"mc_rotation_lock_ttl_minutes": 1})
    portal_vars = dict(base_vars, mc_rotation_backend="portal")
    person = ScriptedPerson(emulator, bring_id=True)
    runs = os.path.join(workdir, "runs")
    violations = []

    def rotate(variables, force=False, kill_at=None):
        return harness.rotate(fleet, dict(variables, mc_rotation_now=clock.tick(), mc_rotation_force=force), runs,
                              kill_at=kill_at, timeout=900)

    def check(when):
        checked = invariant.check()
        violations.extend("%s: %s" % (when, problem) for problem in checked)
        return checked

    def settled(checked):
        return not invariant.settled(checked) and not work_orders(portal_vars)

    # Today's credential comes from the Developers API; the portal folder knows nothing of it (adopted from hosts).
    first = rotate(base_vars)
    assert first.rc == 0, first.text()
    assert invariant.settled() == [], "bootstrap did not settle"
    reference = []
    for step in range(3):
        run = rotate(portal_vars, force=(step == 0))
        assert run.rc == 0, run.text()
        reference.append(run.tasks)
        attend(person, portal_vars)
    assert settled(check("reference")), "the reference portal rotation did not close"
    total = sum(reference)
    points = points or max(1, -(-total // SHORT_POINTS))
    outcomes = {}
    for k in range(1, total + 1, points):
        # k counts over the three runs: the kill falls in run `index` after its task `at`
        index, at = 0, k
        while at > reference[index]:
            at -= reference[index]
            index += 1
        for step in range(index):
            assert rotate(portal_vars, force=(step == 0)).rc == 0
            attend(person, portal_vars)
        killed = rotate(portal_vars, force=(index == 0), kill_at=at)
        assert killed.killed or killed.tasks <= at, "kill at %d of run %d did not happen" % (at, index + 1)
        checked = check("after the kill at task %d of run %d" % (at, index + 1))
        steps = 0
        while steps < MAX_STEPS and not settled(checked):
            steps += 1
            attend(person, portal_vars)
            again = rotate(portal_vars)
            checked = check("after run %d following the kill at task %d of run %d" % (steps, at, index + 1))
            if again.rc != 0 and "the work order stays open" not in again.text():
                violations.append("run %d after the kill at %d/%d failed: %s" % (steps, at, index + 1,
                                                                                 again.text()[-600:]))
        outcomes[k] = {"run": index + 1, "task": at, "steps": steps, "settled": settled(checked)}
        with open(os.path.join(workdir, "progress.jsonl"), "a", encoding="utf-8") as handle:
            handle.write(json.dumps({"k": k, "of": total, "outcome": outcomes[k]}) + "\n")
    aliases = [c.get("alias") for c in project.credentials()]
    figures = {"kind": kind, "backend": "portal", "hosts": len(fleet.hosts), "tasks_per_run": reference,
               "kill_points": len(outcomes), "kill_after": sorted(outcomes),
               "recovered": sum(1 for o in outcomes.values() if o["settled"]),
               "invariant_violations": len(violations), "probes": invariant.probes,
               "max_steps": max(o["steps"] for o in outcomes.values()), "active_at_end": len(project.active()),
               "duplicate_aliases": len(aliases) - len(set(aliases))}
    return figures, outcomes, violations


def _assert_clean(figures, outcomes, violations):
    assert not violations, "invariant violated:\n" + "\n".join(violations[:40])
    assert all(o["settled"] for o in outcomes.values()), outcomes
    assert figures["active_at_end"] == 1 and figures["duplicate_aliases"] == 0, figures


@pytest.mark.quick
def test_portal_crash_at_sampled_steps(emulator, tmp_path):
    figures, outcomes, violations = portal_crash_suite(emulator, str(tmp_path), "mtls")
    harness.record_figure("R1 crash, portal backend (short)", **figures)
    _assert_clean(figures, outcomes, violations)


@pytest.mark.soak
@pytest.mark.parametrize("kind", ["mtls", "oauth1", "oauth2"])
def test_portal_crash_at_every_step(emulator, tmp_path, kind):
    figures, outcomes, violations = portal_crash_suite(emulator, str(tmp_path), kind, points=1)
    harness.record_figure("R1 crash, portal backend (every k)", **figures)
    _assert_clean(figures, outcomes, violations)
