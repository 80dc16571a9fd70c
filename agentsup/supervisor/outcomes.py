"""The engine's verdicts: an exit (or a done rule) becomes success, a retry, a failure or a stop.

Parts of the engine, split out by concern; they share its state.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import partial
from typing import TYPE_CHECKING

from agentsup.plan.model import DoneKind
from agentsup.supervisor import clidriver
from agentsup.supervisor import messages as m
from agentsup.supervisor.agentfiles import settled_tail
from agentsup.supervisor.dynamic import recovery_event, subtask_events
from agentsup.supervisor.events import JSON, EventKind, EventSpec
from agentsup.supervisor.scheduler import retry_at
from agentsup.supervisor.states import ACTIVE, AgentState, Source
from agentsup.supervisor.subtasks import SubtaskError, load_subtasks

S = AgentState

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine


async def on_exited(engine: Engine, msg: m.Exited) -> None:
    key = (msg.agent, msg.attempt)
    if key in engine._exited or msg.agent in engine._pending_exit:
        return
    rec = engine.state.agents[msg.agent]
    if rec.state is S.STARTING:  # judged once the pane is in the books (handle_spawned)
        engine._early.setdefault(msg.agent, []).append(msg)
        return
    # Read the output to its end first (the wrapper's end marker), so alerts and a done pattern in the
    # last lines count.
    engine._pending_exit[msg.agent] = msg
    engine._read_output(msg.agent, msg.attempt, final=False)


async def conclude_exit(engine: Engine, msg: m.Exited) -> None:
    agent = msg.agent
    engine._exited.add((agent, msg.attempt))
    engine._disarm(agent)
    if msg.gone:
        if engine.state.agents[agent].state in ACTIVE:
            await fail(engine, agent, Source.BACKEND, msg.problem or "its tmux window is gone")
        return
    r = msg.record
    code = r.code if r is not None else msg.dead_status
    sig = r.signal if r is not None else None
    exit_ev: EventSpec = (
        EventKind.AGENT_EXIT,
        agent,
        msg.source,
        {
            "attempt": msg.attempt,
            "code": code,
            "signal": sig,
            "started_at": r.started_at if r else None,
            "ended_at": r.ended_at if r else engine.clock(),
        },
    )
    rec = engine.state.agents[agent]
    if rec.state not in ACTIVE:  # already decided (done file or pattern): the exit is just recorded
        await engine.record([exit_ev])
        return
    source = Source(msg.source)
    reason = engine._stop_reason.pop(agent, None)
    spec = engine.plan.agents[agent]
    if reason in ("user", "restart"):
        await engine.transition(
            agent,
            S.STOPPED,
            Source.USER,
            before=[exit_ev],
            exit_code=code,
            signal=sig,
            reason="stopped by the user",
        )
        if reason == "restart":
            await engine.transition(agent, S.WAITING, Source.USER, reason="restarted by the user")
        return
    if reason is None and clidriver.is_oneshot_cli(spec):
        await clidriver.judge_exit(engine, agent, msg.attempt, code=code, sig=sig, exit_ev=exit_ev)
        return
    if reason is not None and reason.startswith("resource: "):
        await fail(engine, agent, Source.ENGINE, reason, code=code, sig=sig, before=[exit_ev])
        return
    if reason == "timeout":
        await fail(
            engine,
            agent,
            Source.TIMEOUT,
            f"timed out after {spec.timeout:g}s",
            code=code,
            sig=sig,
            before=[exit_ev],
        )
        return
    if code is None or code not in spec.success_exit_codes:
        why = msg.problem or (f"killed by signal {sig}" if sig else f"exited with code {code}")
        await fail(engine, agent, source, why, code=code, sig=sig, before=[exit_ev])
    elif spec.done.kind is DoneKind.EXIT:
        await succeed(engine, agent, source, before=[exit_ev], exit_code=code)
    else:
        what = {
            DoneKind.FILE: "writing its done file",
            DoneKind.TURN: "finishing its turn",
            DoneKind.IDLE: f"sitting idle at its ready screen ({spec.done})",
        }.get(spec.done.kind, f"printing {spec.done}")
        why = f"exited with code {code} before {what}"
        await fail(engine, agent, source, why, code=code, sig=sig, before=[exit_ev])


async def succeed(
    engine: Engine, agent: str, source: Source, before: Iterable[EventSpec] = (), **data: JSON
) -> None:
    """Record success; a master's subtasks file is read and its workers added in the same transaction."""
    spec = engine.plan.agents[agent]
    added: list[EventSpec] = []
    if spec.spawns is not None:
        path = engine.run.out_dir(agent) / spec.spawns
        try:
            subtasks = await engine.in_io(partial(load_subtasks, path, list(engine.plan.workers)))
        except SubtaskError as exc:
            await fail(engine, agent, Source.ENGINE, f"its subtasks file is invalid: {exc}", before=before)
            return
        added = subtask_events(agent, subtasks)
    await engine.record([*before, engine._state_event(agent, S.SUCCEEDED, source, **data), *added])
    if (fixed := _recovers(engine, agent)) is not None:
        by: dict[str, JSON] = {"by": agent}
        await engine.record([(EventKind.AGENT_RECOVERED, fixed, Source.ENGINE.value, by)])


