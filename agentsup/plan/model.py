"""The plan model: what a validated ``plan.toml`` says, as frozen dataclasses.

Everything past the loader works with these types only; no raw TOML dict travels further.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType


class OnFailure(StrEnum):
    """What a final failure does to the rest of the run."""

    HALT = "halt"  # nothing new starts, waiting agents are skipped, running agents finish
    CONTINUE = "continue"  # only agents that can no longer run are skipped


class When(StrEnum):
    """Which state of an upstream agent releases a dependent."""

    SUCCEEDED = "succeeded"
    FINISHED = "finished"  # succeeded or failed, whichever
    FAILED = "failed"
    STARTED = "started"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class DoneKind(StrEnum):
    """How the supervisor decides that an agent finished its work."""

    EXIT = "exit"  # the process exited; the exit code decides success
    FILE = "file"  # the agent wrote the file named by AGENTSUP_DONE
    PATTERN = "pattern"  # a line of its output matched a regex
    TURN = "turn"  # an interactive agent CLI finished its first turn (its hook, else its screen)
    IDLE = "idle"  # an interactive agent CLI sat at its ready screen, silent, for ``DoneRule.quiet``


class AgentMode(StrEnum):
    """How an agent CLI preset runs its CLI."""

    ONESHOT = "oneshot"  # the prompt on its command line; it answers and exits
    INTERACTIVE = "interactive"  # its TUI; the engine types the prompt once the screen is ready


class Approval(StrEnum):
    """What happens to an agent CLI's permission requests (tool calls that write or run things)."""

    NEVER = "never"  # refused: read-only where the CLI can be, any dialog denied
    ASK = "ask"  # the agent waits in needs_input for a person (agentsup approve, the dashboard)
    ALWAYS = "always"  # approved: by the CLI's own auto-approve mode where safe, else the engine answers


def _frozen_map(m: Mapping[str, str] | None = None) -> Mapping[str, str]:
    return MappingProxyType(dict(m or {}))


WORKERS_SUFFIX = ".workers"  # after = ["m.workers"]: master m and every worker it spawned


@dataclass(frozen=True)
class Dependency:
    """``after = ["a"]``, ``{agent = "a", when = "finished"}``, or ``"m.workers"`` (workers=True): then
    the dependency is on master ``m`` and every worker it spawned, transitively."""

    agent: str
    when: When = When.SUCCEEDED
    workers: bool = False


@dataclass(frozen=True)
class AlertRule:
    """An output line matching ``pattern`` raises an alert of ``severity``."""

    pattern: re.Pattern[str]
    severity: Severity = Severity.WARNING

    @property
    def match(self) -> str:
        return self.pattern.pattern


@dataclass(frozen=True)
class DoneRule:
    kind: DoneKind = DoneKind.EXIT
    pattern: re.Pattern[str] | None = None  # set exactly when kind is PATTERN
    quiet: float | None = None  # seconds; set exactly when kind is IDLE

    def __str__(self) -> str:
        if self.kind is DoneKind.PATTERN and self.pattern is not None:
            return f"pattern:{self.pattern.pattern}"
        if self.kind is DoneKind.IDLE and self.quiet is not None:
            return f"idle:{self.quiet:g}s"
        return self.kind.value


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff between attempts: initial·factor^(n-1), capped, ± jitter (a fraction)."""

    initial: float = 1.0
    factor: float = 2.0
    max: float = 60.0
    jitter: float = 0.1

    def delay(self, failures: int, rand: float) -> float:
        """Seconds to wait after the ``failures``-th failure (1-based); ``rand`` is uniform in [0, 1)."""
        try:
            grown = self.initial * self.factor ** max(0, failures - 1)
        except OverflowError:  # a float power past 1e308 raises instead of giving inf
            grown = math.inf if self.initial > 0 else 0.0
        base = min(self.max, grown)
        return max(0.0, base * (1.0 + self.jitter * (2.0 * rand - 1.0)))


class Strategy(StrEnum):
    VOTE = "vote"  # the most common value of ``field``; ties and the tally reported
    WEIGHTED = "weighted"  # sum(score * confidence) / sum(confidence)
    FUSION = "fusion"  # objects merged; conflicting keys listed


@dataclass(frozen=True)
class Aggregate:
    """An agent that combines its sources' ``result.json`` files (``agentsup aggregate`` in its own pane)."""

    sources: tuple[str, ...]  # ``from``: agent names (dependencies with when = finished)
    strategy: Strategy
    field: str | None = None  # vote: the voted field (required); weighted: the score field (default "score")
    confidence: str = "confidence"  # weighted: the weight field
    require_all: bool = False  # fail when any source failed or has no usable result


