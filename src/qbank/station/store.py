"""The station's own SQLite file: WAL with ``synchronous=FULL``, so a committed write survives a crash of the
station or of the machine; one writer thread commits whatever is waiting in one transaction (group commit), and a
caller's write is acknowledged only after its commit.

Each write is a function of the connection run inside its own savepoint, so one refused write does not undo the
others of its batch. Times are seconds since the epoch by the station's clock."""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from qbank.lib.digest import GENESIS, chain_hash

T = TypeVar("T")
SCHEMA_VERSION = 1
SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS room (
  code TEXT PRIMARY KEY, started_at REAL, started_by TEXT, ended_at REAL,
  outage_seconds REAL NOT NULL DEFAULT 0, bundle_id TEXT);
CREATE TABLE IF NOT EXISTS candidate (
  number TEXT PRIMARY KEY, room TEXT NOT NULL, desk INTEGER NOT NULL,
  status TEXT NOT NULL DEFAULT 'expected',  -- expected, signed_in, submitted, absent
  signed_in_at REAL, submitted_at REAL, how TEXT NOT NULL DEFAULT '',
  extra_seconds INTEGER NOT NULL DEFAULT 0, machine TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS answer (
  number TEXT NOT NULL, no INTEGER NOT NULL, places TEXT NOT NULL, seq INTEGER NOT NULL, at REAL NOT NULL,
  PRIMARY KEY (number, no));
CREATE TABLE IF NOT EXISTS flag (number TEXT NOT NULL, no INTEGER NOT NULL, PRIMARY KEY (number, no));
CREATE TABLE IF NOT EXISTS answer_log (
  id INTEGER PRIMARY KEY, number TEXT NOT NULL, at REAL NOT NULL, no INTEGER NOT NULL, places TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ix_answer_log_number ON answer_log (number, id);
CREATE TABLE IF NOT EXISTS browser (
  token_hash TEXT PRIMARY KEY, number TEXT NOT NULL, machine TEXT NOT NULL, created_at REAL NOT NULL,
  revoked_at REAL);
CREATE TABLE IF NOT EXISTS desk_code (
  code_hash TEXT PRIMARY KEY, number TEXT NOT NULL, issued_at REAL NOT NULL, used_at REAL);
CREATE TABLE IF NOT EXISTS proctor (token_hash TEXT PRIMARY KEY, room TEXT NOT NULL, created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS log (
  room TEXT NOT NULL, seq INTEGER NOT NULL, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
  detail TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL, PRIMARY KEY (room, seq));
CREATE TABLE IF NOT EXISTS incident (
  id INTEGER PRIMARY KEY, room TEXT NOT NULL, at REAL NOT NULL, category TEXT NOT NULL, note TEXT NOT NULL,
  by TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (
  bundle_id TEXT PRIMARY KEY, room TEXT NOT NULL, body BLOB NOT NULL, sha256 TEXT NOT NULL, created_at REAL NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, last_attempt_at REAL, last_error TEXT NOT NULL DEFAULT '',
  acknowledged_at REAL, answer TEXT);
"""


class StoreError(Exception):
    """The station's database cannot be used (wrong file, newer schema)."""


def connect(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # the WAL is fsynced at each commit: an acknowledged write is on disk
    conn.execute("PRAGMA foreign_keys=ON")
    conn.row_factory = sqlite3.Row
    return conn


class Store:
    """The station's database and its one writer thread."""

    def __init__(self, path: Path, batch: int = 256) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.conn = connect(path)
        version = self.conn.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{path} was written by a newer station (schema {version}); use that version")
        self.conn.executescript(SCHEMA)
        self.conn.execute(f"PRAGMA user_version={SCHEMA_VERSION}")
        self.batch = batch
        self.heads: dict[str, tuple[int, str]] = {}  # room -> (seq, hash) of its log's last entry
        for row in self.conn.execute("SELECT room, seq, hash FROM log l WHERE seq = "
                                     "(SELECT max(seq) FROM log WHERE room = l.room)"):
            self.heads[row["room"]] = (row["seq"], row["hash"])
        self.queue: queue.SimpleQueue[tuple[Callable[[sqlite3.Connection], Any], Any] | None] = queue.SimpleQueue()
        self.thread: threading.Thread | None = None
        self.loop: asyncio.AbstractEventLoop | None = None

    # ------------------------------------------------------------------ the writer
    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.thread = threading.Thread(target=self._writer, name="station-writer", daemon=True)
        self.thread.start()

    def close(self) -> None:
        if self.thread is not None:
            self.queue.put(None)
            self.thread.join(10)
            self.thread = None
        self.conn.close()

    async def write(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``op`` in the next transaction; returns (or raises) what it did once the commit is on disk."""
        assert self.loop is not None, "the writer is not started"
        future: asyncio.Future[T] = self.loop.create_future()
        self.queue.put((op, future))
        return await future

    def write_now(self, op: Callable[[sqlite3.Connection], T]) -> T:
        """Before the writer starts (start-up): run ``op`` in its own transaction here."""
        assert self.thread is None
        with self.transaction():
            return op(self.conn)

    @contextlib.contextmanager
    def transaction(self) -> Any:
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        try:
            self.conn.execute("COMMIT")
        except sqlite3.Error:  # e.g. the disk is full: nothing of it stands, nothing is acknowledged
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def _writer(self) -> None:
        while True:
            first = self.queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < self.batch:
                try:
                    more = self.queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    self.queue.put(None)  # stop after this batch
                    break
                batch.append(more)
            results: list[tuple[bool, Any]] = []
            try:
                with self.transaction():
                    for op, _ in batch:
                        self.conn.execute("SAVEPOINT op")
                        heads = dict(self.heads)
                        try:
                            results.append((True, op(self.conn)))
                            self.conn.execute("RELEASE op")
                        except Exception as exc:
                            self.conn.execute("ROLLBACK TO op")
                            self.conn.execute("RELEASE op")
                            self.heads = heads
                            results.append((False, exc))
            except Exception as exc:  # the commit itself failed: nothing of the batch is acknowledged
                self._reload_heads()
                results = [(False, exc)] * len(batch)
            assert self.loop is not None
            for (_, future), (ok, value) in zip(batch, results, strict=True):
                self.loop.call_soon_threadsafe(_settle, future, ok, value)

    def _reload_heads(self) -> None:
        self.heads = {}
        for row in self.conn.execute("SELECT room, seq, hash FROM log l WHERE seq = "
                                     "(SELECT max(seq) FROM log WHERE room = l.room)"):
            self.heads[row["room"]] = (row["seq"], row["hash"])

    # ------------------------------------------------------------------ reads (start-up, reports)
    def rows(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        """A read on the writer's connection: only before the writer starts, or from inside a write."""
        return list(self.conn.execute(sql, args))

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    # ------------------------------------------------------------------ the hash-chained log (inside a write)
    def append_log(self, conn: sqlite3.Connection, room: str, actor: str, action: str, detail: dict[str, Any],
                   at: float | None = None) -> dict[str, Any]:
        """Append an entry to the room's chain (call from inside a write); returns the entry."""
        seq, prev = self.heads.get(room, (0, GENESIS))
        entry: dict[str, Any] = {"seq": seq + 1, "at": iso(at if at is not None else time.time()), "actor": actor,
                                 "action": action, "detail": detail, "prev": prev}
        entry["hash"] = chain_hash(prev, entry)
        conn.execute("INSERT INTO log (room, seq, at, actor, action, detail, prev, hash) VALUES (?,?,?,?,?,?,?,?)",
                     (room, entry["seq"], entry["at"], actor, action, json.dumps(detail, ensure_ascii=False),
                      prev, entry["hash"]))
        self.heads[room] = (entry["seq"], entry["hash"])
        return entry


def log_entries(conn: sqlite3.Connection, room: str) -> list[dict[str, Any]]:
    return [{"seq": r["seq"], "at": r["at"], "actor": r["actor"], "action": r["action"],
             "detail": json.loads(r["detail"]), "prev": r["prev"], "hash": r["hash"]}
            for r in conn.execute("SELECT * FROM log WHERE room = ? ORDER BY seq", (room,))]


def set_meta(conn: sqlite3.Connection, key: str, value: str) -> None:
    conn.execute("INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                 (key, value))


def iso(at: float) -> str:
    """A station time as ISO 8601 in UTC with milliseconds."""
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds")


def _settle(future: asyncio.Future[Any], ok: bool, value: Any) -> None:
    if future.done():  # the caller went away (a dropped request): the write stands all the same
        return
    if ok:
        future.set_result(value)
    else:
        future.set_exception(value)


def outbox_of(path: Path) -> list[dict[str, Any]]:
    """The response bundles a station's database holds (read-only: the station may be running)."""
    if not path.exists():
        raise StoreError(f"{path} does not exist")
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT bundle_id, room, body, sha256, created_at, attempts, "
                                              "last_error, acknowledged_at FROM outbox ORDER BY created_at")]
    except sqlite3.Error as exc:
        raise StoreError(f"{path} is not an exam station's database: {exc}") from exc
    finally:
        conn.close()
