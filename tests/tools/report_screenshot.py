"""Render the expiry report of a demo fleet with headless Chromium: docs/img/expiry-report.png.

`make report-screenshot` runs it. The fleet is what `make demo` reports on, at the scale a person
meets: UUID project ids with names, twenty credentials over every notice band (two expired, one
due today), and one certificate file from KMP that the API does not know. It goes through the
collection's own report code (module_utils/report.py), the same the module writes.

    python tests/tools/report_screenshot.py OUT_DIR [--count N] [--png PATH]

Prints the page's size, the time to build and render it in Python and the time Chromium took.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.abspath(os.path.join(HERE, "..", "..", "..", "..", "..")))

from ansible_collections.mcdev.credentials.plugins.module_utils import report  # noqa: E402 pylint: disable=wrong-import-position

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 12, 2, 9, 0, tzinfo=UTC)
PROJECTS = [("c10a646a-4e92-4940-a1cd-95f1c2341839", "Card acquiring EU"),
            ("5b7f1d0e-2c3a-4f65-9d84-0e6a1b2c3d4e", "Cross-border payouts"),
            ("9e2d4c6b-8a1f-4e3d-b5c7-1f2e3d4c5b6a", "Merchant onboarding"),
            ("0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0", "Tokenization sandbox")]
DAYS = [-12, -1, 0.4, 3, 6, 9, 14, 21, 28, 40, 52, 58, 71, 85, 120, 160, 210, 290, 340, 380]
KINDS = ("mtls", "oauth1", "oauth2")


def fleet(count):
    credentials = []
    for index in range(count):
        project_id, _name = PROJECTS[index % len(PROJECTS)]
        days = DAYS[index % len(DAYS)] + index // len(DAYS)
        kind = KINDS[index % 3]
        credentials.append({
            "project_id": project_id, "id": str(uuid.UUID(int=0x5EED0000 + index)),
            "alias": "%s-%s-%02d" % ({"mtls": "gateway-client", "oauth1": "payments-signing", "oauth2": "fapi-client"}
                                     [kind], "prod" if index % 2 else "sbx", index),
            "kind": kind, "environment": "production" if index % 2 else "sandbox", "status": "ACTIVE",
            "fingerprint": "%064x" % (0xABC000 + index),
            "expires": (NOW + datetime.timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        })
    deployed = {credentials[0]["id"]: [{"host": "app-eu-1", "current": True}, {"host": "app-eu-2", "current": True}]}
    local = [{"path": "/etc/pki/kmp/cross-border-mtls.pem", "host": "batch-1", "fingerprint": "f" * 64,
              "subject": "CN=1700000000-Client-MTF-123456",
              "not_after": (NOW + datetime.timedelta(days=11)).strftime("%Y-%m-%dT%H:%M:%SZ")}]
    return credentials, deployed, local


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    sys.exit("chromium is not installed: `make report-screenshot` installs Debian's chromium package")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out_dir")
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--png")
    args = parser.parse_args()
    os.makedirs(args.out_dir, exist_ok=True)
    credentials, deployed, local = fleet(args.count)
    started = time.perf_counter()
    document = report.build_report(credentials, deployed, NOW, local=local, project_names=dict(PROJECTS))
    page = report.render_html(document, "Mastercard credential expiry")
    python_ms = (time.perf_counter() - started) * 1000
    html_path = os.path.join(args.out_dir, "expiry-report-%d.html" % args.count)
    with open(html_path, "w", encoding="utf-8") as handle:
        handle.write(page)
    figures = {"credentials": args.count, "html_bytes": len(page.encode("utf-8")), "python_ms": round(python_ms, 1)}
    if args.png:
        os.makedirs(os.path.dirname(os.path.abspath(args.png)), exist_ok=True)
        started = time.perf_counter()
        subprocess.run([chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                        "--force-device-scale-factor=1", "--window-size=1120,1180",
                        "--screenshot=%s" % os.path.abspath(args.png), "file://%s" % os.path.abspath(html_path)],
                       check=True, capture_output=True, timeout=120)
        figures["chromium_ms"] = round((time.perf_counter() - started) * 1000)
        figures["png"] = args.png
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
