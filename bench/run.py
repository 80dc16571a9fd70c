"""The bench of issue 7 as one command: seven cases, each figure next to its floor measured in the same run
and next to peers installed from PyPI into the bench's own environment, printed as one table.

    .venv/bin/python bench/run.py [--quick] [--only CASE,...] [--json]

Cases: chain, fanout, detect, idle, output, dashboard, scale (``--quick`` runs smaller sizes and skips
scale). A ratio is agentsup's figure over the other's: below 1, agentsup is faster or cheaper. A case or a
peer that fails is reported in its cell and the rest go on. docs/performance.md explains each case.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import chain_hop
import common
import engine_cost
import fanout
import peers
import psutil
import tui
from common import BenchError, percentile

CASES = ("chain", "fanout", "detect", "idle", "output", "dashboard", "scale")
CASE_PEERS = {"chain": ("snakemake", "doit"), "fanout": ("supervisord", "tmuxp")}
X = "\N{MULTIPLICATION SIGN}"


@dataclass(frozen=True)
class Sizes:
    chain: int = 50
    fanout: int = 200
    detect: int = 500
    detect_cap: int = 100
    idle: int = 200
    idle_seconds: float = 60.0
    output: int = 20
    output_chunks: int = 10
    output_chunk: int = 2**20
    dashboard: int = 200
    dashboard_seconds: float = 30.0
    scale: int = 500


QUICK = Sizes(
    chain=20,
    fanout=50,
    detect=100,
    detect_cap=50,
    idle=100,
    idle_seconds=10.0,
    output_chunks=4,
    output_chunk=2**18,
    dashboard=100,
    dashboard_seconds=10.0,
)


@dataclass
class Row:
    case: str
    agentsup: str = "-"
    floor: str = "-"
    ratio: str = "-"
    peers: str = "-"
    target: str = ""
    met: str = "-"
    notes: list[str] = field(default_factory=list)
    figures: dict[str, object] = field(default_factory=dict)
    load: float = 0.0  # the 1-minute load average when the case ended
    seconds: float = 0.0  # how long the case took, peers included


def _ratio(ours: float, theirs: float) -> str:
    return f"{ours / theirs:.2f}{X}" if theirs > 0 else "-"


def _yes(ok: bool) -> str:
    return "yes" if ok else "NO"


def _peer(
    name: str, installed: dict[str, peers.Peer], run: Callable[[], float], ours: float, unit: str
) -> str:
    """``name FIGURE (RATIO)``, or why the peer has no figure; RATIO is ours / the peer's."""
    peer = installed.get(name)
    if peer is None or peer.version is None:
        return f"{name}: not installed"
    try:
        figure = run()
    except (BenchError, subprocess.CalledProcessError, OSError) as exc:
        print(f"run: {name} failed: {exc}", file=sys.stderr)
        return f"{name}: failed ({str(exc).splitlines()[0][:60]})"
    return f"{name} {figure:.2f} {unit} ({_ratio(ours, figure)})"


# ---- the cases --------------------------------------------------------------------------------------


def case_chain(sizes: Sizes, tmux: str, installed: dict[str, peers.Peer]) -> Row:
    n = sizes.chain
    row = Row("chain hop", target=f"<= 1.5{X} floor")
    floor = chain_hop.run_floor(n, tmux, control=True)
    floor_sub = chain_hop.run_floor(n, tmux)
    sup = chain_hop.run_agentsup(n, tmux)
    ours, base = statistics.median(sup.hops) * 1000, statistics.median(floor.hops) * 1000
    row.agentsup = f"{ours:.1f} ms/hop"
    row.floor = f"{base:.1f} ms/hop"
    row.ratio = _ratio(ours, base)
    row.met = _yes(ours <= 1.5 * base)

    def hop(run: Callable[[int], peers.ChainPeer]) -> Callable[[], float]:
        return lambda: statistics.median(run(n).hops) * 1000

    row.peers = "; ".join(
        [
            _peer("snakemake", installed, hop(peers.chain_snakemake), ours, "ms"),
            _peer("doit", installed, hop(peers.chain_doit), ours, "ms"),
        ]
    )
    sub = statistics.median(floor_sub.hops) * 1000
    row.notes.append(
        f"{n} agents; median hop; p90 agentsup {percentile(sup.hops, 90) * 1000:.1f} ms, floor "
        f"{percentile(floor.hops, 90) * 1000:.1f} ms; floor with a tmux subprocess per window {sub:.1f} ms; "
        "agentsup's hop, median ms: "
        + ", ".join(
            f"{part} {statistics.median(values) * 1000:.1f}"
            for part, values in (
                ("detect", sup.split.detect),
                ("schedule", sup.split.schedule),
                ("spawn", sup.split.spawn),
            )
        )
    )
    row.figures = {
        "agents": n,
        "agentsup_median_ms": ours,
        "floor_control_median_ms": base,
        "floor_subprocess_median_ms": sub,
    }
    return row


