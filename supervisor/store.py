"""The supervisor's records in SQLite (WAL): namespaces, containers, processes, events, leases.

WAL with synchronous=NORMAL: a committed transaction survives a SIGKILL of the supervisor (the
log is in the page cache and replayed on open), which is the crash this store must survive.
A state change and the event announcing it are written in one transaction, so after a restart
the records and the event log never disagree.
"""
from __future__ import annotations

import json
import sqlite3
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS namespaces (
    name TEXT PRIMARY KEY,
    labels TEXT NOT NULL DEFAULT '{}'
);
CREATE TABLE IF NOT EXISTS containers (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    image TEXT NOT NULL DEFAULT '',
    runtime_name TEXT NOT NULL,
    runtime_options BLOB,           -- a serialized google.protobuf.Any, or NULL
    spec BLOB NOT NULL,             -- a serialized google.protobuf.Any
    snapshotter TEXT NOT NULL DEFAULT '',
    snapshot_key TEXT NOT NULL DEFAULT '',
    extensions BLOB,                -- serialized map<string, Any> (as a Container message)
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, id)
);
-- One row per process: exec_id '' is the task's init process, whose row also holds the shim's.
CREATE TABLE IF NOT EXISTS processes (
    namespace TEXT NOT NULL,
    container_id TEXT NOT NULL,
    exec_id TEXT NOT NULL,
    pid INTEGER NOT NULL DEFAULT 0,
    status TEXT NOT NULL,           -- creating, created, running, paused, stopped
    stdin TEXT NOT NULL DEFAULT '',
    stdout TEXT NOT NULL DEFAULT '',
    stderr TEXT NOT NULL DEFAULT '',
    terminal INTEGER NOT NULL DEFAULT 0,
    exit_status INTEGER NOT NULL DEFAULT 0,
    exited_at INTEGER NOT NULL DEFAULT 0,
    reason TEXT NOT NULL DEFAULT '',
    published INTEGER NOT NULL DEFAULT 0,   -- lifecycle events announced so far (see tasks.py)
    bundle TEXT NOT NULL DEFAULT '',
    runtime TEXT NOT NULL DEFAULT '',
    runtime_root TEXT NOT NULL DEFAULT '',
    socket TEXT NOT NULL DEFAULT '',
    shim_pid INTEGER NOT NULL DEFAULT 0,
    shim_seq INTEGER NOT NULL DEFAULT 0,    -- the last shim event applied
    rootfs TEXT NOT NULL DEFAULT '[]',
    PRIMARY KEY (namespace, container_id, exec_id)
);
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    timestamp INTEGER NOT NULL,
    namespace TEXT NOT NULL,
    topic TEXT NOT NULL,
    type_url TEXT NOT NULL,
    payload BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (
    namespace TEXT NOT NULL,
    id TEXT NOT NULL,
    labels TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    PRIMARY KEY (namespace, id)
);
"""


@dataclass
class ContainerRecord:
    namespace: str
    id: str
    labels: dict
    image: str
    runtime_name: str
    runtime_options: bytes | None
    spec: bytes
    snapshotter: str
    snapshot_key: str
    extensions: bytes | None
    created_at: int
    updated_at: int


@dataclass
class ProcessRecord:
    namespace: str
    container_id: str
    exec_id: str
    pid: int = 0
    status: str = "creating"
    stdin: str = ""
    stdout: str = ""
    stderr: str = ""
    terminal: bool = False
    exit_status: int = 0
    exited_at: int = 0
    reason: str = ""
    published: int = 0
    bundle: str = ""
    runtime: str = ""
    runtime_root: str = ""
    socket: str = ""
    shim_pid: int = 0
    shim_seq: int = 0
    rootfs: list = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str, str]:
        return self.namespace, self.container_id, self.exec_id


_PROCESS_COLUMNS = [f for f in ProcessRecord.__dataclass_fields__]
_CONTAINER_COLUMNS = [f for f in ContainerRecord.__dataclass_fields__]


class Store:
    def __init__(self, path: str | Path):
        self.path = str(path)
        self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA busy_timeout=5000")
        self.db.executescript(SCHEMA)
        self._depth = 0
        self._after_commit: list = []

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def tx(self):
        """A write transaction (nested calls join the outer one)."""
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self._depth = 0
            self._after_commit.clear()
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            callback()

    def after_commit(self, callback) -> None:
        """Run callback once the current (outermost) transaction has committed; never if it
        rolls back. Outside a transaction, at once."""
        if self._depth:
            self._after_commit.append(callback)
        else:
            callback()

    # meta
    def server_uuid(self) -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key='uuid'").fetchone()
        if row:
            return row[0]
        value = str(uuid.uuid4())
        with self.tx() as db:
            db.execute("INSERT OR IGNORE INTO meta (key, value) VALUES ('uuid', ?)", (value,))
        return self.db.execute("SELECT value FROM meta WHERE key='uuid'").fetchone()[0]

    # namespaces
    def namespace_labels(self, name: str) -> dict | None:
        row = self.db.execute("SELECT labels FROM namespaces WHERE name=?", (name,)).fetchone()
        return json.loads(row[0]) if row else None

    def list_namespaces(self) -> list[tuple[str, dict]]:
        rows = self.db.execute("SELECT name, labels FROM namespaces ORDER BY name").fetchall()
        return [(name, json.loads(labels)) for name, labels in rows]

    def ensure_namespace(self, name: str) -> bool:
        """Create name if missing; true when it was created."""
        with self.tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO namespaces (name) VALUES (?)", (name,))
            return cur.rowcount == 1

    def put_namespace(self, name: str, labels: dict) -> None:
        with self.tx() as db:
            db.execute("INSERT INTO namespaces (name, labels) VALUES (?, ?) "
                       "ON CONFLICT(name) DO UPDATE SET labels=excluded.labels",
                       (name, json.dumps(labels, sort_keys=True)))

    def delete_namespace(self, name: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM namespaces WHERE name=?", (name,))
            db.execute("DELETE FROM leases WHERE namespace=?", (name,))

    def namespace_in_use(self, name: str) -> str | None:
        """What still lives in a namespace ("containers", "tasks", "leases"), or None."""
        for table, what, col in (("containers", "containers", "namespace"),
                                 ("processes", "tasks", "namespace"),
                                 ("leases", "leases", "namespace")):
            if self.db.execute(f"SELECT 1 FROM {table} WHERE {col}=? LIMIT 1", (name,)).fetchone():
                return what
        return None

    # containers
    def get_container(self, namespace: str, id: str) -> ContainerRecord | None:
        row = self.db.execute(f"SELECT {', '.join(_CONTAINER_COLUMNS)} FROM containers "
                              "WHERE namespace=? AND id=?", (namespace, id)).fetchone()
        return self._container(row) if row else None

    def list_containers(self, namespace: str) -> list[ContainerRecord]:
        rows = self.db.execute(f"SELECT {', '.join(_CONTAINER_COLUMNS)} FROM containers "
                               "WHERE namespace=? ORDER BY created_at, id", (namespace,)).fetchall()
        return [self._container(r) for r in rows]

    @staticmethod
    def _container(row) -> ContainerRecord:
        rec = ContainerRecord(*row)
        rec.labels = json.loads(rec.labels)
        return rec

    def insert_container(self, rec: ContainerRecord) -> None:
        values = [getattr(rec, c) for c in _CONTAINER_COLUMNS]
        values[_CONTAINER_COLUMNS.index("labels")] = json.dumps(rec.labels, sort_keys=True)
        with self.tx() as db:
            db.execute(f"INSERT INTO containers ({', '.join(_CONTAINER_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(values))})", values)

    def update_container(self, rec: ContainerRecord) -> None:
        cols = [c for c in _CONTAINER_COLUMNS if c not in ("namespace", "id", "created_at")]
        values = [json.dumps(rec.labels, sort_keys=True) if c == "labels" else getattr(rec, c)
                  for c in cols]
        with self.tx() as db:
            db.execute(f"UPDATE containers SET {', '.join(c + '=?' for c in cols)} "
                       "WHERE namespace=? AND id=?", (*values, rec.namespace, rec.id))

    def delete_container(self, namespace: str, id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM containers WHERE namespace=? AND id=?", (namespace, id))

    # processes
    def get_process(self, namespace: str, container_id: str, exec_id: str = "") -> ProcessRecord | None:
        row = self.db.execute(f"SELECT {', '.join(_PROCESS_COLUMNS)} FROM processes WHERE "
                              "namespace=? AND container_id=? AND exec_id=?",
                              (namespace, container_id, exec_id)).fetchone()
        return self._process(row) if row else None

    def list_processes(self, namespace: str | None = None, *, exec_id: str | None = None,
                       container_id: str | None = None) -> list[ProcessRecord]:
        where, args = [], []
        for col, val in (("namespace", namespace), ("exec_id", exec_id),
                         ("container_id", container_id)):
            if val is not None:
                where.append(f"{col}=?")
                args.append(val)
        sql = f"SELECT {', '.join(_PROCESS_COLUMNS)} FROM processes"
        if where:
            sql += " WHERE " + " AND ".join(where)
        rows = self.db.execute(sql + " ORDER BY namespace, container_id, exec_id", args).fetchall()
        return [self._process(r) for r in rows]

    @staticmethod
    def _process(row) -> ProcessRecord:
        rec = ProcessRecord(*row)
        rec.terminal = bool(rec.terminal)
        rec.rootfs = json.loads(rec.rootfs)
        return rec

    def insert_process(self, rec: ProcessRecord) -> None:
        values = [getattr(rec, c) for c in _PROCESS_COLUMNS]
        values[_PROCESS_COLUMNS.index("rootfs")] = json.dumps(rec.rootfs)
        values[_PROCESS_COLUMNS.index("terminal")] = int(rec.terminal)
        with self.tx() as db:
            db.execute(f"INSERT INTO processes ({', '.join(_PROCESS_COLUMNS)}) VALUES "
                       f"({', '.join('?' * len(values))})", values)

    def update_process(self, rec: ProcessRecord, **changes) -> None:
        """Set the given columns on rec and in its row."""
        for k, v in changes.items():
            setattr(rec, k, v)
        values = [json.dumps(v) if k == "rootfs" else (int(v) if k == "terminal" else v)
                  for k, v in changes.items()]
        with self.tx() as db:
            db.execute(f"UPDATE processes SET {', '.join(k + '=?' for k in changes)} WHERE "
                       "namespace=? AND container_id=? AND exec_id=?", (*values, *rec.key))

    def delete_process(self, namespace: str, container_id: str, exec_id: str) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM processes WHERE namespace=? AND container_id=? AND exec_id=?",
                       (namespace, container_id, exec_id))

    def delete_task(self, namespace: str, container_id: str) -> None:
        """The task's init row and every exec row."""
        with self.tx() as db:
            db.execute("DELETE FROM processes WHERE namespace=? AND container_id=?",
                       (namespace, container_id))

    # events
    def insert_event(self, timestamp: int, namespace: str, topic: str, type_url: str,
                     payload: bytes) -> int:
        with self.tx() as db:
            cur = db.execute("INSERT INTO events (timestamp, namespace, topic, type_url, payload) "
                             "VALUES (?, ?, ?, ?, ?)", (timestamp, namespace, topic, type_url, payload))
            return cur.lastrowid

    def events_after(self, seq: int, limit: int = 1000) -> list[tuple]:
        return self.db.execute("SELECT seq, timestamp, namespace, topic, type_url, payload FROM events "
                               "WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit)).fetchall()

    def last_event_seq(self) -> int:
        row = self.db.execute("SELECT seq FROM sqlite_sequence WHERE name='events'").fetchone()
        return row[0] if row else 0

    def first_event_seq(self) -> int:
        """The oldest stored event's number (0 when none is stored)."""
        row = self.db.execute("SELECT MIN(seq) FROM events").fetchone()
        return row[0] or 0

    def prune_events(self, keep: int) -> None:
        with self.tx() as db:
            db.execute("DELETE FROM events WHERE seq <= ?", (self.last_event_seq() - keep,))

    # leases
    def put_lease(self, namespace: str, id: str, labels: dict, created_at: int) -> bool:
        with self.tx() as db:
            cur = db.execute("INSERT OR IGNORE INTO leases (namespace, id, labels, created_at) "
                             "VALUES (?, ?, ?, ?)", (namespace, id, json.dumps(labels), created_at))
            return cur.rowcount == 1

    def delete_lease(self, namespace: str, id: str) -> bool:
        with self.tx() as db:
            return db.execute("DELETE FROM leases WHERE namespace=? AND id=?",
                              (namespace, id)).rowcount == 1

    def list_leases(self, namespace: str) -> list[tuple[str, dict, int]]:
        rows = self.db.execute("SELECT id, labels, created_at FROM leases WHERE namespace=? "
                               "ORDER BY created_at", (namespace,)).fetchall()
        return [(i, json.loads(lbl), ts) for i, lbl, ts in rows]
