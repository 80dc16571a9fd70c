"""Time for N independent trivial agents, at most C running at once, under agentsup, against a bare tmux +
inotify floor with the same cap.

The wall time runs from just before the first tmux call (the floor) or ``agentsup start`` (agentsup) to the
moment the last completion is known: the last exit file seen through inotify, or the last ``agent.exit``
event in the run's log. Both are taken with ``time.time()``, the event log's clock.

    .venv/bin/python bench/fanout.py [--agents 200] [--cap 50] [--repeat 1] [--command true] [--json]
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import shlex
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from common import (
    Arrivals,
    BenchError,
    Event,
    bench_env,
    floor_script,
    floor_session,
    kill_server,
    number,
    percentile,
    read_exit_file,
    run_plan,
    scratch,
    watching,
)

PROGRESS_TIMEOUT = 30.0  # the floor gives up when no exit file arrives for this long
RUN_TIMEOUT = 60.0
RUN_TIMEOUT_PER_AGENT = 1.0
# tmux sends a client's whole command list in one imsg of at most 16 KiB (MAX_IMSGSIZE, header included);
# a longer one fails with "command too long".
TMUX_COMMAND_BUDGET = 15 * 1024


@dataclass(frozen=True)
class CaseResult:
    wall: float  # just before the first tmux call / `start` → the last completion known
    inner: float  # first window opened / run.started → the last completion known
    detect: list[float]  # per agent: ended_at → seen (inotify) / agent.exit ts
    peak: int  # most agents in flight at once: window opened / agent.spawn → seen / agent.exit
    no_record: int = 0  # agent.exit events without the exit file's record (from the pane's status)


@dataclass(frozen=True)
class SupResult:
    case: CaseResult
    exited: float  # `start --no-tui` until it exited
    gone: float  # … until the run's tmux session was gone
    finished: float  # … until the run.finished event's ts


@dataclass
class Pooled:
    name: str
    cap: int | None
    results: list[CaseResult] = field(default_factory=list)

    @property
    def best(self) -> CaseResult:
        return min(self.results, key=lambda r: r.wall)

    @property
    def detect(self) -> list[float]:
        return [d for r in self.results for d in r.detect]


def _peak(intervals: Sequence[tuple[float, float]]) -> int:
    edges = sorted([(a, 1) for a, _ in intervals] + [(b, -1) for _, b in intervals])
    level = peak = 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    return peak


# ---- agentsup ---------------------------------------------------------------------------------------


def _plan(n: int, cap: int, command: str) -> str:
    lines = [f'[run]\nname = "fanout"\nmax_parallel = {cap}\n']
    lines += [f"[agents.a{i}]\ncmd = {json.dumps(command)}\n" for i in range(n)]
    return "\n".join(lines)


def _only(events: Sequence[Event], kind: str) -> Event:
    found = [e for e in events if e[1] == kind]
    if len(found) != 1:
        raise BenchError(f"agentsup: {len(found)} {kind} events in the log, expected 1")
    return found[0]


def run_agentsup(n: int, cap: int, tmux: str, command: str = "true") -> SupResult:
    socket = f"agentsup-bench-{secrets.token_hex(4)}"
    run_id = f"fanout-{secrets.token_hex(3)}"
    plan = _plan(n, cap, command)
    run = run_plan(plan, run_id, socket, tmux, timeout=RUN_TIMEOUT + RUN_TIMEOUT_PER_AGENT * n)
    run_started = _only(run.events, "run.started")[0]
    finished_ts, _, _, finished = _only(run.events, "run.finished")
    if finished.get("state") != "succeeded":
        raise BenchError(f"agentsup: the run ended {finished.get('state')!r}, not 'succeeded'")
    exits: dict[str, tuple[float, Mapping[str, object]]] = {}
    spawns: dict[str, float] = {}
    for ts, kind, agent, data in run.events:
        if agent is None:
            continue
        if kind == "agent.exit":
            exits[agent] = (ts, data)
        elif kind == "agent.spawn":
            spawns[agent] = ts
    names = [f"a{i}" for i in range(n)]
    missing = [a for a in names if a not in exits or a not in spawns]
    if missing:
        raise BenchError(f"agentsup: no agent.spawn/agent.exit event for {', '.join(missing[:5])}")
    failed = [a for a in names if exits[a][1].get("code") != 0]
    if failed:
        raise BenchError(f"agentsup: a nonzero exit for {', '.join(failed[:5])}")
    last_exit = max(ts for ts, _ in exits.values())
    # Without the exit file's record, ended_at is the engine's clock at detection: no detection latency.
    recorded = [a for a in names if exits[a][1].get("started_at") is not None]
    case = CaseResult(
        wall=last_exit - run.started_at,
        inner=last_exit - run_started,
        detect=[exits[a][0] - number(exits[a][1], "ended_at", a) for a in recorded],
        peak=_peak([(spawns[a], exits[a][0]) for a in names]),
        no_record=n - len(recorded),
    )
    return SupResult(case, run.exited, run.gone, finished_ts - run.started_at)


# ---- floor ------------------------------------------------------------------------------------------


def _batches(commands: Sequence[list[str]]) -> list[list[list[str]]]:
    """``commands`` split into runs that each fit in one tmux call, in order."""
    batches: list[list[list[str]]] = []
    size = TMUX_COMMAND_BUDGET
    for command in commands:
        cost = sum(len(arg.encode()) + 1 for arg in command) + 2  # NUL-terminated args, the ";" between
        if size + cost > TMUX_COMMAND_BUDGET:
            batches.append([])
            size = 0
        batches[-1].append(command)
        size += cost
    return batches


class _Floor:
    """One tmux session that opens each agent's window, in as few tmux calls as fit, when told."""

    def __init__(
        self,
        tmux: str,
        socket: str,
        session: str,
        env: Mapping[str, str],
        panes: Path,
        *,
        command: str,
        logs: Path | None,
    ) -> None:
        self.tmux, self.socket, self.session, self.env, self.panes = tmux, socket, session, env, panes
        self.command = command
        self.logs = logs  # where each window's output is piped (pipe-pane, as agentsup does), if anywhere
        self.opened_at: list[float] = []

    def exit_file(self, i: int) -> Path:
        return self.panes / f"a{i}.exit"

    def open(self, count: int) -> None:
        first = len(self.opened_at)
        commands: list[list[str]] = []
        for i in range(first, first + count):
            target = f"={self.session}:{i + 1}"  # window 0 is the session's own
            script = floor_script(self.exit_file(i), self.command)
            window = ["new-window", "-d", "-t", target, "--", "/bin/sh", "-c", script]
            if self.logs is not None:  # in the same tmux call as its window
                log = shlex.quote(str(self.logs / f"a{i}.log"))
                window += [";", "pipe-pane", "-t", target, f"exec cat >> {log}"]
            commands.append(window)
        for batch in _batches(commands):
            argv = [self.tmux, "-L", self.socket, *batch[0]]
            for command in batch[1:]:
                argv += [";", *command]
            self.opened_at += [time.time()] * len(batch)
            subprocess.run(argv, env=dict(self.env), check=True)


