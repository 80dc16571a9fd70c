"""What the dashboard's table says, how it sorts and filters, how it fits the screen: pure functions."""

from __future__ import annotations

from pathlib import Path

import pytest
from rich.cells import cell_len
from rich.text import Text

from agentsup.plan import Plan, parse_plan
from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import AgentState
from agentsup.tui.present import (
    SORT_MARK,
    SORT_ORDERS,
    Column,
    RowFacts,
    SortOrder,
    arrange,
    fit,
    matches,
    next_sort,
    pager_argv,
    question_of,
    role_of,
    row_cells,
    size_text,
    state_cell,
    table_columns,
    toast_for,
)
from agentsup.tui.runfiles import Usage

S = AgentState
NOW = 10_000.0

PLAN = """
[agents.prepare]
cmd = "true"

[agents.plan]
cmd = "true"
spawns = "subtasks.json"
after = ["prepare"]

[agents.vote]
aggregate = { from = ["prepare"], strategy = "vote", field = "verdict" }

[workers.writer]
cmd = "true"

[workers.responder]
cmd = "true"
"""


def plan_of(text: str) -> Plan:
    return parse_plan(text, file="plan.toml", base_dir=Path("/plans"))


def rec(
    name: str, state: AgentState = S.RUNNING, started: float | None = None, ended: float | None = None
) -> AgentRecord:
    return AgentRecord(name, state, attempts=1 if started else 0, started_at=started, ended_at=ended)


# -- columns -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("width", [80, 100, 120, 200])
def test_the_columns_fill_the_width_exactly(width: int) -> None:
    columns = table_columns(width, longest_agent=20)
    # Every column but the last is followed by a one-cell gap; one cell is kept for the scrollbar.
    assert sum(c.width for c in columns) + len(columns) - 1 + 1 == width
    assert all(cell_len(c.label) <= c.width for c in columns)


def test_at_80_columns_the_last_output_keeps_room_and_the_attempt_and_exit_give_way() -> None:
    columns = {c.key: c for c in table_columns(80, longest_agent=40)}
    assert list(columns) == ["state", "agent", "role", "runtime", "cpu", "rss", "last"]
    assert columns["last"].width >= 16
    assert columns["agent"].width >= 12

    wide = {c.key: c for c in table_columns(120, longest_agent=40)}
    assert "attempt" in wide
    assert "exit" in wide
    assert wide["agent"].width == 28  # long names are cut there
    assert wide["last"].width > columns["last"].width


def test_short_names_leave_the_rest_to_the_last_output() -> None:
    short = {c.key: c.width for c in table_columns(100, longest_agent=6)}
    long = {c.key: c.width for c in table_columns(100, longest_agent=20)}
    assert short["agent"] == 6
    assert short["last"] - long["last"] == 14


def test_the_sorted_column_is_marked() -> None:
    labels = {c.key: c.label for c in table_columns(120, 10, SortOrder.CPU)}
    assert labels["cpu"].strip() == f"cpu%{SORT_MARK}"
    assert not any(SORT_MARK in label for key, label in labels.items() if key != "cpu")
    assert not any(SORT_MARK in c.label for c in table_columns(120, 10, SortOrder.PLAN))
    for order in SORT_ORDERS:
        assert all(cell_len(c.label) <= c.width for c in table_columns(80, 5, order))


# -- cells ---------------------------------------------------------------------------------------------


def shown_row(record: AgentRecord, columns: tuple[Column, ...], facts: RowFacts) -> dict[str, str]:
    cells = row_cells(record, columns, facts, NOW)
    return {
        c.key: cell.plain if isinstance(cell, Text) else cell for c, cell in zip(columns, cells, strict=True)
    }


def test_a_row_shows_role_usage_and_the_last_line_cut_to_its_column() -> None:
    columns = table_columns(120, longest_agent=12)
    facts = RowFacts("worker-one", "worker", Usage(153.4, 2_345_678_901), "x" * 200)
    cells = shown_row(rec("w", started=NOW - 75), columns, facts)
    assert cells["state"] == "● running"
    assert cells["agent"] == "worker-one"
    assert cells["role"] == "worker"
    assert cells["runtime"].strip() == "1:15"
    assert cells["cpu"].strip() == "153"
    assert cells["rss"].strip() == "2.3G"
    last = next(c for c in columns if c.key == "last")
    assert cells["last"] == "x" * (last.width - 1) + "…"
    # Numbers align right within their columns.
    assert cells["cpu"] == "153".rjust(next(c for c in columns if c.key == "cpu").width)


