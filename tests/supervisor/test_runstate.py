"""The run state as a fold over the event log."""

from __future__ import annotations

import dataclasses

import pytest

from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.runstate import AgentRecord, RunOutcome, RunState
from agentsup.supervisor.states import AgentState, Source
from tests.supervisor.planbuild import EventLog

K = EventKind
S = AgentState


def realistic_log() -> EventLog:
    """a succeeds; b fails, retries once and fails again (halting the run); c is skipped."""
    log = EventLog(t0=1000.0)
    log.add(K.RUN_STARTED, None, agents=["a", "b", "c"])  # 1001
    log.add(K.AGENT_SPAWN, "a", Source.SCHEDULER, attempt=1)  # 1002
    log.state("a", S.PENDING, S.STARTING, 1)  # 1003
    log.add(K.AGENT_SPAWNED, "a", Source.BACKEND, attempt=1, window_id="@1", pane_id="%1", pid=100)
    log.state("a", S.STARTING, S.RUNNING, 1, Source.ENGINE)  # 1005
    log.add(K.AGENT_EXIT, "a", Source.EXIT_FILE, attempt=1, code=0, signal=None, started_at=1004.5,
            ended_at=1005.75)  # fmt: skip
    log.state("a", S.RUNNING, S.SUCCEEDED, 1, Source.EXIT_FILE, exit_code=0)  # 1007
    log.add(K.AGENT_SPAWN, "b", Source.SCHEDULER, attempt=1)  # 1008
    log.state("b", S.PENDING, S.STARTING, 1)
    log.add(K.AGENT_SPAWNED, "b", Source.BACKEND, attempt=1, window_id="@2", pane_id="%2", pid=200)
    log.state("b", S.STARTING, S.RUNNING, 1, Source.ENGINE)  # 1011
    log.add(K.AGENT_EXIT, "b", Source.EXIT_FILE, attempt=1, code=3, signal=None, started_at=1010.5,
            ended_at=1011.5)  # fmt: skip
    log.state("b", S.RUNNING, S.RETRYING, 1, Source.EXIT_FILE, exit_code=3, retry_at=1020.0,
              reason="exit code 3, retrying")  # fmt: skip  # 1013
    log.add(K.AGENT_SPAWN, "b", Source.SCHEDULER, attempt=2)  # 1014
    log.state("b", S.RETRYING, S.STARTING, 2)
    log.add(K.AGENT_SPAWNED, "b", Source.BACKEND, attempt=2, window_id="@3", pane_id="%3", pid=300)
    log.state("b", S.STARTING, S.RUNNING, 2, Source.ENGINE)  # 1017
    log.state("b", S.RUNNING, S.IDLE, 2, Source.PATTERN)  # 1018
    log.add(K.AGENT_EXIT, "b", Source.EXIT_FILE, attempt=2, code=137, signal=9, started_at=1016.5,
            ended_at=1018.5)  # fmt: skip
    log.state("b", S.IDLE, S.FAILED, 2, Source.EXIT_FILE, exit_code=137, signal=9,
              reason="killed by signal 9")  # fmt: skip  # 1020
    log.add(K.RUN_HALTED, None, agent="b", reason="b failed")
    log.state("c", S.PENDING, S.SKIPPED, 0, reason="run halted: b failed")  # 1022
    log.add(K.RUN_FINISHED, None, state="failed")
    return log


def agent_rows(run: RunState) -> list[dict[str, JSON]]:
    rows = run.status_json("r")["agents"]
    assert isinstance(rows, list)
    return [r for r in rows if isinstance(r, dict)]


EXPECTED_STATUS: dict[str, JSON] = {
    "run": "r1",
    "state": "failed",
    "agents": [
        {
            "name": "a", "state": "succeeded", "exit_code": 0, "attempts": 1,
            "started_at": 1004.5, "ended_at": 1005.75, "signal": None, "reason": None,
            "source": "exit_file", "retry_at": None, "ever_ran": True,
            "window_id": "@1", "pane_id": "%1", "pid": 100, "restart_base": 0, "awaiting": None,
        },
        {
            "name": "b", "state": "failed", "exit_code": 137, "attempts": 2,
            "started_at": 1016.5, "ended_at": 1018.5, "signal": 9, "reason": "killed by signal 9",
            "source": "exit_file", "retry_at": None, "ever_ran": True,
            "window_id": "@3", "pane_id": "%3", "pid": 300, "restart_base": 0, "awaiting": None,
        },
        {
            "name": "c", "state": "skipped", "exit_code": None, "attempts": 0,
            "started_at": None, "ended_at": None, "signal": None, "reason": "run halted: b failed",
            "source": "scheduler", "retry_at": None, "ever_ran": False,
            "window_id": None, "pane_id": None, "pid": None, "restart_base": 0, "awaiting": None,
        },
    ],
}  # fmt: skip


