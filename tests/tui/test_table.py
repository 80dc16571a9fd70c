"""The agent table on its own: what it shows, which lines a change repaints, the cursor on keys and clicks."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult
from textual.pilot import Pilot
from textual.strip import Strip

from agentsup.tui.present import Cell, Column
from agentsup.tui.table import AgentTable

COLUMNS = (Column("state", "state", 9), Column("agent", "agent", 6), Column("cpu", " cpu", 4, right=True))


def row(state: str, name: str, cpu: str = "") -> tuple[Cell, ...]:
    return (Text(state, style="green"), name, cpu.rjust(4))


def rows(n: int) -> dict[str, tuple[Cell, ...]]:
    return {f"a{i:02d}": row("running", f"a{i:02d}", str(i)) for i in range(n)}


class CountingTable(AgentTable):
    """Records the lines it is asked to render."""

    def __init__(self) -> None:
        super().__init__(id="agents")
        self.rendered: list[int] = []

    def render_line(self, y: int) -> Strip:
        self.rendered.append(y)
        return super().render_line(y)


class TableApp(App[None]):
    def __init__(self) -> None:
        super().__init__()
        self.table = CountingTable()
        self.highlighted: list[str | None] = []

    def compose(self) -> ComposeResult:
        yield self.table

    @on(AgentTable.Highlighted)
    def _highlighted(self, message: AgentTable.Highlighted) -> None:
        self.highlighted.append(message.agent)


def drive(
    scenario: Callable[[TableApp, Pilot[None]], Coroutine[Any, Any, None]], size: tuple[int, int]
) -> None:
    async def main() -> None:
        app = TableApp()
        async with app.run_test(size=size) as pilot:
            await scenario(app, pilot)

    asyncio.run(main())


def shown(table: AgentTable) -> list[str]:
    return [table.render_line(y).text.rstrip() for y in range(table.size.height)]


def test_the_header_and_the_rows_show_their_cells_in_columns() -> None:
    async def scenario(app: TableApp, pilot: Pilot[None]) -> None:
        t = app.table
        t.show(COLUMNS, {"build": row("running", "build", "12"), "test": row("waiting", "test")})
        await pilot.pause()
        assert shown(t)[:3] == ["state     agent   cpu", "running   build    12", "waiting   test"]
        assert t.rows == ("build", "test")
        assert t.cells("test") == row("waiting", "test")
        assert t.selected == "build"
        assert app.highlighted == ["build"]

    drive(scenario, (40, 6))


def test_styled_cells_keep_their_colours_under_the_rows_and_the_cursors_own() -> None:
    async def scenario(app: TableApp, pilot: Pilot[None]) -> None:
        t = app.table
        t.show(COLUMNS, {"build": row("running", "build"), "test": row("waiting", "test")})
        await pilot.pause()

        def colour(y: int, text: str) -> str | None:
            (segment,) = (s for s in t.render_line(y) if s.text.startswith(text))
            return None if segment.style is None or segment.style.color is None else segment.style.color.name

        assert colour(2, "waiting") == "green"
        assert colour(1, "running") != "green"  # the cursor's colours win, as in a DataTable

    drive(scenario, (40, 6))


def test_a_changed_row_repaints_its_line_alone() -> None:
    async def scenario(app: TableApp, pilot: Pilot[None]) -> None:
        t = app.table
        t.show(COLUMNS, rows(5))
        await pilot.pause()
        assert t.rendered  # the first paint
        t.rendered.clear()
        t.update_row("a02", row("failed", "a02", "0"))
        t.update_row("a03", row("running", "a03", "3"))  # unchanged: nothing to repaint
        await pilot.pause()
        assert t.rendered == [3]  # the header is line 0
        assert shown(t)[3] == "failed    a02       0"

    drive(scenario, (40, 8))


def test_keys_and_clicks_move_the_cursor_and_the_view_follows_it() -> None:
    async def scenario(app: TableApp, pilot: Pilot[None]) -> None:
        t = app.table
        t.show(COLUMNS, rows(30))
        t.focus()
        await pilot.pause()
        await pilot.press("down", "down")
        assert t.selected == "a02"
        await pilot.press("end")
        assert t.selected == "a29"
        await pilot.pause()
        assert shown(t)[-1].startswith("running   a29")  # scrolled to the cursor
        await pilot.press("home", "pagedown")
        assert t.selected == "a09"  # ten lines: the header and nine rows
        await pilot.press("up")
        assert app.highlighted[-4:] == ["a29", "a00", "a09", "a08"]
        await pilot.press("home")
        await pilot.click(t, offset=(2, 4))  # the fourth row
        assert t.selected == "a03"

    drive(scenario, (40, 10))


def test_the_cursor_stays_on_its_agent_when_the_rows_change() -> None:
    async def scenario(app: TableApp, pilot: Pilot[None]) -> None:
        t = app.table
        t.show(COLUMNS, rows(5))
        t.select("a03")
        t.show(COLUMNS, dict(reversed(rows(5).items())))
        assert t.selected == "a03"
        assert t.rows.index("a03") == 1
        t.show(COLUMNS, {k: v for k, v in rows(5).items() if k != "a03"})
        assert t.selected == "a01"  # gone: the cursor stays on its line
        t.show(COLUMNS, {})
        assert t.selected is None
        await pilot.pause()
        assert app.highlighted[-1] is None

    drive(scenario, (40, 8))
