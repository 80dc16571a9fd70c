"""What the benchmarks share: an isolated tmux environment, the floor's wrapper and inotify watch, and
``agentsup start --no-tui`` run to completion with its event log read back.

Not a benchmark itself; ``bench/*.py`` import it as ``common`` (``python bench/x.py`` puts ``bench/`` on
``sys.path``).
"""

from __future__ import annotations

import atexit
import compileall
import json
import logging
import os
import queue
import shlex
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from watchdog.events import (
    FileCreatedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer

import agentsup

SESSION_END_TIMEOUT = 15.0

Event = tuple[float, str, str | None, dict[str, object]]
"""One row of a run's event log: ts, kind, agent, data."""


class BenchError(Exception):
    """A case did not run to completion; the message says what went wrong."""


def percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    rank = pct / 100 * (len(ordered) - 1)
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


_SCRATCH: list[Path] = []
SCRATCH_BASE = "/tmp"  # run.py --tmp


def _remove_scratch() -> None:
    while _SCRATCH:
        shutil.rmtree(_SCRATCH.pop(), ignore_errors=True)


atexit.register(_remove_scratch)


@contextmanager
def scratch(prefix: str) -> Iterator[Path]:
    """A new directory for one case, removed when the bench process exits, not when the case ends.

    On an ext4 without a journal (this bench machine's), a new file's inode is looked for past the inodes
    of its group freed in the last minutes (ext4's ``recently_deleted``, which ``perf`` shows at the top of
    the engine's own CPU in a fan-out): creating a file cost 0.02 to 0.6 ms here, depending on what was
    removed nearby just before. A case removing its thousands of files would add to what the next case
    pays, and agentsup creates ten files an agent to the floor's one.
    """
    # Short paths: the run's control socket must fit in an AF_UNIX address.
    path = Path(tempfile.mkdtemp(prefix=prefix, dir=SCRATCH_BASE))
    _SCRATCH.append(path)
    yield path


def bench_env(tmp: Path) -> dict[str, str]:
    """The environment both cases run in: HOME, SHELL and tmux's socket directory pinned under ``tmp``.

    agentsup runs from its byte code, as pip installs it (pip compiles what it installs, the peers'
    packages included): the checkout is compiled here, and ``PYTHONDONTWRITEBYTECODE`` is dropped, which
    would otherwise have every agentsup command compile its modules again (about 0.25 s per process here).
    """
    compileall.compile_dir(Path(agentsup.__file__).parent, quiet=1)
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE", "PYTHONDONTWRITEBYTECODE")}
    (tmp / "home").mkdir()
    env["HOME"] = str(tmp / "home")
    env["SHELL"] = "/bin/sh"
    # tmux leaves its socket file behind after kill-server; here it goes away with the temp dir.
    env["TMUX_TMPDIR"] = str(tmp)
    return env


def kill_server(tmux: str, socket: str, env: Mapping[str, str]) -> None:
    # Exit status 1 when the server is already gone, which is the usual case for agentsup.
    subprocess.run([tmux, "-L", socket, "kill-server"], env=dict(env), capture_output=True, check=False)


def await_session_gone(tmux: str, socket: str, session: str, env: Mapping[str, str]) -> None:
    deadline = time.monotonic() + SESSION_END_TIMEOUT
    has_session = [tmux, "-L", socket, "has-session", "-t", f"={session}"]
    while time.monotonic() < deadline:
        if subprocess.run(has_session, env=dict(env), capture_output=True, check=False).returncode:
            return
        time.sleep(0.02)


def session_pids(tmux: str, socket: str, session: str, env: Mapping[str, str]) -> list[int]:
    argv = [tmux, "-L", socket, "list-panes", "-s", "-t", f"={session}", "-F", "#{pane_pid}"]
    proc = subprocess.run(argv, env=dict(env), capture_output=True, text=True, check=False)
    return [int(line) for line in proc.stdout.split() if line.isdigit()]


def await_gone(pids: Sequence[int]) -> None:
    deadline = time.monotonic() + SESSION_END_TIMEOUT
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if psutil.pid_exists(pid)]
        time.sleep(0.02)


