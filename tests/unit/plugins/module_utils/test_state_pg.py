"""state_pg against a real PostgreSQL server (Debian's, started for this module): the ledger under the
lineage's advisory lock, all-or-nothing transactions, the key store shared between two nodes' folders (and
encrypted at rest), and a lost server as a clear, retryable error that never shows the password."""

from __future__ import annotations

import os
import stat
import threading
import time

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from ansible_collections.mcdev.credentials.plugins.module_utils import state_pg
from ansible_collections.mcdev.credentials.plugins.module_utils.credential import KeyStore
from ansible_collections.mcdev.credentials.plugins.module_utils.inventory import LedgerRecord
from ansible_collections.mcdev.credentials.tests.tools.postgres import PostgresServer


@pytest.fixture(scope="module")
def server():
    instance = PostgresServer.start()
    try:
        yield instance
    finally:
        instance.close()


@pytest.fixture
def lineage(request):
    return "proj_sandbox_oauth1_" + request.node.name[:40]


def test_the_ledger_round_trips_and_an_unchanged_write_writes_nothing(server, lineage):
    state = state_pg.SharedState(server.url, lineage)
    ledger = state.ledger()
    assert ledger.read() == LedgerRecord()
    record = LedgerRecord(rotation_id="1767225600", attempts=2, last_error="HTTP 503")
    with ledger.locked():
        assert ledger.write(record) is True
    version = ledger.snapshot()
    assert state_pg.SharedState(server.url, lineage).ledger().read() == record  # another node sees it
    assert ledger.write(record) is False and ledger.snapshot() == version
    assert server.password not in ledger.path


def test_two_nodes_take_the_lineage_lock_one_after_the_other(server, lineage):
    first, second = state_pg.SharedState(server.url, lineage), state_pg.SharedState(server.url, lineage)
    order = []
    inside = threading.Event()

    def hold():
        with first.ledger().locked():
            inside.set()
            order.append("first in")
            time.sleep(0.6)
            first.ledger().write({"rotation_id": "1"})
            order.append("first out")

    thread = threading.Thread(target=hold)
    thread.start()
    inside.wait(5)
    with second.ledger().locked() as ledger:
        order.append("second in")
        assert ledger.read().rotation_id == "1", "the second node plans from what the first stored"
    thread.join()
    assert order == ["first in", "first out", "second in"]
    # another lineage is not held up by it
    other = state_pg.SharedState(server.url, lineage + "_other")
    with first.ledger().locked():
        started = time.monotonic()
        with other.ledger().locked():
            assert time.monotonic() - started < 0.5


def test_a_failure_inside_the_lock_stores_nothing(server, lineage):
    state = state_pg.SharedState(server.url, lineage)
    with pytest.raises(RuntimeError):
        with state.ledger().locked() as ledger:
            ledger.write({"rotation_id": "2"})
            state.write_json("fleet", {"h1": {"reachable": True}})
            raise RuntimeError("the planner failed")
    assert state.ledger().read() == LedgerRecord() and state.read_json("fleet", {}) == {}


def _stored_key(folder, alias, password):
    store = KeyStore(folder, "proj", "sandbox", passphrase=password)
    store.save(alias, ec.generate_private_key(ec.SECP256R1()))
    return store


def test_keys_reach_a_fresh_node_encrypted_and_0600(server, lineage, tmp_path):
    node_a = _stored_key(str(tmp_path / "a"), "app-1767225600", "key-store-pw")
    state_pg.SharedState(server.url, lineage).sync_keys(node_a.directory)
    stored = state_pg.SharedState(server.url, lineage).items(state_pg.KEY_ITEM)
    assert list(stored) == ["app-1767225600"]
    assert stored["app-1767225600"].startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    node_b = KeyStore(str(tmp_path / "b"), "proj", "sandbox", passphrase="key-store-pw")
    state_pg.SharedState(server.url, lineage).sync_keys(node_b.directory)
    path = node_b.path("app-1767225600")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert node_b.load("app-1767225600").private_numbers() == node_a.load("app-1767225600").private_numbers()


def test_the_same_alias_with_another_key_is_refused_and_neither_copy_replaced(server, lineage, tmp_path):
    node_a = _stored_key(str(tmp_path / "a"), "app-1", "pw")
    node_b = _stored_key(str(tmp_path / "b"), "app-1", "pw")
    state_pg.SharedState(server.url, lineage).sync_keys(node_a.directory)
    with open(node_b.path("app-1"), "rb") as handle:
        before = handle.read()
    with pytest.raises(state_pg.SharedStateError, match="different private keys for alias app-1"):
        state_pg.SharedState(server.url, lineage).sync_keys(node_b.directory)
    with open(node_b.path("app-1"), "rb") as handle:
        assert handle.read() == before
    assert state_pg.SharedState(server.url, lineage).items(state_pg.KEY_ITEM)["app-1"] != before


def test_a_lost_server_is_a_clear_retryable_error_without_the_password(server, lineage):
    state = state_pg.SharedState(server.url, lineage)
    server.stop()
    try:
        with pytest.raises(state_pg.SharedStateError) as lost:
            with state.ledger().locked() as ledger:
                ledger.write({"rotation_id": "3"})
        with pytest.raises(state_pg.SharedStateError) as unreachable:
            state_pg.SharedState(server.url, lineage, connect_timeout=3)
    finally:
        server.start_again()
    for error in (lost.value, unreachable.value):
        text = str(error)
        assert error.retryable and "run again" in text and "127.0.0.1" in text
        assert server.password not in text
    assert "cannot be reached" in str(unreachable.value)
    assert state_pg.SharedState(server.url, lineage).ledger().read() == LedgerRecord(), "nothing was half-written"


def test_without_psycopg_the_message_says_what_to_install(monkeypatch):
    import builtins  # pylint: disable=import-outside-toplevel
    real_import = builtins.__import__

    def no_psycopg(name, *args, **kwargs):
        if name == "psycopg" or name.startswith("psycopg."):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_psycopg)
    with pytest.raises(state_pg.SharedStateError, match=r"pip install 'psycopg\[binary\]'"):
        state_pg.SharedState("postgresql://mcdev@127.0.0.1:1/mcdev", "x")


def test_lock_numbers_are_stable_and_distinct():
    assert state_pg.lock_number("a") == state_pg.lock_number("a") != state_pg.lock_number("b")
    assert -2 ** 63 <= state_pg.lock_number("a") < 2 ** 63
