# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""P2a, P2b, P4, P5: playbooks/rotate.yml against the emulator, compared with ping plays.

The fleet (emulator account + project, hosts, seeded credential, variables) is
the rotation integration target's ``Fleet`` (tests/integration/targets/rotation/fleet.py),
so the benchmark runs the role exactly as its tests do.
"""

import json
import os
import shutil
import subprocess
import sys

import benchlib
import profile_split
from benchlib import Goal, Side

FLEET_DIR = os.path.join(benchlib.COLLECTION_ROOT, "tests", "integration", "targets", "rotation")
ROTATE = os.path.join(benchlib.COLLECTION_ROOT, "playbooks", "rotate.yml")
ROLE_SERIAL = [1, "25%", "100%"]

PING_PLAY = """---
- name: Ansible floor, {tasks} ping task(s)
  hosts: mc_rotation_hosts
  gather_facts: false
  tasks:
{body}"""


def _fleet_module():
    for path in (benchlib.COLLECTION_ROOT, FLEET_DIR):
        if path not in sys.path:
            sys.path.insert(0, path)
    try:
        import fleet  # pylint: disable=import-outside-toplevel
        from tests.emulator.harness import Emulator  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise benchlib.BenchError("rotation fleet helper or emulator harness missing: %s" % exc) from exc
    return fleet, Emulator


def ping_play(path, tasks):
    body = "".join("    - name: Ping %d\n      ansible.builtin.ping:\n" % (index + 1) for index in range(tasks))
    return benchlib.write_text(path, PING_PLAY.format(tasks=tasks, body=body))


class RotationFleet:
    """An emulator, a fleet of hosts with the current credential deployed, and ways to run rotate.yml."""

    def __init__(self, ctx, label, local_hosts=0, netns_hosts=0, expires_in_days=300):
        self.ctx = ctx
        self.work = os.path.join(ctx.workdir, label)
        fleet_module, emulator_class = _fleet_module()
        # Fleet.playbook (used once, for the bootstrap) runs ansible-playbook from PATH with os.environ.
        os.environ.update({"ANSIBLE_COLLECTIONS_PATH": ctx.collections_path,
                           "ANSIBLE_CONFIG": os.path.join(ctx.workdir, "ansible.cfg")})
        os.environ["PATH"] = os.path.dirname(ctx.playbook) + os.pathsep + os.environ.get("PATH", "")
        os.environ.setdefault("NETNS_PREFIX", "mcbench")
        self.emulator = emulator_class.start(os.path.join(self.work, "emulator"))
        self.fleet = None
        try:
            self.fleet = fleet_module.Fleet(os.path.join(self.work, "fleet"), self.emulator, kind="oauth1",
                                            local_hosts=local_hosts, netns_hosts=netns_hosts)
            self.hosts = list(self.fleet.hosts)
            self.credential = self.fleet.seed(expires_in_days)
            self._bootstrap(fleet_module)
        except Exception:
            self.close()
            raise
        self.ping = {n: ping_play(os.path.join(self.work, "ping%d.yml" % n), n) for n in (1, 4)}

    def _bootstrap(self, fleet_module):
        """Deploy the seeded credential: through Ansible on one host (on each SSH host), then copied to the
        other local hosts, which share this machine's file system (a 200-host bootstrap would take minutes)."""
        local = [h for h in self.hosts if h not in self.fleet.netns]
        first = local[:1] + list(self.fleet.netns)
        self.fleet.playbook(os.path.join(fleet_module.HERE, "bootstrap.yml"), {
            "fleet_credential": {k: v for k, v in self.credential.items() if k != "key_path"},
            "fleet_key_path": self.credential["key_path"]}, limit=",".join(first))
        if local:
            source = self.fleet.host_root(local[0])
            for host in local[1:]:
                shutil.copytree(source, self.fleet.host_root(host), symlinks=True)

    def vars_file(self, name, **extra):
        variables = self.fleet.variables(**extra)
        if "mc_rotation_serial" not in extra:
            variables["mc_rotation_serial"] = ROLE_SERIAL
        path = os.path.join(self.work, name + ".json")
        benchlib.write_text(path, json.dumps(variables))
        return path

    def rotate_args(self, force, scheduled=False):
        extra = {"mc_rotation_force": bool(force), "mc_rotation_scheduled": bool(scheduled)}
        return ["-e", "@" + self.vars_file("vars-%s" % ("forced" if force else "idle"), **extra)]

    def rotate(self, force, label, env=None, scheduled=False, extra_args=()):
        args = self.rotate_args(force, scheduled) + list(extra_args)
        return benchlib.run_playbook(self.ctx, ROTATE, self.fleet.inventory, args, env=env, label=label)

    def run_ping(self, tasks, label, env=None, extra_args=()):
        return benchlib.run_playbook(self.ctx, self.ping[tasks], self.fleet.inventory, list(extra_args), env=env,
                                     label=label)

    def api_calls(self):
        """(Developers API calls, probe calls) counted by the emulator since the last reset."""
        counters = self.emulator.admin("GET", "/counters")
        api = sum(n for route, n in counters.items() if "/developers" in route)
        probes = sum(n for route, n in counters.items() if "/developers" not in route)
        return api, probes, counters

    def reset_counters(self):
        self.emulator.admin("POST", "/reset", {"scope": "counters"})

    def close(self):
        if self.fleet is not None:
            self.fleet.close()
        self.emulator.stop()


