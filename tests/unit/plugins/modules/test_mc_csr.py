"""mc_csr run in-process against real files and real keys."""

from __future__ import annotations

import datetime
import os
import shutil
import stat
import subprocess

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.modules import mc_certificate, mc_csr
from ansible_collections.mcdev.credentials.tests.unit.emulator.helpers import external_ca
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules import mc_helpers
from ansible_collections.mcdev.credentials.tests.unit.plugins.modules.utils import ModuleFail, assert_no_secrets, run_module

PASSPHRASE = "correct horse battery staple"


@pytest.fixture
def paths(tmp_path):
    return {"privatekey_path": str(tmp_path / "key.pem"), "csr_path": str(tmp_path / "req.csr")}


def args(paths, **extra):
    base = dict(paths, common_name="example-1682563200", organization_name="Example", profile="oauth1")
    base.update(extra)
    return base


def snapshot(paths):
    """Bytes of both files (None when absent), to prove a refusal wrote nothing."""
    result = {}
    for name, path in paths.items():
        result[name] = open(path, "rb").read() if os.path.exists(path) else None
    return result


def mode_of(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def fail(module_args, **kwargs):
    with pytest.raises(ModuleFail) as failed:
        run_module(mc_csr, module_args, **kwargs)
    return failed.value.result


def test_create_then_idempotent_then_check_mode(paths):
    first = run_module(mc_csr, args(paths, subject_alt_name=["DNS:api.example.com"]))
    assert first["changed"] is True
    assert (mode_of(paths["privatekey_path"]), mode_of(paths["csr_path"])) == (0o600, 0o644)
    key = crypto.load_private_key(open(paths["privatekey_path"], "rb").read())
    csr = crypto.load_csr(open(paths["csr_path"], "rb").read())
    assert crypto.key_matches_csr(key, csr) and csr.is_signature_valid
    assert crypto.name_pairs(csr.subject) == [("CN", "example-1682563200"), ("O", "Example")]
    assert first["privatekey"]["public_key_fingerprint"] == crypto.public_key_fingerprint(key)
    assert first["csr"]["subject_alt_name"] == ["DNS:api.example.com"]
    assert "csr_pem" not in first
    assert_no_secrets(first)

    before = snapshot(paths)
    second = run_module(mc_csr, args(paths, subject_alt_name=["DNS:api.example.com"]))
    assert second["changed"] is False and snapshot(paths) == before
    third = run_module(mc_csr, args(paths, subject_alt_name=["DNS:api.example.com"]), check_mode=True)
    assert third["changed"] is False


def test_check_mode_writes_nothing_and_reports_no_fingerprint(paths):
    result = run_module(mc_csr, args(paths), check_mode=True, diff=True)
    assert result["changed"] is True
    assert snapshot(paths) == {"privatekey_path": None, "csr_path": None}
    assert result["privatekey"]["public_key_fingerprint"] is None
    assert result["diff"]["before"] == {"privatekey": None, "csr": None}
    assert result["diff"]["after"]["csr"]["subject_string"] == "O=Example,CN=example-1682563200"


def test_diff_mode_shows_facts_never_key_bytes(paths):
    run_module(mc_csr, args(paths, privatekey_passphrase=PASSPHRASE))
    result = run_module(mc_csr, args(paths, privatekey_passphrase=PASSPHRASE, common_name="example-1682566800"), diff=True)
    assert result["changed"] is True
    before, after = result["diff"]["before"], result["diff"]["after"]
    assert before["privatekey"]["public_key_fingerprint"] == after["privatekey"]["public_key_fingerprint"]
    assert before["csr"]["subject_string"] != after["csr"]["subject_string"]
    assert_no_secrets(result, PASSPHRASE)


def test_subject_change_rewrites_csr_but_keeps_key(paths):
    run_module(mc_csr, args(paths))
    key_bytes = open(paths["privatekey_path"], "rb").read()
    result = run_module(mc_csr, args(paths, subject=[{"CN": "example-1682566800"}, {"OU": "Payments"}],
                                     common_name=None, organization_name=None))
    assert result["changed"] is True
    assert open(paths["privatekey_path"], "rb").read() == key_bytes
    csr = crypto.load_csr(open(paths["csr_path"], "rb").read())
    assert crypto.name_pairs(csr.subject) == [("CN", "example-1682566800"), ("OU", "Payments")]


def test_different_size_is_refused_by_default_and_replaced_on_request(paths):
    run_module(mc_csr, args(paths))
    before = snapshot(paths)
    refused = fail(args(paths, size=3072))
    assert "regenerate=partial_idempotence" in refused["msg"] and "RSA 2048" in refused["msg"]
    assert snapshot(paths) == before
    replaced = run_module(mc_csr, args(paths, size=3072, regenerate="partial_idempotence", backup=True))
    assert replaced["changed"] is True and replaced["privatekey"]["size"] == 3072
    assert open(replaced["backup_privatekey"], "rb").read() == before["privatekey_path"]
    assert open(replaced["backup_csr"], "rb").read() == before["csr_path"]
    assert mode_of(replaced["backup_privatekey"]) == 0o600


def test_regenerate_never_keeps_a_differing_key_with_a_warning(paths):
    run_module(mc_csr, args(paths))
    key_bytes = open(paths["privatekey_path"], "rb").read()
    result = run_module(mc_csr, args(paths, type="ec", profile="oauth2", regenerate="never"))
    assert open(paths["privatekey_path"], "rb").read() == key_bytes
    assert "regenerate=never keeps" in result["warnings"][0]
    assert result["privatekey"]["type"] == "rsa"


def test_wrong_passphrase_is_refused_and_nothing_written(paths):
    run_module(mc_csr, args(paths, privatekey_passphrase=PASSPHRASE))
    before = snapshot(paths)
    result = fail(args(paths, privatekey_passphrase="Xq7-not-it", common_name="example-1682566800"))
    assert result["msg"].startswith("privatekey_passphrase is wrong for privatekey_path %s" % paths["privatekey_path"])
    assert "regenerate=full_idempotence" in result["msg"]
    assert snapshot(paths) == before
    assert_no_secrets(result, PASSPHRASE, "Xq7-not-it")
    missing = fail(args(paths))
    assert "privatekey_passphrase is missing" in missing["msg"]
    replaced = run_module(mc_csr, args(paths, privatekey_passphrase="new one", regenerate="full_idempotence"))
    assert replaced["changed"] and snapshot(paths)["privatekey_path"] != before["privatekey_path"]


def test_adding_a_passphrase_rewrites_the_same_key(paths):
    first = run_module(mc_csr, args(paths))
    second = run_module(mc_csr, args(paths, privatekey_passphrase=PASSPHRASE))
    assert second["changed"] is True and second["privatekey"]["encrypted"] is True
    assert second["privatekey"]["public_key_fingerprint"] == first["privatekey"]["public_key_fingerprint"]
    assert b"ENCRYPTED PRIVATE KEY" in open(paths["privatekey_path"], "rb").read()
    assert run_module(mc_csr, args(paths, privatekey_passphrase=PASSPHRASE))["changed"] is False


@pytest.mark.parametrize("which, content, message", [
    ("privatekey_path", b"-----BEGIN PRIVATE KEY-----\nnot base64\n-----END PRIVATE KEY-----\n", "not a readable private key"),
    ("csr_path", b"garbage", "is not a readable CSR"),
])
def test_corrupt_files_are_refused(paths, which, content, message):
    run_module(mc_csr, args(paths))
    with open(paths[which], "wb") as handle:
        handle.write(content)
    before = snapshot(paths)
    result = fail(args(paths))
    assert message in result["msg"] and "regenerate=full_idempotence" in result["msg"] and paths[which] in result["msg"]
    assert snapshot(paths) == before
    assert run_module(mc_csr, args(paths, regenerate="full_idempotence"))["changed"] is True


def test_weak_existing_key_is_refused(paths):
    weak = rsa.generate_private_key(65537, 1024)
    with open(paths["privatekey_path"], "wb") as handle:
        handle.write(crypto.dump_private_key(weak, "pkcs1_pem"))
    assert "regenerate=partial_idempotence" in fail(args(paths))["msg"]
    kept = fail(args(paths, regenerate="never"))
    assert "RSA 1024" in kept["msg"] and "at least 2048" in kept["msg"]
    assert not os.path.exists(paths["csr_path"])


@pytest.mark.parametrize("extra, message", [
    ({"type": "ec", "profile": "oauth1"}, "profile=oauth1 accepts RSA keys only"),
    ({"profile": "mtls_sandbox", "common_name": "x" * 60 + "-Client-MTF-000000"}, "at most 64"),
    ({"profile": "mtls_sandbox", "common_name": "https://api.example.com"}, "looks like a URL"),
    ({"profile": "mtls_sandbox", "common_name": "example-1682563200"}, "-Client-MTF-"),
    ({"subject": {"CN": "a"}}, "CN is set both in subject and as common_name"),
    ({"common_name": None}, "a common name is required"),
    ({"subject_alt_name": ["api.example.com"]}, "needs a type prefix"),
    ({"country_name": "USA"}, "two-letter country code"),
])
def test_bad_input_writes_nothing(paths, extra, message):
    result = fail(args(paths, **extra))
    assert message in result["msg"]
    assert snapshot(paths) == {"privatekey_path": None, "csr_path": None}


def test_missing_parent_directory(tmp_path):
    result = fail(args({"privatekey_path": str(tmp_path / "no" / "key.pem"), "csr_path": str(tmp_path / "r.csr")}))
    assert result["msg"].startswith("privatekey_path: the directory %s does not exist" % (tmp_path / "no"))


def test_return_content_returns_csr_only(paths):
    result = run_module(mc_csr, args(paths, return_content=True, privatekey_passphrase=PASSPHRASE))
    assert result["csr_pem"] == open(paths["csr_path"]).read()
    assert result["csr_pem"].startswith("-----BEGIN CERTIFICATE REQUEST-----")
    assert_no_secrets(result, PASSPHRASE)


def test_force_always_makes_a_new_key(paths):
    first = run_module(mc_csr, args(paths))
    second = run_module(mc_csr, args(paths, force=True))
    assert second["changed"] is True
    assert second["privatekey"]["public_key_fingerprint"] != first["privatekey"]["public_key_fingerprint"]


def test_ec_key_and_mode_option(paths):
    result = run_module(mc_csr, args(paths, type="ec", curve="secp256r1", profile="oauth2", mode="0640"))
    assert result["privatekey"]["type"] == "ec" and result["csr"]["signature_algorithm"] == "ecdsa-with-SHA256"
    assert (mode_of(paths["privatekey_path"]), mode_of(paths["csr_path"])) == (0o640, 0o640)
    again = run_module(mc_csr, args(paths, type="ec", curve="secp256r1", profile="oauth2", mode="0600"))
    assert again["changed"] is True and mode_of(paths["privatekey_path"]) == 0o600


def test_sandbox_profile_with_ordered_subject(paths):
    subject = [{"CN": "1682563200-Client-MTF-000000"}, {"O": "Example"}, {"OU": "Payments"}, {"C": "US"}]
    result = run_module(mc_csr, dict(paths, profile="mtls_sandbox", subject=subject))
    assert result["csr"]["subject"] == [["CN", "1682563200-Client-MTF-000000"], ["O", "Example"], ["OU", "Payments"],
                                        ["C", "US"]]


@pytest.mark.skipif(shutil.which("openssl") is None, reason="the openssl CLI is not installed")
def test_existing_openssl_pkcs1_key_is_adopted_not_replaced(paths):
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", paths["privatekey_path"], "2048"],
                   check=True, capture_output=True)
    key_bytes = open(paths["privatekey_path"], "rb").read()
    result = run_module(mc_csr, args(paths))
    assert result["changed"] is True  # the CSR is new
    assert open(paths["privatekey_path"], "rb").read() == key_bytes
    assert result["privatekey"]["format"] == "pkcs1_pem"
    verify = subprocess.run(["openssl", "req", "-verify", "-noout", "-in", paths["csr_path"]], capture_output=True, check=True)
    assert b"verify OK" in verify.stdout + verify.stderr
    assert run_module(mc_csr, args(paths))["changed"] is False


