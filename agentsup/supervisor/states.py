"""Agent states, the one transition table, and the one function that checks a change of state."""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class AgentState(StrEnum):
    PENDING = "pending"  # upstreams not done yet
    WAITING = "waiting"  # ready to start, held back by the parallel cap or a paused run
    STARTING = "starting"  # spawn intent logged, pane being created
    RUNNING = "running"
    IDLE = "idle"  # running, quiet
    NEEDS_INPUT = "needs_input"  # running, asking the user something
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # final: no attempts left
    RETRYING = "retrying"  # an attempt failed; the next one starts after the backoff
    RATE_LIMITED = "rate_limited"  # its CLI's provider refused for now: parked, started again at the reset
    SKIPPED = "skipped"  # will never run: an upstream outcome ruled it out, or the run halted
    STOPPED = "stopped"  # stopped by the user or the run's stop
    LOST = "lost"  # its pane vanished (tmux server or window killed) without an exit record


class Source(StrEnum):
    """The signal that decided a transition (ARCHITECTURE §5), recorded with every change."""

    SCHEDULER = "scheduler"
    EXIT_FILE = "exit_file"
    PANE_STATUS = "pane_status"  # tmux's pane_dead_status, when the exit file is missing
    DONE_FILE = "done_file"
    PATTERN = "pattern"
    TIMEOUT = "timeout"
    USER = "user"
    BACKEND = "backend"  # the backend failed to spawn, or the reconcile sweep found the pane gone
    ENGINE = "engine"
    SILENCE = "silence"  # no output for idle_after, seen twice
    OUTPUT = "output"  # output resumed after silence
    HOOK = "hook"  # the agent CLI's own hook (agentsup hook)
    SCREEN = "screen"  # the agent CLI's screen, read by its preset
    VERDICT = "verdict"  # a one-shot CLI's output, judged by its preset (more than its exit code)


ACTIVE: frozenset[AgentState] = frozenset(
    {AgentState.STARTING, AgentState.RUNNING, AgentState.IDLE, AgentState.NEEDS_INPUT}
)
"""States that hold a slot of the parallel cap."""

TERMINAL: frozenset[AgentState] = frozenset(
    {AgentState.SUCCEEDED, AgentState.FAILED, AgentState.SKIPPED, AgentState.STOPPED, AgentState.LOST}
)
"""States an agent stays in unless the user restarts it (LOST may also be retried by policy)."""

_S = AgentState
_RESTARTABLE = frozenset({_S.WAITING, _S.STOPPED})

TRANSITIONS: Mapping[AgentState, frozenset[AgentState]] = MappingProxyType(
    {
        _S.PENDING: frozenset({_S.WAITING, _S.STARTING, _S.SKIPPED, _S.STOPPED}),
        _S.WAITING: frozenset({_S.STARTING, _S.SKIPPED, _S.STOPPED}),
        _S.STARTING: frozenset({_S.RUNNING, _S.RETRYING, _S.FAILED, _S.STOPPED, _S.LOST}),
        _S.RUNNING: frozenset(
            {
                _S.IDLE,
                _S.NEEDS_INPUT,
                _S.SUCCEEDED,
                _S.RETRYING,
                _S.FAILED,
                _S.STOPPED,
                _S.LOST,
                _S.RATE_LIMITED,
            }
        ),
        _S.IDLE: frozenset(
            {
                _S.RUNNING,
                _S.NEEDS_INPUT,
                _S.SUCCEEDED,
                _S.RETRYING,
                _S.FAILED,
                _S.STOPPED,
                _S.LOST,
                _S.RATE_LIMITED,
            }
        ),
        _S.NEEDS_INPUT: frozenset(
            {_S.RUNNING, _S.IDLE, _S.SUCCEEDED, _S.RETRYING, _S.FAILED, _S.STOPPED, _S.LOST, _S.RATE_LIMITED}
        ),
        # Parked until ``retry_at``; the attempt does not count against ``retries``.
        _S.RATE_LIMITED: frozenset({_S.STARTING, _S.SKIPPED, _S.STOPPED}),
        # RETRYING -> FAILED: the recovery agent it waited for failed.
        _S.RETRYING: frozenset({_S.STARTING, _S.FAILED, _S.SKIPPED, _S.STOPPED}),
        _S.LOST: frozenset({_S.RETRYING}) | _RESTARTABLE,
        _S.SUCCEEDED: _RESTARTABLE,
        _S.FAILED: _RESTARTABLE,
        _S.SKIPPED: _RESTARTABLE,
        _S.STOPPED: frozenset({_S.WAITING}),
    }
)


class IllegalTransitionError(Exception):
    def __init__(self, agent: str, current: AgentState, target: AgentState) -> None:
        self.agent, self.current, self.target = agent, current, target
        super().__init__(f"agent {agent!r}: illegal transition {current} -> {target}")


def check_transition(agent: str, current: AgentState, target: AgentState) -> AgentState:
    """Return ``target`` if ``current -> target`` is in the table, else raise IllegalTransitionError."""
    if target not in TRANSITIONS[current]:
        raise IllegalTransitionError(agent, current, target)
    return target
