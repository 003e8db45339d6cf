"""Bad content fed to the modules as a user feeds it: refused locally, with a sentence naming the option,
before any API call and before any file is written; and no input file, however broken, ends in a bare
library message. The emulator refuses the same content on its side (tests/unit/emulator)."""

from __future__ import annotations

import os
import random

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID

from ansible_collections.mcdev.credentials.plugins.modules import (mc_certificate, mc_csr, mc_keystore, mc_oauth_key,
                                                                   mc_verify)
from ansible_collections.mcdev.credentials.tests.unit import content_cases as cases
from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import external_ca
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import mc_helpers as h
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, run_module

PASSWORD = "Content-Checks-123"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
# What a library says when it speaks for itself; none of it may reach a user's msg.
LIBRARY_WORDS = ("ParseError", "asn1", "Traceback", "Error:", "Exception", "object at 0x", "PublicKey", "PrivateKey",
                 "InvalidValue", "UnsupportedAlgorithm")


def files_in(path):
    return sorted(os.listdir(path))


def refused(module, args, option):
    """Run, expect a failure whose msg names ``option`` and holds no library words; return the msg."""
    with pytest.raises(ModuleFail) as failed:
        run_module(module, args)
    message = failed.value.result["msg"]
    assert option in message, message
    for word in LIBRARY_WORDS:
        assert word not in message, (word, message)
    return message


@pytest.fixture
def oauth(emulator):
    return h.setup_project(emulator)


@pytest.fixture
def mtls(emulator):
    return h.setup_project(emulator, auth_model="MTLS")


# --- CSR content through mc_oauth_key / mc_certificate --------------------

BAD_CSRS = [
    ("cn-escape", lambda: cases.bad_subject_csr(RSA_KEY, ("x", "CN", cases.UTF8, b"pay\x1b[2Jments", "")), "U+001B"),
    ("o-nul", lambda: cases.bad_subject_csr(RSA_KEY, ("x", "O", cases.UTF8, b"Pay\x00ments", "")), "U+0000"),
    ("cn-invalid-utf8", lambda: cases.bad_subject_csr(RSA_KEY, ("x", "CN", cases.UTF8, b"pay\xff", "")), "UTF-8"),
    ("cn-printable-at", lambda: cases.bad_subject_csr(RSA_KEY, ("x", "CN", cases.PRINTABLE, b"a@b", "")), "U+0040"),
    ("rsassa-pss", lambda: cases.signed_csr(RSA_KEY, pss=True), "RSASSA-PSS"),
    ("sha384", lambda: cases.signed_csr(RSA_KEY, algorithm=hashes.SHA384()), "sha384WithRSAEncryption"),
    ("cn-65", lambda: cases.signed_csr(RSA_KEY, common_name="k" * 65), "65 characters"),
    ("ec-for-oauth1", lambda: cases.signed_csr(ec.generate_private_key(ec.SECP256R1()), algorithm=hashes.SHA256()),
     "RSA key"),
    ("weak-rsa", lambda: cases.signed_csr(rsa.generate_private_key(public_exponent=65537, key_size=1024),
                                          algorithm=hashes.SHA256()), "at least 2048"),
]


@pytest.mark.parametrize("case_id, make, expect", BAD_CSRS, ids=[c[0] for c in BAD_CSRS])
@pytest.mark.parametrize("method", ["csr_content", "csr_path"])
def test_bad_csr_is_refused_before_any_api_call(emulator, oauth, tmp_path, case_id, make, expect, method):
    account, project = oauth
    text = make()
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="payments", oauth_version="1.0a")
    if method == "csr_path":
        (tmp_path / "in").mkdir()
        (tmp_path / "in" / "req.csr").write_text(text)
        args["csr_path"] = str(tmp_path / "in" / "req.csr")
    else:
        args["csr_content"] = text
    before = h.counters(emulator)
    message = refused(mc_oauth_key, args, method)
    assert expect in message, (case_id, message)
    assert h.api_calls(before, h.counters(emulator), method="POST") == 0
    assert h.api_calls(before, h.counters(emulator), method="GET") == 0
    assert files_in(tmp_path) == (["in"] if method == "csr_path" else [])


def test_sha1_csr_is_sent_with_a_warning_and_the_emulator_verifies_it(emulator, oauth):
    account, project = oauth
    text = cases.openssl_csr(RSA_KEY, "sha1", "payments-sha1")
    assert cases.openssl_verifies(text)
    result = run_module(mc_oauth_key, dict(h.connection(emulator, account), project_id=project["id"],
                                           alias="payments-sha1", oauth_version="1.0a", csr_content=text))
    assert result["changed"] and result["action"] == "create"
    assert any("sha1WithRSAEncryption" in w and "weak hash" in w for w in result.get("warnings", []))


# --- certificate uploads through mc_certificate ---------------------------

