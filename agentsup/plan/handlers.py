"""``[[on]]`` handlers: their keys, which filter goes with which event and which argument with which action,
and the checks that need no other table (the rest is in ``load``)."""

from __future__ import annotations

from typing import Any

from agentsup.plan.locate import KeyPath
from agentsup.plan.model import ActionKind, EventName, Handler, Severity
from agentsup.plan.types import (
    ArrayOf,
    Choice,
    Duration,
    Integer,
    Key,
    Name,
    Record,
    Regex,
    Report,
    Table,
    Template,
    Text,
    Values,
    quote,
    table_schema,
)

ON_EVENT = Key(
    "event",
    Choice(EventName),
    "The event handled: 'agent.completed', 'agent.failed' (for good, or lost), 'alert', 'agent.idle', "
    "'agent.needs_input', 'resource', 'external' (agentsup emit, or a JSON file in RUN/inbox/) or "
    "'user_input' (agentsup send).",
    required=True,
)
ON_DO = Key(
    "do",
    Choice(ActionKind),
    "The action: 'spawn' (a [workers] template), 'restart', 'kill', 'send' (type text into a pane), "
    "'notify', 'throttle' (lower max_parallel for a while) or 'stop' (the run).",
    required=True,
)
ON_AGENT = Key("agent", Text(nonempty=True), "Filter: a glob (fnmatch) on the triggering agent's name.")
ON_SEVERITY = Key(
    "severity",
    Choice(Severity),
    "Filter, with event 'alert' or 'resource': the alert's severity is at least this.",
)
ON_MATCH = Key(
    "match",
    Regex(),
    "Filter: a regular expression searched in the alert line, the input text or the event's data as JSON.",
)
ON_NAME = Key("name", Text(nonempty=True), "Filter, with event 'external': a glob on the event's name.")
ON_WORKER = Key(
    "worker",
    Name(),
    "do = 'spawn': the [workers] template run as a new agent, with the event in its context.",
)
ON_TARGET = Key(
    "target",
    Name(),
    "do = 'restart', 'kill' or 'send': the agent acted on. Default: the agent that triggered the event.",
)
ON_TEXT = Key(
    "text",
    Template(nonempty=True),
    "do = 'send': the text typed into the agent's pane (then Enter), a template.",
)
ON_MESSAGE = Key("message", Template(nonempty=True), "do = 'notify': the notification, a template.")
ON_MAX_PARALLEL = Key(
    "max_parallel", Integer(minimum=1), "do = 'throttle': the lowered cap on running agents."
)
ON_FOR = Key(
    "for",
    Duration(positive=True),
    "do = 'throttle': how long the lower cap holds. Default: until the run ends.",
)
HANDLER = Table(
    (
        ON_EVENT,
        ON_DO,
        ON_AGENT,
        ON_SEVERITY,
        ON_MATCH,
        ON_NAME,
        ON_WORKER,
        ON_TARGET,
        ON_TEXT,
        ON_MESSAGE,
        ON_MAX_PARALLEL,
        ON_FOR,
    )
)

# The filters that only some events carry.
FILTER_EVENTS: dict[Key[Any], tuple[EventName, ...]] = {
    ON_SEVERITY: (EventName.ALERT, EventName.RESOURCE),
    ON_NAME: (EventName.EXTERNAL,),
}

# Each action's (required, optional) arguments; an argument is only valid for the actions that list it.
ACTION_ARGS: dict[ActionKind, tuple[tuple[Key[Any], ...], tuple[Key[Any], ...]]] = {
    ActionKind.SPAWN: ((ON_WORKER,), ()),
    ActionKind.RESTART: ((), (ON_TARGET,)),
    ActionKind.KILL: ((), (ON_TARGET,)),
    ActionKind.SEND: ((ON_TEXT,), (ON_TARGET,)),
    ActionKind.NOTIFY: ((ON_MESSAGE,), ()),
    ActionKind.THROTTLE: ((ON_MAX_PARALLEL,), (ON_FOR,)),
    ActionKind.STOP: ((), ()),
}
_ARGS: tuple[Key[Any], ...] = (ON_WORKER, ON_TARGET, ON_TEXT, ON_MESSAGE, ON_MAX_PARALLEL, ON_FOR)


def _one_of(words: list[str]) -> str:
    quoted = [quote(w) for w in words]
    return quoted[0] if len(quoted) == 1 else ", ".join(quoted[:-1]) + " or " + quoted[-1]


def _actions_using(arg: Key[Any]) -> list[ActionKind]:
    return [a for a, (required, optional) in ACTION_ARGS.items() if arg in required or arg in optional]


def _build(values: Values, at: KeyPath, report: Report) -> Handler | None:
    """The handler, once ``event`` and ``do`` are valid, even if other keys are not: the checks that need
    the whole plan still run on it (the plan is rejected anyway)."""
    event = values.get(ON_EVENT)
    do = values.get(ON_DO)
    if event is not None:
        for key, events in FILTER_EVENTS.items():
            if values.has(key) and event not in events:
                report((*at, key.name), f"only used with event = {_one_of([e.value for e in events])}")
    if do is not None:
        required, optional = ACTION_ARGS[do]
        for arg in _ARGS:
            if values.has(arg) and arg not in required and arg not in optional:
                used_by = _one_of([a.value for a in _actions_using(arg)])
                report((*at, arg.name), f"only used by do = {used_by}")
        for arg in required:
            if not values.has(arg):
                report(at, f'missing required key {quote(arg.name)} for do = "{do.value}"')
    if event is None or do is None:
        return None
    index = at[-1]
    return Handler(
        index=index if isinstance(index, int) else 0,
        event=event,
        do=do,
        agent=values.get(ON_AGENT),
        severity=values.get(ON_SEVERITY),
        match=values.get(ON_MATCH),
        name=values.get(ON_NAME),
        worker=values.get(ON_WORKER),
        target=values.get(ON_TARGET),
        text=values.get(ON_TEXT),
        message=values.get(ON_MESSAGE),
        max_parallel=values.get(ON_MAX_PARALLEL),
        duration=values.get(ON_FOR),
    )


class _HandlerType(Record[Handler]):
    def __init__(self) -> None:
        super().__init__(HANDLER, _build)

    def schema(self) -> dict[str, object]:
        out = table_schema(HANDLER)
        rules: list[dict[str, object]] = []
        for key, events in FILTER_EVENTS.items():
            rules.append(
                {
                    "if": {
                        "required": ["event"],
                        "properties": {"event": {"not": {"enum": [e.value for e in events]}}},
                    },
                    "then": {"not": {"required": [key.name]}},
                }
            )
        for action, (required, optional) in ACTION_ARGS.items():
            unused = [a.name for a in _ARGS if a not in required and a not in optional]
            then: dict[str, object] = {"properties": dict.fromkeys(unused, False)}
            if required:
                then["required"] = [a.name for a in required]
            rules.append(
                {"if": {"required": ["do"], "properties": {"do": {"const": action.value}}}, "then": then}
            )
        out["allOf"] = rules
        return out


HANDLERS = ArrayOf(_HandlerType(), expected="an array of [[on]] tables", partial=True)
