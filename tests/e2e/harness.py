"""Drive the installed ``agentsup`` command against an isolated tmux server and state directory."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pexpect
import psutil

from agentsup.supervisor.events import Event

AGENTSUP = str(Path(sys.executable).parent / "agentsup")


class Agentsup:
    def __init__(self, env: Mapping[str, str], state_dir: Path, socket: str) -> None:
        self.env = dict(env)
        self.state_dir = state_dir
        self.socket = socket

    def spawn(self, *args: str, timeout: float = 30) -> pexpect.spawn[str]:
        return pexpect.spawn(
            AGENTSUP, list(args), env=self.env, timeout=timeout, encoding="utf-8", dimensions=(50, 200)
        )

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        r = subprocess.run([AGENTSUP, *args], env=self.env, capture_output=True, text=True, check=False)
        if check and r.returncode != 0:
            raise AssertionError(f"agentsup {' '.join(args)} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
        return r

    def status_json(self, run_id: str) -> dict[str, Any]:
        out = json.loads(self.run("status", run_id, "--json").stdout)
        assert isinstance(out, dict)
        return out

    def events(self, run_id: str) -> list[Event]:
        lines = self.run("events", run_id, "--json").stdout.splitlines()
        return [Event.from_json(json.loads(line)) for line in lines]

    def logs(self, run_id: str, agent: str, attempt: int | None = None) -> str:
        extra = [] if attempt is None else ["--attempt", str(attempt)]
        return self.run("logs", run_id, agent, *extra).stdout

    def run_dir(self, run_id: str) -> Path:
        return self.state_dir / "runs" / run_id

    def tmux(self, *args: str) -> str:
        r = subprocess.run(
            ["tmux", "-L", self.socket, *args], env=self.env, capture_output=True, text=True, check=False
        )
        if r.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)} exited {r.returncode}: {r.stderr}")
        return r.stdout

    def server_running(self) -> bool:
        r = subprocess.run(
            ["tmux", "-L", self.socket, "list-sessions"], env=self.env, capture_output=True, check=False
        )
        return r.returncode == 0

    def engine_pids(self) -> list[int]:
        """Engine processes of this test's runs (matched by the state directory in their argv)."""
        pids = []
        for proc in psutil.process_iter(["cmdline"]):
            cmd = proc.info["cmdline"] or []
            if cmd[1:3] == ["-m", "agentsup.supervisor"] and any(str(self.state_dir) in c for c in cmd):
                pids.append(proc.pid)
        return pids

    def has_session(self, session: str) -> bool:
        r = subprocess.run(
            ["tmux", "-L", self.socket, "has-session", "-t", f"={session}"],
            env=self.env,
            capture_output=True,
            check=False,
        )
        return r.returncode == 0


def isolated_env(home: Path, state_dir: Path, socket: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("TMUX", "TMUX_PANE")}
    env.update(
        HOME=str(home),
        SHELL="/bin/sh",
        AGENTSUP_STATE_DIR=str(state_dir),
        AGENTSUP_TMUX_SOCKET=socket,
    )
    return env


def wait_until(
    predicate: Callable[[], object], timeout: float = 20.0, interval: float = 0.02, message: str = ""
) -> None:
    """Poll ``predicate`` until it is truthy; fail with ``message`` after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(message or f"condition not met within {timeout}s")
        time.sleep(interval)


@contextmanager
def isolated_agentsup(root: Path, state_name: str = "state") -> Iterator[Agentsup]:
    """The installed agentsup on a tmux server and state directory of its own under ``root``.

    On exit the server is killed, and every engine of its runs must be gone with it (an engine is the
    command of its tmux window).
    """
    socket = f"agentsup-test-{uuid.uuid4().hex[:12]}"
    home = root / "home"
    home.mkdir()
    state = root / state_name
    env = isolated_env(home, state, socket)
    tool = Agentsup(env, state, socket)
    try:
        yield tool
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True, check=False)
        wait_until(lambda: not tool.engine_pids(), timeout=15, message="an engine outlived its tmux server")
        # tmux 3.3a: the control-mode client of an engine killed with SIGKILL (the chaos tests) can keep
        # its server from exiting, kill-server or not; such a server was found alive an hour later.
        _, stuck = psutil.wait_procs(_tmux_processes(socket), timeout=5)
        for proc in stuck:
            proc.kill()
        psutil.wait_procs(stuck, timeout=5)


def _tmux_processes(socket: str) -> list[psutil.Process]:
    """The tmux server and clients of ``socket`` (tmux forks its server from the client that started it,
    argv included)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmd = proc.info["cmdline"] or []
        on_socket = f"-L{socket}" in cmd or ("-L", socket) in itertools.pairwise(cmd)
        if cmd and Path(cmd[0]).name == "tmux" and on_socket:
            found.append(proc)
    return found


@contextmanager
def inotify_flooded(agentsup: Agentsup, run_id: str) -> Iterator[Path]:
    """Overflow the engine's inotify queue: inside the block (which gets the run directory) the engine and
    the run's tmux server are stopped (tmux continues a stopped pane process, so it is stopped first), and
    more files than the queue holds are created in ``panes/``. The kernel drops the events after those, so
    what the block writes is never announced; the engine must find it some other way."""
    run_dir = agentsup.run_dir(run_id)
    (engine,) = agentsup.engine_pids()
    server = int(agentsup.tmux("display-message", "-p", "#{pid}"))
    queue_max = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())
    os.kill(server, signal.SIGSTOP)
    os.kill(engine, signal.SIGSTOP)
    try:
        for i in range(queue_max + 100):
            os.close(os.open(run_dir / "panes" / f"flood.{i}", os.O_CREAT | os.O_WRONLY, 0o600))
        yield run_dir
    finally:
        os.kill(server, signal.SIGCONT)
        os.kill(engine, signal.SIGCONT)
