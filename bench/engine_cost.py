"""What the engine costs while a run goes on: idle with many quiet agents, and busy with agents printing as
fast as they can.

Each case starts ``agentsup start PLAN --detach`` on its own tmux socket and state directory, finds the
engine (``python -m agentsup.supervisor RUN_DIR``, by what it is, as ``tui.py`` does) and the run's tmux
server (its ``#{pid}``), and reads their CPU times with psutil over the measured window.

- **idle**: N agents ``sleep 3600``; once all run and a settling pause has passed, the engine's CPU over
  ``seconds`` as % of one core, and its RSS.
- **output**: P agents, each with 10 alert rules, wait on ``tmux wait-for`` until the bench releases them
  all at once, then print K chunks of ``yes line`` output, each followed by a marker line carrying the time
  it was printed (one of the rules matches it). The window runs from the release to the last ``agent.exit``
  (the engine reads an agent's output to its end before it logs the completion). Reported: the engine's
  and the tmux server's CPU over the window, the output rate, whether every output log is complete and
  every marker was alerted, and the alert latency (marker printed → ``alert`` event).

Not a benchmark itself; ``bench/run.py`` imports it.
"""

from __future__ import annotations

import secrets
import sqlite3
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psutil
from common import BenchError, await_gone, bench_env, kill_server, percentile, scratch, session_pids
from tui import cpu_seconds, engine_process, tmux_format, wait_for

TMUX = "tmux"
START_TIMEOUT = 180.0
LATE = 30.0  # after the output window: how long a short log or a missing alert is waited for
STALL = 60.0  # the output case gives up when no exit, alert or log byte arrives for this long
SETTLE = 5.0  # after the last agent runs: spawn bookkeeping and the first resource samples are done
RULES = [
    r"Traceback \(most recent call last\)",
    r"\bERROR\b",
    r"panic:",
    r"FATAL",
    r"Segmentation fault",
    r"[Oo]ut of memory",
    r"rate[ -]limit",
    r"[Pp]ermission denied",
    r"timed out",
    r"^MARK \d+ ",
]


@dataclass(frozen=True)
class Detached:
    run_dir: Path
    socket: str
    env: dict[str, str]

    @property
    def db(self) -> Path:
        return self.run_dir / "events.db"


@dataclass(frozen=True)
class IdleResult:
    agents: int
    seconds: float
    engine_cpu_percent: float
    engine_rss_mb: float
    server_cpu_percent: float  # the run's tmux server over the same window, for reference


@dataclass(frozen=True)
class OutputResult:
    agents: int
    megabytes: float  # printed in all (the yes chunks)
    seconds: float  # release → the last agent.exit
    printed_s: float  # release → the last printer's end (its wrapper's ended_at)
    lag_s: float  # the last printer's end → the last agent.exit: the engine catching up
    engine_cpu_percent: float
    server_cpu_percent: float
    logs_complete: int  # agents whose output log holds all they printed, last marker included, at the end
    alerts: int  # marker alerts logged by the end of the window
    logs_complete_later: int  # the same, up to LATE seconds after the window (tmux behind, or a loss?)
    alerts_later: int
    short_at_end: tuple[tuple[str, int], ...]  # (agent, log bytes) of the logs short at the end
    alerts_expected: int
    alert_p50_ms: float  # marker printed → alert event
    alert_p99_ms: float
    alert_max_ms: float

    @property
    def rate_mb_s(self) -> float:
        return self.megabytes / self.seconds


