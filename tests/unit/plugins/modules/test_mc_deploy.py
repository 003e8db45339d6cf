"""mc_deploy: the module on the host and the action plugin's bundle built on the controller."""

import base64
import json
import os

import pytest
from ansible.errors import AnsibleActionFail
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.mcdev.credentials.plugins.action.mc_deploy import build_bundle
from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.modules import mc_deploy
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import (
    ModuleFail,
    assert_no_secrets,
    run_module,
    self_signed_certificate,
)

PASSWORD = "keystore-secret-1"


@pytest.fixture(scope="module")
def material(tmp_path_factory):
    work = tmp_path_factory.mktemp("material")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = self_signed_certificate(key, "app-1780000000")
    key_path = work / "new.key.pem"
    key_path.write_bytes(crypto.dump_private_key(key, "pkcs8_pem"))
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {"key": key, "cert": cert, "key_path": str(key_path),
            "cert_pem": crypto.dump_certificates([cert]).decode(), "other_cert": crypto.dump_certificates(
                [self_signed_certificate(other, "other")]).decode(),
            "fingerprint": crypto.certificate_fingerprint(cert)}


def test_bundle_is_a_password_protected_pkcs12_of_key_and_certificate(material):
    files = build_bundle({"private_key_src": material["key_path"], "certificate": material["cert_pem"],
                          "keystore_password": PASSWORD, "key_formats": ["p12", "pem"], "name": "app"})
    assert sorted(files) == ["cert.pem", "key.p12", "key.pem"]
    key, cert, _chain = pkcs12.load_key_and_certificates(files["key.p12"], PASSWORD.encode())
    assert crypto.certificate_fingerprint(cert) == material["fingerprint"]
    assert crypto.public_key_fingerprint(key) == crypto.public_key_fingerprint(material["key"])
    with pytest.raises(ValueError):
        pkcs12.load_key_and_certificates(files["key.p12"], b"wrong")


@pytest.mark.parametrize("change,words", [
    ({"certificate": "other"}, "does not belong to the private key"),
    ({"keystore_password": None}, "keystore_password is required"),
    ({"private_key_src": "/nonexistent/key.pem"}, "cannot read /nonexistent/key.pem"),
])
def test_bundle_refusals_name_the_option(material, change, words):
    args = {"private_key_src": material["key_path"], "certificate": material["cert_pem"],
            "keystore_password": PASSWORD, "key_formats": ["p12"]}
    args.update(change)
    if args.get("certificate") == "other":
        args["certificate"] = material["other_cert"]
    with pytest.raises(AnsibleActionFail, match=words):
        build_bundle(args)


def _present(tmp_path, material, cid="c2", **extra):
    files = build_bundle({"private_key_src": material["key_path"], "certificate": material["cert_pem"],
                          "keystore_password": PASSWORD, "key_formats": ["p12"]})
    args = {"path": str(tmp_path / "base"), "name": "app", "credential_id": cid,
            "credential": {"id": cid, "alias": "app-1", "fingerprint": material["fingerprint"],
                           "expires": "2027-07-01T00:00:00Z", "consumer_key": "ck", "certificate_pem": "x"},
            "_bundle": dict((k, base64.b64encode(v).decode()) for k, v in files.items()),
            "keystore_password": PASSWORD}
    args.update(extra)
    return run_module(mc_deploy, args)


def test_present_then_idempotent_then_verified_then_rollback(tmp_path, material):
    first = _present(tmp_path, material, cid="c1")
    assert first["changed"] and first["current"] == "c1" and first["previous"] is None
    second = _present(tmp_path, material, cid="c2")
    assert second["changed"] and second["previous"] == "c1" and second["flipped"]
    assert second["host_facts"]["current_id"] == "c2" and second["host_facts"]["verified_at"] is None
    assert second["meta"]["fingerprint"] == material["fingerprint"] and second["meta"]["consumer_key"] == "ck"
    assert "certificate_pem" not in second["meta"]
    assert_no_secrets(second, PASSWORD)
    again = _present(tmp_path, material, cid="c2")
    assert not again["changed"]

    stamped = run_module(mc_deploy, {"path": str(tmp_path / "base"), "name": "app", "state": "verified",
                                     "credential_id": "c2", "verified_fingerprint": material["fingerprint"]})
    assert stamped["changed"] and stamped["host_facts"]["verified_fingerprint"] == material["fingerprint"]
    meta = json.load(open(tmp_path / "base" / "app" / "versions" / "c2" / "meta.json"))
    assert meta["verified_at"] and meta["previous"] == "c1"

    back = run_module(mc_deploy, {"path": str(tmp_path / "base"), "name": "app", "state": "rollback",
                                  "rollback_from": "c2"})
    assert back["changed"] and back["current"] == "c1"
    assert os.readlink(tmp_path / "base" / "app" / "current") == "versions/c1"
    info = run_module(mc_deploy, {"path": str(tmp_path / "base"), "name": "app", "state": "query"})
    assert info["current"] == "c1" and not info["changed"] and info["versions"] == ["c1", "c2"]


def test_check_mode_predicts_without_writing(tmp_path, material):
    args_result = None
    files = build_bundle({"private_key_src": material["key_path"], "certificate": material["cert_pem"],
                          "keystore_password": PASSWORD})
    args_result = run_module(mc_deploy, {
        "path": str(tmp_path / "base"), "name": "app", "credential_id": "c1",
        "_bundle": dict((k, base64.b64encode(v).decode()) for k, v in files.items())}, check_mode=True)
    assert args_result["changed"] and args_result["flipped"]
    assert not (tmp_path / "base").exists()


def test_symlinked_credential_folder_fails_with_a_clear_message(tmp_path, material):
    (tmp_path / "base").mkdir()
    (tmp_path / "elsewhere").mkdir()
    os.symlink(str(tmp_path / "elsewhere"), str(tmp_path / "base" / "app"))
    with pytest.raises(ModuleFail) as failed:
        _present(tmp_path, material)
    assert "symlink" in failed.value.result["msg"] and str(tmp_path / "base" / "app") in failed.value.result["msg"]
    assert os.listdir(tmp_path / "elsewhere") == []


def test_redeploy_by_id_of_a_version_the_host_lacks_fails(tmp_path, material):
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_deploy, {"path": str(tmp_path / "base"), "name": "app", "credential_id": "c9"})
    assert "not (completely) deployed" in failed.value.result["msg"] or "not deployed" in failed.value.result["msg"]


def test_keep_must_cover_current_and_previous(tmp_path, material):
    with pytest.raises(ModuleFail, match="keep must be at least 2"):
        _present(tmp_path, material, keep=1)
