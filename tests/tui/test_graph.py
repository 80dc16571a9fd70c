"""The dependency graph view: the layout of small plans as text, and the screen that shows it."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from types import MappingProxyType

from rich.cells import cell_len
from textual.app import App, ComposeResult
from textual.widgets import Static

from agentsup.plan import Plan, parse_plan
from agentsup.supervisor.dynamic import spec_from_added
from agentsup.supervisor.events import JSON
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import AgentState
from agentsup.tui.graph import GraphScreen, graph_lines

S = AgentState

CHAIN = """
[agents.fetch]
cmd = "true"

[agents.build]
cmd = "true"
after = ["fetch"]

[agents.ship]
cmd = "true"
after = [{ agent = "build", when = "finished" }]
"""

FANOUT = """
[agents.prepare]
cmd = "true"

[agents.trend]
cmd = "true"
after = ["prepare"]

[agents.risk]
cmd = "true"
after = ["prepare"]

[agents.cost]
cmd = "true"
after = ["prepare"]

[agents.vote]
aggregate = { from = ["trend", "risk", "cost"], strategy = "vote", field = "verdict" }

[agents.report]
cmd = "true"
after = ["prepare", "vote"]
"""

MASTER = """
[agents.planner]
cmd = "true"
spawns = "subtasks.json"

[workers.writer]
cmd = "true"

[agents.report]
cmd = "true"
after = ["planner.workers"]
"""

HANDLERS = """
[agents.risk]
cmd = "true"
alerts = [{ match = "^CRITICAL", severity = "critical" }]

[agents.migrate]
cmd = "true"
on_failure = "spawn:fixer"

[workers.responder]
cmd = "true"

[workers.fixer]
cmd = "true"