def upload_args(emulator, account, project, text, **extra):
    args = dict(h.connection(emulator, account), project_id=project["id"], alias="uploaded",
                environment="production", certificate_content=text)
    args.update(extra)
    return args


@pytest.mark.parametrize("case_id, options, expect", cases.UNFIT_FOR_CLIENT, ids=[c[0] for c in cases.UNFIT_FOR_CLIENT])
def test_certificate_not_for_client_auth_is_refused_locally(emulator, mtls, case_id, options, expect):
    account, project = mtls
    ca_key, ca_cert = external_ca(emulator)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = cases.certificate(key, "uploaded-client", issuer_key=ca_key, issuer_name=ca_cert.subject, **options)
    before = h.counters(emulator)
    message = refused(mc_certificate, upload_args(emulator, account, project, cases.pem_chain(cert)),
                      "certificate_content")
    assert "cannot be an mTLS client certificate" in message and expect in message, message
    assert h.mutating_calls(before, h.counters(emulator)) == 0


def test_chain_order_and_trust_are_checked_before_upload(emulator, mtls, tmp_path):
    account, project = mtls
    leaf, mid, root, _key = cases.chain_of_three()
    before = h.counters(emulator)
    message = refused(mc_certificate, upload_args(emulator, account, project, cases.pem_chain(leaf, root, mid)),
                      "certificate_content")
    assert "certificate 1 (CN=1700000000-Client-MTF-000000) is not issued by certificate 2" in message
    message = refused(mc_certificate, upload_args(emulator, account, project,
                                                  cases.pem_chain(cases.certificate(RSA_KEY, "selfie"))),
                      "certificate_content")
    assert "self-signed" in message
    (tmp_path / "trusted.pem").write_text(cases.pem_chain(cases.certificate(RSA_KEY, "Some Other CA", ca=True)))
    message = refused(mc_certificate, upload_args(emulator, account, project, cases.pem_chain(leaf, mid, root),
                                                  trusted_ca_path=str(tmp_path / "trusted.pem")),
                      "certificate_content")
    assert "none of the CAs given as trusted" in message
    assert h.mutating_calls(before, h.counters(emulator)) == 0


def test_a_trusted_chain_in_order_is_uploaded(emulator, mtls, tmp_path):
    account, project = mtls
    ca_key, ca_cert = external_ca(emulator)
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = cases.certificate(key, "uploaded-ok", issuer_key=ca_key, issuer_name=ca_cert.subject,
                             extended=[ExtendedKeyUsageOID.CLIENT_AUTH], key_usage={"digital_signature": True})
    (tmp_path / "trusted.pem").write_text(cases.pem_chain(ca_cert))
    result = run_module(mc_certificate, upload_args(emulator, account, project, cases.pem_chain(leaf, ca_cert),
                                                    trusted_ca_path=str(tmp_path / "trusted.pem")))
    assert result["changed"] and result["action"] == "create"


# --- mc_keystore warns about what it packs ---------------------------------

def test_keystore_warns_about_an_expired_server_only_certificate_and_a_wrong_chain(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    other_ca = cases.certificate(ec.generate_private_key(ec.SECP256R1()), "Unrelated CA", ca=True)
    cert = cases.certificate(key, "client-old", days=-1, start_days=-30, extended=[ExtendedKeyUsageOID.SERVER_AUTH])
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    (tmp_path / "cert.pem").write_text(cases.pem_chain(cert))
    (tmp_path / "chain.pem").write_text(cases.pem_chain(other_ca))
    result = run_module(mc_keystore, dict(src_path=str(tmp_path / "key.pem"), certificate_path=str(tmp_path / "cert.pem"),
                                          chain_path=str(tmp_path / "chain.pem"), dest_path=str(tmp_path / "k.p12"),
                                          format="pkcs12", passphrase=PASSWORD))
    warnings = " | ".join(result.get("warnings", []))
    assert "expired on" in warnings and "without clientAuth" in warnings and "is not issued by" in warnings, warnings
    assert result["changed"] and os.path.exists(tmp_path / "k.p12")


# --- any bytes in any file input end in a sentence ---------------------------

def _valid_files(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = cases.certificate(key, "fuzz-client")
    out = {
        "key": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()),
        "key_der": key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption()),
        "cert": cert.public_bytes(serialization.Encoding.PEM),
        "cert_der": cert.public_bytes(serialization.Encoding.DER),
        "csr": cases.signed_csr(key, algorithm=hashes.SHA256()).encode("ascii"),
        "p12": serialization.pkcs12.serialize_key_and_certificates(
            b"k", key, cert, None, serialization.BestAvailableEncryption(PASSWORD.encode())),
    }
    return out


