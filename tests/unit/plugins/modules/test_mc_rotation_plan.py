"""mc_rotation_plan: the controller side of the rotation (facts in, plan out, ledger, lock, failures).

The remote list is passed in (``remote``), so no API call is made; the planner itself is tested in
tests/unit/plugins/module_utils (inventory). These tests check what the module adds around it.
"""

import datetime
import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.mcdev.credentials.plugins.modules import mc_rotation_plan
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.credential import KeyStore
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import (
    ModuleFail,
    run_module,
    self_signed_certificate,
)

NOW = "2026-06-01T00:00:00Z"
HOSTS = ["h1", "h2"]


def _cred(cid, alias, expires, created="2025-05-01T00:00:00Z", status="ACTIVE", key=None):
    key = key or rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed_certificate(key, alias)
    return {"id": cid, "alias": alias, "kind": "oauth1", "environment": "sandbox", "status": status,
            "fingerprint": crypto.certificate_fingerprint(cert),
            "public_key_fingerprint": crypto.public_key_fingerprint(key),
            "created": created, "expires": expires, "consumer_key": "ck-" + cid,
            "certificate_pem": crypto.dump_certificates([cert]).decode()}, key


def _host(cid, fingerprint, verified=True):
    return {"reachable": True, "current_id": cid, "current_fingerprint": fingerprint,
            "verified_fingerprint": fingerprint if verified else None,
            "verified_at": "2026-01-01T00:00:00Z" if verified else None, "deployed_at": "2025-12-01T00:00:00Z",
            "versions": [{"credential_id": cid, "fingerprint": fingerprint}]}


def _args(tmp_path, **extra):
    args = {"phase": "plan", "project_id": "p1", "kind": "oauth1", "name": "app", "hosts": HOSTS,
            "state_dir": str(tmp_path / "state"), "now": NOW, "consumer_key": "unused",
            "api_url": "https://127.0.0.1:1/developers"}
    args.update(extra)
    return args


def test_unknown_hosts_are_gathered_first_without_a_lock(tmp_path):
    old, _unused = _cred("c1", "app", "2026-07-01T00:00:00Z")
    result = run_module(mc_rotation_plan, _args(tmp_path, remote=[old]))
    assert result["state"] == "GATHER" and result["gather"] == HOSTS
    assert result["changed"] is False
    # only the gather play (and the plan again) run next
    assert (result["prepare"], result["rollout_hosts"], result["record"]) == (False, [], False)
    assert not os.path.exists(tmp_path / "state" / "p1_sandbox_oauth1_app" / "ledger.json")


def test_nothing_due_is_idle_and_leaves_no_lock(tmp_path):
    old, _unused = _cred("c1", "app", "2027-05-01T00:00:00Z")
    facts = dict((h, _host("c1", old["fingerprint"])) for h in HOSTS)
    result = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], host_facts=facts))
    assert result["state"] == "IDLE" and result["create"] is None and result["deploy"] is None
    # the run ends at the plan: no later play matches a host
    assert (result["gather"], result["prepare"], result["rollout_hosts"], result["record"]) == ([], False, [], False)
    # the facts are cached: the next run plans without asking the hosts
    again = run_module(mc_rotation_plan, _args(tmp_path, remote=[old]))
    assert again["state"] == "IDLE" and again["gather"] == []
    ledger = json.load(open(tmp_path / "state" / "p1_sandbox_oauth1_app" / "ledger.json")) \
        if os.path.exists(tmp_path / "state" / "p1_sandbox_oauth1_app" / "ledger.json") else {}
    assert not ledger.get("lock_owner")


def test_due_plans_a_create_into_the_key_store_and_holds_the_lock(tmp_path):
    old, _unused = _cred("c1", "app", "2026-08-01T00:00:00Z")
    facts = dict((h, _host("c1", old["fingerprint"])) for h in HOSTS)
    result = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], host_facts=facts))
    assert result["state"] == "CREATING"
    create = result["create"]
    assert create["alias"].startswith("app-") and create["alias"] == "app-" + result["rotation_id"]
    assert create["key_path"].startswith(create["key_store"]) and create["key_path"].endswith(".key.pem")
    assert os.path.isdir(os.path.dirname(create["key_path"]))
    # the controller creates, every reachable host gets it, and the run ends by recording
    assert result["prepare"] is True and result["rollout_hosts"] == HOSTS and result["record"] is True
    # a second run meanwhile is refused, naming the lock holder
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_rotation_plan, _args(tmp_path, remote=[old]))
    assert "being rotated by another run" in failed.value.result["msg"]
    assert result["run_id"] in failed.value.result["msg"]


