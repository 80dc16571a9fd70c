"""Codex (npm @openai/codex) as an agent in a tmux pane, driven by the engine against the scripted LLM server.

Interactive: the prompt typed into its TUI, its turn seen by its Stop hook, its apply_patch dialog surfaced as
needs_input and approved, the file checked, and nothing of it left running (the TUI runs with --no-daemon,
else an app-server daemon outlives it). One-shot: `codex exec --json`, judged by its turn.completed or
turn.failed event. Skipped, with the reason, when .ci/install-clis could not install it.
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
    oneshot_verdict,
    processes_with,
    start,
    states_of,
    wait_for,
    wait_settled,
    write_plan,
)
from tests.e2e.harness import Agentsup, wait_until
from tests.llm import clis
from tests.llm.script import Fail, Script, Text
from tests.llm.server import LLMServer

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

PROMPT = "Write hello.txt please."


def test_codex_interactive_asks_permission_and_finishes_its_turn(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.CODEX)
    work = tmp_path / "work"
    llm.script = Script([clis.codex_write(work, "hello.txt", "hi there\n"), Text("The file is written.")])
    plan = write_plan(tmp_path, clis.CODEX, llm, "writer", prompt=PROMPT, done="turn", approve="ask")
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "writer", llm)

    def state() -> str:
        return str(agent_state(agentsup, run_id, "writer")["state"])

    wait_for(lambda: state() == "needs_input", 90, why)
    assert any(r.asks(PROMPT) for r in llm.requests), why()
    asked = [e for e in states_of(agentsup, run_id, "writer") if e.data.get("to") == "needs_input"]
    assert "hello.txt" in str(asked[-1].data.get("question")), why()
    assert len(asked) == 1, why()  # its hook comes before the dialog is drawn: one question, not two
    assert not (work / "hello.txt").exists()  # the dialog holds the write back
    codex_home = str(tmp_path / "cli-home" / ".codex")
    # --no-daemon: the TUI works in-process, not in a shared app-server that outlives it
    assert not processes_with(codex_home, "app-server"), why()
    agentsup.run("approve", run_id, "writer")
    assert wait_settled(agentsup, run_id, "writer", 60, llm) == "succeeded", why()
    assert (work / "hello.txt").read_text() == "hi there\n"
    kinds = [e.kind for e in agentsup.events(run_id)]
    assert EventKind.AGENT_PROMPTED in kinds
    assert EventKind.AGENT_TURN in kinds
    assert EventKind.AGENT_ANSWERED in kinds
    last = states_of(agentsup, run_id, "writer")[-1]
    assert last.source == "hook", why()
    assert last.data.get("reason") == "its turn ended", why()  # done = "turn", not its exit
    wait_until(
        lambda: no_process_left(agentsup.run_dir(run_id)) and not processes_with(codex_home, "app-server"),
        timeout=30,
        message="a Codex process (or its app-server daemon) outlived its agent",
    )


def test_codex_oneshot_succeeds_by_its_turn_completed(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    llm.script = Script([Text("The answer is 42.")])
    verdict = oneshot_verdict(agentsup, tmp_path, llm, clis.CODEX, "succeeded")
    assert "The answer is 42." in str(verdict.data.get("reason"))  # the judge read its agent_message


def test_codex_oneshot_fails_by_its_turn_failed(agentsup: Agentsup, tmp_path: Path, llm: LLMServer) -> None:
    llm.script = Script([Fail(400, "Invalid request: the prompt is malformed.")])
    verdict = oneshot_verdict(agentsup, tmp_path, llm, clis.CODEX, "failed")
    assert "the prompt is malformed" in str(verdict.data.get("reason"))  # from its turn.failed
