"""mc_keystore run in-process against real keys, certificates and keystores."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.modules import mc_keystore
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import (
    ModuleFail,
    assert_no_secrets,
    run_module,
    self_signed_certificate,
)

PW = "keystorepassword"


@pytest.fixture(scope="module")
def key():
    return crypto.generate_private_key("rsa", 2048)


@pytest.fixture(scope="module")
def cert(key):
    return self_signed_certificate(key)


@pytest.fixture
def files(tmp_path, key, cert):
    """A portal-style PKCS#12 and the same key as plain PKCS#8 PEM, plus the certificate."""
    p12 = tmp_path / "key.p12"
    p12.write_bytes(crypto.dump_pkcs12(key, cert, None, PW, "keyalias"))
    pem = tmp_path / "key.pem"
    pem.write_bytes(crypto.dump_private_key(key, "pkcs8_pem"))
    cert_path = tmp_path / "cert.pem"
    cert_path.write_bytes(crypto.dump_certificates([cert]))
    return {"p12": str(p12), "pem": str(pem), "cert": str(cert_path), "dir": tmp_path}


def fail(module_args, **kwargs):
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_keystore, module_args, **kwargs)
    return failed.value.result


def read(path):
    return open(path, "rb").read()


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.parametrize("fmt, passphrase, marker", [
    ("pkcs1_pem", None, b"-----BEGIN RSA PRIVATE KEY-----"),
    ("pkcs8_pem", None, b"-----BEGIN PRIVATE KEY-----"),
    ("pkcs8_pem", "new pass", b"-----BEGIN ENCRYPTED PRIVATE KEY-----"),
    ("pkcs8_der", None, b"\x30"),
])
def test_export_from_pkcs12_is_idempotent(files, key, fmt, passphrase, marker):
    dest = str(files["dir"] / "out")
    task = dict(src_path=files["p12"], src_passphrase=PW, dest_path=dest, format=fmt, passphrase=passphrase)
    first = run_module(mc_keystore, task)
    assert first["changed"] is True and read(dest).startswith(marker) and mode_of(dest) == 0o600
    box = crypto.read_key_container(read(dest), passphrase)
    assert box.format == fmt and crypto.same_key(box.key, key)
    assert first["keystore"]["public_key_fingerprint"] == crypto.public_key_fingerprint(key)
    assert_no_secrets(first, PW, passphrase)
    before = read(dest)
    assert run_module(mc_keystore, task)["changed"] is False
    assert run_module(mc_keystore, task, check_mode=True)["changed"] is False
    assert read(dest) == before


@pytest.mark.parametrize("encryption", ["modern", "legacy"])
def test_pem_and_certificate_to_pkcs12(files, key, cert, encryption):
    dest = str(files["dir"] / "out.p12")
    task = dict(src_path=files["pem"], certificate_path=files["cert"], dest_path=dest, format="pkcs12",
                passphrase=PW, pkcs12_encryption=encryption, friendly_name="keyalias")
    result = run_module(mc_keystore, task)
    assert result["changed"] is True and result["keystore"]["pkcs12_encryption"] == encryption
    assert result["certificate"]["fingerprint"] == crypto.certificate_fingerprint(cert)
    loaded_key, loaded_cert, _chain, name = crypto.load_pkcs12(read(dest), PW)
    assert crypto.same_key(loaded_key, key) and loaded_cert == cert and name == "keyalias"
    assert crypto.pkcs12_encryption(read(dest)) == encryption
    assert run_module(mc_keystore, task)["changed"] is False
    other = "legacy" if encryption == "modern" else "modern"
    switched = run_module(mc_keystore, dict(task, pkcs12_encryption=other), diff=True)
    assert switched["changed"] is True
    assert switched["diff"]["before"]["pkcs12_encryption"] == encryption
    assert switched["diff"]["after"]["pkcs12_encryption"] == other
    assert_no_secrets(switched, PW)


