"""The README's first use runs as written: its yaml blocks, in order, with ansible-playbook.

Only what a user supplies is supplied here: the inventory (host `app`, local), the vault
variables, `mc_dir` pointed at a scratch folder (an extra var, so the blocks stay as written), and
step 2, Mastercard issuing the certificate, done by the openssl CLI with a test CA. The openssl
CLI then reads the keystore, as an independent check; a second run must change nothing.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PLAYBOOK = shutil.which("ansible-playbook") or os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
KEY_PASSPHRASE = "readme-key-passphrase"
KEYSTORE_PASSWORD = "readme-keystore-password"


def readme_blocks():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as handle:
        text = handle.read()
    return re.findall(r"```yaml\n(.*?)```", text, re.S)


def play(path, tmp_path, mc_dir):
    env = dict(os.environ, ANSIBLE_STDOUT_CALLBACK="default", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_NOCOLOR="1")
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.path.abspath(os.path.join(ROOT, "..", "..", "..")))
    # The host "with Python 3.11+ and cryptography" of the README: this interpreter.
    extra = {"mc_dir": mc_dir, "vault_key_passphrase": KEY_PASSPHRASE, "vault_keystore_password": KEYSTORE_PASSWORD,
             "ansible_python_interpreter": sys.executable}
    done = subprocess.run([PLAYBOOK, "-i", "app,", "-c", "local", "-e", json.dumps(extra), path],
                          capture_output=True, text=True, cwd=str(tmp_path), env=env, check=False, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    recap = re.search(r"^app\s+: ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", done.stdout, re.M)
    assert recap, done.stdout[-2000:]
    return {"ok": int(recap.group(1)), "changed": int(recap.group(2)), "failures": int(recap.group(4))}


def openssl(*argv, cwd):
    done = subprocess.run(["openssl"] + list(argv), capture_output=True, text=True, cwd=cwd, check=False)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_readme_first_use_runs_as_written(tmp_path):
    blocks = readme_blocks()
    assert len(blocks) >= 2, "the README lost its first-use blocks"
    mc_dir = str(tmp_path / "etc" / "mcdev" / "payments")  # its parents do not exist: the file task makes them
    paths = []
    for index, block in enumerate(blocks[:2]):
        path = tmp_path / ("readme-%d.yml" % index)
        path.write_text(block)
        paths.append(str(path))

    first = play(paths[0], tmp_path, mc_dir)
    assert first["changed"] == 2 and first["failures"] == 0
    assert oct(os.stat(mc_dir).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(mc_dir, "key.pem")).st_mode & 0o777) == "0o600"

    # Step 2, as Mastercard would: a CA signs the CSR; the certificate is saved as cert.pem.
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.pem", "-subj",
            "/CN=Test Mastercard CA", "-days", "30", cwd=str(tmp_path))
    openssl("x509", "-req", "-in", os.path.join(mc_dir, "request.csr"), "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-days", "30", "-out", os.path.join(mc_dir, "cert.pem"), cwd=str(tmp_path))

    second = play(paths[1], tmp_path, mc_dir)
    assert second["changed"] == 1 and second["failures"] == 0
    listing = openssl("pkcs12", "-in", os.path.join(mc_dir, "key.p12"), "-nokeys", "-passin",
                      "pass:" + KEYSTORE_PASSWORD, cwd=str(tmp_path))
    assert "friendlyName: keyalias" in listing and "subject=CN=payments-1682563200" in listing.replace(" = ", "=")

    # Scheduled again: nothing changes, the key-only friendly name included.
    assert play(paths[0], tmp_path, mc_dir)["changed"] == 0
    assert play(paths[1], tmp_path, mc_dir)["changed"] == 0


def test_expiry_report_role_reports_certificate_files(tmp_path):
    """The local scan as a first-class input of the expiry_report role: no project, no API, real files."""
    certs = tmp_path / "kmp"
    certs.mkdir()
    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(tmp_path / "k.pem"), "-out",
            str(certs / "partner-mtls.pem"), "-subj", "/CN=1700000000-Client-MTF-123456", "-days", "12",
            cwd=str(tmp_path))
    openssl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
            str(tmp_path / "k2.pem"), "-out", str(certs / "gateway.crt"), "-subj", "/CN=gateway", "-days", "200",
            cwd=str(tmp_path))
    playbook = tmp_path / "report.yml"
    playbook.write_text(
        "- hosts: app\n  gather_facts: false\n  roles:\n    - role: mcdev.credentials.expiry_report\n"
        "      vars:\n        mc_expiry_report_paths: [%s]\n        mc_expiry_report_dest_dir: %s\n"
        % (json.dumps(str(certs)), json.dumps(str(tmp_path / "out"))))
    stats = play(str(playbook), tmp_path, str(tmp_path / "unused"))
    assert stats["failures"] == 0
    with open(tmp_path / "out" / "expiry-report.json", encoding="utf-8") as handle:
        document = json.load(handle)
    rows = {row["alias"]: row for row in document["credentials"]}
    assert set(rows) == {"partner-mtls.pem", "gateway.crt"}
    assert rows["partner-mtls.pem"]["band"] == 15 and rows["partner-mtls.pem"]["days_left"] in (11, 12)
    assert rows["gateway.crt"]["band"] is None and document["summary"]["15"] == 1 and document["summary"]["ok"] == 1
    page = (tmp_path / "out" / "expiry-report.html").read_text()
    assert 'data-alias="partner-mtls.pem"' in page and "None" not in page
