"""The engine's reconcile sweep: one list-panes for the session plus three stats per active agent, catching
what inotify missed (exit and done files, output) and panes that vanished; the loss of the whole session.
Also the blocking readers of exit and inbox files.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from functools import lru_cache, partial
from pathlib import Path
from typing import TYPE_CHECKING

from agentsup.sessions import BackendError, Pane, read_exit_file
from agentsup.supervisor import messages as m
from agentsup.supervisor import stopping
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.scheduler import schedule
from agentsup.supervisor.states import ACTIVE, AgentState, Source

log = logging.getLogger("agentsup.engine")
S = AgentState
WINDOW_GONE = "its tmux window is gone"
SESSION_GONE = f"{WINDOW_GONE}: the run's tmux session was closed or its server killed"
SETTLE_TIMEOUT = 30.0  # how long a session-less engine waits for exits in flight before it leaves
SWEPT = ACTIVE - {S.STARTING}  # the states whose attempts a sweep looks at

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine


def exit_message(agent: str, attempt: int, path: Path) -> m.Exited | None:
    """The Exited message for an exit file, None while it does not exist. Blocking: off the loop."""
    try:
        record = read_exit_file(path)
    except BackendError as exc:
        return m.Exited(agent, attempt, None, Source.EXIT_FILE.value, problem=str(exc))
    return None if record is None else m.Exited(agent, attempt, record, Source.EXIT_FILE.value)


def inbox_message(path: Path) -> m.InboxFile:
    """Read a dropped event file: ``{"name": ..., "data": ...}``, or any JSON named after the file."""
    try:
        st = path.stat()
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        return m.InboxFile(path, path.stem, None, f"unreadable inbox file {path.name}: {exc}")
    ident = f"{path.name}:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
    if isinstance(raw, dict) and isinstance(raw.get("name"), str):
        return m.InboxFile(path, raw["name"], raw.get("data"), ident=ident)
    return m.InboxFile(path, path.stem, raw, ident=ident)


def pane_index(panes: Iterable[Pane]) -> dict[tuple[str | None, int | None], Pane]:
    """Each attempt's pane; a live one wins over a dead one with the same tags."""
    by_key: dict[tuple[str | None, int | None], Pane] = {}
    for p in panes:
        key = (p.agent, p.attempt)
        if key not in by_key or by_key[key].dead:
            by_key[key] = p
    return by_key


def sweep_now(engine: Engine) -> None:
    engine._background(_look(engine), lambda msg: msg)


def _look(engine: Engine) -> Callable[[], m.Swept]:
    """The sweep itself, for the I/O pool: it lists the panes, then stats the running agents' files."""
    active = [(a, r.attempts) for a, r in engine.state.agents.items() if r.state in SWEPT]
    run, backend, session = engine.run, engine.backend, engine.meta.session
    # How far each log has been read, taken on the loop: a read in flight makes it stale (low), which costs
    # one needless read, never a missed one.
    logs = {a: (t.path, t.offset) for a, _ in active if (t := engine._tails.get(a)) is not None}

    def sweep() -> m.Swept:
        # Panes first, files second: an exit written in between wins over a pane gone.
        try:
            panes: tuple[Pane, ...] | None = tuple(backend.list_panes(session))
        except BackendError as exc:
            log.warning("the sweep could not list the panes (%s); it judges exit and done files only", exc)
            panes = None
        exits = {}
        done = set()
        grown = set()
        for agent, attempt in active:
            exit_file, done_file = _pane_files(run, agent, attempt)
            if exit_file.exists() and (exited := exit_message(agent, attempt, exit_file)) is not None:
                exits[(agent, attempt)] = exited
            if done_file.exists():
                done.add((agent, attempt))
            if agent in logs and _size(logs[agent][0]) > logs[agent][1]:
                grown.add((agent, attempt))
        # Without the panes nobody can be called gone: only the attempts with a file to go by are judged.
        checked = frozenset(active) if panes is not None else frozenset(exits) | done
        return m.Swept(panes or (), exits, frozenset(done), checked, frozenset(grown))

    return sweep


