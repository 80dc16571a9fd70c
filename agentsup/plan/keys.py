"""The key table: every key a plan may set, with its type, description and default.

The loader validates with these tables and ``plan_schema`` is generated from them, so they cannot drift.
"""

from __future__ import annotations

from typing import Any

from agentsup.plan.durations import format_duration
from agentsup.plan.locate import KeyPath
from agentsup.plan.model import AlertRule, Backoff, Dependency, DoneKind, DoneRule, OnFailure, Severity, When
from agentsup.plan.types import (
    ArrayOf,
    Choice,
    Duration,
    EnvTable,
    Integer,
    Key,
    Name,
    NamedTables,
    Number,
    Record,
    Regex,
    Report,
    Table,
    Text,
    Values,
    ValueType,
    compile_regex,
    convert_table,
    describe,
    quote,
    same,
    table_schema,
    wrong_type,
)

# Keys of the [run] table.

RUN_NAME = Key(
    "name",
    Name(),
    "Name of the run, part of run ids and tmux session names. Default: the plan file's name without "
    "its extension, with other characters replaced by '-'.",
)
RUN_WORKDIR = Key(
    "workdir",
    Text(nonempty=True),
    "Working directory of the run; relative to the plan file's directory. Default: that directory.",
)
RUN_MAX_PARALLEL = Key(
    "max_parallel",
    Integer(minimum=1),
    "Most agents running at once. Default: no cap.",
)
RUN_ON_FAILURE = Key(
    "on_failure",
    Choice(OnFailure),
    "What an agent's final failure does to the run: 'halt' starts nothing new (running agents finish), "
    "'continue' skips only the agents that can no longer run.",
    default=OnFailure.HALT.value,
)
RUN = Table((RUN_NAME, RUN_WORKDIR, RUN_MAX_PARALLEL, RUN_ON_FAILURE))

# Entries of after: a name, or a table naming the agent and when it releases.

DEP_AGENT = Key("agent", Name(), "Name of the upstream agent.", required=True)
DEP_WHEN = Key(
    "when",
    Choice(When),
    "Which state of the upstream releases this agent: 'succeeded', 'finished' (succeeded or failed), "
    "'failed' or 'started'.",
    default=When.SUCCEEDED.value,
)
DEPENDENCY = Table((DEP_AGENT, DEP_WHEN))


class _DependencyType(ValueType[Dependency]):
    expected = 'an agent name or a table { agent = "NAME", when = "succeeded" }'

    def __init__(self) -> None:
        self._table = Record(DEPENDENCY, self._build)

    @staticmethod
    def _build(values: Values, at: KeyPath, report: Report) -> Dependency | None:
        del at, report
        agent = values.get(DEP_AGENT)
        return None if agent is None else Dependency(agent, values.get(DEP_WHEN) or When.SUCCEEDED)

    def convert(self, raw: object, at: KeyPath, report: Report) -> Dependency | None:
        if isinstance(raw, str):
            name = Name().convert(raw, at, report)
            return None if name is None else Dependency(name)
        if isinstance(raw, dict):
            return self._table.convert(raw, at, report)
        report(at, wrong_type(self.expected, raw))
        return None

    def schema(self) -> dict[str, object]:
        return {"anyOf": [Name().schema(), self._table.schema()]}


class _AfterType(ArrayOf[Dependency]):
    def convert(self, raw: object, at: KeyPath, report: Report) -> tuple[Dependency, ...] | None:
        if isinstance(raw, str):
            report(
                at, f"expected an array of agent names, found {describe(raw)}: write after = [{quote(raw)}]"
            )
            return None
        return super().convert(raw, at, report)


# The backoff: a first delay, or a table of all four settings.