def test_created_credential_is_rolled_out_from_the_key_store(tmp_path):
    old, _unused = _cred("c1", "app", "2026-08-01T00:00:00Z")
    facts = dict((h, _host("c1", old["fingerprint"])) for h in HOSTS)
    first = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], host_facts=facts))
    new, key = _cred("c2", first["create"]["alias"], "2027-07-01T00:00:00Z", created=NOW)
    KeyStore(first["create"]["key_store"], "p1", "sandbox").save(first["create"]["alias"], key)
    rollout = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], created=new, run_id=first["run_id"]))
    deploy = rollout["deploy"]
    assert deploy["credential_id"] == "c2" and sorted(deploy["hosts"]) == HOSTS
    # resuming a staged credential: nothing to create, the fleet play runs on the plan's hosts
    assert rollout["prepare"] is False and rollout["rollout_hosts"] == deploy["hosts"] and rollout["record"] is True
    assert deploy["key_path"] == first["create"]["key_path"]
    assert deploy["credential"]["certificate_pem"].startswith("-----BEGIN CERTIFICATE")
    assert "PRIVATE KEY" not in json.dumps(rollout)

    # the fleet reports the new credential verified: the old one may be revoked
    done = dict((h, _host("c2", new["fingerprint"])) for h in HOSTS)
    recorded = run_module(mc_rotation_plan, _args(tmp_path, phase="record", remote=rollout["remote"],
                                                  host_facts=done, run_id=first["run_id"]))
    assert recorded["state"] == "REVOKING" and recorded["revoke"] == ["c1"]
    assert recorded["in_use_fingerprints"] == [new["fingerprint"]]

    released = run_module(mc_rotation_plan, _args(tmp_path, phase="release", revoked=["c1"],
                                                  run_id=first["run_id"]))
    assert released["ledger"]["lock_owner"] is None and released["ledger"]["rotation_id"] is None


def test_unreachable_host_blocks_revocation(tmp_path):
    old, _unused = _cred("c1", "app", "2026-08-01T00:00:00Z")
    new, key = _cred("c2", "app-1780000000", "2027-07-01T00:00:00Z", created="2026-05-31T00:00:00Z")
    KeyStore(str(tmp_path / "state" / "p1_sandbox_oauth1_app" / "keys"), "p1", "sandbox").save(new["alias"], key)
    facts = {"h1": _host("c2", new["fingerprint"]), "h2": {"reachable": False}}
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_rotation_plan, _args(tmp_path, phase="record", remote=[old, new], host_facts=facts,
                                           run_id="r1"))
    msg = failed.value.result["msg"]
    assert "h2" in msg and "unreachable" in msg
    assert failed.value.result.get("revoke", []) == []


def test_failed_host_counts_one_attempt_per_run_names_it_and_releases_the_lock(tmp_path):
    old, _unused = _cred("c1", "app", "2026-08-01T00:00:00Z")
    facts = dict((h, _host("c1", old["fingerprint"])) for h in HOSTS)
    plan = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], host_facts=facts))
    for host in HOSTS:
        with pytest.raises(ModuleFail) as failed:
            run_module(mc_rotation_plan, _args(
                tmp_path, phase="failed", run_id=plan["run_id"], host=host, rolled_back_to="c1",
                error="Reload the application (command) failed: rc 3",
                host_facts={host: _host("c1", old["fingerprint"])}))
        result = failed.value.result
        assert "stopped on host %s" % host in result["msg"] and "rc 3" in result["msg"]
        assert "put back on version c1" in result["msg"] and "Nothing was revoked" in result["msg"]
    ledger = result["ledger"]
    assert ledger["attempts"] == 1 and ledger["lock_owner"] is None
    assert "h1" in ledger["last_error"] and "h2" in ledger["last_error"]
    assert ledger["next_attempt_at"] == "2026-06-01T01:00:00Z"
    # a scheduled run waits for the backoff; a manual run (respect_backoff=false) goes ahead
    waiting = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], respect_backoff=True))
    assert waiting["state"] == "FAILED_RETRYABLE" and waiting["create"] is None
    manual = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], respect_backoff=False))
    assert manual["state"] == "CREATING"