@dataclass(frozen=True)
class AgentSpec:
    """One agent of the plan (or a [workers] template). Exactly one of ``cmd``, ``argv`` and ``aggregate``
    is set; a template never has ``aggregate`` or ``after``."""

    name: str
    cmd: str | None = None  # run by ``sh -c``
    argv: tuple[str, ...] | None = None  # run directly
    cwd: Path | None = None  # absolute; None means the run's workdir
    env: Mapping[str, str] = field(default_factory=_frozen_map)
    after: tuple[Dependency, ...] = ()
    timeout: float | None = None  # seconds
    retries: int = 0
    backoff: Backoff = field(default_factory=Backoff)
    success_exit_codes: frozenset[int] = frozenset({0})
    on_failure: OnFailure | None = None  # None: the run's policy
    alerts: tuple[AlertRule, ...] = ()
    done: DoneRule = field(default_factory=DoneRule)
    line: int | None = None  # line of the agent's table in the plan file, for messages
    # Patterns (issue 3)
    prompt: str | None = None  # a template; the shell preset gives it as $AGENTSUP_PROMPT
    preset: str = "shell"
    pool: str | None = None  # a [pools] name
    aggregate: Aggregate | None = None  # set instead of cmd/argv
    spawns: str | None = None  # file name in AGENTSUP_OUT listing subtasks, read when the agent succeeds
    recovery: str | None = None  # on_failure = "spawn:TEMPLATE": a [workers] template run on final failure
    idle_after: float | None = None  # seconds of silence before agent.idle
    max_rss: int | None = None  # bytes: above it, a warning "resource" alert
    max_cpu: float | None = None  # percent of one core: above it, a warning "resource" alert
    kill_over_rss: int | None = None  # bytes: above it, a critical alert and the agent is stopped
    parent: str | None = None  # dynamic agents: the agent whose subtasks file (or handler) created it
    worker: str | None = None  # dynamic agents: the [workers] template it came from
    # Agent CLIs (issue 6): only for a preset other than "shell"
    mode: AgentMode = AgentMode.INTERACTIVE
    approve: Approval = Approval.ASK
    flags: tuple[str, ...] = ()  # extra command-line flags for the CLI
    model: str | None = None
    program: str | None = None  # the CLI's executable; None: its usual name, found on PATH
    worktree: bool = False  # run in its own git worktree and branch, made from [run] repo

    @property
    def is_cli(self) -> bool:
        """Whether an agent CLI preset runs it (else the shell preset, or an aggregate)."""
        return self.preset != "shell" and self.aggregate is None


class EventName(StrEnum):
    """What an ``[[on]]`` handler listens to."""

    AGENT_COMPLETED = "agent.completed"  # an agent succeeded
    AGENT_FAILED = "agent.failed"  # an agent failed for good (no attempts left) or was lost
    ALERT = "alert"  # an output line matched an alert rule
    AGENT_IDLE = "agent.idle"  # no output for idle_after, confirmed twice
    AGENT_NEEDS_INPUT = "agent.needs_input"
    RESOURCE = "resource"  # max_rss / max_cpu / kill_over_rss crossed
    EXTERNAL = "external"  # agentsup emit, or a JSON file dropped into RUN/inbox/
    USER_INPUT = "user_input"  # agentsup send


