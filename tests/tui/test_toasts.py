"""Failures, critical alerts and questions arriving while the dashboard is open become toasts."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from textual.widget import Widget

from agentsup.supervisor.rundir import RunDir
from agentsup.tui.app import Dashboard
from tests.e2e.harness import Agentsup, wait_until
from tests.tui.test_dashboard import SIZE, until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

PLAN = """
[run]
on_failure = "continue"

[agents.old]
cmd = "exit 9"

[agents.boom]
cmd = 'while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done; echo "FATAL: disk gone"; exit 3'
alerts = [{ match = "^FATAL", severity = "critical" }]

[agents.keeper]
cmd = "sleep 600"
"""


def toasts(app: Dashboard) -> list[str]:
    return [str(w.render()) for w in app.screen.query("Toast") if isinstance(w, Widget)]


def test_live_failures_and_critical_alerts_become_toasts(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    agentsup.run("start", str(plan), "--detach", "--run-id", "toast")
    run = RunDir(agentsup.run_dir("toast"))
    wait_until(lambda: agentsup.status_json("toast")["agents"][0]["state"] == "failed")  # before we open

    async def scenario() -> None:
        app = Dashboard(run)
        async with app.run_test(size=SIZE, notifications=True) as pilot:
            await until(pilot, lambda: app.view is not None and len(app.view.agents) == 3, "the table")
            (run.out_dir("boom") / "go").write_text("")
            await until(pilot, lambda: any("boom failed" in t for t in toasts(app)), "a failure toast")
            shown = toasts(app)
            assert any("boom: FATAL: disk gone" in t for t in shown)
            assert not any("old failed" in t for t in shown)  # it failed before the dashboard opened
            await pilot.press("q")
        agentsup.run("stop", "toast")

    asyncio.run(scenario())