# --- KMP renewal: the CSR from the expiring certificate ---------------------

KMP_SUBJECT = [{"C": "US"}, {"O": "Example Company"}, {"OU": "Payments"}, {"CN": "payments-1700000000"}]


def issue_from_csr(csr_path, ca_key, ca_cert):
    """What a CA does with the CSR (cryptography directly, not crypto.py): its subject and SANs, for clientAuth."""
    with open(csr_path, "rb") as handle:
        csr = x509.load_pem_x509_csr(handle.read())
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder().subject_name(csr.subject).issuer_name(ca_cert.subject)
               .public_key(csr.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=20))
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
               .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
               .add_extension(csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value, critical=False))
    return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode("ascii")


def openssl_text(*argv):
    return subprocess.run(["openssl", *argv], check=True, capture_output=True, text=True).stdout.strip()


def test_kmp_renewal_csr_from_the_expiring_certificate_is_issued_and_uploaded(emulator, tmp_path):
    account, project = mc_helpers.setup_project(emulator, auth_model="MTLS")
    ca_key, ca_cert = external_ca(emulator)
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    (tmp_path / "ca.pem").write_text(ca_pem)
    for name in ("v1", "v2", "v3"):
        (tmp_path / name).mkdir()

    def upload(alias, certificate_pem):
        return run_module(mc_certificate, dict(mc_helpers.connection(emulator, account), project_id=project["id"],
                                               alias=alias, environment="production",
                                               certificate_content=certificate_pem + ca_pem,
                                               trusted_ca_path=str(tmp_path / "ca.pem")))

    v1 = {"privatekey_path": str(tmp_path / "v1" / "key.pem"), "csr_path": str(tmp_path / "v1" / "req.csr")}
    run_module(mc_csr, dict(v1, subject=KMP_SUBJECT, subject_alt_name=["DNS:api.example.com", "DNS:pay.example.com"],
                            profile="mtls_production"))
    expiring = issue_from_csr(v1["csr_path"], ca_key, ca_cert)
    (tmp_path / "v1" / "cert.pem").write_text(expiring)
    assert upload("payments-1700000000", expiring)["action"] == "create"

    v2 = {"privatekey_path": str(tmp_path / "v2" / "key.pem"), "csr_path": str(tmp_path / "v2" / "req.csr"),
          "renew_certificate_path": str(tmp_path / "v1" / "cert.pem"), "profile": "mtls_production"}
    result = run_module(mc_csr, v2)
    renewal = result["renewal"]
    # Read back with openssl: the DN is the expiring one's but for the CN, and the SANs are kept.
    old_subject = openssl_text("x509", "-in", str(tmp_path / "v1" / "cert.pem"), "-noout", "-subject", "-nameopt", "RFC2253")
    new_subject = openssl_text("req", "-in", v2["csr_path"], "-noout", "-subject", "-nameopt", "RFC2253")
    assert old_subject == "subject=CN=payments-1700000000,OU=Payments,O=Example Company,C=US"
    assert new_subject == "subject=CN=%s,OU=Payments,O=Example Company,C=US" % renewal["to"]
    assert renewal["to"] != "payments-1700000000" and renewal["to"].startswith("payments-")
    assert "DNS:api.example.com, DNS:pay.example.com" in openssl_text("req", "-in", v2["csr_path"], "-noout", "-text")
    serial = openssl_text("x509", "-in", str(tmp_path / "v1" / "cert.pem"), "-noout", "-serial")
    assert serial == "serial=" + renewal["certificate_serial_number"].rjust(len(serial) - len("serial="), "0")
    assert result["changed"] and "warnings" not in result
    before = snapshot({"csr": v2["csr_path"]})
    again = run_module(mc_csr, v2)
    assert not again["changed"] and again["renewal"]["to"] == renewal["to"]
    assert snapshot({"csr": v2["csr_path"]}) == before

    assert upload(renewal["to"], issue_from_csr(v2["csr_path"], ca_key, ca_cert))["action"] == "create"
    # Without the renewal, a certificate for the expiring DN is what the gateway refuses as a duplicate.
    run_module(mc_csr, dict(v1, privatekey_path=str(tmp_path / "v3" / "key.pem"), csr_path=str(tmp_path / "v3" / "dup.csr"),
                            subject=KMP_SUBJECT, subject_alt_name=["DNS:api.example.com"], profile="mtls_production"))
    with pytest.raises(ModuleFail) as duplicate:
        upload("payments-duplicate", issue_from_csr(str(tmp_path / "v3" / "dup.csr"), ca_key, ca_cert))
    assert "DUPLICATE_CERTIFICATE" in str(duplicate.value.result), duplicate.value.result


