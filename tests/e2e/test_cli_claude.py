"""Real agent CLIs as agents in tmux panes, driven by the engine against the scripted LLM server.

Each test runs a plan with one CLI agent: the prompt delivered into its ready screen, its turn seen by its
hook, a permission dialog surfaced as needs_input with its question and answered, the file it writes
checked, the done rule honoured, and nothing of it left running. Also: one-shot runs judged by their
output, a 429 parked outside the retry budget, approve = always/never, done = "idle:…" and "file", a second
prompt typed by `agentsup send`, and a resumed engine that does not type the prompt again. A CLI that
.ci/install-clis could not install is skipped with the reason.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.clirun import (
    agent_state,
    events_of,
    explain,
    need,
    no_process_left,
    oneshot_verdict,
    start,
    states_of,
    wait_for,
    wait_settled,
    write_plan,
    write_plan_with,
)
from tests.e2e.harness import Agentsup, wait_until
from tests.e2e.test_resume import kill_engine
from tests.llm import clis
from tests.llm.script import Fail, Held, Script, Text, ToolCall
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


# ---- one-shot ----------------------------------------------------------------------------------------


def test_claude_oneshot_succeeds_by_its_verdict(agentsup: Agentsup, tmp_path: Path, llm: LLMServer) -> None:
    llm.script = Script([Text("The answer is 42.")])
    verdict = oneshot_verdict(agentsup, tmp_path, llm, clis.CLAUDE, "succeeded")
    assert "The answer is 42." in str(verdict.data.get("reason"))


def test_claude_oneshot_writes_a_file_when_approve_is_always(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.CLAUDE)
    work = tmp_path / "work"
    llm.script = Script([clis.claude_write(work, "out.txt", "written\n"), Text("Done.")])
    plan = write_plan(
        tmp_path, clis.CLAUDE, llm, "writer", prompt="Write out.txt.", mode="oneshot", approve="always"
    )
    run_id = start(agentsup, plan)

    assert wait_settled(agentsup, run_id, "writer", 60, llm) == "succeeded"
    assert (work / "out.txt").read_text() == "written\n"


def test_claude_oneshot_rate_limited_is_parked_and_started_again_without_using_a_retry(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    """Attempt 1 is refused (429), attempt 2 fails (500), attempt 3 succeeds: with retries = 1, attempt 3
    runs only if the parked attempt did not count. Each model call is held until the script for the next
    one is in place, so no attempt can outrun the test."""
    need(clis.CLAUDE)
    limited = Held(Fail(429, "Rate limit reached for requests", retry_after=1))
    failing = Held(Fail(500, "Internal server error."))
    llm.script = Script([limited])
    plan = write_plan_with(
        tmp_path,
        clis.CLAUDE,
        llm,
        "asker",
        {"prompt": "What is the answer?", "mode": "oneshot", "retries": 1, "backoff": "1s"},
        run_keys={"rate_limit_wait": "2s"},
        more_env={"CLAUDE_CODE_MAX_RETRIES": "0"},  # it gives up at the first 429
    )
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "asker", llm)

    llm.wait_holding(timeout=60)
    llm.script = Script([failing])
    limited.release.set()
    llm.wait_for(lambda r: r.status == 429, timeout=60)  # recorded once it no longer counts as held
    llm.wait_holding(timeout=60)
    llm.script = Script([Text("The answer is 42.")])
    failing.release.set()
    # rate_limited and retrying last a second or two: the log, not a poll, shows that they came
    wait_for(lambda: agent_state(agentsup, run_id, "asker")["state"] in ("succeeded", "failed"), 60, why)

    moves = [(e.data.get("to"), e.data.get("attempt")) for e in states_of(agentsup, run_id, "asker")]
    assert ("rate_limited", 1) in moves, why()
    assert ("retrying", 2) in moves, why()
    assert moves[-1] == ("succeeded", 3), why()
    assert [r.status for r in llm.requests if r.conversation is not None] == [429, 500, 200], why()


# ---- interactive: approvals, done rules, send, resume -----------------------------------------------


ALWAYS, NEVER = "approve = always", "approve = never"  # who answered, in agent.answered


def shell_write(path: Path, content: str) -> ToolCall:
    """A Bash call that writes ``path``; outside the workdir it opens a dialog even in acceptEdits mode
    (which lets file edits and shell writes in the workdir through unasked)."""
    return ToolCall("Bash", {"command": f"printf '{content}' > {path}", "description": f"Write {path.name}"})


def test_claude_interactive_approve_always_answers_the_dialog(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.CLAUDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    llm.script = Script([shell_write(outside / "hello.txt", "hi there"), Text("The file is written.")])
    plan = write_plan(tmp_path, clis.CLAUDE, llm, "writer", prompt="Write hello.txt.", approve="always")
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "writer", llm)

    assert wait_settled(agentsup, run_id, "writer", 90, llm) == "succeeded", why()
    assert (outside / "hello.txt").read_text() == "hi there", why()
    answered = events_of(agentsup, run_id, EventKind.AGENT_ANSWERED, "writer")
    assert [(e.data.get("answer"), e.data.get("by")) for e in answered] == [("approve", ALWAYS)], why()
    assert "needs_input" not in [e.data.get("to") for e in states_of(agentsup, run_id, "writer")], why()


def refused_tool(llm: LLMServer) -> bool:
    """Whether a model call carried a tool result that Claude marked as an error (a refused call)."""
    for request in llm.requests:
        messages = request.json().get("messages")
        for message in messages if isinstance(messages, list) else []:
            content = message.get("content") if isinstance(message, dict) else None
            for part in content if isinstance(content, list) else []:
                if isinstance(part, dict) and part.get("type") == "tool_result" and part.get("is_error"):
                    return True
    return False


def test_claude_interactive_approve_never_refuses_the_write(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    """Claude's own dontAsk mode refuses the call without a dialog: nothing for the engine to answer."""
    need(clis.CLAUDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    llm.script = Script([shell_write(outside / "hello.txt", "hi there"), Text("I could not write it.")])
    plan = write_plan(tmp_path, clis.CLAUDE, llm, "writer", prompt="Write hello.txt.", approve="never")
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "writer", llm)

    assert wait_settled(agentsup, run_id, "writer", 90, llm) == "succeeded", why()
    assert not (outside / "hello.txt").exists(), why()
    assert refused_tool(llm), why()
    assert not events_of(agentsup, run_id, EventKind.AGENT_ANSWERED, "writer"), why()
    assert "needs_input" not in [e.data.get("to") for e in states_of(agentsup, run_id, "writer")], why()


