"""tmux trouble: the run's server or session killed, an agent's window closed by hand, inotify events lost."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil
import pytest

from agentsup.supervisor.events import Event, EventKind
from tests.e2e.harness import Agentsup, inotify_flooded, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

WINDOW_GONE = "its tmux window is gone"
SESSION_GONE = f"{WINDOW_GONE}: the run's tmux session was closed or its server killed"

# `again` shrugs off the hangup (it would outlive its pane) on attempt 1 and succeeds on attempt 2.
TROUBLE = """
[run]
on_failure = "continue"

[agents.again]
retries = 1
backoff = "0.1s"
cmd = '''
echo "again: attempt $AGENTSUP_ATTEMPT" >> "$LEDGER"
echo $$ > "$AGENTSUP_OUT/pid.$AGENTSUP_ATTEMPT"
[ "$AGENTSUP_ATTEMPT" = 1 ] || exit 0
trap '' HUP
exec sleep 600
'''

[agents.once]
cmd = 'echo "once: attempt $AGENTSUP_ATTEMPT" >> "$LEDGER"; exec sleep 600'

[agents.later]
after = ["again"]
cmd = 'echo "later: attempt $AGENTSUP_ATTEMPT" >> "$LEDGER"'
"""


def agents(agentsup: Agentsup, run_id: str) -> dict[str, dict[str, object]]:
    return {a["name"]: a for a in agentsup.status_json(run_id)["agents"]}


def pid_of(agentsup: Agentsup, run_id: str, agent: str, attempt: int) -> psutil.Process:
    path = agentsup.run_dir(run_id) / "agents" / agent / "out" / f"pid.{attempt}"
    wait_until(path.exists, timeout=60, message=f"{agent} never wrote its pid")
    return psutil.Process(int(path.read_text()))


def ended(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def start(agentsup: Agentsup, tmp_path: Path, plan_text: str, run_id: str) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text)
    agentsup.run("start", str(plan), "--detach", "--run-id", run_id)


@pytest.mark.parametrize("kill", ["kill-server", "kill-session"])
def test_a_run_whose_tmux_server_or_session_is_killed_is_left_for_resume(
    agentsup: Agentsup, tmp_path: Path, kill: str
) -> None:
    ledger = tmp_path / "ledger"
    agentsup.env["LEDGER"] = str(ledger)
    start(agentsup, tmp_path, TROUBLE, "doomed")
    wait_until(lambda: agents(agentsup, "doomed")["once"]["state"] == "running", timeout=60)
    survivor = pid_of(agentsup, "doomed", "again", 1)

    agentsup.tmux(*([kill] if kill == "kill-server" else [kill, "-t", "=doomed"]))

    wait_until(lambda: not agentsup.engine_pids(), timeout=60, message="the engine outlived its session")
    log = (agentsup.run_dir("doomed") / "engine.log").read_text()
    assert "Traceback" not in log, log
    assert "the run's tmux session doomed is gone" in log
    assert "run doomed left unfinished" in log
    # What is left of the lost agents is stopped in one go (one walk over the process table for all).
    assert log.count("whose panes are gone") == 1, log
    assert "stopping what is left of 2 agent(s) whose panes are gone" in log, log
    assert ended(survivor), "an agent that ignored the hangup outlived its pane"
    status = agentsup.status_json("doomed")
    assert status["state"] == "running"  # unfinished: resumable
    by = {a["name"]: a for a in status["agents"]}
    assert {name: a["state"] for name, a in by.items()} == {
        "again": "retrying",
        "once": "lost",
        "later": "pending",
    }
    assert by["again"]["reason"] == by["once"]["reason"] == SESSION_GONE

    result = agentsup.run("resume", "doomed", "--no-tui", check=False)

    assert result.returncode == 1, result.stdout + result.stderr  # `once` stays lost
    by = agents(agentsup, "doomed")
    assert (by["again"]["state"], by["again"]["attempts"]) == ("succeeded", 2)
    assert (by["once"]["state"], by["once"]["attempts"]) == ("lost", 1)
    assert by["later"]["state"] == "succeeded"
    assert sorted(ledger.read_text().splitlines()) == [
        "again: attempt 1",
        "again: attempt 2",
        "later: attempt 1",
        "once: attempt 1",
    ]
    resumed = [e for e in agentsup.events("doomed") if e.kind is EventKind.RUN_RESUMED]
    assert len(resumed) == 1


CLOSED = """
[run]
on_failure = "continue"

