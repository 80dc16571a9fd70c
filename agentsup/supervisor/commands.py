"""Control commands a client may send to a live engine (restart, kill, send, stop, pause, resume, status)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from agentsup.sessions import BackendError
from agentsup.supervisor import clidriver, stopping, sweep
from agentsup.supervisor import messages as m
from agentsup.supervisor.events import JSON, EventKind
from agentsup.supervisor.states import ACTIVE, TERMINAL, AgentState, Source

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

log = logging.getLogger("agentsup.engine")
S = AgentState


class CommandError(Exception):
    """A control command cannot be carried out; the message goes back to the client."""


COMMANDS = ("status", "kill", "restart", "send", "approve", "stop", "pause", "resume", "emit")
EVENT_NAME_MAX = 200
MAX_SEND = 256 * 1024


def _agent(engine: Engine, request: Mapping[str, JSON]) -> str:
    agent = request.get("agent")
    if not isinstance(agent, str) or not agent:
        raise CommandError("this command needs an agent name ('agent')")
    if agent not in engine.state.agents:
        known = ", ".join(engine.state.agents)
        raise CommandError(f"no agent {agent!r} in this run (agents: {known})")
    return agent


def _command_event(
    command: str, agent: str | None, **data: JSON
) -> tuple[EventKind, str | None, str, dict[str, JSON]]:
    return (EventKind.COMMAND, agent, Source.USER.value, {"command": command, **data})


def external_event(
    name: str, data: JSON, via: str, file: str | None = None
) -> tuple[EventKind, str | None, str, dict[str, JSON]]:
    """An ``external`` event (``agentsup emit``, or a file dropped into the run's inbox: ``file`` is its
    identity, so a resumed engine does not log it again)."""
    payload: dict[str, JSON] = {"name": name, "data": data, "via": via}
    if file is not None:
        payload["file"] = file
    return (EventKind.EXTERNAL, None, Source.USER.value, payload)


async def reopen_dependents(engine: Engine, agent: str) -> None:
    """Agents skipped because ``agent`` did not succeed get another chance now that it runs again."""
    todo, seen = [agent], {agent}
    while todo:
        for dep in engine.plan.dependents(todo.pop()):
            if dep in seen:
                continue
            seen.add(dep)
            if engine.state.agents[dep].state is S.SKIPPED:
                await engine.transition(dep, S.WAITING, Source.USER, reason=f"upstream {agent!r} restarted")
                todo.append(dep)


async def _stop(engine: Engine, request: Mapping[str, JSON]) -> dict[str, JSON]:
    """Stop the run: nothing new starts, every agent still running is stopped (``reverse``: dependents
    before what they depend on, each layer gone before the next is signalled)."""
    why = request.get("reason")
    why = why if isinstance(why, str) and why else "stopped by the user"
    if not await engine.in_io(partial(engine.backend.has_session, engine.meta.session)):
        await sweep.session_gone(engine, why)  # nothing left to stop: the agents' panes went with it
        return {"ok": True}
    if engine.state.stopping:
        return {"ok": True, "already": True}
    reverse = request.get("reverse") is True
    log.info("stopping the run%s: %s", " in reverse dependency order" if reverse else "", why)
    extra: dict[str, JSON] = {"reverse": True} if reverse else {}
    await engine.record(
        [
            _command_event("stop", None, **extra),
            (EventKind.RUN_STOPPING, None, Source.USER.value, {"reason": why}),
        ]
    )
    for agent in engine.not_started():
        await engine.transition(agent, S.STOPPED, Source.USER, reason="run stopped before it started")
    for agent in engine.active_agents():
        engine._stop_reason.setdefault(agent, "user")  # a starting one is stopped once its pane exists
    try:
        listed = await engine.in_io(partial(engine.backend.list_panes, engine.meta.session))
    except BackendError as exc:
        log.warning("stop: tmux could not list the panes (%s); stopping the agents the log has running", exc)
        listed = [p for a in engine.active_agents() if (p := engine.pane_of(a)) is not None]
    panes = sweep.pane_index(listed)
    targets: dict[str, stopping.Target] = {}
    for agent, rec in engine.state.agents.items():
        pane = panes.get((agent, rec.attempts))
        if pane is None or pane.dead or rec.state is S.STARTING:  # a done agent may still run: stopped too
            continue
        targets[agent] = stopping.Target(
            agent, rec.attempts, pane, stopping.attempt_marker(engine.run, agent, rec.attempts)
        )
    order = stopping.stop_order(engine.plan, targets) if reverse else [sorted(targets)]
    layers = [[targets[a] for a in layer] for layer in order]

    def stopped(target: stopping.Target) -> None:
        engine.post(m.StopDone(target.agent, target.attempt))  # the sweep it triggers reads the exits

    leftovers = stopping.run_marker(engine.run)  # daemons left by agents that ended: one grace for all
    grace = engine.options.grace
    engine._background(partial(stopping.stop_layers, engine.backend, layers, grace, stopped, leftovers))
    return {"ok": True}


async def _approve(engine: Engine, agent: str, request: Mapping[str, JSON]) -> dict[str, JSON]:
    """Answer the permission dialog an agent CLI waits on: yes, or no with ``deny``."""
    yes = request.get("deny", False) is not True
    try:
        what = await clidriver.approve(engine, agent, yes)
    except ValueError as exc:
        raise CommandError(str(exc)) from None
    return {"ok": True, "done": what}


async def execute(engine: Engine, request: Mapping[str, JSON]) -> dict[str, JSON]:  # noqa: PLR0911, PLR0912
    cmd = request.get("cmd")
    if cmd == "status":
        return {"ok": True, "status": engine.state.status_json(engine.run.run_id)}
    if cmd in {"pause", "resume"}:
        engine.paused = cmd == "pause"
        await engine.record([_command_event(cmd, None)])
        return {"ok": True}
    if cmd == "stop":
        return await _stop(engine, request)
    if cmd == "emit":
        name, data = request.get("name"), request.get("data")
        if not isinstance(name, str) or not name or len(name) > EVENT_NAME_MAX:
            raise CommandError(
                f"'emit' needs 'name': a non-empty string of at most {EVENT_NAME_MAX} characters"
            )
        event = await engine.record([external_event(name, data, "control")])
        return {"ok": True, "seq": event[0].seq}
    if cmd not in COMMANDS:
        raise CommandError(f"unknown command {cmd!r}; known: subscribe, {', '.join(COMMANDS)}")
    agent = _agent(engine, request)
    state = engine.state.agents[agent].state
    if cmd == "kill":
        if state in TERMINAL:
            raise CommandError(f"agent {agent!r} is not running (it is {state.value})")
        await engine.record([_command_event("kill", agent)])
        if state in ACTIVE:
            engine.stop_agent(agent, "user")
        else:
            await engine.transition(agent, S.STOPPED, Source.USER, reason="stopped by the user before it ran")
        return {"ok": True}
    if cmd == "restart":
        if engine.state.stopping:
            raise CommandError("the run is stopping; nothing restarts")
        if state in ACTIVE:
            await engine.record([_command_event("restart", agent)])
            engine.stop_agent(agent, "restart")
            return {"ok": True}
        if state not in TERMINAL:
            raise CommandError(f"agent {agent!r} has not run yet (it is {state.value})")
        await engine.record([_command_event("restart", agent)])
        await engine.transition(agent, S.WAITING, Source.USER, reason="restarted by the user")
        await reopen_dependents(engine, agent)
        return {"ok": True}
    if cmd == "approve":
        return await _approve(engine, agent, request)
    # send
    text = request.get("text")
    if not isinstance(text, str) or "\0" in text or len(text) > MAX_SEND:
        raise CommandError(f"'send' needs 'text': a string without NUL, at most {MAX_SEND} bytes")
    pane = engine.pane_of(agent)
    if state not in ACTIVE or pane is None:
        raise CommandError(f"agent {agent!r} has no live pane (it is {state.value})")
    enter = request.get("enter", True) is not False
    await engine.record([_command_event("send", agent, text=text)])
    if not await clidriver.send(engine, agent, text, enter):  # an agent CLI is typed into as its prompt was
        await engine.in_io(lambda: engine.backend.send_text(pane.pane_id, text, enter))
    return {"ok": True}
