"""What a CSR or certificate contains, checked before anything is written or sent (crypto.py).

One test per class of bad content, each over many cases (tests/unit/content_cases.py);
the emulator's own tests feed it the same cases.
"""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from ansible_collections.mcdev.credentials.plugins.module_utils import crypto
from ansible_collections.mcdev.credentials.plugins.module_utils.crypto import CryptoError
from ansible_collections.mcdev.credentials.tests.unit import content_cases as cases

RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())


@pytest.mark.parametrize("case", cases.BAD_SUBJECTS, ids=[c[0] for c in cases.BAD_SUBJECTS])
def test_subject_that_is_not_clean_text_is_refused_naming_attribute_and_character(case):
    _case_id, attribute, _tag, raw, expect = case
    text = cases.bad_subject_csr(RSA_KEY, case)
    with pytest.raises(CryptoError) as refused:
        crypto.load_csr(text.encode("ascii"), source="csr_content")
    message = str(refused.value)
    assert message.startswith("csr_content: the CSR's subject attribute %s " % attribute), message
    assert expect in message, message
    assert "make a new CSR" in message
    # never the raw bytes (a control byte would reach the terminal), never the library's words
    for char in set(raw.decode("latin-1")):
        if not 0x20 <= ord(char) < 0x7F:
            assert char not in message, repr(char)
    assert "ParseError" not in message and "asn1" not in message


@pytest.mark.parametrize("value, code", [("pay\x1bments", "U+001B (ESC)"), ("a\x00b", "U+0000 (NUL)"),
                                         ("line\nbreak", "U+000A"), ("bell\x07", "U+0007 (BEL)"),
                                         ("rtl\u202eoverride", "U+202E"), ("zero\u200bwidth", "U+200B")])
@pytest.mark.parametrize("attribute", ["CN", "O", "OU", "L", "ST"])
def test_subject_options_with_control_characters_are_refused(attribute, value, code):
    with pytest.raises(CryptoError) as refused:
        crypto.normalize_subject({attribute: value})
    message = str(refused.value)
    assert crypto.ATTRIBUTE_LABELS[attribute] in message and code in message, message
    assert value not in message


def test_certificate_subject_with_control_character_is_refused():
    cert = cases.certificate(RSA_KEY, "client\x1b[31m")
    with pytest.raises(CryptoError, match=r"certificate_content: the certificate's subject attribute CN holds the "
                                          r"control character U\+001B \(ESC\) at position 7"):
        crypto.load_certificates(cases.pem_chain(cert).encode("ascii"), source="certificate_content")


# --- signature algorithms --------------------------------------------------

REFUSED_ALGORITHMS = [
    ("rsassa-pss-sha256", lambda: cases.signed_csr(RSA_KEY, pss=True), "oauth1", "RSASSA-PSS"),
    ("rsassa-pss-sha512", lambda: cases.signed_csr(RSA_KEY, algorithm=hashes.SHA512(), pss=True), "oauth2",
     "RSASSA-PSS"),
    ("sha384-rsa", lambda: cases.signed_csr(RSA_KEY, algorithm=hashes.SHA384()), "oauth1", "sha384WithRSAEncryption"),
    ("sha224-rsa", lambda: cases.signed_csr(RSA_KEY, algorithm=hashes.SHA224()), "mtls_production",
     "sha224WithRSAEncryption"),
    ("ecdsa-sha384", lambda: cases.signed_csr(EC_KEY, algorithm=hashes.SHA384()), "oauth2", "ecdsa-with-SHA384"),
    ("ecdsa-sha224", lambda: cases.signed_csr(EC_KEY, algorithm=hashes.SHA224()), "oauth2", "ecdsa-with-SHA224"),
    ("ed25519", lambda: cases.signed_csr(ed25519.Ed25519PrivateKey.generate()), "oauth2", "Ed25519"),
]


@pytest.mark.parametrize("case_id, make, profile, label", REFUSED_ALGORITHMS, ids=[c[0] for c in REFUSED_ALGORITHMS])
def test_signature_algorithm_off_mastercards_list_is_refused(case_id, make, profile, label):
    csr = crypto.load_csr(make().encode("ascii"))
    with pytest.raises(CryptoError) as refused:
        crypto.check_csr_for_profile(csr, profile)
    message = str(refused.value)
    assert "signed with %s, which Mastercard does not take" % label in message, (case_id, message)
    assert "sha256WithRSAEncryption" in message and "openssl req" in message


