"""mc_oauth_key end to end in-process against the emulator."""

from __future__ import annotations

import json
import os

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

from ansible_collections.mcdev.credentials.plugins.modules import mc_oauth_key
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import mc_helpers as h
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module

PASSWORD = "Oauth-Store-Secret-9"


def args_for(emulator, account, project, tmp_path, **extra):
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="orders", oauth_version="2.0",
                key_store=str(tmp_path / "ks"), key_type="ec", keystore_password=PASSWORD)
    args.update(extra)
    return args


def fail(args, **kw):
    with pytest.raises(ModuleFail) as info:
        run_module(mc_oauth_key, args, **kw)
    return info.value.result


def test_oauth2_generate_with_upgrade_and_exports(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    exports = [{"format": "pkcs12", "path": str(tmp_path / "k.p12")},
               {"format": "pkcs8_pem", "path": str(tmp_path / "k.pem"), "passphrase": "pem-pass-1"},
               {"format": "pkcs8_der", "path": str(tmp_path / "k.der")},
               {"format": "pkcs1_pem", "path": str(tmp_path / "k1.pem")}]
    args = args_for(emulator, account, project, tmp_path, upgrade_to_oauth2=True, export=exports)

    c0 = h.counters(emulator)
    predicted = run_module(mc_oauth_key, args, check_mode=True, diff=True)
    assert predicted["changed"] and predicted["oauth2_upgraded"] and predicted["action"] == "create"
    assert h.mutating_calls(c0, h.counters(emulator)) == 0

    done = run_module(mc_oauth_key, args, diff=True)
    assert done["changed"] and done["oauth2_upgraded"]
    assert done["kid"] and done["client_id"] and done["consumer_key"] is None  # EC keys have no OAuth 1.0a consumer key
    with open(tmp_path / "k.p12", "rb") as handle:
        bundle = pkcs12.load_pkcs12(handle.read(), PASSWORD.encode())
    assert h.crypto_fp(bundle.key) == done["credential"]["public_key_fingerprint"]
    with open(tmp_path / "k.pem", "rb") as handle:
        data = handle.read()
    assert b"ENCRYPTED PRIVATE KEY" in data
    assert h.crypto_fp(serialization.load_pem_private_key(data, b"pem-pass-1")) == done["credential"]["public_key_fingerprint"]
    with open(tmp_path / "k.der", "rb") as handle:
        assert h.crypto_fp(serialization.load_der_private_key(handle.read(), None)) == done["credential"]["public_key_fingerprint"]
    for name in ("k.p12", "k.pem", "k.der", "k1.pem"):
        assert os.stat(tmp_path / name).st_mode & 0o777 == 0o600

    c1 = h.counters(emulator)
    again = run_module(mc_oauth_key, args)
    c2 = h.counters(emulator)
    assert not again["changed"] and not again["oauth2_upgraded"]
    assert h.mutating_calls(c1, c2) == 0
    assert again["kid"] == done["kid"]
    assert not run_module(mc_oauth_key, args, check_mode=True)["changed"]
    text = json.dumps([predicted, done, again])
    assert PASSWORD not in text and "pem-pass-1" not in text and "PRIVATE KEY" not in text


def test_oauth1_generate_returns_consumer_key(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    args = args_for(emulator, account, project, tmp_path, oauth_version="1.0a", key_type="rsa", alias="signer")
    done = run_module(mc_oauth_key, args)
    assert done["consumer_key"] and "!" in done["consumer_key"]
    assert done["credential"]["oauth_version"] == "1.0a"
    assert not run_module(mc_oauth_key, args)["changed"]


def test_oauth1_with_ec_key_type_is_refused(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    result = fail(args_for(emulator, account, project, tmp_path, oauth_version="1.0a", key_type="ec"))
    assert result["msg"].startswith("key_type:")


def test_csr_methods(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    base = dict(h.connection(emulator, account), project_id=project["id"], oauth_version="1.0a")
    path = tmp_path / "k.csr"
    path.write_text(h.csr_pem(h.new_key(), "file-key"))
    assert run_module(mc_oauth_key, dict(base, alias="from-file", csr_path=str(path)))["changed"]
    assert not run_module(mc_oauth_key, dict(base, alias="from-file", csr_path=str(path)))["changed"]
    pasted = h.csr_pem(h.new_key(), "pasted-key")
    assert run_module(mc_oauth_key, dict(base, alias="pasted", csr_content=pasted))["method"] == "csr_content"
    assert not run_module(mc_oauth_key, dict(base, alias="pasted", csr_content=pasted))["changed"]


def test_ec_csr_for_oauth1_names_the_option(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    result = fail(dict(h.connection(emulator, account), project_id=project["id"], oauth_version="1.0a", alias="ec",
                       csr_content=h.csr_pem(h.new_key("ec"), "ec-key")))
    assert result["msg"].startswith("csr_content:") and "RSA" in result["msg"]


def test_oauth2_on_a_project_not_upgraded_says_how(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    result = fail(args_for(emulator, account, project, tmp_path))
    assert result["msg"].startswith("upgrade_to_oauth2:")
    assert not os.path.exists(tmp_path / "ks")


def test_fourth_oauth2_key_refused_with_the_active_ones_listed(emulator, tmp_path):
    account, project = h.setup_project(emulator, oauth2_enabled=True)
    for index in range(3):
        run_module(mc_oauth_key, args_for(emulator, account, project, tmp_path, alias="key%d" % index))
    before = h.counters(emulator)
    result = fail(args_for(emulator, account, project, tmp_path, alias="key3"))
    assert h.mutating_calls(before, h.counters(emulator)) == 0
    for index in range(3):
        assert "key%d" % index in result["msg"]
    assert "mc_revoke" in result["msg"] and result["option"] == "oauth_version"
    # check mode predicts the same refusal
    assert "mc_revoke" in fail(args_for(emulator, account, project, tmp_path, alias="key3"), check_mode=True)["msg"]


def test_faults_never_make_a_fourth_key_or_a_duplicate(emulator, tmp_path):
    account, project = h.setup_project(emulator, oauth2_enabled=True)
    for index in range(2):
        run_module(mc_oauth_key, args_for(emulator, account, project, tmp_path, alias="key%d" % index))
    emulator.admin("POST", "/faults", [{"route": "create_credential", "drop_response_rate": 1.0, "count": 1},
                                       {"route": "list_credentials", "status": 503, "count": 1}])
    try:
        done = run_module(mc_oauth_key, args_for(emulator, account, project, tmp_path, alias="key2"))
    finally:
        emulator.admin("DELETE", "/faults")
    assert done["changed"]
    active = [c for c in h.list_remote(emulator, account, project["id"]) if c.status == "ACTIVE"]
    assert sorted(c.alias for c in active) == ["key0", "key1", "key2"]
    assert not run_module(mc_oauth_key, args_for(emulator, account, project, tmp_path, alias="key2"))["changed"]


def test_oauth2_rotation_and_reuse_key_refusal(emulator, tmp_path):
    account, project = h.setup_project(emulator, oauth2_enabled=True)
    seeded = emulator.admin("POST", "/projects/%s/credentials" % project["id"], {
        "alias": "orders", "type": "SIGNING", "oauthVersion": "2.0", "expiryDate": h.days_from_now(5),
        "key_type": "EC"})
    os.makedirs(tmp_path / "ks" / project["id"] / "sandbox")
    key = serialization.load_pem_private_key(seeded["private_key_pem"].encode(), None)
    with open(tmp_path / "ks" / project["id"] / "sandbox" / "orders.key.pem", "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.BestAvailableEncryption(PASSWORD.encode())))
    refused = fail(args_for(emulator, account, project, tmp_path, renew_before="30", reuse_key=True))
    assert refused["msg"].startswith("reuse_key:")
    args = args_for(emulator, account, project, tmp_path, renew_before="30", new_alias="orders-v2")
    done = run_module(mc_oauth_key, args)
    assert done["action"] == "rotate" and done["credential"]["alias"] == "orders-v2"
    assert done["kid"] != seeded["kid"]
    assert [c["id"] for c in done["superseded"]] == [seeded["id"]]
    assert not run_module(mc_oauth_key, args)["changed"]


def test_oauth1_reuse_key_renewal_via_module(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    key = h.new_key()
    seeded = emulator.admin("POST", "/projects/%s/credentials" % project["id"], {
        "alias": "legacy", "type": "SIGNING", "oauthVersion": "1.0a", "expiryDate": h.days_from_now(2),
        "csr": h.csr_pem(key, "legacy")})
    csr = h.csr_pem(key, "legacy")
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="legacy", oauth_version="1.0a",
                csr_content=csr, renew_before="30", reuse_key=True)
    done = run_module(mc_oauth_key, args)
    assert done["action"] == "renew" and done["consumer_key"] == seeded["consumerKey"]
    assert done["credential"]["fingerprint"] != seeded["fingerprint"]
    again = run_module(mc_oauth_key, args)
    assert not again["changed"]


def test_upgrade_only_is_idempotent(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    args = dict(h.connection(emulator, account), project_id=project["id"], oauth_version="1.0a", alias="any",
                csr_content=h.csr_pem(h.new_key(), "any"), upgrade_to_oauth2=True)
    assert run_module(mc_oauth_key, args)["oauth2_upgraded"]
    second = run_module(mc_oauth_key, args)
    assert not second["changed"] and not second["oauth2_upgraded"]
