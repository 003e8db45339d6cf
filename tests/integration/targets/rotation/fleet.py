"""A fleet of test hosts (local folders and, as root, SSH hosts in network namespaces) around the emulator.

Used by test_rotation.py (this target) and by the molecule scenario. Everything is real: the emulator
over HTTPS, ansible-playbook subprocesses, sshd in namespaces.
"""

import datetime
import json
import os
import shutil
import subprocess
import sys
import time

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))


def _collection_root():
    """The whole collection tree: this file's own, or (when ansible-test runs the target from a
    partial copy under tests/output/.tmp) the collection on ANSIBLE_COLLECTIONS_PATH."""
    own = os.path.abspath(os.path.join(HERE, "..", "..", "..", ".."))
    candidates = [own] + [os.path.join(path, "ansible_collections", "mcdev", "credentials")
                          for path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep) if path]
    for candidate in candidates:
        if os.path.isdir(os.path.join(candidate, "playbooks")) and os.path.isdir(os.path.join(candidate, "tests", "emulator")):
            return candidate
    raise RuntimeError("cannot find the mcdev.credentials collection (with playbooks/ and tests/emulator/) "
                       "next to %s or on ANSIBLE_COLLECTIONS_PATH" % HERE)


ROOT = _collection_root()
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(ROOT)))
if os.path.basename(os.path.dirname(os.path.dirname(ROOT))) == "ansible_collections" and _PARENT not in sys.path:
    sys.path.insert(0, _PARENT)

for _path in os.environ.get("ANSIBLE_COLLECTIONS_PATH", "").split(os.pathsep):
    if _path and os.path.isdir(os.path.join(_path, "ansible_collections")) and _path not in sys.path:
        sys.path.append(_path)

from tests.emulator.harness import Emulator  # noqa: E402,F401  pylint: disable=wrong-import-position,unused-import

PLAYBOOKS = os.path.join(ROOT, "playbooks")
NETNS_SCRIPT = os.path.join(ROOT, "tests", "tools", "netns_hosts.sh")
RELAY = os.path.join(ROOT, "tests", "tools", "tcp_relay.py")
KEYSTORE_PASSWORD = "fleet-keystore-pass"
RELOAD_SCRIPT = """#!/bin/sh
# Test application reload: refuses while <base>/break-reload exists, else logs the credential it loaded.
base=$1
if [ -e "$base/break-reload" ]; then
  echo "reload refused: $base/break-reload exists" >&2
  exit 3
fi
echo "$(readlink "$base/$2/current")" >> "$base/reloads.log"
"""


def netns_available():
    """Root, iproute2, and no other run's namespace hosts up (netns_hosts.sh's 10.231.<i>.0/24 are fixed)."""
    if os.geteuid() != 0 or shutil.which("ip") is None or os.environ.get("MC_TEST_NO_NETNS") == "1":
        return False
    routes = subprocess.run(["ip", "-4", "route"], capture_output=True, text=True, check=False).stdout
    return "10.231." not in routes