@pytest.mark.parametrize("option,value,words", [
    ("now", "yesterday", "now='yesterday' is not an ISO 8601 time"),
    ("soak_hours", -1, "soak_hours must not be negative"),
    ("max_attempts", 0, "max_attempts must be at least 1"),
])
def test_bad_input_names_the_option(tmp_path, option, value, words):
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_rotation_plan, _args(tmp_path, remote=[], **{option: value}))
    assert words in failed.value.result["msg"]


def test_check_mode_takes_no_lock(tmp_path):
    old, _unused = _cred("c1", "app", "2026-08-01T00:00:00Z")
    facts = dict((h, _host("c1", old["fingerprint"])) for h in HOSTS)
    result = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], host_facts=facts), check_mode=True)
    assert result["state"] == "CREATING"
    assert not os.path.exists(tmp_path / "state" / "p1_sandbox_oauth1_app" / "ledger.json")
    # check mode only plans: no create, no roll-out, no record
    assert (result["prepare"], result["rollout_hosts"], result["record"]) == (False, [], False)


@pytest.mark.parametrize("rollout,words", [
    ({"key_formats": ["p12"], "verify_url": "https://probe"}, "mc_rotation_keystore_password is required"),
    ({"key_formats": ["pem"]}, "mc_rotation_verify_url is required for kind oauth1"),
    ({"key_formats": ["pem"], "verify_url": "https://probe", "reload_command": "x", "reload_service": "y"},
     "Set only one of mc_rotation_reload_command and mc_rotation_reload_service"),
])
def test_rollout_settings_are_refused_before_anything_is_planned(tmp_path, rollout, words):
    old, _unused = _cred("c1", "app", "2026-08-01T00:00:00Z")
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_rotation_plan, _args(tmp_path, remote=[old], rollout=rollout))
    assert words in failed.value.result["msg"]
    assert not os.path.exists(tmp_path / "state")


def test_consistent_rollout_settings_plan_as_usual(tmp_path):
    old, _unused = _cred("c1", "app", "2027-05-01T00:00:00Z")
    facts = dict((h, _host("c1", old["fingerprint"])) for h in HOSTS)
    result = run_module(mc_rotation_plan, _args(tmp_path, remote=[old], host_facts=facts, rollout={
        "key_formats": ["p12"], "keystore_password_set": True, "verify_url": "https://probe",
        "reload_command": "systemctl reload app"}))
    assert result["state"] == "IDLE"


