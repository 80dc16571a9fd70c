"""A run directory that cannot take more: the engine stops with a clear message, the event log stays
intact, and once there is room `agentsup resume` finishes the run with nothing lost and nothing twice.

"Full" is made real with RLIMIT_FSIZE on the test's tmux server (every process it starts inherits it):
a write past the limit fails with EFBIG, as one past the end of a full disk fails with ENOSPC.
"""

from __future__ import annotations

import resource
import signal
import sqlite3
import subprocess
from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import AGENTSUP, Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

FILE_LIMIT = 512 * 1024
ALERTS = 4000

PLAN = f"""
[agents.chatty]
cmd = '''
for i in $(seq 1 {ALERTS}); do echo "WARN $i"; done
while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done
'''
alerts = [{{ match = "^WARN", severity = "warning" }}]
"""


def limited() -> None:
    """In the child: files may not grow past FILE_LIMIT; a write past it fails instead of killing."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))


def test_a_full_event_log_stops_the_engine_cleanly_and_resume_finishes_the_run(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    started = subprocess.run(
        [AGENTSUP, "start", str(plan), "--detach", "--run-id", "full"],
        env=agentsup.env,
        preexec_fn=limited,  # only setrlimit and a signal disposition, before exec
        capture_output=True,
        text=True,
        check=False,
    )
    assert started.returncode == 0, started.stderr
    run_dir = agentsup.run_dir("full")

    wait_until(lambda: not agentsup.engine_pids(), timeout=60, message="the engine did not stop")
    engine_log = (run_dir / "engine.log").read_text()
    assert "the event log cannot be written, so the engine stops" in engine_log
    assert "agentsup resume full" in engine_log
    assert "Traceback" not in engine_log
    with sqlite3.connect(run_dir / "events.db") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    logged = [ev for ev in agentsup.events("full") if ev.kind is EventKind.ALERT]
    assert len(logged) < ALERTS  # the limit was hit mid-run (a whole batch of alerts fails at once)
    assert {a["name"]: a["state"] for a in agentsup.status_json("full")["agents"]} == {"chatty": "running"}

    # Room again: a tmux server without the limit, a new engine.
    agentsup.tmux("kill-server")
    (run_dir / "agents" / "chatty" / "out" / "go").touch()
    resumed = agentsup.run("resume", "full", "--no-tui", check=False)

    assert resumed.returncode in (0, 1), resumed.stderr
    lines = [str(ev.data["line"]) for ev in agentsup.events("full") if ev.kind is EventKind.ALERT]
    assert lines == [f"WARN {i}" for i in range(1, ALERTS + 1)]  # each once, in order, none lost


def test_an_output_log_is_cut_back_to_max_log_and_later_lines_still_count(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[run]\nmax_log = "100KB"\n\n[agents.flood]\n'
        "cmd = 'head -c 5000000 /dev/zero | tr \"\\\\0\" x | fold -w 99; echo; echo LAST'\n"
        'alerts = [{ match = "^LAST", severity = "warning" }]\n'
    )

    result = agentsup.run("start", str(plan), "--no-tui", "--run-id", "capped", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    log = (agentsup.run_dir("capped") / "panes" / "flood.1.log").read_bytes()
    assert log.startswith(b"x" * 99)
    assert 100_000 <= len(log) < 100_000 + 64 * 1024  # the cap, plus what came after the last cut
    alerts = [ev.data for ev in agentsup.events("capped") if ev.kind is EventKind.ALERT]
    assert [(a["rule"], a["severity"]) for a in alerts] == [("max_log", "warning"), ("^LAST", "warning")]


def test_past_max_event_log_only_critical_alerts_are_logged(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(
        '[run]\nmax_event_log = "64KB"\n\n[agents.noisy]\n'
        "cmd = '''\n"
        'for s in 1 2 3 4 5 6; do for i in $(seq 1 300); do echo "WARN $s $i"; done; sleep 1; done\n'
        "echo 'CRIT one'; echo 'CRIT two'\n"
        "'''\n"
        'alerts = [{ match = "^WARN", severity = "warning" }, { match = "^CRIT", severity = "critical" }]\n'
    )

    result = agentsup.run("start", str(plan), "--no-tui", "--run-id", "noisy", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    alerts = [ev.data for ev in agentsup.events("noisy") if ev.kind is EventKind.ALERT]
    warnings = [a for a in alerts if a["rule"] == "^WARN"]
    assert 0 < len(warnings) < 1800
    assert [a["line"] for a in alerts if a["rule"] == "^CRIT"] == ["CRIT one", "CRIT two"]
    [full] = [a for a in alerts if a["rule"] == "max_event_log"]
    assert full["severity"] == "critical"
