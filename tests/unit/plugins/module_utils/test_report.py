"""The expiry report's rows and the geometry of its timeline (module_utils/report.py).

The SVG is parsed and measured: labels never overlap, every bar names its alias, the today line
exists, the notice bands are in order, expired bars lie left of today. Labels are drawn in a
monospace face, so a label's width is its length times 0.6 em, here as in the browser.
"""

from __future__ import annotations

import datetime
import re
import uuid
import xml.etree.ElementTree as ET

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import report
from ansible_collections.mcdev.credentials.plugins.module_utils.report import ReportInputError

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SVG = "{http://www.w3.org/2000/svg}"
# Days left that hit every band and its edges: long expired, just expired, today, each notice day, healthy.
DAYS = [-400, -5, -0.2, 0.3, 1, 5, 7, 12, 15, 29, 30, 45, 60, 75, 90, 91, 200, 364, 390, 800]


def fleet(count, projects=None):
    projects = projects or [str(uuid.UUID(int=n + 1)) for n in range(max(1, count // 25))]
    creds = []
    for index in range(count):
        days = DAYS[index % len(DAYS)] + (index // len(DAYS)) * 0.01
        creds.append({
            "project_id": projects[index % len(projects)], "id": str(uuid.UUID(int=10_000 + index)),
            "alias": "payments-gateway-%s-%04d" % (["mtls", "oauth1", "oauth2"][index % 3], index),
            "kind": ["mtls", "oauth1", "oauth2"][index % 3], "environment": "production", "status": "ACTIVE",
            "fingerprint": "%064x" % index, "expires": (NOW + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    names = {pid: "Acquiring project %d" % n for n, pid in enumerate(projects)}
    return creds, names


def boxes(svg_root):
    """(x0, y0, x1, y1, text) of every text element, from its x, y, font size and anchor."""
    out = []
    for node in svg_root.iter(SVG + "text"):
        size = float(node.get("font-size"))
        width = len(node.text or "") * size * report.CHAR_EM
        x, y = float(node.get("x")), float(node.get("y"))
        if node.get("text-anchor") == "middle":
            x -= width / 2
        out.append((x, y - size * 0.8, x + width, y + size * 0.2, node.text))
    return out


def overlaps(a, b):
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def parse(rows):
    return ET.fromstring(report.timeline_svg(rows))


@pytest.mark.parametrize("count", [1, 20, 500])
def test_timeline_geometry(count):
    creds, names = fleet(count)
    rows = report.build_report(creds, {}, NOW, project_names=names)["credentials"]
    root = parse(rows)
    texts = boxes(root)
    for i, first in enumerate(texts):
        for second in texts[i + 1:]:
            assert not overlaps(first, second), (first, second)
        assert first[2] <= float(root.get("width")), first
    today = [line for line in root.iter(SVG + "line") if line.get("class") == "today"]
    assert len(today) == 1
    today_x = float(today[0].get("x1"))
    zones = [z for z in root.iter(SVG + "rect") if z.get("class") == "zone"]
    assert [z.get("data-band") for z in zones] == ["expired", "1", "7", "15", "30", "60", "90", "ok"]
    lefts = [float(z.get("x")) for z in zones]
    assert lefts == sorted(lefts) and float(zones[1].get("x")) == pytest.approx(today_x)
    # the urgent bands get room: the first 30 days hold at least as much width as the rest of the year
    assert report.day_x(30) - report.day_x(0) >= report.day_x(365) - report.day_x(30)
    drawn = list(root.iter(SVG + "g"))
    by_alias = {row["alias"]: row for row in rows}
    previous_days = None
    for group in drawn:
        alias = group.get("data-alias")
        row = by_alias[alias]
        label = [t for t in group.iter(SVG + "text") if t.get("class") == "label"][0].text
        assert label == report.fit(alias, report.ALIAS_PX, report.LABEL_WIDTH - 8)
        assert alias.startswith(label.rstrip("\u2026"))
        rect = [r for r in group.iter(SVG + "rect") if r.get("class") == "bar"][0]
        x, width = float(rect.get("x")), float(rect.get("width"))
        if row["days_left"] < 0:
            assert x + width == pytest.approx(today_x) and x < today_x
        else:
            assert x == pytest.approx(today_x)
        title = group.find(SVG + "title").text
        assert row["id"] in title and alias in title
        if count <= report.GROUP_FROM:  # one list, sorted by urgency
            assert previous_days is None or row["days_left"] >= previous_days
            previous_days = row["days_left"]
    if count <= report.COLLAPSE_FROM:
        assert len(drawn) == count
    else:
        healthy = sum(1 for row in rows if row["band"] is None)
        assert len(drawn) == count - healthy and healthy > 0
        mores = [t.text for t in root.iter(SVG + "text") if t.get("class") == "more"]
        assert sum(int(re.match(r"\+ (\d+) more", text).group(1)) for text in mores) == healthy
    if count > report.GROUP_FROM:
        groups = [t.text for t in root.iter(SVG + "text") if t.get("class") == "group"]
        assert len(groups) == len(names) and all(text.startswith("Acquiring project") for text in groups)


def test_long_uuid_project_ids_never_cut_the_alias_away():
    project = "c10a646a-4e92-4940-a1cd-95f1c2341839"
    creds = [{"project_id": project, "id": "cred-1", "alias": "p", "expires": "2026-12-07T12:00:00Z",
              "status": "ACTIVE"}]
    row = report.build_report(creds, {}, NOW)["credentials"][0]
    group = list(parse([row]).iter(SVG + "g"))[0]
    texts = {t.get("class"): t.text for t in group.iter(SVG + "text")}
    assert texts["label"] == "p" and project in texts["detail"] and texts["days"] == "5 d"


def test_whole_days_and_words():
    creds, _names = fleet(20)
    rows = {r["alias"]: r for r in report.build_report(creds, {}, NOW)["credentials"]}
    by_index = {int(alias[-4:]): row for alias, row in rows.items()}
    assert by_index[1]["days_left"] == -5 and by_index[2]["days_left"] == -1 and by_index[3]["days_left"] == 0
    assert by_index[4]["days_left"] == 1 and isinstance(by_index[5]["days_left"], int)
    assert report._days_text(by_index[1]) == "expired 5 d ago"  # pylint: disable=protected-access
    assert report._days_text(by_index[3]) == "expires today"  # pylint: disable=protected-access
    page = report.render_html(report.build_report(creds, {}, NOW), "t")
    assert not re.search(r'class="num">-?\d+\.\d', page)


def test_page_is_self_contained_and_folds_healthy_rows_when_many():
    creds, names = fleet(500)
    page = report.render_html(report.build_report(creds, {}, NOW, project_names=names), "Fleet")
    for external in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert external not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<details><summary>" in page and "credentials with more than 90 days left" in page
    assert '<desc id="timeline-desc">500 credentials:' in page
    assert page.count("<tr>") == 500 + 2  # every credential in a table row, plus two header rows


def test_local_files_are_rows_or_places_of_their_credential():
    creds = [{"project_id": "p", "id": "c1", "alias": "api-key", "expires": "2027-01-01T00:00:00Z",
              "status": "ACTIVE", "fingerprint": "aa"}]
    local = [{"path": "/etc/pki/kmp/partner.pem", "not_after": "2026-12-20T00:00:00Z", "fingerprint": "bb",
              "subject": "CN=partner", "host": "app1"},
             {"path": "/etc/mcdev/api-key/cert.pem", "not_after": "2027-01-01T00:00:00Z", "fingerprint": "aa"}]
    rows = report.build_report(creds, {}, NOW, local=local)["credentials"]
    assert [r["alias"] for r in rows] == ["partner.pem", "api-key"]
    assert rows[0]["source"] == "file" and rows[0]["band"] == 30 and rows[0]["days_left"] == 17
    assert rows[0]["project_name"] == "app1"
    assert rows[1]["deployed_on"] == [{"host": "this host", "current": True, "path": "/etc/mcdev/api-key/cert.pem"}]


@pytest.mark.parametrize("credentials, local, message", [
    ([{"id": "c1", "alias": "a"}], None, r"credentials\[0\] has no expires"),
    ([{"alias": "a", "expires": "2027-01-01T00:00:00Z"}], None, r"credentials\[0\] has no id"),
    ([{"id": "c1", "expires": "next tuesday"}], None, r"credentials\[0\]\.expires='next tuesday' is not an ISO 8601"),
    (["c1"], None, r"credentials\[0\] is not a dictionary"),
    ([{"path": "/x.pem", "not_after": "2027-01-01T00:00:00Z"}], None, "pass that list as local"),
    (None, [{"path": "/x.pem"}], r"local\[0\] has no not_after"),
    (None, [{"not_after": "2027-01-01T00:00:00Z"}], r"local\[0\] has no path"),
])
def test_input_it_cannot_read_is_refused_naming_the_field(credentials, local, message):
    with pytest.raises(ReportInputError, match=message):
        report.build_report(credentials, {}, NOW, local=local)
