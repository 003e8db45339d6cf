# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Where the time of a playbook run goes: Ansible, crypto, Developers API.

Two sources, taken in the same run:

- every module process runs under a sampling profiler (the inventory's
  interpreter is a small wrapper): every 2 ms of wall clock a timer signal
  notes which Python function is running, so a process's time splits by
  where it was spent into crypto (cryptography, hashlib, the signers), API
  (requests, urllib3, http.client, ssl and socket: the HTTPS calls and the
  wait for the emulator), module start-up (unpacking AnsiballZ, compiling,
  imports) and the rest (module logic and Ansible's module boilerplate).
  Sampling costs a few microseconds per 2 ms, so the instrumented runs can be
  the measured ones (both sides of P2b run with it);
- the bench_timer callback gives each task's wall time and each host's
  duration, hence how many module processes of a task ran at once
  (concurrency = sum of host durations / task wall time).

A category's share of the wall clock is its module-process time divided by
that concurrency; Ansible overhead is the rest of the wall clock (start-up,
templating, building and shipping AnsiballZ payloads, forking, action
plugins, tasks that run no module such as set_fact or add_host).
"""

import glob
import json
import os

# Matched against the file of the function a sample found running (C calls are charged to their caller).
CRYPTO_MARKERS = ("/cryptography/", "/hashlib.py", "/oauth1/", "/mastercard_oauth2_client/", "/jwt/")
API_MARKERS = ("/requests/", "/urllib3/", "/http/client.py", "/ssl.py", "/socket.py", "/idna/", "/certifi/",
               "/charset_normalizer/", "/selectors.py")
# Module start-up: unpacking the AnsiballZ payload (its wrapper file), running it (runpy), compiling its
# sources (they ship without .pyc) and importing; module-level code of every imported module counts too.
IMPORT_MARKERS = ("<frozen importlib", "<frozen zipimport", "/runpy.py", "<frozen runpy", "AnsiballZ_")
CATEGORIES = ("crypto", "api", "imports", "other")

WRAPPER = """#!/bin/sh
# Benchmark interpreter: run the module under the sampling profiler, one result file per module process.
module=$(basename "${1:-stdin}" .py)
BENCH_PROFILE_OUT="%(dir)s/${module}-$$.json" exec %(python)s %(driver)s "$@"
"""

# runpy.run_path, not `python -m`: AnsiballZ drops the directory of __main__.__file__ from sys.path, so the
# module file itself must be __main__. Each sample charges the wall time since the previous one to the
# function running now (a C call, such as compile() or an RSA signature, is charged to its Python caller).
# Timers are not inherited by child processes, and interrupted system calls are retried (PEP 475).
DRIVER = """import os
import runpy
import signal
import sys
import time

sys.argv = sys.argv[1:]
seconds = {}
last = [time.monotonic()]


def sample(_signum, frame):
    now = time.monotonic()
    if frame is not None:
        key = frame.f_code.co_filename + "\\0" + frame.f_code.co_name
        seconds[key] = seconds.get(key, 0.0) + now - last[0]
    last[0] = now


signal.signal(signal.SIGALRM, sample)
signal.setitimer(signal.ITIMER_REAL, 0.002, 0.002)
code = 0
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except SystemExit as exc:
    code = exc.code
finally:
    signal.setitimer(signal.ITIMER_REAL, 0)
    import json
    with open(os.environ["BENCH_PROFILE_OUT"], "w") as handle:
        json.dump(seconds, handle)
sys.exit(code)
"""


def write_wrapper(path, python, profile_dir):
    """An interpreter for ansible_python_interpreter that samples every module process into profile_dir."""
    os.makedirs(profile_dir, exist_ok=True)
    driver = path + "-driver.py"
    with open(driver, "w", encoding="utf-8") as handle:
        handle.write(DRIVER)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(WRAPPER % {"python": python, "dir": profile_dir, "driver": driver})
    os.chmod(path, 0o755)
    return path


def classify(key):
    """Category of one sampled function, from its (file, line, name) key."""
    where, _line, name = key
    if name == "<module>" or any(marker in where for marker in IMPORT_MARKERS):
        return "imports"
    if any(marker in where for marker in CRYPTO_MARKERS):
        return "crypto"
    if any(marker in where for marker in API_MARKERS):
        return "api"
    return "other"


def profile_totals(path):
    """{category: seconds} of one module process, from its sample file ({"file\\0function": seconds})."""
    with open(path, encoding="utf-8") as handle:
        samples = json.load(handle)
    totals = dict.fromkeys(CATEGORIES, 0.0)
    for key, seconds in samples.items():
        filename, _sep, name = key.partition("\0")
        totals[classify((filename, 0, name))] += seconds
    return totals


def module_profiles(profile_dir):
    """{module name: {"runs": n, category: seconds...}} over every profile file."""
    modules = {}
    for path in glob.glob(os.path.join(profile_dir, "*.json")):
        name = os.path.basename(path).rsplit("-", 1)[0]
        name = name[len("AnsiballZ_"):] if name.startswith("AnsiballZ_") else name
        try:
            totals = profile_totals(path)
        except (OSError, ValueError, TypeError):
            continue  # a process killed before it wrote its samples
        entry = modules.setdefault(name, dict.fromkeys(CATEGORIES, 0.0))
        entry["runs"] = entry.get("runs", 0) + 1
        for category in CATEGORIES:
            entry[category] += totals[category]
    return modules


def task_walls(timer_json):
    """[(module short name, task wall seconds, sum of host seconds, hosts run)] for tasks that ran somewhere."""
    with open(timer_json, encoding="utf-8") as handle:
        data = json.load(handle)
    out = []
    for task in data["tasks"]:
        ran = [h for h in task["hosts"].values() if h.get("status") not in (None, "skipped") and "end" in h]
        if not ran:
            continue
        wall = max(h["end"] for h in ran) - min(h["start"] for h in ran)
        busy = sum(h["end"] - h["start"] for h in ran)
        out.append((task["action"].rsplit(".", 1)[-1], wall, busy, len(ran)))
    return out, data.get("end")


def split(wall, timer_json, profile_dir):
    """The time split of one run, in seconds of wall clock and as fractions of it."""
    modules = module_profiles(profile_dir)
    tasks, _end = task_walls(timer_json)
    in_tasks = sum(t[1] for t in tasks)
    per_module = {}
    for name, task_wall, busy, _ran in tasks:
        entry = per_module.setdefault(name, {"wall": 0.0, "busy": 0.0})
        entry["wall"] += task_wall
        entry["busy"] += busy
    shares = dict.fromkeys(CATEGORIES, 0.0)
    detail = {}
    for name, profile in modules.items():
        timing = per_module.get(name)
        concurrency = max(1.0, timing["busy"] / timing["wall"]) if timing and timing["wall"] > 0 else 1.0
        module_share = {}
        for category in CATEGORIES:
            module_share[category] = profile[category] / concurrency
            shares[category] += module_share[category]
        detail[name] = {
            "runs": profile["runs"],
            "mean_process_s": round(sum(profile[c] for c in CATEGORIES) / profile["runs"], 3),
            "concurrency": round(concurrency, 2),
            "wall_share_s": {c: round(v, 2) for c, v in module_share.items()},
        }
    module_wall = sum(shares.values())
    overhead = max(0.0, wall - module_wall)
    figures = {
        "wall_s": round(wall, 2),
        "crypto_s": round(shares["crypto"], 2),
        "api_s": round(shares["api"], 2),
        "module_startup_s": round(shares["imports"], 2),
        "module_other_s": round(shares["other"], 2),
        "ansible_overhead_s": round(overhead, 2),
        "outside_tasks_s": round(max(0.0, wall - in_tasks), 2),
        "tasks_run": len(tasks),
        "module_processes": sum(p["runs"] for p in modules.values()),
    }
    if wall > 0:
        figures["fractions"] = {
            "ansible_overhead": round(overhead / wall, 3),
            "module_startup": round(shares["imports"] / wall, 3),
            "module_other": round(shares["other"] / wall, 3),
            "crypto": round(shares["crypto"] / wall, 3),
            "api": round(shares["api"] / wall, 3),
        }
    figures["per_module"] = detail
    return figures