def test_claude_interactive_approve_never_denies_a_dialog_it_shows(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    """A dialog drawn anyway (here: the permission mode overridden by its flags) is denied with its keys."""
    need(clis.CLAUDE)
    outside = tmp_path / "outside"
    outside.mkdir()
    llm.script = Script([shell_write(outside / "hello.txt", "hi there"), Text("I could not write it.")])
    plan = write_plan(
        tmp_path,
        clis.CLAUDE,
        llm,
        "writer",
        prompt="Write hello.txt.",
        approve="never",
        flags=["--permission-mode", "default"],
    )
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "writer", llm)

    assert wait_settled(agentsup, run_id, "writer", 90, llm) == "succeeded", why()
    assert not (outside / "hello.txt").exists(), why()
    answered = events_of(agentsup, run_id, EventKind.AGENT_ANSWERED, "writer")
    assert [(e.data.get("answer"), e.data.get("by")) for e in answered] == [("deny", NEVER)], why()
    assert "hello.txt" in str(answered[0].data.get("question")), why()
    assert "needs_input" not in [e.data.get("to") for e in states_of(agentsup, run_id, "writer")], why()


def test_claude_interactive_done_idle_succeeds_by_silence_after_its_turn(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.CLAUDE)
    llm.script = Script([Text("The answer is 42.")])
    plan = write_plan(tmp_path, clis.CLAUDE, llm, "asker", prompt="What is the answer?", done="idle:3s")
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "asker", llm)

    assert wait_settled(agentsup, run_id, "asker", 90, llm) == "succeeded", why()
    events = [e for e in agentsup.events(run_id) if e.agent == "asker"]
    turn = next(i for i, e in enumerate(events) if e.kind is EventKind.AGENT_TURN)
    done = next(i for i, e in enumerate(events) if e.data.get("to") == "succeeded")
    assert turn < done, why()
    assert events[done].source == "silence", why()
    assert (events[done].ts - events[turn].ts) >= 3, why()


def test_claude_interactive_takes_a_second_prompt_from_send_and_finishes_by_its_done_file(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.CLAUDE)
    llm.script = Script([Text("First answer."), Text("Second answer.")])
    plan = write_plan(tmp_path, clis.CLAUDE, llm, "chat", prompt="The first question.", done="file")
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "chat", llm)

    wait_for(lambda: events_of(agentsup, run_id, EventKind.AGENT_TURN, "chat"), 90, why)
    assert agent_state(agentsup, run_id, "chat")["state"] == "running", why()
    agentsup.run("send", run_id, "chat", "The second question.")
    wait_for(lambda: any(r.asks("The second question.") for r in llm.requests), 60, why)
    wait_for(lambda: len(events_of(agentsup, run_id, EventKind.AGENT_TURN, "chat")) == 2, 60, why)
    assert agent_state(agentsup, run_id, "chat")["state"] == "running", why()

    (agentsup.run_dir(run_id) / "panes" / "chat.1.done").touch()
    assert wait_settled(agentsup, run_id, "chat", 60, llm) == "succeeded", why()
    assert states_of(agentsup, run_id, "chat")[-1].source == "done_file", why()
    assert len(events_of(agentsup, run_id, EventKind.AGENT_PROMPTED, "chat")) == 1, why()


def test_claude_interactive_prompt_is_not_typed_again_by_a_resumed_engine(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer
) -> None:
    need(clis.CLAUDE)
    prompt = "What is the answer? Asked once."
    held = Held(Text("The answer is 42."))
    llm.script = Script([held])
    plan = write_plan(tmp_path, clis.CLAUDE, llm, "asker", prompt=prompt)
    run_id = start(agentsup, plan)

    def why() -> str:
        return explain(agentsup, run_id, "asker", llm)

    wait_for(lambda: events_of(agentsup, run_id, EventKind.AGENT_PROMPTED, "asker"), 90, why)
    llm.wait_holding(timeout=60)
    kill_engine(agentsup)
    agentsup.run("resume", run_id, "--detach")
    wait_for(agentsup.engine_pids, 30, why)
    held.release.set()

    assert wait_settled(agentsup, run_id, "asker", 90, llm) == "succeeded", why()
    asked = [r.conversation.user_text.count(prompt) for r in llm.requests if r.conversation is not None]
    assert max(asked) == 1, why()
    assert len(events_of(agentsup, run_id, EventKind.AGENT_PROMPTED, "asker")) == 1, why()
    assert agent_state(agentsup, run_id, "asker")["attempts"] == 1, why()
    resumed = [e for e in agentsup.events(run_id) if e.kind is EventKind.RUN_RESUMED]
    assert [e.data.get("adopted") for e in resumed] == [["asker"]], why()
