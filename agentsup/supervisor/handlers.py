"""``[[on]]`` handlers: which logged event triggers which handler. Pure: no I/O, no clock."""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass

from agentsup.plan.model import EventName, Handler, Severity
from agentsup.supervisor.events import Event, EventKind

_RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}


@dataclass(frozen=True)
class Trigger:
    """A logged event seen as a handler's ``event``."""

    name: EventName
    event: Event
    agent: str | None
    severity: Severity | None = None
    text: str = ""  # what ``match`` searches: the alert line, the input text, or the data as JSON
    external: str | None = None  # an external event's name


def trigger_of(ev: Event) -> Trigger | None:
    """The handler event a logged event amounts to, if any."""
    d = ev.data
    if ev.kind is EventKind.AGENT_STATE:
        to = d.get("to")
        names = {
            "succeeded": EventName.AGENT_COMPLETED,
            "failed": EventName.AGENT_FAILED,
            "lost": EventName.AGENT_FAILED,
            "idle": EventName.AGENT_IDLE,
            "needs_input": EventName.AGENT_NEEDS_INPUT,
        }
        if isinstance(to, str) and to in names:
            return Trigger(names[to], ev, ev.agent, text=str(d.get("reason") or ""))
        return None
    if ev.kind is EventKind.ALERT:
        sev = d.get("severity")
        severity = Severity(sev) if isinstance(sev, str) and sev in Severity.__members__.values() else None
        name = EventName.RESOURCE if d.get("resource") else EventName.ALERT
        return Trigger(name, ev, ev.agent, severity, str(d.get("line") or ""))
    if ev.kind is EventKind.EXTERNAL:
        external = d.get("name")
        return Trigger(
            EventName.EXTERNAL,
            ev,
            None,
            text=json.dumps(d.get("data")),
            external=external if isinstance(external, str) else None,
        )
    if ev.kind is EventKind.COMMAND and d.get("command") == "send":
        return Trigger(EventName.USER_INPUT, ev, ev.agent, text=str(d.get("text") or ""))
    return None


def matches(handler: Handler, trigger: Trigger) -> bool:
    """Whether ``trigger`` passes every filter ``handler`` sets."""
    if handler.event is not trigger.name:
        return False
    if handler.agent is not None and not fnmatch.fnmatchcase(trigger.agent or "", handler.agent):
        return False
    if handler.severity is not None and (
        trigger.severity is None or _RANK[trigger.severity] < _RANK[handler.severity]
    ):
        return False
    if handler.name is not None and not fnmatch.fnmatchcase(trigger.external or "", handler.name):
        return False
    return handler.match is None or handler.match.search(trigger.text) is not None