_DEFAULT_BACKOFF = Backoff()
BACKOFF_INITIAL = Key(
    "initial", Duration(), "Delay before the first retry.", default=format_duration(_DEFAULT_BACKOFF.initial)
)
BACKOFF_FACTOR = Key(
    "factor",
    Number(minimum=1),
    "Each further delay is the previous one times this.",
    default=_DEFAULT_BACKOFF.factor,
)
BACKOFF_MAX = Key("max", Duration(), "Longest delay.", default=format_duration(_DEFAULT_BACKOFF.max))
BACKOFF_JITTER = Key(
    "jitter",
    Number(minimum=0, maximum=1),
    "Random spread of each delay, as a fraction of it (0.1: ±10%).",
    default=_DEFAULT_BACKOFF.jitter,
)
BACKOFF = Table((BACKOFF_INITIAL, BACKOFF_FACTOR, BACKOFF_MAX, BACKOFF_JITTER))


class _BackoffType(ValueType[Backoff]):
    expected = "a duration (the first delay) or a table { initial, factor, max, jitter }"

    def __init__(self) -> None:
        self._delay = Duration()

    def convert(self, raw: object, at: KeyPath, report: Report) -> Backoff | None:
        if isinstance(raw, dict):
            values = convert_table(raw, BACKOFF, at, report)
            return None if values is None else self._build(values, at, report)
        if isinstance(raw, bool) or not isinstance(raw, str | int | float):
            report(at, wrong_type(self.expected, raw))
            return None
        initial = self._delay.convert(raw, at, report)
        return None if initial is None else Backoff(initial=initial)

    @staticmethod
    def _build(values: Values, at: KeyPath, report: Report) -> Backoff | None:
        d = _DEFAULT_BACKOFF
        initial = values.get(BACKOFF_INITIAL)
        factor = values.get(BACKOFF_FACTOR)
        longest = values.get(BACKOFF_MAX)
        jitter = values.get(BACKOFF_JITTER)
        if any(values.has(k) and values.get(k) is None for k in BACKOFF.keys):
            return None
        initial = d.initial if initial is None else initial
        longest = d.max if longest is None else longest
        if longest < initial:
            report(
                (*at, "max"),
                f"max ({format_duration(longest)}) is less than initial ({format_duration(initial)})",
            )
            return None
        return Backoff(
            initial, d.factor if factor is None else factor, longest, d.jitter if jitter is None else jitter
        )

    def schema(self) -> dict[str, object]:
        return {"oneOf": [self._delay.schema(), table_schema(BACKOFF)]}


# Each alert rule: a regex and a severity.

ALERT_MATCH = Key("match", Regex(), "Regular expression searched in each output line.", required=True)
ALERT_SEVERITY = Key(
    "severity", Choice(Severity), "Severity of the alert raised.", default=Severity.WARNING.value
)
ALERT = Table((ALERT_MATCH, ALERT_SEVERITY))


def _build_alert(values: Values, at: KeyPath, report: Report) -> AlertRule | None:
    del at, report
    pattern = values.get(ALERT_MATCH)
    if pattern is None or (values.has(ALERT_SEVERITY) and values.get(ALERT_SEVERITY) is None):
        return None
    return AlertRule(pattern, values.get(ALERT_SEVERITY) or Severity.WARNING)


# The done rule: exit, file, or pattern:REGEX.

_PATTERN_PREFIX = "pattern:"


class _DoneType(ValueType[DoneRule]):
    expected = '"exit", "file" or "pattern:REGEX"'

    def convert(self, raw: object, at: KeyPath, report: Report) -> DoneRule | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        if raw.startswith(_PATTERN_PREFIX):
            pattern = compile_regex(raw.removeprefix(_PATTERN_PREFIX), at, report)
            return None if pattern is None else DoneRule(DoneKind.PATTERN, pattern)
        if raw in (DoneKind.EXIT.value, DoneKind.FILE.value):
            return DoneRule(DoneKind(raw))
        report(at, f"invalid value {quote(raw)}: expected {self.expected}")
        return None

    def schema(self) -> dict[str, object]:
        return {
            "anyOf": [
                {"type": "string", "enum": [DoneKind.EXIT.value, DoneKind.FILE.value]},
                {"type": "string", "pattern": "^pattern:."},
            ]
        }