[agents.again]
retries = 1
backoff = "0.1s"
cmd = '''
echo $$ > "$AGENTSUP_OUT/pid.$AGENTSUP_ATTEMPT"
[ "$AGENTSUP_ATTEMPT" = 1 ] || exit 0
trap '' HUP
exec sleep 600
'''

[agents.once]
cmd = 'echo $$ > "$AGENTSUP_OUT/pid.$AGENTSUP_ATTEMPT"; exec sleep 600'

[agents.bystander]
cmd = 'while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done'
"""


def state_changes(events: list[Event], agent: str) -> list[tuple[str, object, float]]:
    return [
        (str(e.data["to"]), e.data.get("reason"), e.ts)
        for e in events
        if e.kind is EventKind.AGENT_STATE and e.agent == agent
    ]


def test_an_agent_whose_window_is_closed_is_lost_then_retried_and_the_engine_stays_calm(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    start(agentsup, tmp_path, CLOSED, "closed")
    wait_until(lambda: agents(agentsup, "closed")["bystander"]["state"] == "running", timeout=60)
    survivor = pid_of(agentsup, "closed", "again", 1)
    pid_of(agentsup, "closed", "once", 1)
    (engine_pid,) = agentsup.engine_pids()
    engine = psutil.Process(engine_pid)

    killed_at = time.time()
    agentsup.tmux("kill-window", "-t", "=closed:again")
    agentsup.tmux("kill-window", "-t", "=closed:once")

    wait_until(lambda: agents(agentsup, "closed")["again"]["state"] == "succeeded", timeout=60)
    wait_until(lambda: agents(agentsup, "closed")["once"]["state"] == "lost", timeout=60)
    events = agentsup.events("closed")
    lost = [c for c in state_changes(events, "once") if c[0] == "lost"]
    retried = [c for c in state_changes(events, "again") if c[0] == "retrying"]
    assert [c[1] for c in lost + retried] == [WINDOW_GONE, WINDOW_GONE]
    # Two sweeps (2 s apart) at most, with room for a loaded machine.
    assert all(ts - killed_at < 10 for _, _, ts in lost + retried)
    wait_until(lambda: ended(survivor), timeout=15, message="the agent outlived its closed window")

    # Calm afterwards: over two sweep intervals (the engine still sweeping: usage.json is rewritten), the
    # engine uses a small part of one CPU.
    usage = agentsup.run_dir("closed") / "usage.json"
    before, began, seen = sum(engine.cpu_times()[:2]), time.monotonic(), usage.stat().st_mtime_ns
    wait_until(lambda: time.monotonic() - began >= 4 and usage.stat().st_mtime_ns != seen, timeout=30)
    used = sum(engine.cpu_times()[:2]) - before
    assert used < 0.25 * (time.monotonic() - began), f"the engine spins: {used:.2f} s of CPU"

    (agentsup.run_dir("closed") / "agents" / "bystander" / "out" / "go").touch()
    wait_until(lambda: agentsup.status_json("closed")["state"] == "failed", timeout=60)
    log = (agentsup.run_dir("closed") / "engine.log").read_text()
    assert "Traceback" not in log


GATE = """
[agents.gate]
cmd = 'while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done; echo bye'

[agents.keeper]
cmd = 'while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done'
"""


def test_the_sweep_catches_an_exit_that_inotify_never_reported(agentsup: Agentsup, tmp_path: Path) -> None:
    start(agentsup, tmp_path, GATE, "flood")
    wait_until(lambda: agents(agentsup, "flood")["gate"]["state"] == "running", timeout=60)
    # The exit record's rename comes after the flood: inotify never reports it.
    with inotify_flooded(agentsup, "flood") as run_dir:
        (run_dir / "agents" / "gate" / "out" / "go").touch()
        wait_until((run_dir / "panes" / "gate.1.exit.json").exists, timeout=30)

    wait_until(lambda: agents(agentsup, "flood")["gate"]["state"] == "succeeded", timeout=60)
    log = run_dir / "engine.log"
    # watchdog reports the overflow once it has read the queue: the events are gone for good.
    wait_until(lambda: "Inotify queue overflowed" in log.read_text(), timeout=60)
    assert "the sweep found the exit record of gate (attempt 1) before inotify did" in log.read_text()
    (exit_event,) = [e for e in agentsup.events("flood") if e.kind is EventKind.AGENT_EXIT]
    assert exit_event.source == "exit_file"  # the record itself, not tmux's status of the dead pane
    assert exit_event.data["code"] == 0
    (run_dir / "agents" / "keeper" / "out" / "go").touch()
    wait_until(lambda: agentsup.status_json("flood")["state"] == "succeeded", timeout=60)


LOST_MARKER = """
[agents.quiet]
cmd = 'echo before; while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done; echo after'

