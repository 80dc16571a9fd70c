"""Build plans and events for supervisor tests without the plan loader."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from types import MappingProxyType

from agentsup.plan.model import AgentSpec, Backoff, Dependency, OnFailure, Plan, RunSpec, When
from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.states import AgentState, Source

DepSpec = str | tuple[str, When]


def make_plan(
    graph: Mapping[str, Sequence[DepSpec]],
    *,
    max_parallel: int | None = None,
    on_failure: OnFailure = OnFailure.HALT,
    retries: Mapping[str, int] | None = None,
    backoff: Backoff | None = None,
    agent_on_failure: Mapping[str, OnFailure] | None = None,
) -> Plan:
    """A plan from ``{"a": [], "b": ["a"], "c": [("a", When.FAILED)]}``; every agent runs ``true``."""
    agents: dict[str, AgentSpec] = {}
    for name, deps in graph.items():
        after = tuple(Dependency(d) if isinstance(d, str) else Dependency(d[0], d[1]) for d in deps)
        agents[name] = AgentSpec(
            name=name,
            cmd="true",
            after=after,
            retries=(retries or {}).get(name, 0),
            backoff=backoff or Backoff(),
            on_failure=(agent_on_failure or {}).get(name),
        )
    return Plan(
        path=Path("/plans/plan.toml"),
        run=RunSpec(name="test", workdir=Path("/work"), max_parallel=max_parallel, on_failure=on_failure),
        agents=MappingProxyType(agents),
    )


class EventLog:
    """Builds events with increasing seq and ts, as the store would assign them."""

    def __init__(self, t0: float = 1000.0) -> None:
        self.events: list[Event] = []
        self.ts = t0

    def add(self, kind: EventKind, agent: str | None, source: str = Source.ENGINE, /, **data: JSON) -> Event:
        self.ts += 1.0
        event = Event(len(self.events) + 1, self.ts, kind, agent, str(source), MappingProxyType(data))
        self.events.append(event)
        return event

    def state(
        self,
        agent: str,
        frm: AgentState,
        to: AgentState,
        attempt: int,
        source: Source = Source.SCHEDULER,
        /,
        **extra: JSON,
    ) -> Event:
        return self.add(
            EventKind.AGENT_STATE,
            agent,
            source,
            **{"from": frm.value, "to": to.value, "attempt": attempt},
            **extra,
        )