def test_plan_revokes_orphans_itself_against_the_api(emulator, monkeypatch, tmp_path):
    """An orphan (newer lineage credential whose key exists nowhere) is revoked by the plan task, with mc_revoke's
    guards, before anything is created; the target the hosts carry stays active."""
    for name in ("MC_DEVAPI_URL", "MC_DEVAPI_CONSUMER_KEY", "MC_DEVAPI_SIGNING_KEY_PATH",
                 "MC_DEVAPI_SIGNING_KEY_CONTENT", "MC_DEVAPI_SIGNING_KEY_PASSWORD", "MC_DEVAPI_CA_PATH"):
        monkeypatch.delenv(name, raising=False)
    account = emulator.new_account()
    project = emulator.new_project(account["account_id"], auth_model="OAUTH10A")["id"]
    now = emulator.admin("GET", "/clock")["now"]

    def seed(alias, age_days):
        body = {"type": "SIGNING", "oauthVersion": "1.0a", "environment": "SANDBOX", "alias": alias,
                "notBefore": now - age_days * 86400, "expiryDate": now + (395 - age_days) * 86400}
        cred = emulator.admin("POST", "/projects/%s/credentials" % project, body)
        cred.pop("private_key_pem", None)
        return cred

    target = seed("app", 30)
    orphan = seed("app-1780000000", 1)
    facts = dict((h, _host(target["id"], target["fingerprint"])) for h in HOSTS)
    conn = dict(api_url=emulator.info["api_url"], consumer_key=account["consumer_key"],
                signing_key_content=account["signing_key_pem"], ca_path=emulator.info["ca_path"], retries=0)
    args = dict(_args(tmp_path, project_id=project, host_facts=facts, revoke=True), **conn)
    args["now"] = _iso(now)

    # A failed revocation stops the run before anything is created: one failed attempt, lock released.
    emulator.admin("POST", "/faults", {"route": "revoke_credential", "status": 503, "count": 1})
    try:
        with pytest.raises(ModuleFail) as failed:
            run_module(mc_rotation_plan, args)
    finally:
        emulator.admin("DELETE", "/faults")
    msg = failed.value.result["msg"]
    assert "revoking orphan credential(s) %s" % orphan["id"] in msg and "Nothing was created" in msg
    ledger = json.load(open(tmp_path / "state" / ("%s_sandbox_oauth1_app" % project) / "ledger.json"))
    assert ledger["attempts"] == 1 and not ledger.get("lock_owner")

    result = run_module(mc_rotation_plan, dict(args, respect_backoff=False))
    assert result["revoked"] == [orphan["id"]] and result["changed"] is True
    assert result["revoke_orphans"] == [] and result["prepare"] is False
    assert [r["status"] for r in result["remote"] if r["id"] == orphan["id"]] == ["REVOKED"]
    from ansible_collections.mcdev.credentials.plugins.module_utils import devapi
    with devapi.client_from_params(conn) as client:
        listed = dict((c.id, c.status) for c in client.list_credentials(project))
    assert listed == {target["id"]: "ACTIVE", orphan["id"]: "REVOKED"}
    # nothing else to do: the run ends at this plan, and its lock is released
    assert result["state"] == "IDLE" and result["record"] is False
    ledger = json.load(open(tmp_path / "state" / ("%s_sandbox_oauth1_app" % project) / "ledger.json"))
    assert not ledger.get("lock_owner") and ledger["attempts"] == 0 and not ledger.get("next_attempt_at")


def _iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---------------------------------------------------------------------------
# backend=portal: the portal folder instead of the API, the person's steps as plan states
# ---------------------------------------------------------------------------

def _portal_args(tmp_path, **extra):
    args = _args(tmp_path, backend="portal", portal_dir=str(tmp_path / "portal"), **extra)
    for option in ("consumer_key", "api_url"):
        args.pop(option)
    return args


def _open_create_order(tmp_path, alias):
    """A create work order as mc_oauth_key writes it (a real CSR), left unanswered."""
    from ansible_collections.mcdev.credentials.plugins.module_utils import portal  # pylint: disable=import-outside-toplevel
    desk = portal.PortalDesk(str(tmp_path / "portal"), "p1", "oauth1")
    csr = crypto.build_csr(crypto.generate_private_key(), {"CN": alias})
    with pytest.raises(portal.AwaitingPerson) as waiting:
        desk.create_credential("p1", "oauth1", "sandbox", alias, csr_pem=crypto.dump_csr(csr).decode("ascii"))
    return waiting.value.paths


def _meta_host(cid, fingerprint, expires):
    return dict(_host(cid, fingerprint), current_expires=expires, current_kind="oauth1")


