# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""mc_credential_info in-process: remote part against the emulator, local scan on real files."""

from __future__ import annotations

import datetime
import os
import time

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from ansible_collections.mcdev.credentials.plugins.modules import mc_credential_info
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module

UTC = datetime.timezone.utc
DAY = 86400


@pytest.fixture(autouse=True)
def no_env(monkeypatch):
    for name in ("MC_DEVAPI_URL", "MC_DEVAPI_CONSUMER_KEY", "MC_DEVAPI_SIGNING_KEY_PATH",
                 "MC_DEVAPI_SIGNING_KEY_CONTENT", "MC_DEVAPI_SIGNING_KEY_PASSWORD", "MC_DEVAPI_CA_PATH"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def account(emulator):
    return emulator.new_account()


@pytest.fixture
def conn(emulator, account):
    return dict(api_url=emulator.info["api_url"], consumer_key=account["consumer_key"],
                signing_key_content=account["signing_key_pem"], ca_path=emulator.info["ca_path"], retries=0)


def seed(emulator, project_id, days_left, lifetime=395, **body):
    now = time.time()
    body.setdefault("type", "MTLS")
    return emulator.admin("POST", "/projects/%s/credentials" % project_id, dict(
        body, notBefore=now + (days_left - lifetime) * DAY, expiryDate=now + days_left * DAY))


@pytest.fixture(scope="module")
def remote_world(emulator, account):
    project = emulator.new_project(account["account_id"], auth_model="MTLS")["id"]
    other = emulator.new_project(account["account_id"], auth_model="OAUTH10A", oauth2_enabled=True)["id"]
    creds = {
        "far": seed(emulator, project, 200.5),
        "d85": seed(emulator, project, 85.5),
        "d50": seed(emulator, project, 50.5),
        "d20": seed(emulator, project, 20.5),
        "d3": seed(emulator, project, 3.5),
        "expired": seed(emulator, project, -2.5),
        "revoked": seed(emulator, project, 100.5, status="REVOKED"),
        "prod": seed(emulator, project, 10.5, environment="PRODUCTION"),
        "o1": seed(emulator, other, 300.5, type="SIGNING", oauthVersion="1.0a"),
        "o2": seed(emulator, other, 5.5, type="SIGNING", oauthVersion="2.0"),
    }
    return {"project": project, "other": other, "creds": creds}


def by_id(result):
    return dict((c["id"], c) for c in result["credentials"])


def test_remote_buckets_status_and_should_rotate(conn, remote_world):
    creds = remote_world["creds"]
    result = run_module(mc_credential_info, dict(conn, projects=[remote_world["project"]], lead_time_days=30))
    got = by_id(result)
    assert result["changed"] is False and result["api_calls"] == 1
    assert len(got) == 8
    expected = {"far": None, "d85": 90, "d50": 60, "d20": 30, "d3": 7, "expired": "expired", "prod": 15}
    for name, notice in expected.items():
        assert got[creds[name]["id"]]["notice"] == notice, name
    assert got[creds["d50"]["id"]]["days_left"] == 50
    assert got[creds["expired"]["id"]]["status"] == "EXPIRED"
    assert got[creds["revoked"]["id"]]["status"] == "REVOKED"
    assert got[creds["revoked"]["id"]]["should_rotate"] is False
    rotate = sorted(n for n in expected if got[creds[n]["id"]]["should_rotate"])
    assert rotate == ["d20", "d3", "expired", "prod"]
    assert result["summary"]["by_notice"] == {"90": 1, "60": 1, "30": 1, "15": 1, "7": 1, "expired": 1}
    assert result["local"] == [] and result["errors"] == []


def test_remote_default_lead_is_a_third_of_the_lifetime(conn, remote_world):
    creds = remote_world["creds"]
    got = by_id(run_module(mc_credential_info, dict(conn, projects=[remote_world["project"]])))
    assert got[creds["d85"]["id"]]["should_rotate"] is True  # 85 days left < ~132 days lead
    assert got[creds["far"]["id"]]["should_rotate"] is False


def test_remote_many_projects_filters(conn, remote_world):
    result = run_module(mc_credential_info, dict(
        conn, projects=[remote_world["project"], remote_world["other"]], environment="sandbox",
        kinds=["oauth2", "mtls"], include_revoked=False))
    assert result["api_calls"] == 2
    kinds = sorted(set(c["kind"] for c in result["credentials"]))
    assert kinds == ["mtls", "oauth2"]
    assert all(c["environment"] == "sandbox" and c["status"] != "REVOKED" for c in result["credentials"])
    assert {c["project_id"] for c in result["credentials"]} == {remote_world["project"], remote_world["other"]}


def test_remote_failure_is_clear(conn):
    with pytest.raises(ModuleFail) as info:
        run_module(mc_credential_info, dict(conn, projects=["nope"]))
    assert info.value.result["reason_code"] == "PROJECT_NOT_FOUND"


def test_remote_without_connection_options_names_the_option():
    with pytest.raises(ModuleFail) as info:
        run_module(mc_credential_info, dict(projects=["p"]))
    assert "consumer_key" in info.value.result["msg"]


# ---------------------------------------------------------------------- local scan

def make_cert(common_name, days_left, key=None, issuer_key=None):
    key = key or ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=30))
            .not_valid_after(now + datetime.timedelta(days=days_left, hours=12))
            .sign(issuer_key or key, hashes.SHA256()))
    return key, cert


def pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


