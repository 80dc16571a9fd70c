"""aider (PyPI aider-chat) as an agent in a tmux pane, driven by the engine against the scripted LLM server.

Interactive: the prompt typed at its prompt, its "Create new file?" question surfaced as needs_input and
approved, the file checked, and nothing of it left running. Its one hook (``--notifications-command``) says
only that it waits for input, which is the next prompt or a question: the screen ends the turn. One-shot:
aider exits 0 after failures, so its error lines decide. Skipped, with the reason, when .ci/install-clis
could not install it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agentsup.supervisor.events import EventKind
from agentsup.supervisor.rundir import RunDir
from tests.e2e.clirun import (
    agent_state,
    explain,
    need,
    no_process_left,
    start,
    states_of,
    wait_for,
    wait_settled,
    write_plan,
)
from tests.e2e.harness import Agentsup, wait_until
from tests.llm import clis
from tests.llm.script import Fail, Script
from tests.llm.server import LLMServer

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

PROMPT = "Write hello.txt please."
# The recorded fixtures' settings: the "whole" edit format (a file name, then the file in a fence), no git.
KEYS: dict[str, Any] = {"model": f"openai/{clis.AIDER_MODEL}", "flags": ["--edit-format=whole", "--no-git"]}


def hook_events(tool: Agentsup, run_id: str, agent: str) -> list[str]:
    path = RunDir(tool.run_dir(run_id)).hooks_file(agent, 1)
    lines = path.read_text().splitlines() if path.exists() else []
    return [str(json.loads(line).get("event")) for line in lines if line.strip()]


def test_aider_interactive_asks_to_create_the_file_and_finishes_its_turn(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.AIDER)
    work = tmp_path / "work"
    llm.script = Script([clis.aider_write(work, "hello.txt", "hi there\n")])
    plan = write_plan(tmp_path, clis.AIDER, llm, "writer", prompt=PROMPT, done="turn", approve="ask", **KEYS)
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "writer", llm)

    def state() -> str:
        return str(agent_state(agentsup, run_id, "writer")["state"])

    wait_for(lambda: state() == "needs_input", 90, why)
    assert any(r.asks(PROMPT) for r in llm.requests), why()
    asked = [e for e in states_of(agentsup, run_id, "writer") if e.data.get("to") == "needs_input"]
    assert "hello.txt" in str(asked[-1].data.get("question")), why()
    assert len(asked) == 1, why()
    assert not (work / "hello.txt").exists()  # the question holds the write back
    assert "notification" in hook_events(agentsup, run_id, "writer"), why()  # it waits: its hook said so
    agentsup.run("approve", run_id, "writer")
    assert wait_settled(agentsup, run_id, "writer", 60, llm) == "succeeded", why()
    assert (work / "hello.txt").read_text() == "hi there\n"
    kinds = [e.kind for e in agentsup.events(run_id)]
    assert EventKind.AGENT_PROMPTED in kinds
    assert EventKind.AGENT_TURN in kinds
    assert EventKind.AGENT_ANSWERED in kinds
    # Its hook cannot tell a finished turn from a question (module docstring): the screen ends the turn.
    last = states_of(agentsup, run_id, "writer")[-1]
    assert last.source == "screen", why()
    assert last.data.get("reason") == "its turn ended", why()  # done = "turn", not its exit
    wait_until(
        lambda: no_process_left(agentsup.run_dir(run_id)),
        timeout=30,
        message="an aider process outlived its agent",
    )


def test_aider_oneshot_succeeds_by_its_verdict(agentsup: Agentsup, tmp_path: Path, llm: LLMServer) -> None:
    need(clis.AIDER)
    work = tmp_path / "work"
    llm.script = Script([clis.aider_write(work, "hello.txt", "hi there\n")])
    plan = write_plan(
        tmp_path, clis.AIDER, llm, "writer", prompt=PROMPT, mode="oneshot", approve="always", **KEYS
    )
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "writer", llm)

    assert wait_settled(agentsup, run_id, "writer", 120, llm) == "succeeded", why()
    assert any(r.asks(PROMPT) for r in llm.requests), why()
    assert states_of(agentsup, run_id, "writer")[-1].source == "verdict", why()
    assert (work / "hello.txt").read_text() == "hi there\n"


def test_aider_oneshot_fails_on_an_api_error_though_it_exits_0(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.AIDER)
    llm.script = Script([Fail(400, "Invalid request: the prompt is malformed.")])
    plan = write_plan(tmp_path, clis.AIDER, llm, "writer", prompt=PROMPT, mode="oneshot", **KEYS)
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "writer", llm)

    assert wait_settled(agentsup, run_id, "writer", 120, llm) == "failed", why()
    last = states_of(agentsup, run_id, "writer")[-1]
    assert last.source == "verdict", why()
    assert last.data.get("exit_code") == 0, why()  # aider's exit code says nothing went wrong
    reason = str(last.data.get("reason"))
    assert "the prompt is malformed" in reason, why()  # its error line did
    assert reason.startswith("litellm.BadRequestError"), why()  # as shown: no remains of its spinner
