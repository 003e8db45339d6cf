# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Expiry facts, matching, host facts, the rotation planner and its invariant."""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timedelta, timezone

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import _time
from ansible_collections.mcdev.credentials.plugins.module_utils import inventory as inv
from ansible_collections.mcdev.credentials.plugins.module_utils.inventory import (
    Backoff, HostState, Ledger, LedgerError, LedgerRecord, LockHeld, Outcome, VersionFact,
)

NOW = datetime(2026, 6, 1, tzinfo=timezone.utc)
DAY = timedelta(days=1)
LIFE = timedelta(days=395)


def iso(value):
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def cred(cid, *, age_days=100, expires_in=None, status="ACTIVE", kind="oauth2", env="sandbox", alias=None,
         pk=None):
    """A Credential.to_dict()-shaped record, created age_days ago with a 395-day life."""
    created = NOW - age_days * DAY
    expires = created + LIFE if expires_in is None else NOW + expires_in * DAY
    return {"id": cid, "alias": alias if alias is not None else "app-%s" % cid, "type": "SIGNING", "kind": kind,
            "environment": env, "status": status, "consumer_key": None, "client_id": None, "kid": None,
            "fingerprint": "fp-" + cid, "public_key_fingerprint": pk or "pk-" + cid, "serial": "01",
            "subject": "CN=x", "created": iso(created), "expires": iso(expires)}


def on(cid, verified=True, keep=(), deployed_at=None):
    """Facts of a reachable host whose current link points at cid (keep: other version folders)."""
    versions = [{"credential_id": cid, "fingerprint": "fp-" + cid,
                 "verified_at": iso(NOW - DAY) if verified else None}]
    versions += [{"credential_id": k, "fingerprint": "fp-" + k, "verified_at": iso(NOW - 30 * DAY)} for k in keep]
    facts = {"reachable": True, "current_id": cid, "current_fingerprint": "fp-" + cid,
             "verified_fingerprint": "fp-" + cid if verified else None,
             "verified_at": iso(NOW - DAY) if verified else None, "versions": versions}
    if deployed_at is not None:
        facts["deployed_at"] = iso(deployed_at)
    return facts


def empty_host():
    return {"reachable": True, "current_id": None, "versions": []}


DOWN = {"reachable": False}
OLD_DUE = dict(age_days=300)          # 95 days left: inside the ~131.7-day lead
OLD_FINE = dict(age_days=100)         # 295 days left: not due


def plan(remote, hosts, ledger=None, now=NOW, **kw):
    args = dict(kind="oauth2", environment="sandbox", alias_prefix="app", soak_seconds=0, owner="run-1")
    args.update(kw)
    return inv.plan_rotation(remote, hosts, ledger, now, **args)


def kinds(p):
    return [a.kind for a in p.actions]


def action(p, kind):
    found = [a for a in p.actions if a.kind == kind]
    assert len(found) == 1, (kind, kinds(p))
    return found[0]


# ---------------------------------------------------------------------------
# expiry facts
# ---------------------------------------------------------------------------

S = timedelta(seconds=1)


@pytest.mark.parametrize("left,bucket", [
    (400 * DAY, None), (91 * DAY, None), (90 * DAY + S, None), (90 * DAY, 90), (89 * DAY, 90),
    (60 * DAY + S, 90), (60 * DAY, 60), (30 * DAY + S, 60), (30 * DAY, 30), (15 * DAY + S, 30), (15 * DAY, 15),
    (7 * DAY + S, 15), (7 * DAY, 7), (DAY + S, 7), (DAY, 1), (DAY / 2, 1), (S, 1), (timedelta(0), "expired"),
    (-S, "expired"), (-10 * DAY, "expired"),
])
def test_notice_bucket_boundaries(left, bucket):
    assert inv.notice_bucket(NOW + left, NOW) == bucket
    assert inv.notice_bucket(iso(NOW + left), iso(NOW)) == bucket


def test_days_left_is_fractional_and_accepts_strings():
    assert inv.days_left("2026-06-11T12:00:00Z", NOW) == 10.5
    assert inv.days_left(NOW - 2 * DAY, NOW) == -2
    assert inv.days_left(datetime(2026, 6, 2), NOW) == 1  # naive means UTC


def test_days_left_requires_now():
    with pytest.raises(ValueError):
        inv.days_left(NOW, None)


@pytest.mark.parametrize("lifetime,lead,expected", [
    (395, None, LIFE / 3),                       # ~131.7 days, the 1/3 rule
    (timedelta(days=395), None, LIFE / 3),
    (None, None, LIFE / 3),                      # unknown lifetime -> the portal's 395 days
    (90, None, timedelta(days=30)),
    (30, None, timedelta(days=14)),              # floor
    (20, None, timedelta(days=10)),              # floor, but at most half the lifetime
    (1, None, timedelta(hours=12)),
    (1000, None, timedelta(days=180)),           # cap
    (395, 30, timedelta(days=30)),               # explicit
    (395, timedelta(days=394), timedelta(days=394)),
    (395, 0.5, timedelta(hours=12)),
])
def test_lead_time(lifetime, lead, expected):
    assert inv.lead_time(lifetime, lead) == expected


@pytest.mark.parametrize("lifetime,lead,words", [
    (395, 395, "renewal loop"),
    (395, 400, "renewal loop"),
    (30, timedelta(days=30), "renewal loop"),
    (395, 0, "positive"),
    (395, -5, "positive"),
    (0, None, "lifetime must be positive"),
    (395, True, "number or a timedelta"),
    (395, "30", "number or a timedelta"),
])
def test_lead_time_refuses(lifetime, lead, words):
    with pytest.raises(ValueError, match=words):
        inv.lead_time(lifetime, lead)


def test_lead_for_395_days_is_about_130():
    assert 131 < inv.lead_time(395).total_seconds() / 86400 < 132


@pytest.mark.parametrize("record,lead,expected", [
    (cred("a", age_days=100), None, False),
    (cred("a", age_days=263), None, False),      # 132 days left: just outside 131.67
    (cred("a", age_days=264), None, True),       # 131 days left
    (cred("a", age_days=300), None, True),
    (cred("a", age_days=300), 30, False),        # explicit lead: 95 days left > 30
    (cred("a", age_days=380), 30, True),
    (cred("a", age_days=400), None, True),       # clock-expired ACTIVE: still to be replaced
    (cred("a", age_days=300, status="REVOKED"), None, False),
    (cred("a", age_days=300, status="INACTIVE"), None, False),
])
def test_should_rotate(record, lead, expected):
    assert inv.should_rotate(record, NOW, lead) is expected


def test_renewal_time_uses_the_actual_lifetime():
    record = cred("a", age_days=0)
    record["expires"] = iso(NOW + 90 * DAY)      # a 90-day certificate
    assert inv.renewal_time(record) == NOW + 60 * DAY
    record["created"] = None                     # unknown creation: assume 395 days
    assert inv.renewal_time(record) == NOW + 90 * DAY - LIFE / 3
    assert inv.renewal_time({"id": "x"}) is None


