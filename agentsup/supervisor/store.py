"""The event store: the run's append-only event log, one SQLite file in the run directory.

One writer (the engine) appends; any number of readers (``agentsup status``/``events``, a restarted engine)
read the same file through :meth:`EventStore.open_readonly`. WAL mode lets readers see every committed
event while the writer keeps going.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import NamedTuple, Self

from agentsup.supervisor.events import JSON, Event, EventKind

SCHEMA_VERSION = 1

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)",
    "CREATE TABLE IF NOT EXISTS events ("
    " seq INTEGER PRIMARY KEY AUTOINCREMENT,"
    " ts REAL NOT NULL,"
    " kind TEXT NOT NULL,"
    " agent TEXT,"
    " source TEXT NOT NULL,"
    " data TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS events_agent ON events (agent, seq)",
)

_COLUMNS = "seq, ts, kind, agent, source, data"


class StoreError(Exception):
    """The event log could not be opened, read or written; says which file and what SQLite reported."""

    def __init__(self, path: Path, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"event log {path}: {message}")


class NewEvent(NamedTuple):
    """An event to append; the store assigns ``seq`` (and ``ts`` when None)."""

    kind: EventKind
    agent: str | None
    source: str
    data: Mapping[str, JSON] = MappingProxyType({})
    ts: float | None = None


NewEventRow = tuple[EventKind, str | None, str, Mapping[str, JSON], float | None]
"""What :meth:`EventStore.append_many` takes: a :class:`NewEvent` or a plain tuple of the same shape."""


def _encode(data: Mapping[str, JSON]) -> str:
    return json.dumps(dict(data), separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class EventStore:
    """An open event log. Thread-safe: every use of the connection holds one lock."""

    def __init__(
        self, conn: sqlite3.Connection, path: Path, *, readonly: bool, clock: Callable[[], float]
    ) -> None:
        self._conn = conn
        self._lock = threading.Lock()
        self._closed = False
        self.path = path
        self.readonly = readonly
        self._clock = clock

    # -- opening ---------------------------------------------------------------------------------------

    @classmethod
    def open(cls, path: Path, *, clock: Callable[[], float] = time.time) -> EventStore:
        """Open ``path`` for appending, creating the file and schema if needed (the directory must exist)."""
        try:
            conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as e:
            raise StoreError(path, str(e)) from e
        try:
            _prepare_writer(conn, path)
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(path, str(e)) from e
        except StoreError:
            conn.close()
            raise
        return cls(conn, path, readonly=False, clock=clock)

    @classmethod
    def open_readonly(cls, path: Path) -> EventStore:
        """Open an existing log for reading only, e.g. while the engine writes to it."""
        if not path.is_file():
            raise StoreError(path, "no such file (is this a run directory?)")
        uri = f"{path.resolve().as_uri()}?mode=ro"
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False, timeout=10.0)
        except sqlite3.Error as e:
            raise StoreError(path, str(e)) from e
        try:
            _check_version(path, conn.execute("SELECT version FROM schema_version").fetchone())
        except sqlite3.Error as e:
            conn.close()
            raise StoreError(path, str(e)) from e
        except StoreError:
            conn.close()
            raise
        return cls(conn, path, readonly=True, clock=time.time)

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # -- writing ---------------------------------------------------------------------------------------

    def append(
        self,
        kind: EventKind,
        agent: str | None,
        source: str,
        data: Mapping[str, JSON] | None = None,
        ts: float | None = None,
    ) -> Event:
        """Append one event; it is committed when this returns."""
        return self.append_many([NewEvent(kind, agent, source, MappingProxyType(dict(data or {})), ts)])[0]

    def append_many(self, events: Iterable[NewEventRow]) -> list[Event]:
        """Append ``events`` in one transaction: all of them are committed, or none."""
        batch = [(e, _encode(e.data)) for e in map(NewEvent._make, events)]
        with self._lock:
            self._check_open()
            now = self._clock()  # read under the lock, so ts never goes backwards as seq goes up
            try:
                self._conn.execute("BEGIN IMMEDIATE")
                try:
                    out = [self._insert(e, now if e.ts is None else float(e.ts), text) for e, text in batch]
                    self._conn.execute("COMMIT")
                except BaseException:
                    if self._conn.in_transaction:
                        self._conn.execute("ROLLBACK")
                    raise
            except sqlite3.Error as e:
                raise StoreError(self.path, str(e)) from e
        return out

    def _insert(self, event: NewEvent, ts: float, text: str) -> Event:
        source = str(event.source)
        cur = self._conn.execute(
            "INSERT INTO events (ts, kind, agent, source, data) VALUES (?, ?, ?, ?, ?)",
            (ts, event.kind.value, event.agent, source, text),
        )
        if cur.lastrowid is None:
            raise StoreError(self.path, "insert returned no row id")
        return Event(cur.lastrowid, ts, event.kind, event.agent, source, MappingProxyType(dict(event.data)))

    # -- reading ---------------------------------------------------------------------------------------

    def read(
        self,
        after: int = 0,
        agent: str | None = None,
        kinds: Collection[EventKind] | None = None,
        limit: int | None = None,
    ) -> list[Event]:
        """Events with ``seq > after`` in log order, optionally of one agent and of some kinds only."""
        # Only constant column names and "?" placeholders are interpolated; values are bound.
        sql = f"SELECT {_COLUMNS} FROM events WHERE seq > ?"  # noqa: S608
        params: list[object] = [after]
        if agent is not None:
            sql += " AND agent = ?"
            params.append(agent)
        if kinds is not None:
            sql += f" AND kind IN ({', '.join('?' for _ in kinds)})"
            params.extend(k.value for k in kinds)
        sql += " ORDER BY seq"
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        with self._lock:
            self._check_open()
            try:
                rows = self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                raise StoreError(self.path, str(e)) from e
        return [self._to_event(r) for r in rows]

    def iter_all(self, after: int = 0, chunk: int = 1000) -> Iterator[Event]:
        """Every event after ``after``, read ``chunk`` rows at a time; the lock is free between chunks."""
        while True:
            batch = self.read(after=after, limit=chunk)
            yield from batch
            if len(batch) < chunk:
                return
            after = batch[-1].seq

    def last_seq(self) -> int:
        """The highest seq in the log, 0 when it is empty."""
        value = self._scalar("SELECT MAX(seq) FROM events")
        return 0 if value is None else int(str(value))

    def journal_mode(self) -> str:
        value = self._scalar("PRAGMA journal_mode")
        return "" if value is None else str(value).lower()

    def _scalar(self, sql: str) -> object:
        """The first column of the first row ``sql`` returns, or None."""
        with self._lock:
            self._check_open()
            try:
                row = self._conn.execute(sql).fetchone()
            except sqlite3.Error as e:
                raise StoreError(self.path, str(e)) from e
        return None if row is None else row[0]

    def _check_open(self) -> None:
        if self._closed:
            raise StoreError(self.path, "the store is closed")

    def _to_event(self, row: tuple[object, ...]) -> Event:
        seq, ts, kind, agent, source, text = row
        try:
            data = json.loads(str(text))
            kind_ = EventKind(str(kind))
        except ValueError as e:
            raise StoreError(self.path, f"malformed event row {row!r}: {e}") from e
        if not (
            isinstance(seq, int)
            and isinstance(ts, int | float)
            and isinstance(source, str)
            and (agent is None or isinstance(agent, str))
            and isinstance(data, dict)
        ):
            raise StoreError(self.path, f"malformed event row {row!r}: wrong column types")
        return Event(seq, float(ts), kind_, agent, source, MappingProxyType(data))


def _check_version(path: Path, row: tuple[object, ...] | None) -> None:
    if row is None or row[0] != SCHEMA_VERSION:
        found = "none" if row is None else row[0]
        raise StoreError(path, f"schema version {found}, this agentsup reads {SCHEMA_VERSION}")


def _prepare_writer(conn: sqlite3.Connection, path: Path) -> None:
    """Switch to WAL and create the schema; raises sqlite3.Error or StoreError."""
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()
    if mode is None or str(mode[0]).lower() != "wal":
        raise StoreError(path, f"cannot switch to WAL journal mode (got {mode!r})")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("BEGIN IMMEDIATE")
    for stmt in _SCHEMA:
        conn.execute(stmt)
    row = conn.execute("SELECT version FROM schema_version").fetchone()
    if row is None:
        conn.execute("INSERT INTO schema_version (version) VALUES (?)", (SCHEMA_VERSION,))
    conn.execute("COMMIT")
    if row is not None:
        _check_version(path, row)
