"""R7: a sliced job template at fleet scale. K jobs, each seeing only its slice of the hosts (as AWX job slicing
hands each job a pared-down inventory), and one full run of the same lineage, started together as separate
ansible-runner processes with separate private data dirs and one shared controller state (the key store, the
ledger and the fleet cache). After every round: no outage on any host (live probes), one new credential and no
orphan, the old credential revoked only after every host of the scope verified the new one, and a last plain
run with nothing left to do on any host.

The slices run with mc_rotation_view=slice (they never revoke) and mc_rotation_lock_wait_seconds (they wait for
the run that creates); the full run sees every host and revokes. The long version repeats the round with faults:
Developers API errors, and one slice job killed part-way.
"""
import os
import random
import threading
import time

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.mcdev.credentials.plugins.modules.mc_rotation_plan import Controller
from ansible_collections.mcdev.credentials.tests.reliability import harness

SLICES = 4
HOSTS_PER_SLICE = 2
API = "/developers/*"
FAULTS = [{"route": API, "error_rate": 0.05, "status": 503}, {"route": API, "error_rate": 0.05, "status": 500},
          {"route": API, "latency_ms": 30}]


def seed_due_credential(project, fleet, name, variables):
    """An active credential 60 days from expiry (inside the lead time), its key in the shared key store, made
    current and verified on every host by one plain run (the run adopts it)."""
    now = project.emulator.admin("GET", "/clock")["now"]
    cred = project.emulator.admin("POST", "/projects/%s/credentials" % project.id, {
        "notBefore": now - 335 * 86400, "expiryDate": now + 60 * 86400, "alias": harness.LINEAGE,
        "type": "SIGNING", "oauthVersion": "1.0a"})
    key = serialization.load_pem_private_key(cred.pop("private_key_pem").encode("ascii"), None)
    Controller(variables["mc_rotation_state_dir"], project.id, "sandbox", project.kind, name,
               harness.KEY_STORE_PASSWORD).store.save(cred["alias"], key)
    return cred


def round_of_jobs(fleet, variables, workdir, slices=SLICES, kill_one=False, rng=None, workflow=False):
    """`slices` slice jobs and one full job started at the same instant; (slice jobs, full job). With slices=0,
    the unsliced reference: the full job alone. With workflow=True, the AWX workflow of docs/awx.md §5: the
    full job (the finishing node) starts when the slice jobs have ended."""
    names = sorted(fleet.hosts)
    views = [names[i::slices] for i in range(slices)]  # AWX deals the hosts out the same way, round-robin
    together = slices if workflow else slices + 1
    jobs = [None] * (slices + 1)
    barrier = threading.Barrier(together)
    sliced_vars = dict(variables, mc_rotation_view="slice")

    def start(index):
        barrier.wait()
        if index < slices:
            jobs[index] = harness.RunnerJob(workdir, "slice-%d" % (index + 1), fleet, sliced_vars, views[index])
        else:
            jobs[index] = harness.RunnerJob(workdir, "full", fleet, variables, names)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(together)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    if kill_one:
        time.sleep(rng.uniform(4, 20))
        victim = jobs[rng.randrange(slices)]
        victim.kill()
    for job in jobs[:together]:
        job.wait()
    if workflow:
        jobs[slices] = harness.RunnerJob(workdir, "finish", fleet, variables, names).wait()
    return jobs[:slices], jobs[slices]


def secrets_in_artifacts(jobs, project, fleet, variables):
    """R4 over what AWX keeps of the jobs: hits of every private key the round touched (the hosts' versions,
    the shared key store, the Developers API signing key) and of both passwords, in artifacts/<id>/."""
    keys = harness.rotation_private_keys(fleet, [variables["mc_rotation_state_dir"]], project)
    needles = harness.secret_needles(keys, [harness.KEYSTORE_PASSWORD, harness.KEY_STORE_PASSWORD])
    return len(keys), harness.scan_paths([job.artifacts() for job in jobs], needles)


