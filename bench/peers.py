"""The tools people use today, on the same jobs as the chain-hop and fan-out benches.

They are installed from PyPI with pip into the bench's own virtual environment (``~/.cache/agentsup-bench``),
created on first use, never into the project's; a peer that cannot be installed is reported and skipped.

- chain: snakemake and doit run N dependent shell steps, each taking its start time, running ``true`` and
  writing its start and end times to its output file; a hop is step i's end to step i+1's start, the same two
  points as ``chain_hop.py`` measures.
- fan-out: supervisord runs N programs ``sleep 2`` (autostart), polled over XML-RPC until every one is
  EXITED; tmuxp loads a workspace of N windows, each typing the floor's wrapper around ``sleep 2`` into its
  shell, detached on a private socket, until every exit file is seen through inotify.

Not a benchmark itself; ``bench/run.py`` imports it.
"""

from __future__ import annotations

import json
import queue
import socket
import subprocess
import sys
import time
import xmlrpc.client
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from common import BenchError, bench_env, floor_script, kill_server, scratch, watching

VENV = Path.home() / ".cache" / "agentsup-bench" / "venv"
PEERS = {"snakemake": "snakemake", "doit": "doit", "supervisord": "supervisor", "tmuxp": "tmuxp"}
"""Peer → the PyPI distribution that provides it."""
INSTALL_TIMEOUT = 600.0
CHAIN_TIMEOUT = 300.0
FANOUT_TIMEOUT = 120.0
POLL = 0.01

STEP = 's=$(date +%s.%N); true; e=$(date +%s.%N); echo "$s $e" > '
"""A chain step's shell command, its output file appended: start time, run, end time into the output."""


@dataclass(frozen=True)
class Peer:
    name: str
    distribution: str
    version: str | None  # None: not installed, ``error`` says why
    error: str = ""


@dataclass(frozen=True)
class ChainPeer:
    hops: list[float]  # step i's end → step i+1's start, from the times the steps wrote
    total: float  # first start → last end
    wall: float  # the tool's command from launch to exit


@dataclass(frozen=True)
class FanoutPeer:
    wall: float  # just before the tool starts → every completion known


# ---- the bench's environment ------------------------------------------------------------------------


def _installed(distribution: str) -> str | None:
    code = f"import importlib.metadata as m; print(m.version({distribution!r}))"
    proc = subprocess.run(
        [str(VENV / "bin" / "python"), "-c", code], capture_output=True, text=True, check=False
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def ensure_peers(names: Sequence[str], log: bool = True) -> dict[str, Peer]:
    """The peers ``names``, each installed into the bench's venv unless it is there already."""
    if not (VENV / "bin" / "python").exists():
        if log:
            print(f"creating the bench's environment {VENV}", file=sys.stderr)
        VENV.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, capture_output=True)
    peers: dict[str, Peer] = {}
    for name in names:
        dist = PEERS[name]
        version = _installed(dist)
        if version is None:
            if log:
                print(f"pip install {dist} into {VENV} …", file=sys.stderr)
            argv = [str(VENV / "bin" / "python"), "-m", "pip", "install", "--quiet", dist]
            try:
                proc = subprocess.run(
                    argv, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
                )
            except subprocess.TimeoutExpired:
                peers[name] = Peer(name, dist, None, f"pip install {dist} took over {INSTALL_TIMEOUT:.0f}s")
                continue
            if proc.returncode != 0:
                why = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
                peers[name] = Peer(name, dist, None, f"pip install {dist} failed: {why}")
                continue
            version = _installed(dist)
        if version is None:
            peers[name] = Peer(name, dist, None, f"{dist} installed but its version cannot be read")
        else:
            peers[name] = Peer(name, dist, version)
    return peers


def _tool(name: str) -> str:
    path = VENV / "bin" / name
    if not path.exists():
        raise BenchError(f"{path} is missing")
    return str(path)


# ---- chain ------------------------------------------------------------------------------------------


def _snakefile(n: int) -> str:
    return f"""\
N = {n}

rule all:
    input: "s{n - 1}.t"

rule step:
    output: "s{{i}}.t"
    input: lambda w: [f"s{{int(w.i) - 1}}.t"] if int(w.i) > 0 else []
    wildcard_constraints: i=r"\\d+"
    shell: {json.dumps(STEP + "{output}")}
"""


def _dodo(n: int) -> str:
    # doit formats a command string with %-style keywords: the date's % signs are doubled.
    step = STEP.replace("%", "%%")
    return f"""\
DOIT_CONFIG = {{"verbosity": 0}}


def task_step():
    for i in range({n}):
        out = f"s{{i}}.t"
        yield {{
            "name": str(i),
            "actions": [{step!r} + out],
            "targets": [out],
            "file_dep": [f"s{{i - 1}}.t"] if i else [],
        }}
"""


