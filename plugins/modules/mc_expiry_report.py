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
  - With O(webhook_url), sends one JSON POST per credential per band it enters; which bands were notified is
    remembered in O(notify_state_path) on the controller, so a daily run does not repeat itself.
  - Runs on the controller.
author:
  - mcdev.credentials maintainers (@mcdev)
options:
  credentials:
    description: Credential records, as RV(mcdev.credentials.mc_credential_info#module:credentials) returns them.
    type: list
    elements: dict
    required: true
  rotation_state_dir:
    description: The rotation role's O(mcdev.credentials.mc_rotation_plan#module:state_dir); its fleet caches say which host carries which credential.
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
  description: Number of credentials per band (C(expired), C(1) ... C(90), C(ok)).
  returned: always
  type: dict
notifications:
  description: Notifications sent (or, in check mode, due), each with the credential id and the band.
  returned: always
  type: list
  elements: dict
report:
  description: The JSON report (generated_at, bands, credentials with band, days_left and deployed_on).
  returned: always
  type: dict
"""

import datetime
import glob
import html
import json
import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.urls import open_url

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import unforeseen_errors
from ansible_collections.mcdev.credentials.plugins.module_utils import inventory as inv

BANDS = ("expired",) + tuple(sorted(inv.NOTICE_DAYS))  # expired, 1, 7, 15, 30, 60, 90
COLOURS = {"expired": "#7f1d1d", 1: "#b91c1c", 7: "#dc2626", 15: "#ea580c", 30: "#f59e0b", 60: "#eab308",
           90: "#84cc16", None: "#16a34a"}
TIMELINE_DAYS = 400


def _band_key(band):
    return "ok" if band is None else str(band)


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


def build_report(credentials, deployed, now, include_revoked=False):
    rows = []
    for cred in credentials:
        status = (cred.get("status") or "").upper()
        if status == "REVOKED" and not include_revoked:
            continue
        expires = cred.get("expires")
        # a revoked credential is in no band: it is never notified and never counted
        band = inv.notice_bucket(expires, now) if expires and status != "REVOKED" else None
        left = inv.days_left(expires, now) if expires else None
        if status == "ACTIVE" and band == "expired":
            status = "EXPIRED"
        rows.append({
            "project_id": cred.get("project_id"), "id": cred.get("id"), "alias": cred.get("alias"),
            "kind": cred.get("kind"), "environment": cred.get("environment"), "status": status,
            "fingerprint": cred.get("fingerprint"), "expires": expires,
            "days_left": None if left is None else round(left, 1), "band": band,
            "deployed_on": deployed.get(cred.get("id"), []),
        })
    rows.sort(key=lambda r: (r["days_left"] is None, r["days_left"] if r["days_left"] is not None else 0,
                             r["project_id"] or "", r["alias"] or ""))
    summary = dict((_band_key(b), 0) for b in BANDS + (None,))
    for row in rows:
        if row["status"] in ("ACTIVE", "EXPIRED"):
            summary[_band_key(row["band"])] += 1
    return {"generated_at": inv.format_time(now), "bands": list(BANDS[1:]), "summary": summary,
            "credentials": rows}


def render_html(report, title):
    esc = html.escape
    rows = report["credentials"]
    width, left_pad, row_h = 900, 260, 26
    height = 40 + row_h * max(len(rows), 1)
    scale = float(width - left_pad - 20) / TIMELINE_DAYS

    def x(days):
        return left_pad + max(0.0, min(TIMELINE_DAYS, days)) * scale

    svg = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" role="img" '
           'aria-label="Days until each credential expires">' % (width, height)]
    for band in BANDS[1:]:
        svg.append('<line x1="%.1f" y1="18" x2="%.1f" y2="%d" class="band"/>' % (x(band), x(band), height - 4))
        svg.append('<text x="%.1f" y="12" class="axis">%dd</text>' % (x(band) - 8, band))
    svg.append('<text x="%.1f" y="12" class="axis">%dd</text>' % (x(TIMELINE_DAYS) - 24, TIMELINE_DAYS))
    for index, row in enumerate(rows):
        y = 24 + index * row_h
        label = "%s / %s" % (row["project_id"] or "?", row["alias"] or row["id"])
        svg.append('<text x="4" y="%d" class="label">%s</text>' % (y + 14, esc(label[:40])))
        days = row["days_left"] if row["days_left"] is not None else 0
        colour = COLOURS.get(row["band"], COLOURS[None]) if row["status"] != "REVOKED" else "#9ca3af"
        svg.append('<rect x="%d" y="%d" width="%.1f" height="16" rx="3" fill="%s"><title>%s</title></rect>' % (
            left_pad, y + 2, max(2.0, x(days) - left_pad), colour,
            esc("%s expires %s (%s days left)" % (row["id"], row["expires"], row["days_left"]))))
    svg.append("</svg>")

    cards = []
    for key, label in (("expired", "expired"), ("1", "1 day"), ("7", "7 days"), ("15", "15 days"),
                       ("30", "30 days"), ("60", "60 days"), ("90", "90 days"), ("ok", "> 90 days")):
        band = key if key in ("expired", "ok") else int(key)
        cards.append('<div class="card" style="border-color:%s"><b>%d</b><span>%s</span></div>' % (
            COLOURS.get(None if key == "ok" else band), report["summary"].get(key, 0), label))

    table = []
    for row in rows:
        hosts = ", ".join("%s%s" % (d["host"], "" if d["current"] else " (kept)") for d in row["deployed_on"]) \
            or "not deployed by the rotation role"
        if row["status"] == "REVOKED":
            band = "revoked"
        else:
            band = "expired" if row["band"] == "expired" else ("&le; %sd" % row["band"] if row["band"] else "&gt; 90d")
        table.append("<tr><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td><td>%s</td>"
                     "<td class=\"num\">%s</td><td>%s</td><td>%s</td></tr>" % (
                         esc(str(row["project_id"])), esc(str(row["alias"])), esc(str(row["id"])),
                         esc(str(row["kind"])), esc(str(row["environment"])), esc(row["status"]),
                         esc(str(row["expires"])), esc(str(row["days_left"])), band, esc(hosts)))
    style = (
        "body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#111827}"
        "h1{font-size:22px}.cards{display:flex;gap:8px;flex-wrap:wrap;margin:12px 0}"
        ".card{border-left:6px solid;padding:6px 12px;background:#f9fafb;min-width:80px}"
        ".card b{display:block;font-size:20px}.card span{font-size:12px;color:#4b5563}"
        "table{border-collapse:collapse;font-size:13px;margin-top:16px}"
        "td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}"
        "td.num{text-align:right}.band{stroke:#9ca3af;stroke-dasharray:3 3}"
        ".axis{font-size:10px;fill:#6b7280}.label{font-size:11px;fill:#111827}")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>%s</title><style>%s</style>"
            "</head><body><h1>%s</h1><p>Generated %s. Bands are the portal's notice days (90, 60, 30, 15, 7, 1)."
            "</p><div class=\"cards\">%s</div>%s<table><thead><tr><th>project</th><th>alias</th><th>id</th>"
            "<th>kind</th><th>environment</th><th>status</th><th>expires</th><th>days left</th><th>band</th>"
            "<th>deployed on</th></tr></thead><tbody>%s</tbody></table></body></html>\n" % (
                esc(title), style, esc(title), esc(report["generated_at"]), "".join(cards), "".join(svg),
                "".join(table)))


def due_notifications(report, notified):
    """[(row, band)] for active credentials whose current band has not been notified yet."""
    out = []
    for row in report["credentials"]:
        if row["status"] not in ("ACTIVE", "EXPIRED") or row["band"] is None:
            continue
        if _band_key(row["band"]) not in notified.get(row["id"], []):
            out.append((row, row["band"]))
    return out


def _write(path, text, mode=0o644):
    directory = os.path.dirname(path)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _read_text(path):
    try:
        with open(path, "r", encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            credentials=dict(type="list", elements="dict", required=True),
            rotation_state_dir=dict(type="path"),
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
        supports_check_mode=True,
    )
    with unforeseen_errors(module, ("credentials", "rotation_state_dir", "notify_state_path", "dest_dir", "webhook_ca_path")):
        p = module.params
        try:
            now = inv.parse_time(p["now"]) if p["now"] else datetime.datetime.now(datetime.timezone.utc)
        except ValueError:
            module.fail_json(msg="now=%r is not an ISO 8601 time" % p["now"])
        if p["webhook_url"] and not p["webhook_url"].lower().startswith("https://"):
            module.fail_json(msg="webhook_url must be an https:// URL, got %r" % p["webhook_url"].split("?")[0])
        report = build_report(p["credentials"], deployments(p["rotation_state_dir"]), now, p["include_revoked"])
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
                    _write(path, text)
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
                    notified.setdefault(row["id"], []).append(_band_key(band))
                sent.append(entry)
            if sent and not module.check_mode:
                os.makedirs(os.path.dirname(os.path.abspath(state_path)), exist_ok=True)
                _write(state_path, json.dumps(notified, indent=2, sort_keys=True) + "\n", 0o600)
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
