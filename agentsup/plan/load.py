"""Load ``plan.toml``: parse, normalise against the key table, check the dependency graph.

Every problem is collected and raised at once as a ``PlanError``, in file order; no input raises anything
else.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import TypeVar

from agentsup.plan import keys as k
from agentsup.plan.graph import check_dependencies
from agentsup.plan.locate import KeyPath, Locator, format_path
from agentsup.plan.model import AgentSpec, Backoff, DoneRule, OnFailure, Plan, PlanError, Problem, RunSpec
from agentsup.plan.types import Key, Report, Values, convert_table

T = TypeVar("T")

_TOML_ERROR = re.compile(r"^(?P<message>.*) \(at line (?P<line>\d+), column (?P<column>\d+)\)$", re.DOTALL)
_TOML_ERROR_AT_END = re.compile(r"^(?P<message>.*) \(at end of document\)$", re.DOTALL)
_NOT_NAME_CHAR = re.compile(r"[^A-Za-z0-9_-]+")


def load_plan(path: Path) -> Plan:
    """Reads and validates the plan at ``path``; raises PlanError listing every problem."""
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as e:
        raise PlanError((Problem(str(path), "", f"cannot read the plan: {e.strerror or e}"),)) from e
    except UnicodeDecodeError as e:
        message = f"not valid UTF-8 (byte {e.start})"
        raise PlanError((Problem(str(path), "", message),)) from e
    return parse_plan(text, file=str(path), base_dir=path.absolute().parent)


def parse_plan(text: str, *, file: str, base_dir: Path) -> Plan:
    """Validates plan ``text``; ``file`` names it in messages, relative paths resolve against ``base_dir``.

    ``Plan.path`` is ``base_dir`` joined with the name of ``file``.
    """
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise PlanError((_toml_problem(str(e), text, file),)) from e
    except RecursionError as e:
        raise PlanError((Problem(file, "", "invalid TOML: values nested too deeply"),)) from e

    found: list[tuple[KeyPath, str]] = []

    def report(at: KeyPath, message: str) -> None:
        found.append((at, message))

    locator = Locator(text)
    top = convert_table(doc, k.PLAN, (), report) or Values()
    plan = _build(top, file, _absolute(base_dir, "."), locator, report)
    if found:
        raise PlanError(_problems(found, file, locator))
    return plan


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


def _build(top: Values, file: str, base_dir: Path, locator: Locator, report: Report) -> Plan:
    run_values = top.get(k.PLAN_RUN) or Values()
    workdir = run_values.get(k.RUN_WORKDIR)
    run = RunSpec(
        name=run_values.get(k.RUN_NAME) or _sanitised_name(Path(file).stem),
        workdir=_absolute(base_dir, workdir) if workdir is not None else base_dir,
        max_parallel=run_values.get(k.RUN_MAX_PARALLEL),
        on_failure=run_values.get(k.RUN_ON_FAILURE) or OnFailure.HALT,
    )
    defaults = top.get(k.PLAN_DEFAULTS) or Values()
    agents: dict[str, AgentSpec] = {}
    after_at: dict[str, KeyPath] = {}
    for name, own in (top.get(k.PLAN_AGENTS) or {}).items():
        agents[name] = _agent(
            name, own, defaults, run.workdir, report=report, line=locator.line(("agents", name))
        )
        after_at[name] = ("agents", name, "after") if own.has(k.AGENT_AFTER) else ("defaults", "after")
    check_dependencies(agents, after_at, report)
    return Plan(
        path=base_dir / Path(file).name,
        run=run,
        agents=MappingProxyType(agents),
    )


def _agent(
    name: str, own: Values, defaults: Values, workdir: Path, *, report: Report, line: int | None
) -> AgentSpec:
    def pick(key: Key[T]) -> T | None:
        return own.get(key) if own.has(key) else defaults.get(key)

    command_from = next((v for v in (own, defaults) if v.has(k.AGENT_CMD) or v.has(k.AGENT_ARGV)), None)
    if command_from is None:
        report(("agents", name), 'missing "cmd" or "argv": set exactly one of them')
        command_from = own
    cwd = pick(k.AGENT_CWD)
    exit_codes = pick(k.AGENT_SUCCESS_EXIT_CODES)
    return AgentSpec(
        name=name,
        cmd=command_from.get(k.AGENT_CMD),
        argv=command_from.get(k.AGENT_ARGV),
        cwd=_absolute(workdir, cwd) if cwd is not None else None,
        env=_merged_env(own.get(k.AGENT_ENV), defaults.get(k.AGENT_ENV)),
        after=pick(k.AGENT_AFTER) or (),
        timeout=pick(k.AGENT_TIMEOUT),
        retries=pick(k.AGENT_RETRIES) or 0,
        backoff=pick(k.AGENT_BACKOFF) or Backoff(),
        success_exit_codes=frozenset(exit_codes) if exit_codes is not None else frozenset({0}),
        on_failure=pick(k.AGENT_ON_FAILURE),
        alerts=pick(k.AGENT_ALERTS) or (),
        done=pick(k.AGENT_DONE) or DoneRule(),
        line=line,
    )


def _merged_env(own: Mapping[str, str] | None, inherited: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType({**(inherited or {}), **(own or {})})