def case_fanout(sizes: Sizes, tmux: str, installed: dict[str, peers.Peer]) -> Row:
    n = sizes.fanout
    row = Row("fan-out", target=f"<= 1.25{X} floor, < supervisord, < tmuxp")
    floor = fanout.run_floor(n, None, tmux, "sleep 2")
    piped = fanout.run_floor(n, None, tmux, "sleep 2", pipe=True)
    sup = fanout.run_agentsup(n, n, tmux, "sleep 2").case
    row.agentsup = f"{sup.wall:.2f} s"
    row.floor = f"{floor.wall:.2f} s"
    row.ratio = _ratio(sup.wall, floor.wall)
    walls: dict[str, float] = {}

    def wall(name: str, run: Callable[[int], peers.FanoutPeer]) -> Callable[[], float]:
        def measure() -> float:
            walls[name] = run(n).wall
            return walls[name]

        return measure

    row.peers = "; ".join(
        [
            _peer("supervisord", installed, wall("supervisord", peers.fanout_supervisord), sup.wall, "s"),
            _peer("tmuxp", installed, wall("tmuxp", peers.fanout_tmuxp), sup.wall, "s"),
        ]
    )
    beats = all(sup.wall < walls[p] for p in ("supervisord", "tmuxp") if p in walls)
    row.met = _yes(sup.wall <= 1.25 * floor.wall and beats and len(walls) == 2)
    row.notes.append(
        f"{n} agents `sleep 2`, max_parallel = {n}; wall until every completion is known; "
        f"peak in flight agentsup {sup.peak}, floor {floor.peak}; floor with each window's output piped to a "
        f"file (pipe-pane, as ARCHITECTURE §4 has agentsup do) {piped.wall:.2f} s, agentsup / that "
        f"{_ratio(sup.wall, piped.wall)}"
    )
    row.figures = {
        "agents": n,
        "agentsup_wall_s": sup.wall,
        "floor_wall_s": floor.wall,
        "floor_piped_wall_s": piped.wall,
        "peers_wall_s": walls,
    }
    return row


def case_detect(sizes: Sizes, tmux: str) -> Row:
    n, cap = sizes.detect, sizes.detect_cap
    row = Row("detection", target="p50 <= 10 ms, p99 <= 50 ms")
    floor = fanout.run_floor(n, cap, tmux)
    sup = fanout.run_agentsup(n, cap, tmux).case
    if not sup.detect:
        raise BenchError("no agent.exit carried the exit file's record")
    p50, p99 = statistics.median(sup.detect) * 1000, percentile(sup.detect, 99) * 1000
    f50, f99 = statistics.median(floor.detect) * 1000, percentile(floor.detect, 99) * 1000
    row.agentsup = f"p50 {p50:.1f} / p99 {p99:.1f} ms"
    row.floor = f"p50 {f50:.1f} / p99 {f99:.1f} ms"
    row.ratio = f"p50 {_ratio(p50, f50)}"
    row.met = _yes(p50 <= 10 and p99 <= 50)
    row.notes.append(
        f"{n} agents `true`, max_parallel = {cap}; exit file written (wrapper's ended_at) -> agent.exit "
        f"in the log / inotify event (floor); {sup.no_record} exits decided from the pane's status"
    )
    row.figures = {
        "agents": n,
        "cap": cap,
        "p50_ms": p50,
        "p99_ms": p99,
        "floor_p50_ms": f50,
        "floor_p99_ms": f99,
    }
    return row


