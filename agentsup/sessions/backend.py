"""The backend protocol: everything the supervisor may ask of the place where agents run.

The tmux implementation lives in :mod:`agentsup.sessions.tmux`; a remote backend (tmux over SSH) would
implement the same protocol without the engine noticing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


class BackendError(Exception):
    """The backend could not do what was asked; the message says what and why."""


class TmuxNotFoundError(BackendError):
    """tmux is not installed or not on PATH."""


@dataclass(frozen=True)
class LaunchSpec:
    """What one attempt of one agent runs, and where its files go.

    The backend writes ``script`` (a POSIX sh wrapper with every value shell-quoted), and the pane runs
    ``/bin/sh script`` as its own command. The wrapper runs ``argv`` in ``cwd`` with ``env`` added to the
    environment, then writes ``exit_file`` atomically (temp file + rename) as JSON:
    ``{"code": int, "signal": int | null, "started_at": float, "ended_at": float}``.
    """

    run: str
    agent: str
    attempt: int
    argv: tuple[str, ...]
    cwd: Path
    env: Mapping[str, str]
    script: Path
    exit_file: Path
    output_log: Path
    # Created exclusively before the agent runs: a second wrapper for the same attempt (a spawn repeated
    # by a resumed engine while the first was in flight) finds it and runs nothing.
    started_marker: Path | None = None
    # Removed from the environment before ``env`` is added (the pane inherits the tmux server's).
    unset: tuple[str, ...] = ()


@dataclass(frozen=True)
class Pane:
    """One agent pane as the backend sees it (one ``list-panes`` row)."""

    window_id: str  # "@12"
    pane_id: str  # "%12"
    pid: int  # the wrapper's pid: leader of the agent's process group
    dead: bool
    dead_status: int | None  # exit status tmux saw, when dead
    run: str | None  # the @agentsup_* tags, None on untagged windows
    agent: str | None
    attempt: int | None


@dataclass(frozen=True)
class ExitRecord:
    """The content of an ``exit.json`` written by the wrapper."""

    code: int
    signal: int | None
    started_at: float
    ended_at: float


class Backend(Protocol):
    """A place that runs agent panes. Methods block; callers keep them off any event loop."""

    def create_session(self, session: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        """Create ``session`` whose first window, ``supervisor``, runs ``argv``.

        Raises BackendError when the session exists already.
        """

    def reopen_supervisor(self, session: str, argv: Sequence[str], cwd: Path, env: Mapping[str, str]) -> None:
        """Run ``argv`` in a new ``supervisor`` window of ``session`` (a new session if it is gone)."""

    def has_session(self, session: str) -> bool: ...

    def kill_session(self, session: str) -> None:
        """Kill the session and every pane in it; no error when it is already gone."""

    def spawn(self, session: str, launch: LaunchSpec) -> Pane:
        """Write the wrapper and open a window running it, in one batched call.

        The window is tagged ``@agentsup_run/agent/attempt``, has ``remain-on-exit`` (that window only) and
        pipes its output into ``launch.output_log`` from the first byte.
        """

    def spawn_many(
        self,
        session: str,
        launches: Iterable[LaunchSpec],
        on_result: Callable[[LaunchSpec, Pane | BackendError], None] | None = None,
    ) -> list[Pane | BackendError]:
        """:meth:`spawn` for several launches: each one's pane or error, in the order taken. Each window is
        asked for before the next launch is taken, so a lazy iterable's work overlaps the backend's;
        ``on_result`` gets each result as soon as it is known."""

    def connect(self, session: str) -> None:
        """Keep a connection to ``session`` for the commands that follow (a speed-up; optional)."""

    def close(self) -> None:
        """Drop what :meth:`connect` kept; the backend still works afterwards."""

    def list_panes(self, session: str) -> list[Pane]:
        """Every agent pane of the session (not the supervisor's), in one call. [] if no session."""

    def capture(self, pane_id: str, lines: int = 50) -> str:
        """The visible screen plus up to ``lines`` of history, as plain text."""

    def send_text(self, pane_id: str, text: str, enter: bool = True) -> None:
        """Type ``text`` literally (bracketed paste when it has several lines), then Enter if asked."""

    def paste(self, pane_id: str, text: str) -> None:
        """Paste ``text`` as it is (bracketed when the program asked for it), with no Enter."""

    def send_keys(self, pane_id: str, keys: Sequence[str]) -> None:
        """Press ``keys``, named as tmux names them (``Enter``, ``Escape``, ``Down``, ``y``), in order."""

    def stop(self, pane: Pane, grace: float, also: Callable[[], Iterable[int]] | None = None) -> None:
        """SIGTERM the pane's process group, wait up to ``grace`` s, then SIGKILL what is left.

        ``also`` names the agent's processes outside the group (asked before the SIGTERM and again before
        the SIGKILL); they get the same signals. No error for what has already ended.
        """

    def stop_all(
        self, panes: Sequence[Pane], grace: float, also: Callable[[], Iterable[int]] | None = None
    ) -> None:
        """:meth:`stop` for several panes at once: one grace period for all of them."""

    def close_dead_pane(self, pane_id: str) -> bool:
        """Close the pane if it is dead and say True (also when it is gone): its output pipe gets nothing
        more. False while it lives."""
        ...

    def kill_window(self, window_id: str) -> None:
        """Close an agent window; no error when it is already gone."""

    def attach_command(self, session: str, window_id: str | None, inside_tmux: str | None) -> list[str]:
        """The argv that puts the user's terminal on ``window_id`` (or the session).

        ``inside_tmux`` is the caller's $TMUX (None outside tmux): on the same server it switches the
        client; elsewhere it attaches (nested when inside another server).
        """
