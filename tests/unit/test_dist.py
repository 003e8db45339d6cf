"""`make dist`'s tarball: nothing a run leaves in the checkout goes in (every .gitignore pattern is in
galaxy.yml's build_ignore), and the installed copy works on its own: ansible-doc and a playbook run from it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile

import yaml

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BIN = os.path.dirname(sys.executable)


def tool(name):
    return os.path.join(BIN, name) if os.path.exists(os.path.join(BIN, name)) else shutil.which(name)


def litter_for(pattern):
    """A path that the .gitignore pattern ignores, as a run would leave it."""
    name = pattern.strip("/")
    if name.startswith("*"):
        return "plugins/module_utils/left-behind" + name[1:]
    return name + "/left-behind.json"


def run(argv, env, cwd):
    done = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, check=False, timeout=300)
    assert done.returncode == 0, (argv, done.stdout[-2000:], done.stderr[-2000:])
    return done.stdout


def test_the_tarball_leaves_out_what_git_ignores_and_installs_a_working_collection(tmp_path):
    with open(os.path.join(ROOT, ".gitignore"), encoding="utf-8") as handle:
        patterns = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as handle:
        build_ignore = yaml.safe_load(handle)["build_ignore"]
    source = tmp_path / "checkout"
    shutil.copytree(ROOT, source, ignore=shutil.ignore_patterns(".git", "tests/output"))
    litter = [litter_for(pattern) for pattern in patterns] + ["run/rotation/ledger.json", "emulator.sqlite"]
    for path in litter:
        (source / path).parent.mkdir(parents=True, exist_ok=True)
        (source / path).write_text("{}")
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_PATH=str(tmp_path / "installed"))

    run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(tmp_path / "dist"), str(source)], env,
        str(tmp_path))
    tarball = tmp_path / "dist" / "mcdev-credentials-0.1.0.tar.gz"
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    leaked = sorted(path for path in litter if path in names)
    assert not leaked, "these reached the tarball: %s (build_ignore: %s)" % (leaked, build_ignore)
    for needed in ("MANIFEST.json", "plugins/modules/mc_csr.py", "plugins/module_utils/devapi_contract_data.py",
                   "roles/rotation/tasks/main.yml", "playbooks/rotate.yml", "meta/runtime.yml"):
        assert needed in names, needed
    assert not any(name.startswith(("bench/", ".ci/", "tests/output/")) for name in names)

    run([tool("ansible-galaxy"), "collection", "install", "--offline", "-p", str(tmp_path / "installed"), str(tarball)],
        env, str(tmp_path))
    installed = tmp_path / "installed" / "ansible_collections" / "mcdev" / "credentials"
    doc = json.loads(run([tool("ansible-doc"), "--json", "mcdev.credentials.mc_csr"], env, str(tmp_path)))
    entry = doc["mcdev.credentials.mc_csr"]
    assert entry["doc"]["filename"].startswith(str(installed)), entry["doc"]["filename"]
    assert "renew_certificate_path" in entry["doc"]["options"]

    (tmp_path / "play.yml").write_text("""
- hosts: localhost
  gather_facts: false
  tasks:
    - mcdev.credentials.mc_csr:
        privatekey_path: "{{ out }}/key.pem"
        csr_path: "{{ out }}/req.csr"
        profile: mtls_sandbox
        common_name: 1682563200-Client-MTF-000000
""")
    extra = {"out": str(tmp_path), "ansible_python_interpreter": sys.executable}
    run([tool("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(extra), "play.yml"], env,
        str(tmp_path))
    subject = run(["openssl", "req", "-in", str(tmp_path / "req.csr"), "-noout", "-verify", "-subject"], env,
                  str(tmp_path))
    assert "CN = 1682563200-Client-MTF-000000" in subject or "CN=1682563200-Client-MTF-000000" in subject
    assert os.stat(tmp_path / "key.pem").st_mode & 0o777 == 0o600

    # The installed report playbook writes its report and notice state beside the rotation state, not into the
    # installed collection (replaced on every install, and per job in an execution environment).
    run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         str(tmp_path / "cert-key.pem"), "-out", str(tmp_path / "cert.pem"), "-subj", "/CN=kmp-1682563200",
         "-days", "20"], env, str(tmp_path))
    home = tmp_path / "home"
    home.mkdir()
    report_vars = {"mc_expiry_report_paths": [str(tmp_path / "cert.pem")], "ansible_python_interpreter": sys.executable}
    before = sorted(os.listdir(installed))
    run([tool("ansible-playbook"), "-i", "localhost,", "-c", "local", "-e", json.dumps(report_vars),
         str(installed / "playbooks" / "report.yml")], dict(env, HOME=str(home)), str(tmp_path))
    reports = home / ".local" / "share" / "mcdev-credentials" / "reports"
    assert (reports / "expiry-report.html").exists() and (reports / "expiry-report.json").exists()
    assert sorted(os.listdir(installed)) == before
    assert not os.path.exists(installed / "playbooks" / "reports")
