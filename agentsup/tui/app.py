"""The dashboard: one run's agents, the selected agent's output and the event log, every action a key away.

The app is a client of the engine and nothing else. Its state comes from a :class:`RunFeed` (the event
log, then the live subscription, in a thread) and is redrawn at most :data:`REDRAW_INTERVAL` apart, never
per event; the selected agent's output comes from an :class:`OutputTail` thread. Commands go to the
engine over the control socket from worker threads. Leaving the app leaves the run going.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SuspendNotSupported
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, RichLog, Static

from agentsup.supervisor.client import ControlClient, ControlError
from agentsup.supervisor.events import JSON
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import ACTIVE
from agentsup.tui.feed import RunFeed, RunView
from agentsup.tui.modals import ConfirmScreen, SendScreen
from agentsup.tui.present import COLUMNS, event_line, header_text, row_cells, table_order, toast_for
from agentsup.tui.tail import MAX_LINES, OutputTail

REDRAW_INTERVAL = 0.2  # at most five redraws a second, however fast events arrive
RUNTIME_EVERY = 5  # header ticks (seconds) between refreshes of running agents' runtime cells
MAX_EVENT_LINES = 1000

AttachCommand = Callable[[str | None], list[str]]
"""The argv that attaches this terminal to an agent's pane (None: the run's session)."""


class Dashboard(App[None]):
    TITLE = "agentsup"
    CSS = """
    #header { height: 1; background: $panel; }
    #agents { height: 1fr; min-height: 4; }
    #output { height: 1fr; min-height: 3; border-top: solid $primary; }
    #events { height: 7; border-top: solid $primary; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "restart", "Restart"),
        Binding("k", "kill", "Kill"),
        Binding("s", "send", "Send"),
        Binding("p", "pause", "Pause/resume"),
        Binding("S", "stop_run", "Stop run"),
        Binding("a", "attach", "Attach"),
        Binding("q", "quit", "Quit"),
    ]

    class FeedChanged(Message):
        """The run changed; the feed holds what, until the next redraw takes it."""

    class OutputArrived(Message):
        """The output tail has lines (or a new file) for the output panel."""

    class CommandFailed(Message):
        def __init__(self, text: str) -> None:
            super().__init__()
            self.text = text

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
        self._tail = OutputTail(lambda: self.post_message(self.OutputArrived()))
        self.view: RunView | None = None
        self._records: dict[str, AgentRecord] = {}
        self._rows: list[str] = []
        self._cells: dict[str, tuple[Text | str, ...]] = {}
        self._last_redraw = 0.0
        self._redraw_due = False
        self._ticks = 0
        # Held, not queried: the app's queries search the active screen, which may be a dialog.
        self._header = Static(id="header")
        self._table: DataTable[Text | str] = DataTable(id="agents", cursor_type="row", zebra_stripes=True)
        self._output = RichLog(id="output", max_lines=MAX_LINES, wrap=False, markup=False)
        self._events = RichLog(id="events", max_lines=MAX_EVENT_LINES, wrap=False, markup=False)

    # -- layout and lifecycle --------------------------------------------------------------------------

    def compose(self) -> ComposeResult:
        yield self._header
        yield self._table
        yield self._output
        yield self._events
        yield Footer()

    def on_mount(self) -> None:
        for key, label, width in COLUMNS:
            self._table.add_column(label, width=width, key=key)
        self._output.border_title = "output"
        self._events.border_title = "events"
        self._show_header()
        self._feed.start()
        self._tail.start()
        self.set_interval(1.0, self._tick)

    def on_unmount(self) -> None:
        self._feed.close()
        self._tail.close()

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
        view = self.view = self._feed.take()
        self._records = {r.name: r for r in view.agents}
        self._update_table()
        self._show_header()
        if view.new_events:
            lines = Text("\n").join(event_line(ev) for ev in view.new_events)
            self._events.write(lines)
            for ev in view.new_events:
                toast = toast_for(ev) if ev.ts >= self._opened_at else None  # no toasts for history
                if toast is not None:
                    self.notify(toast[0], severity=toast[1], timeout=8)
        self._follow_selected()

    def _tick(self) -> None:
        self._ticks += 1
        if self.view is None or self.view.finished is not None:
            return
        self._show_header()
        if self._ticks % RUNTIME_EVERY == 0:
            self._update_table(only_active=True)

    def _show_header(self) -> None:
        header = self._header
        if self.view is None:
            header.update(Text(f" {self.run_dir.run_id}  connecting…"))
            return
        header.update(header_text(self.run_dir.run_id, self.view, self._clock()))

    def _update_table(self, only_active: bool = False) -> None:
        """Change only the cells that differ; rebuild the rows only when agents were added."""
        table = self._table
        now = self._clock()
        order = table_order(self._records)
        if order != self._rows:
            selected = self.selected_agent()
            table.clear()
            self._cells = {name: row_cells(self._records[name], now) for name in order}
            for name in order:
                table.add_row(*self._cells[name], key=name)
            self._rows = order
            if selected in self._records:
                table.move_cursor(row=table.get_row_index(selected))
            return
        for name in order:
            rec = self._records[name]
            if only_active and rec.state not in ACTIVE:
                continue
            cells = row_cells(rec, now)
            old = self._cells[name]
            for (key, _, _), new, was in zip(COLUMNS, cells, old, strict=True):
                if new != was:
                    table.update_cell(name, key, new)
            self._cells[name] = cells

    # -- the selected agent's output -------------------------------------------------------------------

    def selected_agent(self) -> str | None:
        table = self._table
        if table.row_count == 0:
            return None
        key = table.coordinate_to_cell_key(table.cursor_coordinate).row_key.value
        return key if key in self._records else None

    @on(DataTable.RowHighlighted)
    def _row_highlighted(self) -> None:
        self._follow_selected()

    def _follow_selected(self) -> None:
        agent = self.selected_agent()
        rec = None if agent is None else self._records.get(agent)
        output = self._output
        if rec is None or rec.attempts == 0:
            self._tail.follow(None, live=False)
            output.border_title = "output" if rec is None else f"output: {rec.name} (not started)"
            return
        output.border_title = f"output: {rec.name} (attempt {rec.attempts})"
        self._tail.follow(self.run_dir.output_log(rec.name, rec.attempts), live=rec.state in ACTIVE)

    @on(OutputArrived)
    def _output_arrived(self) -> None:
        reset, lines = self._tail.take()
        output = self._output
        if reset:
            output.clear()
        if lines:
            at_end = output.is_vertical_scroll_end or output.max_scroll_y == 0
            output.write(Text.from_ansi("\n".join(lines)), scroll_end=at_end)

    # -- commands --------------------------------------------------------------------------------------

    def _command(self, cmd: str, **args: JSON) -> None:
        self.run_worker(partial(self._request, cmd, args), thread=True, group="commands")

    def _request(self, cmd: str, args: dict[str, JSON]) -> None:
        """In a worker thread: one request on a connection of its own."""
        try:
            with ControlClient(self.run_dir.control_socket) as client:
                client.request(cmd, **args)
        except ControlError as exc:
            self.post_message(self.CommandFailed(f"{cmd}: {exc}"))

    @on(CommandFailed)
    def _command_failed(self, message: CommandFailed) -> None:
        self.notify(message.text, title="command refused", severity="error")

    def _agent_or_warn(self) -> str | None:
        agent = self.selected_agent()
        if agent is None:
            self.notify("no agent selected", severity="warning")
        return agent

    def action_restart(self) -> None:
        if (agent := self._agent_or_warn()) is not None:
            self._command("restart", agent=agent)

    def action_kill(self) -> None:
        if (agent := self._agent_or_warn()) is not None:
            self._command("kill", agent=agent)

    def action_send(self) -> None:
        agent = self._agent_or_warn()
        if agent is None:
            return

        def send(text: str | None) -> None:
            if text is not None:
                self._command("send", agent=agent, text=text)

        self.push_screen(SendScreen(agent), send)

    def action_pause(self) -> None:
        paused = self.view is not None and self.view.paused
        self._command("resume" if paused else "pause")

    def action_stop_run(self) -> None:
        def stop(yes: bool | None) -> None:
            if yes:
                self._command("stop")

        question = f"Stop run {self.run_dir.run_id}? Every running agent is stopped."
        self.push_screen(ConfirmScreen(question), stop)

    def action_attach(self) -> None:
        if self._attach_argv is None:
            self.notify("attaching is not available here", severity="warning")
            return
        argv = self._attach_argv(self.selected_agent())
        try:
            with self.suspend():
                subprocess.run(argv, check=False)
        except SuspendNotSupported:
            self.notify(f"cannot suspend the dashboard here; run: {' '.join(argv)}", severity="warning")
        except OSError as exc:
            self.notify(f"{argv[0]}: {exc.strerror or exc}", title="attach failed", severity="error")
