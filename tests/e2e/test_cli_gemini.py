"""Gemini CLI (npm @google/gemini-cli) as an agent in a tmux pane, driven by the engine against the scripted
LLM server.

Interactive: the prompt typed into its TUI, its turn seen by its AfterAgent hook, its write_file dialog
surfaced as needs_input and approved, the file checked, and nothing of it left running. One-shot: its JSON
result judged (``response`` or ``error``). Skipped, with the reason, when .ci/install-clis could not install
it.

Gemini loads the settings file that carries its hooks only when the file and every directory above it are
owned by root and not group/world writable. As root, the interactive test keeps its run directory in such
a place (under ~/.cache, not /tmp) and requires the hook; otherwise no hook can run and the screen decides.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.clirun import (
    agent_state,
    explain,
    need,
    no_process_left,
    oneshot_verdict,
    start,
    states_of,
    wait_for,
    wait_settled,
    write_plan,
)
from tests.e2e.harness import Agentsup, isolated_agentsup, wait_until
from tests.llm import clis
from tests.llm.script import Fail, Script, Text
from tests.llm.server import LLMServer

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

PROMPT = "Write hello.txt please."
AS_ROOT = os.geteuid() == 0


@pytest.fixture
def gemini_agentsup(tmp_path: Path) -> Iterator[Agentsup]:
    """As root: agentsup with its state (run directories) where Gemini accepts a hooks file; else the
    usual one."""
    if not AS_ROOT:
        with isolated_agentsup(tmp_path) as tool:
            yield tool
        return
    cache = Path.home() / ".cache"
    cache.mkdir(mode=0o700, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="agentsup-e2e-gemini-", dir=cache))  # 0700
    try:
        with isolated_agentsup(root) as tool:
            yield tool
    finally:
        shutil.rmtree(root, ignore_errors=True)


def test_gemini_interactive_asks_permission_and_finishes_its_turn(
    gemini_agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.GEMINI)
    # Not root: Gemini skips a hooks file it does not trust (see the module docstring): the screen decides.
    interactive_turn(gemini_agentsup, tmp_path, llm, decided_by="hook" if AS_ROOT else "screen")


def test_gemini_interactive_without_its_hooks_is_read_from_its_screen(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    """The run directory is under /tmp, where Gemini refuses the hooks file: its dialog and the end of its
    turn come from the screen."""
    need(clis.GEMINI)
    interactive_turn(agentsup, tmp_path, llm, decided_by="screen")


def interactive_turn(tool: Agentsup, tmp_path: Path, llm: LLMServer, *, decided_by: str) -> None:
    work = tmp_path / "work"
    llm.script = Script([clis.gemini_write(work, "hello.txt", "hi there\n"), Text("The file is written.")])
    plan = write_plan(tmp_path, clis.GEMINI, llm, "writer", prompt=PROMPT, done="turn", approve="ask")
    run_id = start(tool, plan)

    def why() -> str:
        return explain(tool, run_id, "writer", llm)

    def state() -> str:
        return str(agent_state(tool, run_id, "writer")["state"])

    wait_for(lambda: state() == "needs_input", 90, why)
    assert any(r.asks(PROMPT) for r in llm.requests), why()
    asked = [e for e in states_of(tool, run_id, "writer") if e.data.get("to") == "needs_input"]
    assert "hello.txt" in str(asked[-1].data.get("question")), why()
    assert len(asked) == 1, why()
    if decided_by == "screen":  # else the hook or the screen may tell first
        assert asked[-1].source == "screen", why()
    assert not (work / "hello.txt").exists()  # the dialog holds the write back
    tool.run("approve", run_id, "writer")
    assert wait_settled(tool, run_id, "writer", 60, llm) == "succeeded", why()
    assert (work / "hello.txt").read_text() == "hi there\n"
    kinds = [e.kind for e in tool.events(run_id)]
    assert EventKind.AGENT_PROMPTED in kinds
    assert EventKind.AGENT_TURN in kinds
    assert EventKind.AGENT_ANSWERED in kinds
    last = states_of(tool, run_id, "writer")[-1]
    assert last.source == decided_by, why()
    assert last.data.get("reason") == "its turn ended", why()  # done = "turn", not its exit
    wait_until(
        lambda: no_process_left(tool.run_dir(run_id)),
        timeout=30,
        message="a Gemini process outlived its agent",
    )


def test_gemini_oneshot_succeeds_by_its_response(agentsup: Agentsup, tmp_path: Path, llm: LLMServer) -> None:
    llm.script = Script([Text("The answer is 42.")])
    verdict = oneshot_verdict(agentsup, tmp_path, llm, clis.GEMINI, "succeeded")
    assert "The answer is 42." in str(verdict.data.get("reason"))  # the judge read its response


def test_gemini_oneshot_fails_by_its_error(agentsup: Agentsup, tmp_path: Path, llm: LLMServer) -> None:
    llm.script = Script([Fail(400, "Invalid request: the prompt is malformed.")])
    verdict = oneshot_verdict(agentsup, tmp_path, llm, clis.GEMINI, "failed")
    assert "the prompt is malformed" in str(verdict.data.get("reason"))  # from its JSON error
