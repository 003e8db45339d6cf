# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Shared machinery of the benchmark suite: running plays, alternating sides, statistics, reports.

A comparison has two sides, ``ours`` and ``ref``. Each round runs both sides,
alternating which one goes first, and records one wall-clock time per phase
(a side may have several phases, e.g. a fresh run and a re-run). The result of
a phase is the median of the per-round ratios ours/ref, so machine load that
changes slowly hits both sides of a round alike.
"""

import json
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION_ROOT = os.path.dirname(HERE)


class BenchError(RuntimeError):
    """A benchmark could not run (a play failed, a prerequisite is missing)."""


CALLBACK_DIR = os.path.join(HERE, "callback_plugins")


def timer_env(ctx, out_path, **extra):
    """Environment with the bench_timer callback writing per-task timings to out_path."""
    return ctx.env(ANSIBLE_CALLBACK_PLUGINS=CALLBACK_DIR, ANSIBLE_CALLBACKS_ENABLED="bench_timer",
                   BENCH_TIMER_OUT=out_path, **extra)


def seconds_in_tasks(timer_json):
    """Sum of the tasks' wall times (first host start to last host end) of one run: its time minus start-up."""
    with open(timer_json, encoding="utf-8") as handle:
        data = json.load(handle)
    total = 0.0
    for task in data["tasks"]:
        ran = [h for h in task["hosts"].values() if "end" in h]
        if ran:
            total += max(h["end"] for h in ran) - min(h["start"] for h in ran)
    return total


class BenchSkip(Exception):
    """A benchmark cannot run here (e.g. no network namespaces); reported, not an error."""


class Context:
    """What every benchmark needs: where the tools are and how big to make things."""

    def __init__(self, workdir, collections_path, python, playbook, forks, smoke, rounds, warmup, verbose=False,
                 heavy_rounds=None):
        self.workdir = workdir
        self.collections_path = collections_path
        self.python = python
        self.playbook = playbook
        self.forks = forks
        self.smoke = smoke
        self.rounds = rounds
        # Comparisons that cost most (P1, P2b) or sit far from their goal (P2a, P5) get fewer rounds, so the
        # suite fits its ten minutes; P3, whose goal is tight, keeps `rounds`.
        self.heavy_rounds = rounds if heavy_rounds is None else heavy_rounds
        self.warmup = warmup
        self.verbose = verbose
        self.last_stdout = ""
        self.options = None
        self.shared = {}

    def env(self, **extra):
        """Environment of every ansible-playbook run; both sides get the same one."""
        env = dict(os.environ)
        for name in list(env):
            # Nothing from the caller's Ansible setup may favour one side.
            if name.startswith("ANSIBLE_") or name in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
                del env[name]
        env.update({
            "ANSIBLE_COLLECTIONS_PATH": self.collections_path,
            "ANSIBLE_CONFIG": os.path.join(self.workdir, "ansible.cfg"),
            "ANSIBLE_NOCOLOR": "1",
            "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_RETRY_FILES_ENABLED": "0",
            "ANSIBLE_LOCALHOST_WARNING": "0",
            "ANSIBLE_INVENTORY_UNPARSED_WARNING": "0",
            "ANSIBLE_HOST_KEY_CHECKING": "False",
            "ANSIBLE_DEPRECATION_WARNINGS": "0",
            "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
            "ANSIBLE_LOCAL_TEMP": os.path.join(self.workdir, "ansible-local"),
        })
        env.update({key: str(value) for key, value in extra.items()})
        return env

    def log(self, message):
        if self.verbose:
            sys.stderr.write("  . %s\n" % message)


def write_text(path, text):
    directory = os.path.dirname(path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)
    return path


def write_ansible_cfg(workdir):
    """An empty ansible.cfg in the work dir, so no ansible.cfg of the caller is picked up."""
    return write_text(os.path.join(workdir, "ansible.cfg"), "[defaults]\n")


