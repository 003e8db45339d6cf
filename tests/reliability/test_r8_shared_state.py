"""R8: the rotation's state shared between execution nodes through PostgreSQL (mc_rotation_state_url), with a
real server (Debian's package, tests/tools/postgres.py).

Two "nodes" are two AWX jobs with separate private data dirs and separate local state folders, no shared disk.
Node A's job is killed right after it created the new credential, and its folder is wiped, as a container that
is gone. Node B's job then resumes the rotation: it sees A's lock while that lives, then adopts the credential
with the key A stored in the database before the create. Result: one new credential, no orphan, no outage.
The same story with the local file store (the control) loses the key with the container: node B revokes the
orphan and the rotation is undone (the old credential stays in use until a later run rotates again).
A stopped database fails the run with a clear, retryable message that
never shows the password, and changes nothing.
"""
import datetime
import os
import shutil
import time

import pytest

from ansible_collections.mcdev.credentials.tests.reliability import harness
from ansible_collections.mcdev.credentials.tests.tools.postgres import PostgresServer


@pytest.fixture(scope="module")
def postgres():
    server = PostgresServer.start()
    try:
        yield server
    finally:
        server.close()


class Clock(object):
    """The planner's clock: each job 2 minutes after the previous one, so a killed job's 1-minute lock has expired."""

    def __init__(self):
        self.now = datetime.datetime.now(harness.UTC).replace(microsecond=0)

    def tick(self, minutes=2):
        self.now += datetime.timedelta(minutes=minutes)
        return self.now.strftime("%Y-%m-%dT%H:%M:%SZ")


def two_nodes(emulator, workdir, state_url):
    """The kill-and-resume story on two nodes; returns its figures."""
    project = harness.Project(emulator, os.path.join(workdir, "ctl"), "oauth1")
    fleet = harness.Fleet(os.path.join(workdir, "fleet"), local_hosts=2)
    name = "app-oauth1"
    invariant = harness.Invariant(project, fleet, name)
    clock = Clock()
    node_dirs = {node: os.path.join(workdir, "node-" + node, "state") for node in "ab"}
    jobs = []

    def job(node, ident, **extra):
        variables = harness.rotation_vars(project, fleet, name, dict({
            "mc_rotation_state_dir": node_dirs[node], "mc_rotation_lock_ttl_minutes": 1,
            "mc_rotation_now": clock.tick()}, **extra))
        if state_url:
            variables["mc_rotation_state_url"] = state_url
        jobs.append(harness.RunnerJob(os.path.join(workdir, "node-" + node, "jobs"), ident, fleet, variables))
        return jobs[-1]

    first = job("a", "bootstrap").wait()
    assert first.rc == 0, first.stdout()[-3000:]
    assert invariant.settled() == []
    (old,) = project.active()
    known = {c["id"] for c in project.credentials()}

    rotating = job("a", "rotate", mc_rotation_force=True)
    deadline = time.monotonic() + 300
    while not [c for c in project.credentials() if c["id"] not in known]:
        assert rotating.process.poll() is None and time.monotonic() < deadline, rotating.wait().stdout()[-3000:]
        time.sleep(0.1)
    rotating.kill()
    rotating.wait()
    shutil.rmtree(node_dirs["a"])  # the container is gone, with its disk
    outages = invariant.check()

    figures = {"outages_after_kill": outages}
    if state_url:
        # the killed job's lock lives in the database: node B sees it (no shared disk) until it expires
        clock.now -= datetime.timedelta(minutes=2)
        locked = job("b", "too-soon", mc_rotation_now=clock.tick(0)).wait()
        figures["locked_seen"] = locked.rc != 0 and "being rotated by another run" in locked.stdout()
    resumed = job("b", "resume").wait()
    figures.update({
        "resume_rc": resumed.rc, "resume_seconds": round(resumed.seconds, 1), "resume_text": resumed.stdout()[-3000:],
        "outages": invariant.check(), "created": len([c for c in project.credentials() if c["id"] not in known]),
        "revoked_new": [c["id"] for c in project.credentials() if c["id"] not in known and c["status"] == "REVOKED"],
        "old_status": {c["id"]: c["status"] for c in project.credentials()}[old["id"]],
    })
    settle = [job("b", "settle-1").wait()]
    while settle[-1].rc != 0 or settle[-1].host_tasks():
        assert len(settle) < 4, settle[-1].stdout()[-3000:]
        settle.append(job("b", "settle-%d" % (len(settle) + 1)).wait())
    figures["settled"] = invariant.settled()
    figures["created"] = len([c for c in project.credentials() if c["id"] not in known])
    figures["job"] = lambda ident, **extra: job("b", ident, **extra)
    figures["jobs"] = jobs
    figures["keys"] = harness.rotation_private_keys(fleet, node_dirs.values(), project)
    return figures


def test_a_second_node_resumes_what_the_first_left_half_done(emulator, tmp_path, postgres):
    shared = two_nodes(emulator, str(tmp_path / "shared"), postgres.url)
    assert shared["outages_after_kill"] == [] and shared["outages"] == []
    assert shared["locked_seen"], "node B did not see node A's lock"
    assert shared["resume_rc"] == 0, shared["resume_text"]
    assert shared["created"] == 1 and shared["revoked_new"] == [], "one new credential, adopted, not an orphan"
    assert shared["old_status"] == "REVOKED" and shared["settled"] == []

    # the database goes away: a clear, retryable failure that changes nothing and never shows the password
    postgres.stop()
    try:
        down = shared["job"]("database-down", mc_rotation_force=True).wait()
    finally:
        postgres.start_again()
    text = down.stdout()
    assert down.rc != 0 and "The shared rotation state" in text and "run again" in text, text[-3000:]
    assert postgres.password not in text

    # the control: the same story with each node's local file store
    local = two_nodes(emulator, str(tmp_path / "local"), None)
    assert local["outages"] == []
    # node B finds a credential whose key exists nowhere: it revokes the orphan, and the rotation is undone
    assert len(local["revoked_new"]) == 1 and local["old_status"] == "ACTIVE", local
    # R4 over what AWX keeps of every job of both stories (the killed one's too): no key, no password
    needles = harness.secret_needles(shared["keys"] + local["keys"],
                                     [harness.KEYSTORE_PASSWORD, harness.KEY_STORE_PASSWORD, postgres.password])
    hits = harness.scan_paths([job.artifacts() for job in shared["jobs"] + local["jobs"]], needles)
    assert len(shared["keys"]) >= 3 and not hits, hits[:10]
    harness.record_figure("R8 shared state", resume_seconds=shared["resume_seconds"], secret_hits=len(hits),
                          jobs_scanned=len(shared["jobs"]) + len(local["jobs"]),
                          created_shared=shared["created"], orphans_shared=len(shared["revoked_new"]),
                          orphans_local=len(local["revoked_new"]),
                          outages=len(shared["outages"]) + len(local["outages"]))
