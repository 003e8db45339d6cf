"""Shared pieces of the reliability suites: ansible runs, a fleet of hosts, probes, tree snapshots, secret scans.

Everything here drives the collection from the outside (ansible-playbook / ansible ad-hoc, the emulator's
admin API, Mastercard's own signer libraries for the probes), so a suite checks the product, not itself.
"""
import base64
import datetime
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import requests
import yaml
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.serialization import pkcs12

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION_ROOT = os.path.dirname(os.path.dirname(HERE))
COLLECTIONS_PATH = os.path.dirname(os.path.dirname(os.path.dirname(COLLECTION_ROOT)))
CALLBACK_DIR = os.path.join(HERE, "callback_plugins")
NETNS_SCRIPT = os.path.join(COLLECTION_ROOT, "tests", "tools", "netns_hosts.sh")
UTC = datetime.timezone.utc
BIN = os.path.dirname(sys.executable)
LINEAGE = "rel"
KEYSTORE_PASSWORD = "rel-keystore-pw-7f3a"   # a value the R4 scan looks for
KEY_STORE_PASSWORD = "rel-keystore-ctl-91c2"  # controller key store password (scanned too)
FIGURES = os.environ.get("MC_RELIABILITY_FIGURES", os.path.join(COLLECTIONS_PATH, "reliability-figures.jsonl"))

# ---------------------------------------------------------------------------------------------------------
# figures


def record_figure(name, **values):
    """Append one measured figure (printed at the end of the session, collected into docs/reliability.md)."""
    values["figure"] = name
    values["at"] = datetime.datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(FIGURES, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(values, sort_keys=True) + "\n")


# ---------------------------------------------------------------------------------------------------------
# running ansible


class Run(object):
    """One finished ansible run: rc, output, and the task results the recorder callback wrote."""

    def __init__(self, command, rc, stdout, stderr, results_path, seconds):
        self.command = command
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr
        self.seconds = seconds
        self.events = []
        if results_path and os.path.exists(results_path):
            with open(results_path, encoding="utf-8") as handle:
                self.events = [json.loads(line) for line in handle if line.strip()]
        self.results = [e for e in self.events if e.get("event") == "result"]
        stats = [e for e in self.events if e.get("event") == "stats"]
        self.tasks = stats[-1]["tasks"] if stats else len([e for e in self.events if e.get("event") == "task"])

    @property
    def killed(self):
        return self.rc == -signal.SIGKILL

    def task(self, name_part, host=None):
        """Results of the tasks whose name contains name_part (optionally on one host)."""
        return [r for r in self.results if name_part in r["task"] and (host is None or r["host"] == host)]

    def text(self):
        return "$ %s\n--- rc %s in %.1f s\n%s\n%s" % (" ".join(self.command), self.rc, self.seconds,
                                                      self.stdout[-6000:], self.stderr[-3000:])


def control_path_dir(workdir):
    """A short folder for ssh's control sockets: a socket path must stay under 108 bytes, and pytest's
    folders under xdist (pytest-N/popen-gwK/test_crash_at_every_step_mtls_0/runs/cp/...) are longer."""
    path = os.path.join("/tmp", "mcrel-cp-" + hashlib.sha1(os.path.abspath(workdir).encode()).hexdigest()[:12])
    os.makedirs(path, mode=0o700, exist_ok=True)
    return path


def ansible_env(workdir, extra=None):
    """Environment of every ansible process the suites start: the build's collection, our callback, own temp."""
    env = dict(os.environ)
    tmp = os.path.join(workdir, "ansible-tmp")
    os.makedirs(tmp, exist_ok=True)
    os.chmod(tmp, 0o1777)
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": COLLECTIONS_PATH,
        "ANSIBLE_CALLBACK_PLUGINS": CALLBACK_DIR,
        "ANSIBLE_CALLBACKS_ENABLED": "reliability_recorder",
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_LOCAL_TEMP": tmp,
        "ANSIBLE_REMOTE_TEMP": tmp,
        "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_SSH_CONTROL_PATH_DIR": control_path_dir(workdir),
        "ANSIBLE_PIPELINING": "True",
        "ANSIBLE_INVENTORY_UNPARSED_WARNING": "False",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "PATH": BIN + os.pathsep + env.get("PATH", ""),
    })
    for name in [n for n in env if n.startswith("MC_DEVAPI_") or n.startswith("RELIABILITY_")]:
        del env[name]
    env.pop("ANSIBLE_LOG_PATH", None)
    env.update(extra or {})
    return env


