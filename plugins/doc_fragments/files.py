# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""File options shared by the modules that write keys, CSRs and keystores."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  backup:
    description:
      - Keep a timestamped copy of each file that is about to be replaced, next to it and with the same mode.
      - The copy of a private key or keystore is as secret as the original; remove it once it is no longer needed.
    type: bool
    default: false
notes:
  - Files holding private keys or keystores are created with mode C(0600) unless O(mode) is set. Public files (CSRs)
    are created with mode C(0644).
  - The file options O(owner), O(group), O(mode), O(seuser) and friends apply to every file the module writes.
"""
