"""The event store, on real SQLite files."""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.states import Source
from agentsup.supervisor.store import EventStore, NewEvent, StoreError

K = EventKind


@pytest.fixture
def store(tmp_path: Path) -> Iterator[EventStore]:
    with EventStore.open(tmp_path / "events.db") as s:
        yield s


def test_append_returns_event_with_seq_and_round_trips(store: EventStore) -> None:
    data: dict[str, JSON] = {"attempt": 2, "nested": {"list": [1, 2.5, None, True, "é"]}, "empty": {}}
    e = store.append(K.AGENT_SPAWN, "a", Source.SCHEDULER, data, ts=12.5)
    assert e == Event(1, 12.5, K.AGENT_SPAWN, "a", "scheduler", data)
    [back] = store.read()
    assert back == e
    assert back.data == data
    assert isinstance(back.kind, EventKind)


def test_data_is_stored_as_compact_json(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "e.db") as s:
        s.append(K.ALERT, "a", "pattern", {"x": [1, 2], "y": "z"})
    conn = sqlite3.connect(tmp_path / "e.db")
    try:
        assert conn.execute("SELECT data FROM events").fetchone() == ('{"x":[1,2],"y":"z"}',)
    finally:
        conn.close()


def test_ts_defaults_to_the_clock(tmp_path: Path) -> None:
    with EventStore.open(tmp_path / "e.db", clock=lambda: 77.0) as s:
        assert s.append(K.RUN_STARTED, None, "engine").ts == 77.0
        assert s.read()[0].ts == 77.0


def test_seq_is_monotonic_and_last_seq(store: EventStore) -> None:
    assert store.last_seq() == 0
    seqs = [store.append(K.ALERT, "a", "engine", {"i": i}).seq for i in range(5)]
    assert seqs == [1, 2, 3, 4, 5]
    assert store.last_seq() == 5
    assert [e.data["i"] for e in store.read()] == [0, 1, 2, 3, 4]


def test_append_many_is_one_transaction(store: EventStore) -> None:
    out = store.append_many(
        [
            NewEvent(K.AGENT_SPAWN, "a", "scheduler", {"attempt": 1}, ts=1.0),
            NewEvent(K.AGENT_STATE, "a", "scheduler"),
        ]
    )
    assert [e.seq for e in out] == [1, 2]
    assert store.read() == out
    with pytest.raises(TypeError):
        store.append_many(
            [NewEvent(K.ALERT, "a", "engine", {"ok": 1}), NewEvent(K.ALERT, "a", "engine", {"bad": {1, 2}})]  # type: ignore[dict-item]
        )
    assert store.last_seq() == 2


def test_append_many_takes_plain_tuples(store: EventStore) -> None:
    rows: list[tuple[EventKind, str | None, str, dict[str, JSON], float | None]] = [
        (K.AGENT_SPAWN, "a", Source.SCHEDULER, {"attempt": 1}, 5.0),
        (K.AGENT_STATE, "a", "scheduler", {"to": "starting"}, None),
    ]
    out = store.append_many(rows)
    assert [(e.seq, e.kind, e.source, dict(e.data)) for e in out] == [
        (1, K.AGENT_SPAWN, "scheduler", {"attempt": 1}),
        (2, K.AGENT_STATE, "scheduler", {"to": "starting"}),
    ]
    assert out[0].ts == 5.0
    assert store.read() == out


