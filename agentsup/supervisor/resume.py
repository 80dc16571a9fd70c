"""Taking over a run whose engine died: adopt its panes, read what happened while nobody watched, go on.

The log says what was decided; tmux and the run directory say what happened since. An agent the log has
as active is found by its window tags (``@agentsup_agent``/``@agentsup_attempt``); its exit, done and
output files are read as if just written, its output from just past the last alert the log holds, so no
alert is logged twice. A spawn whose intent was logged but whose window never appeared is issued again
for the same attempt; the wrapper's exclusive ``started`` marker makes sure the agent runs at most once
even if the first spawn was still in flight. Events logged but never offered to the handlers are offered
now; the fired-handler record (rebuilt from the log) keeps each firing to once.

Parts of the engine, split out by concern; they share its state.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from agentsup.supervisor import clidriver, idle, sweep
from agentsup.supervisor import messages as m
from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.states import ACTIVE, AgentState, Source

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

log = logging.getLogger("agentsup.engine")
S = AgentState


@dataclass
class Takeover:
    """What the resumed engine found, logged as ``run.resumed``."""

    adopted: list[str] = field(default_factory=list)  # a live or dead pane of the attempt exists
    respawned: list[str] = field(default_factory=list)  # logged as starting, no pane: spawned again
    exited: list[str] = field(default_factory=list)  # no pane, but its exit record is on disk
    gone: list[str] = field(default_factory=list)  # no pane, no exit record: the sweep calls it lost

    def to_json(self) -> dict[str, JSON]:
        return {
            "adopted": list[JSON](self.adopted),
            "respawned": list[JSON](self.respawned),
            "exited": list[JSON](self.exited),
            "gone": list[JSON](self.gone),
        }


def alert_offsets(events: list[Event]) -> dict[tuple[str, int], int]:
    """How far each attempt's output was read, as far as the logged alerts tell: the end of the last."""
    offsets: dict[tuple[str, int], int] = {}
    for ev in events:
        attempt, offset = ev.data.get("attempt"), ev.data.get("offset")
        if ev.agent is not None and isinstance(attempt, int) and isinstance(offset, int):
            key = (ev.agent, attempt)
            offsets[key] = max(offsets.get(key, 0), offset)
    return offsets


def stop_reasons(events: list[Event]) -> dict[str, str]:
    """Agents a user (or a handler) was stopping when the engine died: the reason their exit must get."""
    reasons: dict[str, str] = {}
    for ev in events:
        if ev.agent is None:
            continue
        if ev.kind is EventKind.AGENT_SPAWN:
            reasons.pop(ev.agent, None)  # a stop before this attempt is not about it
        elif ev.kind is EventKind.COMMAND and ev.data.get("command") in ("kill", "restart"):
            reasons.setdefault(ev.agent, "user" if ev.data.get("command") == "kill" else "restart")
    return reasons


async def take_over(engine: Engine) -> None:
    """Adopt what the dead engine left running; called once, before the engine's main loop."""
    history = await engine.in_db(engine.store.read)
    panes = await engine.in_io(lambda: engine.backend.list_panes(engine.meta.session))
    by_key = sweep.pane_index(panes)
    offsets = alert_offsets([ev for ev in history if ev.kind is EventKind.ALERT])
    reasons = stop_reasons(history)
    found = Takeover()
    for agent, rec in list(engine.state.agents.items()):
        if rec.state not in ACTIVE:
            continue
        attempt = rec.attempts
        engine.watch_attempt(agent, attempt, offsets.get((agent, attempt), 0))
        if agent in reasons:
            engine._stop_reason[agent] = reasons[agent]
        pane = by_key.get((agent, attempt))
        if rec.state is S.STARTING:
            if pane is not None:
                found.adopted.append(agent)
                await engine.handle_spawned(m.Spawned(agent, attempt, pane))
            elif await engine.in_io(engine.run.exit_file(agent, attempt).exists):
                found.exited.append(agent)
                await engine.transition(agent, S.RUNNING, Source.BACKEND, reason="adopted on resume")
                engine.check_files(agent, attempt)
            else:
                found.respawned.append(agent)
                engine.spawn(agent, attempt)
            continue
        (found.adopted if pane is not None else found.gone).append(agent)
        engine.arm_timeout(agent, attempt, rec.started_at)
        idle.arm(engine, agent, attempt)
        engine.check_files(agent, attempt)
        if pane is not None:
            await clidriver.on_running(engine, agent, attempt, resumed=True)
    await engine.record([(EventKind.RUN_RESUMED, None, Source.ENGINE.value, found.to_json())])
    log.info("resumed: %s", found.to_json())
    if engine.state.stopping:  # the run was being stopped: finish stopping it
        for agent in engine.active_agents():
            engine.stop_agent(agent, "user")
    if engine.plan.handlers:
        engine._unhandled[:0] = history  # offered again; the fired record keeps each firing to once
    if found.adopted or found.gone or found.exited:
        sweep.sweep_now(engine)