def local_inventory(path, count, python, folder_root, prefix="h", group="bench_hosts", extra_vars=None):
    """count inventory hosts with ansible_connection local, each with its own folder (host var bench_dir)."""
    lines = ["---", "%s:" % group, "  hosts:"]
    names = []
    for index in range(1, count + 1):
        name = "%s%03d" % (prefix, index)
        names.append(name)
        folder = os.path.join(folder_root, name)
        lines.append("    %s:" % name)
        lines.append("      ansible_connection: local")
        lines.append("      ansible_python_interpreter: %s" % python)
        lines.append("      bench_dir: %s" % folder)
        for key, value in (extra_vars or {}).items():
            lines.append("      %s: %s" % (key, json.dumps(value(folder) if callable(value) else value)))
    write_text(path, "\n".join(lines) + "\n")
    return names


class Timing(float):
    """Wall seconds of one run, with the CPU seconds (user + system) of its whole process tree in ``cpu``.

    On a loaded machine the CPU time is the steadier figure: it does not grow with the run queue.
    """

    cpu = None

    def __new__(cls, wall, cpu):
        value = super().__new__(cls, wall)
        value.cpu = cpu
        return value


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_playbook(ctx, playbook, inventory, extra_args=(), env=None, label=None):
    """Run one ansible-playbook; return its Timing. A failure stops the benchmark."""
    command = [ctx.playbook, "-i", inventory, "-f", str(ctx.forks)] + list(extra_args) + [playbook]
    started, cpu_before = time.monotonic(), _children_cpu()
    proc = subprocess.run(command, env=env or ctx.env(), cwd=ctx.workdir, capture_output=True, text=True, check=False)
    elapsed = Timing(time.monotonic() - started, _children_cpu() - cpu_before)
    ctx.log("%s: %.2f s (cpu %.2f s)" % (label or os.path.basename(playbook), float(elapsed), elapsed.cpu))
    ctx.last_stdout = proc.stdout
    if proc.returncode != 0:
        raise BenchError("%s failed (rc=%d):\n%s\n%s" % (
            label or playbook, proc.returncode, proc.stdout[-6000:], proc.stderr[-3000:]))
    return elapsed


def recap_totals(stdout):
    """Sum of the PLAY RECAP counters (ok, changed, skipped, failed, ...) over all hosts."""
    totals = {}
    for match in re.finditer(r"^\S+\s+:\s+(.*)$", stdout or "", re.MULTILINE):
        for name, value in re.findall(r"(\w+)=(\d+)", match.group(1)):
            totals[name] = totals.get(name, 0) + int(value)
    return totals


class Side:
    """One side of a comparison. ``run()`` returns {phase: seconds}; ``prepare()`` runs untimed before it."""

    def __init__(self, name, run, prepare=None):
        self.name = name
        self.run = run
        self.prepare = prepare


class Goal:
    """A bound on the median ratio ours/ref (``max_ratio``) and/or on ours' median seconds (``max_seconds``)."""

    def __init__(self, max_ratio=None, max_seconds=None, text=None):
        self.max_ratio = max_ratio
        self.max_seconds = max_seconds
        self.text = text

    def describe(self):
        if self.text:
            return self.text
        parts = []
        if self.max_ratio is not None:
            parts.append("<=%.2fx" % self.max_ratio)
        if self.max_seconds is not None:
            parts.append("<=%.1f s" % self.max_seconds)
        return " and ".join(parts) or "report"

    def met(self, ratio, ours_seconds):
        if self.max_ratio is None and self.max_seconds is None:
            return None
        ok = True
        if self.max_ratio is not None:
            ok = ok and ratio is not None and ratio <= self.max_ratio
        if self.max_seconds is not None:
            ok = ok and ours_seconds is not None and ours_seconds <= self.max_seconds
        return ok


def median(values):
    values = [value for value in values if value is not None]
    return statistics.median(values) if values else None


def spread(values):
    """(min, max) relative to the median, as a rough noise figure."""
    values = [value for value in values if value is not None]
    if len(values) < 2:
        return None
    mid = statistics.median(values)
    return round((max(values) - min(values)) / mid, 3) if mid else None