def revoked_after_every_host_verified(project, fleet, name, old_id, new_id):
    """None when the old credential's revocation came after every host's verification of the new one."""
    creds = {c["id"]: c for c in project.credentials()}
    revoked_at = creds[old_id].get("revokedDate")
    if not revoked_at:
        return "the old credential %s was not revoked" % old_id
    for host in fleet.hosts:
        _current, versions = harness.host_state(fleet.base(host), name)
        verified_at = (versions.get(new_id) or {}).get("verified_at")
        if not verified_at or verified_at > revoked_at:
            return ("%s verified %s at %s, the old credential was revoked at %s"
                    % (host, new_id, verified_at, revoked_at))
    return None


def quiet(run):
    """A plain run with nothing left to do: no revocation, no task on any host."""
    return run.rc == 0 and "Revoked " not in run.stdout and not [r for r in run.results if r["host"] != "localhost"]


def r7_suite(emulator, workdir, rounds, faults=False, kill=False, slices=SLICES, workflow=False):
    """Each round on its own project and fleet of SLICES * HOSTS_PER_SLICE hosts; slices=0 runs the full job alone,
    workflow=True after the slices."""
    rng = random.Random(7)
    figures = []
    for index in range(rounds):
        project = harness.Project(emulator, os.path.join(workdir, "ctl%d" % index), "oauth1")
        fleet = harness.Fleet(os.path.join(workdir, "fleet%d" % index), local_hosts=SLICES * HOSTS_PER_SLICE)
        name = "app-oauth1"
        invariant = harness.Invariant(project, fleet, name)
        variables = harness.rotation_vars(project, fleet, name, {"mc_rotation_lock_wait_seconds": 600, "mc_rotation_lock_ttl_minutes": 2,
                                                                 "mc_rotation_serial": ["100%"]})
        runs_dir = os.path.join(workdir, "runs%d" % index)
        old = seed_due_credential(project, fleet, name, variables)
        adopted = harness.rotate(fleet, variables, os.path.join(runs_dir, "adopt%d" % index))
        assert adopted.rc == 0, adopted.text()
        for host in fleet.hosts:
            assert harness.host_state(fleet.base(host), name)[0] == old["id"], host
        known = {c["id"] for c in project.credentials()}
        calls_before = sum(n for key, n in emulator.admin("GET", "/counters").items() if "/developers/" in key)
        if faults:
            emulator.admin("POST", "/faults", [dict(f, seed=100 + index) for f in FAULTS])
        sliced, full = round_of_jobs(fleet, variables, os.path.join(workdir, "round%d" % index), slices, kill, rng,
                                     workflow)
        emulator.admin("DELETE", "/faults")
        calls = sum(n for key, n in emulator.admin("GET", "/counters").items() if "/developers/" in key) - calls_before
        outages = invariant.check(require_verified=False)
        # What a failed or killed job left is for the next scheduled run of the workflow's last node to finish.
        settle = [harness.rotate(fleet, variables, os.path.join(runs_dir, "after1"))]
        while not quiet(settle[-1]):
            assert len(settle) < 4, settle[-1].text()
            settle.append(harness.rotate(fleet, variables, os.path.join(runs_dir, "after%d" % (len(settle) + 1))))
        created = [c for c in project.credentials() if c["id"] not in known]
        active = project.active()
        new_id = active[0]["id"] if len(active) == 1 else None
        keys, hits = secrets_in_artifacts(sliced + [full], project, fleet, variables)
        figures.append({
            "round": index, "outages": outages, "created": len(created), "active": [c["id"] for c in active],
            "orphans": [c["id"] for c in created if c["status"] == "ACTIVE" and c["id"] != new_id],
            "settled": invariant.settled(),
            "order": revoked_after_every_host_verified(project, fleet, name, old["id"], new_id) if new_id else "no new",
            "slice_rc": [job.rc for job in sliced], "full_rc": full.rc,
            "killed": [job.ident for job in sliced if job.killed],
            "api_calls": calls, "host_tasks": sum(job.host_tasks() for job in sliced + [full]),
            "seconds": (max(job.seconds for job in sliced) + full.seconds if workflow
                        else max(job.seconds for job in sliced + [full])), "runs_to_settle": len(settle),
            "text": [job.stdout()[-2500:] for job in sliced + [full] if job.rc != 0 and not job.killed],
            "keys_scanned": keys, "secret_hits": hits, "finish_host_tasks": full.host_tasks(),
        })
    return figures


