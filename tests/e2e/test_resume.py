"""`agentsup resume` after the engine was SIGKILLed: agents adopted, files caught up, nothing done twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import psutil
import pytest

from agentsup.supervisor.events import Event, EventKind
from agentsup.supervisor.store import EventStore
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]


def kill_engine(agentsup: Agentsup) -> None:
    """SIGKILL the run's engine, as a crash or the OOM killer would, and wait until it is gone."""
    pids = agentsup.engine_pids()
    assert len(pids) == 1, f"expected one engine, found {pids}"
    os.kill(pids[0], signal.SIGKILL)
    wait_until(lambda: not psutil.pid_exists(pids[0]) or psutil.Process(pids[0]).status() == "zombie")
    wait_until(lambda: not agentsup.engine_pids(), message="the killed engine is still listed")


def state_of(agentsup: Agentsup, run_id: str) -> dict[str, str]:
    return {a["name"]: a["state"] for a in agentsup.status_json(run_id)["agents"]}


def kinds(events: list[Event], kind: EventKind) -> list[Event]:
    return [ev for ev in events if ev.kind is kind]


def start(agentsup: Agentsup, tmp_path: Path, plan_text: str, run_id: str) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text)
    agentsup.run("start", str(plan), "--detach", "--run-id", run_id)
    return plan


ADOPT = """
[run]
name = "adopt"

[agents.slow]
cmd = '''
echo "slow: started" >> "$LEDGER"
echo "first line"
while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done
echo "ERROR after the crash"
echo done
'''
alerts = [{ match = "ERROR", severity = "warning" }]

[agents.next]
after = ["slow"]
cmd = 'echo "next: started" >> "$LEDGER"; echo {{ agents.slow.output }} > "$AGENTSUP_OUT/saw"'
"""