async def fail(
    engine: Engine,
    agent: str,
    source: Source,
    reason: str,
    *,
    code: int | None = None,
    sig: int | None = None,
    before: Iterable[EventSpec] = (),
) -> None:
    rec = engine.state.agents[agent]
    spec = engine.plan.agents[agent]
    at = None
    if not (engine.state.halted or engine.state.stopping):
        at = retry_at(spec, rec.attempts - rec.restart_base, engine.clock(), engine.rand())
    if at is not None:
        await engine.transition(
            agent,
            S.RETRYING,
            source,
            before=before,
            reason=reason,
            exit_code=code,
            signal=sig,
            retry_at=at,
        )
        return
    if await _recover(engine, agent, source, reason, code, before=before):
        return
    final = S.LOST if source is Source.BACKEND and rec.state is not S.STARTING else S.FAILED
    specs = [*before]
    if rec.state is not final:
        specs.append(engine._state_event(agent, final, source, reason=reason, exit_code=code, signal=sig))
    if engine.plan.failure_policy(agent).value == "halt" and not engine.state.halted:
        specs.append(
            (
                EventKind.RUN_HALTED,
                agent,
                Source.ENGINE.value,
                {"agent": agent, "reason": f"{agent} {final.value}: {reason}"},
            )
        )
    await engine.record(specs)
    if final is S.FAILED and (patient := _recovers(engine, agent)) is not None:
        await fail(engine, patient, Source.ENGINE, f"its recovery agent {agent} {final.value}: {reason}")


def _recovers(engine: Engine, agent: str) -> str | None:
    """The agent that ``agent`` is the recovery agent of, while that one still waits for it."""
    failure = engine.scopes.get(agent, {}).get("failure")
    patient = failure.get("agent") if isinstance(failure, dict) else None
    if not isinstance(patient, str) or engine.state.agents[patient].awaiting != agent:
        return None
    return patient


async def _recover(
    engine: Engine, agent: str, source: Source, reason: str, code: int | None, *, before: Iterable[EventSpec]
) -> bool:
    """``on_failure = "spawn:T"``: instead of failing for good, wait for a recovery agent from template T,
    given the failure (exit code, reason, last output lines), then try once more. Once per agent."""
    spec, rec = engine.plan.agents[agent], engine.state.agents[agent]
    fixer = f"{agent}/fix"
    if spec.recovery is None or fixer in engine.state.agents or engine.state.halted or engine.state.stopping:
        return False
    log = engine.run.output_log(agent, rec.attempts) if rec.attempts else None
    failure: dict[str, JSON] = {
        "agent": agent,
        "attempt": rec.attempts,
        "exit_code": code,
        "reason": reason,
        "output": await engine.in_io(partial(settled_tail, log)),
        "log": None if log is None else str(log),
    }
    waiting = engine._state_event(
        agent, S.RETRYING, source, reason=f"{reason}; recovering with {fixer}", exit_code=code, awaiting=fixer
    )
    await engine.record([*before, waiting, recovery_event(agent, spec.recovery, failure)])
    return True