ACCEPTED_ALGORITHMS = [
    ("sha256-rsa", lambda: cases.signed_csr(RSA_KEY, algorithm=hashes.SHA256()), "oauth1"),
    ("sha512-rsa", lambda: cases.signed_csr(RSA_KEY, algorithm=hashes.SHA512()), "oauth1"),
    ("ecdsa-sha256", lambda: cases.signed_csr(EC_KEY, algorithm=hashes.SHA256()), "oauth2"),
    ("ecdsa-sha512", lambda: cases.signed_csr(EC_KEY, algorithm=hashes.SHA512()), "oauth2"),
]


@pytest.mark.parametrize("case_id, make, profile", ACCEPTED_ALGORITHMS, ids=[c[0] for c in ACCEPTED_ALGORITHMS])
def test_listed_algorithms_pass_without_warning(case_id, make, profile):
    assert crypto.check_csr_for_profile(crypto.load_csr(make().encode("ascii")), profile) == [], case_id


@pytest.mark.parametrize("key, profile, label", [(RSA_KEY, "oauth1", "sha1WithRSAEncryption"),
                                                 (EC_KEY, "oauth2", "ecdsa-with-SHA1")], ids=["rsa", "ecdsa"])
def test_sha1_csr_with_a_valid_signature_is_taken_with_a_true_warning(key, profile, label):
    text = cases.openssl_csr(key, "sha1")
    assert cases.openssl_verifies(text)  # the independent verdict: the signature holds
    csr = crypto.load_csr(text.encode("ascii"))
    assert crypto.csr_signature_valid(csr)
    warnings = crypto.check_csr_for_profile(csr, profile)
    assert len(warnings) == 1 and label in warnings[0] and "weak hash" in warnings[0]
    assert "does not verify" not in warnings[0]


def test_sha1_csr_with_a_broken_signature_is_refused_as_such():
    import base64  # pylint: disable=import-outside-toplevel
    text = cases.openssl_csr(RSA_KEY, "sha1")
    der = bytearray(base64.b64decode("".join(text.strip().splitlines()[1:-1])))
    der[-3] ^= 0x01
    broken = cases.pem(bytes(der))
    assert not cases.openssl_verifies(broken)
    with pytest.raises(CryptoError, match="signature does not verify against its own public key"):
        crypto.check_csr_for_profile(crypto.load_csr(broken.encode("ascii")), "oauth1")


# --- client use and chains ------------------------------------------------

CA_KEY = ec.generate_private_key(ec.SECP256R1())
CA = cases.certificate(CA_KEY, "Test Issuing CA", ca=True, days=1000)


@pytest.mark.parametrize("case_id, options, expect", cases.UNFIT_FOR_CLIENT, ids=[c[0] for c in cases.UNFIT_FOR_CLIENT])
def test_certificate_not_for_client_auth_is_named(case_id, options, expect):
    cert = cases.certificate(EC_KEY, "client-1", issuer_key=CA_KEY, issuer_name=CA.subject, **options)
    problems = crypto.client_use_problems(cert)
    assert len(problems) == 1 and expect in problems[0], (case_id, problems)


@pytest.mark.parametrize("case_id, options", cases.FIT_FOR_CLIENT, ids=[c[0] for c in cases.FIT_FOR_CLIENT])
def test_certificate_for_client_auth_passes(case_id, options):
    cert = cases.certificate(EC_KEY, "client-1", issuer_key=CA_KEY, issuer_name=CA.subject, **options)
    assert crypto.client_use_problems(cert) == [], case_id


def test_chain_order_and_trust():
    leaf, mid, root, _key = cases.chain_of_three()
    assert crypto.chain_problem([leaf]) is None
    assert crypto.chain_problem([leaf, mid, root]) is None
    assert crypto.chain_problem([leaf, mid], trusted=[root]) is None
    assert crypto.chain_problem([leaf, mid, root], trusted=[root]) is None
    reversed_order = crypto.chain_problem([leaf, root, mid])
    assert "certificate 1 (CN=1700000000-Client-MTF-000000) is not issued by certificate 2 (CN=Test Root CA)" \
        in reversed_order and "client certificate first" in reversed_order
    skipped = crypto.chain_problem([leaf, root])
    assert "is not issued by certificate 2" in skipped
    other_root = cases.certificate(ec.generate_private_key(ec.SECP256R1()), "Other Root", ca=True)
    untrusted = crypto.chain_problem([leaf, mid, root], trusted=[other_root])
    assert "certificate 3 (CN=Test Root CA)" in untrusted and "none of the CAs given as trusted" in untrusted
    assert "self-signed" in crypto.chain_problem([cases.certificate(RSA_KEY, "me")])


