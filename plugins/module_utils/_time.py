# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Time, in one place. Every moment is an aware UTC ``datetime`` in memory and ISO 8601 with a ``Z`` and whole
seconds on disk and in results (ledger, fleet cache, meta.json, reports, work orders). Naive values are UTC."""

from __future__ import annotations

import datetime

UTC = datetime.timezone.utc
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def now():
    """This moment, aware, in UTC."""
    return datetime.datetime.now(UTC)


def iso(moment):
    """``moment`` as ISO 8601 UTC with a ``Z`` and whole seconds; None for None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime(ISO_FORMAT)


def parse(value):
    """An aware UTC datetime from a datetime, ISO 8601 text (``Z`` allowed) or None / "" (None).

    Raises ValueError for text that is not ISO 8601: for values a user wrote (options, the ledger).
    """
    if value is None or value == "":
        return None
    if isinstance(value, datetime.datetime):
        parsed = value
    else:
        text = str(value).strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        parsed = datetime.datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_or_none(value):
    """:func:`parse`, with None for anything that is not a time: for values read from the API or a host's files,
    where a missing or odd field must not stop the run."""
    try:
        return parse(value)
    except (TypeError, ValueError):
        return None


EARLIEST = datetime.datetime.min.replace(tzinfo=UTC)
"""Sorts before every real moment (a credential or fact without a time)."""
