"""Where a run keeps its files. One directory per run (mode 0700) under the state directory."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentsup.supervisor.events import JSON

RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,95}$")
# AF_UNIX paths are limited to 108 bytes including the terminating NUL.
MAX_SOCKET_PATH = 107
# Variables that describe the caller's own terminal or tmux client, never an agent's.
_PRIVATE_ENV = frozenset({"TMUX", "TMUX_PANE", "TERM_SESSION_ID", "WINDOWID", "COLUMNS", "LINES"})


class RunDirError(Exception):
    """A run directory cannot be created, found or read; the message says which and why."""


def default_state_dir(environ: Mapping[str, str]) -> Path:
    """``$AGENTSUP_STATE_DIR``, else ``$XDG_STATE_HOME/agentsup``, else ``~/.local/state/agentsup``."""
    if explicit := environ.get("AGENTSUP_STATE_DIR"):
        return Path(explicit).expanduser()
    xdg = environ.get("XDG_STATE_HOME") or str(Path(environ.get("HOME", "~")) / ".local" / "state")
    return Path(xdg).expanduser() / "agentsup"


def new_run_id(name: str) -> str:
    return f"{name}-{time.strftime('%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def agent_fs_name(agent: str) -> str:
    """A file name for an agent; dynamic agents (``master/id``) keep their nesting readable."""
    return agent.replace("/", "~")


@dataclass(frozen=True)
class RunMeta:
    """``run.json``: what the engine needs to (re)start, written once by ``agentsup start``."""

    run_id: str
    plan_file: str  # the plan's original path; the copy in the run dir is what runs
    tmux_socket: str
    session: str
    created_at: float
    keep_session: bool = False
    inputs: Mapping[str, str] = dataclasses.field(default_factory=dict)  # agentsup start --set

    def to_json(self) -> dict[str, JSON]:
        return {
            "run_id": self.run_id,
            "plan_file": self.plan_file,
            "tmux_socket": self.tmux_socket,
            "session": self.session,
            "created_at": self.created_at,
            "keep_session": self.keep_session,
            "inputs": dict(self.inputs),
        }


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def meta_file(self) -> Path:
        return self.path / "run.json"

    @property
    def plan_copy(self) -> Path:
        return self.path / "plan.toml"

    @property
    def environ_file(self) -> Path:
        return self.path / "environ.json"

    @property
    def events_db(self) -> Path:
        return self.path / "events.db"

    @property
    def control_socket(self) -> Path:
        return self.path / "control.sock"

    @property
    def engine_log(self) -> Path:
        return self.path / "engine.log"

    @property
    def ready_file(self) -> Path:
        """Created by the engine once it serves the run (``start`` and ``resume`` wait for it)."""
        return self.path / "engine.ready"

    @property
    def inbox_dir(self) -> Path:
        """Drop a JSON file here (``{"name": ..., "data": ...}``) to raise an ``external`` event."""
        return self.path / "inbox"

    @property
    def agents_dir(self) -> Path:
        return self.path / "agents"

    def agent_dir(self, agent: str) -> Path:
        return self.agents_dir / agent_fs_name(agent)

    def out_dir(self, agent: str) -> Path:
        return self.agent_dir(agent) / "out"

    def in_dir(self, agent: str) -> Path:
        return self.agent_dir(agent) / "in"

    def context_file(self, agent: str) -> Path:
        return self.agent_dir(agent) / "context.json"

    @property
    def panes_dir(self) -> Path:
        """Every file the engine watches (exit records, done files, output logs) sits here, flat.

        One static directory under one non-recursive inotify watch: a recursive watch misses files in
        directories created moments before (watchdog adds their watches after the fact).
        """
        return self.path / "panes"

    @property
    def worktrees_dir(self) -> Path:
        """The git worktrees of the agents with ``worktree = true`` (see ``supervisor/worktrees.py``)."""
        return self.path / "worktrees"

    def worktree(self, agent: str) -> Path:
        return self.worktrees_dir / agent_fs_name(agent)

    def attempt_dir(self, agent: str, attempt: int) -> Path:
        return self.agent_dir(agent) / "attempts" / str(attempt)

    def script(self, agent: str, attempt: int) -> Path:
        return self.attempt_dir(agent, attempt) / "launch.sh"

    def _pane_file(self, agent: str, attempt: int, suffix: str) -> Path:
        return self.panes_dir / f"{agent_fs_name(agent)}.{attempt}.{suffix}"

    def hooks_file(self, agent: str, attempt: int) -> Path:
        """What the agent CLI's hooks reported (``agentsup hook``), one JSON object per line."""
        return self._pane_file(agent, attempt, "hooks")

    def cli_dir(self, agent: str, attempt: int) -> Path:
        """The agent CLI's run-private config files (hook settings), 0700."""
        return self.attempt_dir(agent, attempt) / "cli"

    def exit_file(self, agent: str, attempt: int) -> Path:
        return self._pane_file(agent, attempt, "exit.json")

    def output_log(self, agent: str, attempt: int) -> Path:
        return self._pane_file(agent, attempt, "log")

    def done_file(self, agent: str, attempt: int) -> Path:
        return self._pane_file(agent, attempt, "done")

    def started_marker(self, agent: str, attempt: int) -> Path:
        return self._pane_file(agent, attempt, "started")

    def read_meta(self) -> RunMeta:
        try:
            raw = json.loads(self.meta_file.read_text())
            return RunMeta(
                run_id=str(raw["run_id"]),
                plan_file=str(raw["plan_file"]),
                tmux_socket=str(raw["tmux_socket"]),
                session=str(raw["session"]),
                created_at=float(raw["created_at"]),
                keep_session=bool(raw.get("keep_session", False)),
                inputs={str(k): str(v) for k, v in dict(raw.get("inputs") or {}).items()},
            )
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise RunDirError(f"cannot read {self.meta_file}: {exc}") from exc

    def read_environ(self) -> dict[str, str]:
        try:
            raw = json.loads(self.environ_file.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise RunDirError(f"cannot read {self.environ_file}: {exc}") from exc
        return {str(k): str(v) for k, v in raw.items()}


def runs_root(state_dir: Path) -> Path:
    return state_dir / "runs"


def find_run(state_dir: Path, run_id: str) -> RunDir:
    run = RunDir(runs_root(state_dir) / run_id)
    if not RUN_ID_RE.match(run_id) or not run.meta_file.exists():
        known = list_runs(state_dir)
        hint = f"; known runs: {', '.join(r.run_id for r in known[-5:])}" if known else ""
        raise RunDirError(f"no run {run_id!r} under {runs_root(state_dir)}{hint}")
    return run


def list_runs(state_dir: Path) -> list[RunDir]:
    """Every run, oldest first."""
    root = runs_root(state_dir)
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if (p / "run.json").exists()]
    return sorted(runs, key=lambda r: r.meta_file.stat().st_mtime)


