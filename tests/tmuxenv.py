"""A real tmux server on an isolated socket for one test, and a retry helper for awaiting conditions.

The server reads no user configuration (``HOME`` is a fresh directory, ``XDG_CONFIG_HOME`` unset) unless
the test writes ``home/.tmux.conf`` before the server starts, and runs with ``SHELL=/bin/sh``.
"""

from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import pytest

from agentsup.sessions import LaunchSpec, TmuxBackend

T = TypeVar("T")

SOCKET_PREFIX = "agentsup-test-"
DEFAULT_SESSION = "run1"


def wait_until(
    predicate: Callable[[], T | Literal[False] | None],
    timeout: float = 10.0,
    interval: float = 0.01,
    message: str = "condition",
) -> T:
    """Call ``predicate`` until it returns something truthy, and return that; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


@dataclass
class TmuxEnv:
    """One isolated tmux server (``-L socket_name``) plus a scratch directory for run files."""

    socket_name: str
    home: Path
    root: Path
    tmux_bin: str = "tmux"
    # "control": backends from start_session send their commands through a control-mode client.
    via: Literal["process", "control"] = "process"

    def backend(self) -> TmuxBackend:
        return TmuxBackend(self.socket_name)

    def tmux(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run tmux on this server directly, bypassing the backend (for assertions and setup)."""
        return subprocess.run(
            [self.tmux_bin, "-L", self.socket_name, *args],
            capture_output=True,
            text=True,
            check=check,
        )

    def start_session(self, session: str = DEFAULT_SESSION) -> TmuxBackend:
        """A backend and a session whose supervisor window just sleeps."""
        backend = self.backend()
        backend.create_session(session, ["sleep", "3600"], self.root, {})
        if self.via == "control":
            backend.connect(session)
        return backend

    def launch(
        self,
        agent: str,
        argv: Sequence[str],
        *,
        env: Mapping[str, str] | None = None,
        cwd: Path | None = None,
        run: str = DEFAULT_SESSION,
        attempt: int = 1,
    ) -> LaunchSpec:
        """A launch whose files live under ``root/agents/<n>/`` (``n`` unique, the agent may be hostile)."""
        agent_dir = self.root / "agents" / uuid.uuid4().hex[:12]
        return LaunchSpec(
            run=run,
            agent=agent,
            attempt=attempt,
            argv=tuple(argv),
            cwd=cwd if cwd is not None else self.root,
            env=dict(env or {}),
            script=agent_dir / "run.sh",
            exit_file=agent_dir / "exit.json",
            output_log=agent_dir / "output.log",
        )

    def kill_server(self) -> None:
        self.tmux("kill-server", check=False)


@contextmanager
def isolated_tmux(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, via: Literal["process", "control"] = "process"
) -> Iterator[TmuxEnv]:
    """A TmuxEnv whose server is killed on exit, with ``HOME``/``SHELL`` pinned for its lifetime."""
    home = tmp_path / "home"
    root = tmp_path / "work"
    home.mkdir()
    root.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("SHELL", "/bin/sh")
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("TMUX", raising=False)
    monkeypatch.delenv("TMUX_PANE", raising=False)
    env = TmuxEnv(socket_name=f"{SOCKET_PREFIX}{uuid.uuid4().hex}", home=home, root=root, via=via)
    try:
        yield env
    finally:
        env.kill_server()
        env.backend().socket_path().unlink(missing_ok=True)
