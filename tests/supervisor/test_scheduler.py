"""The scheduler, driven by synthetic event logs (no tmux, no clock)."""

from __future__ import annotations

import random

import pytest

from agentsup.plan.model import Backoff, OnFailure, Plan, When
from agentsup.supervisor.events import JSON, EventKind
from agentsup.supervisor.runstate import RunState
from agentsup.supervisor.scheduler import (
    Decision,
    Hold,
    RunOutcome,
    Skip,
    Start,
    retry_at,
    schedule,
)
from agentsup.supervisor.states import ACTIVE, AgentState, Source
from tests.supervisor.planbuild import EventLog, make_plan

K = EventKind
S = AgentState


class Sim:
    """Plays the engine's part: turns decisions into events and folds them into a RunState."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.log = EventLog(t0=0.0)
        self.run = RunState.for_agents(plan.agents)

    def _emit(self, kind: EventKind, agent: str | None, source: str = Source.ENGINE, /, **data: JSON) -> None:
        self.run.apply(self.log.add(kind, agent, source, **data))

    def move(self, agent: str, to: AgentState, source: Source = Source.SCHEDULER, /, **extra: JSON) -> None:
        rec = self.run.agent(agent)
        self._emit(K.AGENT_STATE, agent, source, **{"from": rec.state.value, "to": to.value},
                   attempt=rec.attempts, **extra)  # fmt: skip

    def step(self, now: float = 0.0, *, paused: bool = False) -> Decision:
        """Schedule once and apply the decision; started agents go straight to RUNNING."""
        decision = schedule(self.plan, self.run, now, paused=paused)
        for action in decision.actions:
            match action:
                case Start(agent, attempt):
                    self._emit(K.AGENT_SPAWN, agent, Source.SCHEDULER, attempt=attempt)
                    self.move(agent, S.STARTING)
                    self.move(agent, S.RUNNING, Source.ENGINE)
                case Hold(agent):
                    self.move(agent, S.WAITING)
                case Skip(agent, reason):
                    self.move(agent, S.SKIPPED, Source.SCHEDULER, reason=reason)
        return decision

    def finish(self, agent: str, to: AgentState = S.SUCCEEDED, **extra: JSON) -> None:
        self.move(agent, to, Source.EXIT_FILE, **extra)

    def halt(self, agent: str) -> None:
        self._emit(K.RUN_HALTED, None, Source.ENGINE, agent=agent, reason=f"{agent} failed")

    def state(self, agent: str) -> AgentState:
        return self.run.agent(agent).state

    def active(self) -> list[str]:
        return [n for n, r in self.run.agents.items() if r.state in ACTIVE]


def starts(d: Decision) -> list[str]:
    return [a.agent for a in d.actions if isinstance(a, Start)]


# -- shapes ----------------------------------------------------------------------------------------------


def test_chain() -> None:
    sim = Sim(make_plan({"a": [], "b": ["a"], "c": ["b"]}))
    assert sim.step() == Decision((Start("a", 1),), None, None)
    assert sim.step() == Decision((), None, None)
    sim.finish("a")
    assert sim.step().actions == (Start("b", 1),)
    sim.finish("b")
    assert sim.step().actions == (Start("c", 1),)
    sim.finish("c")
    assert sim.step() == Decision((), None, RunOutcome.SUCCEEDED)


def test_diamond() -> None:
    sim = Sim(make_plan({"a": [], "b": ["a"], "c": ["a"], "d": ["b", "c"]}))
    assert starts(sim.step()) == ["a"]
    sim.finish("a")
    assert starts(sim.step()) == ["b", "c"]
    sim.finish("c")
    assert sim.step().actions == ()
    sim.finish("b")
    assert starts(sim.step()) == ["d"]
    sim.finish("d")
    assert sim.step().outcome is RunOutcome.SUCCEEDED


def test_first_decision_under_cap_starts_in_plan_order_and_holds_the_rest() -> None:
    sim = Sim(make_plan({f"w{i}": [] for i in range(1, 7)}, max_parallel=2))
    assert sim.step().actions == (
        Start("w1", 1),
        Start("w2", 1),
        Hold("w3"),
        Hold("w4"),
        Hold("w5"),
        Hold("w6"),
    )
    # Waiting agents are not held again.
    assert sim.step().actions == ()
    sim.finish("w2")
    assert sim.step().actions == (Start("w3", 1),)


@pytest.mark.parametrize("seed", range(5))
def test_fan_out_of_six_under_max_parallel_two(seed: int) -> None:
    rng = random.Random(seed)  # noqa: S311 -- seeded test data, not crypto
    sim = Sim(make_plan({**{f"w{i}": [] for i in range(1, 7)}, "join": [f"w{i}" for i in range(1, 7)]},
                        max_parallel=2))  # fmt: skip
    peak = 0
    for _ in range(50):
        decision = sim.step()
        peak = max(peak, len(sim.active()))
        assert len(sim.active()) <= 2
        if decision.outcome is not None:
            break
        running = sim.active()
        assert running, "nothing running and no outcome: the run is stuck"
        sim.finish(rng.choice(running))
    assert decision.outcome is RunOutcome.SUCCEEDED
    assert peak == 2
    assert all(r.state is S.SUCCEEDED and r.attempts == 1 for r in sim.run.agents.values())


def test_agents_outside_the_plan_take_slots() -> None:
    sim = Sim(make_plan({"a": [], "b": []}, max_parallel=1))
    sim.run.apply(sim.log.add(K.AGENT_STATE, "worker-1", Source.SCHEDULER, to="starting", attempt=1))
    assert sim.step().actions == (Hold("a"), Hold("b"))


# -- failure policy --------------------------------------------------------------------------------------


def failing_a(policy: OnFailure) -> Sim:
    sim = Sim(make_plan({"a": [], "b": ["a"], "c": []}, max_parallel=1, on_failure=policy))
    assert sim.step().actions == (Start("a", 1), Hold("c"))  # b is not ready: no hold
    sim.finish("a", S.FAILED, exit_code=1)
    return sim


def test_halt_skips_everything_waiting() -> None:
    sim = failing_a(OnFailure.HALT)
    assert sim.plan.failure_policy("a") is OnFailure.HALT
    sim.halt("a")
    d = sim.step()
    assert d == Decision(
        (Skip("b", "run halted: a failed"), Skip("c", "run halted: a failed")), None, RunOutcome.FAILED
    )


def test_halt_lets_running_agents_finish_and_skips_retries() -> None:
    sim = Sim(make_plan({"a": [], "r": [], "c": [], "p": ["a"]}))
    assert starts(sim.step()) == ["a", "r", "c"]
    sim.finish("r", S.RETRYING, retry_at=50.0)
    sim.finish("c", S.FAILED)
    sim.halt("c")
    d = sim.step(now=100.0)
    assert d.actions == (Skip("r", "run halted: c failed"), Skip("p", "run halted: c failed"))
    assert d.wake_at is None
    assert d.outcome is None
    assert sim.state("a") is S.RUNNING
    sim.finish("a")
    assert sim.step() == Decision((), None, RunOutcome.FAILED)


def test_halt_without_agent_name() -> None:
    sim = Sim(make_plan({"a": []}))
    sim.run.apply(sim.log.add(K.RUN_HALTED, None, Source.USER, reason="why not"))
    assert sim.step().actions == (Skip("a", "run halted"),)


def test_continue_skips_only_dependents() -> None:
    sim = failing_a(OnFailure.CONTINUE)
    d = sim.step()
    assert d.actions == (Skip("b", 'upstream "a" failed'), Start("c", 1))
    sim.finish("c")
    assert sim.step() == Decision((), None, RunOutcome.FAILED)


# -- dependency conditions -------------------------------------------------------------------------------

_RUNNING_PATH = (S.STARTING, S.RUNNING)


@pytest.mark.parametrize(
    ("when", "path", "expected"),
    [
        (When.SUCCEEDED, (), None),
        (When.SUCCEEDED, _RUNNING_PATH, None),
        (When.SUCCEEDED, (*_RUNNING_PATH, S.SUCCEEDED), "start"),
        (When.SUCCEEDED, (*_RUNNING_PATH, S.FAILED), 'upstream "u" failed'),
        (When.SUCCEEDED, (*_RUNNING_PATH, S.RETRYING), None),
        (When.SUCCEEDED, (*_RUNNING_PATH, S.LOST), 'upstream "u" lost'),
        (When.SUCCEEDED, (*_RUNNING_PATH, S.STOPPED), 'upstream "u" stopped'),
        (When.SUCCEEDED, (S.SKIPPED,), 'upstream "u" skipped'),
        (When.FAILED, (*_RUNNING_PATH, S.FAILED), "start"),
        (When.FAILED, (*_RUNNING_PATH, S.RETRYING), None),
        (When.FAILED, (*_RUNNING_PATH, S.SUCCEEDED), 'upstream "u" succeeded (needed: failed)'),
        (When.FAILED, (*_RUNNING_PATH, S.LOST), 'upstream "u" lost (needed: failed)'),
        (When.FAILED, (S.SKIPPED,), 'upstream "u" skipped (needed: failed)'),
        (When.FINISHED, _RUNNING_PATH, None),
        (When.FINISHED, (*_RUNNING_PATH, S.RETRYING), None),
        (When.FINISHED, (*_RUNNING_PATH, S.SUCCEEDED), "start"),
        (When.FINISHED, (*_RUNNING_PATH, S.FAILED), "start"),
        (When.FINISHED, (*_RUNNING_PATH, S.STOPPED), "start"),
        (When.FINISHED, (*_RUNNING_PATH, S.LOST), "start"),
        (When.FINISHED, (S.SKIPPED,), "start"),
        (When.STARTED, (), None),
        (When.STARTED, (S.STARTING,), None),
        (When.STARTED, _RUNNING_PATH, "start"),
        (When.STARTED, (*_RUNNING_PATH, S.IDLE), "start"),
        (When.STARTED, (*_RUNNING_PATH, S.FAILED), "start"),
        (When.STARTED, (S.STARTING, S.FAILED), 'upstream "u" failed without ever running'),
        (When.STARTED, (S.SKIPPED,), 'upstream "u" skipped without ever running'),
        (When.STARTED, (S.STOPPED,), 'upstream "u" stopped without ever running'),
    ],
)
def test_when(when: When, path: tuple[AgentState, ...], expected: str | None) -> None:
    """``expected``: "start", a skip reason, or None (keeps waiting)."""
    sim = Sim(make_plan({"u": [], "d": [("u", when)]}))
    for state in path:
        if state is S.STARTING:
            sim.run.apply(sim.log.add(K.AGENT_SPAWN, "u", Source.SCHEDULER, attempt=1))
        sim.move("u", state, Source.ENGINE, retry_at=1e9)
    d = schedule(sim.plan, sim.run, 0.0)
    mine = [a for a in d.actions if a.agent == "d"]
    if expected == "start":
        assert mine == [Start("d", 1)]
    elif expected is None:
        assert mine == []
    else:
        assert mine == [Skip("d", expected)]


def test_any_unmet_dependency_blocks() -> None:
    sim = Sim(make_plan({"a": [], "b": [], "c": ["a", ("b", When.FINISHED)]}))
    sim.step()
    sim.finish("b", S.FAILED)
    assert sim.step().actions == ()
    sim.finish("a")
    assert sim.step().actions == (Start("c", 1),)


def test_cascade_skips_to_a_fixpoint_in_one_decision() -> None:
    # Declared downstream-first, so one pass over the plan is not enough.
    plan = make_plan({"d": ["c"], "c": ["b"], "b": ["a"], "a": [], "e": [("c", When.FINISHED)], "f": []},
                     on_failure=OnFailure.CONTINUE)  # fmt: skip
    sim = Sim(plan)
    assert starts(sim.step()) == ["a", "f"]
    sim.finish("a", S.FAILED)
    d = sim.step()
    assert set(d.actions) == {
        Skip("b", 'upstream "a" failed'),
        Skip("c", 'upstream "b" skipped'),
        Skip("d", 'upstream "c" skipped'),
        Start("e", 1),
    }
    assert d.actions[-1] == Start("e", 1)
    assert d.outcome is None
    sim.finish("e")
    sim.finish("f")
    assert sim.step().outcome is RunOutcome.FAILED


def test_waiting_agent_is_skipped_when_its_upstream_fails_after_all() -> None:
    # b was ready and held (a had succeeded); the user then restarted a, which failed.
    sim = Sim(make_plan({"a": [], "b": ["a"]}, on_failure=OnFailure.CONTINUE))
    sim.step()
    sim.finish("a")
    sim.move("b", S.WAITING)
    for state in (S.WAITING, S.STARTING, S.RUNNING, S.FAILED):
        sim.move("a", state, Source.USER)
    assert sim.step().actions == (Skip("b", 'upstream "a" failed'),)


def test_cascade_completes_the_run_in_the_same_decision() -> None:
    sim = Sim(make_plan({"a": [], "b": ["a"], "c": ["b"]}, on_failure=OnFailure.CONTINUE))
    sim.step()
    sim.finish("a", S.FAILED)
    d = sim.step()
    assert d == Decision(
        (Skip("b", 'upstream "a" failed'), Skip("c", 'upstream "b" skipped')), None, RunOutcome.FAILED
    )


# -- retries ---------------------------------------------------------------------------------------------

BACKOFF = Backoff(initial=1.0, factor=2.0, max=5.0, jitter=0.1)


@pytest.mark.parametrize(
    ("attempts", "rand", "expected"),
    [
        (1, 0.5, 101.0),
        (1, 0.0, 100.9),
        (1, 0.999999, 101.1),
        (2, 0.5, 102.0),
        (3, 0.5, 104.0),
        (4, 0.5, 105.0),  # capped: 8 > max
        (4, 0.0, 104.5),
        (9, 0.999999, 105.5),
        (10, 0.5, 105.0),
        (11, 0.5, None),  # 1 + 10 retries used up
        (12, 0.5, None),
    ],
)
def test_retry_at(attempts: int, rand: float, expected: float | None) -> None:
    spec = make_plan({"a": []}, retries={"a": 10}, backoff=BACKOFF).agents["a"]
    got = retry_at(spec, attempts, 100.0, rand)
    if expected is None:
        assert got is None
    else:
        assert got == pytest.approx(expected, abs=1e-5)


def test_retry_at_without_retries_is_final() -> None:
    spec = make_plan({"a": []}).agents["a"]
    assert retry_at(spec, 1, 100.0, 0.5) is None


@pytest.mark.parametrize("attempts", [1, 2, 3, 4, 5, 6])
def test_retry_at_jitter_stays_in_bounds(attempts: int) -> None:
    spec = make_plan({"a": []}, retries={"a": 6}, backoff=BACKOFF).agents["a"]
    base = min(5.0, 2.0 ** (attempts - 1))
    rng = random.Random(attempts)  # noqa: S311 -- seeded test data, not crypto
    for rand in [0.0, 0.999999, *(rng.random() for _ in range(200))]:
        got = retry_at(spec, attempts, 0.0, rand)
        assert got is not None
        assert base * 0.9 - 1e-9 <= got <= base * 1.1 + 1e-9


def test_retrying_agent_starts_when_due_and_sets_wake_at() -> None:
    sim = Sim(make_plan({"a": [], "b": [], "c": []}, retries={"a": 2, "b": 2}))
    assert starts(sim.step(now=0.0)) == ["a", "b", "c"]
    sim.finish("a", S.RETRYING, retry_at=50.0)
    sim.finish("b", S.RETRYING, retry_at=30.0)
    assert sim.step(now=10.0) == Decision((), 30.0, None)
    assert sim.step(now=30.0) == Decision((Start("b", 2),), 50.0, None)
    assert sim.step(now=49.9) == Decision((), 50.0, None)
    assert sim.step(now=50.0) == Decision((Start("a", 2),), None, None)
    sim.finish("a")
    sim.finish("b")
    sim.finish("c")
    assert sim.step().outcome is RunOutcome.SUCCEEDED
    assert [sim.run.agent(n).attempts for n in "abc"] == [2, 2, 1]


def test_retrying_agent_without_time_is_due() -> None:
    sim = Sim(make_plan({"a": []}, retries={"a": 1}))
    sim.step()
    sim.finish("a", S.LOST)
    sim.move("a", S.RETRYING, Source.ENGINE)
    assert sim.step() == Decision((Start("a", 2),), None, None)


def test_due_retry_waits_for_a_slot_without_hold() -> None:
    sim = Sim(make_plan({"a": [], "b": []}, max_parallel=1, retries={"a": 1}))
    assert sim.step().actions == (Start("a", 1), Hold("b"))
    sim.finish("a", S.RETRYING, retry_at=5.0)
    assert sim.step(now=1.0) == Decision((Start("b", 1),), 5.0, None)
    assert sim.step(now=6.0) == Decision((), None, None)
    sim.finish("b")
    assert sim.step(now=7.0).actions == (Start("a", 2),)


def test_retry_then_final_failure_outcome() -> None:
    sim = Sim(make_plan({"a": []}, retries={"a": 1}, on_failure=OnFailure.CONTINUE))
    sim.step()
    sim.finish("a", S.RETRYING, retry_at=1.0)
    assert starts(sim.step(now=1.0)) == ["a"]
    sim.finish("a", S.FAILED)
    assert sim.step(now=2.0) == Decision((), None, RunOutcome.FAILED)


# -- paused, stopping ------------------------------------------------------------------------------------


def test_paused_holds_and_starts_nothing() -> None:
    sim = Sim(make_plan({"a": [], "b": [], "r": [], "x": ["a"]}, retries={"r": 1}))
    assert starts(sim.step()) == ["a", "b", "r"]
    sim.finish("r", S.RETRYING, retry_at=5.0)
    sim.finish("a")
    assert sim.step(now=1.0, paused=True) == Decision((Hold("x"),), 5.0, None)
    assert sim.step(now=10.0, paused=True) == Decision((), None, None)
    assert sim.step(now=10.0).actions == (Start("r", 2), Start("x", 1))


def test_stopping_does_nothing_until_all_terminal() -> None:
    sim = Sim(make_plan({"a": [], "b": [], "c": ["a"]}, max_parallel=1, retries={"a": 1}))
    sim.step()
    sim.finish("a", S.RETRYING, retry_at=5.0)
    sim.run.apply(sim.log.add(K.RUN_STOPPING, None, Source.USER, reason="user"))
    assert sim.step(now=100.0) == Decision((), None, None)
    for name in "abc":
        sim.move(name, S.STOPPED, Source.USER)
    assert sim.step(now=100.0) == Decision((), None, RunOutcome.STOPPED)


def test_stopping_wins_over_halt() -> None:
    sim = Sim(make_plan({"a": [], "b": []}))
    sim.halt("a")
    sim.run.apply(sim.log.add(K.RUN_STOPPING, None, Source.USER))
    assert sim.step() == Decision((), None, None)


# -- outcomes and purity ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("finals", "outcome"),
    [
        ((S.SUCCEEDED, S.SUCCEEDED), RunOutcome.SUCCEEDED),
        ((S.SUCCEEDED, S.FAILED), RunOutcome.FAILED),
        ((S.LOST, S.SUCCEEDED), RunOutcome.FAILED),
        ((S.SUCCEEDED, S.STOPPED), RunOutcome.FAILED),  # a stopped agent did not do its work
        ((S.SUCCEEDED, S.IDLE), None),
        ((S.SUCCEEDED, S.RETRYING), None),
    ],
)
def test_outcome(finals: tuple[AgentState, AgentState], outcome: RunOutcome | None) -> None:
    sim = Sim(make_plan({"a": [], "b": []}, on_failure=OnFailure.CONTINUE))
    sim.step()
    for name, state in zip("ab", finals, strict=True):
        sim.finish(name, state, retry_at=1e9)
    assert sim.step().outcome is outcome


def test_skipped_agents_do_not_fail_the_run() -> None:
    sim = Sim(make_plan({"a": [], "b": [("a", When.FAILED)]}))
    sim.step()
    sim.finish("a")
    assert sim.step() == Decision((Skip("b", 'upstream "a" succeeded (needed: failed)'),), None,
                                  RunOutcome.SUCCEEDED)  # fmt: skip


def test_empty_plan_succeeds_at_once() -> None:
    assert schedule(make_plan({}), RunState.for_agents([]), 0.0) == Decision((), None, RunOutcome.SUCCEEDED)


def test_schedule_is_pure() -> None:
    sim = Sim(make_plan({"a": [], "b": ["a"], "c": []}, max_parallel=1, retries={"a": 1}))
    sim.step()
    sim.finish("a", S.RETRYING, retry_at=3.0)
    before = sim.run.snapshot()
    first = schedule(sim.plan, sim.run, 1.0)
    assert schedule(sim.plan, sim.run, 1.0) == first
    assert sim.run.snapshot() == before
    assert first == Decision((Start("c", 1),), 3.0, None)


def test_plan_agents_missing_from_the_run_count_as_pending() -> None:
    plan = make_plan({"a": [], "b": ["a"]})
    assert schedule(plan, RunState.for_agents([]), 0.0).actions == (Start("a", 1),)


def test_a_rate_limited_agent_starts_again_at_its_reset_outside_its_retry_budget() -> None:
    sim = Sim(make_plan({"a": [], "b": ["a"]}))  # no retries at all
    assert starts(sim.step(now=0.0)) == ["a"]
    sim.move("a", S.RATE_LIMITED, Source.HOOK, retry_at=40.0)
    assert sim.run.agent("a").retry_at == 40.0
    assert sim.step(now=10.0) == Decision((), 40.0, None)  # parked, and so is its dependent
    assert sim.state("b") is S.PENDING
    assert sim.step(now=40.0).actions == (Start("a", 2),)
    rec = sim.run.agent("a")
    assert rec.attempts - rec.restart_base == 1  # the parked attempt is not counted
    assert retry_at(sim.plan.agents["a"], rec.attempts - rec.restart_base, 0.0, 0.5) is None
    sim.finish("a")
    assert starts(sim.step(now=41.0)) == ["b"]


def test_a_halted_run_skips_a_rate_limited_agent() -> None:
    sim = Sim(make_plan({"a": [], "b": []}))
    sim.step()
    sim.move("a", S.RATE_LIMITED, Source.SCREEN, retry_at=100.0)
    sim.finish("b", S.FAILED)
    sim.halt("b")
    decision = sim.step(now=1.0)
    assert decision.actions == (Skip("a", "run halted: b failed"),)
    assert decision.outcome is RunOutcome.FAILED