[agents.next]
after = ["quiet"]
cmd = "true"
"""


def test_an_exit_whose_last_bytes_never_reach_the_log_is_judged_once_tmux_pipe_has_ended(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    """tmux may close a pane whose process ended before the kernel handed it the pane's last bytes: the
    wrapper's end marker never reaches the log. Here the pipe is closed by hand before the agent's last
    line and the marker. The engine must see that tmux's pipe has ended (the pane is dead, its cat gone),
    not wait out the settle time for a marker that cannot come."""
    start(agentsup, tmp_path, LOST_MARKER, "lost")
    run_dir = agentsup.run_dir("lost")
    log = run_dir / "panes" / "quiet.1.log"
    wait_until(lambda: log.exists() and "before" in log.read_text(), timeout=60)
    wait_until(lambda: any(e.kind is EventKind.AGENT_SPAWNED for e in agentsup.events("lost")), timeout=30)
    (spawned,) = [
        e for e in agentsup.events("lost") if e.kind is EventKind.AGENT_SPAWNED and e.agent == "quiet"
    ]
    pane = str(spawned.data["pane_id"])
    agentsup.tmux("pipe-pane", "-t", pane)  # no command: tmux closes the pane's pipe
    pipe = ("display-message", "-p", "-t", pane, "#{pane_pipe}")
    wait_until(lambda: agentsup.tmux(*pipe).strip() == "0", timeout=30)

    (run_dir / "agents" / "quiet" / "out" / "go").touch()

    wait_until(lambda: agentsup.status_json("lost")["state"] == "succeeded", timeout=60)
    assert log.read_bytes() == b"before\r\n"  # neither its last line nor the end marker came
    engine_log = (run_dir / "engine.log").read_text()
    assert "quiet (attempt 1) ended without its end marker in its log; tmux's pipe has ended" in engine_log
    assert "Traceback" not in engine_log
    (exit_event,) = [
        e for e in agentsup.events("lost") if e.kind is EventKind.AGENT_EXIT and e.agent == "quiet"
    ]
    assert (exit_event.source, exit_event.data["code"]) == ("exit_file", 0)


OLD_TMUX = """#!/bin/sh
# Says it is tmux 2.6 and can do nothing else.
case " $* " in *" -V "*) echo "tmux 2.6"; exit 0 ;; esac
echo "fake tmux: $*" >&2
exit 1
"""


def test_start_resume_attach_and_tui_refuse_a_tmux_older_than_3_0(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[agents.one]\ncmd = "sleep 600"\n')
    agentsup.run("start", str(plan), "--detach", "--run-id", "old")
    (engine,) = agentsup.engine_pids()
    os.kill(engine, signal.SIGKILL)
    wait_until(lambda: not agentsup.engine_pids(), message="the killed engine is still listed")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "tmux").write_text(OLD_TMUX)
    (bin_dir / "tmux").chmod(0o755)
    real_path = agentsup.env["PATH"]
    agentsup.env["PATH"] = f"{bin_dir}{os.pathsep}{real_path}"

    started = agentsup.run("start", str(plan), "--detach", "--run-id", "new", check=False)
    resumed = agentsup.run("resume", "old", "--detach", check=False)
    attached = agentsup.run("attach", "old", "one", check=False)
    viewed = agentsup.run("tui", "old", check=False)

    agentsup.env["PATH"] = real_path
    for result in (started, resumed, attached, viewed):
        assert result.returncode == 2, result.stdout + result.stderr
        assert f"{bin_dir / 'tmux'} is tmux 2.6; agentsup needs tmux >= 3.0: " in result.stderr
        assert "new-window -e" in result.stderr
        assert "Traceback" not in result.stderr
    assert not agentsup.run_dir("new").exists()
    assert [e.kind for e in agentsup.events("old")][-1] is not EventKind.RUN_RESUMED