def test_change_passphrase_in_place(files, key):
    task = dict(src_path=files["p12"], src_passphrase=PW, dest_path=files["p12"], format="pkcs12",
                passphrase="a new passphrase", backup=True)
    first = run_module(mc_keystore, task)
    assert first["changed"] is True
    assert crypto.load_pkcs12(read(first["backup_file"]), PW)[3] == "keyalias"  # the copy opens with the old one
    with pytest.raises(crypto.CryptoError):
        crypto.load_pkcs12(read(files["p12"]), PW)
    loaded = crypto.load_pkcs12(read(files["p12"]), "a new passphrase")
    assert crypto.same_key(loaded[0], key) and loaded[3] == "keyalias"
    second = run_module(mc_keystore, task)
    assert second["changed"] is False
    assert_no_secrets(first, PW, "a new passphrase")


def test_passphrase_change_to_existing_dest_rewrites_same_key(files):
    dest = str(files["dir"] / "out.pem")
    run_module(mc_keystore, dict(src_path=files["p12"], src_passphrase=PW, dest_path=dest, format="pkcs8_pem",
                                 passphrase=PW))
    result = run_module(mc_keystore, dict(src_path=files["p12"], src_passphrase=PW, dest_path=dest,
                                          format="pkcs8_pem", passphrase="rotated"))
    assert result["changed"] is True
    assert crypto.read_key_container(read(dest), "rotated").encrypted


def test_check_mode_and_diff_on_fresh_dest(files):
    dest = str(files["dir"] / "out.p12")
    result = run_module(mc_keystore, dict(src_path=files["pem"], dest_path=dest, format="pkcs12", passphrase=PW),
                        check_mode=True, diff=True)
    assert result["changed"] is True and not os.path.exists(dest)
    assert result["diff"]["before"] is None and result["diff"]["after"]["format"] == "pkcs12"


def test_dest_with_a_different_key_needs_force(files):
    dest = files["dir"] / "other.pem"
    other = crypto.generate_private_key("ec")
    dest.write_bytes(crypto.dump_private_key(other, "pkcs8_pem"))
    before = read(dest)
    task = dict(src_path=files["pem"], dest_path=str(dest), format="pkcs8_pem")
    result = fail(task)
    assert "holds a different private key" in result["msg"] and "force=true" in result["msg"]
    assert read(dest) == before
    forced = run_module(mc_keystore, dict(task, force=True, backup=True))
    assert forced["changed"] is True and read(forced["backup_file"]) == before


def test_unreadable_dest_needs_force(files):
    dest = files["dir"] / "junk.p12"
    dest.write_bytes(b"junk")
    task = dict(src_path=files["pem"], dest_path=str(dest), format="pkcs12", passphrase=PW)
    assert "cannot be opened" in fail(task)["msg"] and read(dest) == b"junk"
    assert run_module(mc_keystore, dict(task, force=True))["changed"] is True


@pytest.mark.parametrize("change, message", [
    ({"src_passphrase": "Xq7-not-it"}, "src_passphrase is wrong for src_path"),
    ({"src_passphrase": None}, "src_passphrase is missing"),
    ({"format": "pkcs12", "passphrase": None}, "passphrase is required for format=pkcs12"),
    ({"format": "pkcs1_pem", "passphrase": "x"}, "passphrase can protect format=pkcs8_pem or pkcs12 only"),
    ({"certificate_path": "/nonexistent.pem"}, "certificate_path and chain_path go into a keystore"),
    ({"dest_path": "/nonexistent-dir/out.pem"}, "dest_path: the directory /nonexistent-dir does not exist"),
    ({"src_path": "/nonexistent.p12"}, "src_path: /nonexistent.p12 does not exist"),
])
def test_bad_input_writes_nothing(files, change, message):
    dest = str(files["dir"] / "out.pem")
    task = dict(src_path=files["p12"], src_passphrase=PW, dest_path=dest, format="pkcs8_pem")
    task.update(change)
    result = fail(task)
    assert message in result["msg"]
    assert not os.path.exists(dest)
    assert_no_secrets(result, PW)


