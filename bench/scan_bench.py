# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Benchmark: scan N certificate files with ONE mc_credential_info task vs a loop of
community.crypto.x509_certificate_info (one module run per file).

Both plays run with the same ansible-playbook (same ansible-core), the same
Python interpreter for the modules, local connection, no fact gathering.

    python bench/scan_bench.py --files 1000 \
        --collections /tmp/build-f:/tmp/ansible-full/lib/python3.11/site-packages

--collections must hold ansible_collections/mcdev/credentials (e.g. the
`make layout` build dir) and ansible_collections/community/crypto (the PyPI
`ansible` package: python3.11 -m venv /tmp/ansible-full && /tmp/ansible-full/bin/pip install ansible).
Results are printed and written to bench/results/scan_bench.json.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

HERE = os.path.dirname(os.path.abspath(__file__))
UTC = datetime.timezone.utc


def make_certificates(directory, count, seed=7):
    """count leaf certificates signed by one CA, with spread-out expiries; ~10 % DER, the rest PEM."""
    rng = random.Random(seed)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")])
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(UTC)
    os.makedirs(directory, exist_ok=True)
    for index in range(count):
        not_after = now + datetime.timedelta(days=rng.randint(-30, 395))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "%d-Client-MTF-000000" % (1700000000 + index))]))
            .issuer_name(ca_name)
            .public_key(leaf_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_after - datetime.timedelta(days=395))
            .not_valid_after(not_after)
            .sign(ca_key, hashes.SHA256())
        )
        sub = os.path.join(directory, "app%02d" % (index % 20))
        os.makedirs(sub, exist_ok=True)
        if index % 10 == 0:
            with open(os.path.join(sub, "cert%04d.der" % index), "wb") as handle:
                handle.write(cert.public_bytes(serialization.Encoding.DER))
        else:
            with open(os.path.join(sub, "cert%04d.pem" % index), "wb") as handle:
                handle.write(cert.public_bytes(serialization.Encoding.PEM))


PLAY_OURS = """
- name: One task scans every file
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Scan
      mcdev.credentials.mc_credential_info:
        paths: ["{dir}"]
        recurse: true
      register: scan
    - name: Count
      ansible.builtin.assert:
        that: scan.local | length == {count}
        quiet: true
"""

PLAY_LOOP = """
- name: One module run per file
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Find
      ansible.builtin.find:
        paths: ["{dir}"]
        patterns: ["*.pem", "*.der"]
        recurse: true
      register: found
    - name: Read each certificate
      community.crypto.x509_certificate_info:
        path: "{{{{ item.path }}}}"
      loop: "{{{{ (found.files | sort(attribute='path'))[:{count}] }}}}"
      loop_control:
        label: "{{{{ item.path | basename }}}}"
      register: infos
    - name: Count
      ansible.builtin.assert:
        that: infos.results | length == {count}
        quiet: true
"""


def run_play(playbook_bin, play_text, env, workdir, name):
    path = os.path.join(workdir, name + ".yml")
    with open(path, "w") as handle:
        handle.write(play_text)
    start = time.monotonic()
    proc = subprocess.run([playbook_bin, "-i", "localhost,", path], env=env, capture_output=True, text=True, check=False)
    elapsed = time.monotonic() - start
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-4000:])
        raise SystemExit("%s failed (rc=%d)" % (name, proc.returncode))
    return elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--files", type=int, default=1000)
    parser.add_argument("--collections", required=True, help="ANSIBLE_COLLECTIONS_PATH covering both collections")
    parser.add_argument("--playbook", default=shutil.which("ansible-playbook") or "ansible-playbook")
    parser.add_argument("--python", default=sys.executable, help="interpreter the modules run with")
    parser.add_argument("--repeat", type=int, default=3, help="runs of the single-task play (median reported)")
    parser.add_argument("--skip-loop", action="store_true")
    parser.add_argument("--loop-files", type=int, default=None,
                        help="run the x509_certificate_info loop over only this many of the files and extrapolate "
                             "(the full loop takes many minutes on a busy machine); default: all")
    parser.add_argument("--out", default=os.path.join(HERE, "results", "scan_bench.json"))
    args = parser.parse_args()

    workdir = tempfile.mkdtemp(prefix="scan_bench_")
    try:
        certdir = os.path.join(workdir, "certs")
        started = time.monotonic()
        make_certificates(certdir, args.files)
        generate_s = time.monotonic() - started
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=args.collections, ANSIBLE_PYTHON_INTERPRETER=args.python,
                   ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0", ANSIBLE_LOCALHOST_WARNING="0",
                   ANSIBLE_INVENTORY_UNPARSED_WARNING="0", ANSIBLE_STDOUT_CALLBACK="default")
        core = subprocess.run([args.playbook, "--version"], capture_output=True, text=True, env=env, check=True).stdout.splitlines()[0]
        ours = [run_play(args.playbook, PLAY_OURS.format(dir=certdir, count=args.files), env, workdir, "ours_%d" % i)
                for i in range(args.repeat)]
        baseline = run_play(args.playbook, "- name: Empty\n  hosts: localhost\n  connection: local\n  gather_facts: false\n"
                            "  tasks:\n    - name: Nothing\n      ansible.builtin.meta: noop\n", env, workdir, "empty")
        loop = None
        loop_files = min(args.loop_files or args.files, args.files)
        if not args.skip_loop:
            loop = run_play(args.playbook, PLAY_LOOP.format(dir=certdir, count=loop_files), env, workdir, "loop")
            # Once more after the loop, so both sides see the same machine load.
            ours.append(run_play(args.playbook, PLAY_OURS.format(dir=certdir, count=args.files), env, workdir,
                                 "ours_after"))
        ours.sort()
        load = os.getloadavg()
        result = {
            "files": args.files,
            "ansible_core": core,
            "python": args.python,
            "generate_seconds": round(generate_s, 2),
            "playbook_startup_seconds": round(baseline, 2),
            "mc_credential_info_one_task_seconds": round(ours[len(ours) // 2], 2),
            "mc_credential_info_runs": [round(x, 2) for x in ours],
            "loop_files": loop_files if loop is not None else None,
            "x509_certificate_info_loop_seconds": round(loop, 2) if loop is not None else None,
            "load_average_at_end": [round(x, 1) for x in load],
        }
        if loop is not None:
            per_file = (loop - baseline) / loop_files
            full_loop = baseline + per_file * args.files
            result["loop_seconds_per_file"] = round(per_file, 3)
            result["x509_certificate_info_loop_seconds_for_all_files"] = round(full_loop, 1)
            result["speedup"] = round(full_loop / ours[len(ours) // 2], 1)
            result["speedup_excluding_startup"] = round((full_loop - baseline) / max(ours[len(ours) // 2] - baseline, 0.01), 1)
        os.makedirs(os.path.dirname(args.out), exist_ok=True)
        with open(args.out, "w") as handle:
            json.dump(result, handle, indent=2)
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
