"""The scheduler: a pure function of (plan, run state, now) to the actions the engine should take.

No I/O, no clock, no randomness: the engine passes ``now`` and records every random draw in the log, so a
replayed run schedules exactly as it did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from agentsup.plan.model import AgentSpec, Dependency, Plan, When
from agentsup.supervisor.runstate import AgentRecord, RunOutcome, RunState
from agentsup.supervisor.states import ACTIVE, TERMINAL, AgentState

__all__ = ["Action", "Decision", "Hold", "RunOutcome", "Skip", "Start", "retry_at", "schedule"]

_S = AgentState


@dataclass(frozen=True)
class Start:
    """Start the next attempt of ``agent`` (``attempt`` = attempts so far + 1)."""

    agent: str
    attempt: int


@dataclass(frozen=True)
class Hold:
    """Move ``agent`` from PENDING to WAITING: ready, but held back by the cap or a paused run."""

    agent: str


@dataclass(frozen=True)
class Skip:
    """Move ``agent`` to SKIPPED; ``reason`` names the upstream or the halt that ruled it out."""

    agent: str
    reason: str


Action = Start | Hold | Skip


@dataclass(frozen=True)
class Decision:
    actions: tuple[Action, ...]  # to apply in order
    wake_at: float | None  # earliest future retry time: call schedule again then, if nothing else happens
    outcome: RunOutcome | None  # the run's outcome once ``actions`` are applied; None while it goes on


_WAITING_ROOM = frozenset({_S.PENDING, _S.WAITING, _S.RETRYING, _S.RATE_LIMITED})
_DUE_LATER = frozenset({_S.RETRYING, _S.RATE_LIMITED})  # started again at retry_at
_UNSTARTED = frozenset({_S.PENDING, _S.WAITING})


def retry_at(spec: AgentSpec, attempts: int, now: float, rand: float) -> float | None:
    """When to start the next attempt after attempt number ``attempts`` failed; None if it was the last.

    ``rand`` is uniform in [0, 1) (the engine draws and records it).
    """
    if attempts < 1 + spec.retries:
        return now + spec.backoff.delay(attempts, rand)
    return None


def _dep_status(dep: Dependency, up: AgentRecord | None, up_state: AgentState) -> bool | str:
    """True when ``dep`` is met, a skip reason when it can never be met, False while it may still be."""
    if up is None:
        return False  # an agent not known yet (a dynamic worker) may still appear
    match dep.when:
        case When.SUCCEEDED:
            met = up_state is _S.SUCCEEDED
        case When.FAILED:
            met = up_state is _S.FAILED
        case When.FINISHED:
            met = up_state in TERMINAL
        case When.STARTED:
            met = up.ever_ran
    if met:
        return True
    if up_state not in TERMINAL:
        return False
    why = f'upstream "{dep.agent}" {up_state.value}'
    if dep.when is When.STARTED:
        return f"{why} without ever running"
    if dep.when is When.FAILED:
        return f"{why} (needed: failed)"
    return why


def _group_status(
    dep: Dependency,
    members: list[str],
    records: Mapping[str, AgentRecord],
    states: Mapping[str, AgentState],
) -> bool | str:
    """``m.workers``: the dependency holds for the master and every worker it spawned, transitively.

    Workers are added in the same transaction as their master's success, so once every known member
    meets the condition no further member can appear.
    """
    pending = False
    for member in members:
        status = _dep_status(
            Dependency(member, dep.when), records.get(member), states.get(member, _S.PENDING)
        )
        if isinstance(status, str):
            return status
        pending = pending or status is False
    return not pending


def _outcome(states: Mapping[str, AgentState], stopping: bool) -> RunOutcome | None:
    if not all(s in TERMINAL for s in states.values()):
        return None
    if stopping:
        return RunOutcome.STOPPED
    if any(s in (_S.FAILED, _S.LOST, _S.STOPPED) for s in states.values()):
        return RunOutcome.FAILED
    return RunOutcome.SUCCEEDED


class _Deps:
    """Dependency checks over one schedule() call, with each master's worker group computed once."""

    def __init__(self, plan: Plan, records: Mapping[str, AgentRecord]) -> None:
        self.plan = plan
        self.records = records
        self.groups: dict[str, list[str]] = {}

    def status(self, dep: Dependency, states: Mapping[str, AgentState]) -> bool | str:
        if dep.workers:
            if dep.agent not in self.groups:
                self.groups[dep.agent] = self.plan.worker_group(dep.agent)
            return _group_status(dep, self.groups[dep.agent], self.records, states)
        return _dep_status(dep, self.records.get(dep.agent), states.get(dep.agent, _S.PENDING))


