"""The selected agent's details: its record, inputs, context, outputs and latest events, as one text.

A pure function of what the app gathered (the plan, the feed, the files read in a worker thread), so the
panel is tested without a terminal.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text

from agentsup.plan import AgentSpec, Plan, When
from agentsup.supervisor.events import JSON, Event
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import AgentState
from agentsup.tui.present import duration, event_line, question_of, runtime, size_text, state_cell
from agentsup.tui.runfiles import AgentFiles

LOADING = "(reading…)"


@dataclass(frozen=True)
class AgentDetails:
    rec: AgentRecord
    role: str
    plan: Plan | None  # None while it loads, or when it cannot be read
    added: Mapping[str, JSON] | None  # its agent.added data, when it was added during the run
    files: AgentFiles | None  # None while they are being read
    events: Sequence[Event]


def _heading(text: Text, title: str) -> None:
    text.append(f"\n{title}\n", style="bold underline")


def _field(text: Text, name: str, value: str | Text) -> None:
    text.append(f"  {name:<9}", style="dim")
    text.append_text(Text(value) if isinstance(value, str) else value)
    text.append("\n")


def _after(spec: AgentSpec) -> str:
    deps = []
    for dep in spec.after:
        name = dep.agent + (".workers" if dep.workers else "")
        deps.append(name if dep.when is When.SUCCEEDED else f"{dep.when.value}: {name}")
    return ", ".join(deps)


def _spec_fields(text: Text, spec: AgentSpec) -> None:
    if spec.cmd is not None:
        _field(text, "cmd", spec.cmd.strip())
    if spec.argv is not None:
        _field(text, "argv", shlex.join(spec.argv))
    if spec.aggregate is not None:
        agg = spec.aggregate
        how = agg.strategy.value + ("" if agg.field is None else f" on {agg.field!r}")
        _field(text, "aggregate", f"{how} of {', '.join(agg.sources)}")
    if spec.prompt is not None:
        _field(text, "prompt", spec.prompt.strip())
    if spec.after:
        _field(text, "after", _after(spec))
    if spec.preset != "shell":
        _field(text, "preset", spec.preset)
    if spec.spawns is not None:
        _field(text, "spawns", f"workers from $AGENTSUP_OUT/{spec.spawns}")
    if spec.cwd is not None:
        _field(text, "cwd", str(spec.cwd))


def _compact(value: JSON) -> str:
    return json.dumps(value, ensure_ascii=False)


def _spec(d: AgentDetails) -> AgentSpec | None:
    """What the plan says of the agent: its own table, or its template when it was added during the run."""
    if d.plan is None:
        return None
    if d.added is not None:
        worker = d.added.get("worker")
        return d.plan.workers.get(worker) if isinstance(worker, str) else None
    return d.plan.agents.get(d.rec.name)


def _inputs(text: Text, d: AgentDetails) -> None:
    _heading(text, "inputs")
    if d.added is not None:
        worker = d.added.get("worker")
        _field(text, "template", str(worker))
        if isinstance(parent := d.added.get("parent"), str):
            _field(text, "parent", parent)
        for key in ("after", "task", "event", "failure"):
            if d.added.get(key):
                _field(text, key, _compact(d.added[key]))
        if (template := _spec(d)) is not None:
            _spec_fields(text, template)
        return
    spec = _spec(d)
    if spec is None:
        text.append(
            "  (the plan is not loaded)\n" if d.plan is None else "  (not in the plan)\n", style="dim"
        )
        return
    _spec_fields(text, spec)


def _record(text: Text, d: AgentDetails, now: float) -> None:
    rec = d.rec
    text.append(rec.name, style="bold")
    text.append("  ")
    text.append_text(state_cell(rec.state))
    if d.role:
        text.append(f"  {d.role}", style="dim")
    text.append("\n")
    if rec.attempts:
        _field(text, "attempt", str(rec.attempts))
    if rec.exit_code is not None or rec.signal is not None:
        signal = "" if rec.signal is None else f" (signal {rec.signal})"
        _field(text, "exit", f"{rec.exit_code}{signal}")
    if (took := runtime(rec, now)) is not None:
        _field(text, "runtime", duration(took))
    question = question_of(rec)
    if question is not None:
        _question(text, question, _spec(d))
    elif rec.reason:
        _field(text, "reason", rec.reason)
    if rec.retry_at is not None and rec.state in (AgentState.RETRYING, AgentState.RATE_LIMITED):
        _field(text, "retry", f"in {duration(rec.retry_at - now)}")
    if rec.awaiting:
        _field(text, "awaiting", rec.awaiting)


def _question(text: Text, question: str, spec: AgentSpec | None) -> None:
    """Every line of it, aligned under the first, and how to answer."""
    text.append("  question ", style="dim")
    text.append(question.replace("\n", "\n" + " " * 11), style="bold")
    text.append("\n")
    if spec is None or spec.is_cli:  # its CLI's permission dialog (unknown while the plan loads)
        _field(text, "answer", "y approves, n denies, a attaches to its pane")
    else:
        _field(text, "answer", "s types a line into its pane, a attaches to it")


def _files(text: Text, files: AgentFiles | None) -> None:
    _heading(text, "context")
    if files is None:
        text.append(f"{LOADING}\n", style="dim")
    else:
        text.append(f"{files.context}\n")
    _heading(text, "outputs")
    if files is None:
        text.append(f"{LOADING}\n", style="dim")
    elif not files.outputs:
        text.append("  (none)\n", style="dim")
    for path, size in () if files is None else files.outputs:
        _field(text, size_text(size), path)
    if files is not None and files.more_outputs:
        text.append(f"  … and {files.more_outputs} more\n", style="dim")
    if files is not None and files.worktree is not None:
        _heading(text, "worktree")
        text.append(f"{files.worktree}\n")


def details_text(d: AgentDetails, now: float) -> Text:
    """Everything the details panel shows about one agent, heading by heading."""
    text = Text()
    _record(text, d, now)
    _inputs(text, d)
    _files(text, d.files)
    _heading(text, f"events (latest {len(d.events)})" if d.events else "events")
    for ev in d.events:
        text.append_text(event_line(ev))
        text.append("\n")
    if not d.events:
        text.append("  (none)\n", style="dim")
    return text
