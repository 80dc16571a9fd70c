"""`agentsup start` in a terminal opens the dashboard; leaving it leaves the run going."""

from __future__ import annotations

from pathlib import Path

import pexpect
import pytest

from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

PLAN = """
[agents.sleeper]
cmd = "sleep 300"
"""


def test_start_in_a_terminal_opens_the_dashboard(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    term = agentsup.spawn("start", str(plan), "--run-id", "dash")
    term.expect("sleeper")  # the agent table
    term.expect("running")
    term.send("q")
    term.expect("run dash goes on in tmux")
    term.expect(pexpect.EOF)
    assert agentsup.status_json("dash")["state"] == "running"
    agentsup.run("stop", "dash")
    wait_until(lambda: agentsup.status_json("dash")["state"] == "stopped")
