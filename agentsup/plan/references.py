"""Checks of what templates reference: each ``{{ path }}`` must name something that exists where the
template is used (an upstream's output, a declared input, the task of a worker, the event of a handler).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass

from agentsup.plan import templates
from agentsup.plan.locate import KeyPath
from agentsup.plan.types import Report, did_you_mean, quote, unknown

ROOTS = ("agents", "inputs", "task", "event", "failure", "run")

# How many keys follow each field: none (a leaf), exactly one, one or more, or any number.
_LEAF, _ONE, _SOME, _ANY = 0, 1, 2, 3
AGENT_FIELDS = {
    "output": _LEAF,
    "out": _LEAF,
    "exit_code": _LEAF,
    "state": _LEAF,
    "duration": _LEAF,
    "meta": _ONE,
    "result": _SOME,
}
TASK_FIELDS = {"id": _LEAF, "input": _ANY, "master": _LEAF}
EVENT_FIELDS = {
    "kind": _LEAF,
    "agent": _LEAF,
    "severity": _LEAF,
    "line": _LEAF,
    "name": _LEAF,
    "text": _LEAF,
    "data": _SOME,
}
RUN_FIELDS = {"id": _LEAF, "name": _LEAF}
# A recovery agent (on_failure = "spawn:TEMPLATE") is told what failed.
FAILURE_FIELDS = {
    "agent": _LEAF,
    "attempt": _LEAF,
    "exit_code": _LEAF,
    "reason": _LEAF,
    "output": _LEAF,
    "log": _LEAF,
}
_FIELDS = {"task": TASK_FIELDS, "event": EVENT_FIELDS, "failure": FAILURE_FIELDS, "run": RUN_FIELDS}


@dataclass(frozen=True)
class Scope:
    """Where a template is used, hence what it may name."""

    agent: str | None  # a declared agent: only its upstreams; None (templates, handlers): any declared agent
    upstreams: frozenset[str] = frozenset()
    task: bool = False  # [workers] templates
    event: bool = False  # [workers] templates and handlers


def agent_scope(name: str, upstreams: Collection[str]) -> Scope:
    return Scope(agent=name, upstreams=frozenset(upstreams))


WORKER_SCOPE = Scope(agent=None, task=True, event=True)
HANDLER_SCOPE = Scope(agent=None, event=True)


def _out_of_scope(root: str, scope: Scope) -> str | None:
    if root == "task" and not scope.task:
        return "task is only known in [workers] templates"
    if root == "event" and not scope.event:
        return "event is only known in [workers] templates and [[on]] text and message"
    if root == "failure" and not scope.task:
        return "failure is only known in [workers] templates (a recovery agent's)"
    return None


class ReferenceChecker:
    """Reports each bad reference of a template; the template's syntax was checked when it was read."""

    def __init__(self, agents: Collection[str], inputs: Collection[str], report: Report) -> None:
        self.agents = agents
        self.inputs = inputs
        self.report = report

    def check(self, template: str, at: KeyPath, scope: Scope) -> None:
        try:
            paths = templates.references(template)
        except templates.TemplateError:
            return  # reported where the template was read
        for path in dict.fromkeys(paths):
            problem = self._problem(path, scope)
            if problem is not None:
                self.report(at, f"{{{{ {'.'.join(path)} }}}}: {problem}")

    def _problem(self, path: tuple[str, ...], scope: Scope) -> str | None:
        root, rest = path[0], path[1:]
        if root == "agents":
            return self._agent(rest, scope)
        if root == "inputs":
            return self._input(rest)
        if (problem := _out_of_scope(root, scope)) is not None:
            return problem
        fields = _FIELDS.get(root)
        if fields is None:
            return f"unknown name {quote(root)}: expected {_one_of(ROOTS)}{did_you_mean(root, ROOTS)}"
        return _field(root, rest, fields)

    def _agent(self, rest: tuple[str, ...], scope: Scope) -> str | None:
        if not rest:
            return "name an agent and a field, e.g. {{ agents.NAME.output }}"
        name = rest[0]
        if name not in self.agents:
            return f"unknown agent {quote(name)}{did_you_mean(name, self.agents)}"
        if scope.agent is not None and name == scope.agent:
            return f"agent {quote(name)} cannot read its own results"
        if scope.agent is not None and name not in scope.upstreams:
            return f"{quote(name)} is not an upstream of {quote(scope.agent)} (add it to after)"
        return _field(f"agents.{name}", rest[1:], AGENT_FIELDS)

    def _input(self, rest: tuple[str, ...]) -> str | None:
        if len(rest) != 1:
            return "name one input: {{ inputs.NAME }}"
        name = rest[0]
        return None if name in self.inputs else unknown("input", name, self.inputs, "declare it in [inputs]")


def _field(owner: str, rest: tuple[str, ...], fields: Mapping[str, int]) -> str | None:
    """The problem with ``rest``, the path after ``owner``, whose first segment must be one of ``fields``."""
    spelled = _one_of([_spelled(f, keys) for f, keys in fields.items()])
    if not rest:
        return f"name a field of {owner}: {spelled}"
    field, keys = rest[0], rest[1:]
    takes = fields.get(field)
    if takes is None:
        return f"unknown field {quote(field)} of {owner}: expected {spelled}{did_you_mean(field, fields)}"
    if takes == _LEAF and keys:
        return f"{owner}.{field} has no fields"
    if takes in (_ONE, _SOME) and not keys:
        return f"name a key: {{{{ {owner}.{field}.KEY }}}}"
    if takes == _ONE and len(keys) > 1:
        return f"{owner}.{field} takes one key: {{{{ {owner}.{field}.KEY }}}}"
    return None


def _spelled(field: str, keys: int) -> str:
    return {_LEAF: field, _ONE: f"{field}.KEY", _SOME: f"{field}.KEY", _ANY: f"{field}, {field}.KEY"}[keys]


def _one_of(words: Collection[str]) -> str:
    listed = list(words)
    return listed[0] if len(listed) == 1 else ", ".join(listed[:-1]) + " or " + listed[-1]
