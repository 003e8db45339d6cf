# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""P1 (key + CSR on N local hosts) and P3 (expiry scan of many certificate files)."""

import os
import shutil

import benchlib
from benchlib import Goal, Side

P1_OURS = """---
- name: Private key and CSR with mc_csr
  hosts: bench_hosts
  gather_facts: false
  tasks:
    - name: Private key and CSR in one task
      mcdev.credentials.mc_csr:
        privatekey_path: "{{ bench_dir }}/key.pem"
        csr_path: "{{ bench_dir }}/request.csr"
        type: rsa
        size: 2048
        common_name: "bench-{{ inventory_hostname }}"
"""

P1_REF = """---
- name: Private key and CSR with community.crypto
  hosts: bench_hosts
  gather_facts: false
  tasks:
    - name: Private key
      community.crypto.openssl_privatekey:
        path: "{{ bench_dir }}/key.pem"
        type: RSA
        size: 2048
    - name: CSR
      community.crypto.openssl_csr:
        path: "{{ bench_dir }}/request.csr"
        privatekey_path: "{{ bench_dir }}/key.pem"
        common_name: "bench-{{ inventory_hostname }}"
        digest: sha256
"""

EMPTY_PLAY = """---
- name: Empty play (ansible-playbook start-up)
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Nothing
      ansible.builtin.meta: noop
"""


def bench_p1(ctx):
    """Key + CSR on N local hosts, fresh and then again with nothing to do."""
    hosts = 1 if ctx.smoke else 20
    work = os.path.join(ctx.workdir, "p1")
    folders = os.path.join(work, "hosts")
    inventory = os.path.join(work, "inventory.yml")
    benchlib.local_inventory(inventory, hosts, ctx.python, folders)
    plays = {
        "ours": benchlib.write_text(os.path.join(work, "ours.yml"), P1_OURS),
        "ref": benchlib.write_text(os.path.join(work, "ref.yml"), P1_REF),
    }
    changed_on_rerun = {"ours": [], "ref": []}

    def reset():
        shutil.rmtree(folders, ignore_errors=True)
        for index in range(1, hosts + 1):
            os.makedirs(os.path.join(folders, "h%03d" % index))

    timer = os.path.join(work, "timer.json")
    env = benchlib.timer_env(ctx, timer)

    def runner(name):
        def run():
            out = {}
            for phase in ("fresh", "rerun"):
                out[phase] = benchlib.run_playbook(ctx, plays[name], inventory, env=env, label="P1 %s %s" % (name, phase))
                out[phase + " (tasks only)"] = benchlib.seconds_in_tasks(timer)
            changed_on_rerun[name].append(benchlib.recap_totals(ctx.last_stdout).get("changed", 0))
            return out
        return run

    samples = benchlib.alternate(ctx, Side("ours", runner("ours"), reset), Side("ref", runner("ref"), reset), heavy=True)
    notes = {"hosts": hosts, "forks": ctx.forks, "key": "RSA 2048", "tasks_ours": 1, "tasks_ref": 2,
             "changed_on_rerun": changed_on_rerun}
    return benchlib.summarise("P1", "private key + CSR on %d local hosts" % hosts, samples,
                              {"fresh": Goal(max_ratio=0.55), "rerun": Goal(max_ratio=0.55),
                               "fresh (tasks only)": Goal(), "rerun (tasks only)": Goal()},
                              "community.crypto.openssl_privatekey + openssl_csr", notes)


def _load_scan_bench():
    """bench/scan_bench.py (owned by modules-ops) holds the certificate generator and the two plays."""
    try:
        import scan_bench  # pylint: disable=import-outside-toplevel
    except ImportError as exc:
        raise benchlib.BenchError("bench/scan_bench.py is missing or broken: %s" % exc) from exc
    for name in ("make_certificates", "PLAY_OURS", "PLAY_LOOP"):
        if not hasattr(scan_bench, name):
            raise benchlib.BenchError("bench/scan_bench.py no longer provides %s" % name)
    return scan_bench


