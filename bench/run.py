# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark suite: mcdev.credentials against community.crypto and the Ansible floor.

    python bench/run.py --collections BUILD:ANSIBLE_FULL_SITE_PACKAGES [--smoke] [--only P1,P3]

Every comparison runs both sides in the same run, alternating which goes
first, for several rounds, and reports the median of the per-round ratios
ours/ref. Results: a table on the terminal and JSON in bench/results/.
``make bench`` builds the collection, creates the ``ansible`` package venv
(community.crypto) when it is missing and runs this; ``make bench-smoke`` runs
it with tiny sizes and one round, so the suite cannot rot.
"""

import argparse
import glob
import os
import shutil
import sys
import tempfile
import time
import traceback

import benchlib
import crypto_cases
import rotation_cases

CASES = [
    ("P1", crypto_cases.bench_p1),
    ("P3", crypto_cases.bench_p3),
    ("P2", rotation_cases.bench_p2),
    ("P4", rotation_cases.bench_p4),
    ("P5", rotation_cases.bench_p5),
]


def find_collections_path(args):
    """ANSIBLE_COLLECTIONS_PATH covering our build tree and the ansible package's collections."""
    entries = [entry for entry in (args.collections or "").split(os.pathsep) if entry]
    if args.ansible_full:
        found = sorted(glob.glob(os.path.join(args.ansible_full, "lib", "python3*", "site-packages")))
        if not found:
            raise benchlib.BenchError("no site-packages under %s" % args.ansible_full)
        entries.append(found[0])
    missing = []
    for namespace, name in (("mcdev", "credentials"), ("community", "crypto")):
        if not any(os.path.isdir(os.path.join(entry, "ansible_collections", namespace, name)) for entry in entries):
            missing.append("%s.%s" % (namespace, name))
    if missing:
        raise benchlib.BenchError("%s not found in %s" % (", ".join(missing), os.pathsep.join(entries) or "(empty path)"))
    return os.pathsep.join(entries)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--collections", default="", help="path(s) holding ansible_collections/ (e.g. the make layout BUILD dir)")
    parser.add_argument("--ansible-full", default="", help="venv of the PyPI ansible package (adds its collections)")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one round, no warm-up (< 60 s)")
    parser.add_argument("--only", default="", help="comma-separated ids: P1,P2,P3,P4,P5 (P2 covers P2a and P2b)")
    parser.add_argument("--rounds", type=int, default=None, help="rounds of every comparison (default: 3 for P3, 2 for P1, P2a, P2b and P5; smoke 1)")
    parser.add_argument("--warmup", type=int, default=None, help="discarded warm-up rounds (default 0: P2 and P5 warm the controller with a cold run first)")
    parser.add_argument("--forks", type=int, default=10, help="forks, the same for both sides")
    parser.add_argument("--p3-reference-files", type=int, default=None,
                        help="run the x509_certificate_info loop over this many files (default 5, scaled to 1000)")
    parser.add_argument("--p4-sizes", default="", help="host counts for P4 cold rotations (default 5,200; P2b adds 50)")
    parser.add_argument("--ssh", choices=["auto", "yes", "no"], default="auto",
                        help="P5 over namespace SSH hosts: auto = when running as root with ip and sshd")
    parser.add_argument("--out", default="", help="JSON result file (default bench/results/bench-<time>.json)")
    parser.add_argument("--workdir", default="", help="keep the work files here instead of a temp dir")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a goal is missed (always when a case errors)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log every play and its time")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    started = time.monotonic()
    load_start = [round(x, 2) for x in os.getloadavg()]
    try:
        collections_path = find_collections_path(args)
    except benchlib.BenchError as exc:
        sys.stderr.write("bench: %s\n" % exc)
        return 2
    playbook = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    if not os.path.exists(playbook):
        playbook = shutil.which("ansible-playbook") or "ansible-playbook"
    workdir = args.workdir or tempfile.mkdtemp(prefix="mcbench-")
    os.makedirs(workdir, exist_ok=True)
    benchlib.write_ansible_cfg(workdir)
    ctx = benchlib.Context(
        workdir=workdir, collections_path=collections_path, python=sys.executable, playbook=playbook,
        forks=args.forks, smoke=args.smoke,
        rounds=args.rounds if args.rounds is not None else (1 if args.smoke else 3),
        heavy_rounds=args.rounds if args.rounds is not None else (1 if args.smoke else 2),
        warmup=args.warmup if args.warmup is not None else 0,
        verbose=args.verbose,
    )
    ctx.options = args
    only = {item.strip().upper() for item in args.only.split(",") if item.strip()}
    rows, errors, extras = [], [], {}
    for case_id, function in CASES:
        if only and case_id not in only:
            continue
        case_started = time.monotonic()
        sys.stderr.write("bench: %s ...\n" % case_id)
        try:
            result = function(ctx)
        except benchlib.BenchSkip as exc:
            extras.setdefault("skipped", {})[case_id] = str(exc)
            sys.stderr.write("bench: %s skipped: %s\n" % (case_id, exc))
            continue
        except Exception as exc:  # pylint: disable=broad-except
            errors.append({"id": case_id, "error": str(exc)[-4000:], "traceback": traceback.format_exc()[-4000:]})
            sys.stderr.write("bench: %s FAILED: %s\n" % (case_id, str(exc)[-2000:]))
            continue
        if isinstance(result, dict):
            rows.extend(result.get("rows", []))
            extras.update(result.get("extra", {}))
        else:
            rows.extend(result)
        extras.setdefault("case_seconds", {})[case_id] = round(time.monotonic() - case_started, 1)
    total = time.monotonic() - started
    machine = benchlib.machine_info()
    machine["load_average_start"] = load_start
    machine["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    payload = {
        "suite": "mcdev.credentials bench",
        "mode": "smoke" if args.smoke else "full",
        "machine": machine,
        "settings": {"rounds": ctx.rounds, "heavy_rounds": ctx.heavy_rounds, "warmup": ctx.warmup, "forks": ctx.forks,
                     "ansible_playbook": playbook, "module_python": ctx.python,
                     "collections_path": collections_path},
        "results": rows,
        "extra": extras,
        "errors": errors,
        "total_seconds": round(total, 1),
    }
    out = args.out or os.path.join(benchlib.HERE, "results", "%s-%s.json" % (
        "smoke" if args.smoke else "bench", time.strftime("%Y%m%d-%H%M%S")))
    benchlib.save_results(out, payload)
    print(benchlib.format_table(rows))
    for line in benchlib.format_extras(extras):
        print(line)
    for error in errors:
        print("ERROR %s: %s" % (error["id"], error["error"].strip().splitlines()[-1] if error["error"].strip() else "?"))
    print("bench: %s mode, %.1f s, load average %s -> %s; results in %s" % (
        payload["mode"], total, machine.get("load_average_start"), machine["load_average_end"], out))
    if not args.workdir:
        shutil.rmtree(workdir, ignore_errors=True)
    if errors:
        return 1
    if args.strict and any(row.get("met") is False for row in rows):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
