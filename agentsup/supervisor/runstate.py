"""The state of a run, as a fold over its event log.

The engine's in-memory state and the offline ``agentsup status`` are both this fold, so an engine that
restarts and replays the log rebuilds exactly the state it had.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from types import MappingProxyType
from typing import ClassVar

from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.states import (
    ACTIVE,
    TERMINAL,
    AgentState,
    IllegalTransitionError,
    Source,
    check_transition,
)


class RunOutcome(StrEnum):
    """How a finished run ended (the ``state`` of a ``run.finished`` event)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class AgentRecord:
    """What the log says about one agent. Per-attempt fields describe the latest attempt."""

    name: str
    state: AgentState = AgentState.PENDING
    attempts: int = 0  # spawn intents so far
    ever_ran: bool = False  # reached RUNNING in some attempt
    exit_code: int | None = None
    signal: int | None = None
    started_at: float | None = None
    ended_at: float | None = None
    retry_at: float | None = None  # set exactly while RETRYING or RATE_LIMITED (when the log says when)
    window_id: str | None = None
    pane_id: str | None = None
    pid: int | None = None
    last_source: Source | None = None
    reason: str | None = None
    # Attempts the retry budget leaves out: those made before the last restart, and rate-limited ones.
    restart_base: int = 0
    awaiting: str | None = None  # while RETRYING: the recovery agent it waits for

    def status_json(self) -> dict[str, JSON]:
        return {
            "name": self.name,
            "state": self.state.value,
            "exit_code": self.exit_code,
            "attempts": self.attempts,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "signal": self.signal,
            "reason": self.reason,
            "source": None if self.last_source is None else self.last_source.value,
            "retry_at": self.retry_at,
            "ever_ran": self.ever_ran,
            "window_id": self.window_id,
            "pane_id": self.pane_id,
            "pid": self.pid,
            "restart_base": self.restart_base,
            "awaiting": self.awaiting,
        }


def _int(v: JSON | None) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None


def _float(v: JSON | None) -> float | None:
    return float(v) if isinstance(v, int | float) and not isinstance(v, bool) else None


def _str(v: JSON | None) -> str | None:
    return v if isinstance(v, str) else None


_STATE_VALUES = frozenset(s.value for s in AgentState)
_DUE_LATER = frozenset({AgentState.RETRYING, AgentState.RATE_LIMITED})  # retry_at says when
_OUTCOME_VALUES = frozenset(o.value for o in RunOutcome)
_SOURCE_VALUES = frozenset(s.value for s in Source)


def _agent_state(v: JSON | None) -> AgentState | None:
    return AgentState(v) if isinstance(v, str) and v in _STATE_VALUES else None


