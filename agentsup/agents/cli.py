"""The contract of an agent-CLI preset (Claude Code, Codex, Gemini CLI, aider, or a third party's), and the
data it trades in with the engine.

What the host (the engine) guarantees:

- ``launch`` gets a validated AgentSpec (its ``prompt`` rendered), the ``AGENTSUP_*`` environment, the
  plan's ``CLIOptions`` and a ``HookSetup``. Before the pane starts, the host creates
  ``HookSetup.config_dir`` (0700, private to this agent and attempt) and writes every ``Launch.files``
  entry into it. The pane runs ``Launch.argv`` with the caller's environment, then ``Launch.env``.
- ``read_screen`` gets the pane's visible screen as the sessions backend captures it (``capture-pane -p
  -J``: no escapes, wrapped lines joined).
- ``hook_signal`` gets what one hook invocation received: the event name the preset put on the hook's
  command line and the payload (stdin, or the extra argument Codex's ``notify`` adds), as text.
- ``judge`` gets a one-shot agent's exit code and the end of its output log, ANSI escapes removed (as
  the engine reads logs), at least the last 64 KiB: Claude's result object is one long line.

What a preset must do: be pure. It returns data and never starts processes, touches tmux, reads or writes
files, or looks at the environment of the process it runs in. Credentials and endpoints come from the
plan's ``env`` or the caller; a preset adds only what makes its CLI safe to run unattended, and never
edits the user's own configuration (run-private files go through ``Launch.files``).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Protocol, runtime_checkable

from agentsup.agents.base import Launch
from agentsup.plan import AgentSpec
from agentsup.plan.model import AgentMode, Approval

# The plan's names for them: a preset reads what the plan says.
Mode = AgentMode
Approve = Approval


@dataclass(frozen=True)
class CLIOptions:
    """How the plan wants an agent's CLI run."""

    mode: Mode = Mode.INTERACTIVE
    approve: Approve = Approve.ASK
    extra: tuple[str, ...] = ()  # flags appended after the preset's own (before a one-shot prompt)
    model: str | None = None
    program: str | None = None  # the executable; None: the CLI's own name, looked up on PATH


@dataclass(frozen=True)
class HookSetup:
    """How the agent's CLI reaches agentsup, and where its run-private files live.

    A hook runs ``command`` plus one more argument, the event name the preset chose; the command finds the
    agent from ``AGENTSUP_*`` in its environment (inherited from the pane) and takes the payload from
    stdin, or from one further argument when a CLI passes it that way (as Codex's ``notify`` would).
    """

    command: tuple[str, ...]  # e.g. ("agentsup", "hook")
    config_dir: Path  # absolute; created by the host, 0700, before the pane starts

    def command_line(self, event: str) -> str:
        """The hook as one shell command line (what the CLIs' settings files expect)."""
        return shlex.join((*self.command, event))


class ScreenState(StrEnum):
    STARTING = "starting"  # the CLI is up but its input is not: keys typed now may be lost
    READY = "ready"  # waiting for a prompt
    BUSY = "busy"  # working on a turn
    NEEDS_PERMISSION = "needs_permission"  # a dialog asks a person (approve_keys / deny_keys answer it)
    RATE_LIMITED = "rate_limited"  # the provider refused for now; ``reset`` says until when, if shown
    UNKNOWN = "unknown"  # nothing the preset recognises


@dataclass(frozen=True)
class Screen:
    """One reading of a pane's screen."""

    state: ScreenState
    question: str | None = None  # NEEDS_PERMISSION: the dialog's text, as shown
    reset: str | None = None  # RATE_LIMITED: when the limit resets, as shown (e.g. "1:26 AM UTC")


class HookKind(StrEnum):
    TURN_DONE = "turn_done"  # the agent finished a turn and waits for the next prompt
    WAITING = "waiting"  # it waits for input; only the screen tells a finished turn from a question
    NEEDS_INPUT = "needs_input"  # it asks a person; ``text`` is the question
    RATE_LIMITED = "rate_limited"  # ``text``: the reset time, or None
    FAILED = "failed"  # the turn ended in an error; ``text`` is the reason


@dataclass(frozen=True)
class HookSignal:
    kind: HookKind
    text: str | None = None


@dataclass(frozen=True)
class Verdict:
    """How a one-shot run went, judged from more than its exit code where the CLI says more."""

    succeeded: bool
    reason: str
    rate_limited: bool = False  # it failed because the provider refused for now
    reset: str | None = None  # when the limit resets, as the CLI gave it


@dataclass(frozen=True)
class Keys:
    """Keys as ``tmux send-keys`` names them (``Enter``, ``Escape``, ``y``)."""

    keys: tuple[str, ...]


@dataclass(frozen=True)
class Paste:
    """Literal text, pasted (bracketed when the program asked for it: ``tmux paste-buffer -p``)."""

    text: str


@dataclass(frozen=True)
class Settle:
    """Wait until the screen has not changed for ``seconds`` (at most a few seconds) before the next step."""

    seconds: float


