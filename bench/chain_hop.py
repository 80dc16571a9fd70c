"""Per-hop latency of an N-agent chain under agentsup, against a bare tmux + inotify floor (each window
opened through one persistent control-mode client, and, for reference, through a tmux subprocess).

A hop is the time from one agent's process end to the next agent's process start, both as written by the
shell wrapper in the agent's window (``ended_at`` of agent i to ``started_at`` of agent i+1), so the two
cases are measured by the same clock at the same two points.

    .venv/bin/python bench/chain_hop.py [--agents 50] [--repeat 1] [--json]
"""

from __future__ import annotations

import argparse
import json
import queue
import secrets
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from common import (
    Arrivals,
    BenchError,
    ControlClient,
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

AGENT_TIMEOUT = 30.0
RUN_TIMEOUT_PER_AGENT = 5.0


@dataclass(frozen=True)
class Split:
    """Where a hop's time goes: ended_at → seen by the supervisor → spawn begins → next started_at."""

    detect: list[float]  # ended_at of agent i → the supervisor knows (agent.exit ts / inotify seen)
    schedule: list[float]  # known → the spawn of agent i+1 begins (agent.spawn ts / before tmux)
    spawn: list[float]  # spawn begins → started_at of agent i+1


@dataclass(frozen=True)
class CaseResult:
    hops: list[float]
    total: float  # first started_at → last ended_at
    split: Split
    wall: float  # the whole case, set-up and tear-down included


@dataclass
class Pooled:
    name: str
    hops: list[float] = field(default_factory=list)
    totals: list[float] = field(default_factory=list)
    walls: list[float] = field(default_factory=list)
    detect: list[float] = field(default_factory=list)
    schedule: list[float] = field(default_factory=list)
    spawn: list[float] = field(default_factory=list)

    def add(self, result: CaseResult) -> None:
        self.hops += result.hops
        self.totals.append(result.total)
        self.walls.append(result.wall)
        self.detect += result.split.detect
        self.schedule += result.split.schedule
        self.spawn += result.split.spawn


def _summary(values: Sequence[float]) -> dict[str, float]:
    return {
        "median_ms": statistics.median(values) * 1000,
        "p90_ms": percentile(values, 90) * 1000,
        "max_ms": max(values) * 1000,
    }


def _hops(started: Sequence[float], ended: Sequence[float]) -> list[float]:
    return [started[i + 1] - ended[i] for i in range(len(started) - 1)]


# ---- agentsup ---------------------------------------------------------------------------------------


def _plan(n: int) -> str:
    lines = ['[run]\nname = "chainhop"\n']
    for i in range(n):
        lines.append(f"[agents.a{i}]")
        if i:
            lines.append(f'after = ["a{i - 1}"]')
        lines.append('cmd = "true"\n')
    return "\n".join(lines)


def run_agentsup(n: int, tmux: str) -> CaseResult:
    socket = f"agentsup-bench-{secrets.token_hex(4)}"
    run_id = f"chainhop-{secrets.token_hex(3)}"
    run = run_plan(_plan(n), run_id, socket, tmux, timeout=10 + RUN_TIMEOUT_PER_AGENT * n)
    wall, events = run.gone, run.events
    exits: dict[str, tuple[float, dict[str, object]]] = {}
    spawns: dict[str, float] = {}
    for ts, kind, agent, data in events:
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
    started = [number(exits[a][1], "started_at", a) for a in names]
    ended = [number(exits[a][1], "ended_at", a) for a in names]
    detected = [exits[a][0] for a in names]
    spawn_ts = [spawns[a] for a in names]
    split = Split(
        detect=[detected[i] - ended[i] for i in range(n - 1)],
        schedule=[spawn_ts[i + 1] - detected[i] for i in range(n - 1)],
        spawn=[started[i + 1] - spawn_ts[i + 1] for i in range(n - 1)],
    )
    return CaseResult(_hops(started, ended), ended[-1] - started[0], split, wall)


# ---- floor ------------------------------------------------------------------------------------------


def run_floor(n: int, tmux: str, control: bool = False) -> CaseResult:
    """The bare loop: open agent i's window, wait for its exit file through inotify, open the next one.

    Each window is opened by a ``tmux new-window`` subprocess, or with ``control`` by one line to a
    persistent control-mode client (``tmux -C``, pane output switched off for it)."""
    socket = f"agentsup-bench-floor-{secrets.token_hex(4)}"
    session = "floor"
    with scratch("asf-") as tmp:
        panes = tmp / "panes"
        panes.mkdir()
        env = bench_env(tmp)
        with watching(panes) as arrivals:
            t0 = time.monotonic()
            client: ControlClient | None = None
            try:
                floor_session(tmux, socket, session, env)
                if control:
                    client = ControlClient(tmux, socket, session, env)
                new_window = [tmux, "-L", socket, "new-window", "-d", "-t", f"={session}:", "--"]
                started: list[float] = []
                ended: list[float] = []
                begun: list[float] = []
                seen: list[float] = []
                for i in range(n):
                    exit_file = panes / f"a{i}.exit"
                    script = floor_script(exit_file)
                    begun.append(time.time())
                    if client is None:
                        subprocess.run([*new_window, "/bin/sh", "-c", script], env=env, check=True)
                    else:
                        # Single quotes: tmux's parser takes the script literally.
                        client.call(f"new-window -d -t ={session}: -- /bin/sh -c '{script}'")
                    seen.append(_await(arrivals, str(exit_file)))
                    first, last = read_exit_file(exit_file)
                    started.append(first)
                    ended.append(last)
            finally:
                wall = time.monotonic() - t0
                if client is not None:
                    client.close()
                kill_server(tmux, socket, env)
    split = Split(
        detect=[seen[i] - ended[i] for i in range(n - 1)],
        schedule=[begun[i + 1] - seen[i] for i in range(n - 1)],
        spawn=[started[i + 1] - begun[i + 1] for i in range(n - 1)],
    )
    return CaseResult(_hops(started, ended), ended[-1] - started[0], split, wall)


def _await(arrivals: Arrivals, path: str) -> float:
    deadline = time.monotonic() + AGENT_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        try:
            got, at = arrivals.seen.get(timeout=left)
        except queue.Empty:
            break
        if got == path:
            return at
    raise BenchError(f"floor: {path} did not appear within {AGENT_TIMEOUT:.0f}s")


# ---- report -----------------------------------------------------------------------------------------


def _figures(pooled: Pooled) -> dict[str, object]:
    return {
        "hops": len(pooled.hops),
        **_summary(pooled.hops),
        "total_s": min(pooled.totals),
        "totals_s": pooled.totals,
        "case_wall_s": pooled.walls,
        "split": {
            "detect": _summary(pooled.detect),
            "schedule": _summary(pooled.schedule),
            "spawn": _summary(pooled.spawn),
        },
    }


def _print_table(cases: Sequence[Pooled], agents: int, repeat: int) -> None:
    print(f"chain of {agents} agents, {repeat} repeat(s); hop = ended_at(i) -> started_at(i+1)\n")
    print(f"{'case':<16} | {'hops':>4} | {'median ms':>9} | {'p90 ms':>7} | {'max ms':>7} | {'total s':>7}")
    print("-" * 65)
    for case in cases:
        s = _summary(case.hops)
        print(
            f"{case.name:<16} | {len(case.hops):>4} | {s['median_ms']:>9.2f} | {s['p90_ms']:>7.2f} | "
            f"{s['max_ms']:>7.2f} | {min(case.totals):>7.3f}"
        )
    floor, _, sup = cases
    ratio = statistics.median(sup.hops) / statistics.median(floor.hops)
    print(f"ratio (median): {ratio:.2f}\N{MULTIPLICATION SIGN} ({sup.name} / {floor.name})\n")
    print("where a hop goes (median / p90 ms): detect = exit -> seen, schedule = seen -> spawn begins,")
    print("spawn = spawn begins -> next started_at")
    for case in cases:
        parts = []
        for label, values in (("detect", case.detect), ("schedule", case.schedule), ("spawn", case.spawn)):
            s = _summary(values)
            parts.append(f"{label} {s['median_ms']:6.2f} / {s['p90_ms']:6.2f}")
        print(f"  {case.name:<16} " + "  ".join(parts))
    walls = ", ".join(f"{w:.2f}" for w in sup.walls)
    print(f"\nagentsup start --no-tui until its session is gone (engine start and teardown): {walls} s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--agents", type=int, default=50, help="chain length (default 50)")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each case; hops pooled (default 1)")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args(argv)
    if args.agents < 2 or args.repeat < 1:
        parser.error("--agents must be >= 2 and --repeat >= 1")
    tmux = shutil.which("tmux")
    if tmux is None:
        print("chain_hop: tmux not found on PATH", file=sys.stderr)
        return 2
    floor, floor_sub, sup = Pooled("floor (control)"), Pooled("floor (subproc)"), Pooled("agentsup")
    try:
        for _ in range(args.repeat):
            floor.add(run_floor(args.agents, tmux, control=True))
            floor_sub.add(run_floor(args.agents, tmux))
            sup.add(run_agentsup(args.agents, tmux))
    except (BenchError, subprocess.CalledProcessError) as exc:
        print(f"chain_hop: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    _print_table([floor, floor_sub, sup], args.agents, args.repeat)
    if args.json:
        ratio = statistics.median(sup.hops) / statistics.median(floor.hops)
        out = {
            "agents": args.agents,
            "repeat": args.repeat,
            "floor_control": _figures(floor),
            "floor_subprocess": _figures(floor_sub),
            "agentsup": _figures(sup),
            "ratio_median": ratio,
        }
        print(json.dumps(out, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
