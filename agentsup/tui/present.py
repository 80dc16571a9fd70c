"""How the dashboard writes things down: state marks, table cells, the header line, event lines.

Pure functions of records and events (and the time, passed in), so what the screen says is tested
without a terminal. Every state reads without colour: a symbol and the word.
"""

from __future__ import annotations

import re
import shlex
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from rich.cells import cell_len, set_cell_size
from rich.text import Text
from textual.notifications import SeverityLevel

from agentsup.plan import Plan
from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import ACTIVE, TERMINAL, AgentState
from agentsup.tui.feed import RunView
from agentsup.tui.runfiles import Usage

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
    S.RATE_LIMITED: ("⏸", "yellow"),
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

GAP = 1  # blank cells after each column (the table's own cell padding is 0)
SCROLLBAR = 1  # the table's vertical scrollbar, kept out of the columns' budget
AGENT_MIN, AGENT_MAX = 5, 28
LAST_MIN = 16  # the last-output column gives the agent column room only down to this
WIDE = 100  # from this width on, the table also shows the attempt and the exit code


class SortOrder(StrEnum):
    PLAN = "plan"
    STATE = "state"
    NAME = "name"
    RUNTIME = "runtime"
    CPU = "cpu"
    RSS = "rss"


SORT_ORDERS = tuple(SortOrder)
_SORT_COLUMN = {
    SortOrder.STATE: "state",
    SortOrder.NAME: "agent",
    SortOrder.RUNTIME: "runtime",
    SortOrder.CPU: "cpu",
    SortOrder.RSS: "rss",
}
SORT_MARK = "↓"

# Sorting by state puts what needs a person first, then what runs, then what is over.
STATE_RANK: Mapping[AgentState, int] = {
    s: i
    for i, s in enumerate(
        (
            S.NEEDS_INPUT,
            S.FAILED,
            S.LOST,
            S.RUNNING,
            S.IDLE,
            S.STARTING,
            S.RETRYING,
            S.RATE_LIMITED,
            S.WAITING,
            S.PENDING,
            S.SUCCEEDED,
            S.STOPPED,
            S.SKIPPED,
        )
    )
}


@dataclass(frozen=True)
class Column:
    key: str
    label: str
    width: int  # content cells; :data:`GAP` blank cells follow
    right: bool = False  # numbers align right


# key, label, width, right; the agent and last-output columns get their width from the screen's.
_FIXED: tuple[tuple[str, str, int, bool], ...] = (
    ("state", "state", 14, False),  # "⏸ rate_limited"
    ("agent", "agent", 0, False),
    ("role", "role", 9, False),  # "aggregate"
    ("attempt", "try", 3, True),
    ("exit", "exit", 4, True),
    ("runtime", "time", 6, True),  # "12h05m"
    ("cpu", "cpu%", 5, True),
    ("rss", "rss", 5, True),  # "1023M"
    ("last", "last output", 0, False),
)
_WIDE_ONLY = frozenset({"attempt", "exit"})