def case_idle(sizes: Sizes) -> Row:
    row = Row("idle", target="< 1 % of a core")
    r = engine_cost.idle(sizes.idle, sizes.idle_seconds)
    row.agentsup = f"{r.engine_cpu_percent:.2f} % CPU, RSS {r.engine_rss_mb:.0f} MB"
    row.met = _yes(r.engine_cpu_percent < 1)
    row.notes.append(
        f"{r.agents} agents `sleep 3600`, engine over {r.seconds:.0f} s; "
        f"the run's tmux server {r.server_cpu_percent:.2f} %"
    )
    row.figures = asdict(r)
    return row


def case_output(sizes: Sizes) -> Row:
    row = Row("output", target="engine CPU < tmux's; logs complete; alert p99 <= 1 s")
    r = engine_cost.output(sizes.output, sizes.output_chunks, sizes.output_chunk)
    row.agentsup = f"engine {r.engine_cpu_percent:.0f} % CPU"
    row.floor = f"tmux server {r.server_cpu_percent:.0f} %"
    row.ratio = _ratio(r.engine_cpu_percent, r.server_cpu_percent)
    complete = r.logs_complete == r.agents and r.alerts == r.alerts_expected
    row.met = _yes(r.engine_cpu_percent < r.server_cpu_percent and complete and r.alert_p99_ms <= 1000)
    row.notes.append(
        f"{r.agents} agents x {r.megabytes / r.agents:.1f} MB, 10 alert rules each: {r.rate_mb_s:.1f} MB/s "
        f"({r.megabytes:.0f} MB in {r.seconds:.1f} s; printing took {r.printed_s:.1f} s, the last completion "
        f"came {r.lag_s:.1f} s later); at the last completion, logs complete {r.logs_complete}/{r.agents} "
        f"and marker alerts {r.alerts}/{r.alerts_expected} ({engine_cost.LATE:.0f} s later: "
        f"{r.logs_complete_later}/{r.agents}, {r.alerts_later}/{r.alerts_expected}); marker printed -> "
        f"alert logged p50 {r.alert_p50_ms:.0f} / p99 {r.alert_p99_ms:.0f} / max {r.alert_max_ms:.0f} ms"
    )
    if r.short_at_end:
        short = ", ".join(f"{agent} ({size / 1e6:.2f} MB)" for agent, size in r.short_at_end)
        row.notes.append(f"logs short at the last completion: {short}")
    row.figures = {**asdict(r), "rate_mb_s": r.rate_mb_s}
    return row


def case_dashboard(sizes: Sizes) -> Row:
    row = Row("dashboard", target="< 10 % of a core")
    printing = min(20, sizes.dashboard)
    r = tui.measure(sizes.dashboard, printing, 50, sizes.dashboard_seconds, None)
    row.agentsup = f"{r['tui_cpu_percent']:.1f} % CPU"
    row.met = _yes(r["tui_cpu_percent"] < 10)
    row.notes.append(
        f"{sizes.dashboard} agents, {printing} printing 50 lines/s, over {sizes.dashboard_seconds:.0f} s; "
        f"first full table {r['first_full_table_s']:.2f} s ({r['first_full_table_cpu_s']:.2f} s CPU); "
        f"engine {r['engine_cpu_percent']:.1f} %, the run's tmux server {r['tmux_server_cpu_percent']:.1f} %"
    )
    row.figures = dict(r)
    return row


def case_scale(sizes: Sizes, tmux: str) -> Row:
    n = sizes.scale
    row = Row("scale", target=f"{n} agents run")
    floor = fanout.run_floor(n, None, tmux, "sleep 5")
    row.floor = f"{floor.wall:.2f} s"
    try:
        sup = fanout.run_agentsup(n, n, tmux, "sleep 5")
    except BenchError as exc:
        row.agentsup = "failed"
        row.met = "NO"
        row.notes.append(f"{n} agents `sleep 5`: {str(exc).splitlines()[0]}")
        return row
    c = sup.case
    row.agentsup = f"{n} agents, {c.wall:.2f} s"
    row.ratio = _ratio(c.wall, floor.wall)
    row.met = "yes"
    p99 = percentile(c.detect, 99) * 1000 if c.detect else float("nan")
    row.notes.append(
        f"{n} agents `sleep 5`, max_parallel = {n}; peak in flight {c.peak}; "
        f"exit -> logged p99 {p99:.0f} ms; {c.no_record} exits decided from the pane's status; "
        f"start -> session gone {sup.gone:.1f} s"
    )
    row.figures = {"agents": n, "agentsup_wall_s": c.wall, "floor_wall_s": floor.wall, "peak": c.peak}
    return row


