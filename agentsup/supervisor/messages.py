"""Messages the engine's loop consumes, one at a time; threads and timers only ever post these."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentsup.agents.cli import HookSignal, Screen
from agentsup.sessions import ExitRecord, Pane
from agentsup.supervisor.events import JSON
from agentsup.supervisor.output import ReadResult
from agentsup.supervisor.resources import Usage


@dataclass(frozen=True)
class Exited:
    """An attempt's exit record was found (inotify or the sweep); ``record`` None means tmux's status."""

    agent: str
    attempt: int
    record: ExitRecord | None
    source: str
    dead_status: int | None = None
    problem: str | None = None  # the exit file exists but cannot be read
    gone: bool = False  # no exit at all: the pane vanished (its output is still read to the end first)


@dataclass(frozen=True)
class DoneFileSeen:
    agent: str
    attempt: int


@dataclass(frozen=True)
class OutputGrew:
    agent: str
    attempt: int


@dataclass(frozen=True)
class PipeEnded:
    """Whether tmux will write nothing more into the attempt's output log (see ``reading.pipe_ended``)."""

    agent: str
    attempt: int
    ended: bool


@dataclass(frozen=True)
class OutputRead:
    agent: str
    attempt: int
    result: ReadResult
    final: bool


@dataclass(frozen=True)
class Spawned:
    agent: str
    attempt: int
    pane: Pane


@dataclass(frozen=True)
class SpawnFailed:
    agent: str
    attempt: int
    error: str


@dataclass(frozen=True)
class TimedOut:
    agent: str
    attempt: int


@dataclass(frozen=True)
class StopDone:
    agent: str
    attempt: int


@dataclass(frozen=True)
class Swept:
    """One reconcile pass: every agent pane tmux lists, and exit files that exist for active agents."""

    panes: tuple[Pane, ...]
    exits: Mapping[tuple[str, int], Exited]
    done_files: frozenset[tuple[str, int]]
    checked: frozenset[tuple[str, int]]  # the (agent, attempt) pairs whose files this sweep read
    grown: frozenset[tuple[str, int]] = frozenset()  # those whose output log is longer than read so far


@dataclass(frozen=True)
class Command:
    """A control request; the engine answers through ``reply``."""

    request: Mapping[str, JSON]
    reply: asyncio.Future[dict[str, JSON]]


@dataclass(frozen=True)
class InboxSeen:
    """inotify saw a file complete in the inbox (it may say so more than once)."""

    path: Path


@dataclass(frozen=True)
class InboxFile:
    """A JSON file dropped into the run's inbox: an external event, or why it is not one."""

    path: Path
    name: str
    data: JSON
    problem: str | None = None
    ident: str | None = None  # the file's identity (inode, mtime, size): read once even across a resume


@dataclass(frozen=True)
class Sampled:
    """One resource pass: each active agent's process-tree usage, and the machine's available memory."""

    usage: Mapping[str, Usage]
    available: int


@dataclass(frozen=True)
class IdleCheck:
    """Look whether an agent has been silent since ``stamp`` (its last output time when scheduled)."""

    agent: str
    attempt: int
    stamp: float
    confirm: bool


@dataclass(frozen=True)
class Crashed:
    """A background task raised something no message covers: a bug, which stops the engine."""

    error: BaseException


@dataclass(frozen=True)
class Tick:
    """Wake up to re-run the scheduler (a retry's backoff ended)."""


@dataclass(frozen=True)
class EventLogSize:
    """The event log's size on disk (events.db and its WAL), measured by the sweep timer."""

    size: int


@dataclass(frozen=True)
class HookGrew:
    """The attempt's hooks file grew (an agent CLI's hook ran)."""

    agent: str
    attempt: int


@dataclass(frozen=True)
class HooksRead:
    """The signals of the hook lines between ``offset`` and ``new_offset``."""

    agent: str
    attempt: int
    signals: tuple[HookSignal, ...]
    offset: int
    new_offset: int


@dataclass(frozen=True)
class ScreenSeen:
    """An agent CLI's screen changed state (its driver read it)."""

    agent: str
    attempt: int
    screen: Screen
    text: str


@dataclass(frozen=True)
class CLIGaveUp:
    """The driver could not go on (no ready screen in time, an error): the attempt fails."""

    agent: str
    attempt: int
    reason: str


@dataclass(frozen=True)
class CLINote:
    """Something about an agent CLI worth an alert (a prompt not confirmed, a refused dialog)."""

    agent: str
    attempt: int
    severity: str
    text: str


@dataclass(frozen=True)
class CLIAnswered:
    """About the keys answering a dialog: ``answer`` ("approve"/"deny") as they go, by the plan's policy;
    then one message with ``answer`` None once the dialog closed or could not be answered (``problem``)."""

    agent: str
    attempt: int
    answer: str | None  # "approve" | "deny"
    question: str | None
    problem: str | None


@dataclass(frozen=True)
class QuietDone:
    """``done = "idle:…"``: the CLI sat at its ready screen, unchanged, for ``seconds``."""

    agent: str
    attempt: int
    seconds: float


@dataclass(frozen=True)
class Call:
    """Run ``fn`` on the engine's loop between two messages; its result goes to ``result``."""

    fn: Callable[[], Awaitable[Any]]
    result: asyncio.Future[Any]


Message = (
    EventLogSize
    | HookGrew
    | HooksRead
    | ScreenSeen
    | CLIGaveUp
    | CLINote
    | CLIAnswered
    | QuietDone
    | Call
    | Exited
    | DoneFileSeen
    | OutputGrew
    | OutputRead
    | PipeEnded
    | Spawned
    | SpawnFailed
    | TimedOut
    | StopDone
    | Swept
    | Command
    | InboxSeen
    | InboxFile
    | Sampled
    | IdleCheck
    | Crashed
    | Tick
)

CLIMessage = HookGrew | HooksRead | ScreenSeen | CLIGaveUp | CLINote | CLIAnswered | QuietDone
"""Messages about an agent CLI's attempt."""

AgentMessage = (
    Exited
    | DoneFileSeen
    | OutputGrew
    | OutputRead
    | PipeEnded
    | Spawned
    | SpawnFailed
    | TimedOut
    | StopDone
    | HookGrew
    | HooksRead
    | ScreenSeen
    | CLIGaveUp
    | CLINote
    | CLIAnswered
    | QuietDone
)
"""Messages about one attempt of one agent (they carry ``agent`` and ``attempt``)."""
