"""credential.py: the decisions (window math, alias families, fourth-key refusal, adoption) and, where the API is
involved, the manager against the running emulator (real HTTPS, no HTTP mocks)."""

from __future__ import annotations

import datetime
import os

import pytest

from ansible_collections.mcdev.credentials.plugins.module_utils import credential, crypto, devapi
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import mc_helpers as h

UTC = datetime.timezone.utc
NOW = datetime.datetime(2026, 1, 1, tzinfo=UTC)


def cred(alias, expires_days=300, status="ACTIVE", kind="mtls", created_days=-30, env="SANDBOX", cid=None, **extra):
    return devapi.Credential(
        id=cid or "id-%s" % alias, alias=alias, kind=kind, status=status, environment=env,
        type="MTLS" if kind == "mtls" else "SIGNING", oauth_version={"oauth1": "1.0a", "oauth2": "2.0"}.get(kind),
        created=NOW + datetime.timedelta(days=created_days), expires=NOW + datetime.timedelta(days=expires_days),
        **extra)


# ------------------------------------------------------------------ renewal window

@pytest.mark.parametrize("value, days, fraction", [
    ("30", 30, None), (30, 30, None), ("30d", 30, None), ("0", 0, None), ("0.33", None, 0.33), ("0.5", None, 0.5),
    ("1.5", 1.5, None),
])
def test_renew_before_parses_days_and_fractions(value, days, fraction):
    window = credential.RenewWindow(value)
    assert window.days == days
    assert window.fraction == fraction


@pytest.mark.parametrize("value", ["soon", "-1", "nan", "inf", ""])
def test_renew_before_refuses_nonsense_naming_the_option(value):
    with pytest.raises(credential.CredentialInputError) as info:
        credential.RenewWindow(value)
    assert str(info.value).startswith("renew_before:")


def test_window_in_days_opens_exactly_n_days_before_expiry():
    expires = NOW + datetime.timedelta(days=100)
    window = credential.RenewWindow("30")
    assert window.starts(NOW, expires) == NOW + datetime.timedelta(days=70)
    assert not window.due(NOW, expires, NOW + datetime.timedelta(days=69, hours=23))
    assert window.due(NOW, expires, NOW + datetime.timedelta(days=70))


def test_window_as_fraction_uses_the_lifetime():
    not_before = NOW
    expires = NOW + datetime.timedelta(days=395)
    window = credential.RenewWindow("0.33")
    opens = window.starts(not_before, expires)
    assert opens == expires - datetime.timedelta(days=395) * 0.33  # ~130 days before expiry
    assert (expires - opens).days == 130
    assert not window.due(not_before, expires, NOW + datetime.timedelta(days=264))
    assert window.due(not_before, expires, NOW + datetime.timedelta(days=265))


# ------------------------------------------------------------------ alias families

def test_family_holds_alias_rotation_aliases_and_new_alias_but_not_lookalikes():
    creds = [
        cred("svc", expires_days=10), cred("svc-1767225600", expires_days=390), cred("svc-v2", expires_days=200),
        cred("svc-other", expires_days=300), cred("svcx-1767225600"), cred("svc-1767225601", status="REVOKED"),
    ]
    family = credential.family_of(creds, "svc")
    assert [c.alias for c in family] == ["svc", "svc-1767225600"]
    family = credential.family_of(creds, "svc", new_alias="svc-v2")
    assert [c.alias for c in family] == ["svc", "svc-v2", "svc-1767225600"]  # oldest first, by expiry


def test_rotation_alias_is_alias_dash_epoch():
    assert credential.rotation_alias("svc", NOW) == "svc-%d" % int(NOW.timestamp())
    assert credential.in_family(credential.rotation_alias("svc", NOW), "svc")


def test_fourth_key_message_lists_active_keys_and_how_to_revoke():
    keys = [cred("k%d" % i, kind="oauth2", kid="kid%d" % i) for i in range(3)]
    keys.append(cred("gone", kind="oauth2", status="REVOKED", kid="kidx"))
    keys.append(cred("one", kind="oauth1", kid="kid1a"))
    active = credential.active_oauth2_keys(keys)
    assert [k.alias for k in active] == ["k0", "k1", "k2"]
    message = credential.oauth2_limit_message(active, "p1")
    for i in range(3):
        assert "k%d (id id-k%d, kid kid%d" % (i, i, i) in message
    assert "mcdev.credentials.mc_revoke" in message and "credential_id: id-k0" in message
    assert credential.oauth2_limit_message(active[:2], "p1") is None


# ------------------------------------------------------------------ request validation