def test_fold_realistic_run() -> None:
    log = realistic_log()
    run = RunState.fold(["a", "b", "c"], log.events)
    assert run.status_json("r1") == EXPECTED_STATUS
    assert list(agent_rows(run)[0]) == [
        "name", "state", "exit_code", "attempts", "started_at", "ended_at",
        "signal", "reason", "source", "retry_at", "ever_ran", "window_id", "pane_id", "pid",
        "restart_base", "awaiting",
    ]  # fmt: skip
    assert run.halted
    assert run.halted_by == "b"
    assert run.halt_reason == "b failed"
    assert not run.stopping
    assert run.finished is RunOutcome.FAILED
    assert run.last_seq == len(log.events) == 23
    assert run.anomalies == ()
    assert run.agent("b").last_source is Source.EXIT_FILE


def test_state_mid_retry() -> None:
    log = realistic_log()
    run = RunState.fold(["a", "b", "c"], log.events[:13])
    b = run.agent("b")
    assert b == AgentRecord(
        name="b", state=S.RETRYING, attempts=1, ever_ran=True, exit_code=3, signal=None,
        started_at=1010.5, ended_at=1011.5, retry_at=1020.0, window_id="@2", pane_id="%2", pid=200,
        last_source=Source.EXIT_FILE, reason="exit code 3, retrying",
    )  # fmt: skip
    assert run.status_json("r1")["state"] == "running"
    assert run.finished is None
    assert not run.halted
    # The next attempt's spawn intent clears the previous attempt's per-attempt fields.
    run.apply(log.events[13])
    b = run.agent("b")
    assert (b.attempts, b.state, b.exit_code, b.started_at, b.ended_at, b.retry_at, b.pane_id) == (
        2, S.RETRYING, None, None, None, None, None,
    )  # fmt: skip
    assert b.ever_ran


def test_state_events_supply_times_without_exit_record() -> None:
    log = EventLog(t0=0.0)
    log.add(K.AGENT_SPAWN, "a", attempt=1)
    log.state("a", S.PENDING, S.STARTING, 1)
    log.state("a", S.STARTING, S.RUNNING, 1)  # ts 3
    log.state("a", S.RUNNING, S.IDLE, 1)
    log.state("a", S.IDLE, S.RUNNING, 1)  # back to running: started_at stays
    log.state("a", S.RUNNING, S.LOST, 1, Source.BACKEND, reason="pane vanished")  # ts 6
    log.state("a", S.LOST, S.RETRYING, 1, Source.ENGINE)  # ts 7: not active before, ended_at stays
    a = RunState.fold(["a"], log.events).agent("a")
    assert (a.started_at, a.ended_at, a.exit_code, a.state, a.reason) == (3.0, 6.0, None, S.RETRYING, None)
    assert a.retry_at is None


def test_starting_failure_has_end_but_no_start() -> None:
    log = EventLog(t0=0.0)
    log.add(K.AGENT_SPAWN, "a", attempt=1)
    log.state("a", S.PENDING, S.STARTING, 1)
    log.state("a", S.STARTING, S.FAILED, 1, Source.BACKEND, reason="spawn failed")
    a = RunState.fold(["a"], log.events).agent("a")
    assert (a.started_at, a.ended_at, a.ever_ran, a.attempts) == (None, 3.0, False, 1)


def test_fold_equals_applying_one_by_one() -> None:
    log = realistic_log()
    run = RunState.for_agents(["a", "b", "c"])
    for i, event in enumerate(log.events, start=1):
        run.apply(event)
        folded = RunState.fold(["a", "b", "c"], log.events[:i])
        assert run.snapshot() == folded.snapshot()
        assert run.status_json("x") == folded.status_json("x")
        assert run.last_seq == i


def test_states_follow_every_record_through_a_run_and_a_snapshot() -> None:
    log = realistic_log()
    for cut in range(len(log.events) + 1):
        for run in (
            RunState.fold(["a", "b", "c"], log.events[:cut]),
            RunState.from_snapshot(RunState.fold(["a", "b", "c"], log.events[:cut]).snapshot()),
        ):
            states = run.states()
            assert states == {name: rec.state for name, rec in run.agents.items()}
            assert list(states) == list(run.agents)
            states["a"] = S.LOST  # a copy: the scheduler projects its decision onto it
            assert run.agent("a").state is not S.LOST


