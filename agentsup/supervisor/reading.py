"""The engine's reading of agents' output logs: alerts, done lines, the end of an exited agent's output,
and the caps on the output log and the event log.

Parts of the engine, split out by concern; they share its state.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from agentsup.plan.model import Severity
from agentsup.supervisor import idle, outcomes
from agentsup.supervisor import messages as m
from agentsup.supervisor.events import JSON, EventKind, EventSpec
from agentsup.supervisor.output import OutputTail, ReadResult
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.states import ACTIVE, AgentState, Source

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

S = AgentState

# How long an exit waits for tmux's pipe-pane to bring the agent's last bytes (and the wrapper's end marker)
# into its log: until the log has been quiet EXIT_SETTLE seconds, and EXIT_SETTLE_MAX at most (processes the
# agent left behind may print into its pane for ever). The marker comes within milliseconds on a calm machine;
# a tmux server backlogged by many agents printing flat out on a loaded machine has been seen 15 s behind,
# still writing.
EXIT_SETTLE = 15.0
EXIT_SETTLE_MAX = 120.0


def read_tail(tail: OutputTail, agent: str, attempt: int, final: bool, exiting: bool) -> m.OutputRead:
    """Read on in the agent's log (blocking). For an ``exiting`` agent whose read reaches the wrapper's end
    marker, everything it printed is in: its unterminated last line is flushed in the same go, and the
    read counts as the final one (one pass through the I/O pool instead of two, on the way from an exit to
    its event)."""
    res = tail.read(final)
    if exiting and tail.ended:
        last = tail.read(True)
        both = ReadResult(
            res.alerts + last.alerts,
            res.done_line if res.done_line is not None else last.done_line,
            res.lines + last.lines,
            res.grew or last.grew,
            res.capped or last.capped,
        )
        return m.OutputRead(agent, attempt, both, True)
    return m.OutputRead(agent, attempt, res, final)


async def on_output(engine: Engine, msg: m.OutputRead) -> None:
    """A read of an agent's log came back: log its alerts, apply its done line, go on with a pending exit."""
    agent = msg.agent
    engine._reading.discard(agent)
    res = msg.result
    logged = [a for a in res.alerts if a.severity is Severity.CRITICAL or not engine.event_log_full]
    specs: list[EventSpec] = [
        (
            EventKind.ALERT,
            agent,
            Source.PATTERN.value,
            {
                "attempt": msg.attempt,
                "severity": a.severity.value,
                "rule": a.rule,
                "line": a.line,
                "offset": a.end,
            },
        )
        for a in logged
    ]
    engine.alerts_unlogged += len(res.alerts) - len(specs)
    cap = engine.plan.run.max_log
    if res.capped and cap is not None and (agent, msg.attempt) not in engine._capped:
        engine._capped.add((agent, msg.attempt))
        line = (
            f"output.log reached max_log ({cap} bytes): later output is read for alerts and the done "
            "pattern, then dropped"
        )
        # In log order: after the alerts of lines below the cap, before those of lines past it.
        below = sum(1 for a in logged if a.end <= cap)
        specs.insert(
            below,
            (
                EventKind.ALERT,
                agent,
                Source.ENGINE.value,
                {"attempt": msg.attempt, "severity": "warning", "rule": "max_log", "line": line},
            ),
        )
    if res.grew:
        await idle.heard(engine, agent, msg.attempt)
    rec = engine.state.agents[agent]
    if res.done_line is not None and rec.state is S.STARTING:
        engine._early_done[agent] = res.done_line  # judged once the pane is in the books
    if res.done_line is not None and rec.state in ACTIVE - {S.STARTING}:
        engine._disarm(agent)
        await outcomes.succeed(engine, agent, Source.PATTERN, before=specs, reason=res.done_line[:200])
    elif specs:
        await engine.record(specs)
    pending = engine._pending_exit.get(agent)
    if agent in engine._dirty:
        engine._dirty.discard(agent)
        engine._read_output(agent, msg.attempt, final=False)
    elif pending is not None and not msg.final:
        if output_settled(engine, pending, grew=res.grew):
            engine._read_output(agent, msg.attempt, final=True)  # flush the unterminated last line
    elif pending is not None:
        del engine._pending_exit[agent]
        engine._settle_by.pop(agent, None)
        if (timer := engine._settle_timer.pop(agent, None)) is not None:
            timer.cancel()
        await outcomes.conclude_exit(engine, pending)


def output_settled(engine: Engine, exited: m.Exited, *, grew: bool) -> bool:
    """Whether the exited attempt's log holds all it printed: the wrapper's end marker was read, or
    there will be none (no exit record: the wrapper was killed), or the log has been quiet EXIT_SETTLE
    seconds (``grew``: this read found more), or EXIT_SETTLE_MAX have passed since the exit was seen.
    Until then the log's next write (or the deadline) reads again."""
    agent = exited.agent
    tail = engine._tails.get(agent)
    if tail is None or tail.ended or exited.record is None:
        return True
    now = engine.clock()
    if agent not in engine._settle_by:
        engine._settle_by[agent] = now + EXIT_SETTLE_MAX
        grew = True
    deadline = engine._settle_by[agent]
    if now >= deadline:
        return True
    if grew:  # tmux is still writing: wait for EXIT_SETTLE of quiet from now
        if (timer := engine._settle_timer.pop(agent, None)) is not None:
            timer.cancel()
        wait = min(EXIT_SETTLE, deadline - now)
        post = partial(engine._queue.put_nowait, m.OutputGrew(agent, exited.attempt))
        engine._settle_timer[agent] = engine.loop.call_later(wait, post)
        return False
    return agent not in engine._settle_timer or engine._settle_timer[agent].when() <= engine.loop.time()


def event_log_size(run: RunDir) -> int:
    """The event log's bytes on disk (events.db and its WAL). Blocking: off the loop."""
    total = 0
    for path in (run.events_db, run.events_db.with_name(run.events_db.name + "-wal")):
        try:
            total += path.stat().st_size
        except FileNotFoundError:
            continue
    return total


async def on_event_log_size(engine: Engine, size: int) -> None:
    """Past max_event_log, alerts below critical are counted, not logged (state changes always are)."""
    if engine.event_log_full or size <= engine.plan.run.max_event_log:
        return
    engine.event_log_full = True
    line = (
        f"the event log is over max_event_log ({engine.plan.run.max_event_log} bytes): alerts below "
        "critical are no longer logged"
    )
    data: dict[str, JSON] = {"severity": "critical", "rule": "max_event_log", "line": line}
    await engine.record([(EventKind.ALERT, None, Source.ENGINE.value, data)])