@lru_cache(maxsize=4096)
def _pane_files(run: RunDir, agent: str, attempt: int) -> tuple[Path, Path]:
    """An attempt's exit and done files. Cached: the sweep looks at them for every active agent every sweep,
    and building the paths cost more than the looks."""
    return run.exit_file(agent, attempt), run.done_file(agent, attempt)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def reconcile(engine: Engine, sweep: m.Swept, gone: str = WINDOW_GONE) -> None:
    """Judge only the attempts this sweep looked at, and only if they are still running: a sweep may run
    late on a busy pool, and an agent that was starting when it began had its files left unread. An agent
    whose pane is not listed is lost for the reason ``gone``."""
    by_key = pane_index(sweep.panes)
    judged = []
    for agent, attempt in sorted(sweep.checked):
        rec = engine.state.agents.get(agent)
        if rec is not None and rec.attempts == attempt and rec.state in SWEPT:
            judged.append((agent, attempt))
    lost = [
        key
        for key in judged
        if key not in sweep.exits
        and by_key.get(key) is None
        # A sweep begun before an earlier one judged the agent gone: stopped already.
        and key not in engine._exited
        and key[0] not in engine._pending_exit
    ]
    _stop_leftovers(engine, lost, gone)
    for agent, attempt in judged:
        rec = engine.state.agents.get(agent)
        key = (agent, attempt)
        if rec is None or rec.attempts != attempt or rec.state not in SWEPT:
            continue
        if key in sweep.grown:  # output inotify did not announce
            engine._read_output(agent, rec.attempts, final=False)
        if key in sweep.done_files:
            await engine._handle(m.DoneFileSeen(agent, rec.attempts))
        if key in sweep.exits:
            if key not in engine._exited and agent not in engine._pending_exit:
                log.info("the sweep found the exit record of %s (attempt %d) before inotify did", *key)
            await engine._handle(sweep.exits[key])
            continue
        pane = by_key.get(key)
        if pane is None:
            engine._disarm(agent)
            engine._stop_reason.pop(agent, None)
            # Judged like an exit, after its output is read to the end: lines it printed still count.
            await engine._handle(
                m.Exited(agent, rec.attempts, None, Source.BACKEND.value, problem=gone, gone=True)
            )
        elif pane.dead:
            # The wrapper writes exit.json before it exits, so a dead pane without one was killed.
            # Wait one more sweep in case the rename is in flight.
            if key in engine._dead_seen:
                await engine._handle(
                    m.Exited(agent, rec.attempts, None, Source.PANE_STATUS.value, pane.dead_status)
                )
            else:
                engine._dead_seen.add(key)
                sweep_soon(engine)


def sweep_soon(engine: Engine) -> None:
    engine.loop.call_later(0.2, sweep_now, engine)


def _stop_leftovers(engine: Engine, lost: Sequence[tuple[str, int]], gone: str) -> None:
    """The agents of vanished panes may live on (they ignored the hangup): stop what is left of those
    attempts, so a retry never runs beside them. All at once: finding what left a pane's group walks the
    whole process table, and a killed tmux server loses every pane in one sweep (200 walks took the engine
    11 s of CPU)."""
    targets = [
        (pane, stopping.attempt_marker(engine.run, agent, attempt))
        for agent, attempt in lost
        if (pane := engine.pane_of(agent)) is not None
    ]
    if not targets:
        return
    log.info("stopping what is left of %d agent(s) whose panes are gone (%s)", len(targets), gone)
    panes = stopping.vanished([pane for pane, _ in targets])  # not a live process that reused a pid
    also = stopping.finder([pane.pid for pane in panes], [marker for _, marker in targets])
    engine._background(partial(engine.backend.stop_all, panes, engine.options.grace, also))


class SessionGoneError(Exception):
    """The run's tmux session is gone, and its agents' panes with it: the engine leaves the run, unfinished,
    to ``agentsup resume``."""


async def session_gone(engine: Engine, why: str) -> None:
    """The session vanished (server killed, session closed: the engine, in it, got SIGHUP). Stop what is
    left of the agents, judge each one (an exit on disk counts; the rest are lost and the retry policy
    applies), start nothing, then leave: an unfinished run, unless no agent can run any more."""
    session = engine.meta.session
    log.warning(
        "%s: the run's tmux session %s is gone (its server was killed or the session closed), and the "
        "agents' panes with it; `agentsup resume %s` goes on in a new session",
        why,
        session,
        engine.run.run_id,
    )
    engine.paused = True  # without a session nothing can start; `resume` starts what is due
    targets = [
        (pane, stopping.attempt_marker(engine.run, agent, engine.state.agents[agent].attempts))
        for agent in engine.active_agents()
        if (pane := engine.pane_of(agent)) is not None
    ]
    if targets:
        panes = stopping.vanished([p for p, _ in targets])  # not a live process that reused a pid
        also = stopping.finder([p.pid for p in panes], [mk for _, mk in targets])
        await engine.in_io(partial(engine.backend.stop_all, panes, engine.options.grace, also))
    for agent in engine.active_agents():
        engine._disarm(agent)
        engine._stop_reason.pop(agent, None)
    await reconcile(engine, await engine.in_io(_look(engine)), gone=SESSION_GONE)
    task = asyncio.ensure_future(_leave_when_settled(engine, session))
    engine._tasks.add(task)
    task.add_done_callback(engine._tasks.discard)


async def _leave_when_settled(engine: Engine, session: str) -> None:
    """Once the exits in flight are judged and nothing is starting: end the engine with the run unfinished
    (the main loop finishes the run itself when no agent is left to run)."""
    deadline = engine.loop.time() + SETTLE_TIMEOUT
    while (engine.active_agents() or engine._pending_exit) and engine.loop.time() < deadline:
        await asyncio.sleep(0.05)
    if engine.outcome is not None:
        return
    if schedule(engine.plan, engine.state, engine.clock(), paused=True).outcome is not None:
        return  # every agent has ended for good: the main loop finishes the run
    message = (
        f"run {engine.run.run_id} left unfinished: its tmux session {session} is gone; "
        f"`agentsup resume {engine.run.run_id}` goes on"
    )
    engine._queue.put_nowait(m.Crashed(SessionGoneError(message)))
