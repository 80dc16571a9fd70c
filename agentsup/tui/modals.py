"""The dashboard's small dialogs: type a line or a prompt for an agent, emit an event, confirm a
destructive action."""

from __future__ import annotations

import json
from typing import ClassVar

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea

from agentsup.supervisor.commands import EVENT_NAME_MAX
from agentsup.supervisor.events import JSON

_DIALOG_CSS = """
{name} {{
    align: center middle;
}}
{name} > Vertical {{
    width: 70;
    max-width: 100%;
    height: auto;
    border: round $accent;
    padding: 0 1;
    background: $surface;
}}
{name} Horizontal {{
    height: auto;
    align-horizontal: right;
}}
{name} Button {{
    margin-left: 1;
    min-width: 10;
}}
{name} TextArea {{
    height: 10;
}}
{name} #error {{
    color: $error;
}}
"""


class SendScreen(ModalScreen[str | None]):
    """One line of text for an agent; Enter sends it (followed by Enter in the pane), Escape cancels."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="SendScreen")
    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(
                Text.assemble("Send a line to ", (self.agent, "bold"), " (Enter sends, Escape cancels)")
            )
            yield Input(placeholder="text", id="text")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)


class ConfirmScreen(ModalScreen[bool]):
    """A question answered with y (or the Yes button) or n / Escape."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="ConfirmScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "Yes"),
        Binding("n,escape", "answer(False)", "No"),
    ]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question))
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no", variant="primary")

    def on_mount(self) -> None:
        self.query_one("#no", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class PromptScreen(ModalScreen[str | None]):
    """Several lines for an agent, sent as one paste and then Enter; ctrl+s sends, Escape cancels."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="PromptScreen")
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Send", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, agent: str) -> None:
        super().__init__()
        self.agent = agent

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text.assemble("Prompt for ", (self.agent, "bold"), " (ctrl+s sends, Escape cancels)"))
            yield TextArea(id="text", soft_wrap=True)
            with Horizontal():
                yield Button("Send (ctrl+s)", id="send", variant="primary")
                yield Button("Cancel", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#text", TextArea).focus()

    @on(Button.Pressed, "#send")
    def action_submit(self) -> None:
        text = self.query_one("#text", TextArea).text.rstrip("\n")  # the engine presses Enter after it
        self.dismiss(text if text.strip() else None)

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)


class EmitScreen(ModalScreen[tuple[str, JSON] | None]):
    """An external event: a name, and optional JSON data; Enter in the name or ctrl+s emits it."""

    DEFAULT_CSS = _DIALOG_CSS.format(name="EmitScreen") + "EmitScreen TextArea { height: 5; }"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "submit", "Emit", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label("Emit an external event (ctrl+s emits, Escape cancels)")
            yield Input(placeholder="event name", id="name", max_length=EVENT_NAME_MAX)
            yield Label("data (JSON, optional)")
            yield TextArea(id="data")
            yield Label("", id="error")
            with Horizontal():
                yield Button("Emit (ctrl+s)", id="emit", variant="primary")
                yield Button("Cancel", id="cancel")

    @on(Input.Submitted)
    @on(Button.Pressed, "#emit")
    def action_submit(self) -> None:
        name = self.query_one("#name", Input).value.strip()
        raw = self.query_one("#data", TextArea).text.strip()
        error = self.query_one("#error", Label)
        if not name:
            error.update("the event needs a name")
            return
        try:
            data: JSON = json.loads(raw) if raw else None
        except ValueError as exc:
            error.update(f"data is not JSON: {exc}")
            return
        self.dismiss((name, data))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
