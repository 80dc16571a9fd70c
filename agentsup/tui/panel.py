"""The selected agent's panel: its live output, or its details (record, inputs, context, outputs, events).

The app says which agent to show (:meth:`AgentPanel.show`) and with what it knows of it; the panel follows
the agent's log in an :class:`OutputTail` thread and reads its files in a worker thread, one read at a
time, again when the agent changes and once a second (:meth:`AgentPanel.tick`) while it runs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.widgets import ContentSwitcher, RichLog, Static

from agentsup.plan import Plan
from agentsup.supervisor.events import JSON, Event
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import ACTIVE
from agentsup.tui.details import AgentDetails, details_text
from agentsup.tui.runfiles import AgentFiles, read_agent_files
from agentsup.tui.tail import MAX_LINES, OutputTail


@dataclass(frozen=True)
class Subject:
    """What the app knows of the agent the panel shows."""

    rec: AgentRecord
    role: str
    plan: Plan | None
    added: Mapping[str, JSON] | None


class AgentPanel(ContentSwitcher):
    class OutputArrived(Message):
        """The output tail has lines (or a new file) for the output log."""

    class FilesRead(Message):
        def __init__(self, agent: str, files: AgentFiles) -> None:
            super().__init__()
            self.agent = agent
            self.files = files

    def __init__(
        self,
        run: RunDir,
        agent_events: Callable[[str], Sequence[Event]],
        clock: Callable[[], float],
        *,
        id: str | None = None,
    ) -> None:
        super().__init__(id=id, initial="output")
        self.run_dir = run
        self._agent_events = agent_events
        self._clock = clock
        self._tail = OutputTail(lambda: self.post_message(self.OutputArrived()))
        self._subject: Subject | None = None
        self._files: tuple[str, AgentFiles] | None = None  # the last files read, and whose
        self._reading: AgentRecord | None = None  # whose files are being read, as it was then
        self._drawn: object = None  # what the details were last drawn from
        self._output = RichLog(id="output", max_lines=MAX_LINES, wrap=False, markup=False)
        self._details = Static(id="details-body")

    def compose(self) -> ComposeResult:
        yield self._output
        with VerticalScroll(id="details"):
            yield self._details

    def on_mount(self) -> None:
        self.border_title = "output"
        self._output.anchor()  # at the bottom until the user scrolls up, as the event log
        self._tail.start()

    def on_unmount(self) -> None:
        self._tail.close()

    @property
    def details_shown(self) -> bool:
        return self.current == "details"

    def toggle(self) -> None:
        self.current = "output" if self.details_shown else "details"
        self.show(self._subject)

    def show(self, subject: Subject | None) -> None:
        """Show ``subject``'s output or details; called again whenever what the app knows of it changed."""
        self._subject = subject
        rec = None if subject is None else subject.rec
        if rec is None or rec.attempts == 0:
            self._tail.follow(None, live=False)
        else:
            self._tail.follow(self.run_dir.output_log(rec.name, rec.attempts), live=rec.state in ACTIVE)
        if self.details_shown:
            self._title("details" if rec is None else f"details: {rec.name}")
            self._draw_details()
        elif rec is None:
            self._title("output")
        elif rec.attempts == 0:
            self._title(f"output: {rec.name} (not started)")
        else:
            self._title(f"output: {rec.name} (attempt {rec.attempts})")

    def _title(self, title: str) -> None:
        if self.border_title != title:  # setting it repaints the whole panel, even when it is the same
            self.border_title = title

    def tick(self) -> None:
        """Once a second: a running agent's outputs grow."""
        if self.details_shown and self._subject is not None and self._subject.rec.state in ACTIVE:
            self._read_files(self._subject.rec)

    # -- details ---------------------------------------------------------------------------------------

    def _draw_details(self) -> None:
        """Draw the details when what they show changed; read the agent's files when they may have."""
        if self._subject is None:
            self._drawn = None
            self._details.update(Text("no agent selected", style="dim"))
            return
        s = self._subject
        files = self._files[1] if self._files is not None and self._files[0] == s.rec.name else None
        drawn = self._drawn
        if files is None or not isinstance(drawn, tuple) or drawn[0] != s:
            self._read_files(s.rec)  # another agent, or it changed: its files may have too
        agent_events = self._agent_events(s.rec.name)
        key = (s, agent_events[-1].seq if agent_events else 0, files)
        if key == drawn:
            return
        self._drawn = key
        details = AgentDetails(s.rec, s.role, s.plan, s.added, files, agent_events)
        self._details.update(details_text(details, self._clock()))

    def _read_files(self, rec: AgentRecord) -> None:
        if self._reading is not None:
            return
        self._reading = rec

        def read() -> None:
            self.post_message(self.FilesRead(rec.name, read_agent_files(self.run_dir, rec.name)))

        self.run_worker(read, thread=True, group="files")

    @on(FilesRead)
    def _files_read(self, message: FilesRead) -> None:
        read_for, self._reading = self._reading, None
        self._files = (message.agent, message.files)
        if self.details_shown and self._subject is not None and self._subject.rec != read_for:
            self._read_files(self._subject.rec)  # the selection moved, or the agent changed, meanwhile
        if self.details_shown:
            self._draw_details()

    # -- output ----------------------------------------------------------------------------------------

    @on(OutputArrived)
    def _output_arrived(self) -> None:
        reset, lines = self._tail.take()
        output = self._output
        if reset:
            output.clear()
        if lines:
            at_end = output.is_vertical_scroll_end or output.max_scroll_y == 0
            output.write(Text.from_ansi("\n".join(lines)), scroll_end=False)
            if at_end:
                # Now, not after the next refresh as write() would: the panel is painted at its new
                # position only (measured: 40 % less CPU per batch while the log grows).
                output.scroll_end(animate=False, immediate=True, x_axis=False)