def test_remote_credential_state_derives_expired():
    record = inv.RemoteCredential.from_dict(cred("a", expires_in=-1))
    assert record.state(NOW) == "EXPIRED" and not record.is_active(NOW)
    assert inv.RemoteCredential.from_dict(cred("b", status="revoked")).state(NOW) == "REVOKED"
    with pytest.raises(ValueError):
        inv.RemoteCredential.from_dict({"alias": "no id"})


# ---------------------------------------------------------------------------
# local <-> remote matching
# ---------------------------------------------------------------------------

def test_match_local_by_fingerprint_key_and_unknown():
    renewed_old = cred("r1", age_days=390, status="REVOKED", pk="pk-shared")
    renewed_new = cred("r2", age_days=10, pk="pk-shared")
    remote = [cred("a"), cred("b", expires_in=-3), renewed_old, renewed_new]
    files = [
        {"host": "h2", "path": "/etc/app/current/cert.pem", "fingerprint": "FP-A"},
        {"host": "h1", "path": "/etc/app/current/cert.pem", "fingerprint": "fp-a"},
        {"host": "h1", "path": "/etc/app/old/cert.pem", "fingerprint": "fp-a"},           # same host twice
        {"host": "h3", "path": "/srv/key.pem", "fingerprint": "", "public_key_fingerprint": "pk-shared"},
        {"host": "h3", "path": "/srv/b.pem", "fingerprint": "fp-b"},
        {"host": "h4", "path": "/tmp/x.pem", "fingerprint": "fp-nobody", "public_key_fingerprint": "pk-nobody"},
    ]
    result = inv.match_local(remote, files, now=NOW)
    by_path = {(f.host, f.path): f for f in result.files}
    assert by_path[("h2", "/etc/app/current/cert.pem")].credential_id == "a"
    assert by_path[("h2", "/etc/app/current/cert.pem")].matched_by == "fingerprint"
    key_match = by_path[("h3", "/srv/key.pem")]
    assert (key_match.credential_id, key_match.matched_by, key_match.status) == ("r2", "public_key", "ACTIVE")
    assert by_path[("h3", "/srv/b.pem")].status == "EXPIRED"
    assert [(f.host, f.path) for f in result.unknown] == [("h4", "/tmp/x.pem")]
    assert result.hosts_by_credential == {"a": ["h1", "h2"], "b": ["h3"], "r1": [], "r2": ["h3"]}
    assert json.dumps(result.to_dict())


def test_match_local_without_clock_uses_recorded_status():
    remote = [cred("b", expires_in=-3)]
    result = inv.match_local(remote, [{"host": "h", "path": "p", "fingerprint": "fp-b"}])
    assert result.files[0].status == "ACTIVE"


# ---------------------------------------------------------------------------
# host deployment facts
# ---------------------------------------------------------------------------

def test_build_meta_has_only_non_secret_facts_and_dumps_stably():
    meta = inv.build_meta(cred("c-1"), deployed_at=NOW, rotation_id="1780000000")
    assert meta == {"credential_id": "c-1", "fingerprint": "fp-c-1", "kind": "oauth2",
                    "expires": iso(NOW - 100 * DAY + LIFE), "deployed_at": "2026-06-01T00:00:00Z",
                    "verified_at": None, "rotation_id": "1780000000"}
    text = inv.dump_meta(meta)
    assert text.endswith("}\n") and json.loads(text) == meta
    assert inv.dump_meta(dict(reversed(list(meta.items())))) == text


@pytest.mark.parametrize("bad", ["", ".", "..", "a/b", "..\\x", "a\0b", None])
def test_credential_ids_are_checked_for_paths(bad):
    with pytest.raises(ValueError):
        inv.check_credential_id(bad)
    with pytest.raises(ValueError):
        inv.build_meta({"id": bad or "x/y"}, deployed_at=NOW)


def test_host_paths_layout():
    paths = inv.host_paths("/etc/mc", "app", "c-1", key_file="key.pem")
    assert paths["version"] == "/etc/mc/app/versions/c-1"
    assert paths["key"] == "/etc/mc/app/versions/c-1/key.pem"
    assert paths["meta"] == "/etc/mc/app/versions/c-1/meta.json"
    assert paths["current"] == "/etc/mc/app/current" and paths["link_target"] == "versions/c-1"


def test_read_host_state_types_the_facts():
    state = inv.read_host_state("h1", {
        "reachable": True, "current_id": "a", "current_fingerprint": "FP-A", "verified_fingerprint": "fp-a",
        "verified_at": "2026-05-31T00:00:00Z", "deployed_at": "2026-05-30T00:00:00Z",
        "versions": ["old", {"credential_id": "a", "fingerprint": "fp-a", "verified_at": "2026-05-31T00:00:00Z"},
                     {"credential_id": ""}]})
    assert state == HostState(name="h1", reachable=True, current_id="a", current_fingerprint="fp-a",
                              verified_fingerprint="fp-a", verified_at=NOW - DAY, deployed_at=NOW - 2 * DAY,
                              versions=(VersionFact("old"), VersionFact("a", "fp-a", NOW - DAY)))
    a = inv.RemoteCredential.from_dict(cred("a"))
    assert state.uses(a) and state.carries(a) and state.verified(a) and state.verified_anywhere(a)
    assert state.carries(inv.RemoteCredential(id="old"))
    assert json.dumps(state.to_dict())


@pytest.mark.parametrize("facts", [None, {}, DOWN, {"reachable": "yes", "current_id": "a"},
                                   {"reachable": False, "current_id": "a", "verified_fingerprint": "fp-a"}])
def test_unreachable_or_unknown_host_never_counts(facts):
    state = inv.read_host_state("h", facts)
    a = inv.RemoteCredential.from_dict(cred("a"))
    assert not state.reachable
    assert not (state.uses(a) or state.carries(a) or state.verified(a) or state.verified_anywhere(a))


def test_verification_of_the_previous_version_does_not_count():
    facts = on("new")
    facts["verified_fingerprint"] = "fp-old"
    state = inv.read_host_state("h", facts)
    assert not state.verified(inv.RemoteCredential.from_dict(cred("new")))


def test_host_without_current_id_matches_by_fingerprint():
    state = inv.read_host_state("h", {"reachable": True, "current_fingerprint": "fp-a",
                                      "verified_fingerprint": "fp-a"})
    assert state.verified(inv.RemoteCredential.from_dict(cred("a")))
    assert not state.uses(inv.RemoteCredential.from_dict(cred("b")))


def test_read_hosts_accepts_mapping_or_states_and_sorts():
    states = inv.read_hosts({"b": on("x"), "a": DOWN})
    assert [h.name for h in states] == ["a", "b"]
    assert inv.read_hosts(list(reversed(states))) == states
    assert inv.read_hosts(None) == []
    with pytest.raises(ValueError):
        inv.read_hosts([{"name": "a"}])


