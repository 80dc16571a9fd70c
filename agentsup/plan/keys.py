"""The key table: every key a plan may set, with its type, description and default.

The loader validates with these tables and ``plan_schema`` is generated from them, so they cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from agentsup.plan.aggregate import AGGREGATE, build_aggregate
from agentsup.plan.durations import format_duration
from agentsup.plan.handlers import HANDLER, HANDLERS
from agentsup.plan.locate import KeyPath
from agentsup.plan.model import (
    WORKERS_SUFFIX,
    AgentMode,
    AlertRule,
    Approval,
    Backoff,
    Dependency,
    DoneKind,
    DoneRule,
    OnFailure,
    Severity,
    When,
)
from agentsup.plan.tables import CountTable, NamedTables, env_table, inputs_table
from agentsup.plan.types import (
    NAME,
    NAME_PATTERN,
    NAME_RULE,
    ArrayOf,
    Boolean,
    Choice,
    Duration,
    FileName,
    Integer,
    Key,
    Name,
    Number,
    Record,
    Regex,
    Report,
    Size,
    Table,
    Template,
    Text,
    Values,
    ValueType,
    compile_regex,
    convert_table,
    describe,
    did_you_mean,
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
RUN_MIN_FREE_MEMORY = Key(
    "min_free_memory",
    Size(),
    "New agents are held back while the machine has less memory available than this "
    '(bytes, or a size such as "2GiB"). Default: no check.',
)
RUN_MAX_LOG = Key(
    "max_log",
    Size(),
    'An agent attempt\'s output.log stops growing at this size (bytes, or a size such as "1GiB"); the '
    "rest of its output is not logged and a warning alert says so (needs GNU dd). Default: no cap.",
)
RUN_MAX_EVENT_LOG = Key(
    "max_event_log",
    Size(),
    "Past this size of the event log (events.db), alerts below critical are counted, not logged; state "
    "changes are always logged, so the run stays resumable. Default: 1GiB.",
    default=1 << 30,
)
RUN_REPO = Key(
    "repo",
    Text(nonempty=True),
    "The git repository agents with 'worktree = true' branch from; relative to the plan file's "
    "directory. Default: the run's workdir.",
)
RUN_RATE_LIMIT_WAIT = Key(
    "rate_limit_wait",
    Duration(positive=True),
    "How long a rate-limited agent CLI is parked when its CLI shows no reset time.",
    default="5m",
)
RUN = Table(
    (
        RUN_NAME,
        RUN_WORKDIR,
        RUN_MAX_PARALLEL,
        RUN_ON_FAILURE,
        RUN_MIN_FREE_MEMORY,
        RUN_MAX_LOG,
        RUN_MAX_EVENT_LOG,
        RUN_REPO,
        RUN_RATE_LIMIT_WAIT,
    )
)

# Entries of after: a name, or a table naming the agent and when it releases.


class _UpstreamType(ValueType[tuple[str, bool]]):
    """``NAME`` → (NAME, False); ``NAME.workers`` → (NAME, True): the master and every worker it spawned."""

    expected = 'an agent name, or "NAME.workers"'

    def convert(self, raw: object, at: KeyPath, report: Report) -> tuple[str, bool] | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        workers = raw.endswith(WORKERS_SUFFIX)
        name = raw.removesuffix(WORKERS_SUFFIX) if workers else raw
        if not NAME.fullmatch(name):
            report(at, f'invalid name {quote(raw)}: use {NAME_RULE} (or "NAME.workers")')
            return None
        return name, workers

    def schema(self) -> dict[str, object]:
        return {"type": "string", "pattern": NAME_PATTERN.removesuffix("$") + r"(\.workers)?$"}


DEP_AGENT = Key(
    "agent",
    _UpstreamType(),
    'Name of the upstream agent; "NAME.workers" waits for agent NAME and every worker it spawned.',
    required=True,
)
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
        upstream = values.get(DEP_AGENT)
        if upstream is None:
            return None
        return Dependency(upstream[0], values.get(DEP_WHEN) or When.SUCCEEDED, workers=upstream[1])

    def convert(self, raw: object, at: KeyPath, report: Report) -> Dependency | None:
        if isinstance(raw, str):
            upstream = _UpstreamType().convert(raw, at, report)
            return None if upstream is None else Dependency(upstream[0], workers=upstream[1])
        if isinstance(raw, dict):
            return self._table.convert(raw, at, report)
        report(at, wrong_type(self.expected, raw))
        return None

    def schema(self) -> dict[str, object]:
        return {"anyOf": [_UpstreamType().schema(), self._table.schema()]}


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
_IDLE_PREFIX = "idle:"


class _DoneType(ValueType[DoneRule]):
    expected = '"exit", "file", "pattern:REGEX", "turn" or "idle:DURATION"'

    def convert(self, raw: object, at: KeyPath, report: Report) -> DoneRule | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        if raw.startswith(_PATTERN_PREFIX):
            pattern = compile_regex(raw.removeprefix(_PATTERN_PREFIX), at, report)
            return None if pattern is None else DoneRule(DoneKind.PATTERN, pattern)
        if raw.startswith(_IDLE_PREFIX):
            quiet = Duration(positive=True).convert(raw.removeprefix(_IDLE_PREFIX), at, report)
            return None if quiet is None else DoneRule(DoneKind.IDLE, quiet=quiet)
        if raw in (DoneKind.EXIT.value, DoneKind.FILE.value, DoneKind.TURN.value):
            return DoneRule(DoneKind(raw))
        report(at, f"invalid value {quote(raw)}: expected {self.expected}")
        return None

    def schema(self) -> dict[str, object]:
        plain = [DoneKind.EXIT.value, DoneKind.FILE.value, DoneKind.TURN.value]
        return {
            "anyOf": [
                {"type": "string", "enum": plain},
                {"type": "string", "pattern": "^pattern:."},
                {"type": "string", "pattern": "^idle:."},
            ]
        }


# on_failure of an agent: a policy, or "spawn:TEMPLATE".

_SPAWN_PREFIX = "spawn:"


@dataclass(frozen=True)
class Recovery:
    """``on_failure = "spawn:TEMPLATE"``: the [workers] template run when the agent fails for good."""

    template: str


class _OnFailureType(ValueType[OnFailure | Recovery]):
    expected = '"halt", "continue" or "spawn:TEMPLATE"'

    def convert(self, raw: object, at: KeyPath, report: Report) -> OnFailure | Recovery | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        if raw.startswith(_SPAWN_PREFIX):
            template = raw.removeprefix(_SPAWN_PREFIX)
            if not NAME.fullmatch(template):
                report(at, f"invalid worker template name {quote(template)}: use {NAME_RULE}")
                return None
            return Recovery(template)
        for policy in OnFailure:
            if policy.value == raw:
                return policy
        policies = [p.value for p in OnFailure]
        report(at, f"invalid value {quote(raw)}: expected {self.expected}{did_you_mean(raw, policies)}")
        return None

    def schema(self) -> dict[str, object]:
        spawn = {"type": "string", "pattern": "^" + _SPAWN_PREFIX + NAME_PATTERN.removeprefix("^")}
        return {"anyOf": [Choice(OnFailure).schema(), spawn]}


# The preset: how the agent is launched and read. The built-in ones (agentsup.agents.registry has the same
# names), then any an installed package adds through the entry point group "agentsup.presets".

PRESETS = ("shell", "claude", "codex", "gemini", "aider")
PRESET_ENTRY_POINTS = "agentsup.presets"


def preset_names() -> tuple[str, ...]:
    """Every preset a plan may name: the built-in ones, then the installed entry points', sorted."""
    from importlib.metadata import entry_points  # noqa: PLC0415 -- 15 ms, and read only for a plugin's name

    found = {ep.name for ep in entry_points(group=PRESET_ENTRY_POINTS)} - set(PRESETS)
    return (*PRESETS, *sorted(found))