def _broken_variants(valid):
    """Random bytes of several sizes, and truncations of valid files of every kind."""
    rng = random.Random(20261202)
    variants = [("random-%d" % size, bytes(rng.getrandbits(8) for _unused in range(size))) for size in (1, 37, 700, 3000)]
    variants.append(("der-sequence-garbage", b"\x30\x82\x01\x00" + bytes(rng.getrandbits(8) for _unused in range(256))))
    for name, data in valid.items():
        for fraction in (0.1, 0.5, 0.9):
            variants.append(("%s-cut-%d" % (name, fraction * 100), data[:int(len(data) * fraction)]))
        flipped = bytearray(data)
        flipped[len(flipped) // 2] ^= 0x55
        variants.append(("%s-flipped" % name, bytes(flipped)))
    return variants


def test_broken_input_files_end_in_sentences_naming_the_option(tmp_path):
    valid = _valid_files(tmp_path)
    (tmp_path / "ok").mkdir()
    for name, data in valid.items():
        (tmp_path / "ok" / name).write_bytes(data)
    ok = str(tmp_path / "ok")
    targets = [
        (mc_csr, "privatekey_path", {"csr_path": str(tmp_path / "out.csr"), "common_name": "fuzz"}),
        (mc_csr, "csr_path", {"privatekey_path": ok + "/key", "common_name": "fuzz"}),
        (mc_keystore, "src_path", {"dest_path": str(tmp_path / "out.pem"), "format": "pkcs8_pem"}),
        (mc_keystore, "certificate_path", {"src_path": ok + "/key", "dest_path": str(tmp_path / "out.p12"),
                                           "format": "pkcs12", "passphrase": PASSWORD}),
        (mc_keystore, "chain_path", {"src_path": ok + "/key", "certificate_path": ok + "/cert",
                                     "dest_path": str(tmp_path / "out.p12"), "format": "pkcs12",
                                     "passphrase": PASSWORD}),
        (mc_keystore, "dest_path", {"src_path": ok + "/key", "format": "pkcs12", "passphrase": PASSWORD}),
        (mc_verify, "pkcs12_path", {"kind": "mtls", "url": "https://127.0.0.1:9/ping", "pkcs12_password": PASSWORD}),
        (mc_verify, "private_key_path", {"kind": "mtls", "url": "https://127.0.0.1:9/ping",
                                         "certificate_path": ok + "/cert"}),
        (mc_verify, "certificate_path", {"kind": "mtls", "url": "https://127.0.0.1:9/ping",
                                         "private_key_path": ok + "/key"}),
        (mc_oauth_key, "csr_path", {"api_url": "https://127.0.0.1:9/developers", "consumer_key": "k" * 20,
                                    "signing_key_content": valid["key"].decode("ascii"), "project_id": "p1",
                                    "alias": "fuzz", "oauth_version": "1.0a"}),
        (mc_certificate, "certificate_path", {"api_url": "https://127.0.0.1:9/developers", "consumer_key": "k" * 20,
                                              "signing_key_content": valid["key"].decode("ascii"), "project_id": "p1",
                                              "alias": "fuzz"}),
    ]
    tried = 0
    for module, option, base in targets:
        for variant, data in _broken_variants(valid):
            path = tmp_path / "bad"
            path.write_bytes(data)
            args = dict(base, **{option: str(path)})
            try:
                run_module(module, args)
            except ModuleFail as failed:
                message = failed.result["msg"]
                assert option in message, (module.__name__, option, variant, message)
                for word in LIBRARY_WORDS:
                    assert word not in message, (module.__name__, option, variant, word, message)
                for leftover in ("out.csr", "out.pem", "out.p12"):
                    assert not (tmp_path / leftover).exists(), (module.__name__, variant, "wrote before failing")
            else:
                # Only a flip that leaves a file readable may pass (PEM padding, a DER tail byte).
                assert "flipped" in variant or variant.endswith("cut-90"), (module.__name__, option, variant)
                for leftover in ("out.csr", "out.pem", "out.p12"):
                    if (tmp_path / leftover).exists():
                        (tmp_path / leftover).unlink()
            tried += 1
    assert tried == 11 * 29  # 11 file options x (5 random + 6 kinds x 4 damages)


def test_an_ed25519_key_is_named_as_such(tmp_path):
    key = ed25519.Ed25519PrivateKey.generate()
    (tmp_path / "key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                         serialization.NoEncryption()))
    message = refused(mc_keystore, dict(src_path=str(tmp_path / "key.pem"), dest_path=str(tmp_path / "k.p12"),
                                        format="pkcs12", passphrase=PASSWORD), "src_path")
    assert "an Ed25519 key" in message


def test_a_weak_existing_key_is_refused_for_the_minimum_not_a_size_mismatch(tmp_path):
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    (tmp_path / "key.pem").write_bytes(weak.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                          serialization.NoEncryption()))
    message = refused(mc_csr, dict(privatekey_path=str(tmp_path / "key.pem"), csr_path=str(tmp_path / "r.csr"),
                                   common_name="weak"), "regenerate")
    assert "RSA 1024; Mastercard credentials need RSA of at least 2048 bits" in message
    assert "but size=2048" not in message
    assert not (tmp_path / "r.csr").exists()