def test_validity_problem():
    assert "expired on" in crypto.validity_problem(cases.certificate(RSA_KEY, "old", days=-1, start_days=-10))
    assert "is not valid before" in crypto.validity_problem(cases.certificate(RSA_KEY, "new", days=30, start_days=2))
    assert crypto.validity_problem(cases.certificate(RSA_KEY, "now")) is None


# --- length limits, for every Mastercard profile --------------------------

@pytest.mark.parametrize("profile, key", [("oauth1", RSA_KEY), ("oauth2", EC_KEY), ("mtls_production", RSA_KEY),
                                          ("mtls_sandbox", RSA_KEY)])
@pytest.mark.parametrize("attribute", ["CN", "O", "OU"])
def test_attribute_over_64_characters_is_refused_locally(profile, key, attribute):
    cn = "1700000000-Client-MTF-000000"
    subject = {"CN": cn, attribute: "x" * 65} if attribute != "CN" else {"CN": "x" * 65}
    with pytest.raises(CryptoError, match="65 characters; Mastercard allows at most 64"):
        crypto.check_profile(profile, key, subject)
    with pytest.raises(CryptoError, match="the CSR's %s is 65 characters" % attribute):
        crypto.check_profile(profile, key, subject, from_csr=True)


def test_url_as_cn_is_refused_for_oauth_profiles_too():
    for profile in ("oauth1", "oauth2"):
        with pytest.raises(CryptoError, match="looks like a URL"):
            crypto.check_profile(profile, RSA_KEY, {"CN": "https://api.example.com"})


# --- messages a person can act on -----------------------------------------

def test_messages_name_algorithms_and_fixes_not_classes_or_options_of_other_methods():
    ed_key = ed25519.Ed25519PrivateKey.generate()
    with pytest.raises(CryptoError) as refused:
        crypto.check_key_strength(ed_key)
    assert "an Ed25519 key" in str(refused.value) and "PublicKey" not in str(refused.value)
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    reason = crypto.key_spec_difference(weak, "rsa", 2048)
    assert "at least 2048 bits" in reason and "but size" not in reason
    no_cn = cases.pem(cases.csr_der(RSA_KEY, cases.name(("O", cases.UTF8, b"Payments"))))
    with pytest.raises(CryptoError) as refused:
        crypto.check_csr_for_profile(crypto.load_csr(no_cn.encode("ascii")), "oauth1")
    assert "make a new CSR whose subject has a CN" in str(refused.value)
    assert "common_name" not in str(refused.value) and "subject.CN" not in str(refused.value)
    ec_csr = crypto.load_csr(cases.signed_csr(EC_KEY, algorithm=hashes.SHA256()).encode("ascii"))
    with pytest.raises(CryptoError, match="make the CSR from an RSA key$"):
        crypto.check_csr_for_profile(ec_csr, "oauth1")


def test_legacy_pkcs12_without_the_legacy_provider_names_the_algorithm(tmp_path):
    """A keytool / `openssl pkcs12 -legacy` export (RC2-40 + 3DES) where OpenSSL's legacy provider is off."""
    import os  # pylint: disable=import-outside-toplevel
    import subprocess  # pylint: disable=import-outside-toplevel
    import sys  # pylint: disable=import-outside-toplevel
    for args in (["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-subj",
                  "/CN=legacy", "-days", "30"],
                 ["pkcs12", "-export", "-legacy", "-inkey", "k.pem", "-in", "c.pem", "-out", "old.p12", "-passout",
                  "pass:keystorepassword", "-name", "keyalias"]):
        subprocess.run(["openssl"] + args, cwd=str(tmp_path), check=True, capture_output=True)
    probe = ("import sys; from ansible_collections.mcdev.credentials.plugins.module_utils import crypto\n"
             "data = open(sys.argv[1], 'rb').read()\n"
             "try:\n    crypto.read_key_container(data, sys.argv[2], 'src_path old.p12', 'src_passphrase')\n"
             "    print('OPENED')\nexcept crypto.CryptoError as exc:\n    print(exc)\n")
    path = os.pathsep.join(p for p in sys.path if p)

    def run(password, **env):
        done = subprocess.run([sys.executable, "-c", probe, str(tmp_path / "old.p12"), password], capture_output=True,
                              text=True, check=True, env=dict(os.environ, PYTHONPATH=path, **env))
        return done.stdout.strip()

    assert run("keystorepassword") == "OPENED"  # with the legacy provider, as on most hosts
    without = run("keystorepassword", CRYPTOGRAPHY_OPENSSL_NO_LEGACY="1")
    assert "RC2-40" in without and "legacy provider" in without and "Re-export" in without, without
    assert "src_passphrase is wrong" not in without
    assert "src_passphrase is wrong" in run("not-the-password")
