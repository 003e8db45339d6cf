#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mc_expiry_report
short_description: Write the credential expiry report (HTML and JSON) and notify once per band crossed
version_added: 0.1.0
description:
  - Takes the credential records of M(mcdev.credentials.mc_credential_info) and what the rotation role knows
    is deployed where (its fleet caches on the controller), puts every credential in the portal's notice band
    (90, 60, 30, 15, 7, 1 days, expired), and writes a self-contained HTML page (inline CSS and SVG, no
    external assets) with a timeline, plus a JSON document for alerting.
  - The timeline is sorted by urgency, on a scale that gives the first 30 days half the chart, with a today line;
    past 20 credentials it is grouped by project, past 50 the ones with more than 90 days left are summed up in
    the chart and folded in the table.
  - With O(webhook_url), sends one JSON POST per credential per band it enters; which bands were notified is
    remembered in O(notify_state_path) on the controller, so a daily run does not repeat itself.
  - Runs on the controller.
author:
  - mcdev.credentials maintainers (@mcdev)
options:
  credentials:
    description:
      - Credential records, as RV(mcdev.credentials.mc_credential_info#module:credentials) returns them.
      - Each needs C(id) and C(expires); an entry without them fails the task with a message naming the entry and
        the field, rather than a report of empty rows.
      - One of O(credentials) and O(local) is required.
    type: list
    elements: dict
    default: []
  local:
    description:
      - Certificate files, as RV(mcdev.credentials.mc_credential_info#module:local) returns them from its
        O(mcdev.credentials.mc_credential_info#module:paths) scan, for certificates that came from KMP, another CA,
        or any host folder.
      - Each needs C(path) and C(not_after); an optional C(host) says where the file is. A file whose certificate
        is one of O(credentials) (same fingerprint) is shown as a place that credential is deployed, not twice.
    type: list
    elements: dict
    default: []
  project_names:
    description: Project names by project id, shown beside each alias (the id stays in the table and tooltips).
    type: dict
    default: {}
  rotation_state_dir:
    description: The rotation role's O(mcdev.credentials.mc_rotation_plan#module:state_dir); its fleet caches say which host carries which credential.
    type: path
  portal_dir:
    description:
      - The portal-assisted backend's folder (O(mcdev.credentials.mc_rotation_plan#module:portal_dir)); its open work
        orders - what a person has yet to add or revoke at the portal - are listed above the credentials, with the
        credential in use meanwhile. Default C(<rotation_state_dir>/portal), the rotation role's default.
    type: path
  dest_dir:
    description: Folder for C(expiry-report.html) and C(expiry-report.json). Created if missing.
    type: path
    required: true
  title:
    description: Title of the HTML page.
    type: str
    default: Mastercard credential expiry
  include_revoked:
    description: Show revoked credentials too (never notified).
    type: bool
    default: false
  webhook_url:
    description: HTTPS URL that receives one JSON POST per credential per band crossed.
    type: str
  webhook_headers:
    description: Extra HTTP headers for the webhook (for example an authorization token).
    type: dict
    default: {}
  webhook_ca_path:
    description: CA bundle for the webhook's server certificate.
    type: path
  webhook_validate_certs:
    description: Verify the webhook's server certificate.
    type: bool
    default: true
  notify_state_path:
    description: Controller file that remembers which bands were notified. Default C(<dest_dir>/notified.json).
    type: path
  now:
    description: Report as if it were this time (ISO 8601). Default is the clock.
    type: str
extends_documentation_fragment:
  - mcdev.credentials.attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written and no notification is sent; RV(notifications) lists what would be sent.
  diff_mode:
    support: none
"""

EXAMPLES = r"""
- name: Read every credential of the projects
  mcdev.credentials.mc_credential_info:
    projects: [proj-a, proj-b]
  register: info

- name: Write the report and notify
  mcdev.credentials.mc_expiry_report:
    credentials: "{{ info.credentials }}"
    rotation_state_dir: /var/lib/mcdev/rotation
    dest_dir: /var/www/reports
    webhook_url: https://alerts.example.com/hooks/mastercard
"""

RETURN = r"""
html_path:
  description: The HTML report.
  returned: always
  type: str
json_path:
  description: The JSON report.
  returned: always
  type: str
summary:
  description: Number of credentials per band (C(expired), C(1) ... C(90), C(ok)), and C(awaiting_person), the open
    work orders of the portal-assisted backend.
  returned: always
  type: dict
notifications:
  description: Notifications sent (or, in check mode, due), each with the credential id and the band.
  returned: always
  type: list
  elements: dict
report:
  description:
    - The JSON report (generated_at, bands, summary, credentials).
    - Each credential row has source (V(api) or V(file)), project_id, project_name, id (a file's path for a file),
      alias (a file's name), kind, environment, status, fingerprint, expires, days_left (whole days, rounded down;
      V(-1) is expired within the last day, V(0) expires within a day), band and deployed_on.
  returned: always
  type: dict
"""

import glob
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.mcdev.credentials.plugins.module_utils import _io, _time
from ansible_collections.mcdev.credentials.plugins.module_utils.common import InputError
from ansible_collections.mcdev.credentials.plugins.module_utils.errors import fail_from, unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils.portal import open_work_orders
from ansible_collections.mcdev.credentials.plugins.module_utils.report import (
    ReportInputError,
    band_key,
    build_report,
    due_notifications,
    render_html,
)


def deployments(state_dir):
    """{credential id: [{host, current, verified_at, lineage}]} from the rotation role's fleet caches."""
    out = {}
    if not state_dir:
        return out
    for path in sorted(glob.glob(os.path.join(state_dir, "*", "fleet.json"))):
        lineage = os.path.basename(os.path.dirname(path))
        try:
            with open(path, "r", encoding="utf-8") as handle:
                fleet = json.load(handle)
        except (OSError, ValueError):
            continue
        if not isinstance(fleet, dict):
            continue
        for host, facts in sorted(fleet.items()):
            if not isinstance(facts, dict):
                continue
            current = facts.get("current_id")
            for version in facts.get("versions") or []:
                cid = version.get("credential_id") if isinstance(version, dict) else version
                if not cid:
                    continue
                out.setdefault(cid, []).append({
                    "host": host, "current": cid == current, "lineage": lineage,
                    "verified_at": facts.get("verified_at") if cid == current else
                    (version.get("verified_at") if isinstance(version, dict) else None)})
            if current and not any(d["host"] == host for d in out.get(current, [])):
                out.setdefault(current, []).append({"host": host, "current": True, "lineage": lineage,
                                                    "verified_at": facts.get("verified_at")})
    return out


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            credentials=dict(type="list", elements="dict", default=[]),
            local=dict(type="list", elements="dict", default=[]),
            project_names=dict(type="dict", default={}),
            rotation_state_dir=dict(type="path"),
            portal_dir=dict(type="path"),
            dest_dir=dict(type="path", required=True),
            title=dict(type="str", default="Mastercard credential expiry"),
            include_revoked=dict(type="bool", default=False),
            webhook_url=dict(type="str"),
            webhook_headers=dict(type="dict", default={}, no_log=True),
            webhook_ca_path=dict(type="path"),
            webhook_validate_certs=dict(type="bool", default=True),
            notify_state_path=dict(type="path"),
            now=dict(type="str"),
        ),
        required_one_of=[("credentials", "local")],
        supports_check_mode=True,
    )
    with unforeseen_errors(module, ("credentials", "local", "rotation_state_dir", "notify_state_path", "dest_dir", "webhook_ca_path")):
        p = module.params
        try:
            now = _time.parse(p["now"]) if p["now"] else _time.now()
        except ValueError:
            module.fail_json(msg="now=%r is not an ISO 8601 time" % p["now"])
        if p["webhook_url"] and not p["webhook_url"].lower().startswith("https://"):
            module.fail_json(msg="webhook_url must be an https:// URL, got %r" % p["webhook_url"].split("?")[0])
        if not p["credentials"] and not p["local"]:
            module.fail_json(msg="Nothing to report: give credentials (mc_credential_info's credentials list), local "
                                 "(its local list, from paths), or both")
        try:
            portal_dir = p["portal_dir"] or (os.path.join(p["rotation_state_dir"], "portal") if p["rotation_state_dir"]
                                             else None)
            report = build_report(p["credentials"], deployments(p["rotation_state_dir"]), now, p["include_revoked"],
                                  local=p["local"], project_names=p["project_names"],
                                  work_orders=open_work_orders(portal_dir))
        except (ReportInputError, InputError) as exc:
            fail_from(module, exc)
        html_path = os.path.join(p["dest_dir"], "expiry-report.html")
        json_path = os.path.join(p["dest_dir"], "expiry-report.json")
        state_path = p["notify_state_path"] or os.path.join(p["dest_dir"], "notified.json")
        changed = False
        # The report is a snapshot: compare without its timestamp, so an unchanged fleet is not "changed".
        html_text = render_html(report, p["title"])
        json_text = json.dumps(report, indent=2, sort_keys=True) + "\n"

        def same(old, new):
            if old is None:
                return False
            return old.replace(report["generated_at"], "") == new.replace(report["generated_at"], "") or \
                _strip_stamp(old) == _strip_stamp(new)
        if not module.check_mode:
            os.makedirs(p["dest_dir"], exist_ok=True)
            for path, text in ((html_path, html_text), (json_path, json_text)):
                if not same(_read_text(path), text):
                    _io.write_atomically(path, text.encode("utf-8"), 0o644)
                    changed = True
        notified = {}
        raw = _read_text(state_path)
        if raw:
            try:
                notified = json.loads(raw)
            except ValueError:
                module.fail_json(msg="notify_state_path %s is not JSON; fix or remove it" % state_path)
        sent, errors = [], []
        if p["webhook_url"]:
            for row, band in due_notifications(report, notified):
                payload = {"event": "credential_expiry", "band": band, "days_left": row["days_left"],
                           "credential": dict((k, row[k]) for k in ("project_id", "id", "alias", "kind", "environment",
                                                                    "status", "fingerprint", "expires")),
                           "deployed_on": [d["host"] for d in row["deployed_on"] if d["current"]],
                           "generated_at": report["generated_at"]}
                entry = {"credential_id": row["id"], "band": band}
                if not module.check_mode:
                    headers = dict(p["webhook_headers"])
                    headers["Content-Type"] = "application/json"
                    try:
                        open_url(p["webhook_url"], data=json.dumps(payload), headers=headers, method="POST",
                                 validate_certs=p["webhook_validate_certs"], ca_path=p["webhook_ca_path"],
                                 timeout=15).read()
                    except Exception as exc:  # pylint: disable=broad-except
                        errors.append("%s (band %s): %s" % (row["id"], band, exc))
                        continue
                    notified.setdefault(row["id"], []).append(band_key(band))
                sent.append(entry)
            if sent and not module.check_mode:
                os.makedirs(os.path.dirname(os.path.abspath(state_path)), exist_ok=True)
                _io.write_atomically(state_path, (json.dumps(notified, indent=2, sort_keys=True) + "\n").encode("utf-8"))
                changed = True
        result = dict(changed=changed or bool(sent), html_path=html_path, json_path=json_path,
                      summary=report["summary"], notifications=sent, report=report)
        if errors:
            module.fail_json(msg="The report was written, but %d webhook notification(s) failed and will be retried "
                                 "next run: %s" % (len(errors), "; ".join(errors)), **result)
        module.exit_json(**result)


def _strip_stamp(text):
    import re  # pylint: disable=import-outside-toplevel
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", "", text)


if __name__ == "__main__":
    main()
