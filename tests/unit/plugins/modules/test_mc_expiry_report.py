"""mc_expiry_report: bands, what is deployed where, a self-contained page, one notification per band."""

import http.server
import json
import os
import ssl
import threading

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import _time
from ansible_collections.mcdev.credentials.plugins.modules import mc_expiry_report as report
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module

NOW = "2026-06-01T00:00:00Z"


def _cred(cid, expires, status="ACTIVE", alias=None):
    return {"project_id": "p1", "id": cid, "alias": alias or cid, "kind": "oauth1", "environment": "sandbox",
            "status": status, "fingerprint": "f" * 64, "expires": expires}


CREDS = [
    _cred("soon", "2026-06-05T00:00:00Z"),        # 4 days: band 7
    _cred("month", "2026-06-25T00:00:00Z"),       # 24 days: band 30
    _cred("later", "2027-03-01T00:00:00Z"),       # > 90 days
    _cred("gone", "2026-05-01T00:00:00Z"),        # expired
    _cred("revoked", "2026-06-02T00:00:00Z", status="REVOKED"),
]


def _fleet(tmp_path):
    lineage = tmp_path / "state" / "p1_sandbox_oauth1_app"
    lineage.mkdir(parents=True)
    (lineage / "fleet.json").write_text(json.dumps({
        "h1": {"reachable": True, "current_id": "month", "verified_at": NOW,
               "versions": [{"credential_id": "soon"}, {"credential_id": "month"}]},
        "h2": {"reachable": True, "current_id": "month", "versions": [{"credential_id": "month"}]}}))
    return str(tmp_path / "state")


def test_bands_and_deployments(tmp_path):
    out = report.build_report(CREDS, report.deployments(_fleet(tmp_path)), _time.parse(NOW))
    rows = dict((r["id"], r) for r in out["credentials"])
    assert "revoked" not in rows
    assert rows["soon"]["band"] == 7 and rows["month"]["band"] == 30 and rows["later"]["band"] is None
    assert rows["gone"]["band"] == "expired" and rows["gone"]["status"] == "EXPIRED"
    assert [d["host"] for d in rows["month"]["deployed_on"] if d["current"]] == ["h1", "h2"]
    assert [(d["host"], d["current"]) for d in rows["soon"]["deployed_on"]] == [("h1", False)]
    assert out["summary"]["7"] == 1 and out["summary"]["30"] == 1 and out["summary"]["ok"] == 1
    assert out["summary"]["expired"] == 1


def test_html_is_self_contained(tmp_path):
    out = report.build_report(CREDS + [_cred("x", "2026-07-01T00:00:00Z", alias="<script>alert(1)</script>")],
                              {}, _time.parse(NOW))
    page = report.render_html(out, "Expiry <test>")
    assert page.startswith("<!DOCTYPE html>") and "<svg" in page and "<style>" in page
    for external in ("http://", "https://", "src=", "<link", "@import", "url("):
        assert external not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert "<script>" not in page and "&lt;script&gt;" in page