# ---------------------------------------------------------------------------
# the invariant
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("remote,hosts,ok,words", [
    ([cred("a")], {"h1": on("a"), "h2": on("a")}, True, "Credential a is active"),
    # mid cut-over: h1 already on b, old a kept and verified on both -> a is the witness
    ([cred("a"), cred("b", age_days=1)], {"h1": on("b", keep=["a"]), "h2": on("a")}, True, "Credential a"),
    # after the cut-over the newest witness is named
    ([cred("a"), cred("b", age_days=1)], {"h1": on("b", keep=["a"]), "h2": on("b", keep=["a"])}, True,
     "Credential b"),
    # h1 on b without a kept version of a: no single credential covers both
    ([cred("a"), cred("b", age_days=1)], {"h1": on("b"), "h2": on("a")}, False, "no single active"),
    ([cred("a")], {"h1": on("a"), "h2": on("a", verified=False)}, False, "no single active"),
    ([cred("a", status="REVOKED"), cred("b", age_days=1)], {"h1": on("a", keep=["b"])}, False,
     "h1 serves a, which is REVOKED"),
    ([cred("a", expires_in=-1)], {"h1": on("a")}, False, "EXPIRED"),
    ([cred("a")], {"h1": on("zzz")}, False, "unknown credential zzz"),
    ([cred("a")], {"h1": empty_host()}, False, "no credential"),
    ([cred("a")], {"h1": on("a"), "h2": DOWN}, False, "h2 are unreachable"),
    ([cred("a")], {}, False, "no in-scope host"),
])
def test_invariant_holds(remote, hosts, ok, words):
    holds, sentence = inv.invariant_holds(remote, hosts, NOW)
    assert holds is ok and words in sentence, sentence


def test_invariant_without_clock_trusts_the_status():
    assert inv.invariant_holds([cred("a", expires_in=-1)], {"h1": on("a")})[0] is True


# ---------------------------------------------------------------------------
# the planner: one step at a time
# ---------------------------------------------------------------------------

FLEET = ("h1", "h2", "h3")


def fleet(cid, **kw):
    return {name: on(cid, **kw) for name in FLEET}


def test_nothing_due_is_a_noop():
    p = plan([cred("a", **OLD_FINE)], fleet("a"))
    assert (p.state, kinds(p), p.due, p.invariant_ok) == ("IDLE", ["noop"], False, True)
    assert "Nothing is due" in p.reason and "a (" in p.reason
    assert p.target_id == "a" and p.due_at == NOW - 100 * DAY + LIFE - LIFE / 3
    assert p.ledger.lock_owner == "run-1" and p.ledger.rotation_id is None


def test_due_creates_with_a_rotation_alias_and_persists_the_id_first():
    p = plan([cred("a", **OLD_DUE)], fleet("a"))
    rid = str(int(NOW.timestamp()))
    assert (p.state, kinds(p), p.due) == ("CREATING", ["create"], True)
    assert action(p, "create").alias == "app-" + rid == p.alias
    assert p.ledger.rotation_id == rid == p.rotation_id
    assert "within the lead time" in p.reason and "'app-%s'" % rid in p.reason
    assert p.deadline == NOW + 95 * DAY - inv.DEADLINE_MARGIN


def test_crash_before_create_reuses_the_rotation_id():
    p = plan([cred("a", **OLD_DUE)], fleet("a"), ledger={"rotation_id": "777"})
    assert action(p, "create").alias == "app-777"


def test_crash_after_create_adopts_instead_of_creating_again():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0, alias="app-777")]
    p = plan(remote, fleet("a"), ledger={"rotation_id": "777"}, key_store=["pk-n"])
    assert (p.state, kinds(p)) == ("CREATING", ["adopt"])
    adopt = action(p, "adopt")
    assert (adopt.credential_id, adopt.alias, adopt.rotation_id) == ("n", "app-777", "777")
    # the adopt succeeded -> the credential is recorded -> STAGED: deploy everywhere
    ledger = inv.ledger_after(p, Outcome(ok=True, at=NOW, credential_id="n"))
    assert ledger.credential_id == "n"
    p2 = plan(remote, fleet("a"), ledger=ledger, key_store=["pk-n"])
    assert (p2.state, kinds(p2)) == ("STAGED", ["deploy"])
    assert action(p2, "deploy").hosts == FLEET and action(p2, "deploy").credential_id == "n"


def test_adopt_without_a_ledger_takes_the_rotation_id_from_the_alias():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0, alias="app-555")]
    p = plan(remote, fleet("a"), key_store=["pk-n"])
    assert kinds(p) == ["adopt"] and p.ledger.rotation_id == "555"


def test_orphan_is_revoked_then_a_new_rotation_id_is_minted():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0, alias="app-777")]
    p = plan(remote, fleet("a"), ledger={"rotation_id": "777"}, key_store=[])
    assert (p.state, kinds(p)) == ("CREATING", ["revoke_orphan", "create"])
    assert action(p, "revoke_orphan").credential_ids == ("n",)
    assert action(p, "create").alias != "app-777" and p.ledger.rotation_id != "777"
    assert "orphan" in p.reason


def test_orphan_of_a_forced_rotation_is_revoked_without_a_new_create():
    remote = [cred("a", **OLD_FINE), cred("n", age_days=0)]
    p = plan(remote, fleet("a"))
    assert (p.state, kinds(p)) == ("IDLE", ["revoke_orphan"])
    assert p.ledger.rotation_id is None


def test_orphan_cannot_be_decided_while_a_host_is_unreachable():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0)]
    p = plan(remote, {"h1": on("a"), "h2": DOWN})
    assert (p.state, kinds(p)) == ("BLOCKED", ["noop"])
    assert "h2" in p.reason and "orphan" in p.reason


def test_bootstrap_creates_when_there_is_no_active_credential():
    remote = [cred("old", status="REVOKED"), cred("other", kind="mtls"), cred("prod", env="production")]
    p = plan(remote, {"h1": empty_host()})
    assert (p.state, kinds(p), p.due) == ("CREATING", ["create"], True)
    assert "no active oauth2 credential" in p.reason


def test_bootstrap_never_revokes_the_last_active_orphan_first():
    remote = [cred("o1", age_days=5), cred("o2", age_days=2)]
    p = plan(remote, {"h1": empty_host()})
    assert kinds(p) == ["revoke_orphan", "create"]
    assert action(p, "revoke_orphan").credential_ids == ("o1",)      # o2, the newest, is kept for now
    assert "never revoked" in p.reason
    single = plan([cred("o1", age_days=5)], {"h1": empty_host()})
    assert kinds(single) == ["create"]


def test_bootstrap_deploys_an_existing_keyed_credential():
    p = plan([cred("n", age_days=1)], {"h1": empty_host(), "h2": empty_host()}, key_store=["pk-n"],
             ledger={"credential_id": "n"})
    assert (p.state, kinds(p)) == ("STAGED", ["deploy"])


def test_partial_deploy_deploys_the_remaining_hosts_only():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0)]
    hosts = {"h1": on("n", keep=["a"]), "h2": on("a"), "h3": on("a")}
    p = plan(remote, hosts, ledger={"rotation_id": "1", "credential_id": "n"}, key_store=["pk-n"])
    assert (p.state, kinds(p)) == ("DEPLOYING", ["deploy"])
    assert action(p, "deploy").hosts == ("h2", "h3")
    assert action(p, "deploy").fingerprint == "fp-n"
    assert p.invariant_ok


