"""`agentsup stop`: every process of the run ends, detached daemons included, in reverse order if asked."""

from __future__ import annotations

import os
from pathlib import Path

import psutil
import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

DAEMONIZE = Path(__file__).resolve().parent.parent / "fakeagents" / "daemonize.py"

LITTER = """
[agents.worker]
cmd = '''
echo $$ > "$AGENTSUP_OUT/main.pid"
nohup sleep 1000 > /dev/null 2>&1 &
echo $! > "$AGENTSUP_OUT/nohup.pid"
python3 {daemonize} "$AGENTSUP_OUT/daemon.pid"
exec sleep 1000
'''

[agents.leaver]
cmd = 'python3 {daemonize} "$AGENTSUP_OUT/daemon.pid"'
"""

PID_FILES = ["worker/out/main.pid", "worker/out/nohup.pid", "worker/out/daemon.pid", "leaver/out/daemon.pid"]


def processes_carrying(key: str, value: str) -> list[psutil.Process]:
    """Live processes whose environment has ``key=value``."""
    found = []
    for proc in psutil.process_iter(["environ", "status"]):
        env = proc.info["environ"] or {}
        if env.get(key) == value and proc.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(proc)
    return found


def state_of(agentsup: Agentsup, run_id: str) -> dict[str, str]:
    return {a["name"]: a["state"] for a in agentsup.status_json(run_id)["agents"]}


def gone(proc: psutil.Process) -> bool:
    try:
        return not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def test_stop_ends_every_process_of_the_run_detached_daemons_included(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(LITTER.format(daemonize=DAEMONIZE))
    agentsup.run("start", str(plan), "--detach", "--run-id", "litter")
    agents_dir = agentsup.run_dir("litter") / "agents"
    wait_until(
        lambda: all((agents_dir / f).exists() for f in PID_FILES),
        timeout=60,
        message="the agents never wrote pids",
    )
    wait_until(lambda: state_of(agentsup, "litter")["leaver"] == "succeeded", timeout=60)
    procs = [psutil.Process(int((agents_dir / f).read_text())) for f in PID_FILES]
    main, daemon = procs[0], procs[2]
    assert os.getsid(daemon.pid) != os.getsid(main.pid), "the daemon should have left the agent's session"
    assert daemon.ppid() != main.pid
    inbox = str(agentsup.run_dir("litter") / "inbox")
    assert len(processes_carrying("AGENTSUP_INBOX", inbox)) >= len(procs)

    agentsup.run("stop", "litter")

    wait_until(lambda: agentsup.status_json("litter")["state"] == "stopped", timeout=60)
    wait_until(lambda: all(gone(p) for p in procs), timeout=15, message="a process of the run survived")
    assert processes_carrying("AGENTSUP_INBOX", inbox) == []
    assert state_of(agentsup, "litter") == {"worker": "stopped", "leaver": "succeeded"}


CHAIN = """
[run]
name = "chain"

[agents.db]
done = "pattern:db ready"
cmd = '''{agent}'''

[agents.api]
after = ["db"]
done = "pattern:api ready"
cmd = '''{agent}'''

[agents.web]
after = ["api"]
cmd = '''{agent}'''
"""

# Takes a second to shut down, and says when it got SIGTERM and when it is done.
SERVER = """
me=$AGENTSUP_AGENT
trap 'echo "$me TERM" >> "$LEDGER"; sleep 1; echo "$me exit" >> "$LEDGER"; exit 0' TERM
echo "$me ready"
while :; do sleep 0.05; done
"""


@pytest.mark.parametrize("reverse", [True, False])
def test_stop_reverse_stops_dependents_before_what_they_depend_on(
    agentsup: Agentsup, tmp_path: Path, reverse: bool
) -> None:
    ledger = tmp_path / "ledger"
    agentsup.env["LEDGER"] = str(ledger)
    plan = tmp_path / "plan.toml"
    plan.write_text(CHAIN.format(agent=SERVER))
    agentsup.run("start", str(plan), "--detach", "--run-id", "chain")
    wait_until(lambda: state_of(agentsup, "chain")["web"] == "running", timeout=60)
    wait_until(lambda: "web ready" in agentsup.logs("chain", "web"), timeout=60)

    agentsup.run("stop", "chain", *(["--reverse"] if reverse else []))

    wait_until(lambda: agentsup.status_json("chain")["state"] == "stopped", timeout=60)
    lines = ledger.read_text().splitlines()
    if reverse:
        assert lines == ["web TERM", "web exit", "api TERM", "api exit", "db TERM", "db exit"]
    else:  # all at once: each got SIGTERM before any was done
        assert sorted(lines[:3]) == ["api TERM", "db TERM", "web TERM"], lines
    assert state_of(agentsup, "chain") == {"db": "succeeded", "api": "succeeded", "web": "stopped"}
    commands = [e.data for e in agentsup.events("chain") if e.kind is EventKind.COMMAND]
    assert commands == [{"command": "stop", **({"reverse": True} if reverse else {})}]