def bench_p3(ctx, reference_files=None):
    """One mc_credential_info task over N files vs a loop of x509_certificate_info.

    A loop over 1000 files takes minutes (one module run per file), so by
    default the loop runs over a subset and is scaled to N files:
    loop(N) = startup + (loop(subset) - startup) * N / subset, with the start-up
    (an empty play) measured in the same round. ``reference_files=N`` runs the
    loop over all files instead.
    """
    scan_bench = _load_scan_bench()
    files = 10 if ctx.smoke else 1000
    if reference_files is None and ctx.options is not None:
        reference_files = ctx.options.p3_reference_files
    subset = min(files, reference_files or (3 if ctx.smoke else 5))
    work = os.path.join(ctx.workdir, "p3")
    ours_dir = os.path.join(work, "certs")
    ref_dir = os.path.join(work, "certs-subset")
    scan_bench.make_certificates(ours_dir, files)
    if subset == files:
        ref_dir = ours_dir
    else:
        scan_bench.make_certificates(ref_dir, subset)
    plays = {
        "ours": benchlib.write_text(os.path.join(work, "ours.yml"), scan_bench.PLAY_OURS.format(dir=ours_dir, count=files)),
        "ref": benchlib.write_text(os.path.join(work, "ref.yml"), scan_bench.PLAY_LOOP.format(dir=ref_dir, count=subset)),
        "empty": benchlib.write_text(os.path.join(work, "empty.yml"), EMPTY_PLAY),
    }
    env = ctx.env(ANSIBLE_PYTHON_INTERPRETER=ctx.python)

    def run_ours():
        return {"scan": benchlib.run_playbook(ctx, plays["ours"], "localhost,", env=env, label="P3 ours")}

    def run_ref():
        loop = benchlib.run_playbook(ctx, plays["ref"], "localhost,", env=env, label="P3 ref (%d files)" % subset)
        empty = benchlib.run_playbook(ctx, plays["empty"], "localhost,", env=env, label="P3 empty play")
        return {"scan": (loop, empty)}

    raw = benchlib.alternate(ctx, Side("ours", run_ours), Side("ref", run_ref), warmup=0)
    pairs = raw["scan"]["ref"]
    scaled = [benchlib.Timing(empty + (loop - empty) * files / subset,
                              empty.cpu + (loop.cpu - empty.cpu) * files / subset) for loop, empty in pairs]
    samples = {"scan": {"ours": raw["scan"]["ours"], "ref": scaled, "ours_cpu": raw["scan"]["ours_cpu"],
                        "ref_cpu": [value.cpu for value in scaled]}}
    startup = benchlib.median([empty for _loop, empty in pairs])
    per_file = benchlib.median([(loop - empty) / subset for loop, empty in pairs])
    notes = {
        "files": files,
        "reference_files_run": subset,
        "reference_scaled": subset != files,
        "reference_loop_subset_s": [round(loop, 3) for loop, _empty in pairs],
        "playbook_startup_s": round(startup, 3) if startup is not None else None,
        "reference_seconds_per_file": round(per_file, 4) if per_file is not None else None,
    }
    ours_median = benchlib.median(samples["scan"]["ours"])
    if ours_median and startup is not None:
        notes["ours_minus_startup_s"] = round(ours_median - startup, 3)
    reference = "loop of community.crypto.x509_certificate_info"
    if subset != files:
        reference += " (scaled from %d files)" % subset
    rows = benchlib.summarise("P3", "expiry scan of %d certificate files" % files, samples,
                              Goal(max_ratio=0.05, max_seconds=2.0, text=">=20x faster and <=2 s"), reference, notes)
    for row in rows:
        if row["ratio"]:
            row["notes"]["speedup"] = round(1 / row["ratio"], 1)
    return rows