def test_a_finished_agent_has_no_usage_and_a_fixed_runtime() -> None:
    columns = table_columns(120, longest_agent=12)
    done = AgentRecord("a", S.SUCCEEDED, attempts=2, exit_code=0, started_at=NOW - 30, ended_at=NOW - 10)
    cells = {key: value.strip() for key, value in shown_row(done, columns, RowFacts("a")).items()}
    assert (cells["attempt"], cells["exit"], cells["runtime"], cells["cpu"], cells["rss"]) == (
        "2",
        "0",
        "0:20",
        "",
        "",
    )


QUESTION = "Create file\nhello.txt\n1 hi there\nDo you want to create hello.txt?"


def test_an_agent_that_asks_shows_its_question_instead_of_its_last_line() -> None:
    columns = table_columns(120, longest_agent=12)
    asking = AgentRecord("w", S.NEEDS_INPUT, attempts=1, started_at=NOW - 5, reason=QUESTION)
    assert question_of(asking) == QUESTION
    assert shown_row(asking, columns, RowFacts("w", last="● Write(hello.txt)"))["last"].rstrip() == (
        "Do you want to create hello.txt?"
    )
    # Asked nothing it could say, or no longer asking: the last output line.
    silent = AgentRecord("w", S.NEEDS_INPUT, attempts=1, started_at=NOW - 5)
    assert question_of(silent) is None
    assert shown_row(silent, columns, RowFacts("w", last="printed"))["last"].rstrip() == "printed"
    running = AgentRecord("w", S.RUNNING, attempts=1, started_at=NOW - 5, reason="approved by the user")
    assert question_of(running) is None
    assert shown_row(running, columns, RowFacts("w", last="printed"))["last"].rstrip() == "printed"


def test_every_state_fits_the_state_column() -> None:
    (width,) = (c.width for c in table_columns(80, 10) if c.key == "state")
    assert all(cell_len(state_cell(state).plain) <= width for state in AgentState)


def test_the_needs_input_toast_carries_the_question() -> None:
    def asked(**data: JSON) -> Event:
        return Event(
            9, NOW, EventKind.AGENT_STATE, "w", "hook", {"from": "running", "to": "needs_input", **data}
        )

    assert toast_for(asked(reason=QUESTION, question=QUESTION)) == (f"w needs input: {QUESTION}", "warning")
    assert toast_for(asked(reason="Proceed? [y/n]")) == ("w needs input: Proceed? [y/n]", "warning")
    assert toast_for(asked()) == ("w needs input", "warning")


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1_000, "1K"),
        (45_600_000, "46M"),
        (999_000_000, "999M"),
        (1_500_000_000, "1.5G"),
    ],
)
def test_sizes_fit_in_five_cells(n: int, text: str) -> None:
    assert size_text(n) == text


def test_fit_cuts_with_an_ellipsis_by_cells() -> None:
    assert fit("short", 10) == "short"
    assert fit("abcdefghij", 5) == "abcd…"
    assert cell_len(fit("日本語のテキスト", 7)) <= 7


# -- roles ---------------------------------------------------------------------------------------------


def test_roles_come_from_the_plan_and_the_agent_added_events() -> None:
    plan = plan_of(PLAN)
    assert role_of("prepare", plan, None) == "step"
    assert role_of("plan", plan, None) == "master"
    assert role_of("vote", plan, None) == "aggregate"
    assert role_of("plan/a", plan, {"name": "plan/a", "worker": "writer", "parent": "plan"}) == "worker"
    assert (
        role_of("responder-3", plan, {"name": "responder-3", "worker": "responder", "parent": None})
        == "handler"
    )
    fix = {"name": "prepare/fix", "worker": "writer", "parent": "prepare", "recovers": "prepare"}
    assert role_of("prepare/fix", plan, fix) == "recovery"


