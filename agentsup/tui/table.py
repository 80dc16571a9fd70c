"""The agent table: one line per agent under a fixed header line, with a row cursor.

Built on Textual's line API (a :class:`ScrollView` that renders one line at a time) so that a change to
one row repaints that line alone: each row's line is rendered once and kept until its cells, the columns,
the cursor or the styles change. A DataTable re-renders every visible row on any change to any cell.

The app says what the table shows (:meth:`AgentTable.show`, :meth:`AgentTable.update_row`) and where the
cursor is (:meth:`AgentTable.select`); keys and clicks move the cursor, and the table posts
:class:`AgentTable.Highlighted` whenever the agent under it changes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import ClassVar

from rich.cells import set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from agentsup.tui.present import GAP, Cell, Column

HEADER = 1  # lines above the first row

_CURSOR, _EVEN, _ODD = "cursor", "even", "odd"


class AgentTable(ScrollView, can_focus=True):
    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "agent-table--header",
        "agent-table--even-row",
        "agent-table--cursor",
    }
    # DataTable's look, so that the switch to this widget changed nothing on screen.
    DEFAULT_CSS = """
    AgentTable {
        background: $surface;
        color: $foreground;
        & > .agent-table--header { text-style: bold; background: $panel; color: $foreground; }
        & > .agent-table--even-row { background: $surface-lighten-1 50%; }
        & > .agent-table--cursor {
            background: $block-cursor-blurred-background;
            color: $block-cursor-blurred-foreground;
            text-style: $block-cursor-blurred-text-style;
        }
        &:dark > .agent-table--even-row { background: $surface-darken-1 40%; }
        &:focus {
            background-tint: $foreground 5%;
            & > .agent-table--header { background-tint: $foreground 5%; }
            & > .agent-table--cursor {
                background: $block-cursor-background;
                color: $block-cursor-foreground;
                text-style: $block-cursor-text-style;
            }
        }
    }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("up", "cursor(-1)", "Cursor up", show=False),
        Binding("down", "cursor(1)", "Cursor down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("home,ctrl+home", "first", "First agent", show=False),
        Binding("end,ctrl+end", "last", "Last agent", show=False),
    ]

    class Highlighted(Message):
        """The cursor is on another agent (None: the table is empty)."""

        def __init__(self, agent: str | None) -> None:
            super().__init__()
            self.agent = agent

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._columns: tuple[Column, ...] = ()
        self._keys: tuple[str, ...] = ()
        self._index: dict[str, int] = {}
        self._cells: dict[str, tuple[Cell, ...]] = {}
        self._lines: dict[str, tuple[str, int, Strip]] = {}  # agent -> (row kind, width, its line)
        self._header: tuple[int, Strip] | None = None
        self._cursor = 0
        self._highlighted: str | None = None

    # -- what the app reads ----------------------------------------------------------------------------

    @property
    def columns(self) -> tuple[Column, ...]:
        return self._columns

    @property
    def rows(self) -> tuple[str, ...]:
        """The agents, top to bottom."""
        return self._keys

    @property
    def selected(self) -> str | None:
        """The agent under the cursor."""
        return self._keys[self._cursor] if self._keys else None

    def cells(self, agent: str) -> tuple[Cell, ...]:
        """The row of ``agent``; KeyError when the table has none."""
        return self._cells[agent]

    # -- what the app sets -----------------------------------------------------------------------------

    def show(self, columns: Sequence[Column], rows: Mapping[str, tuple[Cell, ...]]) -> None:
        """Show ``rows`` (agent -> its cells, in table order) under ``columns``. The cursor stays on the
        agent it was on while that agent is still shown."""
        selected = self.selected
        if tuple(columns) != self._columns:
            self._columns = tuple(columns)
            self._header = None
        self._keys = tuple(rows)
        self._index = {key: i for i, key in enumerate(self._keys)}
        self._cells = dict(rows)
        self._lines.clear()
        width = sum(col.width + GAP for col in self._columns)
        self.virtual_size = Size(width, len(self._keys) + HEADER)
        self._move(self._cursor if selected is None else self._index.get(selected, self._cursor))
        self.refresh()

    def update_row(self, agent: str, cells: tuple[Cell, ...]) -> None:
        """Change the cells of ``agent``'s row; its line is repainted when they differ."""
        if self._cells.get(agent) == cells or agent not in self._index:
            return
        self._cells[agent] = cells
        self._lines.pop(agent, None)
        self._refresh_row(self._index[agent])

    def select(self, agent: str) -> None:
        """Put the cursor on ``agent``'s row (nothing happens when there is none)."""
        if (index := self._index.get(agent)) is not None:
            self._move(index)

    # -- the cursor ------------------------------------------------------------------------------------

    def _move(self, index: int) -> None:
        index = max(0, min(index, len(self._keys) - 1))
        old, self._cursor = self._cursor, index
        if old != index:
            self._refresh_row(old)
            self._refresh_row(index)
        self._scroll_to_cursor()
        if self.selected != self._highlighted:
            self._highlighted = self.selected
            self.post_message(self.Highlighted(self._highlighted))

    def _page(self) -> int:
        return max(1, self.scrollable_content_region.height - HEADER)

    def _scroll_to_cursor(self) -> None:
        rows = self.scrollable_content_region.height - HEADER
        if rows <= 0:
            return
        top = round(self.scroll_y)
        if self._cursor < top:
            self.scroll_to(y=self._cursor, animate=False)
        elif self._cursor >= top + rows:
            self.scroll_to(y=self._cursor - rows + 1, animate=False)

    def action_cursor(self, step: int) -> None:
        self._move(self._cursor + step)

    def action_page(self, pages: int) -> None:
        self._move(self._cursor + pages * self._page())

    def action_first(self) -> None:
        self._move(0)

    def action_last(self) -> None:
        self._move(len(self._keys) - 1)

    def on_click(self, event: events.Click) -> None:
        offset = event.get_content_offset(self)
        if offset is not None and offset.y >= HEADER:
            self._move(round(self.scroll_y) + offset.y - HEADER)

    def on_resize(self) -> None:
        self._scroll_to_cursor()

    # -- rendering -------------------------------------------------------------------------------------

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._lines.clear()
        self._header = None

    def _on_focus(self, event: events.Focus) -> None:
        super()._on_focus(event)
        self._restyle()  # the focused table is tinted and its cursor brighter

    def _on_blur(self, event: events.Blur) -> None:
        super()._on_blur(event)
        self._restyle()

    def _restyle(self) -> None:
        self._lines.clear()
        self._header = None
        self.refresh()

    def _refresh_row(self, index: int) -> None:
        y = index - round(self.scroll_y) + HEADER
        if HEADER <= y < self.size.height:
            self.refresh(Region(0, y, self.size.width, 1))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        if y < HEADER:
            return self._header_line(width)
        index = round(self.scroll_y) + y - HEADER
        if index >= len(self._keys):
            return Strip.blank(width, self.rich_style)
        key = self._keys[index]
        kind = _CURSOR if index == self._cursor else _ODD if index % 2 else _EVEN
        cached = self._lines.get(key)
        if cached is not None and cached[0] == kind and cached[1] == width:
            return cached[2]
        line = self._row_line(self._cells[key], kind, width)
        self._lines[key] = (kind, width, line)
        return line

    def _header_line(self, width: int) -> Strip:
        if self._header is None or self._header[0] != width:
            style = self.rich_style + self.get_component_rich_style("agent-table--header")
            labels = [set_cell_size(col.label, col.width + GAP) for col in self._columns]
            line = Strip([Segment("".join(labels), style)]).adjust_cell_length(width, style)
            self._header = (width, line)
        return self._header[1]

    def _row_line(self, cells: tuple[Cell, ...], kind: str, width: int) -> Strip:
        base = self.rich_style
        console = self.app.console
        segments: list[Segment] = []
        for col, cell in zip(self._columns, cells, strict=True):
            size = col.width + GAP
            if isinstance(cell, str):
                segments.append(Segment(set_cell_size(cell, size)))
            else:
                # Text.render leaves out the text's own style when the text has no spans.
                own = console.get_style(cell.style) if cell.style else None
                rendered = Segment.apply_style(cell.render(console), own)
                segments.extend(Strip(list(rendered)).adjust_cell_length(size))
        if kind == _CURSOR:
            # The cursor's colours win over the cells' own, as in a DataTable.
            cursor = self.get_component_rich_style("agent-table--cursor")
            row = base + cursor
            post = Style.from_color(cursor.color, cursor.bgcolor)
            styled = Segment.apply_style(segments, style=row, post_style=post)
        else:
            row = base + self.get_component_rich_style("agent-table--even-row") if kind == _EVEN else base
            styled = Segment.apply_style(segments, style=row)
        return Strip(list(styled)).adjust_cell_length(width, row).simplify()
