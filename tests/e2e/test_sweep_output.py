"""The reconcile sweep reads output that inotify never reported: it reads only the logs that grew."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import Agentsup, wait_until

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
    (engine,) = agentsup.engine_pids()
    server = int(agentsup.tmux("display-message", "-p", "#{pid}"))
    queue_max = int(Path("/proc/sys/fs/inotify/max_queued_events").read_text())

    # While the engine cannot read its inotify queue, more events than the queue holds fill it; the kernel
    # drops the rest, the log's growth among them. (tmux continues a stopped pane process, so its server is
    # stopped first.) The line stands in for what tmux's pipe-pane would have appended.
    os.kill(server, signal.SIGSTOP)
    os.kill(engine, signal.SIGSTOP)
    try:
        for i in range(queue_max + 100):
            os.close(os.open(run_dir / "panes" / f"flood.{i}", os.O_CREAT | os.O_WRONLY, 0o600))
        with (run_dir / "panes" / "quiet.1.log").open("a") as log:
            log.write("MISSED by inotify\n")
    finally:
        os.kill(server, signal.SIGCONT)
        os.kill(engine, signal.SIGCONT)

    wait_until(lambda: "MISSED by inotify" in alert_lines(agentsup, "missed"), timeout=30)
    # watchdog reports the overflow once it has read the queue: the events are gone for good.
    wait_until(lambda: "Inotify queue overflowed" in (run_dir / "engine.log").read_text(), timeout=60)
    (run_dir / "agents" / "quiet" / "out" / "go").touch()
    wait_until(lambda: agentsup.status_json("missed")["state"] == "succeeded", timeout=60)
    assert alert_lines(agentsup, "missed") == ["MISSED by inotify"]
