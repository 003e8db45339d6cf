# -*- coding: utf-8 -*-
# Copyright: mcdev.credentials contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rotation's controller state in PostgreSQL, shared by every execution node (mc_rotation_plan state_url).

PRIVATE to this collection: the API may change without notice.

The ledger (with its lease lock), the fleet cache, the run record and the key store of one lineage are rows
of one table, ``mcdev_rotation_state (lineage, item, body, version, updated_at)``. The flock of the file
store becomes a transaction-scoped advisory lock per lineage, so read -> plan -> write is one transaction:
either all of it is stored or none. Private keys are stored as the key store's own files are, encrypted
with the key-store password (the planner refuses a shared store without one). The node's ``state_dir`` keeps a
working copy of the keys, refilled from the database when a fresh container starts.

psycopg is imported only here, and only when a state_url is given.
"""

from __future__ import annotations

import hashlib
import json
import os
from contextlib import contextmanager
from typing import Any, Iterator, Mapping

from ansible_collections.mcdev.credentials.plugins.module_utils import _io
from ansible_collections.mcdev.credentials.plugins.module_utils.inventory import LedgerError, LedgerRecord

TABLE = "mcdev_rotation_state"
KEY_ITEM = "key/"
KEY_SUFFIX = ".key.pem"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS %s (lineage text NOT NULL, item text NOT NULL, body bytea NOT NULL, "
           "version bigint NOT NULL DEFAULT 1, updated_at timestamptz NOT NULL DEFAULT now(), "
           "PRIMARY KEY (lineage, item))" % TABLE)
# One advisory lock number for creating the table, so two first runs do not race on it.
_SCHEMA_LOCK = 0x6d63646576


class SharedStateError(LedgerError):
    """The shared state cannot be reached or used. Retryable: the transaction in flight was rolled back."""

    retryable = True


def _psycopg():
    try:
        import psycopg  # pylint: disable=import-outside-toplevel
    except ImportError:
        raise SharedStateError("state_url needs the Python package psycopg (pip install 'psycopg[binary]') "
                               "where mc_rotation_plan runs (the controller / execution environment)") from None
    return psycopg


def redacted(url: str) -> str:
    """The URL without its password, for messages."""
    try:
        from psycopg.conninfo import conninfo_to_dict, make_conninfo  # pylint: disable=import-outside-toplevel
        parts = conninfo_to_dict(url)
    except Exception:  # pylint: disable=broad-except
        return "the state_url"
    parts.pop("password", None)
    return make_conninfo(**parts)


def lock_number(lineage: str) -> int:
    """A stable signed 64-bit advisory lock number of a lineage."""
    return int.from_bytes(hashlib.sha256(("mcdev.credentials:" + lineage).encode()).digest()[:8], "big", signed=True)


class SharedState:
    """One lineage's rows, over one connection (autocommit outside :meth:`locked`)."""

    KEY_ITEM = KEY_ITEM

    def __init__(self, url: str, lineage: str, connect_timeout: int = 10):
        psycopg = _psycopg()
        self.error_types = (psycopg.Error,)
        self.where = redacted(url)
        self.lineage = lineage
        try:
            self.conn = psycopg.connect(url, autocommit=True, connect_timeout=connect_timeout,
                                        application_name="mcdev.credentials")
            with self.conn.transaction():
                self.conn.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                self.conn.execute(_SCHEMA)
        except psycopg.Error as exc:
            raise self._failure("cannot be reached", exc) from None

    def _failure(self, what, exc):
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        return SharedStateError("The shared rotation state (%s) %s: %s. Nothing was half-written (the transaction "
                                "was rolled back); run again once the database answers." % (self.where, what, detail))

    @contextmanager
    def _errors(self, what):
        try:
            yield
        except self.error_types as exc:
            raise self._failure(what, exc) from None

    def close(self):
        try:
            self.conn.close()
        except self.error_types:
            pass

    # ---- rows --------------------------------------------------------------------
    def get(self, item: str) -> tuple[bytes, int] | None:
        with self._errors("cannot be read"):
            row = self.conn.execute("SELECT body, version FROM %s WHERE lineage = %%s AND item = %%s" % TABLE,
                                    (self.lineage, item)).fetchone()
        return (bytes(row[0]), row[1]) if row else None

    def put(self, item: str, body: bytes, only_if_absent: bool = False) -> bool:
        """Store body under item; False when nothing changed (the same bytes, or present with only_if_absent)."""
        conflict = ("DO NOTHING" if only_if_absent else
                    "DO UPDATE SET body = EXCLUDED.body, version = %s.version + 1, updated_at = now() "
                    "WHERE %s.body IS DISTINCT FROM EXCLUDED.body" % (TABLE, TABLE))
        with self._errors("cannot be written"):
            cursor = self.conn.execute("INSERT INTO %s (lineage, item, body) VALUES (%%s, %%s, %%s) "
                                       "ON CONFLICT (lineage, item) %s" % (TABLE, conflict),
                                       (self.lineage, item, body))
        return cursor.rowcount == 1

    def items(self, prefix: str) -> dict[str, bytes]:
        with self._errors("cannot be read"):
            rows = self.conn.execute("SELECT item, body FROM %s WHERE lineage = %%s AND item LIKE %%s" % TABLE,
                                     (self.lineage, prefix.replace("%", r"\%").replace("_", r"\_") + "%")).fetchall()
        return dict((item[len(prefix):], bytes(body)) for item, body in rows)

    # ---- what the controller keeps ----------------------------------------------------
    def read_json(self, item: str, default: Any) -> Any:
        row = self.get(item)
        if row is None:
            return default
        try:
            data = json.loads(row[0].decode("utf-8"))
        except ValueError:
            raise SharedStateError("The shared rotation state (%s) holds an unreadable %s for %s; delete that row "
                                   "to start it over" % (self.where, item, self.lineage)) from None
        return data if isinstance(data, type(default)) else default

    def write_json(self, item: str, data: Any) -> bool:
        return self.put(item, (json.dumps(data, indent=2, sort_keys=True) + "\n").encode("utf-8"))

    def ledger(self) -> SharedLedger:
        return SharedLedger(self)

    def sync_keys(self, directory: str) -> None:
        """Make the node's key folder and the shared key store hold the same keys: the database's keys are
        written into a fresh folder, keys only this node has are stored in the database. The same alias with
        other bytes on each side is refused: neither copy is replaced."""
        shared = self.items(KEY_ITEM)
        try:
            local = [name for name in os.listdir(directory) if name.endswith(KEY_SUFFIX)]
        except FileNotFoundError:
            local = []
        for name in local:
            alias = name[:-len(KEY_SUFFIX)]
            with open(os.path.join(directory, name), "rb") as handle:
                data = handle.read()
            if alias not in shared:
                self.put(KEY_ITEM + alias, data, only_if_absent=True)
                shared[alias] = self.get(KEY_ITEM + alias)[0]
            if shared[alias] != data:
                raise SharedStateError(
                    "The key store file %s and the shared key store (%s) hold different private keys for alias %s; "
                    "neither is replaced. Keep the one whose public key the credential %s has, and remove the other."
                    % (os.path.join(directory, name), self.where, alias, alias))
        for alias, data in shared.items():
            if alias + KEY_SUFFIX not in local:
                os.makedirs(directory, mode=0o700, exist_ok=True)
                path = os.path.join(directory, alias + KEY_SUFFIX)
                _io.write_atomically(path, data)


class SharedLedger:
    """The ledger row, with what mc_rotation_plan asks of the file ledger (inventory.Ledger)."""

    def __init__(self, state: SharedState):
        self.state = state
        self.path = "%s, lineage %s" % (state.where, state.lineage)

    @contextmanager
    def locked(self) -> Iterator[SharedLedger]:
        """One transaction under the lineage's advisory lock: what the block writes is stored at its end, or
        not at all."""
        conn = self.state.conn
        with self.state._errors("cannot be locked or written"):  # pylint: disable=protected-access
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (lock_number(self.state.lineage),))
                yield self

    def read(self) -> LedgerRecord:
        data = self.state.read_json("ledger", {})
        try:
            return LedgerRecord.from_dict(data)
        except (TypeError, ValueError) as exc:
            raise SharedStateError("the rotation ledger in %s holds invalid values: %s" % (self.path, exc)) from None

    def write(self, record: LedgerRecord | Mapping[str, Any]) -> bool:
        return self.state.write_json("ledger", LedgerRecord.from_dict(record).to_dict())

    def snapshot(self) -> Any:
        row = self.state.get("ledger")
        return row[1] if row else None