class ActionKind(StrEnum):
    SPAWN = "spawn"  # run a [workers] template as a new agent, the triggering event in its context
    RESTART = "restart"
    KILL = "kill"
    SEND = "send"  # type text into an agent's pane
    NOTIFY = "notify"  # log a notification (and show it in the dashboard)
    THROTTLE = "throttle"  # lower the run's parallel cap for a while
    STOP = "stop"  # stop the run


@dataclass(frozen=True)
class Handler:
    """One ``[[on]]`` entry: when an event passes every filter that is set, do the action, once per event."""

    index: int  # position in the file's [[on]] list; ``on[INDEX]`` names the handler in the log
    event: EventName
    do: ActionKind
    agent: str | None = None  # filter: fnmatch glob on the triggering agent's name
    severity: Severity | None = None  # filter: alert/resource severity at least this
    match: re.Pattern[str] | None = None  # filter: searched in the alert line / input text / event data JSON
    name: str | None = None  # filter: fnmatch glob on an external event's name
    worker: str | None = None  # spawn: the [workers] template
    target: str | None = None  # restart/kill/send: the agent acted on (default: the triggering agent)
    text: str | None = None  # send: a template
    message: str | None = None  # notify: a template
    max_parallel: int | None = None  # throttle: the lowered cap
    duration: float | None = None  # throttle: seconds (``for``); None: until the run ends
    line: int | None = None


@dataclass(frozen=True)
class RunSpec:
    name: str
    workdir: Path  # absolute
    max_parallel: int | None = None  # None: no cap
    on_failure: OnFailure = OnFailure.HALT
    min_free_memory: int | None = None  # bytes: hold new spawns while the machine has less available
    pools: Mapping[str, int] = field(default_factory=lambda: MappingProxyType({}))
    max_log: int | None = None  # bytes of one attempt's output.log; the rest is not logged
    max_event_log: int = 1 << 30  # bytes of events.db past which alerts below critical are only counted
    repo: Path | None = None  # absolute: the git repository worktrees come from; None: the workdir
    rate_limit_wait: float = 300.0  # seconds a rate-limited agent is parked when no reset time is shown


@dataclass(frozen=True)
class Plan:
    path: Path  # absolute path of the plan file
    run: RunSpec
    agents: Mapping[str, AgentSpec]  # in the order the file declares them
    inputs: Mapping[str, str] = field(default_factory=_frozen_map)  # [inputs], after --set overrides
    workers: Mapping[str, AgentSpec] = field(default_factory=lambda: MappingProxyType({}))  # templates
    handlers: tuple[Handler, ...] = ()

    def failure_policy(self, agent: str) -> OnFailure:
        spec = self.agents[agent]
        return spec.on_failure if spec.on_failure is not None else self.run.on_failure

    def worker_group(self, master: str) -> list[str]:
        """``master`` and every agent it spawned, transitively: what ``after = ["master.workers"]`` awaits."""
        children: dict[str, list[str]] = {}
        for name, spec in self.agents.items():
            if spec.parent is not None:
                children.setdefault(spec.parent, []).append(name)
        group, todo = [master], [master]
        while todo:
            kids = children.get(todo.pop(), [])
            group.extend(kids)
            todo.extend(kids)
        return group

    def dependents(self, agent: str) -> tuple[str, ...]:
        return tuple(n for n, s in self.agents.items() if any(d.agent == agent for d in s.after))


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a plan, located as precisely as the loader could."""

    file: str
    path: str  # key path, e.g. ``agents.review.after[0]``; empty for the whole file
    message: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        key = f" {self.path}:" if self.path else ""
        return _printable(f"{where}:{key} {self.message}")


def _printable(text: str) -> str:
    """``text`` on one line, with nothing a terminal acts on: a plan's own text may hold newlines, escape
    sequences or bidirectional overrides, and a message quoting it must not reach the screen raw."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class PlanError(Exception):
    """The plan is invalid; ``problems`` lists every problem found, in file order."""

    def __init__(self, problems: tuple[Problem, ...]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))