def test_kmp_renewal_refusals_write_nothing(tmp_path):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "payments-1700000000")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(99).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=9))
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "old-key.pem").write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                                             serialization.PrivateFormat.PKCS8,
                                                             serialization.NoEncryption()))
    paths = {"privatekey_path": str(tmp_path / "key.pem"), "csr_path": str(tmp_path / "req.csr")}
    renew = dict(paths, renew_certificate_path=str(tmp_path / "cert.pem"))
    for extra, expect in ((dict(renew_value="payments-1700000000"), "duplicate certificate error"),
                          (dict(renew_attribute="title"), "renew_attribute 'title' is not supported"),
                          (dict(renew_attribute="ST"), "has no ST (state_or_province_name); set renew_value"),
                          (dict(common_name="other"), "mutually exclusive: renew_certificate_path|common_name"),
                          (dict(renew_certificate_path=str(tmp_path / "absent.pem")), "renew_certificate_path: ")):
        with pytest.raises(ModuleFail) as refused:
            run_module(mc_csr, dict(renew, **extra))
        assert expect in refused.value.result["msg"], refused.value.result["msg"]
        assert snapshot(paths) == {"privatekey_path": None, "csr_path": None}
    with pytest.raises(ModuleFail) as refused:
        run_module(mc_csr, dict(paths, common_name="x", renew_value="y"))
    assert "renew_certificate_path" in refused.value.result["msg"]
    # Check mode predicts the renewal and writes nothing.
    predicted = run_module(mc_csr, renew, check_mode=True)
    assert predicted["changed"] and predicted["renewal"]["from"] == "payments-1700000000"
    assert snapshot(paths) == {"privatekey_path": None, "csr_path": None}
    # Renewing with the expiring certificate's own key is allowed, with a warning.
    reused = run_module(mc_csr, dict(renew, privatekey_path=str(tmp_path / "old-key.pem"), regenerate="never"))
    assert any("is the one the expiring certificate certifies" in warning for warning in reused["warnings"])