class _PresetType(ValueType[str]):
    expected = "a preset name"

    def convert(self, raw: object, at: KeyPath, report: Report) -> str | None:
        if not isinstance(raw, str):
            report(at, wrong_type(self.expected, raw))
            return None
        if raw in PRESETS:  # no need to read every installed package's entry points
            return raw
        known = preset_names()
        if raw not in known:
            names = ", ".join(f'"{n}"' for n in known)
            report(at, f"unknown preset {quote(raw)}: expected one of {names}{did_you_mean(raw, known)}")
            return None
        return raw

    def schema(self) -> dict[str, object]:
        return {"type": "string", "examples": list(PRESETS)}


# Keys of each [agents.NAME] table, of [defaults] and of each [workers.TYPE] template.

AGENT_CMD = Key(
    "cmd",
    Template(nonempty=True, for_shell=True),
    "Shell command, run by 'sh -c'; a template. Set exactly one of cmd, argv and aggregate.",
)
AGENT_ARGV = Key(
    "argv",
    ArrayOf(Template(), nonempty=True),
    "Program and arguments, run directly without a shell; each a template. Set exactly one of cmd, argv "
    "and aggregate.",
)
AGENT_PROMPT = Key(
    "prompt",
    Template(nonempty=True),
    "The agent's prompt, a template. An agent CLI gets it on its command line (mode 'oneshot') or typed "
    "into its ready screen (mode 'interactive'); the shell preset gives it as $AGENTSUP_PROMPT.",
)
AGENT_PRESET = Key(
    "preset",
    _PresetType(),
    "What runs the agent: 'shell' (cmd or argv, as given), an agent CLI ('claude', 'codex', 'gemini', "
    "'aider': launched, prompted, read and approved by agentsup), or a preset an installed package adds.",
    default=PRESETS[0],
)
AGENT_MODE = Key(
    "mode",
    Choice(AgentMode),
    "Agent CLIs: 'interactive' runs the CLI's own screen, with the prompt typed in once it is ready (you "
    "can attach and talk to it); 'oneshot' passes the prompt on its command line, and it exits when done.",
    default=AgentMode.INTERACTIVE.value,
)
AGENT_APPROVE = Key(
    "approve",
    Choice(Approval),
    "Agent CLIs: what happens when the CLI asks permission to write or run something: 'ask' waits for a "
    "person (needs_input; 'agentsup approve', or the dashboard's approve key), 'always' approves, "
    "'never' refuses.",
    default=Approval.ASK.value,
)
AGENT_FLAGS = Key(
    "flags",
    ArrayOf(Text()),
    "Agent CLIs: extra command-line arguments, added after the preset's own.",
    default=[],
)
AGENT_MODEL = Key(
    "model",
    Text(nonempty=True),
    "Agent CLIs: the model to ask for (the CLI's --model). Default: the CLI's own default.",
)
AGENT_PROGRAM = Key(
    "program",
    Text(nonempty=True),
    "Agent CLIs: the CLI's executable, a path or a name looked up on PATH. Default: the CLI's usual name "
    "('claude', 'codex', 'gemini', 'aider').",
)
AGENT_WORKTREE = Key(
    "worktree",
    Boolean(),
    "Run the agent in its own git worktree, on its own branch made from [run] repo's HEAD "
    "('agentsup diff RUN AGENT' shows what it changed; 'agentsup clean RUN' removes the worktrees and "
    "keeps the branches).",
    default=False,
)
AGENT_CWD = Key(
    "cwd",
    Text(nonempty=True),
    "Working directory of the agent; relative to the run's workdir. Default: workdir.",
)
AGENT_ENV = Key(
    "env",
    env_table(),
    "Environment variables added for the agent; numbers and booleans become strings. Merged with "
    "[defaults] env, the agent's values winning.",
)
AGENT_AFTER = Key(
    "after",
    _AfterType(_DependencyType(), expected="an array of agent names or { agent, when } tables"),
    "Upstream agents this agent waits for: names (released when the upstream succeeded), "
    '"NAME.workers" (agent NAME and every worker it spawned) or '
    '{ agent = "NAME", when = "succeeded" | "finished" | "failed" | "started" } tables.',
    default=[],
)
AGENT_AGGREGATE = Key(
    "aggregate",
    Record(AGGREGATE, build_aggregate),
    "Makes this agent combine the result.json files of the agents in 'from' by 'strategy', instead of "
    "running cmd or argv. Its sources become dependencies with when = 'finished'.",
)
AGENT_POOL = Key(
    "pool",
    Name(),
    "A [pools] entry: the agent holds one of that pool's slots while it runs.",
)
AGENT_SPAWNS = Key(
    "spawns",
    FileName(),
    "Makes the agent a master: a file it writes in $AGENTSUP_OUT listing subtasks, read when it succeeds; "
    "one worker is started per subtask from its [workers.TYPE] template.",
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
    _OnFailureType(),
    "What this agent's final failure does: 'halt' or 'continue' (to the run; default: [run] on_failure), "
    "or 'spawn:TEMPLATE': run the [workers] template TEMPLATE as a recovery agent.",
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
    "named by $AGENTSUP_DONE), 'pattern:REGEX' (an output line matches); for interactive agent CLIs also "
    "'turn' (it finished answering its prompt) and 'idle:DURATION' (it sat at its ready screen, silent, "
    "that long). Default: 'exit', or 'turn' for an interactive agent CLI with a prompt.",
    default=DoneKind.EXIT.value,
)
AGENT_IDLE_AFTER = Key(
    "idle_after",
    Duration(positive=True),
    "Silence (no output) after which the agent counts as idle: an 'agent.idle' event. Default: never.",
)
AGENT_MAX_RSS = Key(
    "max_rss",
    Size(),
    "Memory (resident, of the agent's whole process tree) above which a warning 'resource' alert is "
    'raised: bytes, or a size such as "500MB", "2GiB".',
)
AGENT_MAX_CPU = Key(
    "max_cpu",
    Number(0, above=True),
    "CPU use, in percent of one core (200: two cores), above which a warning 'resource' alert is raised.",
)
AGENT_KILL_OVER_RSS = Key(
    "kill_over_rss",
    Size(),
    "Memory above which a critical 'resource' alert is raised and the agent is stopped.",
)

