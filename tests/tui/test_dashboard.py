"""The dashboard driven through Pilot against a real engine running scripted agents in tmux."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import psutil
import pytest
from rich.text import Text
from textual.command import CommandList
from textual.pilot import Pilot
from textual.widget import Widget
from textual.widgets import ContentSwitcher, Input, Label, RichLog, Static, TextArea

from agentsup.supervisor.events import EventKind
from agentsup.supervisor.rundir import RunDir
from agentsup.tui.app import Dashboard
from agentsup.tui.graph import GraphScreen
from agentsup.tui.modals import EmitScreen, PromptScreen
from agentsup.tui.table import AgentTable
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

SIZE = (100, 30)

PLAN = """
[run]
name = "dash"

[agents.reader]
cmd = '''
echo "reader: ready"
while IFS= read -r line; do echo "$line" >> "$AGENTSUP_OUT/lines.txt"; echo "got: $line"; done
'''

[agents.gate]
cmd = 'echo "gate: waiting"; while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done; echo "gate: open"'

[agents.sleeper]
cmd = "echo sleeping; sleep 600"
"""

AGENTS = ("reader", "gate", "sleeper")


def start_run(agentsup: Agentsup, tmp_path: Path, run_id: str) -> RunDir:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    agentsup.run("start", str(plan), "--detach", "--run-id", run_id)
    return RunDir(agentsup.run_dir(run_id))


def agent_state(agentsup: Agentsup, run: RunDir, agent: str) -> dict[str, Any]:
    status = agentsup.status_json(run.run_id)
    by_name: dict[str, dict[str, Any]] = {a["name"]: a for a in status["agents"]}
    return by_name[agent]


def table(app: Dashboard) -> AgentTable:
    return app.query_one("#agents", AgentTable)


def cell(app: Dashboard, agent: str, column: str) -> str:
    """What the cell shows, without the padding; "" while there is no such row or column."""
    t = table(app)
    keys = [col.key for col in t.columns]
    if agent not in t.rows or column not in keys:
        return ""
    value = t.cells(agent)[keys.index(column)]
    return (value.plain if isinstance(value, Text) else str(value)).strip()


def shown_state(app: Dashboard, agent: str) -> str:
    """The state word of the agent's row (the symbol before it is decoration)."""
    shown = cell(app, agent, "state").split()
    return shown[-1] if shown else ""


def header(app: Dashboard) -> str:
    content = app.query_one("#header", Static).content
    return content.plain if isinstance(content, Text) else str(content)


def output_text(app: Dashboard) -> str:
    return "\n".join(strip.text for strip in app.query_one("#output", RichLog).lines)