UNPRIVILEGED_VENV = os.environ.get("MC_RELIABILITY_UNPRIVILEGED_VENV", "/tmp/mcrel-venv-unprivileged")


def unprivileged_venv():
    """A venv any user can execute (the test venv's python may live under root's 0700 home), with the same
    ansible-core and cryptography versions as this one. Built once (pip, ~20 s), then reused."""
    from importlib import metadata  # pylint: disable=import-outside-toplevel
    python = os.path.join(UNPRIVILEGED_VENV, "bin", "python")
    wanted = ["ansible-core==" + metadata.version("ansible-core"), "cryptography==" + metadata.version("cryptography"),
              "PyYAML"]
    marker = os.path.join(UNPRIVILEGED_VENV, ".mcrel-" + "-".join(w.replace("==", "_") for w in wanted[:2]))
    if not os.path.exists(marker):
        base = shutil.which("python3", path="/usr/bin:/usr/local/bin") or "/usr/bin/python3"
        subprocess.run([base, "-m", "venv", "--clear", UNPRIVILEGED_VENV], check=True, timeout=300)
        subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check"] + wanted,
                       check=True, timeout=600)
        with open(marker, "w", encoding="utf-8") as handle:
            handle.write("ok\n")
    return python


def unprivileged_collections(root):
    """A copy of the collection (without tests) under root, readable by any user."""
    target = os.path.join(root, "ansible_collections", "mcdev", "credentials")
    if not os.path.exists(target):
        shutil.copytree(COLLECTION_ROOT, target, ignore=shutil.ignore_patterns("tests", "__pycache__", "build"))
        for dirpath, dirnames, filenames in os.walk(root):
            os.chmod(dirpath, 0o755)
            for name in filenames:
                os.chmod(os.path.join(dirpath, name), 0o644)
            del dirnames[:0]
    return root