def base_params(tmp_path, **extra):
    params = {"project_id": "p1", "environment": "sandbox", "alias": "svc", "key_store": str(tmp_path / "ks")}
    params.update(extra)
    return params


@pytest.mark.parametrize("alias", ["has space", "../escape", "x" * 65, "-lead"])
def test_bad_alias_is_refused(tmp_path, alias):
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("mtls", base_params(tmp_path, alias=alias))
    assert info.value.option == "alias"


def test_generate_needs_key_store(tmp_path):
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("mtls", base_params(tmp_path, key_store=None))
    assert info.value.option == "key_store"


def test_ec_csr_for_oauth1_is_refused_naming_the_option(tmp_path):
    pem = h.csr_pem(h.new_key("ec"), "ec-key")
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("oauth1", base_params(tmp_path, key_store=None, csr_content=pem))
    assert info.value.option == "csr_content"
    assert "RSA" in str(info.value)


def test_sandbox_mtls_csr_needs_the_sandbox_cn(tmp_path):
    path = tmp_path / "bad.csr"
    path.write_text(h.csr_pem(h.new_key(), "plain-name"))
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("mtls", base_params(tmp_path, key_store=None, csr_path=str(path)))
    assert info.value.option == "csr_path" and "Client-MTF" in str(info.value)


def test_missing_csr_file_names_the_option(tmp_path):
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("mtls", base_params(tmp_path, key_store=None, csr_path=str(tmp_path / "nope.csr")))
    assert "csr_path" in str(info.value)


def test_expired_certificate_upload_is_refused_before_any_call(tmp_path):
    ca_cert, ca_key = h.foreign_ca()
    _key, pem = h.issue_by(ca_cert, ca_key, "old-Client-MTF-000000", days=-1, start_days=-30)
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("mtls", base_params(tmp_path, key_store=None, certificate_content=pem))
    assert info.value.option == "certificate_content" and "expired" in str(info.value)


def test_exports_need_the_generate_method(tmp_path):
    pem = h.csr_pem(h.new_key(), "x-Client-MTF-000000")
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("mtls", base_params(tmp_path, key_store=None, csr_content=pem,
                                                         keystore_dest=str(tmp_path / "k.p12"), keystore_password="pw"))
    assert info.value.option == "keystore_dest"


def test_export_into_missing_directory_is_refused(tmp_path):
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("oauth2", base_params(tmp_path, export=[
            {"format": "pkcs8_pem", "path": str(tmp_path / "missing" / "k.pem")}]))
    assert info.value.option == "export[0]"


def test_pkcs12_export_needs_a_passphrase(tmp_path):
    with pytest.raises(credential.CredentialInputError) as info:
        credential.CredentialRequest("oauth2", base_params(tmp_path, export=[
            {"format": "pkcs12", "path": str(tmp_path / "k.p12")}]))
    assert "passphrase" in str(info.value)


# ------------------------------------------------------------------ key store

def test_key_store_refuses_a_wrong_password_and_never_replaces_the_file(tmp_path):
    store = credential.KeyStore(str(tmp_path), "p1", "sandbox", passphrase="right-password")
    key = h.new_key()
    path = store.save("svc", key)
    assert os.stat(path).st_mode & 0o777 == 0o600
    assert os.stat(os.path.dirname(path)).st_mode & 0o777 == 0o700
    before = open(path, "rb").read()
    assert b"ENCRYPTED" in before
    wrong = credential.KeyStore(str(tmp_path), "p1", "sandbox", passphrase="wrong-password")
    with pytest.raises(credential.CredentialInputError) as info:
        wrong.load("svc")
    assert info.value.option == "keystore_password"
    assert "wrong-password" not in str(info.value) and "right-password" not in str(info.value)
    assert open(path, "rb").read() == before
    assert crypto.same_key(store.load("svc"), key)