def hosts_changed(stdout, hosts):
    """How many fleet hosts reported a change (a rotation deploys on every host)."""
    count = 0
    for host in hosts:
        for line in (stdout or "").splitlines():
            if line.startswith(host + " ") and " changed=" in line and " changed=0 " not in line:
                count += 1
                break
    return count


def tasks_per_host(timer_json, fleet_hosts):
    """From a bench_timer file: tasks run and skipped on the controller and on a fleet host (median)."""
    with open(timer_json, encoding="utf-8") as handle:
        data = json.load(handle)
    counts = {}
    for task in data["tasks"]:
        for host, record in task["hosts"].items():
            bucket = counts.setdefault(host, {"run": 0, "skipped": 0})
            bucket["skipped" if record.get("status") == "skipped" else "run"] += 1
    fleet = [counts[h] for h in fleet_hosts if h in counts]
    return {
        "controller_tasks_run": counts.get("localhost", {}).get("run", 0),
        "controller_tasks_skipped": counts.get("localhost", {}).get("skipped", 0),
        "host_tasks_run_median": benchlib.median([c["run"] for c in fleet]),
        "host_tasks_skipped_median": benchlib.median([c["skipped"] for c in fleet]),
        "hosts_contacted": len(fleet),
        "controller_module_tasks": sorted({t["action"] for t in data["tasks"]
                                           if "localhost" in t["hosts"] and t["hosts"]["localhost"].get("status") != "skipped"
                                           and t["action"].startswith("mcdev.")}),
    }


def instrumented(ctx, rot, name):
    """Extra args, env, timer file and sample folder of a run with the bench_timer callback and the sampler.

    Both sides of P2b run like this (the sampler costs microseconds per 2 ms; the callback one write per task),
    so the measured rounds also give the time split and the tasks per host. Each call starts ``name`` afresh:
    the last round's files are the ones read.
    """
    folder = os.path.join(rot.work, name)
    shutil.rmtree(folder, ignore_errors=True)
    samples = os.path.join(folder, "samples")
    wrapper = profile_split.write_wrapper(os.path.join(folder, "python"), ctx.python, samples)
    timer_out = os.path.join(folder, "timer.json")
    return ["-e", "ansible_python_interpreter=%s" % wrapper], benchlib.timer_env(ctx, timer_out), timer_out, samples


def bench_p2(ctx):
    """P2a (nothing due) and P2b (full forced rotation) on N local hosts, the time split of P2b, P4 at N hosts."""
    hosts = 2 if ctx.smoke else 50
    rows, extra = [], {}
    rot = RotationFleet(ctx, "p2", local_hosts=hosts)
    try:
        if not ctx.smoke:
            # The controller learns what each host carries (a cold controller asks every host once).
            rot.rotate(False, "P2 warm-up (cold controller)")

        def idle():
            return {"idle": rot.rotate(False, "P2a ours (nothing due)", scheduled=True)}

        def ping1():
            return {"idle": rot.run_ping(1, "P2a ref (1 ping)")}

        samples = benchlib.alternate(ctx, Side("ours", idle), Side("ref", ping1), heavy=True)
        rows += benchlib.summarise("P2a", "scheduled rotation run, nothing due, %d local hosts" % hosts, samples,
                                   Goal(max_ratio=1.3), "one-task ansible.builtin.ping play",
                                   {"hosts": hosts, "forks": ctx.forks})

        api_counts, last = [], {}

        def forced():
            rot.reset_counters()
            args, env, timer_out, sample_dir = instrumented(ctx, rot, "p2b-ours")
            seconds = rot.rotate(True, "P2b ours (forced rotation)", env=env, extra_args=args)
            if hosts_changed(ctx.last_stdout, rot.hosts) != hosts:
                raise benchlib.BenchError("P2b: a forced rotation did not deploy on every host")
            api_counts.append(rot.api_calls()[:2])
            last.update(wall=float(seconds), timer=timer_out, samples=sample_dir)
            return {"rotate": seconds}

        def ping4():
            args, env, _timer, _sample_dir = instrumented(ctx, rot, "p2b-ref")
            return {"rotate": rot.run_ping(4, "P2b ref (4 pings)", env=env, extra_args=args)}

        samples = benchlib.alternate(ctx, Side("ours", forced), Side("ref", ping4), warmup=0, heavy=True)
        rows += benchlib.summarise("P2b", "full rotation of one OAuth 1.0a key, %d local hosts" % hosts, samples,
                                   Goal(max_ratio=2.0), "four-task ansible.builtin.ping play",
                                   {"hosts": hosts, "forks": ctx.forks, "serial": ROLE_SERIAL,
                                    "instrumented": "both sides: bench_timer callback and sampling profiler",
                                    "api_calls_per_round": [a for a, _p in api_counts],
                                    "probe_calls_per_round": [p for _a, p in api_counts]})
        if api_counts:
            ctx.shared["p4_warm"] = {"hosts": hosts, "api_calls": api_counts[-1][0], "probe_calls": api_counts[-1][1]}
        # From the last measured round of ours.
        extra["tasks_per_host_one_rotation"] = tasks_per_host(last["timer"], rot.hosts)
        extra["p2b_time_split"] = profile_split.split(last["wall"], last["timer"], last["samples"])
    finally:
        rot.close()
    return {"rows": rows, "extra": extra}