def run_ansible(command, workdir, extra_env=None, timeout=600, kill_at=None, results_name=None, user=None):
    """Run an ansible command in its own process group; return a Run.

    kill_at=k makes the recorder callback SIGKILL the whole process group right after the k-th task ended
    (every host of that task reported). The wall-clock timeout is a hard bound: the group is killed then.
    """
    os.makedirs(workdir, exist_ok=True)
    results_path = os.path.join(workdir, results_name or "results-%d.jsonl" % int(time.time() * 1000))
    extra = dict(extra_env or {})
    extra["RELIABILITY_RESULTS"] = results_path
    if kill_at is not None:
        extra["RELIABILITY_KILL_AFTER_TASK"] = str(kill_at)
    if user:
        os.chmod(workdir, 0o777)
        python = unprivileged_venv()
        extra.setdefault("HOME", workdir)
        extra["ANSIBLE_PYTHON_INTERPRETER"] = python
        extra["ANSIBLE_COLLECTIONS_PATH"] = unprivileged_collections(os.path.join(workdir, "collections"))
        extra["PATH"] = os.path.dirname(python) + os.pathsep + os.environ.get("PATH", "")
        command = [os.path.join(os.path.dirname(python), os.path.basename(command[0]))] + list(command[1:])
    env = ansible_env(workdir, extra)
    argv = list(command)
    if user:
        argv = ["setpriv", "--reuid", str(user), "--regid", str(user), "--clear-groups", "--"] + argv
    started = time.monotonic()
    proc = subprocess.Popen(argv, cwd=workdir, env=env, stdout=subprocess.PIPE,  # pylint: disable=consider-using-with
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        stderr += b"\n[harness] killed after the %s s timeout" % str(timeout).encode()
    # Workers of a killed run may linger for a moment; nothing of that run must survive into the next.
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return Run(argv, proc.returncode, stdout.decode("utf-8", "replace"), stderr.decode("utf-8", "replace"),
               results_path, time.monotonic() - started)


def playbook(path, inventory, workdir, extra_vars=None, verbosity=0, **kwargs):
    command = [os.path.join(BIN, "ansible-playbook"), "-i", inventory, path]
    os.makedirs(workdir, exist_ok=True)
    if extra_vars:
        vars_path = os.path.join(workdir, "extra-vars-%d.json" % int(time.time() * 1e6))
        with open(vars_path, "w", encoding="utf-8") as handle:
            json.dump(extra_vars, handle)
        command += ["-e", "@" + vars_path]
    if verbosity:
        command.append("-" + "v" * verbosity)
    return run_ansible(command, workdir, **kwargs)


# ---------------------------------------------------------------------------------------------------------
# files


def snapshot(root):
    """{relative path: (kind, mode, sha256 | link target)} of a tree, without following any symlink."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            info = os.lstat(full)
            rel = os.path.relpath(full, root)
            if stat.S_ISLNK(info.st_mode):
                out[rel] = ("link", stat.S_IMODE(info.st_mode), os.readlink(full))
            elif stat.S_ISDIR(info.st_mode):
                out[rel] = ("dir", stat.S_IMODE(info.st_mode), None)
            else:
                with open(full, "rb") as handle:
                    digest = hashlib.sha256(handle.read()).hexdigest()
                out[rel] = ("file", stat.S_IMODE(info.st_mode), digest)
    return out


def snapshot_diff(before, after):
    changes = []
    for rel in sorted(set(before) | set(after)):
        if before.get(rel) != after.get(rel):
            changes.append("%s: %s -> %s" % (rel, before.get(rel), after.get(rel)))
    return changes


def private_files(root):
    """Every private key / keystore file under root (by name and by content)."""
    found = []
    for dirpath, _dirnames, filenames in os.walk(root, followlinks=False):
        for name in filenames:
            full = os.path.join(dirpath, name)
            if os.path.islink(full):
                continue
            lower = name.lower()
            if lower.endswith((".p12", ".pfx", ".key", ".der")) or lower.startswith("key.") or "key.pem" in lower:
                found.append(full)
                continue
            try:
                with open(full, "rb") as handle:
                    head = handle.read(4096)
            except OSError:
                continue
            if b"PRIVATE KEY" in head:
                found.append(full)
    return found


# ---------------------------------------------------------------------------------------------------------
# emulator side


class Project(object):
    """An account + project on the emulator, with the connection files the modules need."""

    def __init__(self, emulator, workdir, kind, auth_model=None, account=None):
        self.emulator = emulator
        self.kind = kind
        self.workdir = workdir
        os.makedirs(workdir, exist_ok=True)
        self.account = account or emulator.new_account()
        model = auth_model or ("MTLS" if kind == "mtls" else "OAUTH10A")
        self.project = emulator.new_project(self.account["account_id"], model, kind == "oauth2")
        self.id = self.project["id"]
        self.signing_key_path = os.path.join(workdir, "devapi-signing-key.pem")
        with open(os.open(self.signing_key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w",
                  encoding="ascii") as handle:
            handle.write(self.account["signing_key_pem"])

    @property
    def connection(self):
        return {
            "api_url": self.emulator.info["api_url"],
            "consumer_key": self.account["consumer_key"],
            "signing_key_path": self.signing_key_path,
            "ca_path": self.emulator.info["ca_path"],
        }

    def credentials(self):
        """Every credential of the project, straight from the emulator's state (admin view)."""
        project = self.emulator.admin("GET", "/projects/%s" % self.id)
        if "credentials" in project:
            return project["credentials"]
        return self._list_signed()

    def _list_signed(self):
        # Mastercard's own signer, not our client.
        from oauth1.oauth import OAuth  # pylint: disable=import-outside-toplevel
        key = serialization.load_pem_private_key(self.account["signing_key_pem"].encode("ascii"), None)
        items, offset = [], 0
        session = requests.Session()
        session.trust_env = False
        for _page in range(50):
            url = "%s/projects/%s/credentials?offset=%d&limit=100" % (self.emulator.info["api_url"], self.id, offset)
            header = OAuth.get_authorization_header(url, "GET", None, self.account["consumer_key"], key)
            response = None
            for _attempt in range(20):  # the faults suite may be injecting errors into this route
                response = session.get(url, headers={"Authorization": header}, timeout=30,
                                       verify=self.emulator.info["ca_path"])
                if response.status_code == 200:
                    break
                header = OAuth.get_authorization_header(url, "GET", None, self.account["consumer_key"], key)
                time.sleep(0.05)
            assert response.status_code == 200, response.text
            body = response.json()
            items += body["items"]
            offset += len(body["items"])
            if not body["items"] or offset >= body["total"]:
                break
        return items

    def active(self, prefix=LINEAGE):
        return [c for c in self.credentials()
                if c["status"] == "ACTIVE" and (c.get("alias") == prefix or (c.get("alias") or "").startswith(prefix + "-"))]


# ---------------------------------------------------------------------------------------------------------
# the fleet


class Fleet(object):
    """Hosts with their own credential folders: local-connection hosts and (optionally) namespace SSH hosts."""

    def __init__(self, workdir, local_hosts=2, ssh_hosts=None):
        self.workdir = workdir
        self.hosts = {}
        os.makedirs(workdir, exist_ok=True)
        for index in range(1, local_hosts + 1):
            name = "local%d" % index
            self.hosts[name] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
                                "mc_rotation_base_dir": os.path.join(workdir, "hosts", name, "etc-mastercard")}
        for name, hostvars in (ssh_hosts or {}).items():
            base = os.path.join(workdir, "hosts", name, "etc-mastercard")
            self.hosts[name] = dict(hostvars, mc_rotation_base_dir=base)
        for hostvars in self.hosts.values():
            os.makedirs(hostvars["mc_rotation_base_dir"], exist_ok=True)
        self.inventory = os.path.join(workdir, "inventory.yml")
        with open(self.inventory, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"children": {"mc_rotation_hosts": {"hosts": self.hosts}},
                                    "hosts": {"localhost": {"ansible_connection": "local",
                                                            "ansible_python_interpreter": sys.executable}}}},
                           handle)

    def base(self, host):
        return self.hosts[host]["mc_rotation_base_dir"]


