# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a fingerprint is, in one place. The collection writes SHA-256 fingerprints as lowercase hex without
separators (docs/dev/contracts.md); it reads any common spelling of one (``AB:CD:..``, ``sha256:abcd..``,
spaces or dashes between the bytes). Standard library only: the host-side modules use it too."""

from __future__ import annotations

import re

_PREFIX = re.compile(r"^sha-?256[:=\s]\s*")
_SEPARATORS = re.compile(r"[:\s-]")
_HEX = re.compile(r"^[0-9a-f]+$")


def normalize(value):
    """The canonical spelling of ``value``, or None when it is empty or not hex once the separators are gone.

    None is never a match: a caller comparing fingerprints compares only real ones.
    """
    if value is None:
        return None
    text = _SEPARATORS.sub("", _PREFIX.sub("", str(value).strip().lower()))
    return text if _HEX.match(text) else None
