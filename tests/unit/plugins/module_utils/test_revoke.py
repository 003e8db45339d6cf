# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Selection and guards of mc_revoke (plugins/module_utils/revoke.py), on plain records.

The same logic runs against the emulator in tests/unit/plugins/modules/test_mc_revoke.py.
"""

from __future__ import annotations

import datetime
from types import SimpleNamespace

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import revoke

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 1, 15, 12, 0, tzinfo=UTC)


def cred(cid, status="ACTIVE", created_days_ago=10, expires_in_days=300, alias=None, fingerprint=None):
    return SimpleNamespace(
        id=cid, alias=alias or "alias-" + cid, status=status,
        fingerprint=fingerprint or (cid * 64)[:64],
        created=NOW - datetime.timedelta(days=created_days_ago),
        expires=NOW + datetime.timedelta(days=expires_in_days),
    )


@pytest.fixture
def creds():
    return [
        cred("a", created_days_ago=300, expires_in_days=95),
        cred("b", created_days_ago=200, expires_in_days=195),
        cred("c", created_days_ago=10, expires_in_days=385),
        cred("d", status="REVOKED", created_days_ago=400, expires_in_days=-5),
        cred("e", status="EXPIRED", created_days_ago=500, expires_in_days=-100),
        # ACTIVE at the API but past its expiry by our clock (the emulator's clock may lag).
        cred("f", status="ACTIVE", created_days_ago=396, expires_in_days=-1),
    ]


def ids(items):
    return sorted(c.id for c in items)


@pytest.mark.parametrize("value, expected", [
    ("expired", ("expired", None)),
    ({"expired": True}, ("expired", None)),
    ({"all_but_newest": 2}, ("all_but_newest", 2)),
    ({"all_but_newest": "1"}, ("all_but_newest", 1)),
    ("all_but_newest: 3", ("all_but_newest", 3)),
    (None, None),
])
def test_parse_selector_accepts(value, expected):
    assert revoke.parse_selector(value) == expected


@pytest.mark.parametrize("value, words", [
    ("newest", "selector must be"),
    ({"all_but_newest": -1}, "0 or more"),
    ({"all_but_newest": "x"}, "whole number"),
    ({"all_but_newest": 1.5}, "whole number"),
    ({"all_but_newest": True}, "whole number"),
    ({"expired": True, "all_but_newest": 1}, "exactly one"),
    ({"oldest": 1}, "unknown selector"),
    ([1], "got a list"),
])
def test_parse_selector_refuses_with_the_option_named(value, words):
    with pytest.raises(revoke.SelectionError) as info:
        revoke.parse_selector(value)
    assert words in info.value.msg
    assert "selector" in info.value.msg


def test_select_by_id_alias_fingerprint_union(creds):
    fp_b = creds[1].fingerprint.upper()
    colon_fp_b = ":".join(fp_b[i:i + 2] for i in range(0, len(fp_b), 2))
    targets, already, missing = revoke.select(creds, ids=["a"], aliases=["alias-c"], fingerprints=[colon_fp_b], now=NOW)
    assert ids(targets) == ["a", "b", "c"]
    assert already == [] and missing == []


def test_select_reports_already_revoked_and_missing(creds):
    targets, already, missing = revoke.select(creds, ids=["d", "zzz"], aliases=["nope"], now=NOW)
    assert targets == []
    assert ids(already) == ["d"]
    assert missing == [("credential_id", "zzz"), ("alias", "nope")]


def test_select_same_credential_twice_is_one_target(creds):
    targets = revoke.select(creds, ids=["a"], aliases=["alias-a"], fingerprints=[creds[0].fingerprint], now=NOW)[0]
    assert ids(targets) == ["a"]


def test_selector_expired_takes_status_and_clock_but_not_revoked(creds):
    targets, already = revoke.select(creds, selector="expired", now=NOW)[:2]
    assert ids(targets) == ["e", "f"]
    assert already == []


@pytest.mark.parametrize("keep, expected", [
    (1, ["a", "b", "e", "f"]),
    (2, ["a", "e", "f"]),
    (3, ["e", "f"]),
    (10, ["e", "f"]),
    (0, ["a", "b", "c", "e", "f"]),
])
def test_selector_all_but_newest_keeps_newest_active(creds, keep, expected):
    targets = revoke.select(creds, selector={"all_but_newest": keep}, now=NOW)[0]
    assert ids(targets) == expected


def test_guard_last_active_refuses_and_names_the_option(creds):
    targets = revoke.select(creds, selector={"all_but_newest": 0}, now=NOW)[0]
    with pytest.raises(revoke.RevokeRefused) as info:
        revoke.check_guards(creds, targets, now=NOW, scope="project p1 sandbox")
    assert info.value.reason == "last_active"
    assert "force_last=true" in info.value.msg and "project p1 sandbox" in info.value.msg
    assert ids(info.value.credentials) == ["a", "b", "c"]
    revoke.check_guards(creds, targets, force_last=True, now=NOW)  # allowed


def test_guard_last_active_ignores_expired_targets():
    only = [cred("x"), cred("old", status="EXPIRED", expires_in_days=-3)]
    targets = revoke.select(only, ids=["old"], now=NOW)[0]
    revoke.check_guards(only, targets, now=NOW)  # x stays active: fine
    targets = revoke.select(only, ids=["x"], now=NOW)[0]
    with pytest.raises(revoke.RevokeRefused):
        revoke.check_guards(only, targets, now=NOW)


def test_guard_in_use_refuses_unless_ignored(creds):
    targets = revoke.select(creds, ids=["a", "b"], now=NOW)[0]
    in_use = ["SHA256:" + creds[1].fingerprint.upper()]
    with pytest.raises(revoke.RevokeRefused) as info:
        revoke.check_guards(creds, targets, in_use_fingerprints=in_use, now=NOW)
    assert info.value.reason == "in_use"
    assert ids(info.value.credentials) == ["b"]
    assert "ignore_in_use=true" in info.value.msg
    revoke.check_guards(creds, targets, in_use_fingerprints=in_use, ignore_in_use=True, now=NOW)


def test_status_diff_has_facts_only(creds):
    diff = revoke.status_diff([creds[0]])
    assert diff["before"]["credentials"][0]["status"] == "ACTIVE"
    assert diff["after"]["credentials"][0]["status"] == "REVOKED"
    assert set(diff["after"]["credentials"][0]) == {"id", "alias", "fingerprint", "expires", "status"}
