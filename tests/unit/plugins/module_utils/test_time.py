"""_time: the one place where the collection reads, writes and takes the time (issue 12's "time in seven places")."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import _time

UTC = datetime.timezone.utc


def test_parse_takes_z_offsets_naive_values_and_datetimes_to_aware_utc():
    expected = datetime.datetime(2026, 12, 6, 21, 30, tzinfo=UTC)
    assert _time.parse("2026-12-06T21:30:00Z") == expected
    assert _time.parse("2026-12-06T22:30:00+01:00") == expected
    assert _time.parse("2026-12-06T22:30:00+01:00").utcoffset() == datetime.timedelta(0)
    assert _time.parse(" 2026-12-06T21:30:00 ") == expected  # naive is UTC
    assert _time.parse(datetime.datetime(2026, 12, 6, 21, 30)) == expected
    assert _time.parse(None) is None and _time.parse("") is None


def test_parse_refuses_what_a_user_mistyped_and_parse_or_none_does_not():
    with pytest.raises(ValueError):
        _time.parse("next tuesday")
    assert _time.parse_or_none("next tuesday") is None
    assert _time.parse_or_none(1796596371) is None
    assert _time.parse_or_none("2026-12-06T21:30:00Z") == datetime.datetime(2026, 12, 6, 21, 30, tzinfo=UTC)


def test_iso_writes_utc_with_a_z_and_whole_seconds():
    moment = datetime.datetime(2026, 12, 6, 22, 30, 5, 987654, tzinfo=datetime.timezone(datetime.timedelta(hours=1)))
    assert _time.iso(moment) == "2026-12-06T21:30:05Z"
    assert _time.iso(None) is None
    assert _time.parse(_time.iso(_time.now())) <= _time.now()
    assert _time.EARLIEST < _time.parse("0001-01-02T00:00:00Z")
