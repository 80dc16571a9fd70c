"""Load ``plan.toml``: parse, normalise against the key table, check what refers to what (dependencies,
pools, worker templates, template references).

Every problem is collected and raised at once as a ``PlanError``, in file order; no input raises anything
else.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, TypeVar

from agentsup.plan import keys as k
from agentsup.plan.graph import check_dependencies
from agentsup.plan.locate import NESTING_SHOWN, KeyPath, Locator, format_path, nesting_line
from agentsup.plan.model import (
    AgentMode,
    AgentSpec,
    Approval,
    Backoff,
    Dependency,
    DoneKind,
    DoneRule,
    Handler,
    OnFailure,
    Plan,
    PlanError,
    Problem,
    RunSpec,
    When,
)
from agentsup.plan.references import HANDLER_SCOPE, WORKER_SCOPE, ReferenceChecker, agent_scope
from agentsup.plan.templates import TemplateError
from agentsup.plan.templates import parse as parse_template
from agentsup.plan.types import Key, Report, Values, convert_table, did_you_mean, quote, unknown

T = TypeVar("T")

_TOML_ERROR = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.DOTALL)
_TOML_ERROR_AT_END = re.compile(r"^(?P<message>.*) \(at end of document\)$", re.DOTALL)
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]+")
_LONG_NUMBER = re.compile(r"[0-9](?:_?[0-9]){4300}")
_BOM = "\ufeff"
ARG_MAX_BYTES = 131072  # Linux's MAX_ARG_STRLEN: one argv string or NAME=value, its NUL included
_BOM_MESSAGE = "the file starts with a byte order mark (BOM), which TOML does not allow: save it without one"


def load_plan(path: Path, overrides: Mapping[str, str] | None = None) -> Plan:
    """Reads and validates the plan at ``path``; raises PlanError listing every problem.

    ``overrides`` are ``--set NAME=VALUE`` values for declared ``[inputs]``.
    """
    try:
        data = path.read_bytes()
    except OSError as e:
        raise PlanError((Problem(str(path), "", f"cannot read the plan: {e.strerror or e}"),)) from e
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise PlanError((_not_utf8(data, e.start, str(path)),)) from e
    return parse_plan(text, file=str(path), base_dir=path.absolute().parent, overrides=overrides)


def _not_utf8(data: bytes, start: int, file: str) -> Problem:
    """The first byte that is not UTF-8, located as an editor shows it (column in characters)."""
    line_start = data.rfind(b"\n", 0, start) + 1
    column = len(data[line_start:start].decode("utf-8", "replace")) + 1
    message = f"not valid UTF-8: byte 0x{data[start]:02x} (save the file as UTF-8)"
    return Problem(file, "", message, data.count(b"\n", 0, start) + 1, column)


def parse_plan(text: str, *, file: str, base_dir: Path, overrides: Mapping[str, str] | None = None) -> Plan:
    """Validates plan ``text``; ``file`` names it in messages, relative paths resolve against ``base_dir``.

    ``Plan.path`` is ``base_dir`` joined with the name of ``file``. ``overrides`` replace the values of
    declared inputs; one for an undeclared input is a problem at ``--set NAME``.
    """
    first: tuple[Problem, ...] = ()
    if text.startswith(_BOM):  # reported, then the rest is checked as if it were not there
        first = (Problem(file, "", _BOM_MESSAGE, 1, 1),)
        text = text.removeprefix(_BOM)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError((*first, _toml_problem(str(e), text, file))) from e
    except ValueError as e:  # tomllib lets int() refuse a number of over 4300 digits
        m = _LONG_NUMBER.search(text)
        line = text.count("\n", 0, m.start()) + 1 if m is not None else None
        message = "an integer of more than 4300 digits" if m is not None else str(e)
        raise PlanError((*first, Problem(file, "", f"invalid TOML: {message}", line))) from e
    except RecursionError as e:
        message = f"invalid TOML: values nested too deeply (over {NESTING_SHOWN} levels)"
        raise PlanError((*first, Problem(file, "", message, nesting_line(text)))) from e

    found: list[tuple[KeyPath, str]] = []

    def report(at: KeyPath, message: str) -> None:
        found.append((at, message))

    locator = Locator(text)
    top = convert_table(doc, k.PLAN, (), report) or Values()
    plan = _build(top, file, _absolute(base_dir, "."), locator, report)
    inputs, set_problems = _overridden(plan.inputs, overrides or {}, file)
    if first or found or set_problems:
        raise PlanError(first + _problems(found, file, locator) + set_problems)
    return replace(plan, inputs=inputs)


def _toml_problem(error: str, text: str, file: str) -> Problem:
    m = _TOML_ERROR.match(error)
    if m is not None:
        return Problem(file, "", f"invalid TOML: {m['message']}", int(m["line"]), int(m["column"]))
    m = _TOML_ERROR_AT_END.match(error)
    if m is not None:
        last = text.rsplit("\n", 1)[-1]
        return Problem(file, "", f"invalid TOML: {m['message']}", text.count("\n") + 1, len(last) + 1)
    return Problem(file, "", f"invalid TOML: {error}")


def _problems(found: list[tuple[KeyPath, str]], file: str, locator: Locator) -> tuple[Problem, ...]:
    """One Problem per distinct (path, message), in file order; unlocated ones last, in the order found."""
    unique = list(dict.fromkeys(found))
    problems = [Problem(file, format_path(at), message, locator.line(at)) for at, message in unique]
    return tuple(sorted(problems, key=lambda p: (p.line is None, p.line or 0)))


def _absolute(base: Path, path: str) -> Path:
    # Lexical, so it never touches the filesystem (which may not exist yet, or hold symlink loops).
    return Path(os.path.normpath(base.absolute() / path))


def _sanitised_name(stem: str) -> str:
    name = _NOT_NAME_CHAR.sub("-", stem).lstrip("-_")[:64]
    return name or "plan"


def _overridden(
    declared: Mapping[str, str], overrides: Mapping[str, str], file: str
) -> tuple[Mapping[str, str], tuple[Problem, ...]]:
    problems: list[Problem] = []
    for name, value in overrides.items():
        if name not in declared:
            message = unknown("input", name, declared, "declare it in [inputs]")
            problems.append(Problem(file, f"--set {name}", message))
        elif "\0" in value:
            problems.append(Problem(file, f"--set {name}", "contains a NUL character"))
    return MappingProxyType({**declared, **overrides}), tuple(problems)


@dataclass(frozen=True)
class _Context:
    """What building one agent or worker template needs from the rest of the plan."""

    defaults: Values
    workdir: Path
    pools: Collection[str]
    workers: Collection[str]
    locator: Locator
    report: Report


@dataclass(frozen=True)
class _Built:
    spec: AgentSpec
    dep_at: tuple[KeyPath, ...]  # where each of spec.after was written
    templates: tuple[tuple[str, KeyPath], ...]  # every template of the spec, and where it was written
    on_failure_at: KeyPath


def _or(value: int | None, default: int) -> int:
    return default if value is None else value


def _build(top: Values, file: str, base_dir: Path, locator: Locator, report: Report) -> Plan:
    run_values = top.get(k.PLAN_RUN) or Values()
    workdir = run_values.get(k.RUN_WORKDIR)
    pools = top.get(k.PLAN_POOLS) or MappingProxyType({})
    run = RunSpec(
        name=run_values.get(k.RUN_NAME) or _sanitised_name(Path(file).stem),
        workdir=_absolute(base_dir, workdir) if workdir is not None else base_dir,
        max_parallel=run_values.get(k.RUN_MAX_PARALLEL),
        on_failure=run_values.get(k.RUN_ON_FAILURE) or OnFailure.HALT,
        min_free_memory=run_values.get(k.RUN_MIN_FREE_MEMORY),
        max_log=run_values.get(k.RUN_MAX_LOG),
        max_event_log=_or(run_values.get(k.RUN_MAX_EVENT_LOG), RunSpec.max_event_log),
        pools=pools,
        repo=_absolute(base_dir, repo) if (repo := run_values.get(k.RUN_REPO)) is not None else None,
        rate_limit_wait=run_values.get(k.RUN_RATE_LIMIT_WAIT) or RunSpec.rate_limit_wait,
    )
    inputs = top.get(k.PLAN_INPUTS) or MappingProxyType({})
    worker_tables = top.get(k.PLAN_WORKERS) or {}
    ctx = _Context(
        defaults=top.get(k.PLAN_DEFAULTS) or Values(),
        workdir=run.workdir,
        pools=pools,
        workers=worker_tables,
        locator=locator,
        report=report,
    )
    agents = {name: _spec("agents", name, own, ctx) for name, own in (top.get(k.PLAN_AGENTS) or {}).items()}
    workers = {name: _spec("workers", name, own, ctx) for name, own in worker_tables.items()}
    specs = {name: built.spec for name, built in agents.items()}
    check_dependencies(specs, {name: built.dep_at for name, built in agents.items()}, report)
    _check_recovery_loops(workers, report)
    handlers = tuple(replace(h, line=locator.line(("on", h.index))) for h in top.get(k.PLAN_ON) or ())
    _check_handlers(handlers, specs, worker_tables, report)

    refs = ReferenceChecker(specs, inputs, report)
    for name, built in agents.items():
        scope = agent_scope(name, [d.agent for d in built.spec.after])
        for template, at in built.templates:
            refs.check(template, at, scope)
    for built in workers.values():
        for template, at in built.templates:
            refs.check(template, at, WORKER_SCOPE)
    for h in handlers:
        for key, text in (("text", h.text), ("message", h.message)):
            if text is not None:
                refs.check(text, ("on", h.index, key), HANDLER_SCOPE)
    return Plan(
        path=base_dir / Path(file).name,
        run=run,
        agents=MappingProxyType(specs),
        inputs=inputs,
        workers=MappingProxyType({name: built.spec for name, built in workers.items()}),
        handlers=handlers,
    )


def _spec(table: str, name: str, own: Values, ctx: _Context) -> _Built:
    """One [agents.NAME] (``table`` "agents") or [workers.NAME] ("workers"), [defaults] applied."""
    base: KeyPath = (table, name)
    defaults, report = ctx.defaults, ctx.report

    def pick(key: Key[T]) -> T | None:
        return own.get(key) if own.has(key) else defaults.get(key)

    def where(key: Key[Any]) -> KeyPath:
        return (*base, key.name) if own.has(key) else ("defaults", key.name)

    aggregate = own.get(k.AGENT_AGGREGATE)
    preset = pick(k.AGENT_PRESET)
    if preset is None and not (own.has(k.AGENT_PRESET) or defaults.has(k.AGENT_PRESET)):
        preset = k.PRESETS[0]
    command_from = _command_table(own, defaults, base, preset, report)
    command_at: KeyPath = base if command_from is own else ("defaults",)
    cmd, argv, prompt = command_from.get(k.AGENT_CMD), command_from.get(k.AGENT_ARGV), pick(k.AGENT_PROMPT)
    templates = [(cmd, (*command_at, "cmd"))] if cmd is not None else []
    templates += [(a, (*command_at, "argv", i)) for i, a in enumerate(argv or ())]
    templates += [(prompt, where(k.AGENT_PROMPT))] if prompt is not None else []
    for template, at in templates:
        variable = "AGENTSUP_PROMPT" if at[-1] == "prompt" else None  # how the shell preset passes it
        _check_size(_literal_bytes(template), at, variable, report)
    own_env = own.get(k.AGENT_ENV) or {}
    for variable, value in _merged_env(own_env, defaults.get(k.AGENT_ENV)).items():
        at = (*base, "env", variable) if variable in own_env else ("defaults", "env", variable)
        _check_size(len(value.encode()), at, variable, report)

    after: list[Dependency] = []
    dep_at: list[KeyPath] = []
    if table == "agents":
        written: tuple[Dependency, ...] = pick(k.AGENT_AFTER) or ()
        after = list(written)
        dep_at = [(*where(k.AGENT_AFTER), i) for i in range(len(after))]
        for i, source in enumerate(aggregate.sources if aggregate is not None else ()):
            if all(d.agent != source for d in after):
                after.append(Dependency(source, When.FINISHED))
                dep_at.append((*base, "aggregate", "from", i))

    pool = pick(k.AGENT_POOL)
    if pool is not None and pool not in ctx.pools:
        report(where(k.AGENT_POOL), unknown("pool", pool, ctx.pools, "declare it in [pools]"))
    on_failure = pick(k.AGENT_ON_FAILURE)
    recovery = on_failure.template if isinstance(on_failure, k.Recovery) else None
    if recovery is not None and recovery not in ctx.workers:
        hint = f"declare it as [workers.{recovery}]"
        report(where(k.AGENT_ON_FAILURE), unknown("worker template", recovery, ctx.workers, hint))
    spawns = pick(k.AGENT_SPAWNS)
    if spawns is not None and not ctx.workers:
        report(where(k.AGENT_SPAWNS), "no [workers.TYPE] templates to run the subtasks with")

    cwd = pick(k.AGENT_CWD)
    exit_codes = pick(k.AGENT_SUCCESS_EXIT_CODES)
    mode = pick(k.AGENT_MODE) or AgentMode.INTERACTIVE
    done = _done_rule(
        pick(k.AGENT_DONE),
        preset=preset,
        mode=mode,
        prompt=prompt,
        own=own,
        base=base,
        where=where,
        report=report,
    )
    spec = AgentSpec(
        name=name,
        cmd=cmd,
        argv=argv,
        cwd=_absolute(ctx.workdir, cwd) if cwd is not None else None,
        env=_merged_env(own.get(k.AGENT_ENV), defaults.get(k.AGENT_ENV)),
        after=tuple(after),
        timeout=pick(k.AGENT_TIMEOUT),
        retries=pick(k.AGENT_RETRIES) or 0,
        backoff=pick(k.AGENT_BACKOFF) or Backoff(),
        success_exit_codes=frozenset(exit_codes) if exit_codes is not None else frozenset({0}),
        on_failure=on_failure if isinstance(on_failure, OnFailure) else None,
        alerts=pick(k.AGENT_ALERTS) or (),
        done=done or DoneRule(),
        line=ctx.locator.line(base),
        prompt=prompt,
        preset=preset or k.PRESETS[0],
        pool=pool,
        aggregate=aggregate,
        spawns=spawns,
        recovery=recovery,
        idle_after=pick(k.AGENT_IDLE_AFTER),
        max_rss=pick(k.AGENT_MAX_RSS),
        max_cpu=pick(k.AGENT_MAX_CPU),
        kill_over_rss=pick(k.AGENT_KILL_OVER_RSS),
        worker=name if table == "workers" else None,
        mode=mode,
        approve=pick(k.AGENT_APPROVE) or Approval.ASK,
        flags=pick(k.AGENT_FLAGS) or (),
        model=pick(k.AGENT_MODEL),
        program=pick(k.AGENT_PROGRAM),
        worktree=pick(k.AGENT_WORKTREE) is True,
    )
    return _Built(spec, tuple(dep_at), tuple(templates), where(k.AGENT_ON_FAILURE))


_CLI_KEYS = (k.AGENT_MODE, k.AGENT_APPROVE, k.AGENT_FLAGS, k.AGENT_MODEL, k.AGENT_PROGRAM)


def _command_table(
    own: Values, defaults: Values, base: KeyPath, preset: str | None, report: Report
) -> Values:
    """The table whose cmd, argv or aggregate the agent runs. An agent CLI's preset makes its own command
    line: its table may not set one ([defaults]' is ignored, so a plan can mix shell agents and CLIs)."""
    if own.has(k.AGENT_AGGREGATE):
        return own
    if preset is None:  # an unknown preset (reported)
        return _command_source(own, defaults) or own
    if preset == k.PRESETS[0]:
        found = _command_source(own, defaults)
        if found is None:
            one_of = '"cmd", "argv" or "aggregate"' if base[0] == "agents" else '"cmd" or "argv"'
            report(base, f"missing {one_of}: set exactly one of them")
        return found or own
    for key in (k.AGENT_CMD, k.AGENT_ARGV):
        if own.has(key):
            report(
                (*base, key.name),
                f'preset "{preset}" runs its own CLI: remove "{key.name}" (use "flags" for extra '
                'arguments, "program" for another executable)',
            )
    return Values()


def _done_rule(
    done: DoneRule | None,
    *,
    preset: str | None,
    mode: AgentMode,
    prompt: str | None,
    own: Values,
    base: KeyPath,
    where: Callable[[Key[Any]], KeyPath],
    report: Report,
) -> DoneRule:
    """The done rule, checked against the preset; 'turn' by default for an interactive CLI given a
    prompt."""
    at = where(k.AGENT_DONE)
    if preset is None:  # an unknown preset (reported): nothing more to say
        return done or DoneRule()
    if preset == k.PRESETS[0] or own.has(k.AGENT_AGGREGATE):
        _no_cli_keys(own, base, preset, report)
        if done is not None and done.kind in (DoneKind.TURN, DoneKind.IDLE):
            report(at, f'"{done}" needs an interactive agent CLI preset, not "{preset}"')
        return done or DoneRule()
    if mode is AgentMode.ONESHOT:
        if prompt is None:
            report(
                where(k.AGENT_MODE), 'mode "oneshot" needs a "prompt": the CLI gets it on its command line'
            )
        if done is not None and done.kind in (DoneKind.TURN, DoneKind.IDLE):
            report(at, f'"{done}" is for mode "interactive"; a one-shot CLI is done when it exits')
        return done or DoneRule()
    if done is None:
        return DoneRule(DoneKind.TURN) if prompt is not None else DoneRule()
    if done.kind is DoneKind.TURN and prompt is None:
        report(at, '"turn" needs a "prompt": the turn is the CLI\'s answer to it')
    return done


def _no_cli_keys(own: Values, base: KeyPath, preset: str, report: Report) -> None:
    """The agent-CLI keys mean nothing to the shell preset: say so instead of ignoring them ([defaults]
    may set them for the CLIs of a mixed plan)."""
    for key in _CLI_KEYS:
        if own.has(key):
            report(
                (*base, key.name),
                f'"{key.name}" is for agent CLI presets (claude, codex, gemini, aider), and this agent\'s '
                f'preset is "{preset}"',
            )


def _literal_bytes(template: str) -> int:
    """The bytes a template has whatever its placeholders become; 0 if malformed (reported already)."""
    try:
        parts = parse_template(template)
    except TemplateError:
        return 0
    return sum(len(p.encode()) for p in parts if isinstance(p, str))


def _check_size(size: int, at: KeyPath, variable: str | None, report: Report) -> None:
    """An argument, or ``VARIABLE=value``, over Linux's MAX_ARG_STRLEN fails exec: the agent never starts."""
    whole = size + (len(variable) + 1 if variable is not None else 0)
    if whole < ARG_MAX_BYTES:
        return
    passed = f"in environment variable {variable}, name included," if variable else "as one argument"
    report(
        at,
        f"{size} bytes: passed {passed} it is over the {ARG_MAX_BYTES - 1} bytes Linux allows, "
        "so the agent could never start; put it in a file instead",
    )


def _command_source(own: Values, defaults: Values) -> Values | None:
    """The table whose cmd or argv the agent runs: its own if it sets either, else [defaults]'."""
    return next((v for v in (own, defaults) if v.has(k.AGENT_CMD) or v.has(k.AGENT_ARGV)), None)


def _merged_env(own: Mapping[str, str] | None, inherited: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType({**(inherited or {}), **(own or {})})


def _check_recovery_loops(workers: Mapping[str, _Built], report: Report) -> None:
    """A template whose recovery leads back to itself would spawn recoveries without end."""
    told: set[str] = set()
    for name, built in workers.items():
        chain = [name]
        nxt = built.spec.recovery
        while nxt is not None and nxt in workers and nxt not in chain:
            chain.append(nxt)
            nxt = workers[nxt].spec.recovery
        if nxt == name and name not in told:
            told.update(chain)
            loop = " → ".join([*chain, name])
            report(
                built.on_failure_at, f"recovery loop: {loop} (each failure would spawn the next, endlessly)"
            )


def _check_handlers(
    handlers: tuple[Handler, ...],
    agents: Mapping[str, AgentSpec],
    workers: Collection[str],
    report: Report,
) -> None:
    for h in handlers:
        if h.worker is not None and h.worker not in workers:
            hint = f"declare it as [workers.{h.worker}]"
            report(("on", h.index, "worker"), unknown("worker template", h.worker, workers, hint))
        if h.target is not None and h.target not in agents:
            message = f"unknown agent {quote(h.target)}{did_you_mean(h.target, agents)}"
            report(("on", h.index, "target"), message)
