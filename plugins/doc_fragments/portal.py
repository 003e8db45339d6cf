# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The portal-assisted backend's options (mc_certificate, mc_oauth_key, mc_revoke, mc_rotation_plan)."""

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  backend:
    description:
      - How Mastercard Developers is reached.
      - V(api) calls the Developers API with the connection options.
      - V(portal) is for who has the portal but no Developers API access. What a person must do at the portal
        becomes a work order under O(portal_dir), as JSON (for scripts and AWX) and as a Markdown page naming the
        screen, the button, the alias and the CSR to paste. The run then ends with status C(AWAITING_ISSUE) or
        C(AWAITING_REVOKE), not failed. The next run takes what the person brought back, checks it against the
        work order, and carries on. The connection options are not used. See C(docs/portal-assisted.md).
    type: str
    choices: [api, portal]
    default: api
  portal_dir:
    description:
      - With O(backend=portal), the folder of work orders (C(<project_id>/work-orders/)), of what the person brings
        back (C(<project_id>/inbox/)) and of the credentials known from the portal (C(<project_id>/credentials.json)).
      - Keep it with the rest of the rotation state; on AWX, on storage every job sees.
    type: path
"""

    # What a person brings back for a create (mc_certificate, mc_oauth_key, mc_rotation_plan).
    ISSUED = r"""
options:
  issued:
    description:
      - With O(backend=portal), what the person brought back from the portal for the open work order. Instead of
        setting it, the person may drop it into the inbox file the work order names.
      - It is checked before anything moves. A certificate must certify the pending key, carry the CSR's subject,
        be valid now and come with its chain in order; OAuth identifiers must have the shape Mastercard gives them.
        Material that does not fit is refused naming what does not match, and the work order stays open.
    type: dict
    suboptions:
      certificate:
        description: The issued certificate (PEM), optionally followed by its chain (mTLS; optional for OAuth keys).
        type: str
      chain:
        description: Chain certificates (PEM), when not appended to O(issued.certificate).
        type: list
        elements: str
      consumer_key:
        description: The OAuth 1.0a consumer key, C(<client id>!<key id>).
        type: str
      client_id:
        description: The OAuth 2.0 client ID.
        type: str
      kid:
        description: The OAuth 2.0 key ID.
        type: str
      credential_id:
        description: The credential's id, where the portal shows one; otherwise the certificate fingerprint or kid.
        type: str
      expires:
        description: For an OAuth key without a certificate, its expiry date as the credentials screen shows it.
        type: str
  escalate_before:
    description:
      - With O(backend=portal), while a rotation waits for the person, the run warns; once the credential in use
        expires within this many days, it fails, so that a scheduled job pages someone.
    type: int
    default: 7
"""