[[on]]
event = "alert"
do = "spawn"
worker = "responder"
"""


def plan_of(text: str) -> Plan:
    return parse_plan(text, file="plan.toml", base_dir=Path("/plans"))


def layout(plan: Plan, states: dict[str, AgentState], width: int = 80) -> list[str]:
    records = [AgentRecord(name, state) for name, state in states.items()]
    return [line.plain for line in graph_lines(plan, records, width)]


def test_a_chain_is_one_agent_per_layer_each_with_its_upstream() -> None:
    lines = layout(plan_of(CHAIN), {"fetch": S.SUCCEEDED, "build": S.RUNNING})
    assert lines == [
        "layer 0",
        "  ✓ succeeded   fetch",
        "layer 1",
        "  ● running     build  ← fetch",
        "layer 2",
        "  · pending     ship  ← finished: build",  # no record yet: pending
    ]


def test_a_fan_out_shares_a_layer_and_the_aggregate_waits_for_every_source() -> None:
    states = {"prepare": S.SUCCEEDED, "trend": S.SUCCEEDED, "risk": S.FAILED, "cost": S.RUNNING}
    lines = layout(plan_of(FANOUT), states)
    assert lines == [
        "layer 0",
        "  ✓ succeeded   prepare",
        "layer 1",
        "  ✓ succeeded   trend  ← prepare",
        "  ✗ failed      risk  ← prepare",
        "  ● running     cost  ← prepare",
        "layer 2",
        "  · pending     vote [aggregate vote]  ← finished: trend, risk, cost",
        # Its layer is its longest path: through vote, not straight from prepare.
        "layer 3",
        "  · pending     report  ← prepare, vote",
    ]


def test_long_upstream_lists_are_cut_to_the_width_with_a_count() -> None:
    sources = [f"check_number_{i}" for i in range(12)]
    text = "".join(f'[agents.{s}]\ncmd = "true"\n' for s in sources)
    text += f'[agents.summary]\ncmd = "true"\nafter = {sources!r}\n'.replace("'", '"')
    lines = layout(plan_of(text), {})
    assert lines[-1] == "  · pending     summary  ← check_number_0, check_number_1, +10 more"
    assert all(cell_len(line) <= 80 for line in lines)

    narrow = layout(plan_of(text), {}, width=40)
    assert narrow[-1] == "  · pending     summary  ← +12 more"
    assert all(cell_len(line) <= 40 for line in narrow)


def test_a_long_name_is_cut_with_an_ellipsis() -> None:
    name = "a" * 64  # the longest name the plan allows
    lines = layout(plan_of(f'[agents.{name}]\ncmd = "true"\n'), {}, width=60)
    assert lines[1] == "  · pending     " + "a" * 43 + "…"


def test_a_masters_workers_are_indented_under_it_and_its_dependent_waits_below() -> None:
    states = {
        "planner": S.SUCCEEDED,
        "report": S.WAITING,
        "planner/extract": S.SUCCEEDED,
        "planner/chart": S.RUNNING,
    }
    lines = layout(plan_of(MASTER), states)
    assert lines == [
        "layer 0",
        "  ✓ succeeded   planner [spawns workers]",
        "    └ ✓ succeeded   extract",
        "    └ ● running     chart",
        "layer 1",
        "  ◷ waiting     report  ← planner.workers",
    ]


def test_workers_in_the_engines_plan_show_their_edges_between_siblings() -> None:
    plan = plan_of(MASTER)
    added: dict[str, list[JSON]] = {
        "planner/extract": [],
        "planner/chart": ["planner/extract"],
        "planner/chart/legend": [],
    }
    agents = dict(plan.agents)
    for name, after in added.items():
        data: dict[str, JSON] = {
            "name": name,
            "worker": "writer",
            "parent": name.rpartition("/")[0],
            "after": after,
        }
        agents[name] = spec_from_added(plan, data)  # what the engine holds once the events are folded
    engine_plan = dataclasses.replace(plan, agents=MappingProxyType(agents))
    lines = layout(engine_plan, {"planner": S.SUCCEEDED, "planner/chart": S.WAITING})
    assert lines[:5] == [
        "layer 0",
        "  ✓ succeeded   planner [spawns workers]",
        "    └ · pending     extract",
        "    └ ◷ waiting     chart  ← extract",
        "        └ · pending     legend",
    ]


def test_handler_spawns_are_listed_after_the_layers_and_a_recovery_agent_under_its_patient() -> None:
    states = {
        "risk": S.SUCCEEDED,
        "migrate": S.RETRYING,
        "migrate/fix": S.RUNNING,
        "responder-7": S.SUCCEEDED,
        "responder-7-on0": S.RUNNING,
        "stranger": S.FAILED,  # in the log but not in this plan
    }
    lines = layout(plan_of(HANDLERS), states)
    assert lines == [
        "layer 0",
        "  ✓ succeeded   risk",
        "  ↻ retrying    migrate",
        "    └ ● running     fix [recovery]",
        "added during the run",
        "  ✓ succeeded   responder-7 [responder, spawned by a handler]",
        "  ● running     responder-7-on0 [responder, spawned by a handler]",
        "  ✗ failed      stranger",
    ]


def test_an_empty_plan_says_so() -> None:
    plan = plan_of(CHAIN)
    empty = dataclasses.replace(plan, agents=MappingProxyType({}))
    assert layout(empty, {}) == ["no agents"]


class _Host(App[None]):
    def compose(self) -> ComposeResult:
        yield Static("dashboard")


def test_the_screen_shows_the_graph_and_closes_on_escape_and_g() -> None:
    plan = plan_of(CHAIN)

    async def scenario() -> None:
        app = _Host()
        async with app.run_test(size=(80, 24)) as pilot:
            screen = GraphScreen()
            screen.refresh_view(plan, [AgentRecord("fetch", S.SUCCEEDED)])
            await app.push_screen(screen)
            await pilot.pause()
            assert app.screen is screen
            shown = screen.shown_text().splitlines()
            assert shown[:4] == [
                "layer 0",
                "  ✓ succeeded   fetch",
                "layer 1",
                "  · pending     build  ← fetch",
            ]
            assert all(cell_len(line) <= 80 for line in shown)

            # The app calls it again when its view changes.
            screen.refresh_view(plan, [AgentRecord("fetch", S.SUCCEEDED), AgentRecord("build", S.FAILED)])
            await pilot.pause()
            assert "  ✗ failed      build  ← fetch" in screen.shown_text().splitlines()

            await pilot.press("escape")
            await pilot.pause()
            assert app.screen is not screen

            again = GraphScreen()
            await app.push_screen(again)
            assert again.shown_text() == "loading the plan…"  # no view yet
            await pilot.press("g")
            await pilot.pause()
            assert app.screen is not again

    asyncio.run(scenario())