def test_deploy_recovers_the_key_from_a_host_when_the_store_lost_it():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0)]
    hosts = {"h1": on("a"), "h2": on("n", verified=False, keep=["a"]), "h3": on("n", keep=["a"])}
    p = plan(remote, hosts, key_store=[])
    assert kinds(p) == ["recover_key", "deploy"]
    assert action(p, "recover_key").from_host == "h3"                # verified carriers first
    assert action(p, "deploy").hosts == ("h1",)


def test_deploy_skips_and_names_unreachable_hosts():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0)]
    hosts = {"h1": on("n", keep=["a"]), "h2": on("a"), "h3": DOWN}
    p = plan(remote, hosts, key_store=["pk-n"])
    assert action(p, "deploy").hosts == ("h2",) and "h3" in p.reason
    assert not p.invariant_ok


def test_unverified_hosts_are_verified():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0)]
    hosts = {"h1": on("n", keep=["a"]), "h2": on("n", verified=False, keep=["a"]), "h3": on("n", keep=["a"])}
    p = plan(remote, hosts, key_store=["pk-n"])
    assert (p.state, kinds(p)) == ("VERIFYING", ["verify"])
    assert action(p, "verify").hosts == ("h2",)


def test_unreachable_host_blocks_revocation_and_is_named():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0)]
    hosts = {"h1": on("n", keep=["a"]), "h2": on("n", keep=["a"]), "h3": DOWN}
    ledger = {"soak_started_at": iso(NOW - 30 * DAY), "credential_id": "n"}
    p = plan(remote, hosts, key_store=["pk-n"], ledger=ledger)
    assert (p.state, kinds(p)) == ("BLOCKED", ["noop"])
    assert "h3" in p.reason and "unreachable" in p.reason
    assert "revoke" not in kinds(p)


def test_soak_not_passed_waits():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0)]
    p = plan(remote, fleet("n", keep=["a"]), key_store=["pk-n"], ledger={"credential_id": "n"},
             soak_seconds=7 * 86400)
    assert (p.state, kinds(p)) == ("SOAKING", ["wait_soak"])
    assert action(p, "wait_soak").until == NOW + 7 * DAY
    assert p.ledger.soak_started_at == NOW and p.ledger.credential_id == "n"
    # a day later the recorded soak start is kept
    later = plan(remote, fleet("n", keep=["a"]), ledger=p.ledger, now=NOW + DAY, soak_seconds=7 * 86400)
    assert action(later, "wait_soak").until == NOW + 7 * DAY


def test_soak_start_is_derived_from_the_hosts_when_the_ledger_is_lost():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=3)]
    hosts = {name: on("n", keep=["a"], deployed_at=NOW - (3 - i) * DAY) for i, name in enumerate(FLEET)}
    p = plan(remote, hosts, soak_seconds=7 * 86400)
    assert action(p, "wait_soak").until == NOW - DAY + 7 * DAY     # from the last host's deploy
    p2 = plan(remote, hosts, soak_seconds=86400)
    assert (p2.state, kinds(p2)) == ("REVOKING", ["revoke"])


def test_soak_passed_and_all_verified_revokes_the_old_only():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=8), cred("x", alias="someone-else"),
              cred("a-prod", env="production", alias="app-prod"), cred("gone", status="REVOKED")]
    ledger = {"credential_id": "n", "soak_started_at": iso(NOW - 8 * DAY), "rotation_id": "1"}
    p = plan(remote, fleet("n", keep=["a"]), ledger=ledger, key_store=["pk-n"], soak_seconds=7 * 86400)
    assert (p.state, kinds(p)) == ("REVOKING", ["revoke"])
    assert action(p, "revoke").credential_ids == ("a",)
    assert p.invariant_ok
    done = inv.ledger_after(p, Outcome(ok=True, at=NOW))
    assert (done.rotation_id, done.credential_id, done.soak_started_at) == (None, None, None)


def test_old_kept_only_on_a_host_as_a_rollback_slot_is_revoked_too():
    remote = [cred("a", **OLD_DUE), cred("b", age_days=200), cred("n", age_days=8)]
    hosts = {"h1": on("n", keep=["a", "b"]), "h2": on("n", keep=["b"])}
    p = plan(remote, hosts, ledger={"credential_id": "n", "soak_started_at": iso(NOW - 8 * DAY)})
    assert set(action(p, "revoke").credential_ids) == {"a", "b"}


def test_never_the_last_active_credential():
    p = plan([cred("a", **OLD_FINE), cred("z", status="REVOKED")], fleet("a"))
    assert "revoke" not in kinds(p) and p.state == "IDLE"


def test_other_kinds_and_environments_are_left_alone():
    remote = [cred("a", **OLD_FINE), cred("m", kind="mtls", alias="app-m"),
              cred("p", env="production", alias="app-p")]
    p = plan(remote, fleet("a"))
    assert p.state == "IDLE" and kinds(p) == ["noop"]


def test_force_rotates_once_per_run():
    remote = [cred("a", **OLD_FINE)]
    p = plan(remote, fleet("a"), force=True)
    assert kinds(p) == ["create"] and "forced" in p.reason
    # the same run re-plans after finishing: the new credential was created after the lock was taken
    ledger = inv.LedgerRecord(lock_owner="run-1", lock_expires=NOW + DAY, lock_acquired_at=NOW - 60 * S)
    remote = [cred("a", status="REVOKED"), cred("n", age_days=0)]
    remote[1]["created"] = iso(NOW - 30 * S)
    again = plan(remote, fleet("n"), ledger=ledger, force=True)
    assert again.state == "IDLE"


def test_explicit_lead_not_shorter_than_lifetime_is_refused():
    with pytest.raises(ValueError, match="renewal loop"):
        plan([cred("a")], fleet("a"), lead=400)


def test_no_hosts_blocks():
    p = plan([cred("a", **OLD_DUE)], {})
    assert p.state == "BLOCKED" and "No in-scope hosts" in p.reason


# ---------------------------------------------------------------------------
# OAuth 2.0: at most three active keys
# ---------------------------------------------------------------------------

def test_three_keys_the_unused_old_ones_are_revoked_before_creating():
    remote = [cred("a", **OLD_DUE), cred("b", age_days=350, alias="app-b"), cred("c", age_days=340)]
    p = plan(remote, fleet("a", keep=["b"]))
    assert (p.state, kinds(p)) == ("REVOKING", ["revoke"])
    assert set(action(p, "revoke").credential_ids) == {"b", "c"}
    for record in remote[1:]:
        record["status"] = "REVOKED"
    p2 = plan(remote, fleet("a", keep=["b"]), ledger=inv.ledger_after(p, Outcome(ok=True, at=NOW)))
    assert (p2.state, kinds(p2)) == ("CREATING", ["create"])