def test_a_resumed_engine_adopts_a_running_agent_and_reads_what_it_wrote_meanwhile(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    agentsup.env["LEDGER"] = str(ledger)
    start(agentsup, tmp_path, ADOPT, "adopt")
    wait_until(lambda: "first line" in agentsup.logs("adopt", "slow"))
    kill_engine(agentsup)

    (Path(agentsup.run_dir("adopt")) / "agents" / "slow" / "out" / "go").touch()
    wait_until(lambda: "done" in agentsup.logs("adopt", "slow"), message="the agent never finished")
    result = agentsup.run("resume", "adopt", "--no-tui", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert state_of(agentsup, "adopt") == {"slow": "succeeded", "next": "succeeded"}
    assert Counter(ledger.read_text().splitlines()) == {"slow: started": 1, "next: started": 1}
    events = agentsup.events("adopt")
    assert [ev.data["line"] for ev in kinds(events, EventKind.ALERT)] == ["ERROR after the crash"]
    resumed = kinds(events, EventKind.RUN_RESUMED)
    assert [ev.data["adopted"] for ev in resumed] == [["slow"]]
    assert len(kinds(events, EventKind.RUN_FINISHED)) == 1
    assert "done" in (agentsup.run_dir("adopt") / "agents" / "next" / "out" / "saw").read_text()


GATED = """
[run]
name = "gated"

[agents.gate]
cmd = 'while [ ! -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done'

[agents.late]
cmd = 'echo "late: started" >> "${LEDGER:-/dev/null}"'

[[on]]
event = "external"
name = "ping"
do = "notify"
message = "pinged"
"""


def test_a_spawn_logged_but_never_made_is_made_once_on_resume(agentsup: Agentsup, tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    agentsup.env["LEDGER"] = str(ledger)
    start(agentsup, tmp_path, GATED.replace("[agents.late]", "[agents.late]\nafter = ['gate']"), "intent")
    wait_until(lambda: state_of(agentsup, "intent")["gate"] == "running")
    kill_engine(agentsup)
    run_dir = agentsup.run_dir("intent")
    (run_dir / "agents" / "gate" / "out" / "go").touch()
    wait_until((run_dir / "panes" / "gate.1.exit.json").exists)
    # What the log holds when the engine dies between writing a spawn's intent and opening its window.
    with EventStore.open(run_dir / "events.db") as store:
        store.append_many(
            [
                (
                    EventKind.AGENT_STATE,
                    "gate",
                    "exit",
                    {"from": "running", "to": "succeeded", "attempt": 1},
                    None,
                ),
                (EventKind.AGENT_SPAWN, "late", "scheduler", {"attempt": 1}, None),
                (
                    EventKind.AGENT_STATE,
                    "late",
                    "scheduler",
                    {"from": "waiting", "to": "starting", "attempt": 1},
                    None,
                ),
            ]
        )

    result = agentsup.run("resume", "intent", "--no-tui", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    assert ledger.read_text() == "late: started\n"
    resumed = kinds(agentsup.events("intent"), EventKind.RUN_RESUMED)
    assert [ev.data["respawned"] for ev in resumed] == [["late"]]
    assert len(kinds(agentsup.events("intent"), EventKind.AGENT_SPAWN)) == 2  # gate's, late's: no new intent


def test_events_logged_while_handlers_had_not_seen_them_fire_once_after_resume(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    start(agentsup, tmp_path, GATED, "handlers")
    wait_until(lambda: state_of(agentsup, "handlers")["gate"] == "running")
    agentsup.run("emit", "handlers", "ping")
    wait_until(lambda: kinds(agentsup.events("handlers"), EventKind.NOTIFY))
    kill_engine(agentsup)
    # An event the dead engine logged but never offered to its handlers.
    with EventStore.open(agentsup.run_dir("handlers") / "events.db") as store:
        store.append(EventKind.EXTERNAL, None, "user", {"name": "ping", "data": None, "via": "control"})
    (agentsup.run_dir("handlers") / "agents" / "gate" / "out" / "go").touch()

    result = agentsup.run("resume", "handlers", "--no-tui", check=False)

    assert result.returncode == 0, result.stdout + result.stderr
    events = agentsup.events("handlers")
    externals = [ev.seq for ev in kinds(events, EventKind.EXTERNAL)]
    fired = Counter(ev.data["trigger"] for ev in kinds(events, EventKind.HANDLER_FIRED))
    assert len(externals) == 2
    assert fired == dict.fromkeys(externals, 1)
    assert len(kinds(events, EventKind.NOTIFY)) == 2


def test_an_agent_whose_window_was_closed_while_the_engine_was_down_is_lost(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    start(agentsup, tmp_path, GATED, "closed")
    wait_until(lambda: state_of(agentsup, "closed")["gate"] == "running")
    kill_engine(agentsup)
    agentsup.tmux("kill-window", "-t", "=closed:gate")

    result = agentsup.run("resume", "closed", "--no-tui", check=False)

    assert result.returncode == 1, result.stdout + result.stderr
    status = {a["name"]: a for a in agentsup.status_json("closed")["agents"]}
    assert status["gate"]["state"] in ("lost", "failed")
    assert "window is gone" in status["gate"]["reason"]
    assert status["late"]["state"] == "succeeded"
    resumed = kinds(agentsup.events("closed"), EventKind.RUN_RESUMED)
    assert [ev.data["gone"] for ev in resumed] == [["gate"]]


def test_resume_refuses_a_run_whose_engine_is_alive(agentsup: Agentsup, tmp_path: Path) -> None:
    start(agentsup, tmp_path, GATED, "alive")

    result = agentsup.run("resume", "alive", check=False)

    assert result.returncode == 2
    assert "has a live engine" in result.stderr
    assert len(agentsup.engine_pids()) == 1


def test_a_second_engine_on_the_same_run_leaves_at_once(agentsup: Agentsup, tmp_path: Path) -> None:
    start(agentsup, tmp_path, GATED, "twice")
    run_dir = agentsup.run_dir("twice")

    second = subprocess.run(
        [sys.executable, "-m", "agentsup.supervisor", str(run_dir)],
        env=agentsup.env,
        capture_output=True,
        check=False,
        timeout=30,
    )

    assert second.returncode == 3
    assert "another engine is serving run twice" in (run_dir / "engine.log").read_text()
    assert kinds(agentsup.events("twice"), EventKind.RUN_RESUMED) == []


def test_resume_of_a_finished_run_says_so_and_starts_nothing(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text('[agents.one]\ncmd = "true"\n')
    agentsup.run("start", str(plan), "--no-tui", "--run-id", "over")
    before = agentsup.events("over")

    result = agentsup.run("resume", "over", check=False)

    assert result.returncode == 0
    assert "already finished" in result.stderr
    assert "run over succeeded" in result.stdout
    assert agentsup.events("over") == before


def test_start_with_an_existing_run_id_resumes_it_with_the_same_plan_only(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    ledger = tmp_path / "ledger"
    agentsup.env["LEDGER"] = str(ledger)
    plan = start(agentsup, tmp_path, GATED, "again")
    wait_until(lambda: state_of(agentsup, "again")["gate"] == "running")
    kill_engine(agentsup)
    other = tmp_path / "other.toml"
    other.write_text(GATED.replace("pinged", "pinged!"))

    refused = agentsup.run("start", str(other), "--detach", "--run-id", "again", check=False)
    resumed = agentsup.run("start", str(plan), "--detach", "--run-id", "again", check=False)

    assert refused.returncode == 2
    assert "started from a different plan" in refused.stderr
    assert "agentsup resume again" in refused.stderr
    assert resumed.returncode == 0, resumed.stderr
    wait_until(lambda: kinds(agentsup.events("again"), EventKind.RUN_RESUMED))
    (agentsup.run_dir("again") / "agents" / "gate" / "out" / "go").touch()
    wait_until(lambda: kinds(agentsup.events("again"), EventKind.RUN_FINISHED))
    assert state_of(agentsup, "again") == {"gate": "succeeded", "late": "succeeded"}
    assert ledger.read_text() == "late: started\n"


def test_an_inbox_file_logged_before_the_crash_is_not_logged_again(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    start(agentsup, tmp_path, GATED, "inbox")
    wait_until(lambda: state_of(agentsup, "inbox")["gate"] == "running")
    kill_engine(agentsup)
    run_dir = agentsup.run_dir("inbox")
    dropped = run_dir / "inbox" / "ping.json"
    dropped.write_text('{"name": "ping"}')
    st = dropped.stat()
    ident = f"ping.json:{st.st_ino}:{st.st_mtime_ns}:{st.st_size}"
    # The dead engine logged the file's event, and died before removing the file.
    with EventStore.open(run_dir / "events.db") as store:
        store.append(
            EventKind.EXTERNAL, None, "user", {"name": "ping", "data": None, "via": "inbox", "file": ident}
        )

    agentsup.run("resume", "inbox", "--detach")

    wait_until(lambda: not dropped.exists(), message="the inbox file was not removed")
    (run_dir / "agents" / "gate" / "out" / "go").touch()
    wait_until(lambda: kinds(agentsup.events("inbox"), EventKind.RUN_FINISHED))
    events = agentsup.events("inbox")
    assert [ev.data.get("file") for ev in kinds(events, EventKind.EXTERNAL)] == [ident]
    assert len(kinds(events, EventKind.NOTIFY)) == 1  # the handler fired for the one event, once
