"""The rotation role with ``mc_rotation_backend: portal``: the same plays and planner, a person in the middle.

A scripted person reads only the JSON work orders and carries them out at the emulator's portal-like admin
path. The credential in use was made in the portal before (the portal folder starts empty), so the run
adopts it from the hosts. After every run the invariant is checked against the emulator from every host.
"""

import glob
import json
import os
import shutil

import pytest

import fleet as F
from test_rotation import active, check_invariant, emulator, make_fleet  # noqa: F401  pylint: disable=unused-import

from ansible_collections.mcdev.credentials.tests.emulator.person import ScriptedPerson

PORTAL = {"mc_rotation_backend": "portal"}


def open_orders(fl, step):
    return sorted(glob.glob(os.path.join(fl.state_dir, "portal", fl.project["id"], "work-orders",
                                         "*-%s.json" % step)))


def rotate(fl, **extra):
    """One run of rotate.yml through the portal: it never calls the Developers API (the checks in between do)."""
    before = fl.api_calls()
    result = fl.rotate(**dict(PORTAL, **extra))
    assert fl.api_calls() == before, "the portal backend made Developers API calls"
    return result


def quiet(result):
    """A run that only planned: no host contacted, nothing changed on the controller."""
    assert result.contacted() == [], result.output[-3000:]
    assert result.recap()["localhost"]["changed"] == 0, result.output[-3000:]


def host_tasks(result):
    return sum(counts.get("ok", 0) + counts.get("changed", 0) + counts.get("failed", 0)
               for host, counts in result.recap().items() if host != "localhost")


def spoiled(kind, material, emulator_ca):
    """Material that does not fit the work order: another key's certificate, or an identifier of the wrong shape."""
    if kind == "mtls":
        with open(emulator_ca, encoding="ascii") as handle:
            return dict(material, certificate=handle.read())  # the CA itself: another key, another subject
    if kind == "oauth1":
        return dict(material, consumer_key=material["consumer_key"].split("!")[0])
    return dict(material, kid="not-a-kid")


# OAuth 2.0 through the portal: tests/unit/plugins/modules/test_portal_backend.py (kept out of make test's budget)
@pytest.mark.parametrize("kind", ["mtls", "oauth1"])
def test_portal_rotation_adopts_waits_resumes_and_closes(make_fleet, kind):  # noqa: F811
    fl = make_fleet(kind=kind, local_hosts=2)
    old = fl.seed(expires_in_days=60)  # made in the portal before: the portal folder knows nothing of it
    fl.bootstrap(old)
    check_invariant(fl)
    person = ScriptedPerson(fl.emulator, bring_id=True)

    first = rotate(fl)
    assert "AWAITING_ISSUE" in first.output and "waits for a person" in first.output, first.output[-3000:]
    (create_order,) = open_orders(fl, "create")
    order = person.read(create_order)
    # the credential in use was adopted from the hosts: its expiry is what the reminder counts down to
    assert "the credential in use, %s, expires" % fl.name in first.output, first.output[-3000:]
    assert active(fl) == [old["id"]]
    check_invariant(fl)

    # A second run while the person has not answered: nothing changes, no host, the reminder again.
    second = rotate(fl)
    quiet(second)
    assert "Still waiting on work order" in second.output
    assert "expires" in second.output and "[WARNING]" in second.output

    # The person adds it at the portal but brings back the wrong thing: refused, the work order stays open.
    shown, material = person.add(create_order, drop=False)
    person.drop(order, spoiled(kind, material, fl.emulator.info["ca_path"]))
    wrong = rotate(fl, _check=False)
    assert wrong.rc != 0 and "the work order stays open" in wrong.output, wrong.output[-3000:]
    assert wrong.contacted() == []
    assert open_orders(fl, "create") == [create_order]
    assert fl.ledger().get("attempts", 0) == 0 and not fl.ledger().get("lock_owner"), fl.ledger()
    check_invariant(fl)

    # The right material: the same run deploys, verifies on every host, and writes the revoke work order.
    person.drop(order, material)
    third = rotate(fl)
    assert "AWAITING_REVOKE" in third.output, third.output[-3000:]
    assert open_orders(fl, "create") == []
    probes = check_invariant(fl)
    assert set(p["current"] for p in probes.values()) == {shown["id"]}
    assert sorted(active(fl)) == sorted([old["id"], shown["id"]]), "the old credential stays until revoked"
    (revoke_order,) = open_orders(fl, "revoke")
    assert person.read(revoke_order)["credential_id"] == old["id"]

    fourth = rotate(fl)
    quiet(fourth)
    assert "revoke work order" in fourth.output

    person.revoke(revoke_order)
    fifth = rotate(fl)
    assert fifth.contacted() == [], "closing the revocation needs no host"
    assert active(fl) == [shown["id"]]
    assert open_orders(fl, "revoke") == []
    assert not fl.ledger().get("rotation_id"), fl.ledger()
    check_invariant(fl)
    with open(os.path.join(fl.state_dir, "portal", fl.project["id"], "credentials.json"), encoding="utf-8") as handle:
        statuses = dict((r["id"], r["status"]) for r in json.load(handle)["credentials"])
    assert statuses == {old["id"]: "REVOKED", shown["id"]: "ACTIVE"}

    sixth = rotate(fl)
    quiet(sixth)
    assert "Nothing is due" in sixth.output
    assert [o["step"] for o in person.followed] == ["create", "revoke"]
    runs = [first, second, wrong, third, fourth, fifth, sixth]
    print("FIGURES portal %s: host tasks %d over %d runs; material supplied -> verified on every host %.1f s"
          % (kind, sum(host_tasks(r) for r in runs), len(runs), third.seconds))
    if kind == "oauth1":
        # The same rotation through the Developers API, on a twin fleet: the person's steps add no host task.
        twin = make_fleet(kind=kind, local_hosts=2, name="twin-cred")
        twin.bootstrap(twin.seed(expires_in_days=60))
        twin.reset_counters()
        api_run = twin.rotate()
        assert host_tasks(api_run) == sum(host_tasks(r) for r in runs), (host_tasks(api_run), [host_tasks(r) for r in runs])
        print("FIGURES api %s: host tasks %d in 1 run, %d Developers API calls, %.1f s"
              % (kind, host_tasks(api_run), twin.api_calls(), api_run.seconds))