def test_three_keys_all_in_use_or_foreign_blocks_with_a_sentence():
    remote = [cred("a", **OLD_DUE), cred("x", alias="partner-key"), cred("y", alias="")]
    p = plan(remote, fleet("a"))
    assert (p.state, kinds(p)) == ("BLOCKED", ["noop"])
    for words in ("3 of 3 OAuth 2.0 keys", "a ('app-a') is in use on h1, h2, h3", "x ('partner-key') is not "
                  "managed", "Revoke a key"):
        assert words in p.reason, p.reason


def test_three_keys_orphans_count_as_freed():
    remote = [cred("a", **OLD_DUE), cred("x", alias="partner"), cred("n", age_days=0)]
    p = plan(remote, fleet("a"))
    assert kinds(p) == ["revoke_orphan", "create"]


def test_three_keys_bootstrap_orphan_kept_blocks():
    remote = [cred("o", age_days=1), cred("x", alias="p1"), cred("y", alias="p2")]
    p = plan(remote, {"h1": empty_host()})
    assert p.state == "BLOCKED" and "never revoked first" in p.reason


def test_key_limit_applies_to_oauth2_only():
    remote = [cred("a", kind="mtls", **OLD_DUE), cred("x", kind="mtls", alias="p1"),
              cred("y", kind="mtls", alias="p2")]
    p = plan(remote, fleet("a"), kind="mtls")
    assert kinds(p) == ["create"]


# ---------------------------------------------------------------------------
# backoff, attempts, lock
# ---------------------------------------------------------------------------

@pytest.mark.parametrize("attempts,delay", [
    (0, timedelta(0)), (1, timedelta(hours=1)), (2, timedelta(hours=2)), (3, timedelta(hours=4)),
    (5, timedelta(hours=16)), (6, timedelta(hours=24)), (40, timedelta(hours=24)), (10 ** 6, timedelta(hours=24)),
])
def test_backoff_delay(attempts, delay):
    assert Backoff().delay(attempts) == delay


def test_next_attempt_is_capped_by_the_deadline():
    assert inv.next_attempt_at(NOW, 3, Backoff(), deadline=NOW + timedelta(hours=1)) == NOW + timedelta(hours=1)
    assert inv.next_attempt_at(NOW, 3, Backoff(), deadline=NOW - DAY) == NOW      # never before the failure
    assert inv.next_attempt_at(NOW, 1) == NOW + timedelta(hours=1)


def test_failure_is_persisted_and_backs_off():
    remote = [cred("a", **OLD_DUE)]
    p = plan(remote, fleet("a"), backoff=Backoff(base=timedelta(minutes=10), cap=timedelta(hours=1)))
    ledger = inv.ledger_after(p, Outcome(ok=False, at=NOW, error="503 from the API"))
    expected = (1, "503 from the API", NOW + timedelta(minutes=10))
    assert (ledger.attempts, ledger.last_error, ledger.next_attempt_at) == expected
    assert ledger.rotation_id == p.ledger.rotation_id          # the minted id survives the failure
    waiting = plan(remote, fleet("a"), ledger=ledger, now=NOW + timedelta(minutes=5))
    assert (waiting.state, kinds(waiting)) == ("FAILED_RETRYABLE", ["wait_retry"])
    assert action(waiting, "wait_retry").until == NOW + timedelta(minutes=10) and "503" in waiting.reason
    assert inv.ledger_after(waiting, Outcome(ok=True, at=NOW)) == waiting.ledger   # nothing was attempted
    retry = plan(remote, fleet("a"), ledger=ledger, now=NOW + timedelta(minutes=11))
    assert kinds(retry) == ["create"] and action(retry, "create").alias == "app-" + ledger.rotation_id
    forced = plan(remote, fleet("a"), ledger=ledger, now=NOW + timedelta(minutes=5), force=True)
    assert kinds(forced) == ["create"]
    ok = inv.ledger_after(retry, Outcome(ok=True, at=NOW, credential_id="n"))
    assert (ok.attempts, ok.last_error, ok.next_attempt_at, ok.credential_id) == (0, None, None, "n")


def test_backoff_never_passes_the_old_credentials_deadline():
    remote = [cred("a", expires_in=1.5)]
    p = plan(remote, fleet("a"))
    ledger = inv.ledger_after(p, Outcome(ok=False, at=NOW, error="boom"))
    ledger = inv.ledger_after(replace_ledger(p, ledger), Outcome(ok=False, at=NOW, error="boom"))
    ledger = inv.ledger_after(replace_ledger(p, ledger), Outcome(ok=False, at=NOW, error="boom"))
    assert ledger.attempts == 3
    assert ledger.next_attempt_at == NOW + timedelta(hours=4)
    ledger = inv.ledger_after(replace_ledger(p, ledger), Outcome(ok=False, at=NOW + DAY / 4, error="boom"))
    assert ledger.next_attempt_at == NOW + DAY / 2            # 8 h would pass expiry - 1 day


def replace_ledger(p, ledger):
    return inv.Plan(state=p.state, actions=p.actions, reason=p.reason, deadline=p.deadline, ledger=ledger,
                    backoff=p.backoff)


def test_too_many_attempts_blocks_with_a_sentence():
    ledger = {"attempts": 5, "last_error": "MAX_OAUTH2_KEYS_EXCEEDED", "rotation_id": "9"}
    p = plan([cred("a", **OLD_DUE)], fleet("a"), ledger=ledger, max_attempts=5)
    assert (p.state, kinds(p)) == ("BLOCKED", ["noop"])
    assert "5 failed attempt(s)" in p.reason and "MAX_OAUTH2_KEYS_EXCEEDED" in p.reason and "force" in p.reason
    assert kinds(plan([cred("a", **OLD_DUE)], fleet("a"), ledger=ledger, force=True)) == ["create"]


def test_lock_held_by_another_run_stops_with_a_clear_message():
    ledger = {"lock_owner": "awx-job-41", "lock_expires": iso(NOW + timedelta(minutes=5))}
    p = plan([cred("a", **OLD_DUE)], fleet("a"), ledger=ledger, owner="awx-job-42")
    assert (p.state, kinds(p)) == ("LOCKED", ["noop"])
    assert "awx-job-41" in p.reason and "2026-06-01T00:05:00Z" in p.reason
    assert p.ledger.lock_owner == "awx-job-41"
    readonly = plan([cred("a", **OLD_DUE)], fleet("a"), ledger=ledger, owner=None)
    assert readonly.state == "LOCKED"


def test_expired_lock_is_taken_over_and_own_lock_is_renewed():
    ledger = {"lock_owner": "awx-job-41", "lock_expires": iso(NOW - S)}
    p = plan([cred("a", **OLD_DUE)], fleet("a"), ledger=ledger, owner="awx-job-42", lock_ttl=600)
    assert p.state == "CREATING"
    assert (p.ledger.lock_owner, p.ledger.lock_expires, p.ledger.lock_acquired_at) == (
        "awx-job-42", NOW + timedelta(minutes=10), NOW)
    renewed = inv.take_lock(p.ledger, "awx-job-42", NOW + timedelta(minutes=5), 600)
    assert renewed.lock_acquired_at == NOW and renewed.lock_expires == NOW + timedelta(minutes=15)
    lapsed = inv.take_lock(p.ledger, "awx-job-42", NOW + DAY, 600)     # own lock lapsed: a new acquisition
    assert lapsed.lock_acquired_at == NOW + DAY


