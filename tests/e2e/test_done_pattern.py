"""A done pattern printed at once, before the engine has the agent's pane in its books, still counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Agentsup

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

AGENTS = 24


def test_a_done_line_printed_while_the_agent_is_starting_is_not_missed(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        f'[run]\nname = "quick"\nmax_parallel = {AGENTS}\n'
        + "".join(
            f'\n[agents.q{i:02d}]\ncmd = "echo READY; exec sleep 600"\ndone = "pattern:^READY"\n'
            for i in range(AGENTS)
        )
    )

    result = agentsup.run("start", str(plan), "--no-tui", "--run-id", "quick", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    status = agentsup.status_json("quick")
    assert {a["name"]: (a["state"], a["source"]) for a in status["agents"]} == {
        f"q{i:02d}": ("succeeded", "pattern") for i in range(AGENTS)
    }
