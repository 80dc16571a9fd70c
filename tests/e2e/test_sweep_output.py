"""The reconcile sweep reads output that inotify never reported: it reads only the logs that grew."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import Agentsup, inotify_flooded, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

QUIET = """
[agents.quiet]
cmd = 'while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done'
alerts = [{ match = "^MISSED ", severity = "warning" }]
"""


def alert_lines(agentsup: Agentsup, run_id: str) -> list[str]:
    return [str(e.data["line"]) for e in agentsup.events(run_id) if e.kind is EventKind.ALERT]


def test_output_inotify_never_reported_is_read_by_the_sweep(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(QUIET)
    agentsup.run("start", str(plan), "--detach", "--run-id", "missed")
    run_dir = agentsup.run_dir("missed")
    wait_until(lambda: agentsup.status_json("missed")["agents"][0]["state"] == "running", timeout=60)
    # The line stands in for what tmux's pipe-pane would have appended.
    with inotify_flooded(agentsup, "missed"), (run_dir / "panes" / "quiet.1.log").open("a") as log:
        log.write("MISSED by inotify\n")

    wait_until(lambda: "MISSED by inotify" in alert_lines(agentsup, "missed"), timeout=30)
    # watchdog reports the overflow once it has read the queue: the events are gone for good.
    wait_until(lambda: "Inotify queue overflowed" in (run_dir / "engine.log").read_text(), timeout=60)
    (run_dir / "agents" / "quiet" / "out" / "go").touch()
    wait_until(lambda: agentsup.status_json("missed")["state"] == "succeeded", timeout=60)
    assert alert_lines(agentsup, "missed") == ["MISSED by inotify"]
