"""The details panel's text: an agent's record, inputs, context, outputs and events."""

from __future__ import annotations

from pathlib import Path

from agentsup.plan import Plan, parse_plan
from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.runstate import AgentRecord
from agentsup.supervisor.states import AgentState
from agentsup.tui.details import LOADING, AgentDetails, details_text
from agentsup.tui.runfiles import AgentFiles

S = AgentState

PLAN = """
[agents.fetch]
argv = ["curl", "-o", "page one.html", "https://example.com"]

[agents.lint]
cmd = "true"

[agents.review]
cmd = "review --strict"
prompt = "Review {{ inputs.topic }} carefully"
after = ["fetch", { agent = "lint", when = "finished" }]

[workers.writer]
cmd = "write-section"

[inputs]
topic = "the diff"
"""


def plan() -> Plan:
    return parse_plan(PLAN, file="plan.toml", base_dir=Path("/plans"))


def lines(d: AgentDetails) -> list[str]:
    return details_text(d, now=1_000.0).plain.splitlines()


def test_a_finished_agent_shows_its_record_inputs_context_outputs_and_events() -> None:
    rec = AgentRecord(
        "review", S.FAILED, attempts=2, exit_code=3, started_at=900.0, ended_at=960.0, reason="exit 3"
    )
    files = AgentFiles('{\n  "agent": "review"\n}', (("report.md", 2_500),), 0)
    ev = Event(7, 950.0, EventKind.AGENT_EXIT, "review", "engine", {"attempt": 2, "code": 3})
    shown = lines(AgentDetails(rec, "step", plan(), None, files, (ev,)))
    assert shown[0] == "review  ✗ failed  step"
    assert "  attempt  2" in shown
    assert "  exit     3" in shown
    assert "  runtime  1:00" in shown
    assert "  reason   exit 3" in shown
    assert "  cmd      review --strict" in shown
    assert "  prompt   Review {{ inputs.topic }} carefully" in shown
    assert "  after    fetch, finished: lint" in shown
    assert shown[shown.index("context") + 1 : shown.index("context") + 4] == ["{", '  "agent": "review"', "}"]
    assert "  2K       report.md" in shown
    assert shown[-2] == "events (latest 1)"
    assert shown[-1].endswith("agent.exit    review code 3")


def test_argv_is_shown_quoted_as_a_shell_would_read_it() -> None:
    shown = lines(AgentDetails(AgentRecord("fetch"), "step", plan(), None, None, ()))
    assert "  argv     curl -o 'page one.html' https://example.com" in shown


def test_a_worker_shows_its_task_and_its_template() -> None:
    added: dict[str, JSON] = {
        "name": "m/a",
        "worker": "writer",
        "parent": "m",
        "after": ["m/b"],
        "task": {"id": "a", "input": "x"},
    }
    shown = lines(AgentDetails(AgentRecord("m/a", S.WAITING), "worker", plan(), added, None, ()))
    assert "  template writer" in shown
    assert "  parent   m" in shown
    assert '  after    ["m/b"]' in shown
    assert '  task     {"id": "a", "input": "x"}' in shown
    assert "  cmd      write-section" in shown


def test_what_is_not_known_yet_says_so() -> None:
    shown = lines(AgentDetails(AgentRecord("review"), "", None, None, None, ()))
    assert "  (the plan is not loaded)" in shown
    assert shown.count(LOADING) == 2  # context and outputs
    assert shown[-1] == "  (none)"  # no events
    empty = AgentFiles("(no context file yet)", (), 0)
    shown = lines(AgentDetails(AgentRecord("stranger"), "", plan(), None, empty, ()))
    assert "  (not in the plan)" in shown
    assert "(no context file yet)" in shown


CLI_PLAN = """
[agents.writer]
preset = "claude"
prompt = "Write hello.txt"

[agents.asker]
cmd = "read -p 'Proceed? [y/n] ' answer"
"""

QUESTION = "Create file\nhello.txt\n1 hi there\nDo you want to create hello.txt?"


def test_an_agent_that_asks_shows_its_whole_question_and_how_to_answer_it() -> None:
    cli_plan = parse_plan(CLI_PLAN, file="plan.toml", base_dir=Path("/plans"))
    asking = AgentRecord("writer", S.NEEDS_INPUT, attempts=1, reason=QUESTION)
    shown = lines(AgentDetails(asking, "step", cli_plan, None, None, ()))
    at = shown.index("  question Create file")
    assert shown[at + 1 : at + 5] == [
        "           hello.txt",
        "           1 hi there",
        "           Do you want to create hello.txt?",
        "  answer   y approves, n denies, a attaches to its pane",
    ]
    assert not any(line.startswith("  reason") for line in shown)  # the question is its reason
    # Not an agent CLI: its question is answered by typing.
    asker = AgentRecord("asker", S.NEEDS_INPUT, attempts=1, reason="Proceed? [y/n]")
    shown = lines(AgentDetails(asker, "step", cli_plan, None, None, ()))
    assert "  question Proceed? [y/n]" in shown
    assert "  answer   s types a line into its pane, a attaches to it" in shown


def test_a_rate_limited_agent_says_when_it_starts_again() -> None:
    parked = AgentRecord("w", S.RATE_LIMITED, attempts=1, retry_at=1_090.0, reason="rate limited until 12:00")
    shown = lines(AgentDetails(parked, "step", plan(), None, None, ()))
    assert shown[0] == "w  ⏸ rate_limited  step"
    assert "  reason   rate limited until 12:00" in shown
    assert "  retry    in 1:30" in shown


def test_a_worktree_agent_shows_its_branch_and_diff_stat_after_its_outputs() -> None:
    stat = "agentsup/r1/review\n a.txt | 1 +\n 1 file changed, 1 insertion(+)"
    files = AgentFiles("{}", (), 0, worktree=stat)
    shown = lines(AgentDetails(AgentRecord("review"), "step", plan(), None, files, ()))
    at = shown.index("worktree")
    assert shown[at + 1 : at + 4] == stat.splitlines()
    assert shown.index("outputs") < at
    plain = AgentFiles("{}", (), 0)
    assert "worktree" not in lines(AgentDetails(AgentRecord("review"), "step", plan(), None, plain, ()))
