"""The dashboard driven through Pilot against a real engine running scripted agents in tmux."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

import pytest
from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import DataTable, RichLog, Static
from textual.widgets.data_table import CellDoesNotExist

from agentsup.supervisor.rundir import RunDir
from agentsup.tui.app import Dashboard
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


def cell(app: Dashboard, agent: str, column: str) -> str:
    value = app.query_one("#agents", DataTable).get_cell(agent, column)
    return value.plain if isinstance(value, Text) else str(value)


def shown_state(app: Dashboard, agent: str) -> str:
    """The state word of the agent's row (the symbol before it is decoration)."""
    try:
        return cell(app, agent, "state").split()[-1]
    except CellDoesNotExist:
        return ""  # no row yet


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
    table = app.query_one("#agents", DataTable)
    table.move_cursor(row=table.get_row_index(agent))


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
    for pid in agentsup.engine_pids():
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not agentsup.engine_pids(), message="the engine gone")

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate from the log")
            assert [shown_state(app, a) for a in AGENTS] == ["running", "succeeded", "running"]
            await until(
                pilot,
                lambda: header(app).startswith(" dash-dead  engine stopped  1/3 done  0 failed  2 running"),
                "the header saying the engine stopped",
            )

    drive(scenario)
