"""How the dashboard writes things down: state marks, table cells, the header line, event lines.

Pure functions of records and events (and the time, passed in), so what the screen says is tested
without a terminal. Every state reads without colour: a symbol and the word.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping

from rich.text import Text
from textual.notifications import SeverityLevel

from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import ACTIVE, TERMINAL, AgentState
from agentsup.tui.feed import RunView

S = AgentState
_STATE_VALUES = frozenset(s.value for s in AgentState)

STATE_MARKS: Mapping[AgentState, tuple[str, str]] = {
    S.PENDING: ("·", "dim"),
    S.WAITING: ("◷", "dim"),
    S.STARTING: ("▸", "cyan"),
    S.RUNNING: ("●", "green"),
    S.IDLE: ("○", "green"),
    S.NEEDS_INPUT: ("?", "bold yellow"),
    S.SUCCEEDED: ("✓", "bold green"),
    S.FAILED: ("✗", "bold red"),
    S.RETRYING: ("↻", "yellow"),
    S.SKIPPED: ("-", "dim"),
    S.STOPPED: ("■", "magenta"),
    S.LOST: ("!", "bold red"),
}

SEVERITY_STYLES: Mapping[str, str] = {
    "debug": "dim",
    "info": "cyan",
    "warning": "yellow",
    "error": "bold red",
    "critical": "bold white on red",
}

RUN_STATE_STYLES: Mapping[str, str] = {
    "running": "bold green",
    "succeeded": "bold green",
    "failed": "bold red",
    "stopped": "bold magenta",
    "stopping": "bold magenta",
    "halted": "bold red",
    "paused": "bold yellow",
    "engine stopped": "bold white on red",
}

COLUMNS: tuple[tuple[str, str, int], ...] = (
    # key, label, width
    ("state", "state", 13),
    ("agent", "agent", 24),
    ("attempt", "try", 3),
    ("exit", "exit", 4),
    ("runtime", "runtime", 8),
)


def state_cell(state: AgentState) -> Text:
    mark, style = STATE_MARKS[state]
    return Text(f"{mark} {state.value}", style=style)


def agent_label(name: str) -> str:
    """A dynamic worker (``master/id``) shows indented under its master, by its id."""
    depth = name.count("/")
    return f"{'  ' * depth}└ {name.rsplit('/', 1)[1]}" if depth else name


def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    s = max(0, int(seconds))
    if s < 3600:
        return f"{s // 60}:{s % 60:02d}"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def runtime(rec: AgentRecord, now: float) -> float | None:
    if rec.started_at is None:
        return None
    end = rec.ended_at if rec.ended_at is not None else (now if rec.state in ACTIVE else None)
    return None if end is None else end - rec.started_at


def row_cells(rec: AgentRecord, now: float) -> tuple[Text | str, ...]:
    """The table row of one agent, in :data:`COLUMNS` order."""
    return (
        state_cell(rec.state),
        agent_label(rec.name),
        str(rec.attempts) if rec.attempts else "",
        "" if rec.exit_code is None else str(rec.exit_code),
        duration(runtime(rec, now)),
    )


def table_order(names: Iterable[str]) -> list[str]:
    """Plan order, with each dynamic worker right after its master and the master's earlier workers."""
    names = list(names)
    children: dict[str, list[str]] = {}
    roots: list[str] = []
    known = set(names)
    for name in names:
        parent = name.rsplit("/", 1)[0] if "/" in name else None
        if parent is not None and parent in known:
            children.setdefault(parent, []).append(name)
        else:
            roots.append(name)
    out: list[str] = []

    def visit(name: str) -> None:
        out.append(name)
        for child in children.get(name, ()):
            visit(child)

    for root in roots:
        visit(root)
    return out


