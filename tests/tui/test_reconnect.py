"""The dashboard outlives its engine: it says so, keeps the last state, and follows the engine that
`agentsup resume` starts, without being reopened."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from agentsup.tui.app import Dashboard
from tests.e2e.harness import Agentsup
from tests.tui.test_dashboard import SIZE, drive, header, shown_state, start_run, until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]


def test_the_dashboard_reconnects_to_the_engine_resume_starts(agentsup: Agentsup, tmp_path: Path) -> None:
    run = start_run(agentsup, tmp_path, "dash-back")

    async def scenario() -> None:
        app = Dashboard(run, retry=0.2)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: shown_state(app, "gate") == "running", "gate running")
            await until(pilot, lambda: " dash-back  running" in header(app), "a live engine")

            for pid in agentsup.engine_pids():
                os.kill(pid, signal.SIGKILL)
            await until(
                pilot, lambda: " dash-back  engine stopped" in header(app), "the engine shown stopped"
            )
            assert shown_state(app, "gate") == "running"  # the last state stays

            # While nobody watches, gate finishes; the new engine reads its exit file.
            (run.out_dir("gate") / "go").touch()
            await asyncio.to_thread(agentsup.run, "resume", run.run_id, "--detach")
            await until(pilot, lambda: " dash-back  running" in header(app), "the new engine followed")
            await until(pilot, lambda: shown_state(app, "gate") == "succeeded", "gate's exit, after resume")

            # Live again: a command goes to the new engine and its effect shows.
            await asyncio.to_thread(agentsup.run, "kill", run.run_id, "sleeper")
            await until(pilot, lambda: shown_state(app, "sleeper") == "stopped", "sleeper stopped")
            events = await asyncio.to_thread(agentsup.events, run.run_id)
            assert [ev.kind for ev in events].count(EventKind.RUN_RESUMED) == 1

    drive(scenario)