KeyStep = Keys | Paste | Settle

# Every CLI here takes a paste, then Enter once the screen has settled: Codex treats keys that arrive
# within a few milliseconds of text as part of a paste, and its Enter would insert a newline.
SETTLE_BEFORE_ENTER = 0.3


def paste_then_enter(text: str) -> tuple[KeyStep, ...]:
    return (Paste(text), Settle(SETTLE_BEFORE_ENTER), Keys(("Enter",)))


@runtime_checkable
class CLIPreset(Protocol):
    """An agent CLI. See the module docstring for what the host guarantees."""

    name: str

    def launch(
        self, spec: AgentSpec, env: Mapping[str, str], options: CLIOptions, hooks: HookSetup
    ) -> Launch:
        """The argv, environment and run-private files of the agent's pane. A one-shot launch needs
        ``spec.prompt`` (ValueError without it); an interactive one never puts the prompt on its command
        line: the host delivers it with ``submit`` once ``read_screen`` says READY."""
        ...

    def read_screen(self, text: str) -> Screen:
        """Classify a capture of the pane."""
        ...

    def approve_keys(self, screen: str) -> tuple[str, ...]:
        """The keys that answer the dialog on ``screen`` (a NEEDS_PERMISSION capture) "yes, once"."""
        ...

    def deny_keys(self, screen: str) -> tuple[str, ...]:
        """The keys that answer it "no"."""
        ...

    def submit(self, text: str) -> tuple[KeyStep, ...]:
        """How to type a prompt into the READY screen and send it."""
        ...

    def hook_signal(self, event: str, payload: str) -> HookSignal | None:
        """What one hook invocation means for the agent's state; None when it means nothing."""
        ...

    def judge(self, exit_code: int, output_tail: str) -> Verdict:
        """Whether a one-shot run succeeded."""
        ...


# Helpers for presets: screens and payloads are text, read defensively.


def oneshot_prompt(spec: AgentSpec) -> str:
    if spec.prompt is None:
        raise ValueError(f"agent {spec.name!r} runs one-shot and needs a prompt")
    return spec.prompt


def launch_env(defaults: Mapping[str, str], spec: AgentSpec, env: Mapping[str, str]) -> dict[str, str]:
    """The preset's defaults, then the plan's ``env`` (which may override them), then ``AGENTSUP_*``."""
    return {**defaults, **spec.env, **env}


RULE_CHARS = frozenset("─━═╌")


def is_rule(line: str, minimum: int = 20) -> bool:
    """A horizontal rule the TUIs draw (``────``), at least ``minimum`` characters long."""
    stripped = line.strip()
    return len(stripped) >= minimum and set(stripped) <= RULE_CHARS


def screen_lines(text: str) -> list[str]:
    """The capture's lines, trailing blanks trimmed (tmux pads the screen's unused rows)."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def object_of(value: object) -> Mapping[str, object]:
    return value if isinstance(value, Mapping) else {}


def string_of(value: object) -> str:
    return value if isinstance(value, str) else ""


def parse_object(text: str) -> Mapping[str, object] | None:
    """``text`` parsed as a JSON object, or None when it is not one."""
    try:
        value: object = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return value if isinstance(value, Mapping) else None


def last_json_object(text: str) -> Mapping[str, object] | None:
    """The last JSON object in ``text`` that starts a line, pretty-printed or not (other lines around it
    are skipped); None when there is none."""
    decoder = json.JSONDecoder()
    starts = [i for i in range(len(text)) if text[i] == "{" and (i == 0 or text[i - 1] == "\n")]
    for start in reversed(starts):
        try:
            value, _ = decoder.raw_decode(text, start)
        except (ValueError, RecursionError):
            continue
        if isinstance(value, Mapping):
            return value
    return None


def json_lines(text: str) -> Iterator[Mapping[str, object]]:
    """The JSON objects among ``text``'s lines (JSON-lines output mixed with other lines)."""
    for line in text.splitlines():
        start = line.find("{")
        if start != -1:
            found = parse_object(line[start:].strip())
            if found is not None:
                yield found


def clip(text: str, limit: int = 300) -> str:
    """``text`` on one line at most ``limit`` characters long."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def tool_summary(tool: str, tool_input: Mapping[str, object]) -> str:
    """A tool call as a person reads it: the tool and its most telling argument."""
    for key in ("command", "file_path", "path", "url", "pattern", "description"):
        value = tool_input.get(key)
        if isinstance(value, str) and value:
            return clip(f"{tool}: {value}")
    return clip(f"{tool} {json.dumps(dict(tool_input), sort_keys=True)}") if tool_input else tool


def last_index(lines: Sequence[str], predicate: Callable[[str], bool]) -> int:
    """The index of the last line ``predicate`` accepts, or -1."""
    for i in range(len(lines) - 1, -1, -1):
        if predicate(lines[i]):
            return i
    return -1