def create_run_dir(state_dir: Path, meta: RunMeta, plan_text: str, environ: Mapping[str, str]) -> RunDir:
    """Create the run directory (0700) with its plan copy, environment and meta, or raise RunDirError."""
    if not RUN_ID_RE.match(meta.run_id):
        raise RunDirError(
            f"invalid run id {meta.run_id!r}: use letters, digits, '_' and '-' (at most 96), "
            "starting with a letter or digit"
        )
    root = runs_root(state_dir)
    run = RunDir(root / meta.run_id)
    try:
        root.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        raise RunDirError(f"cannot create the run directory {run.path}: {exc.strerror}") from exc
    sock = str(run.control_socket)
    if len(sock.encode()) > MAX_SOCKET_PATH:
        raise RunDirError(
            f"the control socket path would be {len(sock.encode())} bytes, over the {MAX_SOCKET_PATH} "
            f"a Unix socket allows: {sock}; set a shorter --state-dir or AGENTSUP_STATE_DIR"
        )
    try:
        run.path.mkdir(mode=0o700)
    except FileExistsError as exc:
        raise RunDirError(
            f"run id {meta.run_id!r} is already in use ({run.path}); choose another --run-id"
        ) from exc
    except OSError as exc:
        raise RunDirError(f"cannot create the run directory {run.path}: {exc.strerror}") from exc
    try:
        run.path.chmod(0o700)
        run.plan_copy.write_text(plan_text)
        env = {k: v for k, v in environ.items() if k not in _PRIVATE_ENV}
        fd = os.open(run.environ_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(env, f)
        run.agents_dir.mkdir()
        run.panes_dir.mkdir()
        run.inbox_dir.mkdir()
        tmp = run.meta_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(meta.to_json(), indent=2) + "\n")
        tmp.replace(run.meta_file)
    except OSError as exc:
        raise RunDirError(f"cannot write the run directory {run.path}: {exc}") from exc
    return run
