"""Events: what happened in a run, as appended to the event log."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import TypeAlias

JSON: TypeAlias = bool | int | float | str | list["JSON"] | dict[str, "JSON"] | None


class EventKind(StrEnum):
    RUN_STARTED = "run.started"  # data: plan, run_dir, agents
    RUN_HALTED = "run.halted"  # data: reason, agent
    RUN_STOPPING = "run.stopping"  # data: reason
    RUN_FINISHED = "run.finished"  # data: state ("succeeded" | "failed" | "stopped")
    AGENT_STATE = "agent.state"  # data: from, to, attempt, [reason, exit_code, signal, retry_at]
    AGENT_SPAWN = "agent.spawn"  # write-ahead intent; data: attempt
    AGENT_SPAWNED = "agent.spawned"  # data: attempt, window_id, pane_id, pid
    AGENT_EXIT = "agent.exit"  # data: attempt, code, signal, started_at, ended_at
    ALERT = "alert"  # data: attempt, severity, rule, line
    COMMAND = "command"  # a user command accepted; data: command, [text]
    AGENT_ADDED = "agent.added"  # a dynamic agent; data: name, worker, parent, after, task | event
    EXTERNAL = "external"  # agentsup emit or a file in inbox/; data: name, data
    HANDLER_FIRED = "handler.fired"  # data: handler (its [[on]] index), trigger (the event's seq), do
    NOTIFY = "notify"  # a notify handler's message; data: message, handler
    THROTTLE = "throttle"  # data: max_parallel, until (null: for the rest of the run)
    AGENT_RECOVERED = "agent.recovered"  # its recovery agent succeeded: retry it now; data: by
    RUN_RESUMED = "run.resumed"  # a new engine took the run over; data: adopted, respawned, exited, gone
    AGENT_PROMPTED = "agent.prompted"  # an agent CLI's prompt is being typed (write-ahead); data: attempt
    AGENT_TURN = "agent.turn"  # an agent CLI finished a turn; data: attempt, turn
    AGENT_ANSWERED = "agent.answered"  # a permission dialog answered; data: attempt, answer, by, question


EventSpec: TypeAlias = tuple[EventKind, str | None, str, dict[str, JSON]]
"""An event to append: kind, agent, source, data (the store adds seq and time)."""


def _frozen(data: Mapping[str, JSON] | None = None) -> Mapping[str, JSON]:
    return MappingProxyType(dict(data or {}))


@dataclass(frozen=True)
class Event:
    seq: int  # 1, 2, 3… in log order; 0 before the store assigned one
    ts: float  # unix time
    kind: EventKind
    agent: str | None
    source: str  # a states.Source value, or "engine"
    data: Mapping[str, JSON] = field(default_factory=_frozen)

    def to_json(self) -> dict[str, JSON]:
        return {
            "seq": self.seq,
            "ts": self.ts,
            "kind": self.kind.value,
            "agent": self.agent,
            "source": self.source,
            "data": dict(self.data),
        }

    @classmethod
    def from_json(cls, obj: Mapping[str, JSON]) -> Event:
        seq, ts, kind, agent, source, data = (
            obj["seq"],
            obj["ts"],
            obj["kind"],
            obj["agent"],
            obj["source"],
            obj["data"],
        )
        if not (
            isinstance(seq, int)
            and isinstance(ts, int | float)
            and isinstance(kind, str)
            and (agent is None or isinstance(agent, str))
            and isinstance(source, str)
            and isinstance(data, dict)
        ):
            raise ValueError(f"not an event: {json.dumps(obj)[:200]}")
        return cls(seq, float(ts), EventKind(kind), agent, source, _frozen(data))