def test_key_store_refuses_a_corrupt_file(tmp_path):
    store = credential.KeyStore(str(tmp_path), "p1", "sandbox")
    os.makedirs(store.directory)
    with open(store.path("svc"), "wb") as handle:
        handle.write(b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n")
    with pytest.raises(credential.CredentialInputError) as info:
        store.load("svc")
    assert info.value.option == "key_store"


def test_pending_aliases_are_the_family_members_with_a_stored_key(tmp_path):
    store = credential.KeyStore(str(tmp_path), "p1", "sandbox")
    for alias in ("svc", "svc-1767225600", "svc-other", "other"):
        store.save(alias, h.new_key("ec"))
    assert store.pending_aliases("svc") == ["svc-1767225600", "svc"]


# ------------------------------------------------------------------ against the emulator

def manager_for(emulator, account, kind, params, check_mode=False, now=None):
    conn = h.connection(emulator, account)
    client = devapi.client_from_params(conn)
    request = credential.CredentialRequest(kind, params)
    return credential.CredentialManager(client, request, check_mode=check_mode, now=now)


def mtls_params(project, tmp_path, **extra):
    params = {"project_id": project["id"], "environment": "sandbox", "alias": "svc", "key_store": str(tmp_path / "ks"),
              "keystore_password": "store-pass"}
    params.update(extra)
    return params


def test_create_then_rerun_is_one_list_call(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    first = manager_for(emulator, account, "mtls", mtls_params(project, tmp_path))
    first.run()
    assert first.outcome.action == "create"
    assert first.client.calls_by_op == {"list_credentials": 1, "get_project": 1, "create_credential": 1}
    stored = first.key_store.load("svc")
    assert crypto.public_key_fingerprint(stored) == first.outcome.credential.public_key_fingerprint

    again = manager_for(emulator, account, "mtls", mtls_params(project, tmp_path))
    again.run()
    assert again.outcome.action == "none" and not again.outcome.changed
    assert again.client.calls_by_op == {"list_credentials": 1}
    assert again.outcome.credential.id == first.outcome.credential.id


def test_crash_after_key_stored_before_create_resumes_with_the_same_key(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    store = credential.KeyStore(str(tmp_path / "ks"), project["id"], "sandbox", "store-pass")
    key = h.new_key()
    store.save("svc", key)  # what a run that died right after writing the key leaves behind
    run = manager_for(emulator, account, "mtls", mtls_params(project, tmp_path))
    run.run()
    assert run.outcome.action == "create"
    assert run.outcome.credential.public_key_fingerprint == crypto.public_key_fingerprint(key)


def test_crash_after_create_adopts_the_remote_credential_without_a_duplicate(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    store = credential.KeyStore(str(tmp_path / "ks"), project["id"], "sandbox", "store-pass")
    key = h.new_key()
    store.save("svc", key)
    # The create went through but the module never saw the answer.
    client = devapi.client_from_params(h.connection(emulator, account))
    created = client.create_credential(project["id"], "mtls", "sandbox", "svc",
                                       csr_pem=h.csr_pem(key, "svc-1-Client-MTF-000000"))
    before = h.counters(emulator)
    run = manager_for(emulator, account, "mtls", mtls_params(project, tmp_path, certificate_dest=str(tmp_path / "c.pem")))
    run.run()
    after = h.counters(emulator)
    assert h.mutating_calls(before, after) == 0
    assert run.outcome.credential.id == created.id
    assert run.outcome.changed  # the certificate file was written
    remote = [c for c in client.list_credentials(project["id"]) if c.alias == "svc"]
    assert len(remote) == 1


def test_alias_with_a_foreign_key_is_a_clash(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    seeded = emulator.admin("POST", "/projects/%s/credentials" % project["id"], {"alias": "svc", "type": "MTLS"})
    store = credential.KeyStore(str(tmp_path / "ks"), project["id"], "sandbox", "store-pass")
    store.save("svc", h.new_key())
    run = manager_for(emulator, account, "mtls", mtls_params(project, tmp_path))
    with pytest.raises(credential.CredentialInputError) as info:
        run.run()
    assert info.value.option == "alias" and seeded["id"] in str(info.value)


def seed_with_stored_key(emulator, project, tmp_path, alias, expires_days, kind="mtls", passphrase="store-pass", **body):
    """Seed a credential at the emulator whose private key is in the test's key store."""
    now = datetime.datetime.now(UTC)
    body.setdefault("type", "MTLS" if kind == "mtls" else "SIGNING")
    if kind != "mtls":
        body.setdefault("oauthVersion", "2.0" if kind == "oauth2" else "1.0a")
    body.update({"alias": alias, "notBefore": (now - datetime.timedelta(days=395 - expires_days)).isoformat(),
                 "expiryDate": (now + datetime.timedelta(days=expires_days)).isoformat()})
    if kind == "mtls":
        body.setdefault("common_name", "%s-1700000000-Client-MTF-000000" % alias)
    seeded = emulator.admin("POST", "/projects/%s/credentials" % project["id"], body)
    store = credential.KeyStore(str(tmp_path / "ks"), project["id"], "sandbox", passphrase)
    store.save(alias, crypto.load_private_key(seeded["private_key_pem"].encode("ascii")))
    return seeded


def test_due_certificate_is_rotated_next_to_the_old_one_with_a_new_dn_and_new_key(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    old = seed_with_stored_key(emulator, project, tmp_path, "svc", expires_days=20)
    params = mtls_params(project, tmp_path, renew_before="30")
    run = manager_for(emulator, account, "mtls", params)
    run.run()
    new = run.outcome.credential
    assert run.outcome.action == "rotate"
    assert credential.in_family(new.alias, "svc") and new.alias != "svc"
    assert new.subject != old["subjectDn"]
    assert new.public_key_fingerprint != old["publicKeyFingerprint"]
    assert [c.id for c in run.outcome.superseded] == [old["id"]]
    assert run.outcome.before.id == old["id"]

    again = manager_for(emulator, account, "mtls", params)
    again.run()
    assert again.outcome.action == "none" and again.client.calls_by_op == {"list_credentials": 1}
    assert again.outcome.credential.id == new.id
    assert [c.id for c in again.outcome.superseded] == [old["id"]]


def test_fraction_window_not_yet_open_changes_nothing(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    seed_with_stored_key(emulator, project, tmp_path, "svc", expires_days=200)  # 200 of 395 days left > 0.33
    run = manager_for(emulator, account, "mtls", mtls_params(project, tmp_path, renew_before="0.33"))
    run.run()
    assert run.outcome.action == "none" and not run.outcome.renewal_due


def test_key_reuse_renewal_keeps_the_key_changes_the_dn_and_warns(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    old = seed_with_stored_key(emulator, project, tmp_path, "svc", expires_days=5)
    params = mtls_params(project, tmp_path, renew_before="30", reuse_key=True, new_alias="svc-next")
    run = manager_for(emulator, account, "mtls", params)
    run.run()
    new = run.outcome.credential
    assert new.alias == "svc-next"
    assert new.public_key_fingerprint == old["publicKeyFingerprint"]
    assert new.subject != old["subjectDn"]
    assert any("less secure" in w for w in run.outcome.warnings)


def test_fourth_oauth2_key_is_refused_before_anything_is_written_or_sent(emulator, tmp_path):
    account, project = h.setup_project(emulator, oauth2_enabled=True)
    for index in range(3):
        emulator.admin("POST", "/projects/%s/credentials" % project["id"],
                       {"alias": "k%d" % index, "type": "SIGNING", "oauthVersion": "2.0"})
    before = h.counters(emulator)
    run = manager_for(emulator, account, "oauth2", {"project_id": project["id"], "alias": "k4",
                                                    "key_store": str(tmp_path / "ks"), "key_type": "ec"})
    with pytest.raises(credential.CredentialInputError) as info:
        run.run()
    after = h.counters(emulator)
    assert h.mutating_calls(before, after) == 0
    assert info.value.option == "oauth_version"
    for index in range(3):
        assert "k%d" % index in str(info.value)
    assert "mc_revoke" in str(info.value)
    assert not os.path.exists(tmp_path / "ks")


def test_oauth1_key_reuse_renewal_uses_the_api_renewal(emulator, tmp_path):
    account, project = h.setup_project(emulator)
    old = seed_with_stored_key(emulator, project, tmp_path, "signer", expires_days=3, kind="oauth1")
    run = manager_for(emulator, account, "oauth1", {"project_id": project["id"], "alias": "signer",
                                                    "key_store": str(tmp_path / "ks"), "keystore_password": "store-pass",
                                                    "renew_before": "30", "reuse_key": True})
    run.run()
    assert run.outcome.action == "renew"
    assert run.client.calls_by_op.get("renew_credential") == 1
    renewed = run.outcome.credential
    assert renewed.id == old["id"] and renewed.consumer_key == old["consumerKey"]
    assert renewed.fingerprint != old["fingerprint"]
    assert renewed.expires > datetime.datetime.now(UTC) + datetime.timedelta(days=300)
    assert any("less secure" in w for w in run.outcome.warnings)


def test_check_mode_predicts_without_writing_or_mutating(emulator, tmp_path):
    account, project = h.setup_project(emulator, auth_model="MTLS")
    before = h.counters(emulator)
    run = manager_for(emulator, account, "mtls", mtls_params(project, tmp_path, certificate_dest=str(tmp_path / "c.pem")),
                      check_mode=True)
    run.run()
    assert run.outcome.changed and run.outcome.action == "create"
    assert h.mutating_calls(before, h.counters(emulator)) == 0
    assert not os.path.exists(tmp_path / "ks") and not os.path.exists(tmp_path / "c.pem")
