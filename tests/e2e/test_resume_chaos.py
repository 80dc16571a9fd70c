"""SIGKILL the engine at seeded random moments of a mixed run; each time resume it. The end must equal an
uninterrupted run's: the same final states, the same agents started the same number of times, the same
handler firings, the same alerts. Moments are counted in logged events, so a seed always kills at the
same points of the run's history (how far tmux got meanwhile still varies, which is the point)."""

from __future__ import annotations

import os
import random
import signal
from collections import Counter
from pathlib import Path

import psutil
import pytest

from agentsup.supervisor.events import Event, EventKind
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

FANOUT = 14
WORKERS = 8

LEDGER_LINE = 'echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"'
CHECKS = "".join(
    f"""
[agents.check-{i:02d}]
after = ["parse"]
alerts = [{{ match = "^WARN", severity = "warning" }}]
cmd = '{LEDGER_LINE}; sleep 0.{i % 4 + 4}; echo "WARN check {i}"'
"""
    for i in range(FANOUT)
)

PLAN = f"""
[run]
name = "chaos"
max_parallel = 3

[defaults]
retries = 1
backoff = "0s"

[agents.fetch]
cmd = 'echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"; sleep 0.5; echo fetched'

[agents.parse]
after = ["fetch"]
cmd = 'echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"; sleep 0.5; echo parsed'

{CHECKS}
[agents.flaky]
after = ["parse"]
cmd = '''
echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"
sleep 0.2
[ "$AGENTSUP_ATTEMPT" -ge 2 ]
'''

[agents.collect]
after = [{", ".join(f'"check-{i:02d}"' for i in range(FANOUT))}, "flaky"]
cmd = 'echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"; echo collected'

[agents.lead]
after = ["fetch"]
spawns = "subtasks.json"
cmd = '''
echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"
printf '[%s]' "$(for i in $(seq 1 {WORKERS}); do
  [ "$i" -gt 1 ] && printf ','
  printf '{{"id": "w%d", "worker": "part"}}' "$i"
done)" > "$AGENTSUP_OUT/subtasks.json"
'''

[workers.part]
cmd = 'echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"; sleep 0.6; echo part {{{{ task.id }}}}'

[workers.echoer]
cmd = 'echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"; echo saw {{{{ event.agent }}}}'

[agents.report]
after = ["lead.workers", "collect"]
cmd = '''
while [ ! -e "$GATE" ]; do sleep 0.05; done
echo "$AGENTSUP_AGENT $AGENTSUP_ATTEMPT" >> "$LEDGER"
sleep 0.5
echo "DONE report"
'''
alerts = [{{ match = "^DONE", severity = "info" }}]

[[on]]
event = "agent.completed"
agent = "check-*"
do = "notify"
message = "{{{{ event.agent }}}} checked"

[[on]]
event = "alert"
severity = "info"
do = "spawn"
worker = "echoer"

[[on]]
event = "agent.completed"
agent = "lead"
do = "notify"
message = "lead planned"
"""


def engine_pid(agentsup: Agentsup) -> int | None:
    pids = agentsup.engine_pids()
    assert len(pids) <= 1, f"two engines on one run: {pids}"
    return pids[0] if pids else None


def finished(events: list[Event]) -> bool:
    return any(ev.kind is EventKind.RUN_FINISHED for ev in events)


def outcome(agentsup: Agentsup, run_id: str, ledger: Path) -> dict[str, object]:
    """What must not depend on crashes: final states, starts, firings, alerts.

    A handler's agent is named after its trigger's seq, which differs between runs: it is named here
    after the trigger's agent and line instead.
    """
    events = agentsup.events(run_id)
    by_seq = {ev.seq: ev for ev in events}
    names: dict[str, str] = {}
    for ev in events:
        scope = ev.data.get("event")
        if ev.kind is EventKind.AGENT_ADDED and isinstance(scope, dict):
            names[str(ev.data["name"])] = f"{ev.data['worker']} for {scope['agent']}: {scope['line']}"

    def named(line: str) -> str:
        agent, _, attempt = line.rpartition(" ")
        return f"{names.get(agent, agent)} #{attempt}"

    firings: Counter[tuple[object, ...]] = Counter()
    for ev in events:
        if ev.kind is EventKind.HANDLER_FIRED:
            trigger = by_seq[int(str(ev.data["trigger"]))]
            firings[(ev.data["handler"], trigger.kind.value, trigger.agent)] += 1
    return {
        "states": {
            names.get(a["name"], a["name"]): a["state"] for a in agentsup.status_json(run_id)["agents"]
        },
        "starts": Counter(named(line) for line in ledger.read_text().splitlines()),
        "firings": firings,
        "alerts": Counter((ev.agent, ev.data["line"]) for ev in events if ev.kind is EventKind.ALERT),
        "outcome": [ev.data["state"] for ev in events if ev.kind is EventKind.RUN_FINISHED],
    }


def run_to_end(agentsup: Agentsup, plan: Path, run_id: str, ledger: Path, kills: list[int]) -> int:
    """Start the run; SIGKILL its engine once the log holds each number of events in ``kills``, and
    resume it each time; then open the gate the last agent waits for. Returns the kills that landed.

    The gate keeps the run from ending before the test is done killing, however slow the machine."""
    gate = ledger.with_suffix(".gate")
    agentsup.env["LEDGER"], agentsup.env["GATE"] = str(ledger), str(gate)
    agentsup.run("start", str(plan), "--detach", "--run-id", run_id)
    landed = 0
    for at in kills:
        wait_until(lambda: len(agentsup.events(run_id)) >= at, timeout=120, interval=0.005)  # noqa: B023
        pid = engine_pid(agentsup)
        assert pid is not None, "no engine to kill"
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")  # noqa: B023
        landed += 1
        result = agentsup.run("resume", run_id, "--detach", check=False)
        assert result.returncode == 0, result.stderr
    gate.touch()
    wait_until(lambda: finished(agentsup.events(run_id)), timeout=120, message="the run never finished")
    wait_until(lambda: engine_pid(agentsup) is None, message="the engine did not exit after the run")
    return landed


def gated_at(events: list[Event]) -> int:
    """How many events the run logs before its last agent waits at the gate."""
    for n, ev in enumerate(events, 1):
        if ev.kind is EventKind.AGENT_STATE and ev.agent == "report" and ev.data.get("to") == "running":
            return n
    raise AssertionError("report never ran")


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_sigkill_at_random_moments_changes_nothing_in_the_end(
    agentsup: Agentsup, tmp_path: Path, seed: int
) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(PLAN)
    calm_ledger = tmp_path / "calm.ledger"
    run_to_end(agentsup, plan, "calm", calm_ledger, kills=[])
    calm = outcome(agentsup, "calm", calm_ledger)
    total = gated_at(agentsup.events("calm"))
    assert len(calm["states"]) >= 30  # type: ignore[arg-type]
    assert calm["outcome"] == ["succeeded"]

    moments = sorted(
        random.Random(seed).sample(  # noqa: S311 -- reproducible moments, not secrets
            range(3, total), 8
        )
    )
    chaos_ledger = tmp_path / "chaos.ledger"
    landed = run_to_end(agentsup, plan, "chaos", chaos_ledger, kills=moments)
    chaos = outcome(agentsup, "chaos", chaos_ledger)

    assert landed == len(moments)
    assert len([ev for ev in agentsup.events("chaos") if ev.kind is EventKind.RUN_RESUMED]) == landed
    assert chaos == calm