def table_columns(width: int, longest_agent: int, sort: SortOrder = SortOrder.PLAN) -> tuple[Column, ...]:
    """The agent table's columns for a table ``width`` cells wide whose longest agent label is
    ``longest_agent`` cells: the fixed ones narrow, the agent column as wide as its labels (within
    bounds), the last output line taking the rest. The sorted column's label carries :data:`SORT_MARK`."""
    keys = [f for f in _FIXED if width >= WIDE or f[0] not in _WIDE_ONLY]
    fixed = sum(w for _, _, w, _ in keys) + GAP * (len(keys) - 1) + SCROLLBAR
    room = width - fixed
    agent = max(AGENT_MIN + 1, min(longest_agent, AGENT_MAX, room - LAST_MIN))
    last = max(LAST_MIN // 2, room - agent)
    sorted_key = _SORT_COLUMN.get(sort)
    columns = []
    for key, label, fixed_width, right in keys:
        w = agent if key == "agent" else last if key == "last" else fixed_width
        shown = label + SORT_MARK if key == sorted_key else label  # sortable columns are wider than labels
        columns.append(Column(key, shown.rjust(w) if right else shown, w, right))
    return tuple(columns)


def fit(text: str, width: int) -> str:
    """``text`` cut to ``width`` cells, an ellipsis marking the cut."""
    if cell_len(text) <= width:
        return text
    return set_cell_size(text, max(0, width - 1)) + "…"


_STATE_CELLS = {
    state: Text(f"{mark} {state.value}", style=style) for state, (mark, style) in STATE_MARKS.items()
}


def state_cell(state: AgentState) -> Text:
    return _STATE_CELLS[state].copy()


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


def size_text(n: int) -> str:
    """Bytes in at most five cells, decimal units as ``agentsup status`` uses them."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if n >= scale:
            v = n / scale
            return f"{v:.1f}{unit}" if v < 10 and unit == "G" else f"{v:.0f}{unit}"
    return f"{n}B"


def role_of(name: str, plan: Plan | None, added: Mapping[str, JSON] | None) -> str:
    """What part an agent plays: ``step`` (a plain plan agent), ``master``, ``aggregate``, ``worker``
    (a master's subtask), ``handler`` (spawned by an ``[[on]]`` handler) or ``recovery`` (``AGENT/fix``).

    ``added`` is the data of its ``agent.added`` event, for agents added during the run; without it (or
    the plan), the name says what it can: ``A/fix``, ``MASTER/ID``, ``TEMPLATE-SEQ``.
    """
    if added is not None:
        recovers, parent = added.get("recovers") is not None, isinstance(added.get("parent"), str)
        return "recovery" if recovers else "worker" if parent else "handler"
    spec = None if plan is None else plan.agents.get(name)
    if spec is not None:
        return "aggregate" if spec.aggregate is not None else "master" if spec.spawns is not None else "step"
    if "/" in name:
        return "recovery" if name.endswith("/fix") else "worker"
    templates = () if plan is None else plan.workers
    return "handler" if any(re.fullmatch(rf"{re.escape(t)}-\d+(-on\d+)?", name) for t in templates) else ""


@dataclass(frozen=True)
class RowFacts:
    """What a row shows beyond the agent's record."""

    label: str  # the agent column: its name, or its place in the tree
    role: str = ""
    usage: Usage | None = None  # its process tree's last sample, while it runs
    last: str = ""  # the last line of its output


def _value(key: str, rec: AgentRecord, facts: RowFacts, now: float) -> str:
    u = facts.usage
    if key == "role":
        return facts.role
    if key == "attempt":
        return str(rec.attempts) if rec.attempts else ""
    if key == "exit":
        return "" if rec.exit_code is None else str(rec.exit_code)
    if key == "runtime":
        return duration(runtime(rec, now))
    if key == "cpu":
        return "" if u is None else f"{u.cpu_percent:.0f}"
    if key == "rss":
        return "" if u is None else size_text(u.rss)
    raise KeyError(key)


def question_of(rec: AgentRecord) -> str | None:
    """What an agent in needs_input asks (an agent CLI's permission dialog: its title, subject and
    question, a line each); None when it is in another state or said nothing. The engine gives the
    question as the reason of the state change."""
    if rec.state is not S.NEEDS_INPUT:
        return None
    return (rec.reason or "").strip() or None


def _question_line(question: str) -> str:
    """The question itself, on one line: a dialog's title and subject come before it."""
    lines = [line.strip() for line in question.splitlines() if line.strip()]
    return lines[-1] if lines else question


def _cell(col: Column, rec: AgentRecord, facts: RowFacts, now: float) -> Text | str:
    if col.key == "state":
        return _STATE_CELLS[rec.state]  # shared: table cells are never changed in place
    if col.key == "agent":
        return fit(facts.label, col.width)
    if col.key == "last":
        if (question := question_of(rec)) is not None:  # what it asks matters more than what it printed
            return Text(fit(_question_line(question), col.width), style=STATE_MARKS[S.NEEDS_INPUT][1])
        return Text(fit(facts.last, col.width), style="dim")
    value = fit(_value(col.key, rec, facts, now), col.width)
    return value.rjust(col.width) if col.right else value


Cell = Text | str


def row_cells(rec: AgentRecord, columns: Sequence[Column], facts: RowFacts, now: float) -> tuple[Cell, ...]:
    """The table row of one agent, one cell per column (plain strings unless styled)."""
    return tuple(_cell(col, rec, facts, now) for col in columns)


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


def next_sort(order: SortOrder) -> SortOrder:
    return SORT_ORDERS[(SORT_ORDERS.index(order) + 1) % len(SORT_ORDERS)]


def matches(rec: AgentRecord, text: str) -> bool:
    """Whether the filter ``text`` is part of the agent's name or of its state word (any case)."""
    t = text.strip().lower()
    return not t or t in rec.name.lower() or t in rec.state.value or t in rec.state.value.replace("_", " ")


def arrange(
    records: Sequence[AgentRecord],
    order: SortOrder,
    now: float,
    usage: Mapping[str, Usage] | None = None,
    text: str = "",
) -> list[str]:
    """The names the table shows, in the order it shows them: those ``text`` matches, sorted by
    ``order`` (plan order breaks ties; runtimes, CPU and memory sort largest first, unknown last)."""
    shown = [r for r in records if matches(r, text)]
    if order is SortOrder.PLAN:
        return table_order(r.name for r in shown)
    use = usage or {}

    def largest_first(value: float | None) -> tuple[bool, float]:
        return (value is None, -(value or 0.0))

    keys: dict[SortOrder, Callable[[AgentRecord], Any]] = {
        SortOrder.STATE: lambda r: STATE_RANK[r.state],
        SortOrder.NAME: lambda r: r.name.lower(),
        SortOrder.RUNTIME: lambda r: largest_first(runtime(r, now)),
        SortOrder.CPU: lambda r: largest_first(u.cpu_percent if (u := use.get(r.name)) else None),
        SortOrder.RSS: lambda r: largest_first(float(u.rss) if (u := use.get(r.name)) else None),
    }
    return [r.name for r in sorted(shown, key=keys[order])]  # sorted() is stable: plan order breaks ties


def header_text(run_id: str, view: RunView, now: float, shown: int | None = None) -> Text:
    """Run id, state, progress (done/total, failed, running) and elapsed time, on one line; with
    ``shown``, how many agents a filter leaves in the table."""
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
    if shown is not None:
        text.append(f"  filter: {shown} shown", style="bold yellow")
    return text


def pager_argv(pager: str | None, log: Path) -> list[str]:
    """The command showing ``log`` whole: ``$PAGER`` (split as a shell would), else ``less -R``."""
    words = shlex.split(pager) if pager and pager.strip() else []
    return [*(words or ["less", "-R"]), str(log)]


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
        question = d.get("question") or d.get("reason")
        return f"{ev.agent} needs input" + ("" if not question else f": {question}"), "warning"
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