def test_corrupt_pkcs12_and_weak_key_are_refused(files):
    damaged = files["dir"] / "damaged.p12"
    damaged.write_bytes(read(files["p12"])[:-40])
    dest = str(files["dir"] / "out.pem")
    assert "src_path" in fail(dict(src_path=str(damaged), src_passphrase=PW, dest_path=dest, format="pkcs8_pem"))["msg"]
    weak = files["dir"] / "weak.pem"
    weak.write_bytes(crypto.dump_private_key(rsa.generate_private_key(65537, 1024), "pkcs1_pem"))
    result = fail(dict(src_path=str(weak), dest_path=dest, format="pkcs8_pem"))
    assert "RSA 1024" in result["msg"] and "at least 2048" in result["msg"]
    assert not os.path.exists(dest)


def test_certificate_of_another_key_is_refused(files):
    stranger = self_signed_certificate(crypto.generate_private_key("ec"))
    cert_path = files["dir"] / "stranger.pem"
    cert_path.write_bytes(crypto.dump_certificates([stranger]))
    result = fail(dict(src_path=files["pem"], certificate_path=str(cert_path), dest_path=str(files["dir"] / "o.p12"),
                       format="pkcs12", passphrase=PW))
    assert "is not the certificate of the key in src_path" in result["msg"]


def test_friendly_name_change_and_default_from_source(files):
    dest = str(files["dir"] / "copy.p12")
    task = dict(src_path=files["p12"], src_passphrase=PW, dest_path=dest, format="pkcs12", passphrase=PW)
    result = run_module(mc_keystore, task)
    assert result["keystore"]["friendly_name"] == "keyalias"
    assert result["keystore"]["certificate_fingerprint"] is not None
    renamed = run_module(mc_keystore, dict(task, friendly_name="newalias"))
    assert renamed["changed"] is True and crypto.load_pkcs12(read(dest), PW)[3] == "newalias"


@pytest.mark.parametrize("encryption", ["modern", "legacy"])
def test_key_only_pkcs12_with_friendly_name_is_idempotent(tmp_path, key, encryption):
    """The friendly name of a key-only keystore sits on the key bag; a re-run must read it there."""
    src = tmp_path / "key.pem"
    src.write_bytes(crypto.dump_private_key(key, "pkcs8_pem"))
    args = dict(src_path=str(src), dest_path=str(tmp_path / "key-only.p12"), format="pkcs12", passphrase=PW,
                friendly_name="keyalias", pkcs12_encryption=encryption)
    assert run_module(mc_keystore, args)["changed"] is True
    again = run_module(mc_keystore, args, diff=True)
    assert again["changed"] is False, again["diff"]
    assert again["diff"]["before"]["friendly_name"] == "keyalias"
    renamed = run_module(mc_keystore, dict(args, friendly_name="other"), diff=True)
    assert renamed["changed"] is True and renamed["diff"]["before"]["friendly_name"] == "keyalias"


def test_check_mode_predicts_a_write_when_an_earlier_task_would_create_the_source(tmp_path):
    args = dict(src_path=str(tmp_path / "made-by-mc_csr.pem"), certificate_path=str(tmp_path / "issued.pem"),
                dest_path=str(tmp_path / "key.p12"), format="pkcs12", passphrase=PW)
    predicted = run_module(mc_keystore, args, check_mode=True)
    assert predicted["changed"] is True
    assert any("src_path" in w and "does not exist yet" in w for w in predicted["warnings"])
    assert any("certificate_path" in w for w in predicted["warnings"])
    assert not os.path.exists(args["dest_path"])
    with pytest.raises(ModuleFail, match="src_path: .* does not exist"):
        run_module(mc_keystore, args)  # a real run still refuses a missing source
