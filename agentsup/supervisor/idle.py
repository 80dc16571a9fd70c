"""The engine's silence watch: an agent quiet for ``idle_after`` becomes ``idle``, confirmed by a second
look; output brings it back to ``running``. The last-trusted signal (ARCHITECTURE §5), so only a fallback.

Parts of the engine, split out by concern; they share its state.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from agentsup.supervisor import messages as m
from agentsup.supervisor.states import AgentState, Source

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

S = AgentState
CONFIRM_FRACTION = 0.25  # the second look comes this fraction of idle_after after the first
MIN_CONFIRM = 0.1


def arm(engine: Engine, agent: str, attempt: int) -> None:
    """Start watching ``agent`` for silence from now (it started, or its output resumed)."""
    idle_after = engine.plan.agents[agent].idle_after
    if idle_after is None:
        return
    stamp = engine.clock()
    engine.last_output[agent] = stamp
    engine.loop.call_later(idle_after, engine.post, m.IdleCheck(agent, attempt, stamp, confirm=False))


async def heard(engine: Engine, agent: str, attempt: int) -> None:
    """``agent`` printed something: note it, and an idle agent is running again."""
    if engine.plan.agents[agent].idle_after is None:
        return
    was_idle = engine.state.agents[agent].state is S.IDLE
    engine.last_output[agent] = engine.clock()
    if was_idle:
        await engine.transition(agent, S.RUNNING, Source.OUTPUT, reason="output resumed")
        arm(engine, agent, attempt)


async def check(engine: Engine, msg: m.IdleCheck) -> None:
    rec = engine.state.agents.get(msg.agent)
    idle_after = engine.plan.agents[msg.agent].idle_after
    if rec is None or idle_after is None or rec.attempts != msg.attempt or rec.state is not S.RUNNING:
        return
    last = engine.last_output.get(msg.agent, msg.stamp)
    if last != msg.stamp:  # it spoke since: look again idle_after after that
        delay = max(0.0, last + idle_after - engine.clock())
        engine.loop.call_later(delay, engine.post, m.IdleCheck(msg.agent, msg.attempt, last, confirm=False))
    elif not msg.confirm:
        delay = max(MIN_CONFIRM, idle_after * CONFIRM_FRACTION)
        engine.loop.call_later(delay, engine.post, m.IdleCheck(msg.agent, msg.attempt, last, confirm=True))
    else:
        quiet = engine.clock() - last
        await engine.transition(msg.agent, S.IDLE, Source.SILENCE, reason=f"no output for {quiet:.1f}s")