class _Hook(http.server.BaseHTTPRequestHandler):
    received = []
    fail = False

    def do_POST(self):  # noqa: N802 - http.server API
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if _Hook.fail:
            self.send_response(500)
            self.end_headers()
            return
        _Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def webhook(tmp_path):
    """An HTTPS webhook on loopback with a throw-away certificate."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import datetime
    import ipaddress
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "hook.pem", tmp_path / "hook.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    server = http.server.HTTPServer(("127.0.0.1", 0), _Hook)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(str(cert_path), str(key_path))
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    _Hook.received = []
    _Hook.fail = False
    yield {"url": "https://127.0.0.1:%d/hook" % server.server_port, "ca": str(cert_path)}
    server.shutdown()


def _run(tmp_path, webhook, now=NOW, **extra):
    args = {"credentials": CREDS, "rotation_state_dir": str(tmp_path / "state"), "dest_dir": str(tmp_path / "out"),
            "webhook_url": webhook["url"], "webhook_ca_path": webhook["ca"], "now": now}
    args.update(extra)
    return run_module(report, args)


def test_one_notification_per_band_crossed(tmp_path, webhook):
    first = _run(tmp_path, webhook)
    assert sorted((n["credential_id"], str(n["band"])) for n in first["notifications"]) == [
        ("gone", "expired"), ("month", "30"), ("soon", "7")]
    assert len(_Hook.received) == 3 and all(m["event"] == "credential_expiry" for m in _Hook.received)
    assert os.path.exists(first["html_path"]) and json.load(open(first["json_path"]))["summary"]["7"] == 1
    # the same day again: nothing new to say
    assert _run(tmp_path, webhook)["notifications"] == []
    # ten days later: "soon" expired, "month" entered the 15-day band
    later = _run(tmp_path, webhook, now="2026-06-11T00:00:00Z")
    assert sorted((n["credential_id"], str(n["band"])) for n in later["notifications"]) == [
        ("month", "15"), ("soon", "expired")]
    assert len(_Hook.received) == 5


def test_failed_webhook_is_retried_next_run(tmp_path, webhook):
    _Hook.fail = True
    with pytest.raises(ModuleFail) as failed:
        _run(tmp_path, webhook)
    assert "3 webhook notification(s) failed" in failed.value.result["msg"]
    assert os.path.exists(failed.value.result["html_path"])
    _Hook.fail = False
    assert len(_run(tmp_path, webhook)["notifications"]) == 3


def test_http_webhook_is_refused(tmp_path):
    with pytest.raises(ModuleFail, match="webhook_url must be an https:// URL"):
        run_module(report, {"credentials": [], "dest_dir": str(tmp_path), "webhook_url": "http://x/h"})


def test_check_mode_writes_and_sends_nothing(tmp_path, webhook):
    result = run_module(report, {"credentials": CREDS, "dest_dir": str(tmp_path / "out"),
                                 "webhook_url": webhook["url"], "webhook_ca_path": webhook["ca"], "now": NOW},
                        check_mode=True)
    assert len(result["notifications"]) == 3 and _Hook.received == []
    assert not os.path.exists(tmp_path / "out")


def test_revoked_credentials_are_in_no_band(tmp_path):
    out = report.build_report(CREDS, {}, _time.parse(NOW), include_revoked=True)
    rows = dict((r["id"], r) for r in out["credentials"])
    assert rows["revoked"]["band"] is None and rows["revoked"]["status"] == "REVOKED"
    assert ">revoked<" in report.render_html(out, "t")
    assert sum(out["summary"].values()) == 4


def test_open_portal_work_orders_are_listed_above_the_credentials(tmp_path):
    from ansible_collections.mcdev.credentials.plugins.module_utils import crypto, portal  # pylint: disable=import-outside-toplevel
    state = _fleet(tmp_path)
    desk = portal.PortalDesk(os.path.join(state, "portal"), "p1", "mtls")
    csr = crypto.build_csr(crypto.generate_private_key(), {"CN": "pay-1780000000"})
    with pytest.raises(portal.AwaitingPerson):
        desk.create_credential("p1", "mtls", "production", "pay-1780000000", csr_pem=crypto.dump_csr(csr).decode(),
                               in_use={"alias": "pay", "id": "month", "expires": "2026-06-25T00:00:00Z"})
    args = {"credentials": CREDS, "rotation_state_dir": state, "dest_dir": str(tmp_path / "out"), "now": NOW}
    result = run_module(report, args)
    (order,) = result["report"]["work_orders"]
    assert (order["step"], order["status"], order["alias"], order["answered"]) == (
        "create", "AWAITING_ISSUE", "pay-1780000000", False)
    assert result["summary"]["awaiting_person"] == 1
    page = open(result["html_path"], encoding="utf-8").read()
    assert "Waiting on a person at the portal (1)" in page and "add pay-1780000000" in page
    assert "pay, expires 2026-06-25" in page and order["page"] in page
    # dropped into the inbox: still listed (the next run checks it), marked as answered
    with open(order["inbox"], "w", encoding="ascii") as handle:
        handle.write("-----BEGIN CERTIFICATE-----\n")
    again = run_module(report, args)
    assert again["report"]["work_orders"][0]["answered"] is True and again["changed"] is True
    # no portal folder: no section
    alone = run_module(report, dict(args, rotation_state_dir=None, dest_dir=str(tmp_path / "out2")))
    assert alone["report"]["work_orders"] == [] and "Waiting on a person" not in open(alone["html_path"]).read()