def runner_job(fl, ident, extravars):
    """One AWX job of the rotation: ansible-runner, a fresh private data dir, extravars as a survey sets them.
    The controller state (fl.state_dir, with the portal folder) is the storage every job of the workflow sees."""
    import ansible_runner  # pylint: disable=import-outside-toplevel
    data = os.path.join(fl.work, "awx", ident)
    for folder in ("env", "inventory"):
        os.makedirs(os.path.join(data, folder))
    shutil.copy(fl.inventory, os.path.join(data, "inventory", "hosts.yml"))
    with open(os.path.join(data, "env", "extravars"), "w", encoding="utf-8") as handle:
        json.dump(fl.variables(**dict(PORTAL, **extravars)), handle)
    with open(os.path.join(data, "env", "envvars"), "w", encoding="utf-8") as handle:
        json.dump({"ANSIBLE_NOCOLOR": "1", "ANSIBLE_HOST_KEY_CHECKING": "False"}, handle)
    result = ansible_runner.run(private_data_dir=data, project_dir=F.PLAYBOOKS, playbook="rotate.yml", ident=ident,
                                quiet=True)
    assert (result.status, result.rc) == ("successful", 0), result.stdout.read()[-4000:]
    stats = [e for e in result.events if e.get("event") == "playbook_on_stats"][-1]["event_data"]
    return stats.get("artifact_data") or {}


def test_awx_workflow_with_approval_nodes_between_the_jobs(make_fleet):  # noqa: F811
    """prepare (job) -> approval (the person at the portal) -> resume (job, survey: issued) -> approval (revoke)
    -> close (job, survey: revoked_in_portal). The work orders travel as the jobs' set_stats artifacts."""
    fl = make_fleet(kind="mtls", local_hosts=2)
    old = fl.seed(expires_in_days=20)
    fl.bootstrap(old)
    person = ScriptedPerson(fl.emulator, bring_id=True)

    prepared = runner_job(fl, "prepare", {})
    (order,) = prepared["mc_rotation_work_orders"]
    assert order["step"] == "create" and os.path.exists(order["page"])
    check_invariant(fl)

    _shown, material = person.add(order["json"], drop=False)  # approval node: the person adds it at the portal
    resumed = runner_job(fl, "resume", {"mc_rotation_issued": material})
    (order,) = resumed["mc_rotation_work_orders"]
    assert order["step"] == "revoke" and order["credential_id"] == old["id"]
    probes = check_invariant(fl)
    assert set(p["current"] for p in probes.values()) == {material["credential_id"]}

    person.revoke(order["json"], drop=False)  # approval node: the person revokes the old one
    closed = runner_job(fl, "close", {"mc_rotation_revoked_in_portal": True})
    assert "mc_rotation_work_orders" not in closed
    assert active(fl) == [material["credential_id"]]
    check_invariant(fl)


def test_nobody_answers_the_alarm_escalates_and_nothing_breaks_before_the_expiry(make_fleet):  # noqa: F811
    fl = make_fleet(kind="oauth1", local_hosts=2)
    old = fl.seed(expires_in_days=12)
    fl.bootstrap(old)
    first = rotate(fl)
    assert "AWAITING_ISSUE" in first.output and "[WARNING]" in first.output
    later = F.iso(fl.emulator_now() + 6 * 86400)  # 6 days left: within escalate_before (7 days)
    paged = rotate(fl, _check=False, mc_rotation_now=later)
    assert paged.rc != 0 and "act now or the integration stops" in paged.output, paged.output[-3000:]
    assert paged.contacted() == [] and paged.recap()["localhost"]["changed"] == 0
    assert len(open_orders(fl, "create")) == 1, "still the one work order, not a second"
    assert not fl.ledger().get("lock_owner") and fl.ledger().get("attempts", 0) == 0
    assert active(fl) == [old["id"]]
    check_invariant(fl)  # the credential in use keeps working until its own expiry
