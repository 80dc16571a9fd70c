"""Dynamic agents and handler actions end to end: bad subtasks, nesting, first-class workers, admission."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]


def _start(agentsup: Agentsup, tmp_path: Path, text: str, run_id: str, *flags: str) -> int:
    plan = tmp_path / f"{run_id}.toml"
    plan.write_text(text)
    return agentsup.run("start", str(plan), *flags, "--run-id", run_id, check=False).returncode


BAD_SUBTASKS = """
[agents.lead]
spawns = "subtasks.json"
cmd = '''
echo '[{"id": "a", "worker": "wrker"}, {"id": "a", "worker": "w"}]' > "$AGENTSUP_OUT/subtasks.json"
'''

[workers.w]
cmd = "true"
"""


def test_an_invalid_subtasks_file_fails_the_master_and_spawns_nothing(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    assert _start(agentsup, tmp_path, BAD_SUBTASKS, "bad", "--no-tui") == 1
    (lead,) = agentsup.status_json("bad")["agents"]
    assert lead["state"] == "failed"
    assert 'subtasks[0] (id "a"): unknown worker "wrker" (workers: w)' in lead["reason"]
    assert 'duplicate id "a"' in lead["reason"]
    assert not [e for e in agentsup.events("bad") if e.kind is EventKind.AGENT_ADDED]


NESTED = """
[agents.lead]
spawns = "subtasks.json"
cmd = '''echo '[{"id": "part", "worker": "splitter"}]' > "$AGENTSUP_OUT/subtasks.json"'''

[workers.splitter]
spawns = "subtasks.json"
cmd = '''
echo '[{"id": "x", "worker": "leaf", "input": 1},
       {"id": "y", "worker": "leaf", "input": 2, "after": ["x"]}]' > "$AGENTSUP_OUT/subtasks.json"
'''

[workers.leaf]
cmd = 'echo leaf {{ task.id }} input {{ task.input }} of {{ task.master }}'

[agents.join]
after = ["lead.workers"]
cmd = 'ls "$AGENTSUP_IN"'
"""


def test_workers_spawn_workers_and_the_join_waits_for_all(agentsup: Agentsup, tmp_path: Path) -> None:
    assert _start(agentsup, tmp_path, NESTED, "nest", "--no-tui") == 0
    states = {a["name"]: a["state"] for a in agentsup.status_json("nest")["agents"]}
    assert states == {
        "lead": "succeeded",
        "join": "succeeded",
        "lead/part": "succeeded",
        "lead/part/x": "succeeded",
        "lead/part/y": "succeeded",
    }
    events = agentsup.events("nest")

    def seq(agent: str, to: str) -> int:
        return next(
            e.seq
            for e in events
            if e.kind is EventKind.AGENT_STATE and e.agent == agent and e.data["to"] == to
        )

    assert seq("lead/part/x", "succeeded") < seq("lead/part/y", "starting")
    assert max(seq(a, "succeeded") for a in states if a != "join") < seq("join", "starting")
    # Dynamic agents are first-class: their logs, by name.
    assert agentsup.logs("nest", "lead/part/y").strip() == "leaf y input 2 of lead/part"
    assert agentsup.logs("nest", "join").split() == ["lead", "lead~part", "lead~part~x", "lead~part~y"]


ACTIONS = """
[run]
on_failure = "continue"

[agents.server]
cmd = 'while read line; do echo "got $line"; done'

[agents.trigger]
cmd = "sleep 0.5; echo 'PLEASE PING'"
alerts = [{ match = "PING", severity = "info" }]

[[on]]
event = "alert"
agent = "trigger"
do = "send"
target = "server"
text = "ping from {{ event.agent }}"

[[on]]
event = "user_input"
agent = "server"
match = "^ping"
do = "kill"
"""


def test_handlers_send_to_and_kill_other_agents(agentsup: Agentsup, tmp_path: Path) -> None:
    assert _start(agentsup, tmp_path, ACTIONS, "act", "--no-tui") == 1  # the killed server fails the run
    by = {a["name"]: a for a in agentsup.status_json("act")["agents"]}
    assert (by["server"]["state"], by["server"]["source"]) == ("stopped", "user")
    assert by["trigger"]["state"] == "succeeded"
    assert "got ping from trigger" in agentsup.logs("act", "server")
    fired = [
        (e.data["handler"], e.data["do"]) for e in agentsup.events("act") if e.kind is EventKind.HANDLER_FIRED
    ]
    assert fired == [(0, "send"), (1, "kill")]


HELD = """
[run]
min_free_memory = "1000TB"

[agents.big]
cmd = "echo never"
"""


def test_admission_holds_agents_while_memory_is_short(agentsup: Agentsup, tmp_path: Path) -> None:
    assert _start(agentsup, tmp_path, HELD, "held", "--detach") == 0

    def holding() -> bool:
        alerts = [e for e in agentsup.events("held") if e.kind is EventKind.ALERT]
        return bool(alerts) and "holding new agents" in str(alerts[0].data["line"])

    wait_until(holding, message="no admission alert")
    assert agentsup.status_json("held")["agents"][0]["state"] in ("pending", "waiting")
    agentsup.run("stop", "held")
    wait_until(lambda: agentsup.status_json("held")["state"] == "stopped")
    assert agentsup.status_json("held")["agents"][0]["attempts"] == 0


WAITING_WORKER = """
[agents.lead]
spawns = "subtasks.json"
cmd = '''echo '[{"id": "w1", "worker": "waiter"}]' > "$AGENTSUP_OUT/subtasks.json"'''

[workers.waiter]
cmd = 'read line; echo "attempt $AGENTSUP_ATTEMPT got $line"'

[agents.keeper]
cmd = "sleep 300"
"""


def test_a_dynamic_worker_can_be_sent_to_killed_and_restarted(agentsup: Agentsup, tmp_path: Path) -> None:
    assert _start(agentsup, tmp_path, WAITING_WORKER, "dyn", "--detach") == 0

    def state() -> str:
        by = {a["name"]: a for a in agentsup.status_json("dyn")["agents"]}
        return str(by["lead/w1"]["state"]) if "lead/w1" in by else "absent"

    wait_until(lambda: state() == "running")
    agentsup.run("kill", "dyn", "lead/w1")
    wait_until(lambda: state() == "stopped")
    agentsup.run("restart", "dyn", "lead/w1")
    wait_until(lambda: state() == "running")
    agentsup.run("send", "dyn", "lead/w1", "hello")
    wait_until(lambda: state() == "succeeded")
    assert agentsup.logs("dyn", "lead/w1").split("\n")[-2:] == ["attempt 2 got hello", ""]  # after the echo
    agentsup.run("stop", "dyn")


TWO_SPAWNS = """
[agents.done]
cmd = "true"

[workers.echo]
cmd = "echo spawned by {{ event.agent }}"

[[on]]
event = "agent.completed"
agent = "done"
do = "spawn"
worker = "echo"

[[on]]
event = "agent.completed"
agent = "done"
do = "spawn"
worker = "echo"
"""


def test_two_handlers_spawning_for_one_event_get_distinct_agents(agentsup: Agentsup, tmp_path: Path) -> None:
    assert _start(agentsup, tmp_path, TWO_SPAWNS, "two", "--no-tui") == 0
    names = sorted(a["name"] for a in agentsup.status_json("two")["agents"])
    assert len(names) == 3
    assert names[0] == "done"
    assert names[1].startswith("echo-")
    assert names[2] == f"{names[1]}-on1"
