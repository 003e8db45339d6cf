# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The expiry report's page: markup and style, filled in by report.render_html.

Self-contained on purpose: no external font, script or style sheet, so the file
opens the same from a mail attachment, an AWX artifact or a printer.
"""

from __future__ import annotations

CARD_LABELS = (("expired", "expired"), ("1", "1 day"), ("7", "7 days"), ("15", "15 days"), ("30", "30 days"),
               ("60", "60 days"), ("90", "90 days"), ("ok", "&gt; 90 days"))

STYLE = (
    "body{font-family:system-ui,-apple-system,'Segoe UI','DejaVu Sans',sans-serif;margin:24px;color:#111827}"
    "h1{font-size:22px;margin:0 0 4px}p.meta{color:#4b5563;margin:0 0 8px}h2{font-size:16px;margin:16px 0 0}"
    ".cards{display:flex;gap:8px;flex-wrap:wrap;margin:12px 0}"
    ".card{border-left:6px solid;padding:6px 12px;background:#f9fafb;min-width:80px}"
    ".card b{display:block;font-size:20px}.card span{font-size:12px;color:#4b5563}"
    ".timeline{overflow-x:auto}"
    "svg text{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace}"
    "svg .zone{opacity:.08}svg .tick{stroke:#d1d5db}svg .axis{fill:#4b5563}"
    "svg .today{stroke:#111827;stroke-width:2}svg .label{fill:#111827;font-weight:bold}"
    "svg .detail,svg .more{fill:#6b7280}svg .days{fill:#111827}svg .group{fill:#1f2937;font-weight:bold}"
    "svg .row:hover .label{text-decoration:underline}"
    "table{border-collapse:collapse;font-size:13px;margin-top:16px}"
    "td,th{border-bottom:1px solid #e5e7eb;padding:4px 8px;text-align:left;vertical-align:top}"
    "thead th{background:#f3f4f6}tbody th{font-weight:600;white-space:nowrap}"
    "td.num{text-align:right;font-variant-numeric:tabular-nums}"
    "td.id,td.date{white-space:nowrap;font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:11px}"
    "td.path{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:11px;word-break:break-all;"
    "max-width:30em}"
    "details{margin-top:12px}summary{cursor:pointer;color:#374151}"
    "@media print{body{margin:8mm}.timeline{overflow:visible}details::details-content{content-visibility:visible;"
    "display:contents}summary{list-style:none}}"
)

TABLE = ('<table><thead><tr><th scope="col">alias</th><th scope="col">project</th><th scope="col">kind</th>'
         '<th scope="col">environment</th><th scope="col">status</th><th scope="col">expires</th>'
         '<th scope="col">days left</th><th scope="col">band</th><th scope="col">deployed on</th>'
         '<th scope="col">id</th></tr></thead><tbody>%s</tbody></table>')

WORK_ORDERS = ('<h2>Waiting on a person at the portal (%d)</h2>'
               '<table class="orders"><thead><tr><th scope="col">to do</th><th scope="col">project</th>'
               '<th scope="col">kind</th><th scope="col">environment</th><th scope="col">status</th>'
               '<th scope="col">since</th><th scope="col">in use meanwhile</th><th scope="col">answer</th>'
               '<th scope="col">work order</th></tr></thead><tbody>%s</tbody></table>')

WORK_ORDER_ROW = ('<tr><th scope="row">%s</th><td class="id">%s</td><td>%s</td><td>%s</td><td>%s</td>'
                  '<td class="date">%s</td><td>%s</td><td>%s</td><td class="path">%s</td></tr>')

FOLDED = '<details><summary>%d credentials with more than 90 days left</summary>%s</details>'

PAGE = (
    "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
    "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
    "<title>%(title)s</title><style>%(style)s</style></head><body>"
    "<h1>%(title)s</h1><p class=\"meta\">Generated %(generated)s. Bands are the portal's notice days "
    "(90, 60, 30, 15, 7, 1); the most urgent come first.</p>"
    "<div class=\"cards\">%(cards)s</div>"
    "<div class=\"timeline\">%(svg)s</div>%(tables)s</body></html>\n"
)