# Keys of each [agents.NAME] table, and of [defaults].

AGENT_CMD = Key("cmd", Text(nonempty=True), "Shell command, run by 'sh -c'. Set exactly one of cmd and argv.")
AGENT_ARGV = Key(
    "argv",
    ArrayOf(Text(), nonempty=True),
    "Program and arguments, run directly without a shell. Set exactly one of cmd and argv.",
)
AGENT_CWD = Key(
    "cwd",
    Text(nonempty=True),
    "Working directory of the agent; relative to the run's workdir. Default: workdir.",
)
AGENT_ENV = Key(
    "env",
    EnvTable(),
    "Environment variables added for the agent; numbers and booleans become strings. Merged with "
    "[defaults] env, the agent's values winning.",
)
AGENT_AFTER = Key(
    "after",
    _AfterType(_DependencyType(), expected="an array of agent names or { agent, when } tables"),
    "Upstream agents this agent waits for: names (released when the upstream succeeded) or "
    '{ agent = "NAME", when = "succeeded" | "finished" | "failed" | "started" } tables.',
    default=[],
)
AGENT_TIMEOUT = Key(
    "timeout", Duration(positive=True), "Longest an attempt may run before it is stopped and failed."
)
AGENT_RETRIES = Key(
    "retries", Integer(minimum=0), "How many times a failed agent is started again.", default=0
)
AGENT_BACKOFF = Key(
    "backoff",
    _BackoffType(),
    "Delay between attempts: a duration (the first delay) or a table { initial, factor, max, jitter }.",
)
AGENT_SUCCESS_EXIT_CODES = Key(
    "success_exit_codes",
    ArrayOf(Integer(minimum=0, maximum=255), nonempty=True),
    "Exit codes that count as success.",
    default=[0],
)
AGENT_ON_FAILURE = Key(
    "on_failure",
    Choice(OnFailure),
    "What this agent's final failure does to the run. Default: [run] on_failure.",
)
AGENT_ALERTS = Key(
    "alerts",
    ArrayOf(Record(ALERT, _build_alert)),
    "Output rules: a line matching 'match' raises an alert of 'severity'.",
    default=[],
)
AGENT_DONE = Key(
    "done",
    _DoneType(),
    "How the agent's work is known to be done: 'exit' (the process exits), 'file' (it writes the file "
    "named by $AGENTSUP_DONE) or 'pattern:REGEX' (an output line matches).",
    default=DoneKind.EXIT.value,
)
AGENT = Table(
    (
        AGENT_CMD,
        AGENT_ARGV,
        AGENT_CWD,
        AGENT_ENV,
        AGENT_AFTER,
        AGENT_TIMEOUT,
        AGENT_RETRIES,
        AGENT_BACKOFF,
        AGENT_SUCCESS_EXIT_CODES,
        AGENT_ON_FAILURE,
        AGENT_ALERTS,
        AGENT_DONE,
    ),
    exclusive=(("cmd", "argv"),),
)

# The whole file.

PLAN_RUN = Key("run", Record(RUN, same), "Settings of the run as a whole.")
PLAN_DEFAULTS = Key(
    "defaults", Record(AGENT, same), "Agent keys inherited by every agent; an agent's own win."
)
PLAN_AGENTS = Key(
    "agents", NamedTables(AGENT, "agent"), "The agents, one table [agents.NAME] each.", required=True
)
PLAN = Table((PLAN_RUN, PLAN_DEFAULTS, PLAN_AGENTS), noun="table")

ALL_TABLES: dict[str, Table] = {
    "": PLAN,
    "run": RUN,
    "agents.NAME": AGENT,
    "agents.NAME.after[i]": DEPENDENCY,
    "agents.NAME.backoff": BACKOFF,
    "agents.NAME.alerts[i]": ALERT,
}
"""Every table of the plan by where it appears, for docs and drift tests."""


def all_keys() -> list[tuple[str, Key[Any]]]:
    return [(where, key) for where, table in ALL_TABLES.items() for key in table.keys]
