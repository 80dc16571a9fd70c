"""The transition table, checked pair by pair against a table written out independently here."""

from __future__ import annotations

import itertools

import pytest

from agentsup.supervisor.states import (
    ACTIVE,
    TERMINAL,
    AgentState,
    IllegalTransitionError,
    check_transition,
)

# Every legal (from, to) pair, as literals; anything not listed must be refused.
EXPECTED: dict[str, set[str]] = {
    "pending": {"waiting", "starting", "skipped", "stopped"},
    "waiting": {"starting", "skipped", "stopped"},
    "starting": {"running", "retrying", "failed", "stopped", "lost"},
    "running": {"rate_limited", "idle", "needs_input", "succeeded", "retrying", "failed", "stopped", "lost"},
    "idle": {"rate_limited", "running", "needs_input", "succeeded", "retrying", "failed", "stopped", "lost"},
    "needs_input": {"rate_limited", "running", "idle", "succeeded", "retrying", "failed", "stopped", "lost"},
    "retrying": {"starting", "failed", "skipped", "stopped"},  # failed: its recovery agent failed
    "rate_limited": {"starting", "skipped", "stopped"},  # parked until its reset, then started again
    "lost": {"retrying", "waiting", "stopped"},
    "succeeded": {"waiting", "stopped"},
    "failed": {"waiting", "stopped"},
    "skipped": {"waiting", "stopped"},
    "stopped": {"waiting"},
}

ALL_STATES = [
    "pending", "waiting", "starting", "running", "idle", "needs_input",
    "succeeded", "failed", "retrying", "rate_limited", "skipped", "stopped", "lost",
]  # fmt: skip


def test_expected_table_covers_every_state() -> None:
    assert sorted(s.value for s in AgentState) == sorted(ALL_STATES)
    assert set(EXPECTED) == set(ALL_STATES)


@pytest.mark.parametrize(("current", "target"), list(itertools.product(ALL_STATES, ALL_STATES)))
def test_check_transition(current: str, target: str) -> None:
    cur, tgt = AgentState(current), AgentState(target)
    if target in EXPECTED[current]:
        assert check_transition("a", cur, tgt) is tgt
    else:
        with pytest.raises(IllegalTransitionError) as info:
            check_transition("a", cur, tgt)
        assert (info.value.agent, info.value.current, info.value.target) == ("a", cur, tgt)
        assert f"'a': illegal transition {current} -> {target}" in str(info.value)


def test_active_states() -> None:
    assert {s.value for s in ACTIVE} == {"starting", "running", "idle", "needs_input"}


def test_terminal_states() -> None:
    assert {s.value for s in TERMINAL} == {"succeeded", "failed", "skipped", "stopped", "lost"}


def test_active_and_terminal_are_disjoint() -> None:
    assert not ACTIVE & TERMINAL