def _chain(argv: list[str], n: int, files: Mapping[str, str], what: str) -> ChainPeer:
    with scratch("asp-") as tmp:
        env = bench_env(tmp)
        work = tmp / "work"
        work.mkdir()
        for name, text in files.items():
            (work / name).write_text(text)
        t0 = time.monotonic()
        try:
            proc = subprocess.run(
                argv, cwd=work, env=env, capture_output=True, text=True, timeout=CHAIN_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired:
            raise BenchError(f"{what} did not finish within {CHAIN_TIMEOUT:.0f}s") from None
        wall = time.monotonic() - t0
        if proc.returncode != 0:
            raise BenchError(f"{what} exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
        times = []
        for i in range(n):
            first, last = (work / f"s{i}.t").read_text().split()
            times.append((float(first), float(last)))
    hops = [times[i + 1][0] - times[i][1] for i in range(n - 1)]
    return ChainPeer(hops, times[-1][1] - times[0][0], wall)


def chain_snakemake(n: int) -> ChainPeer:
    argv = [_tool("snakemake"), "--cores", "1", "--snakefile", "Snakefile"]
    return _chain(argv, n, {"Snakefile": _snakefile(n)}, "snakemake")


def chain_doit(n: int) -> ChainPeer:
    return _chain([_tool("doit"), "-f", "dodo.py"], n, {"dodo.py": _dodo(n)}, "doit")


# ---- fan-out ----------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _supervisord_conf(tmp: Path, port: int, n: int, command: str) -> str:
    lines = [
        "[inet_http_server]",
        f"port = 127.0.0.1:{port}",
        "[supervisord]",
        "nodaemon = true",
        f"logfile = {tmp}/supervisord.log",
        f"pidfile = {tmp}/supervisord.pid",
        f"childlogdir = {tmp}/logs",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]
    for i in range(n):
        lines += [
            f"[program:p{i}]",
            f"command = {command}",
            "autostart = true",
            "autorestart = false",
            "startsecs = 0",
            "redirect_stderr = true",
        ]
    return "\n".join(lines) + "\n"


def fanout_supervisord(n: int, command: str = "sleep 2") -> FanoutPeer:
    with scratch("ass-") as tmp:
        env = bench_env(tmp)
        (tmp / "logs").mkdir()
        port = _free_port()
        conf = tmp / "supervisord.conf"
        conf.write_text(_supervisord_conf(tmp, port, n, command))
        rpc = xmlrpc.client.ServerProxy(f"http://127.0.0.1:{port}/RPC2")
        t0 = time.monotonic()
        daemon = subprocess.Popen(
            [_tool("supervisord"), "-c", str(conf)],
            env=env,
            cwd=tmp,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                if time.monotonic() - t0 > FANOUT_TIMEOUT:
                    raise BenchError(f"supervisord: not all {n} programs EXITED in {FANOUT_TIMEOUT:.0f}s")
                if daemon.poll() is not None:
                    log = (tmp / "supervisord.log").read_text()[-500:]
                    raise BenchError(f"supervisord exited {daemon.returncode}: {log}")
                try:
                    info = rpc.supervisor.getAllProcessInfo()
                except (ConnectionError, xmlrpc.client.Fault):
                    info = []
                if isinstance(info, list) and len(info) == n:
                    states = [p.get("statename") for p in info if isinstance(p, dict)]
                    if all(s == "EXITED" for s in states):
                        wall = time.monotonic() - t0
                        break
                    bad = [s for s in states if s in ("FATAL", "BACKOFF", "UNKNOWN")]
                    if bad:
                        raise BenchError(f"supervisord: programs in state {bad[0]}")
                time.sleep(POLL)
        finally:
            daemon.terminate()
            try:
                daemon.wait(timeout=20)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
    return FanoutPeer(wall)


def fanout_tmuxp(n: int, command: str = "sleep 2") -> FanoutPeer:
    with scratch("ast-") as tmp:
        env = bench_env(tmp)
        panes = tmp / "panes"
        panes.mkdir()
        sock = f"agentsup-bench-tmuxp-{tmp.name}"
        exits = {str(panes / f"w{i}.exit") for i in range(n)}
        windows = [
            {
                "window_name": f"w{i}",
                "panes": [{"shell_command": [floor_script(panes / f"w{i}.exit", command)]}],
            }
            for i in range(n)
        ]
        workspace = tmp / "fanout.json"
        workspace.write_text(json.dumps({"session_name": "fanout", "windows": windows}))
        seen: set[str] = set()
        with watching(panes) as arrivals:
            t0 = time.monotonic()
            try:
                load = subprocess.run(
                    [_tool("tmuxp"), "load", "-d", "-y", "-L", sock, str(workspace)],
                    env=env,
                    cwd=tmp,
                    capture_output=True,
                    text=True,
                    timeout=FANOUT_TIMEOUT,
                    check=False,
                )
                if load.returncode != 0:
                    raise BenchError(f"tmuxp load exited {load.returncode}: {load.stderr.strip()[-500:]}")
                while seen != exits:
                    left = FANOUT_TIMEOUT - (time.monotonic() - t0)
                    if left <= 0:
                        raise BenchError(
                            f"tmuxp: {len(seen)} of {n} windows finished in {FANOUT_TIMEOUT:.0f}s"
                        )
                    try:
                        path, _ = arrivals.seen.get(timeout=left)
                    except queue.Empty:
                        continue
                    if path in exits:
                        seen.add(path)
                wall = time.monotonic() - t0
            except subprocess.TimeoutExpired:
                raise BenchError(f"tmuxp load did not return within {FANOUT_TIMEOUT:.0f}s") from None
            finally:
                kill_server("tmux", sock, env)
    return FanoutPeer(wall)