def iso(epoch):
    return datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class Fleet(object):
    """One emulator account + project, N hosts, and the variables the rotation role needs."""

    def __init__(self, work, emulator, kind="oauth1", local_hosts=3, netns_hosts=0, name="app-cred"):
        self.work = str(work)
        self.emulator = emulator
        self.kind = kind
        self.name = name
        os.makedirs(self.work, exist_ok=True)
        self.account = emulator.new_account()
        auth_model = "MTLS" if kind == "mtls" else "OAUTH10A"
        self.project = emulator.new_project(self.account["account_id"], auth_model=auth_model,
                                            oauth2_enabled=(kind == "oauth2"))
        self.signing_key_path = os.path.join(self.work, "devapi-signing-key.pem")
        with open(os.open(self.signing_key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(self.account["signing_key_pem"])
        self.reload_script = os.path.join(self.work, "reload.sh")
        with open(self.reload_script, "w", encoding="ascii") as handle:
            handle.write(RELOAD_SCRIPT)
        os.chmod(self.reload_script, 0o755)
        self.hosts = {}
        for i in range(1, local_hosts + 1):
            host = "local%d" % i
            self.hosts[host] = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
        self.netns = []
        self.relays = []
        if netns_hosts:
            self._start_netns(netns_hosts)
        for host, hostvars in self.hosts.items():
            base = os.path.join(self.work, "hosts", host)
            os.makedirs(base, exist_ok=True)
            hostvars["mc_rotation_base_dir"] = base
        self.inventory = os.path.join(self.work, "inventory.yml")
        self.write_inventory()
        self.state_dir = os.path.join(self.work, "controller-state")

    def write_inventory(self):
        with open(self.inventory, "w", encoding="utf-8") as handle:
            yaml.safe_dump({"all": {"children": {"mc_rotation_hosts": {"hosts": self.hosts}}}}, handle)

    def add_unreachable_host(self, host="ghost"):
        """An in-scope host nobody can reach (SSH to a closed loopback port)."""
        self.hosts[host] = {"ansible_host": "127.0.0.1", "ansible_port": 9, "ansible_connection": "ssh",
                            "ansible_ssh_common_args": "-o ConnectTimeout=3 -o StrictHostKeyChecking=no",
                            "ansible_python_interpreter": sys.executable,
                            "mc_rotation_base_dir": os.path.join(self.work, "hosts", host)}
        self.write_inventory()

    def remove_host(self, host):
        self.hosts.pop(host)
        self.write_inventory()

    # ---- namespace hosts ------------------------------------------------------------------
    def _start_netns(self, count):
        nsdir = os.path.join(self.work, "netns")
        env = dict(os.environ, PYTHON_FOR_HOSTS=sys.executable)
        subprocess.run(["bash", NETNS_SCRIPT, "up", str(count), nsdir], check=True, env=env,
                       stdout=subprocess.DEVNULL)
        self.netns_dir = nsdir
        with open(os.path.join(nsdir, "inventory.yml"), encoding="utf-8") as handle:
            hosts = yaml.safe_load(handle)["netns_hosts"]["hosts"]
        info = self.emulator.info
        ports = [info["port"], info["mtls_port"]]
        for index, (host, hostvars) in enumerate(sorted(hosts.items()), start=1):
            gateway = "10.231.%d.1" % index
            namespace = "%s%d" % (os.environ.get("NETNS_PREFIX", "mcns"), index)
            # controller side: <gateway>:port -> 127.0.0.1:port; host side: 127.0.0.1:port -> <gateway>:port,
            # so the host reaches the loopback-only emulator under the name its certificate carries.
            self.relays.append(subprocess.Popen(  # pylint: disable=consider-using-with
                [sys.executable, RELAY, gateway, "127.0.0.1"] + [str(p) for p in ports],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.relays.append(subprocess.Popen(  # pylint: disable=consider-using-with
                ["ip", "netns", "exec", namespace, sys.executable, RELAY, "127.0.0.1", gateway]
                + [str(p) for p in ports], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
            self.hosts[host] = hostvars
            self.netns.append(host)
        time.sleep(0.3)

    def close(self):
        for relay in self.relays:
            relay.terminate()
        for relay in self.relays:
            try:
                relay.wait(5)
            except subprocess.TimeoutExpired:
                relay.kill()
        self.relays = []
        if self.netns:
            subprocess.run(["bash", NETNS_SCRIPT, "down", self.netns_dir], check=False,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            self.netns = []

    # ---- emulator helpers ---------------------------------------------------------------------
    def emulator_now(self):
        return self.emulator.admin("GET", "/clock")["now"]

    def move_clock(self, days):
        offset = self.emulator.admin("GET", "/clock")["offset_seconds"] + days * 86400
        self.emulator.admin("POST", "/clock", {"offset_seconds": offset})

    def seed(self, expires_in_days, alias=None):
        """An active credential that expires in N days (of the emulator's clock), with its private key."""
        now = self.emulator_now()
        body = {"notBefore": now - (395 - expires_in_days) * 86400, "expiryDate": now + expires_in_days * 86400,
                "alias": alias or self.name}
        if self.kind == "oauth2":
            body.update(type="SIGNING", oauthVersion="2.0")
        elif self.kind == "oauth1":
            body.update(type="SIGNING", oauthVersion="1.0a")
        else:
            body.update(type="MTLS")
        cred = self.emulator.admin("POST", "/projects/%s/credentials" % self.project["id"], body)
        key_path = os.path.join(self.work, "seed-%s.key.pem" % cred["id"])
        with open(os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
            handle.write(cred.pop("private_key_pem"))
        cred["key_path"] = key_path
        return cred

    def credentials(self):
        """The project's credentials as the Developers API lists them (via the collection's client)."""
        from ansible_collections.mcdev.credentials.plugins.module_utils import devapi  # pylint: disable=import-outside-toplevel
        client = devapi.client_from_params({
            "api_url": self.emulator.info["api_url"], "consumer_key": self.account["consumer_key"],
            "signing_key_path": self.signing_key_path, "ca_path": self.emulator.info["ca_path"],
            "validate_certs": True})
        with client:
            return [c.to_dict() for c in client.list_credentials(self.project["id"])]

    def api_calls(self):
        """Developers API calls counted by the emulator (probes and admin excluded)."""
        counters = self.emulator.admin("GET", "/counters")
        total = 0
        for route, count in _flatten_counters(counters):
            if "/developers" in route or route.startswith("developers"):
                total += count
        return total

    def reset_counters(self):
        self.emulator.admin("POST", "/reset", {"scope": "counters"})

    # ---- running playbooks ---------------------------------------------------------------------
    def variables(self, **extra):
        info = self.emulator.info
        out = {
            "mc_rotation_project_id": self.project["id"],
            "mc_rotation_kind": self.kind,
            "mc_rotation_name": self.name,
            "mc_rotation_state_dir": self.state_dir,
            "mc_rotation_keystore_password": KEYSTORE_PASSWORD,
            "mc_rotation_api_url": info["api_url"],
            "mc_rotation_consumer_key": self.account["consumer_key"],
            "mc_rotation_signing_key_path": self.signing_key_path,
            "mc_rotation_api_ca_path": info["ca_path"],
            "mc_rotation_verify_ca_path": info["ca_path"],
            "mc_rotation_reload_command": "%s {{ mc_rotation_base_dir }} {{ mc_rotation_name }}" % self.reload_script,
            "mc_rotation_serial": [1, "100%"],
            "mc_rotation_now": iso(self.emulator_now()),
        }
        if self.kind == "mtls":
            out["mc_rotation_verify_url"] = info["mtls_ping_url"]
        elif self.kind == "oauth1":
            out["mc_rotation_verify_url"] = info["oauth1_ping_url"]
        else:
            out["mc_rotation_verify_url"] = info["oauth2_ping_url"]
            out["mc_rotation_verify_token_url"] = info["token_url"]
            out["mc_rotation_verify_issuer"] = info["issuer"]
        out.update(extra)
        return out

    def playbook(self, path, extra=None, check=True, limit=None):
        """Run ansible-playbook; returns a Result (rc, output, recap)."""
        varfile = os.path.join(self.work, "vars-%d.json" % int(time.time() * 1000))
        with open(varfile, "w", encoding="utf-8") as handle:
            json.dump(self.variables(**(extra or {})), handle)
        command = ["ansible-playbook", "-i", self.inventory, path, "-e", "@" + varfile]
        if limit:
            command += ["--limit", limit]
        env = dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1",
                   ANSIBLE_LOCALHOST_WARNING="False", ANSIBLE_INVENTORY_UNPARSED_WARNING="False",
                   ANSIBLE_FORKS="10", ANSIBLE_PIPELINING="True", ANSIBLE_DEPRECATION_WARNINGS="False",
                   ANSIBLE_RETRY_FILES_ENABLED="False")
        started = time.monotonic()
        proc = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        result = Result(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - started)
        with open(os.path.join(self.work, "ansible.log"), "a", encoding="utf-8") as log:
            log.write("$ %s\n%s\n" % (" ".join(command), result.output))
        if check and proc.returncode != 0:
            raise AssertionError("ansible-playbook %s failed (rc %d):\n%s" % (path, proc.returncode, result.output[-6000:]))
        return result

    def start_rotate(self, **extra):
        """rotate.yml in the background (its own process group, so a test can kill it like a crash)."""
        varfile = os.path.join(self.work, "vars-bg-%d.json" % int(time.time() * 1000))
        with open(varfile, "w", encoding="utf-8") as handle:
            json.dump(self.variables(**extra), handle)
        log = open(os.path.join(self.work, "ansible-bg.log"), "a", encoding="utf-8")  # pylint: disable=consider-using-with
        return subprocess.Popen(  # pylint: disable=consider-using-with
            ["ansible-playbook", "-i", self.inventory, os.path.join(PLAYBOOKS, "rotate.yml"), "-e", "@" + varfile],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            env=dict(os.environ, ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1", ANSIBLE_FORKS="10"))

    def rotate(self, **extra):
        return self.playbook(os.path.join(PLAYBOOKS, "rotate.yml"), extra, check=extra.pop("_check", True)
                             if "_check" in extra else True)

    def bootstrap(self, cred):
        """Put an existing credential on every host (as the fleet runs today), verified."""
        return self.playbook(os.path.join(HERE, "bootstrap.yml"), {
            "fleet_credential": {k: v for k, v in cred.items() if k != "key_path"},
            "fleet_key_path": cred["key_path"]})

    def probe(self):
        """Every host: what `current` points at, and whether that credential works from the host (mc_verify)."""
        outdir = os.path.join(self.work, "probe")
        shutil.rmtree(outdir, ignore_errors=True)
        os.makedirs(outdir)
        self.playbook(os.path.join(HERE, "probe.yml"), {"probe_dir": outdir})
        out = {}
        for host in self.hosts:
            with open(os.path.join(outdir, host + ".json"), encoding="utf-8") as handle:
                out[host] = json.load(handle)
        return out

    def ledger(self):
        """The controller's ledger of this fleet's credential (one lineage)."""
        import glob  # pylint: disable=import-outside-toplevel
        paths = glob.glob(os.path.join(self.state_dir, "*", "ledger.json"))
        if not paths:
            return {}
        with open(paths[0], encoding="utf-8") as handle:
            return json.load(handle)

    def host_root(self, host):
        return os.path.join(self.hosts[host]["mc_rotation_base_dir"], self.name)

    def reloads(self, host):
        try:
            with open(os.path.join(self.hosts[host]["mc_rotation_base_dir"], "reloads.log"), encoding="ascii") as handle:
                return [line.strip() for line in handle if line.strip()]
        except FileNotFoundError:
            return []


def _flatten_counters(counters, prefix=""):
    if isinstance(counters, dict):
        for key, value in counters.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                yield (prefix + " " + key).strip(), value
            else:
                yield from _flatten_counters(value, (prefix + " " + key).strip())
    elif isinstance(counters, list):
        for entry in counters:
            if isinstance(entry, dict) and "count" in entry:
                yield " ".join(str(entry.get(k, "")) for k in ("method", "route", "path")), entry["count"]


class Result(object):
    def __init__(self, rc, output, seconds):
        self.rc = rc
        self.output = output
        self.seconds = seconds

    def recap(self):
        """{host: {ok, changed, unreachable, failed, ...}} from the PLAY RECAP."""
        out = {}
        seen = False
        for line in self.output.splitlines():
            if line.startswith("PLAY RECAP"):
                seen = True
                continue
            if seen and ":" in line and "ok=" in line:
                host, _unused, rest = line.partition(":")
                out[host.strip()] = dict((k, int(v)) for k, v in (item.split("=") for item in rest.split()))
        return out

    def contacted(self):
        """Hosts other than localhost that appear in the recap."""
        return sorted(h for h in self.recap() if h != "localhost")