def test_append_many_rolls_back_on_sqlite_error(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EventStore.open(path) as s:
        s.append(K.ALERT, "a", "engine")
        conn = sqlite3.connect(path)
        conn.execute(
            "CREATE TRIGGER no_b BEFORE INSERT ON events WHEN NEW.agent = 'b' "
            "BEGIN SELECT RAISE(ABORT, 'no b here'); END"
        )
        conn.commit()
        conn.close()
        with pytest.raises(StoreError, match="no b here"):
            s.append_many([NewEvent(K.ALERT, "a", "engine"), NewEvent(K.ALERT, "b", "engine")])
        assert [e.seq for e in s.read()] == [1]
        assert s.append(K.ALERT, "a", "engine").seq == 2


def test_read_filters(store: EventStore) -> None:
    store.append(K.RUN_STARTED, None, "engine")
    store.append(K.AGENT_SPAWN, "a", "scheduler", {"attempt": 1})
    store.append(K.AGENT_SPAWN, "b", "scheduler", {"attempt": 1})
    store.append(K.AGENT_STATE, "a", "exit_file", {"to": "succeeded"})
    store.append(K.ALERT, "b", "pattern")

    def seqs(**kw: object) -> list[int]:
        return [e.seq for e in store.read(**kw)]  # type: ignore[arg-type]

    assert seqs() == [1, 2, 3, 4, 5]
    assert seqs(after=3) == [4, 5]
    assert seqs(agent="a") == [2, 4]
    assert seqs(kinds={K.AGENT_SPAWN, K.ALERT}) == [2, 3, 5]
    assert seqs(kinds=[]) == []
    assert seqs(agent="b", kinds=[K.ALERT]) == [5]
    assert seqs(limit=2) == [1, 2]
    assert seqs(after=1, limit=2) == [2, 3]
    assert seqs(agent="nobody") == []


def test_iter_all_streams_in_chunks(store: EventStore) -> None:
    store.append_many([NewEvent(K.ALERT, "a", "engine", {"i": i}) for i in range(25)])
    assert [e.seq for e in store.iter_all(chunk=7)] == list(range(1, 26))
    assert [e.seq for e in store.iter_all(chunk=5)] == list(range(1, 26))
    assert [e.seq for e in store.iter_all(after=20, chunk=2)] == [21, 22, 23, 24, 25]


def test_wal_mode_and_schema(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EventStore.open(path) as s:
        assert s.journal_mode() == "wal"
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
        indexes = [r[1] for r in conn.execute("PRAGMA index_list(events)").fetchall()]
        assert "events_agent" in indexes
    finally:
        conn.close()


def test_reopen_continues_the_log(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EventStore.open(path) as s:
        s.append(K.ALERT, "a", "engine")
    with EventStore.open(path) as s:
        assert s.append(K.ALERT, "a", "engine").seq == 2
        assert len(s.read()) == 2
    conn = sqlite3.connect(path)
    try:
        assert conn.execute("SELECT version FROM schema_version").fetchall() == [(1,)]
    finally:
        conn.close()


def test_readonly_reader_sees_committed_events_while_writer_is_open(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    writer = EventStore.open(path)
    try:
        writer.append(K.RUN_STARTED, None, "engine")
        with EventStore.open_readonly(path) as reader:
            assert [e.seq for e in reader.read()] == [1]
            writer.append(K.AGENT_SPAWN, "a", "scheduler", {"attempt": 1})
            assert reader.last_seq() == 2
            assert reader.read(after=1)[0].data == {"attempt": 1}
            with pytest.raises(StoreError, match="readonly"):
                reader.append(K.ALERT, "a", "engine")
        writer.append(K.ALERT, "a", "engine")
        assert writer.last_seq() == 3
    finally:
        writer.close()


def test_readonly_after_the_writer_closed(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EventStore.open(path) as s:
        s.append(K.RUN_STARTED, None, "engine")
        s.append(K.RUN_FINISHED, None, "engine", {"state": "succeeded"})
    with EventStore.open_readonly(path) as reader:
        assert [e.kind for e in reader.read()] == [K.RUN_STARTED, K.RUN_FINISHED]
        assert reader.readonly


def test_readonly_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.db"
    with pytest.raises(StoreError, match="no such file") as info:
        EventStore.open_readonly(path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert not path.exists()


def test_unwritable_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    path = blocker / "events.db"
    with pytest.raises(StoreError) as info:
        EventStore.open(path)
    assert info.value.path == path
    assert str(path) in str(info.value)
    assert "unable to open" in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes through directory permissions")
def test_read_only_directory(tmp_path: Path) -> None:
    d = tmp_path / "ro"
    d.mkdir()
    d.chmod(0o500)
    try:
        with pytest.raises(StoreError, match="unable to open"):
            EventStore.open(d / "events.db")
    finally:
        d.chmod(0o700)


def test_corrupt_file(tmp_path: Path) -> None:
    path = tmp_path / "events.db"
    path.write_bytes(b"this is not an sqlite database, just some bytes" * 100)
    with pytest.raises(StoreError, match="not a database") as info:
        EventStore.open(path)
    assert str(path) in str(info.value)
    with pytest.raises(StoreError, match="not a database"):
        EventStore.open_readonly(path)


def test_foreign_schema_version(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    EventStore.open(path).close()
    conn = sqlite3.connect(path)
    conn.execute("UPDATE schema_version SET version = 99")
    conn.commit()
    conn.close()
    with pytest.raises(StoreError, match="schema version 99"):
        EventStore.open(path)
    with pytest.raises(StoreError, match="schema version 99"):
        EventStore.open_readonly(path)


def test_malformed_row_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "e.db"
    with EventStore.open(path) as s:
        s.append(K.ALERT, "a", "engine")
        conn = sqlite3.connect(path)
        conn.execute("UPDATE events SET kind = 'no.such.kind'")
        conn.commit()
        conn.close()
        with pytest.raises(StoreError, match="malformed event row"):
            s.read()


def test_closed_store_raises(store: EventStore) -> None:
    store.close()
    store.close()
    with pytest.raises(StoreError, match="closed"):
        store.append(K.ALERT, "a", "engine")
    with pytest.raises(StoreError, match="closed"):
        store.read()


def test_concurrent_appends_keep_seq_unique_and_gapless(store: EventStore) -> None:
    threads, per_thread = 8, 50
    got: list[list[int]] = [[] for _ in range(threads)]
    barrier = threading.Barrier(threads)

    def work(i: int) -> None:
        barrier.wait()
        for j in range(per_thread):
            if j % 5 == 0:
                evs = store.append_many([NewEvent(K.ALERT, f"t{i}", "engine", {"j": j}) for _ in range(2)])
                got[i].extend(e.seq for e in evs)
            else:
                got[i].append(store.append(K.ALERT, f"t{i}", "engine", {"j": j}).seq)

    pool = [threading.Thread(target=work, args=(i,)) for i in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    total = threads * (per_thread + per_thread // 5)
    all_seqs = sorted(s for g in got for s in g)
    assert all_seqs == list(range(1, total + 1))
    for g in got:
        assert g == sorted(g)
    assert [e.seq for e in store.read()] == all_seqs