# ---- report -----------------------------------------------------------------------------------------


def machine() -> dict[str, object]:
    tmux = subprocess.run(["tmux", "-V"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
        "tmux": tmux,
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def print_table(rows: Sequence[Row]) -> None:
    heads = ("case", "agentsup", "floor", "ratio", "peers (agentsup / peer)", "target", "met?")
    cells = [(r.case, r.agentsup, r.floor, r.ratio, r.peers, r.target, r.met) for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]

    def line(values: Sequence[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    print(line(heads))
    print("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    for c in cells:
        print(line(c))
    print()
    for r in rows:
        for note in r.notes:
            print(f"- {r.case} ({r.seconds:.0f} s, load {r.load:.1f} at the end): {note}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller sizes, shorter windows, no scale case")
    parser.add_argument("--only", help=f"comma-separated cases to run, of: {','.join(CASES)}")
    parser.add_argument("--json", action="store_true", help="also print every figure as JSON")
    parser.add_argument(
        "--tmp",
        default="/tmp",
        help="where every case's files go, agentsup's runs and the floors' alike (default /tmp; a short "
        "path: tmux's sockets live there too)",
    )
    args = parser.parse_args(argv)
    chosen = list(CASES) if args.only is None else [c.strip() for c in args.only.split(",") if c.strip()]
    unknown = [c for c in chosen if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; cases: {', '.join(CASES)}")
    if args.quick and args.only is None:
        chosen.remove("scale")
    sizes = QUICK if args.quick else Sizes()
    common.SCRATCH_BASE = args.tmp
    tmux = shutil.which("tmux")
    if tmux is None:
        print("run: tmux not found on PATH", file=sys.stderr)
        return 2

    wanted = [p for c in chosen for p in CASE_PEERS.get(c, ())]
    installed = peers.ensure_peers(wanted) if wanted else {}
    if installed:
        print(f"peers, in {peers.VENV}:")
        for p in installed.values():
            print(f"  {p.name}: {p.distribution} {p.version}" if p.version else f"  {p.name}: {p.error}")
    info = machine()
    load_before = _load()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(
        f"machine: {info['cpus']} CPUs, {info['ram_gib']} GiB RAM, {info['tmux']}, Python {info['python']}; "
        f"{started}, load average {load_before}; files in {args.tmp}\n",
        flush=True,
    )
    runners: dict[str, Callable[[], Row]] = {
        "chain": lambda: case_chain(sizes, tmux, installed),
        "fanout": lambda: case_fanout(sizes, tmux, installed),
        "detect": lambda: case_detect(sizes, tmux),
        "idle": lambda: case_idle(sizes),
        "output": lambda: case_output(sizes),
        "dashboard": lambda: case_dashboard(sizes),
        "scale": lambda: case_scale(sizes, tmux),
    }
    rows: list[Row] = []
    try:
        for case in chosen:
            print(f"running {case} …", file=sys.stderr, flush=True)
            t0 = time.monotonic()
            try:
                row = runners[case]()
            except (BenchError, subprocess.CalledProcessError, psutil.Error, OSError) as exc:
                print(f"run: {case} failed: {exc}", file=sys.stderr)
                row = Row(case, agentsup="failed", met="NO", notes=[str(exc).splitlines()[0][:300]])
            row.seconds, row.load = time.monotonic() - t0, os.getloadavg()[0]
            rows.append(row)
            print(f"  {case} took {row.seconds:.0f} s", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        return 130
    print_table(rows)
    load_after = _load()
    print(f"\nload average before {load_before}, after {load_after}")
    if args.json:
        out = {
            "machine": info,
            "started": started,
            "quick": args.quick,
            "load_before": load_before,
            "tmp": args.tmp,
            "load_after": load_after,
            "peers": {n: asdict(p) for n, p in installed.items()},
            "rows": [asdict(r) for r in rows],
        }
        print(json.dumps(out, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