async def until(pilot: Pilot[None], predicate: Callable[[], object], what: str, timeout: float = 20) -> None:
    """Let the app run until ``predicate`` holds; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


async def until_async(
    pilot: Pilot[None], predicate: Callable[[], Awaitable[object]], what: str, timeout: float = 20
) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await pilot.pause(0.05)


def select(app: Dashboard, agent: str) -> None:
    table(app).select(agent)


def drive(scenario: Callable[[], Coroutine[Any, Any, None]]) -> None:
    asyncio.run(scenario())


def test_table_shows_every_agent_and_follows_their_states(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-table")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(
                pilot,
                lambda: all(shown_state(app, a) == "running" for a in AGENTS),
                "every agent shown running",
            )
            assert cell(app, "gate", "attempt") == "1"
            await until(
                pilot,
                lambda: header(app).startswith(" dash-table  running  0/3 done  0 failed  3 running"),
                "the header of a live run",
            )

            (run.out_dir("gate") / "go").touch()
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate shown succeeded")
            assert cell(app, "gate", "exit") == "0"
            await until(pilot, lambda: "1/3 done" in header(app), "progress 1/3 in the header")
            assert shown_state(app, "sleeper") == "running"

            # The selected agent's output, and the event log, follow the run.
            select(app, "gate")
            await until(pilot, lambda: "gate: open" in output_text(app), "gate's output shown")
            events = "\n".join(s.text for s in app.query_one("#events", RichLog).lines)
            assert "gate running → ✓ succeeded" in events

            await pilot.press("q")
        # Quitting leaves the run going.
        assert agent_state(agentsup, run, "sleeper")["state"] == "running"
        assert agentsup.engine_pids()

    drive(scenario)


def test_k_kills_the_selected_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-kill")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "sleeper") == "running", "sleeper running")
            select(app, "sleeper")
            await pilot.press("k")
            await until(pilot, lambda: shown_state(app, "sleeper") == "stopped", "sleeper shown stopped")
            state = await asyncio.to_thread(agent_state, agentsup, run, "sleeper")
            assert state["state"] == "stopped"
            assert shown_state(app, "reader") == "running"

    drive(scenario)


def test_s_sends_a_line_to_the_selected_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-send")
    lines = run.out_dir("reader") / "lines.txt"

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "reader") == "running", "reader running")
            select(app, "reader")
            await until(pilot, lambda: "reader: ready" in output_text(app), "reader's output shown")
            await pilot.press("s")
            await pilot.press(*"hello world")
            await pilot.press("enter")
            await until(
                pilot,
                lambda: lines.exists() and lines.read_text() == "hello world\n",
                "the line in the reader's file",
            )
            await until(pilot, lambda: "got: hello world" in output_text(app), "the reply in the output")

    drive(scenario)


def test_r_restarts_a_stopped_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-restart")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "sleeper") == "running", "sleeper running")
            await asyncio.to_thread(agentsup.run, "kill", run.run_id, "sleeper")
            await until(pilot, lambda: shown_state(app, "sleeper") == "stopped", "sleeper shown stopped")
            select(app, "sleeper")
            await pilot.press("r")
            await until(
                pilot,
                lambda: shown_state(app, "sleeper") == "running" and cell(app, "sleeper", "attempt") == "2",
                "sleeper running its second attempt",
            )
            state = await asyncio.to_thread(agent_state, agentsup, run, "sleeper")
            assert (state["state"], state["attempts"]) == ("running", 2)

    drive(scenario)


def test_the_end_of_the_run_shows_and_the_last_states_stay(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-end")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "gate") == "running", "gate running")
            (run.out_dir("gate") / "go").touch()
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate succeeded")

            # S asks first; n leaves the run alone.
            await pilot.press("S")
            await pilot.press("n")
            await pilot.pause(0.3)
            assert (await asyncio.to_thread(agentsup.status_json, run.run_id))["state"] == "running"

            await asyncio.to_thread(agentsup.run, "stop", run.run_id)
            await until(
                pilot, lambda: header(app).startswith(" dash-end  stopped"), "the header says stopped"
            )
            # The engine goes away with the run; the dashboard keeps the outcome and the last states.
            await until(pilot, lambda: not agentsup.engine_pids(), "the engine gone")
            await pilot.pause(0.3)
            assert header(app).startswith(" dash-end  stopped  3/3 done")
            assert [shown_state(app, a) for a in AGENTS] == ["stopped", "succeeded", "stopped"]

    drive(scenario)


def test_a_dead_engine_leaves_the_state_from_the_log(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-dead")
    (run.out_dir("gate") / "go").touch()
    wait_until(lambda: agent_state(agentsup, run, "gate")["state"] == "succeeded", message="gate succeeded")
    wait_until(lambda: agent_state(agentsup, run, "sleeper")["state"] == "running", message="sleeper runs")
    wait_until(lambda: "rss" in agent_state(agentsup, run, "sleeper"), message="a usage sample")
    for pid in agentsup.engine_pids():
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not agentsup.engine_pids(), message="the engine gone")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate from the log")
            assert [shown_state(app, a) for a in AGENTS] == ["running", "succeeded", "running"]
            # Its last usage sample is stale: not shown.
            await until(pilot, lambda: cell(app, "sleeper", "last") == "sleeping", "the logs read")
            assert cell(app, "sleeper", "rss") == ""
            await until(
                pilot,
                lambda: header(app).startswith(" dash-dead  engine stopped  1/3 done  0 failed  2 running"),
                "the header saying the engine stopped",
            )

    drive(scenario)


# -- the table's columns, sorting and filtering --------------------------------------------------------


def rows(app: Dashboard) -> list[str]:
    return list(table(app).rows)


def labels(app: Dashboard) -> dict[str, str]:
    return {col.key: col.label.strip() for col in table(app).columns}


def toasts(app: Dashboard) -> list[str]:
    return [str(w.render()) for w in app.screen.query("Toast") if isinstance(w, Widget)]


def test_the_table_shows_roles_usage_last_lines_and_a_running_clock(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    run = start_run(agentsup, tmp_path, "dash-cols")
    offset = [0.0]

    async def scenario() -> None:
        app = Dashboard(run, clock=lambda: time.time() + offset[0])
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: cell(app, "reader", "last") == "reader: ready", "reader's last line")
            assert cell(app, "gate", "last") == "gate: waiting"
            assert [cell(app, a, "role") for a in AGENTS] == ["step", "step", "step"]
            await until(pilot, lambda: cell(app, "sleeper", "rss").endswith(("K", "M")), "sleeper's memory")
            assert cell(app, "sleeper", "cpu").isdigit()

            # The last line follows the output; the clock moves the runtimes without any event.
            await asyncio.to_thread(agentsup.run, "send", run.run_id, "reader", "hello")
            await until(pilot, lambda: cell(app, "reader", "last") == "got: hello", "the reply as last line")
            offset[0] = 3600
            await until(pilot, lambda: cell(app, "sleeper", "runtime") == "1h00m", "an hour later")

            # A finished agent keeps its last line and loses its usage.
            (run.out_dir("gate") / "go").touch()
            await until(pilot, lambda: cell(app, "gate", "last") == "gate: open", "gate's final line")
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate succeeded")
            assert (cell(app, "gate", "cpu"), cell(app, "gate", "rss")) == ("", "")

            # The attempt and the exit code need a wider screen.
            assert "attempt" not in labels(app)
            await pilot.resize_terminal(120, 30)
            await until(pilot, lambda: "attempt" in labels(app), "the attempt column")
            assert cell(app, "gate", "exit") == "0"

    drive(scenario)


def test_slash_filters_and_o_cycles_the_sort_order(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-sort")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: all(shown_state(app, a) == "running" for a in AGENTS), "all running")
            (run.out_dir("gate") / "go").touch()
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate succeeded")
            assert rows(app) == ["reader", "gate", "sleeper"]

            await pilot.press("slash", *"sle")
            await until(pilot, lambda: rows(app) == ["sleeper"], "only the sleeper")
            assert "filter: 1 shown" in header(app)
            await pilot.press("enter")  # the filter stays; the keys act on the table again
            assert app.focused is table(app)
            assert rows(app) == ["sleeper"]
            await pilot.press("escape")
            await until(pilot, lambda: rows(app) == ["reader", "gate", "sleeper"], "every agent again")
            assert "filter" not in header(app)

            await pilot.press("slash", *"SUCC")  # a state word, in any case
            await until(pilot, lambda: rows(app) == ["gate"], "only the succeeded agent")
            await pilot.press("escape")  # from the input itself
            await until(pilot, lambda: rows(app) == ["reader", "gate", "sleeper"], "every agent again")
            assert not app.query_one("#filter", Input).display

            await pilot.press("o")
            await until(pilot, lambda: rows(app) == ["reader", "sleeper", "gate"], "running agents first")
            assert labels(app)["state"] == "state↓"
            await pilot.press("o")
            await until(pilot, lambda: rows(app) == ["gate", "reader", "sleeper"], "sorted by name")
            assert labels(app)["agent"] == "agent↓"
            await pilot.press("o")
            await until(pilot, lambda: rows(app)[-1] == "gate", "the shortest runtime last")
            assert labels(app)["runtime"] == "time↓"
            await pilot.press("o", "o")
            assert labels(app)["rss"] == "rss↓"
            await pilot.press("o")
            await until(pilot, lambda: rows(app) == ["reader", "gate", "sleeper"], "plan order again")
            assert not any("↓" in label for label in labels(app).values())

    drive(scenario)


# -- the details panel ---------------------------------------------------------------------------------


def details(app: Dashboard) -> str:
    content = app.query_one("#details-body", Static).content
    return content.plain if isinstance(content, Text) else str(content)


def test_i_shows_the_details_of_a_finished_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-details")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "gate") == "running", "gate running")
            (run.out_dir("gate") / "go").write_text("now")
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate succeeded")
            select(app, "gate")
            await pilot.press("i")
            panel = app.query_one("#panel", ContentSwitcher)
            assert panel.current == "details"
            await until(pilot, lambda: '"agent": "gate"' in details(app), "gate's context")
            shown = details(app).splitlines()
            assert shown[0] == "gate  ✓ succeeded  step"
            assert "  exit     0" in shown
            assert any(line.startswith('  cmd      echo "gate: waiting"') for line in shown)
            assert "  3B       go" in shown  # its outputs
            assert any("agent.exit    gate code 0" in line for line in shown)
            assert str(panel.border_title) == "details: gate"

            # Another agent's details follow the selection.
            select(app, "sleeper")
            await until(pilot, lambda: details(app).startswith("sleeper  ● running"), "sleeper's details")
            await until(pilot, lambda: '"agent": "sleeper"' in details(app), "sleeper's context")

            await pilot.press("i")
            assert panel.current == "output"
            await until(pilot, lambda: "sleeping" in output_text(app), "sleeper's output again")

            # g shows the graph with the live states; g again comes back.
            await pilot.press("g")
            await until(pilot, lambda: isinstance(app.screen, GraphScreen), "the graph")
            graph = app.screen
            assert isinstance(graph, GraphScreen)
            await until(pilot, lambda: "✓ succeeded   gate" in graph.shown_text(), "gate in the graph")
            assert "● running     sleeper" in graph.shown_text()
            await asyncio.to_thread(agentsup.run, "kill", run.run_id, "sleeper")
            await until(pilot, lambda: "■ stopped     sleeper" in graph.shown_text(), "the graph follows")
            await pilot.press("g")
            await until(pilot, lambda: not isinstance(app.screen, GraphScreen), "the dashboard again")

    drive(scenario)


# -- actions and their feedback ------------------------------------------------------------------------


def test_m_sends_several_lines_to_the_selected_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-prompt")
    lines = run.out_dir("reader") / "lines.txt"

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: "reader: ready" in output_text(app), "reader's output shown")
            select(app, "reader")
            await pilot.press("m")
            await until(pilot, lambda: isinstance(app.screen, PromptScreen), "the prompt dialog")
            await pilot.press(*"first", "enter", *"second line")
            await pilot.press("ctrl+s")
            await until(
                pilot,
                lambda: lines.exists() and lines.read_text() == "first\nsecond line\n",
                "both lines in the reader's file",
            )
            await until(pilot, lambda: "2 lines sent to reader" in toasts(app), "the confirmation")

    drive(scenario)


def first_command(app: Dashboard) -> str:
    commands = app.screen.query(CommandList)
    if not commands or commands.first().option_count == 0:
        return ""
    prompt = commands.first().get_option_at_index(0).prompt
    return prompt.plain if isinstance(prompt, Text) else str(prompt)


def test_an_event_emitted_from_the_command_palette_is_logged(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-emit")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: shown_state(app, "sleeper") == "running", "sleeper running")
            await pilot.press("ctrl+p")
            await pilot.press(*"emit an event")
            await until(pilot, lambda: "Emit an event" in first_command(app), "the palette's entry")
            await pilot.press("enter")
            await until(pilot, lambda: isinstance(app.screen, EmitScreen), "the emit dialog")
            await pilot.press(*"deploy.done", "tab", *"{oops")
            await pilot.press("ctrl+s")
            error = app.screen.query_one("#error", Label)
            await until(pilot, lambda: "data is not JSON" in str(error.content), "the JSON error")
            assert isinstance(app.screen, EmitScreen)
            app.screen.query_one("#data", TextArea).text = '{"ok": true}'
            app.screen.query_one("#name", Input).focus()
            await pilot.press("enter")
            await until(
                pilot, lambda: any("event deploy.done emitted" in t for t in toasts(app)), "the toast"
            )

        external = [e for e in agentsup.events(run.run_id) if e.kind is EventKind.EXTERNAL]
        assert [(e.data["name"], e.data["data"]) for e in external] == [("deploy.done", {"ok": True})]

    drive(scenario)


def test_a_second_press_while_the_first_is_in_flight_sends_nothing(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    run = start_run(agentsup, tmp_path, "dash-twice")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: shown_state(app, "sleeper") == "running", "sleeper running")
            select(app, "sleeper")
            # A stopped engine takes the request and answers once continued. tmux continues a stopped
            # child of its own, so tmux stops first and goes on last.
            (engine,) = agentsup.engine_pids()
            tmux = int(agentsup.tmux("display-message", "-p", "#{pid}"))
            os.kill(tmux, signal.SIGSTOP)
            os.kill(engine, signal.SIGSTOP)
            try:
                await until(
                    pilot, lambda: psutil.Process(engine).status() == psutil.STATUS_STOPPED, "stopped"
                )
                await pilot.press("k")
                await pilot.press("k")
                await until(
                    pilot, lambda: "kill of sleeper already in progress" in toasts(app), "the warning"
                )
                assert "kill sent to sleeper" not in toasts(app)
            finally:
                os.kill(engine, signal.SIGCONT)
                os.kill(tmux, signal.SIGCONT)
            await until(pilot, lambda: "kill sent to sleeper" in toasts(app), "the confirmation")
            await until(pilot, lambda: shown_state(app, "sleeper") == "stopped", "sleeper stopped")

        commands = [e.data.get("command") for e in agentsup.events(run.run_id) if e.kind is EventKind.COMMAND]
        assert commands == ["kill"]

    drive(scenario)
