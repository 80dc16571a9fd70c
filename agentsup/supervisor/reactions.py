"""The engine's ``[[on]]`` reactions: offer each logged event to the handlers, fire the matches.

Parts of the engine, split out by concern; they share its state.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from agentsup.plan.model import ActionKind, Handler
from agentsup.plan.templates import Quoting, TemplateError, render
from agentsup.supervisor.agentfiles import lookup_in, named_agents, upstream_json
from agentsup.supervisor.commands import CommandError, execute
from agentsup.supervisor.dynamic import event_scope, spawn_event
from agentsup.supervisor.events import JSON, Event, EventKind, EventSpec
from agentsup.supervisor.handlers import matches, trigger_of
from agentsup.supervisor.states import Source

log = logging.getLogger("agentsup.engine")

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine


async def offer_to_handlers(engine: Engine) -> None:
    """Fire every handler that matches a logged event, at most once per (handler, event)."""
    while engine._unhandled:
        ev = engine._unhandled.pop(0)
        trigger = trigger_of(ev)
        if trigger is None:
            continue
        for handler in engine.plan.handlers:
            if (handler.index, ev.seq) in engine._fired or not matches(handler, trigger):
                continue
            await fire(engine, handler, ev)


async def fire(engine: Engine, handler: Handler, ev: Event) -> None:
    """Do what ``handler`` says; its firing is logged with (or before) the action's own events."""
    fired: EventSpec = (
        EventKind.HANDLER_FIRED,
        ev.agent,
        Source.ENGINE.value,
        {"handler": handler.index, "trigger": ev.seq, "do": handler.do.value},
    )
    facts = [
        engine._upstream_facts(n)
        for n in named_agents(handler.text, handler.message)
        if n in engine.state.agents
    ]
    upstreams: dict[str, JSON] = {}
    if facts:  # reading an agent's files is blocking I/O: only when a template names one
        upstreams = await engine.in_io(lambda: {f.name: upstream_json(f) for f in facts})
    scope: dict[str, JSON] = {
        "event": event_scope(ev),
        "run": {"id": engine.run.run_id, "name": engine.plan.run.name},
        "inputs": dict(engine.plan.inputs),
        "upstreams": upstreams,
    }
    try:
        text = None if handler.text is None else render(handler.text, lookup_in(scope), Quoting.NONE)
        message = None if handler.message is None else render(handler.message, lookup_in(scope), Quoting.NONE)
    except TemplateError as exc:
        fired[3]["error"] = f"template: {exc}"
        await engine.record([fired])
        return
    do, target = handler.do, handler.target or ev.agent
    if do is ActionKind.SPAWN and handler.worker is not None:
        name = f"{handler.worker}-{ev.seq}"
        if name in engine.state.agents:  # a declared agent, or another handler's spawn for this event
            name = f"{name}-on{handler.index}"
        await engine.record([fired, spawn_event(name, handler.worker, ev)])
    elif do is ActionKind.NOTIFY:
        note: dict[str, JSON] = {"message": message, "handler": handler.index}
        await engine.record([fired, (EventKind.NOTIFY, ev.agent, Source.ENGINE.value, note)])
    elif do is ActionKind.THROTTLE and handler.max_parallel is not None:
        until = None if handler.duration is None else engine.clock() + handler.duration
        throttle: dict[str, JSON] = {"max_parallel": handler.max_parallel, "until": until}
        await engine.record([fired, (EventKind.THROTTLE, None, Source.ENGINE.value, throttle)])
    else:
        await engine.record([fired])
        request: dict[str, JSON] = {"cmd": do.value, "agent": target}
        if text is not None:
            request["text"] = text
        try:
            await execute(engine, request)
        except CommandError as exc:
            log.warning("handler on[%d] (%s %s): %s", handler.index, do.value, target, exc)
