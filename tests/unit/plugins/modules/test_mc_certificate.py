"""mc_certificate end to end in-process against the emulator: each portal method, idempotency, faults, bad input."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.mcdev.credentials.plugins.modules import mc_certificate
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import mc_helpers as h
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module

PASSWORD = "Keystore-Secret-123"


@pytest.fixture
def mtls(emulator):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    return account, project


def args_for(emulator, account, project, tmp_path, **extra):
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="payments",
                key_store=str(tmp_path / "ks"), keystore_password=PASSWORD,
                keystore_dest=str(tmp_path / "payments.p12"), certificate_dest=str(tmp_path / "payments.crt"),
                chain_dest=str(tmp_path / "chain.pem"))
    args.update(extra)
    return args


def openssl(*argv):
    return subprocess.run(["openssl"] + list(argv), capture_output=True, text=True, check=False)


def test_generate_check_apply_idempotent_check(emulator, mtls, tmp_path):
    account, project = mtls
    args = args_for(emulator, account, project, tmp_path)
    c0 = h.counters(emulator)
    predicted = run_module(mc_certificate, args, check_mode=True, diff=True)
    assert predicted["changed"] and predicted["action"] == "create"
    assert h.mutating_calls(c0, h.counters(emulator)) == 0
    assert not os.path.exists(args["keystore_dest"]) and not os.path.exists(tmp_path / "ks")

    c1 = h.counters(emulator)
    applied = run_module(mc_certificate, args, diff=True)
    c2 = h.counters(emulator)
    assert applied["changed"] and applied["action"] == "create"
    assert h.mutating_calls(c1, c2) == 1
    assert applied["diff"]["before"] == {} and applied["diff"]["after"]["alias"] == "payments"
    cred = applied["credential"]
    assert cred["subject"].endswith("-Client-MTF-000000")

    # Files: modes, the PKCS#12 opens with its password, the cert verifies against the emulator CA.
    assert os.stat(args["keystore_dest"]).st_mode & 0o777 == 0o600
    assert os.stat(args["certificate_dest"]).st_mode & 0o777 == 0o644
    assert os.stat(applied["private_key_path"]).st_mode & 0o777 == 0o600
    with open(args["keystore_dest"], "rb") as handle:
        bundle = pkcs12.load_pkcs12(handle.read(), PASSWORD.encode())
    assert bundle.cert.friendly_name == b"payments"
    assert bundle.cert.certificate.fingerprint(bundle.cert.certificate.signature_hash_algorithm).hex()
    verify = openssl("verify", "-CAfile", emulator.info["ca_path"], args["certificate_dest"])
    assert verify.returncode == 0, verify.stderr
    p12 = openssl("pkcs12", "-in", args["keystore_dest"], "-passin", "pass:" + PASSWORD, "-nokeys")
    assert p12.returncode == 0, p12.stderr
    assert openssl("pkcs12", "-in", args["keystore_dest"], "-passin", "pass:wrong", "-nokeys").returncode != 0

    again = run_module(mc_certificate, args, diff=True)
    c3 = h.counters(emulator)
    assert not again["changed"] and again["action"] == "none"
    assert h.mutating_calls(c2, c3) == 0 and again["api_calls"] == 1
    assert again["diff"]["before"] == again["diff"]["after"]

    check_again = run_module(mc_certificate, args, check_mode=True)
    assert not check_again["changed"]

    # Nothing secret in what the module returns.
    text = json.dumps([predicted, applied, again])
    assert PASSWORD not in text and "PRIVATE KEY" not in text and account["signing_key_pem"][40:80] not in text


def test_csr_path_and_csr_content_methods(emulator, mtls, tmp_path):
    account, project = mtls
    key = h.new_key()
    csr_file = tmp_path / "svc.csr"
    csr_file.write_text(h.csr_pem(key, "csrfile-Client-MTF-000000"))
    base = dict(h.connection(emulator, account), project_id=project["id"], certificate_dest=str(tmp_path / "a.crt"))
    first = run_module(mc_certificate, dict(base, alias="from-file", csr_path=str(csr_file)))
    assert first["changed"] and first["method"] == "csr_path"
    assert first["credential"]["public_key_fingerprint"] == h.crypto_fp(key)
    assert not run_module(mc_certificate, dict(base, alias="from-file", csr_path=str(csr_file)))["changed"]

    pasted = h.csr_pem(h.new_key("ec"), "pasted-Client-MTF-000000")
    second = run_module(mc_certificate, dict(base, alias="pasted", csr_content=pasted,
                                             certificate_dest=str(tmp_path / "b.crt")))
    assert second["changed"] and second["method"] == "csr_content"
    assert not run_module(mc_certificate, dict(base, alias="pasted", csr_content=pasted,
                                               certificate_dest=str(tmp_path / "b.crt")))["changed"]


def test_certificate_upload_from_trusted_ca(emulator, mtls, tmp_path):
    account, project = mtls
    _key, pem = h.issue(emulator.info["external_ca_path"], emulator.info["external_ca_key_path"], "partner-upload")
    path = tmp_path / "partner.crt"
    path.write_text(pem)
    base = dict(h.connection(emulator, account), project_id=project["id"], alias="partner")
    done = run_module(mc_certificate, dict(base, certificate_path=str(path)))
    assert done["changed"] and done["method"] == "certificate_path"
    assert done["credential"]["fingerprint"] == x509.load_pem_x509_certificate(pem.encode()).fingerprint(
        x509.load_pem_x509_certificate(pem.encode()).signature_hash_algorithm).hex()
    assert not run_module(mc_certificate, dict(base, certificate_content=pem))["changed"]


def test_production_generate(emulator, mtls, tmp_path):
    account, project = mtls
    args = args_for(emulator, account, project, tmp_path, environment="production", alias="prod-client")
    done = run_module(mc_certificate, args)
    assert done["credential"]["environment"] == "production"
    assert "Client-MTF" not in done["credential"]["subject"]
    assert "/production/" in done["private_key_path"]
    assert not run_module(mc_certificate, args)["changed"]


@pytest.mark.parametrize("fault", [
    {"route": "create_credential", "drop_response_rate": 1.0, "count": 1},
    {"route": "create_credential", "status": 503, "count": 1},
    {"route": "create_credential", "status": 429, "retry_after": 0, "count": 2},
    {"route": "list_credentials", "status": 500, "count": 2},
])
def test_faults_converge_without_duplicates(emulator, mtls, tmp_path, fault):
    account, project = mtls
    emulator.admin("POST", "/faults", fault)
    try:
        done = run_module(mc_certificate, args_for(emulator, account, project, tmp_path))
    finally:
        emulator.admin("DELETE", "/faults")
    assert done["changed"]
    listing = h.list_remote(emulator, account, project["id"])
    assert len([c for c in listing if c.alias == "payments"]) == 1
    assert not run_module(mc_certificate, args_for(emulator, account, project, tmp_path))["changed"]


def fail(args, **kw):
    with pytest.raises(ModuleFail) as info:
        run_module(mc_certificate, args, **kw)
    return info.value.result


def test_unknown_project_names_project_id(emulator, mtls, tmp_path):
    account, _project = mtls
    result = fail(args_for(emulator, account, {"id": "no-such-project"}, tmp_path))
    assert result["msg"].startswith("project_id:") and result["reason_code"] == "PROJECT_NOT_FOUND"
    assert result["status"] == 404


def test_wrong_environment_names_environment(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS", environments=["SANDBOX"])
    result = fail(args_for(emulator, account, project, tmp_path, environment="production"))
    assert result["msg"].startswith("environment:") and "no production environment" in result["msg"]
    assert not os.path.exists(tmp_path / "ks")


def test_oauth_project_is_refused_naming_project_id(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="OAUTH10A")
    result = fail(args_for(emulator, account, project, tmp_path))
    assert result["msg"].startswith("project_id:") and "mc_oauth_key" in result["msg"]


def test_alias_clash_with_other_csr(emulator, mtls, tmp_path):
    account, project = mtls
    base = dict(h.connection(emulator, account), project_id=project["id"], alias="taken")
    run_module(mc_certificate, dict(base, csr_content=h.csr_pem(h.new_key(), "one-Client-MTF-000000")))
    result = fail(dict(base, csr_content=h.csr_pem(h.new_key(), "two-Client-MTF-000000")))
    assert result["msg"].startswith("alias:") and result["option"] == "alias"


def test_foreign_certificate_is_refused_naming_the_option(emulator, mtls, tmp_path):
    account, project = mtls
    ca_cert, ca_key = h.foreign_ca()
    _key, pem = h.issue_by(ca_cert, ca_key, "foreign-client")
    result = fail(dict(h.connection(emulator, account), project_id=project["id"], alias="foreign", certificate_content=pem))
    assert result["msg"].startswith("certificate_content:") and result["reason_code"] == "UNTRUSTED_CERTIFICATE"


def test_expired_certificate_is_refused_before_any_call(emulator, mtls, tmp_path):
    account, project = mtls
    _key, pem = h.issue(emulator.info["external_ca_path"], emulator.info["external_ca_key_path"], "old", days=-2,
                        start_days=-40)
    before = h.counters(emulator)
    result = fail(dict(h.connection(emulator, account), project_id=project["id"], alias="old", certificate_content=pem))
    assert result["msg"].startswith("certificate_content:") and "expired" in result["msg"]
    assert h.counters(emulator) == before


def test_renewal_with_an_unchanged_dn_is_refused(emulator, mtls, tmp_path):
    account, project = mtls
    key = h.new_key()
    seeded = emulator.admin("POST", "/projects/%s/credentials" % project["id"], {
        "alias": "svc", "type": "MTLS", "csr": h.csr_pem(key, "svc-Client-MTF-000000"),
        "expiryDate": h.days_from_now(10)})
    same_dn_new_key = h.csr_pem(h.new_key(), "svc-Client-MTF-000000")
    before = h.counters(emulator)
    result = fail(dict(h.connection(emulator, account), project_id=project["id"], alias="svc",
                       csr_content=same_dn_new_key, renew_before="30"))
    assert result["msg"].startswith("csr_content:") and "unchanged DN" in result["msg"]
    assert seeded["id"] in result["msg"]
    assert h.mutating_calls(before, h.counters(emulator)) == 0


def test_renewal_from_a_new_csr_rotates(emulator, mtls, tmp_path):
    account, project = mtls
    emulator.admin("POST", "/projects/%s/credentials" % project["id"], {
        "alias": "svc", "type": "MTLS", "csr": h.csr_pem(h.new_key(), "svc-Client-MTF-000000"),
        "expiryDate": h.days_from_now(10)})
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="svc", renew_before="30",
                csr_content=h.csr_pem(h.new_key(), "svc2-Client-MTF-000000"))
    done = run_module(mc_certificate, args)
    assert done["action"] == "rotate" and done["credential"]["alias"].startswith("svc-")
    assert [c["alias"] for c in done["superseded"]] == ["svc"]
    assert not run_module(mc_certificate, args)["changed"]


def test_wrong_keystore_password_names_the_option_and_keeps_the_file(emulator, mtls, tmp_path):
    account, project = mtls
    args = args_for(emulator, account, project, tmp_path)
    done = run_module(mc_certificate, args)
    with open(done["private_key_path"], "rb") as handle:
        stored = handle.read()
    result = fail(dict(args, keystore_password="not-the-password"))
    assert result["msg"].startswith("keystore_password:")
    assert "not-the-password" not in json.dumps(result)
    with open(done["private_key_path"], "rb") as handle:
        assert handle.read() == stored


def test_unreadable_key_store_file_names_key_store(emulator, mtls, tmp_path):
    account, project = mtls
    args = args_for(emulator, account, project, tmp_path)
    done = run_module(mc_certificate, args)
    with open(done["private_key_path"], "wb") as handle:
        handle.write(b"garbage")
    result = fail(args)
    assert result["msg"].startswith("key_store:")


def test_renewal_csr_with_the_same_key_needs_reuse_key(emulator, mtls, tmp_path):
    account, project = mtls
    key = h.new_key()
    seeded = emulator.admin("POST", "/projects/%s/credentials" % project["id"], {
        "alias": "kmp", "type": "MTLS", "csr": h.csr_pem(key, "kmp-1700000000-Client-MTF-000000"),
        "expiryDate": h.days_from_now(10)})
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="kmp", renew_before="30",
                csr_content=h.csr_pem(key, "kmp-1700000001-Client-MTF-000000"))
    refused = fail(args)
    assert refused["msg"].startswith("reuse_key:") and seeded["id"] in refused["msg"]
    done = run_module(mc_certificate, dict(args, reuse_key=True))
    assert done["action"] == "rotate"
    assert done["credential"]["public_key_fingerprint"] == seeded["publicKeyFingerprint"]
    assert done["credential"]["subject"] != seeded["subjectDn"]