def rotation_vars(project, fleet, name, extra=None):
    """The role variables of one lineage on one project (connection, verify endpoints, state dir)."""
    info = project.emulator.info
    kind = project.kind
    out = {
        "mc_rotation_project_id": project.id,
        "mc_rotation_kind": kind,
        "mc_rotation_environment": "sandbox",
        "mc_rotation_name": name,
        "mc_rotation_alias_prefix": LINEAGE,
        "mc_rotation_state_dir": os.path.join(fleet.workdir, "controller-state"),
        "mc_rotation_keystore_password": KEYSTORE_PASSWORD,
        "mc_rotation_key_store_password": KEY_STORE_PASSWORD,
        "mc_rotation_serial": [1, "100%"],
        "mc_rotation_api_url": info["api_url"],
        "mc_rotation_consumer_key": project.account["consumer_key"],
        "mc_rotation_signing_key_path": project.signing_key_path,
        "mc_rotation_api_ca_path": info["ca_path"],
        "mc_rotation_verify_ca_path": info["ca_path"],
        "mc_rotation_verify_url": {"mtls": info.get("mtls_ping_url") or info["mtls_url"] + "/ping",
                                   "oauth1": info["oauth1_ping_url"], "oauth2": info["oauth2_ping_url"]}[kind],
        "mc_rotation_verify_token_url": info["token_url"],
        "mc_rotation_verify_issuer": info["issuer"],
        "mc_rotation_verify_timeout": 20,
        "mc_rotation_key_type": "ec" if kind == "oauth2" else "rsa",
    }
    if kind == "mtls":
        out["mc_rotation_subject"] = {"O": "Reliability"}
    out.update(extra or {})
    return out


ROTATE_PLAYBOOK = "mcdev.credentials.rotate"


def rotate(fleet, variables, workdir, **kwargs):
    return playbook(ROTATE_PLAYBOOK, fleet.inventory, workdir, extra_vars=variables, **kwargs)


# An AWX job of the rotation: the project's playbook imports the collection's.
RUNNER_PLAYBOOK = ("- name: The rotation, as the job template names it\n"
                   "  ansible.builtin.import_playbook: mcdev.credentials.rotate\n")