def header_text(run_id: str, view: RunView, now: float) -> Text:
    """Run id, state, progress (done/total, failed, running) and elapsed time, on one line."""
    recs = view.agents
    done = sum(1 for r in recs if r.state in TERMINAL)
    failed = sum(1 for r in recs if r.state in (S.FAILED, S.LOST))
    running = sum(1 for r in recs if r.state in ACTIVE)
    state = view.state
    text = Text.assemble(
        (f" {run_id} ", "bold reverse"),
        " ",
        (state, RUN_STATE_STYLES.get(state, "bold")),
        f"  {done}/{len(recs)} done",
        "  ",
        (f"{failed} failed", "red" if failed else ""),
        f"  {running} running",
    )
    if view.started_at is not None:
        end = view.ended_at if view.ended_at is not None else now
        text.append(f"  {duration(end - view.started_at)}")
    return text


def _state_detail(d: Mapping[str, JSON]) -> Text:
    detail = Text(f"{d.get('from')} → ")
    to = d.get("to")
    if isinstance(to, str) and to in _STATE_VALUES:
        detail.append_text(state_cell(AgentState(to)))
    else:
        detail.append(str(to))
    extra = [] if d.get("exit_code") is None else [f"exit {d['exit_code']}"]
    if d.get("reason") is not None:
        extra.append(str(d["reason"]))
    if extra:
        detail.append(f" ({'; '.join(extra)})", style="dim")
    return detail


def _alert_detail(d: Mapping[str, JSON]) -> Text:
    severity = str(d.get("severity"))
    return Text(f"{severity}: {d.get('line')}", style=SEVERITY_STYLES.get(severity, "bold"))


def _command_detail(d: Mapping[str, JSON]) -> Text:
    text = d.get("text")
    return Text(str(d.get("command")) + ("" if text is None else f" {text!r}"))


def _exit_detail(d: Mapping[str, JSON]) -> Text:
    return Text(f"code {d.get('code')}" + (f" signal {d['signal']}" if d.get("signal") else ""))


def _finished_detail(d: Mapping[str, JSON]) -> Text:
    state = str(d.get("state"))
    return Text(state, style=RUN_STATE_STYLES.get(state, "bold"))


def _field(key: str, style: str = "") -> Callable[[Mapping[str, JSON]], Text]:
    return lambda d: Text("" if d.get(key) is None else str(d.get(key)), style=style)


_DETAILS: Mapping[EventKind, Callable[[Mapping[str, JSON]], Text]] = {
    EventKind.AGENT_STATE: _state_detail,
    EventKind.ALERT: _alert_detail,
    EventKind.COMMAND: _command_detail,
    EventKind.AGENT_EXIT: _exit_detail,
    EventKind.AGENT_SPAWN: _field("attempt"),
    EventKind.AGENT_SPAWNED: _field("attempt"),
    EventKind.RUN_FINISHED: _finished_detail,
    EventKind.RUN_HALTED: _field("reason", "bold red"),
    EventKind.RUN_STOPPING: _field("reason"),
    EventKind.EXTERNAL: _field("name"),
    EventKind.NOTIFY: _field("message", "bold"),
    EventKind.AGENT_ADDED: _field("name"),
}


def toast_for(ev: Event) -> tuple[str, SeverityLevel] | None:
    """The (message, severity) of a toast an event deserves: failures, critical alerts, questions."""
    d = ev.data
    if ev.kind is EventKind.AGENT_STATE and d.get("to") in ("failed", "lost"):
        return f"{ev.agent} {d.get('to')}: {d.get('reason') or 'no reason given'}", "error"
    if ev.kind is EventKind.AGENT_STATE and d.get("to") == "needs_input":
        return f"{ev.agent} needs input: {d.get('reason') or ''}".rstrip(": "), "warning"
    if ev.kind is EventKind.ALERT and d.get("severity") == "critical":
        return f"{ev.agent or 'run'}: {d.get('line')}", "error"
    return None


def event_line(ev: Event, local_time: bool = True) -> Text:
    """One line of the event log: time, kind, agent, what matters of its data."""
    stamp = time.strftime("%H:%M:%S", time.localtime(ev.ts) if local_time else time.gmtime(ev.ts))
    line = Text.assemble((stamp, "dim"), " ", (f"{ev.kind.value:<13}", "bold"), " ")
    if ev.agent:
        line.append(f"{ev.agent} ", style="cyan")
    detail = _DETAILS.get(ev.kind)
    if detail is not None:
        line.append_text(detail(ev.data))
    return line
