"""The dashboard: one run's agents, the selected agent's output or details, and the event log; every action
a key (or a command palette entry) away.

The app is a client of the engine and nothing else. Its state comes from a :class:`RunFeed` (the event
log, then the live subscription, in a thread) and is redrawn at most :data:`REDRAW_INTERVAL` apart, never
per event; the selected agent's output and details are an :class:`AgentPanel`'s; the table's CPU, memory
and last output lines come from a :class:`TableSampler` in a worker thread once a second. Files are read
and commands sent from worker threads only. Leaving the app leaves the run going.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import time
from collections.abc import Callable, Collection, Iterable, Mapping
from functools import partial
from pathlib import Path
from typing import ClassVar

from rich.cells import cell_len
from rich.text import Text
from textual import events, on
from textual.app import App, ComposeResult, SuspendNotSupported, SystemCommand
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Input, RichLog, Static

from agentsup.plan import Plan, PlanError
from agentsup.supervisor.client import ControlClient, ControlError
from agentsup.supervisor.events import JSON, Event
from agentsup.supervisor.rundir import RunDir, RunDirError
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import ACTIVE, AgentState
from agentsup.tui.feed import RunFeed, RunView
from agentsup.tui.graph import GraphScreen
from agentsup.tui.panel import AgentPanel, Subject
from agentsup.tui.present import (
    Cell,
    Column,
    RowFacts,
    SortOrder,
    agent_label,
    arrange,
    event_line,
    header_text,
    next_sort,
    pager_argv,
    role_of,
    row_cells,
    table_columns,
    toast_for,
)
from agentsup.tui.runfiles import TableSample, TableSampler, Usage, load_plan
from agentsup.tui.table import AgentTable

REDRAW_INTERVAL = 0.2  # at most five redraws a second, however fast events arrive
# The table's clock-driven cells (runtime, CPU, memory, last line) change together, once a second.
SAMPLE_INTERVAL = 1.0
MAX_EVENT_LINES = 1000

AttachCommand = Callable[[str | None], list[str]]
"""The argv that attaches this terminal to an agent's pane (None: the run's session)."""

Done = Callable[[Mapping[str, JSON]], str]
"""What to tell the user when a command succeeded, given the engine's reply."""

# Command palette entries: title, help, action.
PALETTE: tuple[tuple[str, str, str], ...] = (
    ("Restart agent", "Restart the selected agent (r)", "restart"),
    ("Kill agent", "Stop the selected agent (k)", "kill"),
    ("Send a line", "Type one line into the selected agent's pane (s)", "send"),
    ("Send a prompt", "Paste several lines into the selected agent's pane (m)", "prompt"),
    ("Approve", "Answer yes to the permission question of the selected agent CLI (y)", "approve"),
    ("Deny", "Answer no to the permission question of the selected agent CLI (n)", "deny"),
    ("Emit an event", "Raise an external event for the run's handlers (e)", "emit"),
    ("Show output or details", "Switch the panel between output and details (i)", "toggle_details"),
    ("Show the dependency graph", "The plan's agents in layers, with their states (g)", "graph"),
    ("Open the output log", "The selected agent's whole log in $PAGER (l)", "pager"),
    ("Attach", "Put this terminal on the selected agent's tmux pane (a)", "attach"),
    ("Cycle the sort order", "Plan, state, name, runtime, CPU, memory (o)", "cycle_sort"),
    ("Filter agents", "Show agents whose name or state contains a text (/)", "filter"),
    ("Pause or resume the run", "Hold new agents back, or let them start again (p)", "pause"),
    ("Stop the run", "Stop every agent and end the run (S)", "stop_run"),
)