def run_floor(n: int, cap: int | None, tmux: str, command: str = "true", *, pipe: bool = False) -> CaseResult:
    """The floor: windows opened in as few tmux calls as fit, exit files seen through inotify. ``pipe``
    also pipes each window's output into a file with ``pipe-pane``, as agentsup does (ARCHITECTURE §4)."""
    socket = f"agentsup-bench-floor-{secrets.token_hex(4)}"
    session = "floor"
    with scratch("asf-") as tmp:
        panes = tmp / "panes"
        panes.mkdir()
        logs = tmp / "logs" if pipe else None
        if logs is not None:
            logs.mkdir()
        env = bench_env(tmp)
        floor = _Floor(tmux, socket, session, env, panes, command=command, logs=logs)
        index = {str(floor.exit_file(i)): i for i in range(n)}
        seen: dict[int, float] = {}
        with watching(panes) as arrivals:
            t0 = time.time()
            try:
                floor_session(tmux, socket, session, env)
                floor.open(n if cap is None else min(cap, n))
                while len(seen) < n:
                    try:
                        arrived = _arrived(arrivals)
                    except BenchError as exc:
                        raise BenchError(f"{exc}; {_floor_state(floor, panes, len(seen))}") from None
                    for path, at in arrived:
                        if path in index:
                            seen.setdefault(index[path], at)
                    running = len(floor.opened_at) - len(seen)
                    free = 0 if cap is None else min(cap - running, n - len(floor.opened_at))
                    if free > 0:
                        floor.open(free)
            finally:
                kill_server(tmux, socket, env)
        ended = [read_exit_file(floor.exit_file(i))[1] for i in range(n)]
    last = max(seen.values())
    return CaseResult(
        wall=last - t0,
        inner=last - floor.opened_at[0],
        detect=[seen[i] - ended[i] for i in range(n)],
        peak=_peak([(floor.opened_at[i], seen[i]) for i in range(n)]),
    )