# ---- agentsup ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One ``agentsup start PLAN --no-tui`` run, timed from just before the command."""

    started_at: float  # time.time() just before `start`, on the event log's clock
    exited: float  # seconds until `start` exited
    gone: float  # seconds until the run's tmux session was gone (the engine's teardown done)
    events: list[Event]


def read_events(db: Path) -> list[Event]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute("SELECT ts, kind, agent, data FROM events ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [(float(ts), str(kind), agent, json.loads(data)) for ts, kind, agent, data in rows]


def run_plan(plan: str, run_id: str, socket: str, tmux: str, timeout: float) -> Run:
    """Run ``plan`` to the end on its own tmux socket and state dir; BenchError unless it exits 0."""
    agentsup = Path(sys.executable).with_name("agentsup")
    if not agentsup.exists():
        raise BenchError(f"no agentsup console script next to {sys.executable}; pip install -e . first")
    with scratch("asb-") as tmp:
        env = bench_env(tmp)
        env["AGENTSUP_TMUX_SOCKET"] = socket
        env["AGENTSUP_STATE_DIR"] = str(tmp / "state")
        plan_file = tmp / "plan.toml"
        plan_file.write_text(plan)
        started_at = time.time()
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                [str(agentsup), "start", str(plan_file), "--no-tui", "--run-id", run_id],
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
            )
            exited = time.monotonic() - t0
            # `start` returns once the run is finished, while the engine still closes the agents' windows;
            # the session ends with the engine.
            await_session_gone(tmux, socket, run_id, env)
            gone = time.monotonic() - t0
        except subprocess.TimeoutExpired as exc:
            raise BenchError(f"agentsup start did not finish within {exc.timeout:.0f}s") from exc
        finally:
            engine = session_pids(tmux, socket, run_id, env)
            kill_server(tmux, socket, env)
            # A dying engine may still call tmux or write its run directory: let it go before the rmtree.
            await_gone(engine)
        if proc.returncode != 0:
            raise BenchError(
                f"agentsup start exited {proc.returncode}\n--- stdout\n{proc.stdout}--- stderr\n{proc.stderr}"
            )
        events = read_events(tmp / "state" / "runs" / run_id / "events.db")
    return Run(started_at, exited, gone, events)


def number(data: Mapping[str, object], key: str, agent: str) -> float:
    value = data.get(key)
    if not isinstance(value, int | float):
        raise BenchError(f"agentsup: agent.exit of {agent} has no numeric {key}: {data!r}")
    return float(value)


# ---- floor ------------------------------------------------------------------------------------------


class Arrivals(FileSystemEventHandler):
    """Queues (path, time seen) for every path an inotify event in the watched directory names."""

    def __init__(self) -> None:
        self.seen: queue.Queue[tuple[str, float]] = queue.Queue()

    def on_any_event(self, event: FileSystemEvent) -> None:
        now = time.time()
        for path in (event.src_path, getattr(event, "dest_path", "")):
            if path:
                self.seen.put((str(path), now))


@contextmanager
def watching(directory: Path) -> Iterator[Arrivals]:
    """An inotify watch on ``directory`` for the block, with the engine's mask: writes and renames."""
    arrivals = Arrivals()
    observer = Observer()
    wanted = [FileCreatedEvent, FileModifiedEvent, FileMovedEvent]
    observer.schedule(arrivals, str(directory), recursive=False, event_filter=wanted)
    observer.start()
    try:
        yield arrivals
    finally:
        # watchdog logs an error when stop() races a pending inotify read; the race is harmless.
        logging.getLogger("watchdog.observers.inotify").setLevel(logging.CRITICAL)
        observer.stop()
        observer.join()


