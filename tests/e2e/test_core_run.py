"""The core end to end: `agentsup start --no-tui` on a real tmux server, driven through pexpect."""

from __future__ import annotations

import json
from pathlib import Path

import pexpect
import pytest

from agentsup.supervisor.events import Event, EventKind
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

FAKE = Path(__file__).resolve().parent.parent / "fakeagents"

PLAN = """
[run]
name = "core"
max_parallel = 2
on_failure = "continue"

[agents.fetch]
cmd = 'printf "alpha\\nbeta\\n" > "$AGENTSUP_OUT/words.txt"; echo fetched'

[agents.shout]
after = ["fetch"]
cmd = 'tr a-z A-Z < "$AGENTSUP_IN/fetch/words.txt" > "$AGENTSUP_OUT/loud.txt"; cat "$AGENTSUP_OUT/loud.txt"'

[agents.report]
after = ["shout"]
cmd = 'cp "$AGENTSUP_CONTEXT" "$AGENTSUP_OUT/context.json"; wc -l < "$AGENTSUP_IN/shout/loud.txt"'

[agents.flaky]
argv = ["{fake}/flaky.sh", "3", "{tmp}/flaky.count"]
retries = 2
backoff = {{ initial = "0.1s", factor = 2, max = "1s", jitter = 0 }}

[agents.broken]
cmd = "echo 'about to fail'; exit 4"
retries = 1
backoff = "0.1s"

[agents.alerting]
cmd = "echo 'all good'; echo 'ERROR: disk almost full'; echo done"
alerts = [{{ match = "^ERROR", severity = "critical" }}, {{ match = "never printed", severity = "info" }}]

[agents.slow]
cmd = "sleep 60"
timeout = "1s"

[agents.missing]
argv = ["definitely-not-a-command-agentsup"]
"""

FAN = "\n".join(
    f"""
[agents.fan{i}]
cmd = "sleep 0.3; echo fan{i} > $AGENTSUP_OUT/r.txt"
"""
    for i in range(6)
)


def _max_active(events: list[Event]) -> int:
    active: set[str] = set()
    peak = 0
    for ev in events:
        if ev.kind is not EventKind.AGENT_STATE or ev.agent is None:
            continue
        if ev.data["to"] in ("starting", "running"):
            active.add(ev.agent)
        else:
            active.discard(ev.agent)
        peak = max(peak, len(active))
    return peak


def test_core_run_end_to_end(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN.format(fake=FAKE, tmp=tmp_path) + FAN)

    child = agentsup.spawn("start", str(plan), "--no-tui", "--run-id", "core-1")
    # One line per state change, as they happen.
    child.expect(r"fetch\s+running\s+by backend")
    child.expect(r"run core-1 failed: ", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 1  # broken, slow and missing failed

    status = agentsup.status_json("core-1")
    assert status["run"] == "core-1"
    assert status["state"] == "failed"
    by_name = {a["name"]: a for a in status["agents"]}
    expect = {
        "fetch": ("succeeded", 0, 1),
        "shout": ("succeeded", 0, 1),
        "report": ("succeeded", 0, 1),
        "flaky": ("succeeded", 0, 3),
        "broken": ("failed", 4, 2),
        "alerting": ("succeeded", 0, 1),
        "missing": ("failed", 127, 1),
        **{f"fan{i}": ("succeeded", 0, 1) for i in range(6)},
    }
    for name, (state, code, attempts) in expect.items():
        got = by_name[name]
        assert (got["state"], got["exit_code"], got["attempts"]) == (state, code, attempts), name
        assert got["started_at"] is not None
        assert got["ended_at"] >= got["started_at"]
    assert by_name["slow"]["state"] == "failed"
    assert by_name["slow"]["attempts"] == 1

    events = agentsup.events("core-1")
    seqs = [e.seq for e in events]
    assert seqs == list(range(1, len(events) + 1))

    # The cap held: never more than two at once, and the fan-out really ran two at a time.
    assert _max_active(events) == 2

    def when(agent: str, to: str) -> int:
        return next(
            e.seq
            for e in events
            if e.kind is EventKind.AGENT_STATE and e.agent == agent and e.data["to"] == to
        )

    # The chain ran in order, each step after its upstream succeeded.
    assert when("fetch", "succeeded") < when("shout", "starting") < when("shout", "succeeded")
    assert when("shout", "succeeded") < when("report", "starting")

    # Every transition records the signal that decided it.
    decided = {(e.agent, e.data["to"]): e.source for e in events if e.kind is EventKind.AGENT_STATE}
    assert decided[("fetch", "succeeded")] == "exit_file"
    assert decided[("slow", "failed")] == "timeout"
    assert decided[("broken", "retrying")] == "exit_file"

    # Retries: the write-ahead spawn intent precedes each attempt; failures say why.
    flaky_spawns = [
        e.data["attempt"] for e in events if e.kind is EventKind.AGENT_SPAWN and e.agent == "flaky"
    ]
    assert flaky_spawns == [1, 2, 3]
    broken_failed = [e for e in events if e.agent == "broken" and e.data.get("to") == "failed"]
    assert broken_failed[0].data["reason"] == "exited with code 4"

    # The alert rule fired once, with the line; the rule that never matches did not.
    alerts = [e for e in events if e.kind is EventKind.ALERT]
    assert [(a.agent, a.data["severity"], a.data["line"]) for a in alerts] == [
        ("alerting", "critical", "ERROR: disk almost full")
    ]

    # Files passed down the chain, and the context names the upstream with its exit code.
    run_dir = agentsup.run_dir("core-1")
    assert (run_dir / "agents/shout/out/loud.txt").read_text() == "ALPHA\nBETA\n"
    context = json.loads((run_dir / "agents/report/out/context.json").read_text())
    assert context["upstreams"]["shout"]["exit_code"] == 0
    assert context["upstreams"]["shout"]["files"] == ["loud.txt"]

    # Logs: what each pane printed, per attempt; a missing command says why.
    assert "flaky: attempt 1 fails" in agentsup.logs("core-1", "flaky", attempt=1)
    assert "flaky: attempt 3 succeeds" in agentsup.logs("core-1", "flaky")
    assert "not found" in agentsup.logs("core-1", "missing")
    assert "ALPHA" in agentsup.logs("core-1", "shout")

    # The run's tmux session is gone with the run.
    assert not agentsup.has_session("core-1")


STARTED = """
[agents.server]
cmd = 'while [ ! -e "$GO" ]; do sleep 0.05; done'

[agents.client]
after = [{ agent = "server", when = "started" }]
cmd = 'touch "$GO"'
"""


def test_an_agent_waiting_on_another_s_start_starts_while_that_one_runs(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    """The server runs until the client, which waits on the server's start, lets it end. The engine skips
    the scheduler's pass after a pane opens, unless some agent waits on that start: without the exception,
    the client would wait for an event that never comes."""
    plan = tmp_path / "plan.toml"
    plan.write_text(STARTED)
    agentsup.env["GO"] = str(tmp_path / "go")

    agentsup.run("start", str(plan), "--detach", "--run-id", "started")

    wait_until(lambda: agentsup.status_json("started")["state"] != "running", timeout=60)
    assert agentsup.status_json("started")["state"] == "succeeded"
    by_name = {a["name"]: a for a in agentsup.status_json("started")["agents"]}
    assert by_name["server"]["state"] == by_name["client"]["state"] == "succeeded"