def test_portal_adopts_what_hosts_use_then_waits_on_the_person_and_escalates(tmp_path):
    old, _unused = _cred("c1", "app", "2026-08-01T00:00:00Z")
    facts = dict((h, _meta_host("c1", old["fingerprint"], old["expires"])) for h in HOSTS)
    # the portal folder is empty: the credential in use is known only from the hosts
    first = run_module(mc_rotation_plan, _portal_args(tmp_path, host_facts=facts))
    assert first["state"] == "CREATING" and first["target"]["id"] == "c1", first["reason"]
    with open(tmp_path / "portal" / "p1" / "credentials.json", encoding="utf-8") as handle:
        (adopted,) = json.load(handle)["credentials"]
    assert (adopted["id"], adopted["source"], adopted["expiryDate"]) == ("c1", "hosts", "2026-08-01T00:00:00Z")
    paths = _open_create_order(tmp_path, first["create"]["alias"])
    run_module(mc_rotation_plan, _portal_args(tmp_path, phase="release", run_id=first["run_id"]))

    waiting = run_module(mc_rotation_plan, _portal_args(tmp_path))
    assert waiting["state"] == "AWAITING_ISSUE" and waiting["changed"] is False
    assert (waiting["prepare"], waiting["rollout_hosts"], waiting["record"]) == (False, [], False)
    assert waiting["work_orders"] == [{"json": paths["json"], "page": paths["page"], "inbox": paths["inbox"],
                                       "step": "create"}]
    assert paths["page"] in waiting["reason"] and "expires 2026-08-01T00:00:00Z" in waiting["reason"]
    assert any("waiting on a person" in w for w in waiting["warnings"])
    ledger = json.load(open(tmp_path / "state" / "p1_sandbox_oauth1_app" / "ledger.json"))
    assert ledger["attempts"] == 0 and not ledger["lock_owner"] and ledger["rotation_id"] == first["rotation_id"]

    # within escalate_before days of the in-use credential's expiry, the wait fails (and a schedule pages)
    with pytest.raises(ModuleFail) as paged:
        run_module(mc_rotation_plan, _portal_args(tmp_path, now="2026-07-28T00:00:00Z"))
    assert "act now or the integration stops" in paged.value.result["msg"]
    assert paged.value.result["state"] == "AWAITING_ISSUE"

    # what the person brings back answers the work order: the plan goes on to create (mc_oauth_key reads it)
    answered = run_module(mc_rotation_plan, _portal_args(tmp_path, issued={"consumer_key": "x" * 48 + "!" + "a" * 48}))
    assert answered["state"] == "CREATING" and answered["prepare"] is True


def test_portal_revoked_in_portal_confirms_only_an_open_revoke_work_order(tmp_path):
    old, _k1 = _cred("c1", "app", "2026-08-01T00:00:00Z")
    new, _k2 = _cred("c2", "app-1780000000", "2027-06-01T00:00:00Z", created="2026-05-30T00:00:00Z")
    portal_dir = tmp_path / "portal" / "p1"
    portal_dir.mkdir(parents=True)
    records = [{"id": c["id"], "alias": c["alias"], "environment": "SANDBOX", "status": "ACTIVE", "type": "SIGNING",
                "oauthVersion": "1.0a", "fingerprint": c["fingerprint"], "createdDate": c["created"],
                "expiryDate": c["expires"], "consumerKey": c["consumer_key"]} for c in (old, new)]
    (portal_dir / "credentials.json").write_text(json.dumps({"version": 1, "credentials": records}))
    facts = dict((h, dict(_host("c2", new["fingerprint"]), versions=[
        {"credential_id": "c2", "fingerprint": new["fingerprint"]},
        {"credential_id": "c1", "fingerprint": old["fingerprint"], "verified_at": "2026-01-01T00:00:00Z"}]))
        for h in HOSTS)
    # a confirmation given before any revoke work order was written confirms nothing: the work order comes first
    first = run_module(mc_rotation_plan, _portal_args(tmp_path, phase="record", revoke=True, host_facts=facts,
                                                      revoked_in_portal=True))
    assert first["state"] == "AWAITING_REVOKE" and first["revoked"] == [] and first["changed"] is True
    (order,) = first["work_orders"]
    assert order["step"] == "revoke" and order["credential_id"] == "c1" and os.path.exists(order["json"])
    again = run_module(mc_rotation_plan, _portal_args(tmp_path))
    assert again["state"] == "AWAITING_REVOKE" and again["changed"] is False and again["record"] is False
    # now the person confirms the open work order: the plan revokes (records) it and ends the rotation
    confirmed = run_module(mc_rotation_plan, _portal_args(tmp_path, revoked_in_portal=True))
    assert confirmed["state"] == "REVOKING" and confirmed["record"] is True
    done = run_module(mc_rotation_plan, _portal_args(tmp_path, phase="record", revoke=True, run_id=confirmed["run_id"],
                                                     revoked_in_portal=True))
    assert done["revoked"] == ["c1"]
    statuses = dict((r["id"], r["status"]) for r in json.load(open(portal_dir / "credentials.json"))["credentials"])
    assert statuses == {"c1": "REVOKED", "c2": "ACTIVE"}
    assert not os.path.exists(order["json"]), "the work order is filed away"
