"""Answering from the dashboard: a real Claude Code agent, scripted by the LLM server, asks permission to
write a file; the dashboard shows its question, and y approves it or n denies it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot

from agentsup.supervisor.events import EventKind
from agentsup.supervisor.rundir import RunDir
from agentsup.tui.app import Dashboard
from agentsup.tui.present import question_of
from tests.e2e.clirun import explain, need, write_plan
from tests.e2e.harness import Agentsup
from tests.llm import clis
from tests.llm.script import Script, Text
from tests.llm.server import LLMServer
from tests.tui.test_dashboard import (
    SIZE,
    cell,
    details,
    first_command,
    select,
    shown_state,
    toasts,
    until_async,
)

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

# key -> the answer it logs, what the dashboard says of it
ANSWERS = {"y": ("approve", "approved"), "n": ("deny", "denied")}


@pytest.mark.parametrize("key", ANSWERS)
def test_y_approves_and_n_denies_the_question_of_an_agent_cli(
    agentsup: Agentsup, tmp_path: Path, llm: LLMServer, key: str
) -> None:
    need(clis.CLAUDE)
    answer, done = ANSWERS[key]
    work = tmp_path / "work"
    llm.script = Script([clis.claude_write(work, "hello.txt", "hi there\n"), Text("Finished.")])
    plan = write_plan(tmp_path, clis.CLAUDE, llm, "writer", prompt="Write hello.txt please.")
    agentsup.run("start", str(plan), "--detach", "--run-id", "approve")
    run = RunDir(agentsup.run_dir("approve"))
    app = Dashboard(run)

    async def questions() -> int:
        events = await asyncio.to_thread(agentsup.events, run.run_id)
        return sum(1 for e in events if e.kind is EventKind.AGENT_STATE and e.data.get("to") == "needs_input")

    async def screen() -> str:
        try:
            return await asyncio.to_thread(agentsup.tmux, "capture-pane", "-p", "-t", "approve:writer")
        except AssertionError:  # its window is gone: the agent ended (its state says how)
            return ""

    async def dialog_drawn() -> bool:
        shown = await screen()
        return "1. Yes" in shown and "Esc to cancel" in shown

    async def answered() -> bool:
        """Approved: its turn went on and it succeeded. Denied: its CLI says so, and stops its turn there
        (the engine may or may not see that turn end: it has no hook for it)."""
        if shown_state(app, "writer") == "succeeded":
            return True
        return answer == "deny" and "Rejected write to hello.txt" in await screen()

    async def until(
        pilot: Pilot[None],
        predicate: Callable[[], object | Awaitable[object]],
        what: str,
        timeout: float = 30,
    ) -> None:
        """Until ``predicate`` (sync or async) holds; on failure, the run's events, requests, log, screen."""

        async def holds() -> object:
            value = predicate()
            return await value if isinstance(value, Awaitable) else value

        try:
            await until_async(pilot, holds, what, timeout)
        except AssertionError as exc:
            why = await asyncio.to_thread(explain, agentsup, run.run_id, "writer", llm)
            raise AssertionError(f"{exc}\n--- toasts\n{toasts(app)}\n{why}") from None

    async def scenario() -> None:
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: shown_state(app, "writer") != "", "writer in the table")
            select(app, "writer")
            await until(pilot, lambda: shown_state(app, "writer") == "needs_input", "the question", 90)
            # Its hook tells before the dialog is drawn: answer once it is, as a person would.
            await until(pilot, dialog_drawn, "the dialog on its screen")
            await until(pilot, lambda: shown_state(app, "writer") == "needs_input", "the question still")

            # The question: as the row's last line, in a toast, and whole in the details.
            assert app.view is not None
            question = question_of(next(r for r in app.view.agents if r.name == "writer")) or ""
            assert "hello.txt" in question
            shown = cell(app, "writer", "last").removesuffix("…")  # cut to the column
            assert shown
            assert question.splitlines()[-1].startswith(shown)
            await until(
                pilot,
                lambda: any(t.startswith("writer needs input: ") and "hello.txt" in t for t in toasts(app)),
                "the toast",
            )
            await pilot.press("i")
            await until(pilot, lambda: "  question " in details(app), "the details")
            asked = details(app).split("  question ", 1)[1].split("  answer ", 1)
            assert "hello.txt" in asked[0]
            assert asked[1].startswith("  y approves, n denies, a attaches to its pane")

            # Claude Code may drop keys that come right after its dialog is drawn; the dialog then stays
            # and its hook asks again (seconds later): a person answers again.
            for _ in range(2):
                await until(pilot, lambda: shown_state(app, "writer") == "needs_input", "the question")
                before = await questions()
                app.clear_notifications()
                await pilot.press(key)
                await until(pilot, lambda: f"writer: {done}" in toasts(app), "the engine's answer")

                async def answered_or_asked(before: int = before) -> bool:
                    return await answered() or await questions() > before

                await until(pilot, answered_or_asked, f"writer {done}, or asked again", 60)
                if await answered():
                    break
            await until(pilot, answered, f"writer {done}")
            await until(pilot, lambda: shown_state(app, "writer") != "needs_input", "no question")
            assert not cell(app, "writer", "last").startswith(shown)

            # Once it asks nothing, the key (or the palette's entry) says so and sends nothing.
            def refused() -> bool:
                return any(t.startswith("writer is not waiting for an answer (it is ") for t in toasts(app))

            app.clear_notifications()
            await pilot.press(key)
            await until(pilot, refused, "the refusal")
            app.clear_notifications()
            title = answer.capitalize()
            await pilot.press("ctrl+p", *title.lower())
            await until(pilot, lambda: first_command(app).startswith(title), "the palette's entry")
            await pilot.press("enter")
            await until(pilot, refused, "the refusal, from the palette")

    asyncio.run(scenario())
    written = work / "hello.txt"
    assert written.read_text() == "hi there\n" if answer == "approve" else not written.exists()
    events = agentsup.events(run.run_id)
    answers = {(e.data["answer"], e.data["by"]) for e in events if e.kind is EventKind.AGENT_ANSWERED}
    assert answers == {(answer, "user")}