def check(figures, faults=False):
    for figure in figures:
        assert figure["keys_scanned"] >= 3 and figure["secret_hits"] == [], figure["secret_hits"][:10]
        assert figure["outages"] == [], figure
        assert figure["created"] == 1, figure
        assert figure["orphans"] == [] and len(figure["active"]) == 1, figure
        assert figure["order"] is None, figure
        assert figure["settled"] == [], figure
        if not faults and not figure["killed"]:
            assert figure["slice_rc"] == [0] * len(figure["slice_rc"]) and figure["full_rc"] == 0, figure["text"]
            assert figure["runs_to_settle"] == 1, "the full run left something to do"


def report(name, figures, slices=SLICES):
    harness.record_figure(name, rounds=len(figures), slices=slices, hosts=SLICES * HOSTS_PER_SLICE,
                          outages=sum(len(f["outages"]) for f in figures),
                          duplicates=sum(max(0, f["created"] - 1) for f in figures),
                          orphans=sum(len(f["orphans"]) for f in figures),
                          revoked_before_verified=sum(1 for f in figures if f["order"]),
                          failed_jobs=sum(sum(1 for rc in f["slice_rc"] + [f["full_rc"]] if rc) for f in figures),
                          killed=sum(len(f["killed"]) for f in figures),
                          api_calls=[f["api_calls"] for f in figures], host_tasks=[f["host_tasks"] for f in figures],
                          seconds=[round(f["seconds"], 1) for f in figures],
                          secret_hits=sum(len(f["secret_hits"]) for f in figures))


@pytest.mark.quick
def test_sliced_jobs_and_a_full_run_together(emulator, tmp_path):
    figures = r7_suite(emulator, str(tmp_path), rounds=1)
    report("R7 slices (short)", figures)
    check(figures)
    # the price of slicing, as the AWX workflow runs it (the finishing node after the slices), against the same
    # rotation as one unsliced job, each on a twin fleet
    workflow = r7_suite(emulator, str(tmp_path / "workflow"), rounds=1, workflow=True)
    report("R7 workflow (slices, then finish)", workflow)
    check(workflow)
    unsliced = r7_suite(emulator, str(tmp_path / "unsliced"), rounds=1, slices=0)
    report("R7 unsliced reference", unsliced, slices=0)
    check(unsliced)
    harness.record_figure("R7 together / workflow / unsliced",
                          api_calls=[f[0]["api_calls"] for f in (figures, workflow, unsliced)],
                          host_tasks=[f[0]["host_tasks"] for f in (figures, workflow, unsliced)],
                          seconds=[round(f[0]["seconds"], 1) for f in (figures, workflow, unsliced)])
    # the finishing node reads every host's state from the fleet cache: it contacts no host the slices verified
    assert workflow[0]["finish_host_tasks"] == 0, workflow[0]
    assert workflow[0]["host_tasks"] <= unsliced[0]["host_tasks"], (workflow[0], unsliced[0])


@pytest.mark.soak
def test_sliced_jobs_and_a_full_run_together_with_faults(emulator, tmp_path):
    figures = r7_suite(emulator, str(tmp_path), rounds=2, faults=True)
    figures += r7_suite(emulator, str(tmp_path / "kills"), rounds=2, kill=True)
    report("R7 slices (long, faults and a killed slice)", figures)
    check(figures, faults=True)
