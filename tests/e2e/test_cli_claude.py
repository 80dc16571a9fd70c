"""Real agent CLIs as agents in tmux panes, driven by the engine against the scripted LLM server.

Each test runs a plan with one CLI agent: the prompt delivered into its ready screen, its turn seen by its
hook, a permission dialog surfaced as needs_input with its question and answered, the file it writes
checked, the done rule honoured, and nothing of it left running. A CLI that .ci/install-clis could not
install is skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.clirun import (
    agent_state,
    explain,
    need,
    no_process_left,
    start,
    states_of,
    wait_for,
    write_plan,
)
from tests.e2e.harness import Agentsup, wait_until
from tests.llm import clis
from tests.llm.script import Script, Text
from tests.llm.server import LLMServer

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]


def test_claude_interactive_asks_permission_and_finishes_its_turn(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.CLAUDE)
    work = tmp_path / "work"
    llm.script = Script([clis.claude_write(work, "hello.txt", "hi there\n"), Text("The file is written.")])
    plan = write_plan(tmp_path, clis.CLAUDE, llm, "writer", prompt="Write hello.txt please.")
    run_id = start(agentsup, plan)

    def state() -> str:
        return str(agent_state(agentsup, run_id, "writer")["state"])

    wait_for(lambda: state() == "needs_input", 90, lambda: explain(agentsup, run_id, "writer", llm))
    asked = [e for e in states_of(agentsup, run_id, "writer") if e.data.get("to") == "needs_input"]
    assert "hello.txt" in str(asked[-1].data.get("question")), explain(agentsup, run_id, "writer", llm)
    agentsup.run("approve", run_id, "writer")
    wait_for(lambda: state() == "succeeded", 60, lambda: explain(agentsup, run_id, "writer", llm))
    assert (work / "hello.txt").read_text() == "hi there\n"
    kinds = [e.kind for e in agentsup.events(run_id)]
    assert EventKind.AGENT_PROMPTED in kinds
    assert EventKind.AGENT_TURN in kinds
    assert states_of(agentsup, run_id, "writer")[-1].source == "hook"
    wait_until(
        lambda: no_process_left(agentsup.run_dir(run_id)),
        timeout=30,
        message="a CLI process outlived its agent",
    )