def test_replayed_events_are_ignored() -> None:
    log = realistic_log()
    run = RunState.fold(["a", "b", "c"], log.events[:15])
    before = run.snapshot()
    for event in log.events[:15]:
        run.apply(event)
    assert run.snapshot() == before
    for event in log.events[15:]:
        run.apply(event)
    assert run.status_json("r1") == EXPECTED_STATUS


def test_snapshot_round_trip_then_continue() -> None:
    log = realistic_log()
    for cut in (0, 5, 13, 20, 23):
        head = RunState.fold(["a", "b", "c"], log.events[:cut])
        restored = RunState.from_snapshot(head.snapshot())
        assert restored.snapshot() == head.snapshot()
        for event in log.events[cut:]:
            restored.apply(event)
        assert restored.status_json("r1") == EXPECTED_STATUS
        assert restored.snapshot() == RunState.fold(["a", "b", "c"], log.events).snapshot()


def test_unknown_agents_get_records() -> None:
    log = EventLog()
    log.add(K.AGENT_SPAWN, "worker-1", attempt=1)
    log.state("worker-2", S.PENDING, S.STARTING, 1)
    log.add(K.RUN_STARTED, None, agents=["a", "worker-3"])
    run = RunState.fold(["a"], log.events)
    assert list(run.agents) == ["a", "worker-1", "worker-2", "worker-3"]
    assert run.agent("worker-1").attempts == 1
    assert run.agent("worker-1").state is S.PENDING
    assert run.agent("worker-2").state is S.STARTING
    assert run.agent("worker-3") == AgentRecord("worker-3")
    assert [a["name"] for a in agent_rows(run)] == list(run.agents)


def test_illegal_transition_is_applied_and_recorded() -> None:
    log = EventLog()
    log.state("a", S.PENDING, S.SUCCEEDED, 1)
    log.state("a", S.RUNNING, S.FAILED, 1)  # "from" disagrees, and succeeded -> failed is illegal
    log.state("a", S.FAILED, S.WAITING, 1)  # legal again
    run = RunState.fold(["a"], log.events)
    assert run.agent("a").state is S.WAITING
    assert len(run.anomalies) == 3
    assert "illegal transition pending -> succeeded" in run.anomalies[0]
    assert "says from running, the fold has succeeded" in run.anomalies[1]
    assert "illegal transition succeeded -> failed" in run.anomalies[2]
    assert run.last_seq == 3


def test_malformed_events_do_not_stop_the_fold() -> None:
    log = EventLog()
    log.add(K.AGENT_STATE, "a", to="exploded", attempt=1)
    log.add(K.AGENT_STATE, None, to="running")
    log.add(K.AGENT_SPAWN, "a", attempt="one")
    log.add(K.RUN_FINISHED, None, state="confused")
    log.add(K.AGENT_SPAWNED, "a", window_id=5, pane_id="%1", pid="x")
    log.add(K.ALERT, "a", severity="warning", rule="x", line="boom")
    log.add(K.AGENT_STATE, "a", "martian", to="starting", attempt=1)
    run = RunState.fold(["a"], log.events)
    a = run.agent("a")
    assert (a.state, a.attempts, a.window_id, a.pane_id, a.pid, a.last_source) == (
        S.STARTING, 1, None, "%1", None, None,
    )  # fmt: skip
    assert run.finished is None
    assert len(run.anomalies) == 3
    assert run.last_seq == 7


def test_stale_attempt_events_are_ignored() -> None:
    log = EventLog()
    log.add(K.AGENT_SPAWN, "a", attempt=1)
    log.add(K.AGENT_SPAWN, "a", attempt=2)
    log.add(K.AGENT_SPAWNED, "a", attempt=1, window_id="@1", pane_id="%1", pid=1)
    log.add(K.AGENT_EXIT, "a", attempt=1, code=1, signal=None, started_at=1.0, ended_at=2.0)
    log.add(K.AGENT_SPAWN, "a", attempt=1)
    run = RunState.fold(["a"], log.events)
    a = run.agent("a")
    assert (a.attempts, a.window_id, a.exit_code, a.started_at) == (2, None, None, None)
    assert len(run.anomalies) == 1
    log.add(K.AGENT_SPAWNED, "a", attempt=2, window_id="@2", pane_id="%2", pid=2)
    log.add(K.AGENT_EXIT, "a", attempt=2, code=5, signal=None, started_at=3.0, ended_at=4.0)
    for event in log.events[-2:]:
        run.apply(event)
    a = run.agent("a")
    assert (a.window_id, a.exit_code, a.started_at, a.ended_at) == ("@2", 5, 3.0, 4.0)


