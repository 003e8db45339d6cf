#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_credential_info
short_description: Report Mastercard credentials, remote and on disk, with expiry notices and rotation due dates
version_added: 0.1.0
description:
  - Remote part (when O(projects) is given) lists every credential of one or many Mastercard Developers
    projects with its status, days left, the portal's notice bucket (V(90), V(60), V(30), V(15), V(7), V(1)
    days, V(expired)) and whether it should be rotated for a given lead time.
  - Local part (when O(paths) is given) scans files and folders on the host where the task runs for
    certificates (PEM, DER, PKCS#12 with a password), with glob patterns and recursion, and reports the same
    facts for each; when the remote part runs too, each file is matched to its remote credential by
    certificate fingerprint (or by public key, for a renewed certificate with the same key).
  - The local scan needs no connection options; it reads every file in this one process with C(cryptography),
    so thousands of files take about as long as one.
  - "API calls per run: one credential list (paged) per project."
author:
  - mcdev.credentials maintainers (@mcdev)
extends_documentation_fragment:
  - mcdev.credentials.connection
  - mcdev.credentials.attributes
  - mcdev.credentials.attributes.idempotent
attributes:
  check_mode:
    support: full
    details: Read-only; it runs the same in check mode.
  diff_mode:
    support: none
  idempotent:
    support: full
    details: Read-only; running it never changes anything.
  action_group:
    description: Use C(group/mcdev.credentials.api) in C(module_defaults) to set the connection options.
    support: full
    membership:
      - mcdev.credentials.api
options:
  projects:
    description:
      - Ids of the projects whose credentials are listed. Requires the connection options.
      - Leave empty for a local scan only.
    type: list
    elements: str
    default: []
    aliases: [project_id, project_ids]
  environment:
    description: Only credentials of this environment. Default is both.
    type: str
    choices: [sandbox, production]
  kinds:
    description: Only credentials of these kinds. Default is all.
    type: list
    elements: str
    choices: [mtls, oauth1, oauth2]
    aliases: [kind]
  include_revoked:
    description: Also report revoked credentials.
    type: bool
    default: true
  lead_time_days:
    description:
      - How many days before expiry a credential should be rotated; decides RV(credentials[].should_rotate).
      - Default is one third of each credential's lifetime (about 132 days for 13 months), as the rotation role uses.
    type: float
  paths:
    description:
      - Files, folders and glob patterns (C(*), C(?), C([...]), C(**) with O(recurse)) to scan on the host.
      - A file named here is read whatever its name; files inside a folder must match O(patterns).
    type: list
    elements: path
    default: []
  patterns:
    description: Shell patterns of the file names read inside folders.
    type: list
    elements: str
    default: ['*.pem', '*.crt', '*.cer', '*.der', '*.p12', '*.pfx']
  recurse:
    description: Descend into sub-folders of the folders in O(paths).
    type: bool
    default: false
  follow_symlinks:
    description:
      - Follow symbolic links to folders while recursing. Files reached twice (for example through a C(current)
        link) are reported once.
    type: bool
    default: false
  pkcs12_passwords:
    description:
      - Passwords tried, in order, on PKCS#12 files (a keystore without a password is also tried).
      - A keystore that none of them opens is reported in RV(errors), not as a failure.
    type: list
    elements: str
    default: []
notes:
  - Days and notice buckets are computed with the clock of the host that runs the module.
  - The connection options are needed only with O(projects); without them the module never contacts the API.
seealso:
  - module: mcdev.credentials.mc_revoke
  - module: mcdev.credentials.mc_verify
"""

EXAMPLES = r"""
- name: Which credentials of our projects expire within 90 days?
  mcdev.credentials.mc_credential_info:
    projects: [proj-payments, proj-loyalty]
    include_revoked: false
  delegate_to: localhost
  run_once: true
  register: remote

- name: Report them
  ansible.builtin.debug:
    msg: "{{ item.project_id }} {{ item.alias }} expires in {{ item.days_left }} days"
  loop: "{{ remote.credentials | selectattr('notice', 'ne', none) | list }}"
  loop_control:
    label: "{{ item.id }}"

- name: Which certificates does this host carry, and which remote credential is each?
  mcdev.credentials.mc_credential_info:
    paths:
      - /etc/myapp/mastercard
      - /opt/legacy/**/*.p12
    recurse: true
    pkcs12_passwords: ["{{ keystore_password }}"]
  register: on_host

- name: Local scan matched to the remote list, in one task
  mcdev.credentials.mc_credential_info:
    projects: [proj-payments]
    paths: [/etc/myapp/mastercard]
    recurse: true
  delegate_to: localhost
"""

RETURN = r"""
credentials:
  description: Remote credentials (one list for all projects), newest first within a project.
  returned: always
  type: list
  elements: dict
  contains:
    project_id:
      description: The project the credential belongs to.
      type: str
    id:
      description: Credential id.
      type: str
    alias:
      description: Credential alias.
      type: str
    kind:
      description: V(mtls), V(oauth1) or V(oauth2).
      type: str
    environment:
      description: V(sandbox) or V(production).
      type: str
    status:
      description: V(ACTIVE), V(REVOKED), V(INACTIVE), or V(EXPIRED) (also when the API still says ACTIVE after expiry).
      type: str
    fingerprint:
      description: SHA-256 of the certificate (lowercase hex).
      type: str
    public_key_fingerprint:
      description: SHA-256 of the public key (lowercase hex).
      type: str
    consumer_key:
      description: OAuth 1.0a consumer key (identifier, not secret).
      type: str
    client_id:
      description: OAuth 2.0 client ID.
      type: str
    kid:
      description: OAuth 2.0 key ID.
      type: str
    expires:
      description: Expiry (ISO 8601 UTC).
      type: str
    days_left:
      description: Whole days until expiry (negative once expired).
      type: int
    notice:
      description: The portal's notice bucket (V(90), V(60), V(30), V(15), V(7), V(1), V(expired)), or V(null) beyond 90 days.
      type: raw
    should_rotate:
      description: Whether an active credential has reached its rotation time for the lead time.
      type: bool
    rotate_at:
      description: When the credential becomes due for rotation (ISO 8601 UTC).
      type: str
    found_in:
      description: Local files that carry this credential (only when O(paths) is also given).
      type: list
      elements: str
  sample:
    - project_id: proj-payments
      id: cred-7
      alias: payments-1714000000
      kind: mtls
      environment: sandbox
      status: ACTIVE
      fingerprint: 5d41402abc4b2a76b9719d911017c592...
      expires: "2026-03-01T00:00:00Z"
      days_left: 28
      notice: 30
      should_rotate: true
local:
  description: One entry per certificate file found on the host (the leaf certificate of each file).
  returned: always
  type: list
  elements: dict
  contains:
    path:
      description: The file.
      type: str
    format:
      description: V(pem), V(der) or V(pkcs12).
      type: str
    fingerprint:
      description: SHA-256 of the certificate (lowercase hex).
      type: str
    public_key_fingerprint:
      description: SHA-256 of the public key.
      type: str
    subject:
      description: Subject DN (RFC 4514).
      type: str
    issuer:
      description: Issuer DN (RFC 4514).
      type: str
    serial_number:
      description: Serial number (hex).
      type: str
    not_after:
      description: Expiry (ISO 8601 UTC).
      type: str
    days_left:
      description: Whole days until expiry.
      type: int
    expired:
      description: Whether the certificate has expired.
      type: bool
    notice:
      description: Notice bucket, as for RV(credentials[].notice).
      type: raw
    should_rotate:
      description: Whether the certificate is within the lead time of its expiry.
      type: bool
    chain_length:
      description: Number of certificates in the file (leaf included).
      type: int
    remote:
      description:
        - The remote credential this file is; V(null) when no credential of O(projects) matches, or without O(projects).
      type: dict
      contains:
        project_id:
          description: Project of the credential.
          type: str
        credential_id:
          description: Credential id.
          type: str
        alias:
          description: Credential alias.
          type: str
        status:
          description: Credential status.
          type: str
        matched_by:
          description: V(fingerprint) (same certificate) or V(public_key) (same key pair).
          type: str
errors:
  description: Paths that could not be read (missing, unreadable, PKCS#12 that no password opens), with why.
  returned: always
  type: list
  elements: dict
summary:
  description: Counts.
  returned: always
  type: dict
  sample:
    remote_total: 4
    remote_active: 3
    should_rotate: 1
    by_notice: {"30": 1, "expired": 0}
    files_scanned: 1000
    local_certificates: 998
    skipped: 2
    errors: 0
    scan_ms: 210
contract_overrides:
  description:
    - The Developers API contract entries that the file in O(contract_path) changed, as section.entry (with the
      field for an endpoint); empty with the collection's own contract.
  returned: success
  type: list
  elements: str
  sample: [endpoints.list_credentials.path, create_fields.alias]
api_calls:
  description: Number of HTTP requests sent to the Developers API.
  returned: always
  type: int
"""

import datetime
import socket
import time

from ansible.module_utils.basic import AnsibleModule

# The connection options without the API client: devapi (requests, urllib3, the OAuth 1.0a signer)
# is imported in _remote() only, so a local-only scan neither pays for it nor needs those libraries.
from ansible_collections.mcdev.credentials.plugins.module_utils import _time
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import fail_from, fail_missing_library, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import connection
# inventory holds the expiry rules (notice buckets, lead time) that both the remote and the local part use.
from ansible_collections.mcdev.credentials.plugins.module_utils import inventory
from ansible_collections.mcdev.credentials.plugins.module_utils import scan as _scan


def _expiry_facts(expires, status, created, now, lead):
    """days_left, notice, should_rotate, rotate_at -- all from inventory.py."""
    if expires is None:
        return {"days_left": None, "notice": None, "should_rotate": False, "rotate_at": None}
    record = inventory.RemoteCredential(id="-", status=status, created=created, expires=expires)
    try:
        rotate_at = inventory.renewal_time(record, lead)
        should = inventory.should_rotate(record, now, lead)
    except ValueError:
        # The lead is not shorter than this credential's lifetime (a short-lived test
        # certificate, say): the planner would refuse it; a report just says "due".
        rotate_at = expires - datetime.timedelta(days=lead)
        should = inventory.is_active(status) and now >= rotate_at
    return {
        "days_left": int(inventory.days_left(expires, now) // 1),
        "notice": inventory.notice_bucket(expires, now),
        "should_rotate": should,
        "rotate_at": _time.iso(rotate_at),
    }


def _remote(module, params, now, lead):
    from ansible_collections.mcdev.credentials.plugins.module_utils import devapi

    missing = devapi.missing_requirement()
    if missing:
        fail_missing_library(module, missing[0], missing[1])
    client = None
    records = []
    calls, overrides = 0, []
    try:
        client = devapi.client_from_params(params, module.warn)
        kinds = params["kinds"] or None
        for project_id in params["projects"]:
            creds = client.list_credentials(project_id, environment=params["environment"])
            for cred in creds:
                if kinds and cred.kind not in kinds:
                    continue
                if not params["include_revoked"] and (cred.status or "").upper() == "REVOKED":
                    continue
                record = cred.to_dict()
                record["project_id"] = project_id
                state = inventory.RemoteCredential.from_dict(record).state(now)
                record["status"] = state
                record.update(_expiry_facts(cred.expires, state if state != "EXPIRED" else "ACTIVE",
                                            cred.created, now, lead))
                if state not in ("ACTIVE", "EXPIRED"):
                    record["should_rotate"] = False
                records.append(record)
        calls = client.call_count
        overrides = list(client.contract.overridden)
    except devapi.DevApiError as exc:
        fail_from(module, exc, api_calls=getattr(client, "call_count", 0) if client else 0)
    finally:
        if client is not None:
            client.close()
    floor = _time.EARLIEST
    records.sort(key=lambda r: (r["project_id"], -(_time.parse(r["created"]) or floor).timestamp()))
    return records, calls, overrides


def _local(params, now, lead):
    entries, errors, skipped, seen = _scan.scan(
        params["paths"], patterns=params["patterns"], recurse=params["recurse"],
        follow_symlinks=params["follow_symlinks"], passphrases=params["pkcs12_passwords"], now=now)
    for entry in entries:
        not_after = _time.parse(entry["not_after"])
        not_before = _time.parse(entry["not_before"])
        entry.update(_expiry_facts(not_after, "ACTIVE", not_before, now, lead))
        entry["days_left"] = int(inventory.days_left(not_after, now) // 1)
        entry["remote"] = None
    return entries, errors, skipped, seen


def _match(records, entries, now):
    """Attach each local file to its remote credential (inventory.match_local) and vice versa."""
    host = socket.gethostname()
    by_project = {}
    for record in records:
        by_project.setdefault(record["project_id"], []).append(record)
    locals_in = [{"host": host, "path": e["path"], "fingerprint": e["fingerprint"],
                  "public_key_fingerprint": e["public_key_fingerprint"]} for e in entries]
    found = {}
    for project_id, project_records in by_project.items():
        matching = inventory.match_local(project_records, locals_in, now)
        by_id = dict((r["id"], r) for r in project_records)
        for entry, match in zip(entries, matching.files):
            if match.credential_id is None or entry.get("remote"):
                continue
            # A certificate match beats a public-key match found in an earlier project.
            record = by_id[match.credential_id]
            entry["remote"] = {"project_id": project_id, "credential_id": match.credential_id,
                               "alias": record.get("alias"), "status": match.status,
                               "environment": record.get("environment"), "kind": record.get("kind"),
                               "matched_by": match.matched_by}
            found.setdefault((project_id, match.credential_id), []).append(entry["path"])
    for entry in entries:
        entry.setdefault("remote", None)
    for record in records:
        record["found_in"] = sorted(found.get((record["project_id"], record["id"]), []))


def main():
    argument_spec = connection.connection_argument_spec()
    argument_spec.update(
        projects=dict(type="list", elements="str", default=[], aliases=["project_id", "project_ids"]),
        environment=dict(type="str", choices=["sandbox", "production"]),
        kinds=dict(type="list", elements="str", choices=["mtls", "oauth1", "oauth2"], aliases=["kind"]),
        include_revoked=dict(type="bool", default=True),
        lead_time_days=dict(type="float"),
        paths=dict(type="list", elements="path", default=[]),
        patterns=dict(type="list", elements="str", default=list(_scan.DEFAULT_PATTERNS)),
        recurse=dict(type="bool", default=False),
        follow_symlinks=dict(type="bool", default=False),
        pkcs12_passwords=dict(type="list", elements="str", default=[], no_log=True),
    )
    module = AnsibleModule(
        argument_spec=argument_spec,
        required_one_of=[("projects", "paths")],
        supports_check_mode=True,
        **connection.connection_constraints()
    )
    with unforeseen_errors(module, ("paths", "signing_key_path", "ca_path")):
        params = module.params
        if not params["projects"] and not params["paths"]:
            module.fail_json(msg="Nothing to report: give projects (remote credentials), paths (files on this host), or both")
        lead = params["lead_time_days"]
        if lead is not None and lead <= 0:
            module.fail_json(msg="lead_time_days must be more than 0, got %s" % lead)
        now = _time.now()

        records, calls, overrides = [], 0, []
        if params["projects"]:
            records, calls, overrides = _remote(module, params, now, lead)

        entries, errors, skipped, seen = [], [], 0, 0
        scan_ms = 0
        if params["paths"]:
            if not _scan.crypto.HAS_CRYPTOGRAPHY:
                fail_missing_library(module, "cryptography", _scan.crypto.CRYPTOGRAPHY_IMPORT_ERROR)
            started = time.monotonic()
            entries, errors, skipped, seen = _local(params, now, lead)
            scan_ms = int(round((time.monotonic() - started) * 1000))
            if params["projects"]:
                _match(records, entries, now)

        by_notice = {}
        for item in records:
            if item["notice"] is not None and item["status"] in ("ACTIVE", "EXPIRED"):
                key = str(item["notice"])
                by_notice[key] = by_notice.get(key, 0) + 1
        summary = {
            "remote_total": len(records),
            "remote_active": sum(1 for r in records if inventory.is_active(r["status"])),
            "should_rotate": sum(1 for r in records if r["should_rotate"]),
            "by_notice": by_notice,
            "files_scanned": seen,
            "local_certificates": len(entries),
            "local_should_rotate": sum(1 for e in entries if e["should_rotate"]),
            "skipped": skipped,
            "errors": len(errors),
            "scan_ms": scan_ms,
        }
        module.exit_json(changed=False, credentials=records, local=entries, errors=errors, summary=summary,
                         api_calls=calls, contract_overrides=overrides)


if __name__ == "__main__":
    main()
