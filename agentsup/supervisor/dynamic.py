"""Agents the plan file does not list: a master's workers, and agents ``[[on]]`` handlers spawn.

Each is born from an ``agent.added`` event, committed before anything acts on it, whose data is enough to
rebuild its spec from the plan's ``[workers]`` template: a restarted engine re-creates every one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence

from agentsup.plan.model import AgentSpec, Dependency, Plan, When
from agentsup.supervisor.events import JSON, Event, EventKind, EventSpec
from agentsup.supervisor.states import Source
from agentsup.supervisor.subtasks import Subtask


def subtask_events(master: str, subtasks: Sequence[Subtask]) -> list[EventSpec]:
    """One ``agent.added`` per subtask, named ``MASTER/ID``, its ``after`` mapped to sibling names."""
    return [
        (
            EventKind.AGENT_ADDED,
            f"{master}/{st.id}",
            Source.ENGINE.value,
            {
                "name": f"{master}/{st.id}",
                "worker": st.worker,
                "parent": master,
                "after": [f"{master}/{a}" for a in st.after],
                "task": {"id": st.id, "input": st.input, "master": master},
            },
        )
        for st in subtasks
    ]


def spawn_event(name: str, worker: str, trigger: Event) -> EventSpec:
    """``agent.added`` for an agent a handler spawns; the triggering event is in its context."""
    return (
        EventKind.AGENT_ADDED,
        name,
        Source.ENGINE.value,
        {"name": name, "worker": worker, "parent": None, "after": [], "event": event_scope(trigger)},
    )


def event_scope(ev: Event) -> dict[str, JSON]:
    data = dict(ev.data)
    return {
        "seq": ev.seq,
        "kind": ev.kind.value,
        "agent": ev.agent,
        "severity": data.get("severity"),
        "line": data.get("line"),
        "name": data.get("name"),
        "text": data.get("text"),
        "data": data.get("data") if isinstance(data.get("data"), dict) else data,
    }


def recovery_event(agent: str, worker: str, failure: dict[str, JSON]) -> EventSpec:
    """``agent.added`` for ``AGENT/fix``, the recovery agent of a failed agent, the failure in its context."""
    name = f"{agent}/fix"
    return (
        EventKind.AGENT_ADDED,
        name,
        Source.ENGINE.value,
        {"name": name, "worker": worker, "parent": agent, "after": [], "failure": failure, "recovers": agent},
    )


def spec_from_added(plan: Plan, data: Mapping[str, JSON]) -> AgentSpec:
    """The spec an ``agent.added`` event describes. KeyError when its template left the plan."""
    name, worker, parent, after = data["name"], data["worker"], data.get("parent"), data.get("after")
    if not isinstance(name, str) or not isinstance(worker, str):
        raise KeyError(f"agent.added without name or worker: {dict(data)}")
    deps = (
        tuple(Dependency(a, When.SUCCEEDED) for a in after if isinstance(a, str))
        if isinstance(after, list)
        else ()
    )
    return dataclasses.replace(
        plan.workers[worker],
        name=name,
        worker=worker,
        parent=parent if isinstance(parent, str) else None,
        after=deps,
        line=None,
    )


def scope_from_added(data: Mapping[str, JSON]) -> dict[str, JSON]:
    """The template scope a dynamic agent adds to its own: ``task`` or ``event``."""
    return {k: data[k] for k in ("task", "event", "failure") if k in data}