def test_spawn_without_attempt_counts_up() -> None:
    log = EventLog()
    log.add(K.AGENT_SPAWN, "a")
    log.add(K.AGENT_SPAWN, "a")
    assert RunState.fold(["a"], log.events).agent("a").attempts == 2


def test_stopping_and_stopped() -> None:
    log = EventLog()
    log.add(K.RUN_STOPPING, None, reason="user")
    run = RunState.fold(["a"], log.events)
    assert run.stopping
    assert run.status_json("r")["state"] == "running"
    log.add(K.RUN_FINISHED, None, state="stopped")
    run.apply(log.events[-1])
    assert run.finished is RunOutcome.STOPPED
    assert run.status_json("r") == {
        "run": "r",
        "state": "stopped",
        "agents": [AgentRecord("a").status_json()],
    }


def test_unsequenced_events_apply_without_moving_last_seq() -> None:
    run = RunState.for_agents(["a"])
    run.apply(Event(0, 1.0, K.AGENT_SPAWN, "a", "engine", {"attempt": 1}))
    run.apply(Event(0, 2.0, K.AGENT_SPAWN, "a", "engine", {"attempt": 2}))
    assert run.last_seq == 0
    assert run.agent("a").attempts == 2


def test_views_are_read_only() -> None:
    run = RunState.for_agents(["a"])
    with pytest.raises(TypeError):
        run.agents["b"] = AgentRecord("b")  # type: ignore[index]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.agent("a").state = S.RUNNING  # type: ignore[misc]


def test_active_count() -> None:
    log = EventLog()
    log.state("a", S.PENDING, S.STARTING, 1)
    log.state("b", S.PENDING, S.STARTING, 1)
    log.state("b", S.STARTING, S.RUNNING, 1)
    log.state("c", S.PENDING, S.WAITING, 0)
    assert RunState.fold(["a", "b", "c"], log.events).active_count() == 2


def test_from_snapshot_rejects_garbage() -> None:
    with pytest.raises(TypeError, match="lists"):
        RunState.from_snapshot({"agents": None, "anomalies": []})
    with pytest.raises(TypeError, match="not an object"):
        RunState.from_snapshot({"agents": [1], "anomalies": []})


def test_leaving_retrying_clears_retry_at() -> None:
    log = EventLog()
    log.add(K.AGENT_SPAWN, "a", attempt=1)
    log.state("a", S.PENDING, S.STARTING, 1)
    log.state("a", S.STARTING, S.RETRYING, 1, Source.BACKEND, retry_at=99.0)
    run = RunState.fold(["a"], log.events)
    assert run.agent("a").retry_at == 99.0
    log.state("a", S.RETRYING, S.STOPPED, 1, Source.USER, reason="stopped by user")
    run.apply(log.events[-1])
    assert (run.agent("a").state, run.agent("a").retry_at) == (S.STOPPED, None)


def test_user_restart_sets_restart_base() -> None:
    log = EventLog()
    for attempt in (1, 2):
        log.add(K.AGENT_SPAWN, "a", attempt=attempt)
        log.state("a", S.RETRYING if attempt == 2 else S.PENDING, S.STARTING, attempt)
        log.state("a", S.STARTING, S.RUNNING, attempt)
        log.state("a", S.RUNNING, S.RETRYING if attempt == 1 else S.FAILED, attempt, Source.EXIT_FILE)
    run = RunState.fold(["a"], log.events)
    assert (run.agent("a").attempts, run.agent("a").restart_base) == (2, 0)
    log.state("a", S.FAILED, S.WAITING, 2, Source.USER, reason="restarted by the user")
    log.add(K.AGENT_SPAWN, "a", attempt=3)
    log.state("a", S.WAITING, S.STARTING, 3)
    for event in log.events[-3:]:
        run.apply(event)
    a = run.agent("a")
    assert (a.state, a.attempts, a.restart_base, a.reason) == (S.STARTING, 3, 2, None)
    assert RunState.from_snapshot(run.snapshot()).agent("a") == a


def test_a_snapshot_keeps_an_agent_awaiting_its_recovery_agent() -> None:
    log = EventLog()
    log.add(K.AGENT_SPAWN, "a", Source.SCHEDULER, attempt=1)
    log.state("a", S.PENDING, S.STARTING, 1)
    log.state("a", S.STARTING, S.RUNNING, 1, Source.BACKEND)
    log.state("a", S.RUNNING, S.RETRYING, 1, Source.EXIT_FILE, awaiting="a/fix")
    run = RunState.fold(["a"], log.events)
    assert run.agent("a").awaiting == "a/fix"
    assert RunState.from_snapshot(run.snapshot()).agent("a").awaiting == "a/fix"
