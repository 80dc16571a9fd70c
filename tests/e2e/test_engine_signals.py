"""Engine signals beyond the exit file: silence (idle), recovery agents, resource limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import Agentsup

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

IDLE = """
[agents.quiet]
idle_after = "0.4s"
cmd = "echo first; sleep 2; echo again; sleep 0.1"

[[on]]
event = "agent.idle"
do = "notify"
message = "{{ event.agent }} went quiet"
"""


def test_silence_makes_an_agent_idle_and_output_brings_it_back(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(IDLE)
    agentsup.run("start", str(plan), "--no-tui", "--run-id", "idle")
    events = agentsup.events("idle")
    moves = [
        (e.data["to"], e.source) for e in events if e.kind is EventKind.AGENT_STATE and e.agent == "quiet"
    ]
    assert moves == [
        ("starting", "scheduler"),
        ("running", "backend"),
        ("idle", "silence"),
        ("running", "output"),
        ("succeeded", "exit_file"),
    ]
    idle_at = next(e for e in events if e.kind is EventKind.AGENT_STATE and e.data["to"] == "idle")
    running_at = next(e for e in events if e.kind is EventKind.AGENT_STATE and e.data["to"] == "running")
    assert idle_at.ts - running_at.ts >= 0.4  # never before idle_after
    notes = [e.data["message"] for e in events if e.kind is EventKind.NOTIFY]
    assert notes == ["quiet went quiet"]