@pytest.fixture
def tree(tmp_path):
    key, leaf = make_cert("leaf", 20)
    ca = make_cert("ca", 3000)[1]
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "cert.pem").write_bytes(pem(leaf) + pem(ca))  # leaf + chain
    (tmp_path / "app" / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    der_cert = make_cert("der", 100)[1]
    (tmp_path / "app" / "cert.der").write_bytes(der_cert.public_bytes(serialization.Encoding.DER))
    pkey, p12_cert = make_cert("p12", 5)
    (tmp_path / "app" / "ks.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"keyalias", pkey, p12_cert, None, serialization.BestAvailableEncryption(b"keystorepassword")))
    (tmp_path / "app" / "other.p12").write_bytes(pkcs12.serialize_key_and_certificates(
        b"x", pkey, p12_cert, None, serialization.BestAvailableEncryption(b"another")))
    (tmp_path / "app" / "notes.txt").write_text("not a certificate")
    (tmp_path / "app" / "deep").mkdir()
    deep = make_cert("deep", -1)[1]
    (tmp_path / "app" / "deep" / "old.crt").write_bytes(pem(deep))
    os.symlink("deep", str(tmp_path / "app" / "current"))
    return tmp_path


def test_local_scan_without_any_connection_option(tree):
    result = run_module(mc_credential_info, dict(paths=[str(tree / "app")], pkcs12_passwords=["keystorepassword"]))
    assert result["api_calls"] == 0 and result["credentials"] == []
    files = dict((os.path.basename(e["path"]), e) for e in result["local"])
    assert sorted(files) == ["cert.der", "cert.pem", "ks.p12"]  # no recursion; key.pem skipped
    assert files["cert.pem"]["chain_length"] == 2 and files["cert.pem"]["common_name"] == "leaf"
    assert files["cert.pem"]["notice"] == 30 and files["cert.pem"]["format"] == "pem"
    assert files["cert.der"]["format"] == "der" and files["cert.der"]["notice"] is None
    assert files["ks.p12"]["format"] == "pkcs12" and files["ks.p12"]["notice"] == 7
    assert [os.path.basename(e["path"]) for e in result["errors"]] == ["other.p12"]
    assert "passphrase" in result["errors"][0]["error"]
    assert result["summary"]["skipped"] == 1  # key.pem
    assert "keystorepassword" not in str(result)


def test_local_recursion_symlink_dedup_and_globs(tree):
    result = run_module(mc_credential_info, dict(paths=[str(tree / "app")], recurse=True))
    names = sorted(os.path.basename(e["path"]) for e in result["local"])
    assert names == ["cert.der", "cert.pem", "old.crt"]  # current -> deep is not walked twice
    old = [e for e in result["local"] if e["path"].endswith("old.crt")][0]
    assert old["expired"] is True and old["notice"] == "expired" and old["should_rotate"] is True

    globbed = run_module(mc_credential_info, dict(paths=[str(tree / "**" / "*.crt")], recurse=True))
    assert [os.path.basename(e["path"]) for e in globbed["local"]] == ["old.crt"]

    followed = run_module(mc_credential_info, dict(paths=[str(tree / "app")], recurse=True, follow_symlinks=True))
    assert len(followed["local"]) == 3  # the same file through the link is reported once


def test_local_missing_path_is_reported_not_fatal(tree):
    result = run_module(mc_credential_info, dict(paths=[str(tree / "nope"), str(tree / "app" / "cert.pem")]))
    assert len(result["local"]) == 1
    assert "does not exist" in result["errors"][0]["error"]


def test_nothing_asked_fails():
    with pytest.raises(ModuleFail) as info:
        run_module(mc_credential_info, {})
    assert "projects" in info.value.result["msg"] and "paths" in info.value.result["msg"]


def test_local_matched_to_remote_by_fingerprint(emulator, conn, account, tmp_path):
    project = emulator.new_project(account["account_id"], auth_model="MTLS")["id"]
    live = seed(emulator, project, 200)
    other = seed(emulator, project, 20)
    (tmp_path / "live.pem").write_text(live["certificate"])
    foreign = make_cert("foreign", 50)[1]
    (tmp_path / "foreign.pem").write_bytes(pem(foreign))
    result = run_module(mc_credential_info, dict(conn, projects=[project], paths=[str(tmp_path)]))
    files = dict((os.path.basename(e["path"]), e) for e in result["local"])
    assert files["live.pem"]["remote"]["credential_id"] == live["id"]
    assert files["live.pem"]["remote"]["matched_by"] == "fingerprint"
    assert files["live.pem"]["remote"]["status"] == "ACTIVE"
    assert files["foreign.pem"]["remote"] is None
    got = by_id(result)
    assert got[live["id"]]["found_in"] == [str(tmp_path / "live.pem")]
    assert got[other["id"]]["found_in"] == []


def test_thousand_files_in_one_run_is_fast(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    for index in range(1000):
        cert = make_cert("c%d" % index, index % 400, key=key)[1]
        (tmp_path / ("c%04d.pem" % index)).write_bytes(pem(cert))
    started = time.monotonic()
    result = run_module(mc_credential_info, dict(paths=[str(tmp_path)]))
    elapsed = time.monotonic() - started
    assert len(result["local"]) == 1000
    assert elapsed < 5, elapsed  # typically well under a second


def test_lead_longer_than_a_short_lifetime_does_not_fail_the_report(tmp_path):
    (tmp_path / "short.pem").write_bytes(pem(make_cert("short", 20)[1]))  # lifetime about 50 days
    (tmp_path / "long.pem").write_bytes(pem(make_cert("long", 300)[1]))
    result = run_module(mc_credential_info, dict(paths=[str(tmp_path)], lead_time_days=90))
    due = dict((os.path.basename(e["path"]), e["should_rotate"]) for e in result["local"])
    assert due == {"short.pem": True, "long.pem": False}


def test_bad_lead_time_is_named():
    with pytest.raises(ModuleFail) as info:
        run_module(mc_credential_info, dict(paths=["/nonexistent"], lead_time_days=0))
    assert "lead_time_days" in info.value.result["msg"]