_AGENT_KEYS: tuple[Key[Any], ...] = (
    AGENT_CMD,
    AGENT_ARGV,
    AGENT_PROMPT,
    AGENT_PRESET,
    AGENT_MODE,
    AGENT_APPROVE,
    AGENT_FLAGS,
    AGENT_MODEL,
    AGENT_PROGRAM,
    AGENT_WORKTREE,
    AGENT_CWD,
    AGENT_ENV,
    AGENT_AFTER,
    AGENT_AGGREGATE,
    AGENT_POOL,
    AGENT_SPAWNS,
    AGENT_TIMEOUT,
    AGENT_RETRIES,
    AGENT_BACKOFF,
    AGENT_SUCCESS_EXIT_CODES,
    AGENT_ON_FAILURE,
    AGENT_ALERTS,
    AGENT_DONE,
    AGENT_IDLE_AFTER,
    AGENT_MAX_RSS,
    AGENT_MAX_CPU,
    AGENT_KILL_OVER_RSS,
)
AGENT = Table(
    _AGENT_KEYS,
    exclusive=(("cmd", "argv"), ("cmd", "aggregate"), ("argv", "aggregate")),
)
DEFAULTS = Table(
    tuple(key for key in _AGENT_KEYS if key is not AGENT_AGGREGATE),
    exclusive=(("cmd", "argv"),),
    misplaced=(("aggregate", '"aggregate" is not inherited: set it in the aggregating agent\'s table'),),
)
WORKER = Table(
    tuple(key for key in _AGENT_KEYS if key not in (AGENT_AFTER, AGENT_AGGREGATE)),
    exclusive=(("cmd", "argv"),),
    misplaced=(
        ("after", 'a worker template has no "after": each subtask lists its own in the subtasks file'),
        ("aggregate", "a worker template cannot aggregate: aggregate in an [agents.NAME] table"),
    ),
)

