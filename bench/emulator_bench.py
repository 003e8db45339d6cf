# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Throughput and latency of the Developers API emulator under concurrent signed clients.

    python bench/emulator_bench.py --clients 32 --duration 10 [--processes 2] [--route list|ping|create]

Starts a private emulator on loopback, creates an account and a project, then
runs ``--clients`` concurrent clients (threads spread over ``--processes``
processes, so the client side is not one GIL) that each send OAuth 1.0a-signed
requests (mastercard-oauth1-signer) in a loop for ``--duration`` seconds. Every
request is verified by the emulator (signature, body hash, nonce). Prints
requests/s and p50/p90/p99 latency; ``--json`` writes them to a file.
Bounded: at most 128 clients and 120 s; traffic only to 127.0.0.1.
"""
import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
COLLECTION_ROOT = os.path.dirname(HERE)
MAX_CLIENTS = 128
MAX_DURATION = 120


def _client_loop(target, deadline, latencies, failures):
    # Imported here so the parent process does not need them before the emulator is up.
    import requests  # pylint: disable=import-outside-toplevel
    from cryptography.hazmat.primitives import serialization  # pylint: disable=import-outside-toplevel
    from oauth1.oauth_ext import OAuth1RSA  # pylint: disable=import-outside-toplevel

    key = serialization.load_pem_private_key(target["signing_key_pem"].encode("ascii"), None)
    session = requests.Session()
    session.trust_env = False
    session.verify = target["ca_path"]
    session.auth = OAuth1RSA(target["consumer_key"], key)
    counter = 0
    while time.monotonic() < deadline:
        counter += 1
        started = time.perf_counter()
        try:
            if target["route"] == "create":
                response = session.post(target["url"], json=dict(target["body"], alias="b-%d-%d-%d" % (
                    os.getpid(), threading.get_ident(), counter)), timeout=30)
                ok = response.status_code == 201
            else:
                response = session.get(target["url"], timeout=30)
                ok = response.status_code == 200
        except Exception:  # pylint: disable=broad-exception-caught
            # A benchmark counts failures instead of stopping at the first one.
            ok = False
        elapsed = time.perf_counter() - started
        if ok:
            latencies.append(elapsed)
        else:
            failures.append(elapsed)


def _worker(args):
    target, threads, deadline_in = args
    deadline = time.monotonic() + deadline_in
    latencies, failures = [], []
    pool = [threading.Thread(target=_client_loop, args=(target, deadline, latencies, failures))
            for _thread in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return latencies, len(failures)


def process_cpu_seconds(pid):
    """user+system CPU seconds of a process (Linux /proc), or None elsewhere."""
    try:
        with open("/proc/%d/stat" % pid, encoding="ascii") as handle:
            fields = handle.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values, fraction):
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, int(round(fraction * (len(ordered) - 1)))))
    return ordered[index]


def _prepare(emulator, route):
    account = emulator.new_account()
    project = emulator.new_project(account["account_id"])
    target = {"signing_key_pem": account["signing_key_pem"], "consumer_key": account["consumer_key"],
              "ca_path": emulator.info["ca_path"], "route": route}
    base = "%s/projects/%s" % (emulator.info["api_url"], project["id"])
    if route == "ping":
        seeded = emulator.admin("POST", "/projects/%s/credentials" % project["id"], {"type": "SIGNING"})
        target.update(signing_key_pem=seeded["private_key_pem"], consumer_key=seeded["consumerKey"],
                      url=emulator.info["oauth1_ping_url"])
    elif route == "create":
        from cryptography import x509  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives import hashes, serialization  # pylint: disable=import-outside-toplevel
        from cryptography.hazmat.primitives.asymmetric import rsa  # pylint: disable=import-outside-toplevel
        from cryptography.x509.oid import NameOID  # pylint: disable=import-outside-toplevel
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        csr = x509.CertificateSigningRequestBuilder().subject_name(
            x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench")])).sign(key, hashes.SHA256())
        target.update(url=base + "/credentials", body={
            "type": "SIGNING", "environment": "SANDBOX", "csr": csr.public_bytes(serialization.Encoding.PEM).decode()})
    else:
        emulator.admin("POST", "/projects/%s/credentials" % project["id"], {"type": "SIGNING"})
        target["url"] = base + "/credentials"
    return target


def run(clients, processes, duration, route):
    sys.path.insert(0, COLLECTION_ROOT)
    from tests.emulator.harness import Emulator  # pylint: disable=import-outside-toplevel

    with tempfile.TemporaryDirectory(prefix="emulator-bench-") as workdir:
        with Emulator.start(workdir) as emulator:
            target = _prepare(emulator, route)
            processes = max(1, min(processes, clients))
            shares = [clients // processes + (1 if index < clients % processes else 0) for index in range(processes)]
            load_before = os.getloadavg()[0]
            server_cpu_before = process_cpu_seconds(emulator.info["pid"])
            started = time.monotonic()
            with multiprocessing.Pool(processes) as pool:
                results = pool.map(_worker, [(target, share, duration) for share in shares])
            wall = time.monotonic() - started
            server_cpu = process_cpu_seconds(emulator.info["pid"])
            counters = emulator.admin("GET", "/counters")
    latencies = [value for result in results for value in result[0]]
    failures = sum(result[1] for result in results)
    if not latencies:
        raise SystemExit("no successful request (%d failures)" % failures)
    return {
        "route": route, "clients": clients, "processes": processes, "duration_s": round(wall, 2),
        "requests": len(latencies), "failures": failures,
        "requests_per_s": round(len(latencies) / wall, 1),
        "p50_ms": round(percentile(latencies, 0.50) * 1000, 1),
        "p90_ms": round(percentile(latencies, 0.90) * 1000, 1),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 1),
        "max_ms": round(max(latencies) * 1000, 1),
        "mean_ms": round(statistics.mean(latencies) * 1000, 1),
        "server_counted": sum(counters.values()),
        # CPU per request does not depend on what else the machine runs; req/s and latency do.
        "server_cpu_ms_per_request": (round((server_cpu - server_cpu_before) * 1000 / len(latencies), 2)
                                      if server_cpu is not None else None),
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load_before, 2),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--processes", type=int, default=2, help="client processes the threads are spread over")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds of load")
    parser.add_argument("--route", choices=("list", "ping", "create"), default="list",
                        help="list: GET credentials; ping: OAuth 1.0a probe; create: POST a CSR (certificate issuance)")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS or not 0 < args.duration <= MAX_DURATION:
        parser.error("1-%d clients and up to %d seconds" % (MAX_CLIENTS, MAX_DURATION))
    figures = run(args.clients, args.processes, args.duration, args.route)
    print(json.dumps(figures, indent=2))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(figures, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
