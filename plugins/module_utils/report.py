# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The expiry report: rows from remote credentials and local certificate files, and its HTML page.

Plain Python (no AnsibleModule): ``build_report`` checks its input and
refuses what it cannot read with ``ReportInputError`` naming the entry and
field; ``render_html`` draws the timeline (SVG) and the tables. The page's
markup and style live in ``report_html``.
"""

from __future__ import annotations

import html
import math
import os

from ansible_collections.mcdev.credentials.plugins.module_utils.errors import CollectionError
from ansible_collections.mcdev.credentials.plugins.module_utils import _time
from ansible_collections.mcdev.credentials.plugins.module_utils import inventory as inv
from ansible_collections.mcdev.credentials.plugins.module_utils import report_html as page

BANDS = ("expired",) + tuple(sorted(inv.NOTICE_DAYS))  # expired, 1, 7, 15, 30, 60, 90
COLOURS = {"expired": "#7f1d1d", 1: "#b91c1c", 7: "#dc2626", 15: "#ea580c", 30: "#d97706", 60: "#ca8a04",
           90: "#65a30d", None: "#16a34a"}
REVOKED_COLOUR = "#9ca3af"

# The timeline's scale: (days left, x offset in px). Piecewise linear, so that each notice band gets
# room for its urgency rather than its length: the first 30 days take more than half of the days ahead.
KNOTS = ((-30, 0), (0, 70), (1, 130), (7, 195), (15, 260), (30, 335), (60, 400), (90, 460), (180, 520), (400, 580))
TICKS = ((0, "today"), (1, "1d"), (7, "7d"), (15, "15d"), (30, "30d"), (60, "60d"), (90, "90d"), (180, "180d"),
         (400, "400d+"))
LABEL_WIDTH = 310          # the label column, left of the chart
CHART_LEFT = LABEL_WIDTH + 10
CHART_WIDTH = KNOTS[-1][1]
SVG_WIDTH = CHART_LEFT + CHART_WIDTH + 110  # room for the days text after the longest bar
ROW_HEIGHT = 32
HEADER_HEIGHT = 34
# Labels use a monospace face: 0.6 em per character, so the page and its tests agree on label widths.
CHAR_EM = 0.6
ALIAS_PX, DETAIL_PX, DAYS_PX, TICK_PX = 12, 10, 11, 10
GROUP_FROM = 20     # more rows than this: grouped by project
COLLAPSE_FROM = 50  # more rows than this: rows with more than 90 days left are summed up, listed in the table


class ReportInputError(CollectionError):
    """Input the report cannot read; the message names the entry and the field."""


# ----------------------------------------------------------------- the rows

def _require(entry, where, fields, hint):
    if not isinstance(entry, dict):
        raise ReportInputError("%s is not a dictionary; %s" % (where, hint))
    missing = [name for name in fields if entry.get(name) in (None, "")]
    if missing:
        raise ReportInputError("%s has no %s; %s" % (where, " or ".join(missing), hint))


def _time_field(entry, where, field):
    try:
        return _time.parse(entry[field])
    except (TypeError, ValueError):
        raise ReportInputError("%s.%s=%r is not an ISO 8601 time" % (where, field, entry[field])) from None


def _whole_days(left):
    """Whole days left, rounded down: 0.4 days is 0 (today), -0.2 is -1 (expired yesterday)."""
    return None if left is None else int(math.floor(left))


def _remote_row(cred, index, now, names):
    where = "credentials[%d]" % index
    if isinstance(cred, dict) and cred.get("path") and cred.get("not_after") and not cred.get("expires"):
        raise ReportInputError("%s has no expires: it looks like an entry of mc_credential_info's local list (it "
                               "has path and not_after); pass that list as local, not as credentials" % where)
    _require(cred, where, ("id", "expires"), "pass the credentials list that mc_credential_info returns")
    expires = _time_field(cred, where, "expires")
    status = (cred.get("status") or "ACTIVE").upper()
    # a revoked credential is in no band: it is never notified and never counted
    band = inv.notice_bucket(expires, now) if status != "REVOKED" else None
    if inv.is_active(status) and band == "expired":
        status = "EXPIRED"
    project_id = cred.get("project_id")
    return {
        "source": "api", "project_id": project_id,
        "project_name": cred.get("project_name") or names.get(project_id) or None,
        "id": cred["id"], "alias": cred.get("alias") or cred["id"], "kind": cred.get("kind"),
        "environment": cred.get("environment"), "status": status, "fingerprint": cred.get("fingerprint"),
        "expires": _time.iso(expires), "days_left": _whole_days(inv.days_left(expires, now)), "band": band,
        "deployed_on": [],
    }


def _local_row(entry, index, now):
    where = "local[%d]" % index
    _require(entry, where, ("path", "not_after"), "pass the local list that mc_credential_info returns")
    expires = _time_field(entry, where, "not_after")
    band = inv.notice_bucket(expires, now)
    host = entry.get("host")
    return {
        "source": "file", "project_id": None, "project_name": host or "certificate files",
        "id": entry["path"], "alias": os.path.basename(entry["path"]) or entry["path"], "kind": "certificate",
        "environment": None, "status": "EXPIRED" if band == "expired" else "ACTIVE",
        "fingerprint": entry.get("fingerprint"), "subject": entry.get("subject"), "expires": _time.iso(expires),
        "days_left": _whole_days(inv.days_left(expires, now)), "band": band,
        "deployed_on": [{"host": host or "this host", "current": True, "path": entry["path"]}],
    }


def build_report(credentials, deployed, now, include_revoked=False, local=None, project_names=None, work_orders=()):
    """The report document: rows sorted by urgency, the count per band, and the portal's open work orders (what a
    person has yet to do; see portal.open_work_orders)."""
    names = dict(project_names or {})
    rows = []
    for index, cred in enumerate(credentials or []):
        row = _remote_row(cred, index, now, names)
        if row["status"] == "REVOKED" and not include_revoked:
            continue
        row["deployed_on"] = deployed.get(row["id"], [])
        rows.append(row)
    by_fingerprint = {row["fingerprint"]: row for row in rows if row["fingerprint"]}
    for index, entry in enumerate(local or []):
        row = _local_row(entry, index, now)
        remote = by_fingerprint.get(row["fingerprint"])
        if remote is not None:  # the file is a credential the API listed: one row, the file among its places
            remote["deployed_on"].extend(row["deployed_on"])
            continue
        rows.append(row)
    rows.sort(key=_urgency)
    summary = dict((band_key(b), 0) for b in BANDS + (None,))
    for row in rows:
        if row["status"] in ("ACTIVE", "EXPIRED"):
            summary[band_key(row["band"])] += 1
    summary["awaiting_person"] = len(work_orders or ())
    return {"generated_at": _time.iso(now), "bands": list(BANDS[1:]), "summary": summary, "credentials": rows,
            "work_orders": list(work_orders or ())}


def _urgency(row):
    return (row["status"] == "REVOKED", row["days_left"] is None, row["days_left"] or 0,
            row["project_name"] or row["project_id"] or "", row["alias"] or "")


def band_key(band):
    return "ok" if band is None else str(band)


def due_notifications(report, notified):
    """[(row, band)] for active API credentials whose current band has not been notified yet."""
    out = []
    for row in report["credentials"]:
        if row["source"] != "api" or row["status"] not in ("ACTIVE", "EXPIRED") or row["band"] is None:
            continue
        if band_key(row["band"]) not in notified.get(row["id"], []):
            out.append((row, row["band"]))
    return out


# --------------------------------------------------------------- the timeline

def day_x(days):
    """x of ``days`` left on the piecewise scale (clamped to the chart)."""
    days = max(KNOTS[0][0], min(KNOTS[-1][0], days))
    for (d0, x0), (d1, x1) in zip(KNOTS, KNOTS[1:]):
        if days <= d1:
            return CHART_LEFT + x0 + (x1 - x0) * (days - d0) / float(d1 - d0)
    return CHART_LEFT + CHART_WIDTH


def fit(text, px, width):
    """``text`` cut with an ellipsis to what ``width`` px of a monospace face at ``px`` holds."""
    room = int(width // (px * CHAR_EM))
    return text if len(text) <= room else text[:max(1, room - 1)] + "\u2026"


def _days_text(row):
    left = row["days_left"]
    if row["status"] == "REVOKED":
        return "revoked"
    if left < 0:
        return "expired %d d ago" % -left
    if left == 0:
        return "expires today"
    return "%d d" % left


def _colour(row):
    return REVOKED_COLOUR if row["status"] == "REVOKED" else COLOURS.get(row["band"], COLOURS[None])


def _groups(rows):
    """[(group name or None, rows, hidden healthy rows)] in the order they are drawn."""
    collapse = len(rows) > COLLAPSE_FROM
    if len(rows) <= GROUP_FROM:
        keyed = [(None, rows)]
    else:
        by_project = {}
        for row in rows:
            by_project.setdefault(row["project_name"] or row["project_id"] or "no project", []).append(row)
        keyed = sorted(by_project.items(), key=lambda item: _urgency(item[1][0]))
    out = []
    for name, members in keyed:
        shown = [r for r in members if not (collapse and r["band"] is None and inv.is_active(r["status"]))]
        out.append((name, shown, len(members) - len(shown)))
    return out


def timeline_svg(rows):
    """The SVG timeline: one row per credential (grouped, healthy ones summed up when there are many)."""
    esc = html.escape
    groups = _groups(rows)
    lines = sum(len(shown) + (1 if name is not None else 0) + (1 if hidden else 0) for name, shown, hidden in groups)
    height = HEADER_HEIGHT + ROW_HEIGHT * max(lines, 1) + 8
    today = day_x(0)
    parts = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" role="img" '
             'aria-labelledby="timeline-title timeline-desc">' % (SVG_WIDTH, height, SVG_WIDTH, height),
             '<title id="timeline-title">Days until each credential expires</title>',
             '<desc id="timeline-desc">%s</desc>' % esc(_description(rows))]
    edges = [KNOTS[0][0], 0] + list(BANDS[1:]) + [KNOTS[-1][0]]  # expired before today; band N up to N days
    for band, start, end in zip(BANDS + (None,), edges, edges[1:]):
        parts.append('<rect class="zone" data-band="%s" x="%.1f" y="%d" width="%.1f" height="%d" fill="%s"/>' % (
            band_key(band), day_x(start), HEADER_HEIGHT - 6, day_x(end) - day_x(start), height - HEADER_HEIGHT,
            COLOURS[band]))
    for days, label in TICKS:
        parts.append('<line class="tick" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>' % (
            day_x(days), HEADER_HEIGHT - 10, day_x(days), height - 4))
        parts.append('<text class="axis" x="%.1f" y="%d" font-size="%d" text-anchor="middle">%s</text>' % (
            day_x(days), HEADER_HEIGHT - 14, TICK_PX, label))
    parts.append('<line class="today" x1="%.1f" y1="%d" x2="%.1f" y2="%d"/>'
                 % (today, HEADER_HEIGHT - 10, today, height - 4))
    y = HEADER_HEIGHT
    for name, shown, hidden in groups:
        if name is not None:
            due = sum(1 for r in shown if r["band"] is not None)
            parts.append('<text class="group" x="8" y="%d" font-size="%d">%s</text>' % (
                y + 20, ALIAS_PX, esc(fit("%s \u2014 %d due within 90 days" % (name, due), ALIAS_PX,
                                          SVG_WIDTH - 16))))
            y += ROW_HEIGHT
        for row in shown:
            parts.append(_row_svg(row, y))
            y += ROW_HEIGHT
        if hidden:
            parts.append('<text class="more" x="8" y="%d" font-size="%d">%s</text>' % (
                y + 20, DETAIL_PX, "+ %d more with over 90 days left (listed in the table below)" % hidden))
            y += ROW_HEIGHT
    parts.append("</svg>")
    return "".join(parts)


def _row_svg(row, y):
    esc = html.escape
    left = row["days_left"]
    today = day_x(0)
    end = day_x(left)
    width = max(3.0, abs(end - today))  # a sliver is still a bar; expired ones end at today, the others start there
    x0, x1 = (today - width, today) if left < 0 else (today, today + width)
    facts = (row["project_name"] or row["project_id"], row["environment"], row["kind"])
    detail = " \u00b7 ".join(str(v) for v in facts if v)
    tip = "%s \u2014 %s; id %s; expires %s (%s)" % (row["alias"], detail, row["id"], row["expires"], _days_text(row))
    days_x = max(x1, today) + 6
    return "".join([
        '<g class="row" data-alias="%s">' % esc(row["alias"]),
        '<title>%s</title>' % esc(tip),
        '<text class="label" x="8" y="%d" font-size="%d">%s</text>'
        % (y + 14, ALIAS_PX, esc(fit(row["alias"], ALIAS_PX, LABEL_WIDTH - 8))),
        '<text class="detail" x="8" y="%d" font-size="%d">%s</text>'
        % (y + 27, DETAIL_PX, esc(fit(detail, DETAIL_PX, LABEL_WIDTH - 8))),
        '<rect class="bar" x="%.1f" y="%d" width="%.1f" height="14" rx="2" fill="%s"/>'
        % (x0, y + 7, width, _colour(row)),
        '<text class="days" x="%.1f" y="%d" font-size="%d">%s</text>' % (days_x, y + 18, DAYS_PX, esc(_days_text(row))),
        "</g>"])


def _description(rows):
    expired = [r for r in rows if r["status"] == "EXPIRED"]
    due = [r for r in rows if r["band"] not in (None, "expired") and inv.is_active(r["status"])]
    text = "%d credentials: %d expired, %d expire within 90 days." % (len(rows), len(expired), len(due))
    if rows and rows[0]["status"] != "REVOKED":
        first = rows[0]
        where = first["project_name"] or first["project_id"]
        text += " Most urgent: %s (%s), %s." % (first["alias"], where, _days_text(first))
    return text


# ------------------------------------------------------------------- the page

def _band_label(row):
    if row["status"] == "REVOKED":
        return "revoked"
    if row["band"] == "expired":
        return "expired"
    return "&le; %sd" % row["band"] if row["band"] else "&gt; 90d"


def _table_row(row):
    esc = html.escape
    hosts = ", ".join("%s%s" % (d.get("path") or d["host"], "" if d["current"] else " (kept)")
                      for d in row["deployed_on"]) or "not deployed by the rotation role"
    project = row["project_name"] or row["project_id"] or ""
    project_cell = '<span title="%s">%s</span>' % (esc(str(row["project_id"] or "")), esc(project)) \
        if row["project_id"] and row["project_name"] else esc(project)
    return ('<tr><th scope="row">%s</th><td>%s</td><td>%s</td><td>%s</td><td>%s</td>'
            '<td class="date" title="%s">%s</td><td class="num">%s</td><td>%s</td><td>%s</td>'
            '<td class="id">%s</td></tr>' % (
                esc(str(row["alias"])), project_cell, esc(str(row["kind"] or "")), esc(str(row["environment"] or "")),
                esc(row["status"]), esc(str(row["expires"])), esc(str(row["expires"])[:10]), row["days_left"],
                _band_label(row), esc(hosts), esc(str(row["id"]))))


def render_html(report, title):
    """One self-contained HTML page: band counts, the timeline, the table (healthy rows folded when many)."""
    esc = html.escape
    rows = report["credentials"]
    cards = "".join('<div class="card" style="border-color:%s"><b>%d</b><span>%s</span></div>' % (
        COLOURS.get(None if key == "ok" else (key if key == "expired" else int(key))), report["summary"].get(key, 0),
        label) for key, label in page.CARD_LABELS)
    fold = len(rows) > COLLAPSE_FROM
    urgent = [r for r in rows if not (fold and r["band"] is None)]
    healthy = [r for r in rows if fold and r["band"] is None]
    tables = page.TABLE % "".join(_table_row(r) for r in urgent)
    if healthy:
        tables += page.FOLDED % (len(healthy), page.TABLE % "".join(_table_row(r) for r in healthy))
    return page.PAGE % {"title": esc(title), "style": page.STYLE, "generated": esc(report["generated_at"]),
                        "cards": cards, "svg": timeline_svg(rows), "tables": _work_orders_html(report) + tables}


def _work_orders_html(report):
    """The portal's open work orders, above the credentials: each is a person's next step."""
    esc = html.escape
    orders = report.get("work_orders") or []
    if not orders:
        return ""
    rows = []
    for order in orders:
        what = "add %s" % order["alias"] if order["step"] == "create" else "revoke %s (%s)" % (
            order["alias"], order["credential_id"])
        in_use = order.get("in_use") or {}
        rows.append(page.WORK_ORDER_ROW % tuple(esc(str(v)) for v in (
            what, order["project_id"], order["kind"], order["environment"], order["status"],
            str(order["written"] or "")[:16].replace("T", " "),
            ("%s, expires %s" % (in_use.get("alias"), str(in_use.get("expires"))[:10])) if in_use else "",
            "dropped in the inbox; the next run checks it" if order["answered"] else "waiting", order["page"])))
    return page.WORK_ORDERS % (len(orders), "".join(rows))