def alternate(ctx, ours, ref, rounds=None, warmup=None, heavy=False):
    """Run both sides round by round, alternating the order; return {phase: {'ours': [...], 'ref': [...]}}."""
    if rounds is None:
        rounds = ctx.heavy_rounds if heavy else ctx.rounds
    warmup = ctx.warmup if warmup is None else warmup
    samples = {}
    for index in range(warmup + rounds):
        order = (ours, ref) if index % 2 == 0 else (ref, ours)
        for side in order:
            if side.prepare:
                side.prepare()
            phases = side.run()
            if index < warmup:
                continue
            for phase, seconds in phases.items():
                entry = samples.setdefault(phase, {"ours": [], "ref": [], "ours_cpu": [], "ref_cpu": []})
                entry[side.name].append(seconds)
                entry[side.name + "_cpu"].append(getattr(seconds, "cpu", None))
    return samples


def summarise(bench_id, title, samples, goals, ref_label, notes=None):
    """One result row per phase: medians of both sides, the median per-round ratio, the goal check."""
    rows = []
    for phase, sides in samples.items():
        pairs = list(zip(sides["ours"], sides["ref"]))
        ratios = [o / r for o, r in pairs if r]
        ratio = median(ratios)
        ours_median = median(sides["ours"])
        cpu_pairs = [(o, r) for o, r in zip(sides.get("ours_cpu", []), sides.get("ref_cpu", [])) if o and r]
        goal = goals.get(phase) if isinstance(goals, dict) else goals
        rows.append({
            "id": bench_id if len(samples) == 1 else "%s %s" % (bench_id, phase),
            "bench": bench_id,
            "phase": phase,
            "title": title,
            "reference": ref_label,
            "ours_s": round(ours_median, 3) if ours_median is not None else None,
            "ref_s": round(median([r for _o, r in pairs]), 3) if pairs else None,
            "ratio": round(ratio, 3) if ratio is not None else None,
            "rounds": len(pairs),
            "ours_samples": [round(x, 3) for x in sides["ours"]],
            "ref_samples": [round(x, 3) for x in sides["ref"]],
            "ratio_spread": spread(ratios),
            "ours_cpu_s": round(median([o for o, _r in cpu_pairs]), 3) if cpu_pairs else None,
            "ref_cpu_s": round(median([r for _o, r in cpu_pairs]), 3) if cpu_pairs else None,
            "cpu_ratio": round(median([o / r for o, r in cpu_pairs]), 3) if cpu_pairs else None,
            "goal": goal.describe() if goal else "report",
            "met": goal.met(ratio, ours_median) if goal else None,
            "notes": notes or {},
        })
    return rows


def machine_info():
    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    info["memory_gib"] = round(int(line.split()[1]) / 1024 / 1024, 1)
    except OSError:
        pass
    return info


def format_table(rows):
    """A plain-text table for the terminal."""
    header = ("id", "ours s", "ref s", "ratio", "goal", "result", "rounds", "spread", "cpu ratio", "reference")
    lines = []
    for row in rows:
        met = {True: "met", False: "MISSED", None: "-"}[row.get("met")]
        lines.append((
            row["id"],
            _fmt(row.get("ours_s")),
            _fmt(row.get("ref_s")),
            ("%.3fx" % row["ratio"]) if row.get("ratio") is not None else "-",
            row.get("goal", ""),
            met,
            str(row.get("rounds", "")),
            ("%.0f%%" % (100 * row["ratio_spread"])) if row.get("ratio_spread") is not None else "-",
            ("%.3fx" % row["cpu_ratio"]) if row.get("cpu_ratio") is not None else "-",
            row.get("reference", ""),
        ))
    widths = [max(len(str(item[i])) for item in [header] + lines) for i in range(len(header))]
    out = ["  ".join(str(cell).ljust(width) for cell, width in zip(header, widths))]
    out.append("  ".join("-" * width for width in widths))
    for line in lines:
        out.append("  ".join(str(cell).ljust(width) for cell, width in zip(line, widths)))
    return "\n".join(out)