class Dashboard(App[None]):
    TITLE = "agentsup"
    CSS = """
    #header { height: 1; background: $panel; }
    #filter { height: 1; border: none; padding: 0 1; display: none; }
    #agents { height: 1fr; min-height: 4; overflow-x: hidden; scrollbar-size-vertical: 1; }
    #panel { height: 1fr; min-height: 3; border-top: solid $primary; }
    #events { height: 7; border-top: solid $primary; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "restart", "Restart"),
        Binding("k", "kill", "Kill"),
        Binding("s", "send", "Send"),
        Binding("m", "prompt", "Prompt"),
        Binding("y", "approve", "Approve"),
        Binding("n", "deny", "Deny"),
        Binding("i", "toggle_details", "Details"),
        Binding("g", "graph", "Graph"),
        Binding("l", "pager", "Log"),
        Binding("o", "cycle_sort", "Sort"),
        Binding("slash", "filter", "Filter"),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("e", "emit", "Emit"),
        Binding("p", "pause", "Pause/resume"),
        Binding("S", "stop_run", "Stop run"),
        Binding("a", "attach", "Attach"),
        Binding("q", "quit", "Quit"),
    ]

    class FeedChanged(Message):
        """The run changed; the feed holds what, until the next redraw takes it."""

    class Sampled(Message):
        def __init__(self, sample: TableSample) -> None:
            super().__init__()
            self.sample = sample

    class PlanLoaded(Message):
        def __init__(self, plan: Plan | None, problem: str | None) -> None:
            super().__init__()
            self.plan = plan
            self.problem = problem

    class CommandDone(Message):
        def __init__(self, key: tuple[str, str | None], text: str, ok: bool) -> None:
            super().__init__()
            self.key = key
            self.text = text
            self.ok = ok

    def __init__(
        self,
        run: RunDir,
        attach: AttachCommand | None = None,
        *,
        clock: Callable[[], float] = time.time,
        retry: float = 1.0,
    ) -> None:
        super().__init__()
        self.run_dir = run
        self._attach_argv = attach
        self._clock = clock
        self._opened_at = clock()  # events older than this are history: no toasts for them
        self._feed = RunFeed(run, lambda: self.post_message(self.FeedChanged()), retry=retry)
        self._sampler = TableSampler(run.path / "usage.json")
        self.view: RunView | None = None
        self.plan: Plan | None = None
        self.sort = SortOrder.PLAN
        self.filter_text = ""
        self._records: dict[str, AgentRecord] = {}
        self._roles: dict[str, str] = {}
        self._usage: Mapping[str, Usage] = {}
        self._last_lines: Mapping[str, str] = {}
        self._last_redraw = 0.0
        self._redraw_due = False
        self._sampling = False
        self._final_sampled = False  # the run is over and its logs were read once more since
        self._graph: GraphScreen | None = None  # while it is shown
        self._inflight: set[tuple[str, str | None]] = set()
        self._unwritten: list[Event] = []  # for the event log, in order
        # Held, not queried: the app's queries search the active screen, which may be a dialog.
        self._header = Static(id="header")
        self._filter_input = Input(
            placeholder="filter: part of a name or a state (Escape clears)", id="filter"
        )
        self._table = AgentTable(id="agents")
        self._panel = AgentPanel(run, self._feed.agent_events, clock, id="panel")
        self._events = RichLog(id="events", max_lines=MAX_EVENT_LINES, wrap=False, markup=False)

    # -- layout and lifecycle --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self._header
        yield self._filter_input
        yield self._table
        yield self._panel
        yield self._events
        yield Footer()

    def on_mount(self) -> None:
        self._events.border_title = "events"
        # Kept at the bottom (until the user scrolls up) by each layout, also when a long line brings the
        # horizontal scrollbar: scrolling to the end after a write can race with that layout.
        self._events.anchor()
        self._table.focus()
        self._show_header()
        self._feed.start()
        self.run_worker(self._load_plan, thread=True, group="plan")
        self.set_interval(SAMPLE_INTERVAL, self._tick)

    def on_unmount(self) -> None:
        self._feed.close()

    def on_resize(self, event: events.Resize) -> None:
        self._update_table()

    def get_system_commands(self, screen: Screen[object]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for title, help_text, action in PALETTE:
            yield SystemCommand(title, help_text, getattr(self, f"action_{action}"))

    def _load_plan(self) -> None:
        """In a worker thread: the plan says each agent's role and inputs; without it the names do."""
        try:
            self.post_message(self.PlanLoaded(load_plan(self.run_dir), None))
        except (PlanError, RunDirError, OSError) as exc:
            self.post_message(self.PlanLoaded(None, str(exc)))

    @on(PlanLoaded)
    def _plan_loaded(self, message: PlanLoaded) -> None:
        self.plan = message.plan
        if message.problem is not None:
            self.notify(f"the plan cannot be read: {message.problem}", severity="warning")
        self._roles.clear()
        self._update_table()
        self._follow_selected()
        if self._graph is not None and self.plan is not None:
            self._graph.refresh_view(self.plan, self._records.values())

    # -- redraws ---------------------------------------------------------------------------------------

    @on(FeedChanged)
    def _feed_changed(self) -> None:
        if self._redraw_due:
            return
        wait = self._last_redraw + REDRAW_INTERVAL - time.monotonic()
        if wait > 0:
            self._redraw_due = True
            self.set_timer(wait, self._redraw)
        else:
            self._redraw()

    def _redraw(self) -> None:
        self._redraw_due = False
        self._last_redraw = time.monotonic()
        first = self.view is None
        view = self.view = self._feed.take()
        old, self._records = self._records, {r.name: r for r in view.agents}
        self._update_table(only={name for name, rec in self._records.items() if old.get(name) is not rec})
        self._show_header()
        self._unwritten.extend(view.new_events)
        for ev in view.new_events:
            toast = toast_for(ev) if ev.ts >= self._opened_at else None  # no toasts for history
            if toast is not None:
                self.notify(toast[0], severity=toast[1], timeout=8)
        if first:
            # The table first; the event history and the selected agent's output (hundreds of lines to
            # render) a frame later.
            self.call_after_refresh(self._write_events)
            self.call_after_refresh(self._follow_selected)
        else:
            self._write_events()
            self._follow_selected()
        if self._graph is not None and self.plan is not None:
            self._graph.refresh_view(self.plan, view.agents)

    def _write_events(self) -> None:
        if self._unwritten:
            lines = Text("\n").join(event_line(ev) for ev in self._unwritten)
            self._unwritten.clear()
            self._events.write(lines)

    def _tick(self) -> None:
        view = self.view
        if view is None:
            return
        if view.finished is None:
            self._show_header()
        self._panel.tick()
        if self._sampling:
            self._update_table(only=self._active())  # the sample is late; the runtimes move on
            return
        if view.finished is not None and self._final_sampled:
            return
        self._final_sampled = view.finished is not None
        self._sampling = True
        logs = {
            r.name: (self.run_dir.output_log(r.name, r.attempts), r.state in ACTIVE)
            for r in view.agents
            if r.attempts
        }
        with_usage = view.connected and view.finished is None  # a dead engine's sample is stale
        # Named: a worker is otherwise named after repr(work), here every log path, once a second.
        self.run_worker(partial(self._sample, logs, with_usage), name="sample", thread=True, group="sample")

    def _sample(self, logs: dict[str, tuple[Path, bool]], with_usage: bool) -> None:
        self.post_message(self.Sampled(self._sampler.sample(logs, with_usage)))

    @on(Sampled)
    def _sampled(self, message: Sampled) -> None:
        self._sampling = False
        sample = message.sample
        changed = {n for n, line in sample.last_lines.items() if self._last_lines.get(n) != line}
        changed |= {n for n in {*sample.usage, *self._usage} if sample.usage.get(n) != self._usage.get(n)}
        self._usage, self._last_lines = sample.usage, sample.last_lines
        self._update_table(only=changed | self._active())

    def _active(self) -> set[str]:
        return {name for name, rec in self._records.items() if rec.state in ACTIVE}

    def _show_header(self) -> None:
        if self.view is None:
            text = Text(f" {self.run_dir.run_id}  connecting…")
        else:
            shown = len(self._table.rows) if self.filter_text.strip() else None
            text = header_text(self.run_dir.run_id, self.view, self._clock(), shown=shown)
        if text != self._header.content:
            # One line whatever it says: no layout (a layout repaints the whole screen).
            self._header.update(text, layout=False)

    def _role(self, name: str) -> str:
        role = self._roles.get(name)
        if role is None:
            added = None if self.view is None else self.view.added.get(name)
            role = self._roles[name] = role_of(name, self.plan, added)
        return role

    def _update_table(self, only: Collection[str] | None = None) -> None:
        """Change the rows ``only`` names (None: all) where their cells differ; show the table anew when
        its rows or its columns change."""
        if self.view is None:
            return
        table, now = self._table, self._clock()
        tree = self.sort is SortOrder.PLAN and not self.filter_text.strip()
        order = arrange(self.view.agents, self.sort, now, self._usage, self.filter_text)
        labels = {name: agent_label(name) if tree else name for name in order}
        longest = max((cell_len(label) for label in labels.values()), default=0)
        columns = table_columns(self.size.width, longest, self.sort)
        if tuple(order) != table.rows or columns != table.columns:
            table.show(columns, {name: self._row(name, labels[name], columns, now) for name in order})
            self._show_header()
            return
        for name in order if only is None else [n for n in order if n in only]:
            table.update_row(name, self._row(name, labels[name], columns, now))

    def _row(self, name: str, label: str, columns: tuple[Column, ...], now: float) -> tuple[Cell, ...]:
        rec = self._records[name]
        usage = self._usage.get(name) if rec.state in ACTIVE else None
        facts = RowFacts(label, self._role(name), usage, self._last_lines.get(name, ""))
        return row_cells(rec, columns, facts, now)

    # -- sorting and filtering -------------------------------------------------------------------------

    def action_cycle_sort(self) -> None:
        self.sort = next_sort(self.sort)
        self.notify(
            f"sorted by {self.sort.value}" + (" order" if self.sort is SortOrder.PLAN else ""), timeout=2
        )
        self._update_table()

    def action_filter(self) -> None:
        self._filter_input.display = True
        self._filter_input.focus()

    @on(Input.Changed, "#filter")
    def _filter_changed(self, event: Input.Changed) -> None:
        self.filter_text = event.value
        self._update_table()
        self._show_header()

    @on(Input.Submitted, "#filter")
    def _filter_submitted(self) -> None:
        self._table.focus()
        if not self.filter_text.strip():
            self._filter_input.display = False

    def action_clear_filter(self) -> None:
        if not self._filter_input.display:
            return
        self._filter_input.value = ""
        self._filter_input.display = False
        self.filter_text = ""
        self._table.focus()
        self._update_table()
        self._show_header()

    # -- the selected agent: output and details --------------------------------------------------------

    def selected_agent(self) -> str | None:
        key = self._table.selected
        return key if key in self._records else None

    def _selected_record(self) -> AgentRecord | None:
        agent = self.selected_agent()
        return None if agent is None else self._records.get(agent)

    @on(AgentTable.Highlighted)
    def _row_highlighted(self) -> None:
        self._follow_selected()

    def action_toggle_details(self) -> None:
        self._panel.toggle()

    def _follow_selected(self) -> None:
        rec = self._selected_record()
        if rec is None:
            self._panel.show(None)
            return
        added = None if self.view is None else self.view.added.get(rec.name)
        self._panel.show(Subject(rec, self._role(rec.name), self.plan, added))

    def action_graph(self) -> None:
        if self._graph is not None:
            return
        if self.plan is None:
            self.notify("the plan is not loaded (yet)", severity="warning")
            return
        screen = self._graph = GraphScreen()
        screen.refresh_view(self.plan, self._records.values())

        def closed(_: None) -> None:
            self._graph = None

        self.push_screen(screen, closed)

    # -- commands --------------------------------------------------------------------------------------

    def _command(self, cmd: str, agent: str | None, done: Done, **args: JSON) -> None:
        """Send ``cmd`` from a worker thread; while one for the same (command, agent) is in flight, say so
        and send nothing."""
        key = (cmd, agent)
        if key in self._inflight:
            self.notify(
                f"{cmd}{'' if agent is None else f' of {agent}'} already in progress", severity="warning"
            )
            return
        self._inflight.add(key)
        if agent is not None:
            args["agent"] = agent
        self.run_worker(partial(self._request, key, done, args), name=cmd, thread=True, group="commands")

    def _request(self, key: tuple[str, str | None], done: Done, args: dict[str, JSON]) -> None:
        """In a worker thread: one request on a connection of its own."""
        cmd = key[0]
        try:
            with ControlClient(self.run_dir.control_socket) as client:
                reply = client.request(cmd, **args)
        except ControlError as exc:
            self.post_message(self.CommandDone(key, f"{cmd}: {exc}", ok=False))
            return
        self.post_message(self.CommandDone(key, done(reply), ok=True))

    @on(CommandDone)
    def _command_done(self, message: CommandDone) -> None:
        self._inflight.discard(message.key)
        if message.ok:
            self.notify(message.text, timeout=3)
        else:
            self.notify(message.text, title="command refused", severity="error")

    def _agent_or_warn(self) -> str | None:
        agent = self.selected_agent()
        if agent is None:
            self.notify("no agent selected", severity="warning")
        return agent

    def action_restart(self) -> None:
        if (agent := self._agent_or_warn()) is not None:
            self._command("restart", agent, lambda _: f"restart sent to {agent}")

    def action_kill(self) -> None:
        if (agent := self._agent_or_warn()) is not None:
            self._command("kill", agent, lambda _: f"kill sent to {agent}")

    def action_approve(self) -> None:
        self._answer(deny=False)

    def action_deny(self) -> None:
        self._answer(deny=True)

    def _answer(self, *, deny: bool) -> None:
        """Answer the permission dialog the selected agent waits on; one that waits on none is told so."""
        rec = self._selected_record()
        if rec is None:
            self.notify("no agent selected", severity="warning")
            return
        if rec.state is not AgentState.NEEDS_INPUT:
            self.notify(
                f"{rec.name} is not waiting for an answer (it is {rec.state.value}): nothing sent",
                severity="warning",
            )
            return
        agent = rec.name
        # One key for both answers: a second press of either, before the first is done, sends nothing.
        self._command("approve", agent, lambda reply: f"{agent}: {reply.get('done')}", deny=deny)

    def _send(self, agent: str, text: str | None) -> None:
        if text:
            lines = text.count("\n") + 1
            what = "a line" if lines == 1 else f"{lines} lines"
            self._command("send", agent, lambda _: f"{what} sent to {agent}", text=text)

    def action_send(self) -> None:
        from agentsup.tui.modals import SendScreen  # noqa: PLC0415 -- TextArea and co.: not needed to start

        if (agent := self._agent_or_warn()) is not None:
            self.push_screen(SendScreen(agent), partial(self._send, agent))

    def action_prompt(self) -> None:
        from agentsup.tui.modals import PromptScreen  # noqa: PLC0415 -- TextArea and co.: not needed to start

        if (agent := self._agent_or_warn()) is not None:
            self.push_screen(PromptScreen(agent), partial(self._send, agent))

    def action_emit(self) -> None:
        from agentsup.tui.modals import EmitScreen  # noqa: PLC0415 -- TextArea and co.: not needed to start

        def emit(event: tuple[str, JSON] | None) -> None:
            if event is not None:
                name, data = event
                self._command(
                    "emit",
                    None,
                    lambda reply: f"event {name} emitted (seq {reply.get('seq')})",
                    name=name,
                    data=data,
                )

        self.push_screen(EmitScreen(), emit)

    def action_pause(self) -> None:
        cmd = "resume" if self.view is not None and self.view.paused else "pause"
        self._command(cmd, None, lambda _: f"run {cmd}d")

    def action_stop_run(self) -> None:
        from agentsup.tui.modals import ConfirmScreen  # noqa: PLC0415 -- TextArea and co.: not needed to start

        def stop(yes: bool | None) -> None:
            if yes:
                self._command("stop", None, lambda _: "stop sent to the run")

        question = f"Stop run {self.run_dir.run_id}? Every running agent is stopped."
        self.push_screen(ConfirmScreen(question), stop)

    def action_attach(self) -> None:
        if self._attach_argv is None:
            self.notify("attaching is not available here", severity="warning")
            return
        self._run_suspended(self._attach_argv(self.selected_agent()), "attach")

    def action_pager(self) -> None:
        rec = self._selected_record()
        if rec is None:
            self.notify("no agent selected", severity="warning")
            return
        if rec.attempts == 0:
            self.notify(f"{rec.name} has not started: no output yet", severity="warning")
            return
        argv = pager_argv(os.environ.get("PAGER"), self.run_dir.output_log(rec.name, rec.attempts))
        self._run_suspended(argv, "pager")

    def _run_suspended(self, argv: list[str], what: str) -> None:
        """Give the terminal to ``argv`` until it exits."""
        try:
            with self.suspend():
                subprocess.run(argv, check=False)
        except SuspendNotSupported:
            self.notify(f"cannot suspend the dashboard here; run: {shlex.join(argv)}", severity="warning")
        except OSError as exc:
            self.notify(f"{argv[0]}: {exc.strerror or exc}", title=f"{what} failed", severity="error")
