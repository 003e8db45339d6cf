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


def pytest_terminal_summary(terminalreporter):
    if not os.path.exists(harness.FIGURES):
        return
    terminalreporter.section("reliability figures (%s)" % harness.FIGURES)
    with open(harness.FIGURES, encoding="utf-8") as handle:
        for line in handle:
            figure = json.loads(line)
            name = figure.pop("figure")
            figure.pop("at", None)
            terminalreporter.write_line("%-28s %s" % (name, json.dumps(figure, sort_keys=True)))