def format_extras(extras, prefix=""):
    """The extra figures (tasks per host, time split, memory, ...) as indented lines."""
    lines = []
    for key, value in extras.items():
        if isinstance(value, dict):
            lines.append("%s%s:" % (prefix, key))
            lines.extend(format_extras(value, prefix + "  "))
        else:
            lines.append("%s%s: %s" % (prefix, key, value))
    return lines


def _fmt(value):
    return "-" if value is None else "%.2f" % value


def process_tree(root_pid):
    """Pids of root_pid and all its descendants, from /proc."""
    children = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % entry, encoding="utf-8") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat[stat.rfind(")") + 2:].split()
        children.setdefault(int(fields[1]), []).append(int(entry))
    pids, todo = [], [root_pid]
    while todo:
        pid = todo.pop()
        pids.append(pid)
        todo.extend(children.get(pid, []))
    return pids


def _memory_of(pid):
    """(pss_kib, rss_kib) of one process, 0 when it is gone."""
    pss = rss = 0
    try:
        with open("/proc/%d/smaps_rollup" % pid, encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("Pss:"):
                    pss = int(line.split()[1])
                elif line.startswith("Rss:"):
                    rss = int(line.split()[1])
    except OSError:
        pass
    return pss, rss


class TreeMemorySampler:
    """Samples the memory of a process tree every ``interval`` seconds in a thread.

    PSS (proportional set size) shares pages between forked workers fairly, so
    its sum over the tree is the tree's real footprint; the RSS sum over-counts
    copy-on-write pages and is reported as an upper bound.
    """

    def __init__(self, pid, interval=0.1):
        self.pid = pid
        self.interval = interval
        self.peak_pss_kib = 0
        self.peak_rss_kib = 0
        self.peak_processes = 0
        self.peak_single_rss_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._stop.set()
        self._thread.join()
        return False

    def _loop(self):
        while not self._stop.is_set():
            pids = process_tree(self.pid)
            total_pss = total_rss = 0
            for pid in pids:
                pss, rss = _memory_of(pid)
                total_pss += pss
                total_rss += rss
                self.peak_single_rss_kib = max(self.peak_single_rss_kib, rss)
            self.peak_pss_kib = max(self.peak_pss_kib, total_pss)
            self.peak_rss_kib = max(self.peak_rss_kib, total_rss)
            self.peak_processes = max(self.peak_processes, len(pids))
            self._stop.wait(self.interval)

    def report(self):
        return {
            "peak_tree_pss_mib": round(self.peak_pss_kib / 1024, 1),
            "peak_tree_rss_mib": round(self.peak_rss_kib / 1024, 1),
            "peak_single_process_rss_mib": round(self.peak_single_rss_kib / 1024, 1),
            "peak_processes": self.peak_processes,
        }


def run_playbook_measured(ctx, playbook, inventory, extra_args=(), env=None, label=None):
    """Like run_playbook, and also sample the memory of the ansible-playbook process tree.

    Returns (seconds, memory report, stdout).
    """
    command = [ctx.playbook, "-i", inventory, "-f", str(ctx.forks)] + list(extra_args) + [playbook]
    started, cpu_before = time.monotonic(), _children_cpu()
    with subprocess.Popen(command, env=env or ctx.env(), cwd=ctx.workdir, stdout=subprocess.PIPE,
                          stderr=subprocess.PIPE, text=True) as proc:
        with TreeMemorySampler(proc.pid) as sampler:
            stdout, stderr = proc.communicate()
    elapsed = Timing(time.monotonic() - started, _children_cpu() - cpu_before)
    ctx.log("%s: %.2f s (cpu %.2f s)" % (label or os.path.basename(playbook), float(elapsed), elapsed.cpu))
    if proc.returncode != 0:
        raise BenchError("%s failed (rc=%d):\n%s\n%s" % (label or playbook, proc.returncode, stdout[-6000:], stderr[-3000:]))
    return elapsed, sampler.report(), stdout


def save_results(path, payload):
    write_text(path, json.dumps(payload, indent=2, sort_keys=False) + "\n")
    return path