# The whole file.

PLAN_RUN = Key("run", Record(RUN, same), "Settings of the run as a whole.")
PLAN_INPUTS = Key(
    "inputs",
    inputs_table(),
    "Named values for templates ({{ inputs.NAME }}); numbers and booleans become strings. "
    "'agentsup start --set NAME=VALUE' overrides them.",
)
PLAN_POOLS = Key(
    "pools",
    CountTable("pool"),
    "Named caps: NAME = how many agents with pool = NAME may run at once.",
)
PLAN_DEFAULTS = Key(
    "defaults",
    Record(DEFAULTS, same),
    "Agent keys inherited by every agent and worker template; their own win. Workers ignore after.",
)
PLAN_AGENTS = Key(
    "agents", NamedTables(AGENT, "agent"), "The agents, one table [agents.NAME] each.", required=True
)
PLAN_WORKERS = Key(
    "workers",
    NamedTables(WORKER, "worker template", at_least_one=False),
    "Worker templates, one table [workers.TYPE] each: run once per subtask of that type a master writes, "
    "or by handlers and on_failure = 'spawn:TYPE'.",
)
PLAN_ON = Key(
    "on",
    HANDLERS,
    "Event handlers, one [[on]] table each: when 'event' happens (and every filter set matches), 'do' it.",
)
PLAN = Table(
    (PLAN_RUN, PLAN_INPUTS, PLAN_POOLS, PLAN_DEFAULTS, PLAN_AGENTS, PLAN_WORKERS, PLAN_ON), noun="table"
)

ALL_TABLES: dict[str, Table] = {
    "": PLAN,
    "run": RUN,
    "agents.NAME": AGENT,
    "agents.NAME.after[i]": DEPENDENCY,
    "agents.NAME.backoff": BACKOFF,
    "agents.NAME.alerts[i]": ALERT,
    "agents.NAME.aggregate": AGGREGATE,
    "defaults": DEFAULTS,
    "workers.TYPE": WORKER,
    "on[i]": HANDLER,
}
"""Every table of the plan by where it appears, for docs and drift tests."""


def all_keys() -> list[tuple[str, Key[Any]]]:
    return [(where, key) for where, table in ALL_TABLES.items() for key in table.keys]