class RunnerJob(object):
    """One AWX job: ansible-runner in its own process and private data dir (inventory, env/extravars,
    env/envvars, project/), started now, waited for later."""

    def __init__(self, workdir, ident, fleet, variables, hosts=None):
        self.ident = ident
        self.data = os.path.join(workdir, ident)
        for folder in ("env", "inventory", "project"):
            os.makedirs(os.path.join(self.data, folder), exist_ok=True)
        hosts = sorted(fleet.hosts) if hosts is None else hosts
        inventory = {"all": {"hosts": {"localhost": {"ansible_connection": "local",
                                                     "ansible_python_interpreter": sys.executable}},
                             "children": {"mc_rotation_hosts": {"hosts": {h: fleet.hosts[h] for h in hosts}}}}}
        with open(os.path.join(self.data, "inventory", "hosts.json"), "w", encoding="utf-8") as handle:
            json.dump(inventory, handle)
        with open(os.path.join(self.data, "env", "extravars"), "w", encoding="utf-8") as handle:
            json.dump(variables, handle)
        env = ansible_env(self.data)
        with open(os.path.join(self.data, "env", "envvars"), "w", encoding="utf-8") as handle:
            json.dump({k: v for k, v in env.items() if k.startswith("ANSIBLE_")}, handle)
        with open(os.path.join(self.data, "project", "rotate.yml"), "w", encoding="utf-8") as handle:
            handle.write(RUNNER_PLAYBOOK)
        self.started = time.monotonic()
        self.process = subprocess.Popen(  # pylint: disable=consider-using-with
            [os.path.join(BIN, "ansible-runner"), "run", self.data, "-p", "rotate.yml", "--ident", ident],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
        self.rc = None
        self.seconds = None
        self.killed = False
        self.stderr = ""

    def kill(self):
        os.killpg(self.process.pid, signal.SIGKILL)
        self.killed = True

    def wait(self, timeout=900):
        _out, err = self.process.communicate(timeout=timeout)
        self.seconds = time.monotonic() - self.started
        self.rc = self.process.returncode
        self.stderr = err.decode("utf-8", "replace")
        return self

    def stdout(self):
        path = os.path.join(self.data, "artifacts", self.ident, "stdout")
        if not os.path.exists(path):
            return self.stderr
        with open(path, encoding="utf-8", errors="replace") as handle:
            return handle.read()

    def artifacts(self):
        """The folder AWX keeps of the job (artifacts/<id>/: command, stdout, job_events, status, ...)."""
        return os.path.join(self.data, "artifacts")

    def host_tasks(self):
        """Task results on the fleet's hosts (not localhost), from the job's events as AWX stores them."""
        folder = os.path.join(self.data, "artifacts", self.ident, "job_events")
        count = 0
        for name in os.listdir(folder) if os.path.isdir(folder) else ():
            with open(os.path.join(folder, name), encoding="utf-8") as handle:
                event = json.load(handle)
            if event.get("event") in ("runner_on_ok", "runner_on_failed") and \
                    event.get("event_data", {}).get("host") not in (None, "localhost"):
                count += 1
        return count


# ---------------------------------------------------------------------------------------------------------
# probes: does a host's deployed credential work? (Mastercard's own libraries, not our verify code)


def _load_bundle(version_dir):
    with open(os.path.join(version_dir, "key.p12"), "rb") as handle:
        key, cert, _chain = pkcs12.load_key_and_certificates(handle.read(), KEYSTORE_PASSWORD.encode())
    return key, cert


def probe_version(info, kind, version_dir, meta):
    """(ok, detail) of one live call with the files of one version folder."""
    key, cert = _load_bundle(version_dir)
    session = requests.Session()
    session.trust_env = False
    session.verify = info["ca_path"]
    if kind == "mtls":
        tmp = os.path.join(version_dir + ".probe")
        cert_path, key_path = tmp + "-cert.pem", tmp + "-key.pem"
        try:
            with open(cert_path, "wb") as handle:
                handle.write(cert.public_bytes(serialization.Encoding.PEM))
            with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as handle:
                handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
            response = session.get(info.get("mtls_ping_url") or info["mtls_url"] + "/ping",
                                   cert=(cert_path, key_path), timeout=20)
        except requests.RequestException as exc:
            return False, "mTLS probe: %s" % exc
        finally:
            for path in (cert_path, key_path):
                if os.path.exists(path):
                    os.unlink(path)
        return response.status_code == 200, "mTLS %s %s" % (response.status_code, response.text[:200])
    if kind == "oauth1":
        from oauth1.oauth import OAuth  # pylint: disable=import-outside-toplevel
        url = info["oauth1_ping_url"]
        consumer_key = meta.get("consumer_key") or meta.get("consumerKey")
        header = OAuth.get_authorization_header(url, "GET", None, consumer_key, key)
        response = session.get(url, headers={"Authorization": header}, timeout=20)
        return response.status_code == 200, "oauth1 %s %s" % (response.status_code, response.text[:200])
    # pylint: disable=import-outside-toplevel
    from mastercard_oauth2_client import (OAuth2Config, StaticDPoPKeyProvider, StaticScopeResolver,
                                          generate_ec_key_pair)
    from mastercard_oauth2_client.integrations.requests import OAuth2Session
    config = OAuth2Config(client_id=meta.get("client_id") or meta.get("clientId"), token_endpoint=info["token_url"],
                          issuer=info["issuer"], client_key=key, key_id=meta.get("kid"),
                          scope_resolver=StaticScopeResolver({"service:ping"}),
                          dpop_key_provider=StaticDPoPKeyProvider(generate_ec_key_pair()))
    oauth_session = OAuth2Session(config)
    oauth_session.trust_env = False
    oauth_session.verify = info["ca_path"]
    try:
        response = oauth_session.get(info["oauth2_ping_url"], timeout=20)
    except Exception as exc:  # pylint: disable=broad-except
        return False, "oauth2 token: %s" % exc
    return response.status_code == 200, "oauth2 %s %s" % (response.status_code, response.text[:200])


def host_state(base, name):
    """(current credential id, {id: meta}) of one host's credential folder, read without following links out."""
    folder = os.path.join(base, name)
    versions = {}
    vdir = os.path.join(folder, "versions")
    if os.path.isdir(vdir) and not os.path.islink(vdir):
        for entry in sorted(os.listdir(vdir)):
            meta_path = os.path.join(vdir, entry, "meta.json")
            if os.path.isfile(meta_path) and not os.path.islink(meta_path):
                with open(meta_path, encoding="utf-8") as handle:
                    versions[entry] = json.load(handle)
    link = os.path.join(folder, "current")
    current = None
    if os.path.islink(link):
        current = os.path.basename(os.readlink(link).rstrip("/"))
    return current, versions


class Invariant(object):
    """Checks of the rotation invariant from every host, with live probes."""

    def __init__(self, project, fleet, name):
        self.project = project
        self.fleet = fleet
        self.name = name
        self.probes = 0

    def check(self, require_verified=True):
        """List of violations (empty when the invariant holds).

        1. every host's `current` is a complete version whose files work in a live call (no outage);
        2. one ACTIVE credential is deployed and verified (meta.json verified_at) on every host.
        """
        problems = []
        remote = {c["id"]: c for c in self.project.credentials()}
        per_host = {}
        for host in self.fleet.hosts:
            current, versions = host_state(self.fleet.base(host), self.name)
            per_host[host] = versions
            if current is None or current not in versions:
                problems.append("%s: current -> %r is not a complete version" % (host, current))
                continue
            vdir = os.path.join(self.fleet.base(host), self.name, "versions", current)
            try:
                ok, detail = probe_version(self.project.emulator.info, self.project.kind, vdir,
                                           dict(versions[current], **_api_ids(remote.get(current, {}))))
            except (OSError, ValueError) as exc:
                ok, detail = False, "cannot load the deployed files: %s" % exc
            self.probes += 1
            if not ok:
                problems.append("%s: current %s does not work: %s" % (host, current, detail))
        witnesses = None
        for versions in per_host.values():
            good = {cid for cid, meta in versions.items()
                    if remote.get(cid, {}).get("status") == "ACTIVE"
                    and (meta.get("verified_at") or not require_verified)}
            witnesses = good if witnesses is None else witnesses & good
        if not witnesses:
            problems.append("no ACTIVE credential is deployed and verified on every host")
        return problems

    def settled(self, checked=None):
        """Violations of the end state: exactly one ACTIVE lineage credential, current and verified everywhere.

        checked: the result of a check() just made on the same state (saves probing every host twice)."""
        problems = list(self.check() if checked is None else checked)
        active = self.project.active()
        if len(active) != 1:
            problems.append("%d ACTIVE lineage credentials: %s" % (len(active), [c["id"] for c in active]))
            return problems
        only = active[0]["id"]
        for host in self.fleet.hosts:
            current, versions = host_state(self.fleet.base(host), self.name)
            if current != only:
                problems.append("%s: current is %s, the active credential is %s" % (host, current, only))
            elif not versions[current].get("verified_at"):
                problems.append("%s: %s is current but not verified" % (host, only))
        return problems


def _api_ids(record):
    return {"consumer_key": record.get("consumerKey"), "client_id": record.get("clientId"), "kid": record.get("kid")}


# ---------------------------------------------------------------------------------------------------------
# secret scanning (R4)


def rotation_private_keys(fleet, state_dirs, project=None, extra_pem_files=()):
    """Every private key a rotation touched: each version deployed on the fleet's hosts, each key in the
    controller key stores, the Developers API signing key of the project's account, and extra (path, password)."""
    keys = []
    for path in glob.glob(os.path.join(fleet.workdir, "hosts", "*", "*", "*", "versions", "*", "key.p12")):
        with open(path, "rb") as handle:
            key, _cert, _chain = pkcs12.load_key_and_certificates(handle.read(), KEYSTORE_PASSWORD.encode())
        keys.append(key)
    for state_dir in state_dirs:
        for path in glob.glob(os.path.join(state_dir, "**", "*.key.pem"), recursive=True):
            with open(path, "rb") as handle:
                keys.append(serialization.load_pem_private_key(handle.read(), KEY_STORE_PASSWORD.encode()))
    for path, password in extra_pem_files:
        with open(path, "rb") as handle:
            keys.append(serialization.load_pem_private_key(handle.read(), password))
    if project is not None:
        keys.append(serialization.load_pem_private_key(project.account["signing_key_pem"].encode(), None))
    return keys


def _secret_of(key):
    numbers = key.private_numbers()
    if hasattr(numbers, "d"):  # RSA: the private exponent
        secret = numbers.d
        return secret.to_bytes((secret.bit_length() + 7) // 8, "big")
    return numbers.private_value.to_bytes((key.curve.key_size + 7) // 8, "big")  # EC: the scalar


def secret_needles(private_keys=(), passwords=(), tokens=()):
    """{label: bytes} for every form a private key could leak in, taken from its private part only (a window
    of the public key would also match the certificate): the DER encodings (PKCS#8 and traditional) as
    base64, hex and raw bytes, and the private number itself; plus passwords and tokens."""
    needles = {}
    for index, key in enumerate(private_keys):
        secret = _secret_of(key)
        for label, fmt in (("pkcs8", serialization.PrivateFormat.PKCS8),
                           ("trad", serialization.PrivateFormat.TraditionalOpenSSL)):
            der = key.private_bytes(serialization.Encoding.DER, fmt, serialization.NoEncryption())
            where = der.find(secret)
            assert where >= 0, "the private number is not in the DER"
            start = where + (-where % 3)  # a 3-byte boundary: the same bytes are then one base64 run
            window = der[start:start + 18]
            assert start + 18 <= where + len(secret)
            b64 = base64.b64encode(der)
            needles["key%d-%s-b64" % (index, label)] = b64[start // 3 * 4:start // 3 * 4 + 24]
            needles["key%d-%s-hex" % (index, label)] = window.hex().encode()
            needles["key%d-%s-raw" % (index, label)] = window
        needles["key%d-secret-hex" % index] = secret[:18].hex().encode()
        needles["key%d-secret-b64url" % index] = base64.urlsafe_b64encode(secret[:18]).rstrip(b"=")
        needles["key%d-secret-b64" % index] = base64.b64encode(secret[:18])
    for index, password in enumerate(passwords):
        needles["password%d" % index] = password.encode()
    for index, token in enumerate(tokens):
        needles["token%d" % index] = token.encode()[:40]
    needles["pem-private-marker"] = b"PRIVATE KEY-----"
    return needles


JWT_PATTERN = re.compile(rb"eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}")


def scan_paths(paths, needles, skip=()):
    """[(file, label)] hits of the needles (and of JWT-shaped strings) in every file under paths."""
    hits = []
    files = []
    for path in paths:
        if os.path.isfile(path):
            files.append(path)
        for dirpath, _dirs, names in os.walk(path):
            files += [os.path.join(dirpath, n) for n in names]
    for path in sorted(set(files)):
        if os.path.islink(path) or any(path.startswith(s) for s in skip):
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        # PEM wraps base64 at 64 columns, and JSON/log lines escape the newlines: look in both forms.
        flat = data.replace(b"\\n", b"").replace(b"\r", b"").replace(b"\n", b"")
        for label, needle in needles.items():
            if needle and (needle in data or needle in flat):
                hits.append((path, label))
        for match in JWT_PATTERN.finditer(data):
            hits.append((path, "jwt:" + match.group(0)[:20].decode()))
    return hits


def tree_copy(src, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(src, dst, symlinks=True)
