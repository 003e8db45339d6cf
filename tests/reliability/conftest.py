"""Fixtures of the reliability suites (R1-R6): an emulator per module, fleets, and the figures printed at the end.

Short versions run in `make test` (``pytest tests/reliability -m "not soak"``); the long ones are marked
``soak`` and run in `make soak`.
"""
import json
import os
import sys

_COLLECTION_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
_PARENT = os.path.abspath(os.path.join(_COLLECTION_ROOT, "..", "..", ".."))
if os.path.basename(os.path.dirname(os.path.dirname(_COLLECTION_ROOT))) == "ansible_collections":
    if _PARENT not in sys.path:
        sys.path.insert(0, _PARENT)

# pylint: disable=wrong-import-position
import pytest  # noqa: E402

from ansible_collections.mcdev.credentials.tests.emulator.harness import Emulator  # noqa: E402
from ansible_collections.mcdev.credentials.tests.reliability import harness, netns  # noqa: E402


def pytest_configure(config):
    config.addinivalue_line("markers", "soak: long reliability runs (make soak), not part of make test")
    config.addinivalue_line("markers", "quick: the short version of a soak test; make soak runs the long one instead")


# Rough cost of a test on the idle 2-core machine (seconds), used only to order the session longest first, so that
# xdist's load scheduling hands the long shards out first and the short tests fill the gaps at the end.
_COSTS = (("test_rotations_under_faults_long", 280), ("test_crash_at_every_step", 170), ("test_r4", 90),
          ("test_r3", 80), ("test_two_runs_at_once", 60))


def _cost(item):
    for part, cost in _COSTS:
        if part in item.nodeid:
            return cost
    return 30


def pytest_collection_modifyitems(items):
    items.sort(key=_cost, reverse=True)  # stable: same order on every xdist worker


@pytest.fixture(scope="module")
def emulator(tmp_path_factory):
    """A fresh emulator for each test module (faults and clock changes stay inside the module)."""
    instance = Emulator.start(tmp_path_factory.mktemp("emulator"))
    try:
        yield instance
    finally:
        instance.stop()


@pytest.fixture(scope="module")
def ssh_hosts(emulator, tmp_path_factory):
    """One SSH host in a network namespace (its own sshd), reaching the module's emulator through relays."""
    assert os.geteuid() == 0, "namespace SSH hosts need root"
    workdir = str(tmp_path_factory.mktemp("netns"))
    # 0 without xdist, 1.. for the xdist workers: every concurrent session gets its own namespaces and subnet.
    worker = int(os.environ.get("PYTEST_XDIST_WORKER", "gw-1")[2:] or 0) + 1
    hosts = netns.NetnsHosts(workdir, 1, [emulator.info["port"], emulator.info["mtls_port"]],
                             prefix="mcrel%d" % worker, subnet="10.%d" % (232 + worker))
    try:
        yield hosts.up()
    finally:
        hosts.down()


_SUMS = ("kill_points", "recovered", "invariant_violations", "probes", "private_files_not_0600", "rotations",
         "outages", "duplicates_or_orphans", "runs", "failed_runs", "api_calls", "trials", "ok")
_MAXES = ("max_reruns", "max_runs_to_converge", "active_at_end", "tasks", "hosts")


def _totals(figures):
    """Shards of one figure and kind added up: {(figure, kind): totals}."""
    totals = {}
    for figure in figures:
        if "shard" not in figure or "short" in figure["figure"]:
            continue
        key = (figure["figure"], figure.get("kind"))
        total = totals.setdefault(key, {"shards": 0})
        total["shards"] += 1
        for name in _SUMS:
            if name in figure:
                total[name] = total.get(name, 0) + figure[name]
        for name in _MAXES:
            if name in figure:
                total[name] = max(total.get(name, 0), figure[name])
        if "kill_after" in figure:
            total.setdefault("kill_after", set()).update(figure["kill_after"])
    for total in totals.values():
        if "kill_after" in total:
            points = total.pop("kill_after")
            total["every_k_covered"] = points == set(range(1, total["tasks"] + 1))
        if total.get("rotations"):
            total["api_calls_per_rotation"] = round(total["api_calls"] / float(total["rotations"]), 1)
    return totals


def pytest_terminal_summary(terminalreporter):
    if not os.path.exists(harness.FIGURES):
        return
    terminalreporter.section("reliability figures (%s)" % harness.FIGURES)
    with open(harness.FIGURES, encoding="utf-8") as handle:
        figures = [json.loads(line) for line in handle if line.strip()]
    for recorded in figures:
        figure = dict(recorded)
        name = figure.pop("figure")
        figure.pop("at", None)
        figure.pop("kill_after", None)
        terminalreporter.write_line("%-28s %s" % (name, json.dumps(figure, sort_keys=True)))
    for (name, kind), total in sorted(_totals(figures).items(), key=lambda pair: (pair[0][0], str(pair[0][1]))):
        terminalreporter.write_line("%-28s %s" % (name + " TOTAL", json.dumps(dict(total, kind=kind), sort_keys=True)))
