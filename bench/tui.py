"""The dashboard under load: 200 agents running, 20 of them printing continuously.

It starts the run detached, waits until all 200 agents run, then opens ``agentsup tui RUN`` in a real
terminal (a pane of a second tmux server, 200x50) and reports:

- **first full table**: from launching ``agentsup tui`` to the screen's header counting all the agents
  (the table is filled in the same redraw), polled with ``capture-pane`` every 20 ms, and the dashboard's
  CPU time by then (on a loaded machine the wall time is mostly waiting for a CPU);
- **CPU**: the dashboard process's CPU time over ``--seconds`` (30 by default) as a percentage of one core,
  next to the engine's, the run's tmux server's and the viewing terminal's (the second tmux server, which
  draws what the dashboard writes) over the same window. The selected row (the first agent) prints, so
  the output panel follows a live tail the whole time.

The processes are found by what they are, not by their command lines alone: a tmux server's command line
is that of the client that started it, so it contains the command of its first window (``agentsup tui``,
``python -m agentsup.supervisor``). Their pids are printed to stderr.

    .venv/bin/python bench/tui.py [--agents 200] [--printing 20] [--rate 50] [--seconds 30] [--json]
                                  [--profile STACKS.txt]

``--profile`` samples the dashboard with py-spy (100 Hz, without pausing it) over the same window and
writes the collapsed stacks (py-spy's ``raw`` format, one stack and its count a line).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import psutil
from common import BenchError, bench_env, kill_server, read_events, scratch

TMUX = "tmux"


def plan_text(agents: int, printing: int, rate: int) -> str:
    pause = 1 / rate
    parts = [f'[run]\nname = "tui-bench"\nmax_parallel = {agents}\n']
    for i in range(agents):
        if i < printing:
            line = f'echo "agent {i} line $n: some progress output"'
            cmd = f"n=0; while :; do n=$((n+1)); {line}; sleep {pause}; done"
        else:
            cmd = "sleep 3600"
        parts.append(f"\n[agents.a{i:03d}]\ncmd = '{cmd}'\n")
    return "".join(parts)


def wait_for(predicate: Callable[[], bool], timeout: float, what: str, interval: float = 0.02) -> float:
    """Seconds until ``predicate()`` is true; BenchError after ``timeout``."""
    t0 = time.monotonic()
    while not predicate():
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(interval)
    return time.monotonic() - t0


def cpu_seconds(proc: psutil.Process) -> float:
    t = proc.cpu_times()
    return float(t.user + t.system)


def tree_cpu(root: psutil.Process) -> float:
    """CPU seconds of a process and its descendants alive now."""
    total = cpu_seconds(root)
    for child in root.children(recursive=True):
        try:
            total += cpu_seconds(child)
        except psutil.NoSuchProcess:
            continue
    return total


def engine_process(run_dir: Path) -> psutil.Process:
    """The engine: ``python -m agentsup.supervisor RUN_DIR`` itself, not the tmux server that started it."""
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        if cmd[1:3] == ["-m", "agentsup.supervisor"] and str(run_dir) in cmd[3:]:
            return proc
    raise BenchError(f"no engine process for {run_dir}")


def tmux_format(socket: str, env: dict[str, str], fmt: str) -> int:
    out = subprocess.run(
        [TMUX, "-L", socket, "display-message", "-p", fmt],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return int(out.stdout.strip())


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    py_spy = Path(sys.executable).with_name("py-spy")
    argv = [str(py_spy), "record", "--pid", str(pid), "--duration", str(round(seconds)), "--rate", "100"]
    argv += ["--nonblocking", "--format", "raw", "--output", str(out)]
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL)


def open_dashboard(
    agentsup: Path, socket: str, env: dict[str, str], agents: int
) -> tuple[float, Callable[[], str]]:
    """Open ``agentsup tui`` in a 200x50 pane of a tmux server of its own; the seconds until its first
    full table, and a function returning what the pane shows."""
    launched = time.monotonic()
    view = [TMUX, "-L", socket, "new-session", "-d", "-x", "200", "-y", "50"]
    # The pane stays when the dashboard exits, so that what it printed last can be shown.
    keep = [";", "set-option", "-w", "remain-on-exit", "on"]
    subprocess.run([*view, "--", str(agentsup), "tui", "tuibench", *keep], env=env, check=True)

    def screen() -> str:
        return subprocess.run(
            [TMUX, "-L", socket, "capture-pane", "-p"], env=env, capture_output=True, text=True, check=False
        ).stdout

    def full_table() -> bool:
        shown = screen()
        if "Pane is dead" in shown:
            raise BenchError(f"the dashboard exited before its first full table:\n{shown.strip()}")
        return f"/{agents}" in shown and "a000" in shown

    wait_for(full_table, 60, "the first full table")
    return time.monotonic() - launched, screen


def measure(agents: int, printing: int, rate: int, seconds: float, profile: Path | None) -> dict[str, float]:
    agentsup = Path(sys.executable).with_name("agentsup")
    with scratch("atb-") as tmp:
        env = bench_env(tmp)
        runs_socket, view_socket = f"atb-runs-{tmp.name}", f"atb-view-{tmp.name}"
        env["AGENTSUP_TMUX_SOCKET"] = runs_socket
        env["AGENTSUP_STATE_DIR"] = str(tmp / "state")
        plan = tmp / "plan.toml"
        plan.write_text(plan_text(agents, printing, rate))
        try:
            subprocess.run(
                [str(agentsup), "start", str(plan), "--detach", "--run-id", "tuibench"],
                env=env,
                check=True,
                capture_output=True,
            )
            db = tmp / "state" / "runs" / "tuibench" / "events.db"

            def all_running() -> bool:
                running = {
                    a
                    for _, kind, a, d in read_events(db)
                    if kind == "agent.state" and d.get("to") == "running"
                }
                return len(running) >= agents

            wait_for(all_running, 120, f"{agents} running agents", interval=0.2)
            first_table, screen = open_dashboard(agentsup, view_socket, env, agents)
            tui = psutil.Process(tmux_format(view_socket, env, "#{pane_pid}"))  # argv runs without a shell
            first_table_cpu = tree_cpu(tui)  # what the start cost, whatever else the machine was doing
            engine = engine_process(db.parent)
            server = psutil.Process(tmux_format(runs_socket, env, "#{pid}"))
            viewer = psutil.Process(tmux_format(view_socket, env, "#{pid}"))
            print(
                f"pids: dashboard {tui.pid}, engine {engine.pid}, run's tmux server {server.pid}, "
                f"viewing tmux server {viewer.pid}",
                file=sys.stderr,
            )
            if len({tui.pid, engine.pid, server.pid, viewer.pid}) != 4:
                raise BenchError("two of the measured processes are one")
            spy = None if profile is None else py_spy(tui.pid, seconds, profile)
            before = (tree_cpu(tui), cpu_seconds(engine), cpu_seconds(server), cpu_seconds(viewer))
            t0 = time.monotonic()
            time.sleep(seconds)
            try:
                after = (tree_cpu(tui), cpu_seconds(engine), cpu_seconds(server), cpu_seconds(viewer))
            except psutil.NoSuchProcess as exc:
                raise BenchError(
                    f"pid {exc.pid} exited during the measurement; the dashboard's pane:\n{screen().strip()}"
                ) from exc
            window = time.monotonic() - t0
            tui_cpu, engine_cpu, server_cpu, viewer_cpu = (
                (b - a) / window * 100 for a, b in zip(before, after, strict=True)
            )
            load = os.getloadavg()
            if spy is not None:
                spy.wait()
            events = len(read_events(db))
        finally:
            kill_server(TMUX, view_socket, env)
            kill_server(TMUX, runs_socket, env)
    return {
        "agents": agents,
        "printing": printing,
        "lines_per_second": printing * rate,
        "first_full_table_s": first_table,
        "first_full_table_cpu_s": first_table_cpu,
        "tui_cpu_percent": tui_cpu,
        "engine_cpu_percent": engine_cpu,
        "tmux_server_cpu_percent": server_cpu,
        "viewer_cpu_percent": viewer_cpu,
        "seconds": seconds,
        "load_average": load[0],
        "events": events,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--agents", type=int, default=200)
    parser.add_argument("--printing", type=int, default=20)
    parser.add_argument("--rate", type=int, default=50, help="lines a second per printing agent")
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--profile", type=Path, help="write py-spy's stacks of the dashboard here")
    args = parser.parse_args()
    try:
        r = measure(args.agents, args.printing, args.rate, args.seconds, args.profile)
    except BenchError as exc:
        print(f"bench failed: {exc}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(r))
        return 0
    print(
        f"dashboard, {r['agents']:.0f} agents, {r['printing']:.0f} printing "
        f"({r['lines_per_second']:.0f} lines/s in all), over {r['seconds']:.0f} s"
    )
    print(f"  first full table     {r['first_full_table_s'] * 1000:8.0f} ms")
    print(f"    dashboard CPU by then {r['first_full_table_cpu_s'] * 1000:5.0f} ms")
    print(f"  dashboard CPU        {r['tui_cpu_percent']:8.1f} % of a core   (target < 10 %)")
    print(f"  engine CPU           {r['engine_cpu_percent']:8.1f} % of a core")
    print(f"  run's tmux server    {r['tmux_server_cpu_percent']:8.1f} % of a core")
    print(f"  viewing terminal     {r['viewer_cpu_percent']:8.1f} % of a core   (a tmux server)")
    print(f"  load average         {r['load_average']:8.1f}   ({os.cpu_count()} CPUs)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
