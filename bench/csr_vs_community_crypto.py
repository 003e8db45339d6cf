"""Time one mc_csr task against the two-task community.crypto equivalent.

Usage (from anywhere; one ansible-core for both, both collections visible):
    ANSIBLE_COLLECTIONS_PATH=<dir with ansible_collections/mcdev>:<site-packages of the `ansible` package> \
        python bench/csr_vs_community_crypto.py [runs]

Each scenario runs ``ansible-playbook`` on localhost (connection local, no
facts), alternating mc_csr and community.crypto, fresh (no files) and re-run
(files in place). Prints the median wall time of each.
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

PLAYS = {
    "mc_csr": """
- name: One task
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Key and CSR
      mcdev.credentials.mc_csr:
        privatekey_path: "{{ work }}/key.pem"
        csr_path: "{{ work }}/req.csr"
        size: 2048
        common_name: bench-1682563200
""",
    "community.crypto": """
- name: Two tasks
  hosts: localhost
  connection: local
  gather_facts: false
  tasks:
    - name: Key
      community.crypto.openssl_privatekey:
        path: "{{ work }}/key.pem"
        type: RSA
        size: 2048
    - name: CSR
      community.crypto.openssl_csr:
        path: "{{ work }}/req.csr"
        privatekey_path: "{{ work }}/key.pem"
        common_name: bench-1682563200
""",
}


def _children_cpu():
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(playbook, work):
    """(wall seconds, CPU seconds of ansible-playbook and everything it started)."""
    start, cpu = time.perf_counter(), _children_cpu()
    subprocess.run(["ansible-playbook", playbook, "-e", "work=%s" % work,
                    "-e", "ansible_python_interpreter=%s" % sys.executable],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start, _children_cpu() - cpu


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    root = tempfile.mkdtemp(prefix="mc-bench-")
    books = {}
    for name, text in PLAYS.items():
        books[name] = os.path.join(root, name + ".yml")
        with open(books[name], "w") as handle:
            handle.write(text)
    times = {(name, phase): [] for name in PLAYS for phase in ("fresh", "re-run")}
    try:
        for name in PLAYS:  # warm-up: caches, .pyc files
            run(books[name], tempfile.mkdtemp(dir=root))
        for _round in range(runs):
            for name in PLAYS:
                work = tempfile.mkdtemp(dir=root)
                times[(name, "fresh")].append(run(books[name], work))
                times[(name, "re-run")].append(run(books[name], work))
    finally:
        shutil.rmtree(root)
    print("%-18s %-7s %12s %9s %9s %12s  (n=%d, load average %s)"
          % ("", "", "median wall", "min", "max", "median CPU", runs, "%.1f %.1f %.1f" % os.getloadavg()))
    for (name, phase), values in times.items():
        walls = [value[0] for value in values]
        cpus = [value[1] for value in values]
        row = (name, phase, statistics.median(walls), min(walls), max(walls), statistics.median(cpus))
        print("%-18s %-7s %11.2fs %8.2fs %8.2fs %11.2fs" % row)


if __name__ == "__main__":
    main()
