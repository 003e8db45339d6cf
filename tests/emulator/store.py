"""SQLite state: accounts, projects, credentials and a small key/value table.

One connection shared by the server threads behind a lock: every statement is
short, and WAL keeps the file consistent if the process is killed.
"""
import json
import sqlite3
import threading

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS accounts (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, consumer_key TEXT NOT NULL UNIQUE,
    public_key_pem TEXT NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS projects (
    id TEXT PRIMARY KEY, account_id TEXT NOT NULL, name TEXT NOT NULL, auth_model TEXT NOT NULL,
    oauth2_enabled INTEGER NOT NULL, client_id TEXT NOT NULL UNIQUE, environments TEXT NOT NULL,
    created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS credentials (
    id TEXT PRIMARY KEY, project_id TEXT NOT NULL, alias TEXT NOT NULL, type TEXT NOT NULL,
    environment TEXT NOT NULL, status TEXT NOT NULL, oauth_version TEXT, consumer_key TEXT UNIQUE,
    kid TEXT UNIQUE, certificate_pem TEXT NOT NULL, fingerprint TEXT NOT NULL, public_key_fingerprint TEXT NOT NULL,
    public_key_pem TEXT NOT NULL, key_type TEXT NOT NULL, serial_number TEXT NOT NULL, subject_dn TEXT NOT NULL,
    not_before REAL NOT NULL, expiry REAL NOT NULL, created REAL NOT NULL, revoked REAL, issuer TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS credentials_project ON credentials (project_id);
CREATE INDEX IF NOT EXISTS credentials_fingerprint ON credentials (fingerprint);
"""


class Store:
    """Thin, thread-safe access to the state file."""

    def __init__(self, path):
        self.path = path
        self._lock = threading.RLock()
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)

    def close(self):
        with self._lock:
            self._db.close()

    def transaction(self):
        """Context manager holding the lock and one SQLite transaction."""
        return _Transaction(self)

    def query(self, sql, args=()):
        with self._lock:
            return [dict(row) for row in self._db.execute(sql, args).fetchall()]

    def one(self, sql, args=()):
        rows = self.query(sql, args)
        return rows[0] if rows else None

    def execute(self, sql, args=()):
        with self._lock:
            self._db.execute(sql, args)

    def insert(self, table, record):
        columns = ", ".join(record)
        marks = ", ".join("?" for _column in record)
        self.execute("INSERT INTO %s (%s) VALUES (%s)" % (table, columns, marks), tuple(record.values()))

    def update(self, table, record_id, changes):
        assignments = ", ".join("%s = ?" % column for column in changes)
        self.execute("UPDATE %s SET %s WHERE id = ?" % (table, assignments), tuple(changes.values()) + (record_id,))

    def get_meta(self, key, default=None):
        row = self.one("SELECT value FROM meta WHERE key = ?", (key,))
        return json.loads(row["value"]) if row else default

    def set_meta(self, key, value):
        self.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value)),
        )

    def wipe(self):
        with self.transaction():
            for table in ("meta", "accounts", "projects", "credentials"):
                self._db.execute("DELETE FROM %s" % table)


class _Transaction:
    def __init__(self, store):
        self._store = store

    def __enter__(self):
        self._store._lock.acquire()  # pylint: disable=protected-access
        self._store._db.execute("BEGIN IMMEDIATE")  # pylint: disable=protected-access
        return self._store

    def __exit__(self, exc_type, exc, traceback):
        try:
            self._store._db.execute("COMMIT" if exc_type is None else "ROLLBACK")  # pylint: disable=protected-access
        finally:
            self._store._lock.release()  # pylint: disable=protected-access
        return False