def test_lock_helpers():
    rec = inv.take_lock(None, "me", NOW, timedelta(minutes=1))
    assert inv.lock_holder(rec, NOW) == "me" and inv.lock_holder(rec, NOW + timedelta(minutes=1)) is None
    with pytest.raises(LockHeld, match="me"):
        inv.take_lock(rec, "you", NOW)
    assert inv.release_lock(rec, "you") == rec
    assert inv.lock_holder(inv.release_lock(rec, "me"), NOW) is None
    with pytest.raises(ValueError):
        inv.take_lock(None, "", NOW)


def test_read_only_plan_takes_no_lock():
    p = plan([cred("a", **OLD_DUE)], fleet("a"), owner=None)
    assert p.state == "CREATING" and p.ledger.lock_owner is None


def test_ledger_record_round_trip():
    rec = LedgerRecord(rotation_id="1", credential_id="c", attempts=2, last_error="x", last_failure_at=NOW,
                       next_attempt_at=NOW + DAY, soak_started_at=NOW, lock_owner="me", lock_expires=NOW,
                       lock_acquired_at=NOW)
    data = rec.to_dict()
    assert data["next_attempt_at"] == "2026-06-02T00:00:00Z"
    assert LedgerRecord.from_dict(json.loads(json.dumps(data))) == rec
    assert LedgerRecord.from_dict(None) == LedgerRecord()


def test_plan_to_dict_is_json():
    p = plan([cred("a", **OLD_DUE), cred("n", age_days=0)], fleet("a", keep=[]), key_store=["pk-n"],
             ledger={"credential_id": "n"})
    data = json.loads(json.dumps(p.to_dict()))
    assert data["state"] == "STAGED" and data["actions"][0] == {
        "action": "deploy", "hosts": list(FLEET), "credential_id": "n", "fingerprint": "fp-n"}
    assert data["ledger"]["lock_owner"] == "run-1"


# ---------------------------------------------------------------------------
# the ledger file
# ---------------------------------------------------------------------------

def test_ledger_file_round_trip_atomic_and_private(tmp_path):
    ledger = Ledger(str(tmp_path / "state" / "app.json"))
    assert ledger.read() == LedgerRecord()
    rec = LedgerRecord(rotation_id="1", attempts=1, next_attempt_at=NOW)
    with ledger.locked():
        assert ledger.write(rec) is True
        assert ledger.write(rec) is False            # unchanged: no write
    assert ledger.read() == rec
    assert stat.S_IMODE(os.stat(ledger.path).st_mode) == 0o600
    assert sorted(os.listdir(tmp_path / "state")) == ["app.json", "app.json.lock"]


def test_ledger_file_refuses_garbage(tmp_path):
    path = tmp_path / "l.json"
    for text in ("{not json", "[1]", '{"attempts": "many"}'):
        path.write_text(text)
        with pytest.raises(LedgerError):
            Ledger(str(path)).read()


def test_ledger_lock_is_exclusive(tmp_path):
    import fcntl
    ledger = Ledger(str(tmp_path / "l.json"))
    with ledger.locked():
        fd = os.open(ledger.lock_path, os.O_RDWR)
        try:
            with pytest.raises(BlockingIOError):
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        finally:
            os.close(fd)


# ---------------------------------------------------------------------------
# whole rotations against a simulated world, with a crash after every step
# ---------------------------------------------------------------------------

class World:
    """Remote credentials, hosts, a key store and a ledger; applies plan actions step by step."""

    def __init__(self, hosts=FLEET, persistent=True):
        self.now = NOW
        self.remote = {"a": cred("a", **OLD_DUE)}
        self.hosts = {name: on("a", deployed_at=NOW - 300 * DAY) for name in hosts}
        self.store = {"pk-a"} if persistent else set()
        self.ledger = LedgerRecord()
        self.persistent = persistent
        self.created = []
        self.invariant_log = []
        self.held = True           # the invariant must hold after every step once it has held

    def plan(self, **kw):
        args = dict(kind="oauth2", environment="sandbox", alias_prefix="app", soak_seconds=2 * 86400,
                    owner="run", key_store=sorted(self.store))
        args.update(kw)
        return inv.plan_rotation(list(self.remote.values()), self.hosts, self.ledger, self.now, **args)

    def check(self, label):
        ok, sentence = inv.invariant_holds(list(self.remote.values()), self.hosts, self.now)
        self.invariant_log.append((label, ok, sentence))
        assert ok or not self.held, (label, sentence)
        self.held = self.held or ok

    def steps(self, p):
        """The plan's actions as (label, callable) steps; deploy is one step per host."""
        out = []
        for act in p.actions:
            if act.kind in (inv.DEPLOY, inv.VERIFY):
                for host in act.hosts:
                    out.append(("%s %s" % (act.kind, host), self._host_step(act, host)))
            elif act.kind == inv.CREATE:
                out.append(("persist key", lambda a=act: self.store.add("pk-" + a.alias)))
                out.append(("create", lambda a=act: self._create(a)))
            else:
                out.append((act.kind, lambda a=act: self._apply(a)))
        return out

    def _create(self, act):
        if any(c["alias"] == act.alias and c["status"] == "ACTIVE" for c in self.remote.values()):
            raise AssertionError("duplicate create of %s" % act.alias)
        cid = "c%d" % (len(self.created) + 1)
        record = cred(cid, age_days=0, alias=act.alias, pk="pk-" + act.alias)
        record["created"] = iso(self.now)
        record["expires"] = iso(self.now + LIFE)
        self.remote[cid] = record
        self.created.append(cid)
        return cid

    def _apply(self, act):
        if act.kind in (inv.REVOKE, inv.REVOKE_ORPHAN):
            for cid in act.credential_ids:
                self.remote[cid]["status"] = "REVOKED"
        elif act.kind == inv.RECOVER_KEY:
            self.store.add(self.remote[act.credential_id]["public_key_fingerprint"])
        return act.credential_id

    def _host_step(self, act, host):
        def step():
            facts = self.hosts[host]
            cid = act.credential_id
            if act.kind == inv.DEPLOY:
                assert self.remote[cid]["public_key_fingerprint"] in self.store, "deploy without the key"
                versions = [v for v in facts["versions"] if v["credential_id"] != cid]
                versions.append({"credential_id": cid, "fingerprint": "fp-" + cid, "verified_at": None})
                facts.update(current_id=cid, current_fingerprint="fp-" + cid, verified_fingerprint=None,
                             verified_at=None, deployed_at=iso(self.now), versions=versions)
            else:
                facts.update(verified_fingerprint=facts["current_fingerprint"], verified_at=iso(self.now))
                for version in facts["versions"]:
                    if version["credential_id"] == cid:
                        version["verified_at"] = iso(self.now)
        return step

    def crash(self):
        """The controller dies: an ephemeral one loses its key store and ledger too."""
        if not self.persistent:
            self.store = set()
            self.ledger = LedgerRecord()
        else:
            self.ledger = inv.release_lock(self.ledger, "run")   # the lock would expire; skip the wait