def _cascade_skips(plan: Plan, deps: _Deps, states: dict[str, AgentState]) -> list[Skip]:
    """Skip every pending agent with a dependency that can no longer be met, repeating to a fixpoint.

    Updates ``states`` with the skips.
    """
    skips: list[Skip] = []
    changed = True
    while changed:
        changed = False
        for name, spec in plan.agents.items():
            if not spec.after or states[name] not in _UNSTARTED:
                continue
            for dep in spec.after:
                status = deps.status(dep, states)
                if isinstance(status, str):
                    skips.append(Skip(name, status))
                    states[name] = _S.SKIPPED
                    changed = True
                    break
    return skips


def _ready(spec: AgentSpec, deps: _Deps, states: Mapping[str, AgentState], now: float) -> bool:
    """Whether ``spec``'s agent may start now: all dependencies met, or its retry is due."""
    rec = deps.records[spec.name]
    state, due = states[spec.name], rec.retry_at
    if state in _DUE_LATER:
        return rec.awaiting is None and (due is None or due <= now)
    return state in (_S.PENDING, _S.WAITING) and all(deps.status(d, states) is True for d in spec.after)


def _pool_counts(plan: Plan, states: Mapping[str, AgentState]) -> dict[str, int]:
    """Active agents per pool (none without pools: an agent naming an undeclared pool never starts)."""
    counts: dict[str, int] = {}
    if not plan.run.pools:
        return counts
    for name, state in states.items():
        pool = plan.agents[name].pool if name in plan.agents else None
        if pool is not None and state in ACTIVE:
            counts[pool] = counts.get(pool, 0) + 1
    return counts


def _min_cap(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _halted(plan: Plan, run: RunState, states: dict[str, AgentState]) -> Decision:
    """A halted run's decision: skip every agent that has not started."""
    reason = "run halted" if run.halted_by is None else f"run halted: {run.halted_by} failed"
    skips: list[Action] = []
    for name in plan.agents:
        if states[name] in _WAITING_ROOM:
            skips.append(Skip(name, reason))
            states[name] = _S.SKIPPED
    return Decision(tuple(skips), None, _outcome(states, stopping=False))


def schedule(
    plan: Plan, run: RunState, now: float, *, paused: bool = False, cap: int | None = None
) -> Decision:
    """Decide what to start, hold or skip now, when to look again, and whether the run is over.

    ``paused`` starts nothing (the user paused, or memory is short); ``cap`` lowers the run's parallel
    cap for now (a throttle).
    """
    records: Mapping[str, AgentRecord] = run.agents
    # Projected states: the run's states with this decision's actions applied.
    states = run.states()
    if not plan.agents.keys() <= records.keys():  # agents no event has named yet
        unnamed = {name: AgentRecord(name) for name in plan.agents if name not in records}
        records = {**records, **unnamed}
        states.update((name, rec.state) for name, rec in unnamed.items())

    if run.stopping:
        return Decision((), None, _outcome(states, stopping=True))

    if run.halted:
        return _halted(plan, run, states)

    deps = _Deps(plan, records)
    actions: list[Action] = list(_cascade_skips(plan, deps, states))
    active = sum(1 for s in states.values() if s in ACTIVE)
    in_pool = _pool_counts(plan, states)
    limit = _min_cap(plan.run.max_parallel, cap)
    wake_at: float | None = None
    for name, spec in plan.agents.items():
        state = states[name]
        if state not in _WAITING_ROOM:
            continue
        if state is _S.WAITING and (paused or (limit is not None and active >= limit)):
            continue  # held already, and nothing may start: ready or not, no action
        rec = records[name]
        if not _ready(spec, deps, states, now):
            if state in _DUE_LATER and rec.retry_at is not None:
                wake_at = rec.retry_at if wake_at is None else min(wake_at, rec.retry_at)
            continue
        pool_free = spec.pool is None or in_pool.get(spec.pool, 0) < plan.run.pools.get(spec.pool, 0)
        if not paused and (limit is None or active < limit) and pool_free:
            actions.append(Start(name, rec.attempts + 1))
            states[name] = _S.STARTING
            active += 1
            if spec.pool is not None:
                in_pool[spec.pool] = in_pool.get(spec.pool, 0) + 1
        elif state is _S.PENDING:
            actions.append(Hold(name))
            states[name] = _S.WAITING

    return Decision(tuple(actions), wake_at, _outcome(states, stopping=False))
