"""The engine's reading of agents' output logs: alerts, done lines, the end of an exited agent's output,
and the caps on the output log and the event log.

Parts of the engine, split out by concern; they share its state.
"""

from __future__ import annotations

import errno
import fcntl
import logging
import math
import os
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from agentsup.plan.model import Severity
from agentsup.sessions.backend import Backend, BackendError
from agentsup.supervisor import idle, outcomes
from agentsup.supervisor import messages as m
from agentsup.supervisor.events import JSON, EventKind, EventSpec
from agentsup.supervisor.output import OutputTail, ReadResult
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.states import ACTIVE, AgentState, Source

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

log = logging.getLogger("agentsup.engine")
S = AgentState

# How long an exit waits for tmux's pipe-pane to bring the agent's last bytes (and the wrapper's end marker)
# into its log: until the log has been quiet EXIT_SETTLE seconds, and EXIT_SETTLE_MAX at most (processes the
# agent left behind may print into its pane for ever). The marker comes within milliseconds on a calm machine;
# a tmux server backlogged by many agents printing flat out on a loaded machine has been seen 15 s behind,
# still writing.
EXIT_SETTLE = 15.0
EXIT_SETTLE_MAX = 120.0
# The end marker can also be lost for good: tmux closes a pane whose process ended when it finds nothing
# left to read, and the kernel may not have handed it the last bytes yet (about one agent `true` in fifteen
# hundred on a loaded machine). An exit still without its marker this long after it was seen ends the
# pipe once the pane is dead (``pipe_ended``), asking again every PIPE_CHECK_EVERY until it is or the exit
# settles. A marker merely late comes well within PIPE_CHECK_AFTER: ending the pipe closes the dead pane.
PIPE_CHECK_AFTER = 1.0
PIPE_CHECK_EVERY = 1.0
PIPE_DRAIN_MAX = 10.0  # how long the pipe's cat may take to write what the socket still holds
_DRAIN_POLL = 0.01


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


def writers_gone(path: Path) -> bool | None:
    """Whether no process has ``path`` open for writing; None where this cannot be told.

    Linux grants a read lease on a file only while nothing has it open for writing; the lease taken is
    given back at once."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
    except OSError as exc:
        return False if exc.errno in (errno.EAGAIN, errno.EBUSY) else None
    else:
        fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return True
    finally:
        os.close(fd)


def pipe_ended(backend: Backend, pane_id: str, log: Path) -> bool:
    """Whether everything tmux read from the pane is in ``log`` (blocking): the pane is dead and now closed
    (:meth:`Backend.close_dead_pane`), and the pipe's ``cat`` has written what it was handed and closed the
    log. False while the pane lives, or when that cannot be told: the exit then settles by time."""
    try:
        if not backend.close_dead_pane(pane_id):
            return False
    except BackendError:
        return False
    deadline = time.monotonic() + PIPE_DRAIN_MAX
    while (gone := writers_gone(log)) is False and time.monotonic() < deadline:
        time.sleep(_DRAIN_POLL)
    return gone is True


def check_pipe(engine: Engine, exited: m.Exited, after: float) -> None:
    """In ``after`` seconds, if the exit is still waiting for its log, ask on the I/O pool whether its pipe
    has ended."""

    def ask() -> None:
        agent, attempt = exited.agent, exited.attempt
        pending = engine._pending_exit.get(agent)
        pane = engine.pane_of(agent)
        if pending is None or pending.attempt != attempt or pane is None:
            return
        job = partial(pipe_ended, engine.backend, pane.pane_id, engine.run.output_log(agent, attempt))
        engine._background(job, partial(m.PipeEnded, agent, attempt))

    engine.loop.call_later(after, ask)


def on_pipe_ended(engine: Engine, msg: m.PipeEnded) -> None:
    """The pipe of an exit still waiting for its end marker has ended: the next read of its log is the last.
    Not yet: ask again later."""
    pending = engine._pending_exit.get(msg.agent)
    if pending is None or pending.attempt != msg.attempt:
        return
    if msg.ended:
        log.info(
            "%s (attempt %d) ended without its end marker in its log; tmux's pipe has ended, so the log "
            "holds all tmux read from the pane",
            msg.agent,
            msg.attempt,
        )
        engine._settle_by[msg.agent] = -math.inf
        engine._read_output(msg.agent, msg.attempt, final=False)
    else:
        check_pipe(engine, pending, PIPE_CHECK_EVERY)


def output_settled(engine: Engine, exited: m.Exited, *, grew: bool) -> bool:
    """Whether the exited attempt's log holds all it printed: the wrapper's end marker was read, or
    there will be none (no exit record: the wrapper was killed), or the pipe has ended (``pipe_ended``), or
    the log has been quiet EXIT_SETTLE seconds (``grew``: this read found more), or EXIT_SETTLE_MAX have
    passed since the exit was seen.
    Until then the log's next write (or the deadline) reads again."""
    agent = exited.agent
    tail = engine._tails.get(agent)
    if tail is None or tail.ended or exited.record is None:
        return True
    now = engine.clock()
    if agent not in engine._settle_by:
        engine._settle_by[agent] = now + EXIT_SETTLE_MAX
        grew = True
        check_pipe(engine, exited, PIPE_CHECK_AFTER)
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
