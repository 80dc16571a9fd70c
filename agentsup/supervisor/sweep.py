"""The engine's reconcile sweep: one list-panes for the session plus a stat per active agent, catching
what inotify missed and panes that vanished. Also the blocking readers of exit and inbox files.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from agentsup.sessions import BackendError, Pane, read_exit_file
from agentsup.supervisor import messages as m
from agentsup.supervisor import outcomes
from agentsup.supervisor.states import ACTIVE, AgentState, Source

S = AgentState

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
    active = [(a, r.attempts) for a, r in engine.state.agents.items() if r.state in ACTIVE - {S.STARTING}]
    run, backend, session = engine.run, engine.backend, engine.meta.session

    def sweep() -> m.Message:
        panes = tuple(backend.list_panes(session))  # listed before the files: an exit wins over a gone pane
        exits = {}
        done = set()
        for agent, attempt in active:
            if (exited := exit_message(agent, attempt, run.exit_file(agent, attempt))) is not None:
                exits[(agent, attempt)] = exited
            if run.done_file(agent, attempt).exists():
                done.add((agent, attempt))
        return m.Swept(panes, exits, frozenset(done), frozenset(active))

    engine._background(sweep, lambda msg: msg)


async def reconcile(engine: Engine, sweep: m.Swept) -> None:
    """Judge only the attempts this sweep looked at, and only if they are still running: a sweep may run
    late on a busy pool, and an agent that was starting when it began had its files left unread."""
    by_key = pane_index(sweep.panes)
    for agent, attempt in sorted(sweep.checked):
        rec = engine.state.agents.get(agent)
        key = (agent, attempt)
        if rec is None or rec.attempts != attempt or rec.state not in ACTIVE - {S.STARTING}:
            continue
        engine._read_output(agent, rec.attempts, final=False)
        if key in sweep.done_files:
            await engine._handle(m.DoneFileSeen(agent, rec.attempts))
        if key in sweep.exits:
            await engine._handle(sweep.exits[key])
            continue
        pane = by_key.get(key)
        if pane is None:
            engine._disarm(agent)
            engine._stop_reason.pop(agent, None)
            await outcomes.fail(engine, agent, Source.BACKEND, "its tmux window is gone")
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