def bench_p4(ctx):
    """Developers API calls of one due rotation at several fleet sizes (cold controller); memory at the largest.

    P2b's forced rotations (warm controller) add the middle size, so it is not run twice.
    """
    if ctx.smoke:
        raise benchlib.BenchSkip("smoke mode: P2b counts the API calls of its rotation")
    sizes = [int(s) for s in (ctx.options.p4_sizes.split(",") if ctx.options and ctx.options.p4_sizes else ["5", "200"])]
    counts, probes, seconds, memory, tasks = {}, {}, {}, {}, {}
    for size in sizes:
        rot = RotationFleet(ctx, "p4-%d" % size, local_hosts=size, expires_in_days=100)
        try:
            rot.reset_counters()
            timer_out = os.path.join(rot.work, "timer.json")
            wall, mem, stdout = benchlib.run_playbook_measured(
                ctx, ROTATE, rot.fleet.inventory, rot.rotate_args(False), env=benchlib.timer_env(ctx, timer_out),
                label="P4 due rotation, %d hosts (cold controller)" % size)
            if hosts_changed(stdout, rot.hosts) != size:
                raise benchlib.BenchError("P4: the due rotation at %d hosts did not deploy on every host" % size)
            counts[str(size)], probes[str(size)], _detail = rot.api_calls()
            seconds[str(size)] = round(wall, 2)
            memory[str(size)] = mem
            tasks[str(size)] = tasks_per_host(timer_out, rot.hosts)
        finally:
            rot.close()
    warm = ctx.shared.get("p4_warm")
    all_counts = dict(counts)
    if warm:
        all_counts["%d (P2b, forced, warm controller)" % warm["hosts"]] = warm["api_calls"]
    values = list(all_counts.values())
    met = len(set(values)) == 1 and max(values) <= 6
    row = {"id": "P4", "bench": "P4", "phase": "api_calls", "title": "Developers API calls for one rotation",
           "reference": "emulator call counters: " + ", ".join("%s hosts: %s" % kv for kv in all_counts.items()),
           "ours_s": None, "ref_s": None, "ratio": None, "rounds": 1, "ratio_spread": None,
           "goal": "same at every size, <=6", "met": met, "ours_samples": [], "ref_samples": [],
           "notes": {"api_calls": all_counts, "probe_calls": probes, "seconds_cold_rotation": seconds}}
    extra = {"p4_api_calls": all_counts, "p4_probe_calls_cold": probes, "p4_seconds_cold_rotation": seconds,
             "controller_memory_cold_rotation": memory, "p4_tasks_per_host": tasks}
    return {"rows": [row], "extra": extra}


def netns_possible(ctx):
    mode = ctx.options.ssh if ctx.options else "auto"
    if mode == "no":
        return "disabled with --ssh no"
    if os.geteuid() != 0 or not shutil.which("ip"):
        return "needs root and iproute2 for network namespaces"
    if not os.path.exists("/usr/sbin/sshd") and mode == "auto":
        return "no sshd (apt-get install openssh-server, or --ssh yes to let netns_hosts.sh install it)"
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=False).stdout
    if "10.231." in routes:
        return "10.231.x namespace hosts of another run are up (netns_hosts.sh addresses are fixed); not touching them"
    return None


def bench_p5(ctx):
    """P2b over two SSH hosts in network namespaces with pipelining, against a four-task ping play."""
    if ctx.smoke and (not ctx.options or ctx.options.ssh != "yes"):
        raise benchlib.BenchSkip("not in smoke mode unless --ssh yes")
    reason = netns_possible(ctx)
    if reason:
        raise benchlib.BenchSkip(reason)
    rot = RotationFleet(ctx, "p5", netns_hosts=2)
    try:
        rot.rotate(False, "P5 warm-up (cold controller)")

        def forced():
            return {"rotate": rot.rotate(True, "P5 ours (forced rotation over SSH)")}

        def ping4():
            return {"rotate": rot.run_ping(4, "P5 ref (4 pings over SSH)")}

        samples = benchlib.alternate(ctx, Side("ours", forced), Side("ref", ping4), warmup=0, heavy=True)
        return benchlib.summarise("P5", "full rotation over 2 SSH hosts (network namespaces, pipelining)", samples,
                                  Goal(), "four-task ansible.builtin.ping play over SSH",
                                  {"hosts": 2, "pipelining": True})
    finally:
        rot.close()