def floor_script(exit_file: Path, command: str = "true") -> str:
    """What agentsup's wrapper does, minimally: start time, run, end time, exit file written atomically.

    As agentsup's wrapper does, it writes the file beside the watched directory (in ``floor_tmp``) and
    renames it in: a rename inside the watched directory reports a moved-from event, which watchdog may
    hold 0.5 s, and every event behind it. It holds no single quote (when the paths need no quoting), so it
    can be single-quoted for tmux's own command parser (control mode)."""
    tmp = shlex.quote(str(floor_tmp(exit_file) / f"{exit_file.name}.tmp"))
    final = shlex.quote(str(exit_file))
    return (
        f"s=$(date +%s.%N); {command}; e=$(date +%s.%N); "
        f'printf "%s %s\\n" "$s" "$e" > {tmp} && mv -f -- {tmp} {final}'
    )


def floor_tmp(exit_file: Path) -> Path:
    """The directory the floor's wrapper writes ``exit_file`` in before renaming it into place; made here."""
    path = exit_file.parent.with_name(exit_file.parent.name + "-tmp")
    path.mkdir(exist_ok=True)
    return path


def floor_session(tmux: str, socket: str, session: str, env: Mapping[str, str]) -> None:
    """A session whose first window stands in for agentsup's engine window and keeps it alive."""
    subprocess.run(
        [tmux, "-L", socket, "new-session", "-d", "-s", session, "--", "sleep", "86400"],
        env=dict(env),
        check=True,
    )


def read_exit_file(exit_file: Path) -> tuple[float, float]:
    """(started_at, ended_at) as the floor's wrapper wrote them."""
    first, last = exit_file.read_text().split()
    return float(first), float(last)


class ControlClient:
    """One persistent ``tmux -C`` client attached to ``session``, with pane output switched off for it.

    A command costs one line written to the client and one reply read back (~0.05 ms in tmux), against a
    process start per command through a subprocess (~4 ms)."""

    def __init__(self, tmux: str, socket: str, session: str, env: Mapping[str, str]) -> None:
        argv = [tmux, "-L", socket, "-C", "attach-session", "-t", f"={session}"]
        self._proc = subprocess.Popen(
            argv,
            env=dict(env),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            bufsize=1,
        )
        if self._proc.stdin is None or self._proc.stdout is None:
            raise BenchError("tmux control client: no pipes")
        self._stdin, self._stdout = self._proc.stdin, self._proc.stdout
        self._replies: queue.Queue[tuple[bool, list[str]] | None] = queue.Queue()
        self._reader = threading.Thread(target=self._read, name="tmux-control", daemon=True)
        self._reader.start()
        # The attach's own reply first: a command sent before it may find no attached client.
        self.reply()
        # Without this the client receives every byte every pane prints (and tmux's throughput halves).
        self.call("refresh-client -f no-output")

    def _read(self) -> None:
        block: list[str] | None = None
        for raw in self._stdout:
            line = raw.rstrip("\n")
            if line.startswith("%begin "):
                block = []
            elif block is not None and line.startswith(("%end ", "%error ")):
                self._replies.put((line.startswith("%end "), block))
                block = None
            elif block is not None:
                block.append(line)
        self._replies.put(None)

    def send(self, command: str) -> None:
        """Write ``command`` (tmux syntax, one line) without waiting for its reply."""
        self._stdin.write(command + "\n")
        self._stdin.flush()

    def reply(self, timeout: float = 10.0) -> list[str]:
        """The next command's reply; BenchError on ``%error`` or when the client is gone."""
        try:
            got = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise BenchError(f"tmux control client: no reply within {timeout:.0f}s") from None
        if got is None:
            raise BenchError("tmux control client exited")
        ok, lines = got
        if not ok:
            raise BenchError("tmux control client: " + " ".join(lines))
        return lines

    def call(self, command: str) -> list[str]:
        self.send(command)
        return self.reply()

    def close(self) -> None:
        self._stdin.close()
        try:
            self._proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait()
        self._reader.join(timeout=5)
