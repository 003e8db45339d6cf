"""R6: two rotation runs started at once on the same credential: one proceeds, the other stops with a clear
message; the end state is one ACTIVE credential, deployed and verified everywhere."""
import os
import re
import threading

import pytest

from ansible_collections.mcdev.credentials.tests.reliability import harness

LOCK_WORDS = re.compile(r"LOCKED|locked|holds the lock|lock held|another run", re.I)


def _together(fleet, variables, runs_dir):
    """Start two forced rotation runs at the same instant; return both Runs."""
    results = [None, None]
    barrier = threading.Barrier(2)

    def one(index):
        barrier.wait()
        results[index] = harness.rotate(fleet, dict(variables, mc_rotation_force=True),
                                        os.path.join(runs_dir, "run%d" % index), timeout=900)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(960)
    return results


def concurrency_suite(emulator, workdir, kind, trials, ssh_hosts=None):
    project = harness.Project(emulator, os.path.join(workdir, "ctl"), kind)
    fleet = harness.Fleet(os.path.join(workdir, "fleet"), local_hosts=2, ssh_hosts=ssh_hosts)
    name = "app-" + kind
    invariant = harness.Invariant(project, fleet, name)
    variables = harness.rotation_vars(project, fleet, name)
    runs_dir = os.path.join(workdir, "runs")
    first = harness.rotate(fleet, variables, runs_dir)
    assert first.rc == 0 and invariant.settled() == [], first.text()
    outcomes = []
    for trial in range(trials):
        known = {c["id"] for c in project.credentials()}
        runs = _together(fleet, variables, os.path.join(runs_dir, "trial%d" % trial))
        created = [c["id"] for c in project.credentials() if c["id"] not in known]
        winners = [r for r in runs if r.rc == 0 and "Revoked " in r.stdout]
        losers = [r for r in runs if r not in winners]
        clear = all(locked_message(r) for r in losers)
        # A third, plain run must find nothing left to do, or finish what is left.
        after = harness.rotate(fleet, variables, runs_dir)
        outcomes.append({"created": len(created), "winners": len(winners), "losers_clear": clear,
                         "settled": invariant.settled(), "after_rc": after.rc,
                         "loser_text": [r.text()[-1500:] for r in losers if not locked_message(r)]})
    return outcomes


def locked_message(run):
    """The run stopped because the other one holds the lock, and said so."""
    return bool(LOCK_WORDS.search(run.stdout + run.stderr))


def _check(outcomes):
    for outcome in outcomes:
        assert outcome["created"] == 1, outcome
        assert outcome["winners"] == 1, outcome
        assert outcome["losers_clear"], outcome["loser_text"]
        assert outcome["settled"] == [], outcome
        assert outcome["after_rc"] == 0, outcome


def test_two_runs_at_once(emulator, tmp_path, ssh_hosts):
    outcomes = concurrency_suite(emulator, str(tmp_path), "oauth1", 1, ssh_hosts)
    harness.record_figure("R6 concurrency (short)", trials=len(outcomes),
                          ok=sum(1 for o in outcomes if o["created"] == 1 and o["winners"] == 1
                                 and o["losers_clear"] and not o["settled"]))
    _check(outcomes)


@pytest.mark.soak
@pytest.mark.parametrize("kind", ["mtls", "oauth2"])
def test_two_runs_at_once_repeatedly(emulator, tmp_path, kind):
    outcomes = concurrency_suite(emulator, str(tmp_path), kind, 3)
    harness.record_figure("R6 concurrency (long)", kind=kind, trials=len(outcomes),
                          ok=sum(1 for o in outcomes if o["created"] == 1 and o["winners"] == 1
                                 and o["losers_clear"] and not o["settled"]))
    _check(outcomes)