class RunState:
    """A run's state. Mutated only by :meth:`apply`; everything it exposes is read-only."""

    def __init__(self) -> None:
        self._agents: dict[str, AgentRecord] = {}
        self._states: dict[str, AgentState] = {}  # each record's state, kept with it (the scheduler's input)
        self._last_seq = 0
        self._halted = False
        self._halted_by: str | None = None
        self._halt_reason: str | None = None
        self._stopping = False
        self._finished: RunOutcome | None = None
        self._anomalies: list[str] = []

    @classmethod
    def for_agents(cls, names: Iterable[str]) -> RunState:
        run = cls()
        for name in names:
            run._record(name)
        return run

    @classmethod
    def fold(cls, names: Iterable[str], events: Iterable[Event]) -> RunState:
        run = cls.for_agents(names)
        for event in events:
            run.apply(event)
        return run

    # -- read-only views -------------------------------------------------------------------------------

    @property
    def agents(self) -> Mapping[str, AgentRecord]:
        """Every agent, plan agents first in plan order, then agents first seen in events."""
        return MappingProxyType(self._agents)

    def agent(self, name: str) -> AgentRecord:
        return self._agents[name]

    @property
    def last_seq(self) -> int:
        return self._last_seq

    @property
    def halted(self) -> bool:
        return self._halted

    @property
    def halted_by(self) -> str | None:
        """The agent whose final failure halted the run, when the run.halted event named one."""
        return self._halted_by

    @property
    def halt_reason(self) -> str | None:
        return self._halt_reason

    @property
    def stopping(self) -> bool:
        return self._stopping

    @property
    def finished(self) -> RunOutcome | None:
        return self._finished

    @property
    def anomalies(self) -> tuple[str, ...]:
        """Events the fold applied although they broke the state machine (bugs elsewhere, kept visible)."""
        return tuple(self._anomalies)

    def states(self) -> dict[str, AgentState]:
        """A new dict of every agent's state, in the order of :attr:`agents`."""
        return self._states.copy()

    def active_count(self) -> int:
        return sum(1 for r in self._agents.values() if r.state in ACTIVE)

    # -- the fold --------------------------------------------------------------------------------------

    def apply(self, event: Event) -> None:
        """Fold one event in. Events already folded (0 < seq <= last_seq) are ignored, so replay is safe."""
        if event.seq:
            if event.seq <= self._last_seq:
                return
            self._last_seq = event.seq
        fold = self._FOLDS.get(event.kind)
        if fold is not None:  # the other kinds (alerts, commands, handler firings…) change no state
            fold(self, event)

    def _apply_finished(self, event: Event) -> None:
        state = event.data.get("state")
        if isinstance(state, str) and state in _OUTCOME_VALUES:
            self._finished = RunOutcome(state)
        else:
            self._anomaly(event, f"unknown run outcome {state!r}")

    def _apply_recovered(self, event: Event) -> None:
        """Its recovery agent succeeded: the agent is due for its next attempt now."""
        rec = self._agents.get(event.agent or "")
        if rec is None:
            self._anomaly(event, "agent.recovered for an unknown agent")
            return
        self._put(replace(rec, awaiting=None, retry_at=event.ts))

    def _apply_added(self, event: Event) -> None:
        name = event.data.get("name")
        if isinstance(name, str):
            self._record(name)
        else:
            self._anomaly(event, "agent.added without a name")

    def _apply_run(self, event: Event) -> None:
        data = event.data
        if event.kind is EventKind.RUN_STARTED:
            names = data.get("agents")
            for name in names if isinstance(names, list) else ():
                if isinstance(name, str):
                    self._record(name)
        elif event.kind is EventKind.RUN_HALTED:
            self._halted = True
            self._halted_by = _str(data.get("agent"))
            self._halt_reason = _str(data.get("reason"))
        else:
            self._stopping = True

    def _record(self, name: str) -> AgentRecord:
        rec = self._agents.get(name)
        if rec is None:
            rec = AgentRecord(name)
            self._put(rec)
        return rec

    def _put(self, rec: AgentRecord) -> None:
        self._agents[rec.name] = rec
        self._states[rec.name] = rec.state

    def _anomaly(self, event: Event, what: str) -> None:
        self._anomalies.append(f"seq {event.seq} ({event.kind.value}, agent {event.agent!r}): {what}")

    def _current(self, event: Event, rec: AgentRecord) -> bool:
        """Whether ``event`` belongs to the agent's latest attempt (events without ``attempt`` do)."""
        attempt = _int(event.data.get("attempt"))
        return attempt is None or attempt >= rec.attempts

    def _apply_state(self, event: Event) -> None:
        if event.agent is None:
            self._anomaly(event, "agent.state without an agent")
            return
        data = event.data
        target = _agent_state(data.get("to"))
        if target is None:
            self._anomaly(event, f"unknown target state {data.get('to')!r}")
            return
        rec = self._record(event.agent)
        from_raw = _str(data.get("from"))
        if from_raw is not None and from_raw != rec.state.value:
            self._anomaly(event, f"says from {from_raw}, the fold has {rec.state.value}")
        try:
            check_transition(rec.name, rec.state, target)
        except IllegalTransitionError as e:
            self._anomaly(event, str(e))
        source = Source(event.source) if event.source in _SOURCE_VALUES else None
        attempt = _int(data.get("attempt"))
        code, sig = _int(data.get("exit_code")), _int(data.get("signal"))
        leaves_active = rec.state in ACTIVE and target not in ACTIVE
        restarted = rec.state in TERMINAL and target is AgentState.WAITING
        self._put(
            replace(
                rec,
                state=target,
                attempts=max(rec.attempts, attempt or 0),
                ever_ran=rec.ever_ran or target is AgentState.RUNNING,
                started_at=event.ts
                if target is AgentState.RUNNING and rec.started_at is None
                else rec.started_at,
                ended_at=event.ts if leaves_active and rec.ended_at is None else rec.ended_at,
                exit_code=rec.exit_code if code is None else code,
                signal=rec.signal if sig is None else sig,
                retry_at=_float(data.get("retry_at")) if target in _DUE_LATER else None,
                last_source=source,
                reason=_str(data.get("reason")),
                restart_base=rec.attempts
                if restarted
                else rec.restart_base + (target is AgentState.RATE_LIMITED),
                awaiting=_str(data.get("awaiting")) if target is AgentState.RETRYING else None,
            )
        )

    def _apply_spawn(self, event: Event) -> None:
        if event.agent is None:
            self._anomaly(event, "agent.spawn without an agent")
            return
        rec = self._record(event.agent)
        attempt = _int(event.data.get("attempt"))
        attempts = rec.attempts + 1 if attempt is None else attempt
        if attempts < rec.attempts:
            self._anomaly(event, f"spawn of attempt {attempts} after attempt {rec.attempts}")
            return
        self._put(
            replace(
                rec,
                attempts=attempts,
                exit_code=None,
                signal=None,
                started_at=None,
                ended_at=None,
                retry_at=None,
                window_id=None,
                pane_id=None,
                pid=None,
            )
        )

    def _apply_spawned(self, event: Event) -> None:
        if event.agent is None:
            self._anomaly(event, "agent.spawned without an agent")
            return
        rec = self._record(event.agent)
        if not self._current(event, rec):
            return
        data = event.data
        self._put(
            replace(
                rec,
                window_id=_str(data.get("window_id")),
                pane_id=_str(data.get("pane_id")),
                pid=_int(data.get("pid")),
            )
        )

    def _apply_exit(self, event: Event) -> None:
        if event.agent is None:
            self._anomaly(event, "agent.exit without an agent")
            return
        rec = self._record(event.agent)
        if not self._current(event, rec):
            return
        data = event.data
        started = _float(data.get("started_at"))
        ended = _float(data.get("ended_at"))
        self._put(
            replace(
                rec,
                exit_code=_int(data.get("code")),
                signal=_int(data.get("signal")),
                started_at=rec.started_at if started is None else started,
                ended_at=event.ts if ended is None else ended,
            )
        )

    # -- output ----------------------------------------------------------------------------------------

    def run_state(self) -> str:
        """``running`` until a run.finished event, then its outcome."""
        return "running" if self._finished is None else self._finished.value

    def status_json(self, run_id: str) -> dict[str, JSON]:
        """What ``agentsup status --json`` prints."""
        return {
            "run": run_id,
            "state": self.run_state(),
            "agents": [r.status_json() for r in self._agents.values()],
        }

    def snapshot(self) -> dict[str, JSON]:
        """Everything the fold holds; :meth:`from_snapshot` restores it (a replay may then start after
        ``last_seq``)."""
        return {
            "last_seq": self._last_seq,
            "halted": self._halted,
            "halted_by": self._halted_by,
            "halt_reason": self._halt_reason,
            "stopping": self._stopping,
            "finished": None if self._finished is None else self._finished.value,
            "agents": [r.status_json() for r in self._agents.values()],
            "anomalies": list[JSON](self._anomalies),
        }

    @classmethod
    def from_snapshot(cls, snap: Mapping[str, JSON]) -> RunState:
        """Rebuild the state :meth:`snapshot` described; raises TypeError or ValueError on a malformed
        snapshot."""
        run = cls()
        agents = snap.get("agents")
        anomalies = snap.get("anomalies")
        finished = _str(snap.get("finished"))
        if not isinstance(agents, list) or not isinstance(anomalies, list):
            raise TypeError("snapshot: agents and anomalies must be lists")
        run._last_seq = _int(snap.get("last_seq")) or 0
        run._halted = snap.get("halted") is True
        run._halted_by = _str(snap.get("halted_by"))
        run._halt_reason = _str(snap.get("halt_reason"))
        run._stopping = snap.get("stopping") is True
        run._finished = None if finished is None else RunOutcome(finished)
        run._anomalies = [a for a in anomalies if isinstance(a, str)]
        for obj in agents:
            run._put(_record_from_json(obj))
        return run

    _FOLDS: ClassVar[dict[EventKind, Callable[[RunState, Event], None]]] = {
        EventKind.RUN_STARTED: _apply_run,
        EventKind.RUN_HALTED: _apply_run,
        EventKind.RUN_STOPPING: _apply_run,
        EventKind.RUN_FINISHED: _apply_finished,
        EventKind.AGENT_STATE: _apply_state,
        EventKind.AGENT_SPAWN: _apply_spawn,
        EventKind.AGENT_SPAWNED: _apply_spawned,
        EventKind.AGENT_EXIT: _apply_exit,
        EventKind.AGENT_ADDED: _apply_added,
        EventKind.AGENT_RECOVERED: _apply_recovered,
    }


def _record_from_json(obj: JSON) -> AgentRecord:
    if not isinstance(obj, dict):
        raise TypeError(f"snapshot: agent entry is not an object: {obj!r}")
    name, state, source = _str(obj.get("name")), _agent_state(obj.get("state")), _str(obj.get("source"))
    if name is None or state is None:
        raise ValueError(f"snapshot: agent entry without name or state: {obj!r}")
    return AgentRecord(
        name=name,
        state=state,
        attempts=_int(obj.get("attempts")) or 0,
        ever_ran=obj.get("ever_ran") is True,
        exit_code=_int(obj.get("exit_code")),
        signal=_int(obj.get("signal")),
        started_at=_float(obj.get("started_at")),
        ended_at=_float(obj.get("ended_at")),
        retry_at=_float(obj.get("retry_at")),
        window_id=_str(obj.get("window_id")),
        pane_id=_str(obj.get("pane_id")),
        pid=_int(obj.get("pid")),
        last_source=None if source is None else Source(source),
        reason=_str(obj.get("reason")),
        restart_base=_int(obj.get("restart_base")) or 0,
        awaiting=_str(obj.get("awaiting")),
    )