def drive(world, crash_at=None, max_plans=40):
    """Run plans until IDLE; crash (once) after the crash_at-th step. Returns the number of steps run."""
    step_no = 0
    crashed = False
    for _plan_no in range(max_plans):
        p = world.plan()
        world.ledger = p.ledger
        if p.state == inv.IDLE and kinds(p) == ["noop"]:
            return step_no
        assert p.state not in (inv.BLOCKED, inv.LOCKED), p.reason
        waits = [a for a in p.actions if a.kind in (inv.WAIT_SOAK, inv.WAIT_RETRY)]
        if waits:
            world.now = max(world.now, waits[0].until)
            world.crash()           # the next scheduled run: an ephemeral controller starts empty
            continue
        assert_revocations_are_safe(world, p)
        result_id = None
        interrupted = False
        for label, step in world.steps(p):
            value = step()
            result_id = value if label in ("create", "adopt") else result_id
            step_no += 1
            world.check("after %s (%s)" % (label, p.state))
            if crash_at is not None and step_no == crash_at and not crashed:
                crashed = interrupted = True
                world.crash()
                break
        if not interrupted:
            world.ledger = inv.ledger_after(p, Outcome(ok=True, at=world.now, credential_id=result_id))
        world.now += timedelta(minutes=1)
    raise AssertionError("no IDLE after %d plans" % max_plans)


def assert_revocations_are_safe(world, p):
    """Never the target, never one a host uses, never the last active, and only after full verification."""
    revoked = set()
    for act in p.actions:
        if act.kind in (inv.REVOKE, inv.REVOKE_ORPHAN):
            revoked.update(act.credential_ids)
    if not revoked:
        return
    assert p.target_id not in revoked
    states = inv.read_hosts(world.hosts)
    for cid in revoked:
        record = inv.RemoteCredential.from_dict(world.remote[cid])
        assert not any(h.uses(record) for h in states), (cid, p.reason)
    active = {c["id"] for c in world.remote.values() if c["status"] == "ACTIVE"}
    assert active - revoked, "the last active credential would be revoked"
    if inv.REVOKE in [a.kind for a in p.actions]:
        target = inv.RemoteCredential.from_dict(world.remote[p.target_id])
        assert all(h.verified(target) for h in states)


def final_checks(world):
    active = [c for c in world.remote.values() if c["status"] == "ACTIVE"]
    assert len(active) == 1, active
    new = active[0]["id"]
    assert new != "a" and world.remote["a"]["status"] == "REVOKED"
    for facts in world.hosts.values():
        assert facts["current_id"] == new and facts["verified_fingerprint"] == "fp-" + new
    # every credential created and not kept was revoked: nothing unusable is left active
    assert all(world.remote[c]["status"] == "REVOKED" for c in world.created if c != new)


def test_a_whole_rotation_without_crashes():
    world = World()
    steps = drive(world)
    final_checks(world)
    assert len(world.created) == 1
    # persist key, create, 3 deploys, 3 verifies, revoke
    assert steps == 9


@pytest.mark.parametrize("crash_at", range(1, 10))
def test_crash_after_every_step_with_a_persistent_controller(crash_at):
    world = World(persistent=True)
    drive(world, crash_at=crash_at)
    final_checks(world)
    assert len(world.created) == 1, world.created           # never a second create


@pytest.mark.parametrize("crash_at", range(1, 10))
def test_crash_after_every_step_with_an_ephemeral_controller(crash_at):
    world = World(persistent=False)          # the old key lives only on the hosts
    drive(world, crash_at=crash_at)
    final_checks(world)
    # a crash between create and the first deploy leaves an orphan: revoked, then one more create
    assert len(world.created) <= 2


def test_unreachable_host_never_lets_a_rotation_revoke():
    world = World(hosts=("h1", "h2", "h3"))
    world.hosts["h3"] = {"reachable": False}
    with pytest.raises(AssertionError):
        world.check("start")                    # an unreachable host: the invariant cannot be shown
    for _day in range(10):
        p = world.plan()
        world.ledger = p.ledger
        if p.state == inv.BLOCKED:
            break
        for _label, step in world.steps(p):
            value = step()
        world.ledger = inv.ledger_after(p, Outcome(ok=True, at=world.now, credential_id=value))
        world.now += DAY
    assert p.state == inv.BLOCKED and "h3" in p.reason
    assert world.remote["a"]["status"] == "ACTIVE"


def test_bootstrap_from_a_lone_orphan_ends_with_one_usable_credential():
    world = World()
    world.remote = {"o": cred("o", age_days=1, alias="app-1")}
    world.hosts = {name: empty_host() for name in FLEET}
    world.store = set()
    world.held = False
    drive(world)
    active = [c["id"] for c in world.remote.values() if c["status"] == "ACTIVE"]
    assert active == world.created == ["c1"] and world.remote["o"]["status"] == "REVOKED"
    assert world.held and world.invariant_log[-1][1]


# ---------------------------------------------------------------------------
# what the rotation role runs next
# ---------------------------------------------------------------------------

def test_rollout_problems_each_in_one_sentence():
    assert inv.rollout_problems("oauth1", ["p12"], True, verify_url="https://probe") == []
    assert inv.rollout_problems("oauth2", ["pem"], False, verify_token_url="https://token") == []
    problems = inv.rollout_problems("mtls", ["p12", "pem"], False, reload_command="a", reload_service="b")
    assert len(problems) == 3
    assert problems[0].startswith("mc_rotation_keystore_password is required")
    assert "mc_rotation_verify_url is required for kind mtls" in problems[1]
    assert problems[2] == "Set only one of mc_rotation_reload_command and mc_rotation_reload_service."
    # oauth2 proves the key at the token endpoint: the token URL, not the probe URL, is required
    assert inv.rollout_problems("oauth2", ["pem"], verify_url="https://probe") == [
        "mc_rotation_verify_token_url is required for kind oauth2: every host proves the new key works."]


@pytest.mark.parametrize("state,kwargs,expected", [
    # unknown hosts: ask them, nothing else yet (also in check mode: asking is read-only)
    ("GATHER", {"gather": ["h1"]}, (["h1"], False, [], False)),
    ("GATHER", {"gather": ["h1"], "check_mode": True}, (["h1"], False, [], False)),
    # nothing due, waits: the run ends at the plan
    (inv.IDLE, {}, ([], False, [], False)),
    (inv.SOAKING, {}, ([], False, [], False)),
    (inv.FAILED_RETRYABLE, {}, ([], False, [], False)),
    # create: the controller creates, every reachable host gets it, the run records
    (inv.CREATING, {"create": {"hosts": ["h1", "h2"]}}, ([], True, ["h1", "h2"], True)),
    # orphans only, with a staged credential to roll out
    (inv.STAGED, {"deploy": {"hosts": ["h2"]}, "revoke_orphans": ["c9"]}, ([], True, ["h2"], True)),
    (inv.VERIFYING, {"deploy": {"hosts": ["h1"]}}, ([], False, ["h1"], True)),
    # every host verified, soak over: only the record (which revokes) runs
    (inv.REVOKING, {}, ([], False, [], True)),
    # check mode only plans
    (inv.CREATING, {"create": {"hosts": ["h1"]}, "check_mode": True}, ([], False, [], False)),
    # the next step is a person's: the run ends at the plan
    (inv.AWAITING_ISSUE, {}, ([], False, [], False)),
    (inv.AWAITING_REVOKE, {}, ([], False, [], False)),
])
def test_role_steps_name_the_plays_that_run(state, kwargs, expected):
    steps = inv.role_steps(state, **kwargs)
    assert (steps["gather"], steps["prepare"], steps["rollout_hosts"], steps["record"]) == expected