def _floor_state(floor: _Floor, panes: Path, seen: int) -> str:
    """What a stuck floor looks like: windows asked for and open, exit files seen and on disk, and the first
    window's screen."""
    tmux = [floor.tmux, "-L", floor.socket]
    env = dict(floor.env)
    listed = subprocess.run(
        [*tmux, "list-windows", "-t", f"={floor.session}"], env=env, capture_output=True, check=False
    )
    screen = subprocess.run(
        [*tmux, "capture-pane", "-p", "-t", f"={floor.session}:1"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    on_disk = sum(1 for _ in panes.iterdir())
    return (
        f"windows asked for {len(floor.opened_at)}, listed {len(listed.stdout.splitlines())} "
        f"(tmux exit {listed.returncode}); exit files seen {seen}, on disk {on_disk}; "
        f"window 1 shows {screen.stdout.strip()[-300:]!r}{screen.stderr.strip()!r}"
    )


def _arrived(arrivals: Arrivals) -> list[tuple[str, float]]:
    """The next arrival, waited for, and every one already queued behind it."""
    try:
        got = [arrivals.seen.get(timeout=PROGRESS_TIMEOUT)]
    except queue.Empty:
        raise BenchError(f"floor: no exit file appeared for {PROGRESS_TIMEOUT:.0f}s") from None
    while True:
        try:
            got.append(arrivals.seen.get_nowait())
        except queue.Empty:
            return got


# ---- report -----------------------------------------------------------------------------------------


def _detect(values: Sequence[float]) -> dict[str, float]:
    if not values:
        return {"p50_ms": float("nan"), "p99_ms": float("nan")}
    return {"p50_ms": statistics.median(values) * 1000, "p99_ms": percentile(values, 99) * 1000}


def _figures(case: Pooled, agents: int) -> dict[str, object]:
    best = case.best
    return {
        "cap": case.cap,
        "wall_s": best.wall,
        "per_agent_ms": best.wall / agents * 1000,
        "walls_s": [r.wall for r in case.results],
        "inner_s": [r.inner for r in case.results],
        "detect": _detect(case.detect),
        "peak_in_flight": [r.peak for r in case.results],
    }


def _print_table(
    cases: Sequence[Pooled], sups: Sequence[SupResult], agents: int, repeat: int, command: str
) -> None:
    print(f"fan-out of {agents} agents (cmd = {command!r}), {repeat} repeat(s), best run shown")
    print("wall = just before the first tmux call / `agentsup start` -> the last completion known")
    print("       (exit file seen through inotify / agent.exit in the log)\n")
    print(f"{'case':<17} | {'agents':>6} | {'cap':>3} | {'wall s':>6} | {'per agent ms':>12}")
    print("-" * 56)
    for case in cases:
        cap = "-" if case.cap is None else str(case.cap)
        wall = case.best.wall
        print(f"{case.name:<17} | {agents:>6} | {cap:>3} | {wall:>6.3f} | {wall / agents * 1000:>12.2f}")
    floor, _, sup = cases
    ratio = sup.best.wall / floor.best.wall
    print(f"ratio: {ratio:.2f}\N{MULTIPLICATION SIGN} ({sup.name} / {floor.name})\n")

    def runs(values: Sequence[float]) -> str:
        return ", ".join(f"{v:.3f}" for v in values)

    print("every run, wall s:")
    for case in cases:
        print(f"  {case.name:<17} {runs([r.wall for r in case.results])}")
    print("agentsup, every run, s:")
    print(f"  (a) start --no-tui until it exits           {runs([s.exited for s in sups])}")
    print(f"      start until run.finished                {runs([s.finished for s in sups])}")
    print(f"      start until its tmux session is gone    {runs([s.gone for s in sups])}")
    print(f"  (b) run.started -> last agent.exit          {runs([s.case.inner for s in sups])}")
    print(f"      floor (cap), first window -> last seen  {runs([r.inner for r in floor.results])}")
    print("\nexit -> known, p50 / p99 ms (ended_at -> inotify seen / agent.exit ts); peak agents in flight:")
    for case in cases:
        d = _detect(case.detect)
        peaks = ", ".join(str(r.peak) for r in case.results)
        print(f"  {case.name:<17} {d['p50_ms']:7.2f} / {d['p99_ms']:7.2f}   peak {peaks}")
    missed = ", ".join(str(r.no_record) for r in sup.results)
    print(f"agent.exit without the exit file's record (pane status; left out above): {missed}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=200, help="independent agents (default 200)")
    parser.add_argument("--cap", type=int, default=50, help="[run] max_parallel (default 50)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; best shown (default 1)")
    parser.add_argument("--command", default="true", help="each agent's command (default: true)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.agents < 1 or args.cap < 1 or args.repeat < 1:
        parser.error("--agents, --cap and --repeat must be >= 1")
    tmux = shutil.which("tmux")
    if tmux is None:
        print("fanout: tmux not found on PATH", file=sys.stderr)
        return 2
    n, cap = args.agents, args.cap
    floor = Pooled(f"floor (cap {cap})", cap)
    open_floor = Pooled("floor (no cap)", None)
    sup = Pooled(f"agentsup (cap {cap})", cap)
    sups: list[SupResult] = []
    try:
        for _ in range(args.repeat):
            floor.results.append(run_floor(n, cap, tmux, args.command))
            open_floor.results.append(run_floor(n, None, tmux, args.command))
            sups.append(run_agentsup(n, cap, tmux, args.command))
            sup.results.append(sups[-1].case)
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"fanout: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    _print_table([floor, open_floor, sup], sups, n, args.repeat, args.command)
    if args.json:
        out = {
            "agents": n,
            "cap": cap,
            "repeat": args.repeat,
            "floor_cap": _figures(floor, n),
            "floor_no_cap": _figures(open_floor, n),
            "agentsup": {
                **_figures(sup, n),
                "start_exited_s": [s.exited for s in sups],
                "start_to_run_finished_s": [s.finished for s in sups],
                "start_to_session_gone_s": [s.gone for s in sups],
                "exits_without_record": [s.case.no_record for s in sups],
            },
            "ratio": sup.best.wall / floor.best.wall,
        }
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
