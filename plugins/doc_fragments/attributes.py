# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Attribute definitions shared by the collection's modules."""

from __future__ import annotations


class ModuleDocFragment(object):

    # Check mode and diff mode, as every module of the collection supports them.
    DOCUMENTATION = r"""
options: {}
attributes:
  check_mode:
    description: Can run in check mode and predict whether it would change anything, without writing files or calling a
      mutating API endpoint.
  diff_mode:
    description: Returns what changed (or would change in check mode) as facts such as fingerprints, subject, key type,
      serial number and expiry; never key bytes or passphrases.
"""

    # For modules that write files on the managed host.
    SAFE_FILE_OPERATIONS = r"""
options: {}
attributes:
  safe_file_operations:
    description: Writes each file to a temporary file with mode C(0600) in the same directory, flushes it to disk and
      renames it over the target, so readers see either the old or the new file; then applies O(mode), O(owner) and
      O(group).
"""

    # For modules whose second run with the same options changes nothing.
    IDEMPOTENT = r"""
options: {}
attributes:
  idempotent:
    description: When run twice in a row with the same options, the second run reports no change. Files are compared by
      their content (key material, certificates, subject), not by their bytes.
"""