# ---------------------------------------------------------------------------
# the portal-assisted backend: the person's steps are states of the same plan
# ---------------------------------------------------------------------------

def test_an_unanswered_create_work_order_waits_and_attempts_nothing():
    old = cred("c1", **OLD_DUE)
    hosts = {"h1": on("c1"), "h2": on("c1")}
    first = plan([old], hosts)
    alias = action(first, inv.CREATE).alias
    waiting = plan([old], hosts, first.ledger, work_orders={"create": {alias: False}})
    assert waiting.state == inv.AWAITING_ISSUE and kinds(waiting) == [inv.AWAIT_PERSON]
    assert action(waiting, inv.AWAIT_PERSON).alias == alias and waiting.alias == alias
    assert "waits for a person" in waiting.reason
    # the same rotation id, no attempt counted, and the in-use credential is what the deadline races
    assert waiting.ledger.rotation_id == first.ledger.rotation_id
    assert inv.ledger_after(waiting, {"ok": False, "at": iso(NOW)}) == waiting.ledger
    assert waiting.in_use_id == "c1" and waiting.deadline == _time.parse(old["expires"]) - inv.DEADLINE_MARGIN
    # answered: the create goes ahead (the step checks the answer); another alias's work order holds nothing up
    assert plan([old], hosts, first.ledger, work_orders={"create": {alias: True}}).state == inv.CREATING
    assert plan([old], hosts, first.ledger, work_orders={"create": {"app-other": False}}).state == inv.CREATING


def test_a_rotation_whose_work_order_is_open_goes_on_when_nothing_is_due_any_more():
    old = cred("c1", **OLD_FINE)
    hosts = {"h1": on("c1"), "h2": on("c1")}
    forced = plan([old], hosts, force=True)
    alias = action(forced, inv.CREATE).alias
    # the next run is not forced: the open work order keeps the rotation (same alias) going
    waiting = plan([old], hosts, forced.ledger, work_orders={"create": {alias: False}})
    assert waiting.state == inv.AWAITING_ISSUE and waiting.alias == alias
    resumed = plan([old], hosts, forced.ledger, work_orders={"create": {alias: True}})
    assert resumed.state == inv.CREATING and action(resumed, inv.CREATE).alias == alias
    assert "under way" in resumed.reason
    # without the work order, nothing is due
    assert plan([old], hosts, forced.ledger).state == inv.IDLE


def test_an_unanswered_revoke_work_order_waits_after_every_host_verified():
    old, new = cred("c1", **OLD_DUE), cred("c2", age_days=1)
    hosts = {"h1": on("c2", keep=("c1",)), "h2": on("c2", keep=("c1",))}
    assert plan([old, new], hosts).state == inv.REVOKING
    waiting = plan([old, new], hosts, work_orders={"revoke": {"c1": False}})
    assert waiting.state == inv.AWAITING_REVOKE
    assert action(waiting, inv.AWAIT_PERSON).credential_ids == ("c1",)
    assert waiting.invariant_ok, waiting.invariant
    # answered (or a second old credential without a work order): the revocation goes ahead
    assert plan([old, new, cred("c0", **OLD_DUE)], hosts, work_orders={"revoke": {"c1": False}}).state == inv.REVOKING


# ---------------------------------------------------------------------------
# a slice's view (AWX job slicing, --limit): never revoke, lock only to change the lineage
# ---------------------------------------------------------------------------

SLICE = ("h1",)
HELD = {"lock_owner": "slice-2", "lock_expires": iso(NOW + DAY), "lock_acquired_at": iso(NOW - DAY)}


def test_a_slice_that_verified_the_new_credential_never_revokes_the_old_one():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0, alias="app-777")]
    settled = {"h1": on("n", keep=("a",))}
    full = plan(remote, settled, ledger={"credential_id": "n"}, key_store=["pk-n"])
    assert (full.state, kinds(full)) == ("REVOKING", ["revoke"])
    sliced = plan(remote, settled, ledger={"credential_id": "n"}, key_store=["pk-n"], partial_view=True)
    assert (sliced.state, kinds(sliced)) == ("SLICE_VERIFIED", ["noop"])
    assert "only a run that sees the whole scope" in sliced.reason and "a (" in sliced.reason
    assert sliced.ledger.lock_owner is None, "a slice's roll-out holds no lock"


def test_a_slice_deploys_what_the_rotation_in_flight_made_while_its_creator_holds_the_lock():
    remote = [cred("a", **OLD_DUE), cred("n", age_days=0, alias="app-777")]
    ledger = dict(HELD, rotation_id="777")
    sliced = plan(remote, {"h1": on("a")}, ledger=ledger, key_store=["pk-n"], partial_view=True)
    assert (sliced.state, kinds(sliced)) == ("STAGED", ["deploy"])
    assert action(sliced, "deploy").hosts == SLICE and sliced.ledger.lock_owner == "slice-2"
    # a full view would adopt the credential instead, and so needs the lock the creator holds
    full = plan(remote, {"h1": on("a")}, ledger=ledger, key_store=["pk-n"])
    assert full.state == "LOCKED"


def test_a_slice_waits_for_the_lock_to_create_and_takes_it_when_free():
    remote = [cred("a", **OLD_DUE)]
    waiting = plan(remote, {"h1": on("a")}, ledger=HELD, partial_view=True)
    assert (waiting.state, kinds(waiting)) == ("LOCKED", ["noop"])
    creating = plan(remote, {"h1": on("a")}, partial_view=True)
    assert (creating.state, kinds(creating)) == ("CREATING", ["create"])
    assert creating.ledger.lock_owner == "run-1"


def test_a_slice_never_takes_a_credential_whose_key_it_cannot_find_for_an_orphan():
    # "n" is on hosts of another slice: the full view would call it an orphan and revoke it
    remote = [cred("a", **OLD_FINE), cred("n", age_days=0, alias="app-777")]
    full = plan(remote, {"h1": on("a")}, key_store=["pk-a"])
    assert "revoke_orphan" in kinds(full)
    sliced = plan(remote, {"h1": on("a")}, key_store=["pk-a"], partial_view=True)
    assert "revoke_orphan" not in kinds(sliced) and sliced.target_id == "a"