def test_without_the_events_or_the_plan_the_name_says_what_it_can() -> None:
    plan = plan_of(PLAN)
    assert role_of("plan/a", None, None) == "worker"
    assert role_of("prepare/fix", None, None) == "recovery"
    assert role_of("responder-3", plan, None) == "handler"
    assert role_of("responder-3-on1", plan, None) == "handler"
    assert role_of("responder-3", None, None) == ""
    assert role_of("stranger", plan, None) == ""


# -- sorting and filtering -----------------------------------------------------------------------------


RECORDS = (
    rec("build", S.SUCCEEDED, started=NOW - 100, ended=NOW - 40),
    rec("master", S.RUNNING, started=NOW - 50),
    rec("test", S.NEEDS_INPUT, started=NOW - 20),
    rec("deploy", S.WAITING),
    rec("master/b", S.RUNNING, started=NOW - 10),
    rec("lint", S.FAILED, started=NOW - 90, ended=NOW - 85),
    rec("master/a", S.SUCCEEDED, started=NOW - 30, ended=NOW - 29),
)


def test_plan_order_keeps_workers_under_their_master() -> None:
    assert arrange(RECORDS, SortOrder.PLAN, NOW) == [
        "build",
        "master",
        "master/b",
        "master/a",
        "test",
        "deploy",
        "lint",
    ]


def test_state_order_puts_what_needs_a_person_first_and_keeps_plan_order_within_a_state() -> None:
    assert arrange(RECORDS, SortOrder.STATE, NOW) == [
        "test",
        "lint",
        "master",
        "master/b",
        "deploy",
        "build",
        "master/a",
    ]


def test_name_and_runtime_orders() -> None:
    assert arrange(RECORDS, SortOrder.NAME, NOW) == [
        "build",
        "deploy",
        "lint",
        "master",
        "master/a",
        "master/b",
        "test",
    ]
    # Longest first; an agent that never ran comes last.
    assert arrange(RECORDS, SortOrder.RUNTIME, NOW) == [
        "build",
        "master",
        "test",
        "master/b",
        "lint",
        "master/a",
        "deploy",
    ]


def test_cpu_and_memory_orders_put_agents_without_a_sample_last() -> None:
    usage = {"test": Usage(5.0, 900), "master/b": Usage(80.0, 100), "build": Usage(20.0, 5_000)}
    assert arrange(RECORDS, SortOrder.CPU, NOW, usage)[:3] == ["master/b", "build", "test"]
    assert arrange(RECORDS, SortOrder.RSS, NOW, usage)[:3] == ["build", "test", "master/b"]
    assert arrange(RECORDS, SortOrder.RSS, NOW, usage)[3:] == ["master", "deploy", "lint", "master/a"]


def test_the_filter_matches_part_of_a_name_or_a_state_in_any_case() -> None:
    assert arrange(RECORDS, SortOrder.PLAN, NOW, text="MAST") == ["master", "master/b", "master/a"]
    assert arrange(RECORDS, SortOrder.PLAN, NOW, text="succ") == ["build", "master/a"]
    assert arrange(RECORDS, SortOrder.NAME, NOW, text="needs input") == ["test"]
    assert arrange(RECORDS, SortOrder.PLAN, NOW, text="  ") == arrange(RECORDS, SortOrder.PLAN, NOW)
    assert arrange(RECORDS, SortOrder.PLAN, NOW, text="nothing like it") == []
    assert matches(rec("x", S.NEEDS_INPUT), "needs_input")


def test_the_sort_key_cycles_through_every_order() -> None:
    seen, order = [], SortOrder.PLAN
    for _ in SORT_ORDERS:
        seen.append(order)
        order = next_sort(order)
    assert seen == list(SORT_ORDERS)
    assert order is SortOrder.PLAN


# -- the pager -----------------------------------------------------------------------------------------


def test_the_pager_is_less_unless_pager_says_otherwise() -> None:
    log = Path("/runs/r/panes/a.1.log")
    assert pager_argv(None, log) == ["less", "-R", str(log)]
    assert pager_argv("  ", log) == ["less", "-R", str(log)]
    assert pager_argv("most -s 'x y'", log) == ["most", "-s", "x y", str(log)]