@contextmanager
def detached(plan: str, run_id: str, socket: str) -> Iterator[Detached]:
    """``agentsup start PLAN --detach`` on tmux socket ``socket`` in a scratch directory; the run's tmux
    server killed afterwards."""
    agentsup = Path(sys.executable).with_name("agentsup")
    with scratch("ase-") as tmp:
        env = bench_env(tmp)
        env["AGENTSUP_TMUX_SOCKET"] = socket
        env["AGENTSUP_STATE_DIR"] = str(tmp / "state")
        plan_file = tmp / "plan.toml"
        plan_file.write_text(plan)
        try:
            proc = subprocess.run(
                [str(agentsup), "start", str(plan_file), "--detach", "--run-id", run_id],
                env=env,
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode != 0:
                raise BenchError(f"agentsup start --detach exited {proc.returncode}: {proc.stderr.strip()}")
            yield Detached(tmp / "state" / "runs" / run_id, socket, env)
        finally:
            pids = session_pids(TMUX, socket, run_id, env)
            kill_server(TMUX, socket, env)
            await_gone(pids)


def _socket() -> str:
    return f"agentsup-bench-{secrets.token_hex(4)}"


def _count(db: Path, sql: str) -> int:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(conn.execute(sql).fetchone()[0])
    except sqlite3.OperationalError:  # the engine has not created the table yet
        return 0
    finally:
        conn.close()


def running(db: Path) -> int:
    sql = (
        "SELECT count(DISTINCT agent) FROM events "
        "WHERE kind = 'agent.state' AND json_extract(data, '$.to') = 'running'"
    )
    return _count(db, sql)


def exited(db: Path) -> int:
    return _count(db, "SELECT count(*) FROM events WHERE kind = 'agent.exit'")


def _all_running(run: Detached, agents: int) -> None:
    wait_for(lambda: running(run.db) >= agents, START_TIMEOUT, f"{agents} running agents", interval=0.2)


# ---- idle -------------------------------------------------------------------------------------------


def idle(agents: int = 200, seconds: float = 60.0) -> IdleResult:
    plan = [f'[run]\nname = "idle"\nmax_parallel = {agents}\n']
    plan += [f'[agents.a{i:03d}]\ncmd = "sleep 3600"\n' for i in range(agents)]
    with detached("\n".join(plan), "idle", _socket()) as run:
        _all_running(run, agents)
        time.sleep(SETTLE)
        engine = engine_process(run.run_dir)
        server = psutil.Process(tmux_format(run.socket, run.env, "#{pid}"))
        before = cpu_seconds(engine), cpu_seconds(server)
        t0 = time.monotonic()
        time.sleep(seconds)
        after = cpu_seconds(engine), cpu_seconds(server)
        window = time.monotonic() - t0
        rss = engine.memory_info().rss
        if running(run.db) < agents or exited(run.db):
            raise BenchError("idle: an agent stopped during the measurement")
    return IdleResult(
        agents,
        window,
        (after[0] - before[0]) / window * 100,
        rss / 2**20,
        (after[1] - before[1]) / window * 100,
    )


# ---- output -----------------------------------------------------------------------------------------


def _output_plan(agents: int, chunks: int, lines: int, socket: str) -> str:
    rules = ", ".join(f"{{ match = '{rule}', severity = \"info\" }}" for rule in RULES)
    body = (
        f"tmux -L {socket} wait-for go; i=0; while [ $i -lt {chunks} ]; do i=$((i+1)); "
        f'yes line | head -n {lines}; echo "MARK $i $(date +%s.%N)"; done'
    )
    parts = [f'[run]\nname = "output"\nmax_parallel = {agents + 1}\n']
    for i in range(agents):
        parts.append(f"[agents.p{i:02d}]\ncmd = '{body}'\nalerts = [{rules}]\n")
    # Keeps the run (and the engine) alive after the printers exit, so the window can be closed.
    parts.append('[agents.keeper]\ncmd = "sleep 3600"\n')
    return "\n".join(parts)


def _progress(run: Detached) -> tuple[int, int, int]:
    """agent.exit events, alert events, bytes in the output logs."""
    logs = sum(p.stat().st_size for p in (run.run_dir / "panes").glob("*.log"))
    return exited(run.db), _count(run.db, "SELECT count(*) FROM events WHERE kind = 'alert'"), logs


def _await_exits(run: Detached, agents: int) -> None:
    """Until ``agents`` agent.exit events are logged; BenchError when nothing moves for STALL seconds."""
    last, moved = _progress(run), time.monotonic()
    while last[0] < agents:
        time.sleep(0.1)
        now = _progress(run)
        if now != last:
            last, moved = now, time.monotonic()
        elif time.monotonic() - moved > STALL:
            engine_log = (run.run_dir / "engine.log").read_text()[-1000:]
            raise BenchError(
                f"output: stalled for {STALL:.0f}s at {now[0]} of {agents} exits, {now[1]} alerts, "
                f"{now[2] / 1e6:.1f} MB of logs; engine.log ends:\n{engine_log}"
            )


def _log_complete(log: Path, chunks: int, chunk: int) -> bool:
    if not log.exists() or log.stat().st_size < chunks * chunk:
        return False
    with log.open("rb") as f:
        f.seek(max(0, log.stat().st_size - 4096))
        return f"MARK {chunks} ".encode() in f.read()


def output(agents: int = 20, chunks: int = 10, chunk: int = 2**20) -> OutputResult:
    """``chunks`` chunks of about ``chunk`` bytes per agent (whole lines of ``yes line``)."""
    lines = chunk // len(b"line\n")
    chunk = lines * len(b"line\n")
    socket = _socket()
    with detached(_output_plan(agents, chunks, lines, socket), "output", socket) as run:
        _all_running(run, agents + 1)
        engine = engine_process(run.run_dir)
        server = psutil.Process(tmux_format(run.socket, run.env, "#{pid}"))
        before = cpu_seconds(engine), cpu_seconds(server)
        t0, released = time.monotonic(), time.time()
        subprocess.run([TMUX, "-L", socket, "wait-for", "-S", "go"], env=run.env, check=True)
        _await_exits(run, agents)
        after = cpu_seconds(engine), cpu_seconds(server)
        window = time.monotonic() - t0
        panes = run.run_dir / "panes"

        def complete() -> int:
            return sum(_log_complete(panes / f"p{i:02d}.1.log", chunks, chunk) for i in range(agents))

        complete_at_end, alerts_at_end = complete(), len(_marker_latencies(run.db))
        short = tuple(
            (f"p{i:02d}", log.stat().st_size if log.exists() else 0)
            for i in range(agents)
            if not _log_complete(log := panes / f"p{i:02d}.1.log", chunks, chunk)
        )
        late = time.monotonic() + LATE
        while time.monotonic() < late and (
            complete() < agents or len(_marker_latencies(run.db)) < agents * chunks
        ):
            time.sleep(1)
        latencies = _marker_latencies(run.db)
        complete_later = complete()
        ended, last_exit = _last_exit(run.db)
    lat = latencies or [float("nan")]
    return OutputResult(
        agents=agents,
        megabytes=agents * chunks * chunk / 1e6,
        seconds=window,
        printed_s=ended - released,
        lag_s=last_exit - ended,
        engine_cpu_percent=(after[0] - before[0]) / window * 100,
        server_cpu_percent=(after[1] - before[1]) / window * 100,
        logs_complete=complete_at_end,
        alerts=alerts_at_end,
        logs_complete_later=complete_later,
        alerts_later=len(latencies),
        short_at_end=short,
        alerts_expected=agents * chunks,
        alert_p50_ms=statistics.median(lat) * 1000,
        alert_p99_ms=percentile(lat, 99) * 1000,
        alert_max_ms=max(lat) * 1000,
    )


def _last_exit(db: Path) -> tuple[float, float]:
    """The latest ``ended_at`` the printers' wrappers recorded, and the latest ``agent.exit`` event's ts."""
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        row = conn.execute(
            "SELECT max(json_extract(data, '$.ended_at')), max(ts) FROM events WHERE kind = 'agent.exit'"
        ).fetchone()
    finally:
        conn.close()
    return float(row[0]), float(row[1])


def _marker_latencies(db: Path) -> list[float]:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        rows = conn.execute(
            "SELECT ts, json_extract(data, '$.line') FROM events WHERE kind = 'alert'"
        ).fetchall()
    finally:
        conn.close()
    latencies = []
    for ts, line in rows:
        words = str(line).split()
        if len(words) == 3 and words[0] == "MARK":
            latencies.append(float(ts) - float(words[2]))
    return latencies
