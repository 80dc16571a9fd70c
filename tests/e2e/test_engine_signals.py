"""Engine signals beyond the exit file: silence (idle), recovery agents, resource limits."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import Agentsup, wait_until

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


FAKE = Path(__file__).resolve().parent.parent / "fakeagents"

RECOVERY = """
[run]
on_failure = "continue"

[agents.migrate]
argv = ["{fake}/flaky.sh", "2", "{tmp}/migrate.count"]
on_failure = "spawn:fixer"

[agents.report]
after = ["migrate"]
cmd = "echo migrated"

[agents.doomed]
cmd = "echo 'disk on fire'; exit 7"
on_failure = "spawn:bad_fixer"

[workers.fixer]
cmd = '''
echo fixing {{{{ failure.agent }}}}: {{{{ failure.reason }}}} / {{{{ failure.output }}}} \\
  > "$AGENTSUP_OUT/fix.txt"
'''

[workers.bad_fixer]
cmd = "exit 1"
"""


def test_a_recovery_agent_runs_on_failure_and_the_agent_is_retried(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(RECOVERY.format(fake=FAKE, tmp=tmp_path))
    r = agentsup.run("start", str(plan), "--no-tui", "--run-id", "rec", check=False)
    assert r.returncode == 1  # doomed stays failed
    by = {a["name"]: a for a in agentsup.status_json("rec")["agents"]}
    assert (by["migrate"]["state"], by["migrate"]["attempts"]) == ("succeeded", 2)
    assert by["migrate/fix"]["state"] == "succeeded"
    assert by["report"]["state"] == "succeeded"
    assert (by["doomed"]["state"], by["doomed"]["attempts"]) == ("failed", 1)
    assert by["doomed/fix"]["state"] == "failed"
    assert "its recovery agent doomed/fix failed" in by["doomed"]["reason"]

    fix = (agentsup.run_dir("rec") / "agents/migrate~fix/out/fix.txt").read_text()
    assert fix == "fixing migrate: exited with code 3 / flaky: attempt 1 fails\n"

    events = agentsup.events("rec")
    seq = {
        (e.agent, e.kind.value, e.data.get("to")): e.seq
        for e in events
        if e.agent in ("migrate", "migrate/fix")
    }
    waiting = seq[("migrate", "agent.state", "retrying")]
    fixed = seq[("migrate/fix", "agent.state", "succeeded")]
    recovered = seq[("migrate", "agent.recovered", None)]
    second = [e.seq for e in events if e.agent == "migrate" and e.kind is EventKind.AGENT_SPAWN][1]
    assert waiting < fixed < recovered < second  # the retry waits for the fixer


HOG = """
[agents.hog]
max_rss = "20MB"
kill_over_rss = "60MB"
cmd = '''python3 -c "
import time
grow = []
for _ in range(400):
    grow.append(bytearray(1_000_000))
    time.sleep(0.05)
time.sleep(60)
"'''

[agents.idler]
cmd = "sleep 600"

[[on]]
event = "resource"
severity = "critical"
do = "stop"
"""


def test_resource_limits_alert_then_stop_a_runaway_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(HOG)
    agentsup.run("start", str(plan), "--detach", "--run-id", "hog")

    def usage_shown() -> bool:
        by = {a["name"]: a for a in agentsup.status_json("hog")["agents"]}
        return isinstance(by["idler"].get("rss"), int) and by["idler"]["rss"] > 0

    wait_until(usage_shown, timeout=30, message="status never showed the agents' RSS")
    wait_until(lambda: agentsup.status_json("hog")["state"] != "running", timeout=60)
    by = {a["name"]: a for a in agentsup.status_json("hog")["agents"]}
    assert by["hog"]["state"] == "failed"
    assert by["hog"]["reason"].startswith("resource: RSS ")
    assert "over kill_over_rss 60 MB" in by["hog"]["reason"]
    assert by["idler"]["state"] == "stopped"  # the critical resource alert's handler stopped the run
    alerts = [
        (e.data["rule"], e.data["severity"])
        for e in agentsup.events("hog")
        if e.kind is EventKind.ALERT and e.agent == "hog"
    ]
    assert alerts[0] == ("rss", "warning")
    assert ("kill_rss", "critical") in alerts


ENV = """
[agents.show]
env = { FOO = "from the plan", AGENTSUP_AGENT = "not allowed" }
cmd = 'echo "FOO=$FOO BAR=$BAR AGENT=$AGENTSUP_AGENT" > "$AGENTSUP_OUT/env.txt"'
"""


def test_environment_order_caller_then_plan_then_agentsup(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(ENV)
    agentsup.env.update(FOO="from the caller", BAR="caller only")
    agentsup.run("start", str(plan), "--no-tui", "--run-id", "env")
    got = (agentsup.run_dir("env") / "agents/show/out/env.txt").read_text()
    assert got == "FOO=from the plan BAR=caller only AGENT=show\n"
