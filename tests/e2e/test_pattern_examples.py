"""The pattern examples (chain with enrichment, fan-out with aggregation, master/worker, event-driven, and
all four mixed) run end to end and do what docs/patterns.md says they do."""

from __future__ import annotations

import itertools
import json
import subprocess
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pytest

from agentsup.supervisor.events import JSON, Event, EventKind
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"
TERMINAL = {"succeeded", "failed", "stopped", "lost", "skipped"}
HOSTILE = "it's $(touch pwned); rm -rf /"


# ---- helpers --------------------------------------------------------------------------------------


def start(agentsup: Agentsup, example: str, run_id: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return agentsup.run("start", str(EXAMPLES / f"{example}.toml"), "--no-tui", "--run-id", run_id, *extra)


def agents_by_name(agentsup: Agentsup, run_id: str) -> dict[str, dict[str, Any]]:
    return {a["name"]: a for a in agentsup.status_json(run_id)["agents"]}


def assert_outcomes(agents: Mapping[str, Mapping[str, Any]], expected: Mapping[str, tuple[str, int]]) -> None:
    """Every agent, static or dynamic, ended as ``expected`` says (state, exit code) after one attempt."""
    assert {n: (a["state"], a["exit_code"], a["attempts"]) for n, a in agents.items()} == {
        n: (state, code, 1) for n, (state, code) in expected.items()
    }


def state_seq(events: Iterable[Event], agent: str, to: str) -> int:
    """Seq of the (only) change of ``agent`` to state ``to``."""
    seqs = [
        e.seq for e in events if e.kind is EventKind.AGENT_STATE and e.agent == agent and e.data["to"] == to
    ]
    assert len(seqs) == 1, f"{agent} entered {to} {len(seqs)} times"
    return seqs[0]


def of_kind(events: Iterable[Event], kind: EventKind) -> list[Event]:
    return [e for e in events if e.kind is kind]


def fired(events: Iterable[Event], handler: int) -> list[int]:
    """Trigger seqs of every firing of ``[[on]]`` number ``handler``, in log order."""
    return [
        int(str(e.data["trigger"]))
        for e in of_kind(events, EventKind.HANDLER_FIRED)
        if e.data["handler"] == handler
    ]


def assert_fired_once_per_trigger(events: list[Event]) -> None:
    """No handler fired twice for the same event, and none of them failed to render."""
    firings = of_kind(events, EventKind.HANDLER_FIRED)
    counts = Counter((e.data["handler"], e.data["trigger"]) for e in firings)
    assert [key for key, n in counts.items() if n > 1] == []
    assert [dict(e.data) for e in firings if "error" in e.data] == []


def added(events: Iterable[Event], worker: str) -> list[Event]:
    return [e for e in of_kind(events, EventKind.AGENT_ADDED) if e.data["worker"] == worker]


def trigger_seq(added_event: Event) -> JSON:
    scope = added_event.data["event"]
    assert isinstance(scope, dict)
    return scope["seq"]


def max_concurrent(events: Iterable[Event], agents: set[str]) -> int:
    """Most of ``agents`` active at once, from their starting → final state changes."""
    active: set[str] = set()
    most = 0
    for e in of_kind(events, EventKind.AGENT_STATE):
        if e.agent not in agents:
            continue
        if e.data["to"] == "starting":
            active.add(e.agent)
        elif e.data["to"] in TERMINAL:
            active.discard(e.agent)
        most = max(most, len(active))
    return most


def out(agentsup: Agentsup, run_id: str, agent: str, name: str) -> str:
    """A file an agent wrote in its AGENTSUP_OUT (``a/b`` lives in ``agents/a~b``)."""
    return (agentsup.run_dir(run_id) / "agents" / agent.replace("/", "~") / "out" / name).read_text()


def result(agentsup: Agentsup, run_id: str, agent: str) -> dict[str, Any]:
    data = json.loads(out(agentsup, run_id, agent, "result.json"))
    assert isinstance(data, dict)
    return data


def plan_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "plan.toml"
    path.write_text(text)
    return path


# ---- chain: pipeline.toml -------------------------------------------------------------------------


def test_pipeline_chain_passes_files_and_meta_down(agentsup: Agentsup) -> None:
    r = start(agentsup, "pipeline", "pipe")
    assert r.stdout.splitlines()[-1] == "run pipe succeeded: 4 succeeded"
    steps = ["script", "voice", "visuals", "assembly"]
    assert_outcomes(agents_by_name(agentsup, "pipe"), dict.fromkeys(steps, ("succeeded", 0)))

    # Each step starts only after the previous one succeeded.
    events = agentsup.events("pipe")
    for before, after in itertools.pairwise(steps):
        assert state_seq(events, before, "succeeded") < state_seq(events, after, "starting")

    # meta.json values flow down through {{ agents.NAME.meta.KEY }}: 36 s, so 36 * 24 frames.
    assert json.loads(out(agentsup, "pipe", "voice", "meta.json")) == {"seconds": 36, "voice": "calm"}
    assert json.loads(out(agentsup, "pipe", "visuals", "meta.json")) == {"frames": 864}
    assert result(agentsup, "pipe", "assembly") == {"seconds": 36, "frames": 864}
    assert out(agentsup, "pipe", "assembly", "video.txt") == (
        "Title: supervising agents\nnarration lines: 4\nframes=864\n"
    )
    assert "voice: narrated 36 s" in agentsup.logs("pipe", "voice")
    assert_fired_once_per_trigger(events)


def test_pipeline_set_topic_arrives_literally(agentsup: Agentsup, tmp_path: Path) -> None:
    r = start(agentsup, "pipeline", "hostile", "--set", f"topic={HOSTILE}")
    assert r.stdout.splitlines()[-1] == "run hostile succeeded: 4 succeeded"
    video = out(agentsup, "hostile", "assembly", "video.txt").splitlines()
    assert video == [f"Title: {HOSTILE}", "narration lines: 4", "frames=864"]
    narration = out(agentsup, "hostile", "voice", "narration.txt").splitlines()
    assert narration[0] == f"[voice] Title: {HOSTILE}"
    # The agents ran in examples/ (the plan's directory); nothing there or here was touched.
    for where in (EXAMPLES, Path.cwd(), tmp_path):
        assert list(where.rglob("pwned")) == []


# ---- fan-out + aggregation: classify.toml ---------------------------------------------------------


def test_classify_fanout_pool_and_aggregates(agentsup: Agentsup) -> None:
    r = start(agentsup, "classify", "cls")
    assert r.stdout.splitlines()[-1] == "run cls succeeded: 7 succeeded"
    analysers = ["shape", "colour", "text", "size"]
    aggregates = ["vote", "weighted", "fusion"]
    assert_outcomes(agents_by_name(agentsup, "cls"), dict.fromkeys(analysers + aggregates, ("succeeded", 0)))

    # The "llm" pool (from [defaults]) caps every agent, aggregates included, at two at once.
    events = agentsup.events("cls")
    assert max_concurrent(events, set(analysers + aggregates)) == 2
    last_source = max(state_seq(events, a, "succeeded") for a in analysers)
    for agg in aggregates:
        assert state_seq(events, agg, "starting") > last_source

    sources = {a: result(agentsup, "cls", a) for a in analysers}
    vote = result(agentsup, "cls", "vote")
    assert vote["value"] == "cat"
    assert vote["tally"] == [
        {"value": "cat", "count": 3, "sources": ["shape", "colour", "text"]},
        {"value": "dog", "count": 1, "sources": ["size"]},
    ]
    assert (vote["tie"], vote["tied"], vote["used"], vote["left_out"]) == (False, [], analysers, [])

    weighted = result(agentsup, "cls", "weighted")
    total = sum(s["confidence"] for s in sources.values())
    expected = sum(s["score"] * s["confidence"] for s in sources.values()) / total
    assert weighted["value"] == pytest.approx(expected)
    assert weighted["value"] == pytest.approx(1.87 / 2.4)
    assert weighted["total_weight"] == pytest.approx(total)
    assert [(c["source"], c["contribution"]) for c in weighted["contributions"]] == [
        (a, pytest.approx(sources[a]["score"] * sources[a]["confidence"])) for a in analysers
    ]

    fusion = result(agentsup, "cls", "fusion")
    assert set(fusion["conflicts"]) == {"label", "score", "confidence"}
    assert fusion["conflicts"]["label"] == [{"source": a, "value": sources[a]["label"]} for a in analysers]
    # Keys only one source has merge without conflict; a conflicting key keeps the first source's value.
    assert fusion["value"] == {
        "label": "cat",
        "score": 0.9,
        "confidence": 0.8,
        "shape": "four legs",
        "colour": "ginger",
        "caption": "a cat on a mat",
        "size": "small",
    }
    assert_fired_once_per_trigger(events)


# ---- master/worker: devteam.toml ------------------------------------------------------------------


def test_devteam_master_spawns_ordered_workers_and_synth_joins(agentsup: Agentsup) -> None:
    r = start(agentsup, "devteam", "dev")
    assert r.stdout.splitlines()[-1] == "run dev succeeded: 5 succeeded"
    workers = ["lead/code", "lead/tests", "lead/docs"]
    assert_outcomes(
        agents_by_name(agentsup, "dev"), dict.fromkeys(["lead", *workers, "synth"], ("succeeded", 0))
    )

    events = agentsup.events("dev")
    adds = of_kind(events, EventKind.AGENT_ADDED)
    assert [(e.agent, dict(e.data)) for e in adds] == [
        (
            "lead/code",
            {
                "name": "lead/code",
                "worker": "coder",
                "parent": "lead",
                "after": [],
                "task": {"id": "code", "input": {"file": "cli.py", "change": "flag"}, "master": "lead"},
            },
        ),
        (
            "lead/tests",
            {
                "name": "lead/tests",
                "worker": "tester",
                "parent": "lead",
                "after": ["lead/code"],
                "task": {"id": "tests", "input": {"file": "test_cli.py"}, "master": "lead"},
            },
        ),
        (
            "lead/docs",
            {
                "name": "lead/docs",
                "worker": "writer",
                "parent": "lead",
                "after": ["lead/code"],
                "task": {"id": "docs", "input": {"file": "README.md"}, "master": "lead"},
            },
        ),
    ]
    # Workers are added once the master succeeded; tests and docs start only after code succeeded;
    # synth starts only after the master and every worker are done.
    assert state_seq(events, "lead", "succeeded") < adds[0].seq
    code_done = state_seq(events, "lead/code", "succeeded")
    assert state_seq(events, "lead/tests", "starting") > code_done
    assert state_seq(events, "lead/docs", "starting") > code_done
    assert state_seq(events, "synth", "starting") > max(state_seq(events, w, "succeeded") for w in workers)
    assert max_concurrent(events, {"lead", *workers, "synth"}) <= 2  # [run] max_parallel

    assert out(agentsup, "dev", "lead/code", "cli.py") == "def flag(): pass  # flag\n"
    assert out(agentsup, "dev", "lead/tests", "test_cli.py") == "def test_flag(): assert True\n"
    assert out(agentsup, "dev", "lead/docs", "README.md") == "Use the new flag.\n"
    assert out(agentsup, "dev", "synth", "summary.txt").splitlines() == [
        "lead succeeded null",
        'lead/code succeeded {"files": ["cli.py"], "task": "code"}',
        'lead/docs succeeded {"pages": 1, "task": "docs"}',
        'lead/tests succeeded {"passed": 1, "task": "tests"}',
    ]
    assert_fired_once_per_trigger(events)


# ---- event-driven: monitor.toml -------------------------------------------------------------------


def test_monitor_handlers_react_to_alerts_failures_and_external_events(agentsup: Agentsup) -> None:
    r = agentsup.run("start", str(EXAMPLES / "monitor.toml"), "--no-tui", "--run-id", "mon", check=False)
    assert r.returncode == 1
    events = agentsup.events("mon")
    assert of_kind(events, EventKind.RUN_FINISHED)[-1].data["state"] == "failed"

    alerts = {(e.agent, e.data["severity"]): e for e in of_kind(events, EventKind.ALERT)}
    assert sorted(alerts) == [("disk", "critical"), ("latency", "warning")]
    critical, warning = alerts[("disk", "critical")], alerts[("latency", "warning")]
    assert critical.data["line"] == "CRITICAL: disk almost full"
    failed = state_seq(events, "migrate", "failed")
    [external] = of_kind(events, EventKind.EXTERNAL)  # one inbox file, one event
    data = dict(external.data)
    assert str(data.pop("file")).startswith("nightly.json:")  # its identity: read once, even across a resume
    assert data == {"name": "nightly", "data": {"job": "report"}, "via": "inbox"}

    # [[on]] 0: the critical alert spawns a responder that sees the alert's line.
    assert fired(events, 0) == [critical.seq]
    [responder] = added(events, "responder")
    assert trigger_seq(responder) == critical.seq
    assert responder.seq > critical.seq
    responder_name = f"responder-{critical.seq}"
    assert responder.agent == responder_name
    incident = out(agentsup, "mon", responder_name, "incident.txt")
    assert incident == "responder: handling disk: CRITICAL: disk almost full\n"

    # [[on]] 1: warning or worse throttles to one agent at a time for 5 s, recorded after the alert.
    assert sorted(fired(events, 1)) == sorted([warning.seq, critical.seq])
    throttles = of_kind(events, EventKind.THROTTLE)
    assert len(throttles) == 2
    first = throttles[0]
    assert first.seq > min(warning.seq, critical.seq)
    assert first.data["max_parallel"] == 1
    assert float(str(first.data["until"])) == pytest.approx(first.ts + 5, abs=0.5)

    # [[on]] 2: migrate's final failure spawns the recovery agent.
    assert fired(events, 2) == [failed]
    [recovery] = added(events, "recovery")
    assert trigger_seq(recovery) == failed
    assert (
        out(agentsup, "mon", f"recovery-{failed}", "rollback.txt") == "recovery: rolling back after migrate\n"
    )

    # [[on]] 3: the "nightly" event the scheduler dropped into the inbox spawns the job.
    assert fired(events, 3) == [external.seq]
    [job] = added(events, "job")
    assert trigger_seq(job) == external.seq
    assert out(agentsup, "mon", f"job-{external.seq}", "job.txt") == "job: report\n"
    assert list((agentsup.run_dir("mon") / "inbox").iterdir()) == []  # consumed

    # [[on]] 4: deploy's completion notifies.
    deployed = state_seq(events, "deploy", "succeeded")
    assert fired(events, 4) == [deployed]
    [note] = of_kind(events, EventKind.NOTIFY)
    assert (note.agent, dict(note.data)) == ("deploy", {"message": "deployed by deploy", "handler": 4})
    assert state_seq(events, "build", "succeeded") < state_seq(events, "deploy", "starting")

    ok = ("succeeded", 0)
    assert_outcomes(
        agents_by_name(agentsup, "mon"),
        {
            "build": ok,
            "deploy": ok,
            "disk": ok,
            "latency": ok,
            "migrate": ("failed", 3),
            "scheduler": ok,
            responder_name: ok,
            f"recovery-{failed}": ok,
            f"job-{external.seq}": ok,
        },
    )
    assert r.stdout.splitlines()[-1] == "run mon failed: 1 failed, 8 succeeded"
    assert_fired_once_per_trigger(events)


# ---- all four: hybrid.toml ------------------------------------------------------------------------


def test_hybrid_mixes_chain_fanout_workers_and_handlers(agentsup: Agentsup) -> None:
    r = start(agentsup, "hybrid", "hyb")
    assert r.stdout.splitlines()[-1] == "run hyb succeeded: 11 succeeded"
    events = agentsup.events("hyb")
    [alert] = of_kind(events, EventKind.ALERT)
    assert (alert.agent, alert.data["severity"], alert.data["line"]) == (
        "risk",
        "critical",
        "CRITICAL: outlier west 310",
    )
    responder = f"responder-{alert.seq}"
    analysts = ["trend", "risk", "cost"]
    writers = ["planner/extract", "planner/chart", "planner/table"]
    names = ["prepare", *analysts, "vote", "planner", *writers, responder, "report"]
    assert_outcomes(agents_by_name(agentsup, "hyb"), dict.fromkeys(names, ("succeeded", 0)))

    # Chain: everything after prepare starts once it succeeded, and its meta.json value reached trend.
    prepared = state_seq(events, "prepare", "succeeded")
    for agent in [*analysts, "planner"]:
        assert state_seq(events, agent, "starting") > prepared
    assert result(agentsup, "hyb", "trend") == {"verdict": "grow", "rows": 4}

    # Fan-out: at most two analysts at once (pool "analysts"), then a 2-1 vote.
    assert max_concurrent(events, set(analysts)) == 2
    vote = result(agentsup, "hyb", "vote")
    assert vote["value"] == "grow"
    assert vote["tally"] == [
        {"value": "grow", "count": 2, "sources": ["trend", "risk"]},
        {"value": "hold", "count": 1, "sources": ["cost"]},
    ]

    # Master/worker: one writer per subtask, chart and table after extract.
    assert [(e.agent, e.data["after"]) for e in added(events, "writer")] == [
        ("planner/extract", []),
        ("planner/chart", ["planner/extract"]),
        ("planner/table", ["planner/extract"]),
    ]
    extracted = state_seq(events, "planner/extract", "succeeded")
    assert state_seq(events, "planner/chart", "starting") > extracted
    assert state_seq(events, "planner/table", "starting") > extracted

    # Join: report waits for the vote and for the planner and all its workers.
    joined = [state_seq(events, a, "succeeded") for a in ["vote", "planner", *writers]]
    assert state_seq(events, "report", "starting") > max(joined)
    assert out(agentsup, "hyb", "report", "report.txt").splitlines() == [
        "verdict: grow",
        "planner/chart: chart",
        "planner/extract: figures",
        "planner/table: table",
    ]

    # Handlers: the critical alert spawns the responder; report's completion notifies.
    assert fired(events, 0) == [alert.seq]
    assert [trigger_seq(e) for e in added(events, "responder")] == [alert.seq]
    assert out(agentsup, "hyb", responder, "incident.txt") == (
        "responder: paged for risk: CRITICAL: outlier west 310\n"
    )
    reported = state_seq(events, "report", "succeeded")
    assert fired(events, 1) == [reported]
    [note] = of_kind(events, EventKind.NOTIFY)
    assert note.data["message"] == "report ready for orders-2024 (report)"
    assert_fired_once_per_trigger(events)


# ---- external events from outside the run ---------------------------------------------------------

EMIT_PLAN = """
[run]
name = "emit"

# Holds the run open until the test lets it go.
[agents.gate]
cmd = 'until [ -e "$AGENTSUP_OUT/go" ]; do sleep 0.05; done'

[workers.deployer]
cmd = 'echo deploying {{ event.data.version }} for {{ event.name }} > "$AGENTSUP_OUT/deploy.txt"'

[[on]]
event = "external"
name = "release-*"
do = "spawn"
worker = "deployer"

[[on]]
event = "external"
name = "rollback"
do = "spawn"
worker = "deployer"
"""


def test_emit_against_a_detached_run_spawns_one_worker_per_event(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = plan_file(tmp_path, EMIT_PLAN)
    assert agentsup.run("start", str(plan), "--detach", "--run-id", "em").stdout.strip() == "em"
    wait_until(lambda: agents_by_name(agentsup, "em")["gate"]["state"] == "running")

    agentsup.run("emit", "em", "release-1", "--data", json.dumps({"version": "1.2 $(touch pwned)"}))
    agentsup.run("emit", "em", "release-2", "--data", '{"version": "2.0"}')

    def deployers() -> list[Event]:
        return added(agentsup.events("em"), "deployer")

    wait_until(lambda: len(deployers()) == 2)
    names = [str(e.agent) for e in deployers()]
    wait_until(lambda: all(agents_by_name(agentsup, "em")[n]["state"] in TERMINAL for n in names))
    (agentsup.run_dir("em") / "agents/gate/out/go").touch()
    wait_until(lambda: agentsup.status_json("em")["state"] != "running", timeout=30)

    assert agentsup.status_json("em")["state"] == "succeeded"
    assert_outcomes(agents_by_name(agentsup, "em"), dict.fromkeys(["gate", *names], ("succeeded", 0)))
    events = agentsup.events("em")
    externals = of_kind(events, EventKind.EXTERNAL)
    assert [(e.data["name"], e.data["via"]) for e in externals] == [
        ("release-1", "control"),
        ("release-2", "control"),
    ]
    assert sorted(fired(events, 0)) == [e.seq for e in externals]
    assert fired(events, 1) == []  # its name filter matched neither
    assert [trigger_seq(e) for e in deployers()] == [e.seq for e in externals]
    assert out(agentsup, "em", names[0], "deploy.txt") == "deploying 1.2 $(touch pwned) for release-1\n"
    assert out(agentsup, "em", names[1], "deploy.txt") == "deploying 2.0 for release-2\n"
    assert list(tmp_path.rglob("pwned")) == []
    assert_fired_once_per_trigger(events)


def test_inbox_file_written_by_a_shell_is_one_external_event(agentsup: Agentsup, tmp_path: Path) -> None:
    """`echo … > inbox/X.json` (create, then write) is how monitor.toml drops its event: one file, one
    event, whichever inotify events the write produces."""
    plan = plan_file(tmp_path, EMIT_PLAN)
    agentsup.run("start", str(plan), "--detach", "--run-id", "inbox")
    wait_until(lambda: agents_by_name(agentsup, "inbox")["gate"]["state"] == "running")
    inbox = agentsup.run_dir("inbox") / "inbox"
    for i in range(5):
        body = json.dumps({"name": f"release-{i}", "data": {"version": str(i)}})
        subprocess.run(["sh", "-c", f"echo '{body}' > {inbox}/r{i}.json"], check=True)
        dropped = inbox / f"r{i}.json"
        wait_until(lambda: not dropped.exists())  # noqa: B023 (awaited within the iteration)
    (agentsup.run_dir("inbox") / "agents/gate/out/go").touch()
    wait_until(lambda: agentsup.status_json("inbox")["state"] != "running", timeout=30)

    events = agentsup.events("inbox")
    names = [e.data["name"] for e in of_kind(events, EventKind.EXTERNAL)]
    assert names == [f"release-{i}" for i in range(5)]
    assert len(added(events, "deployer")) == 5


# ---- template references the docs promise ---------------------------------------------------------

ANY_AGENT_PLAN = """
[agents.source]
cmd = '''echo '{"verdict": "ship"}' > "$AGENTSUP_OUT/result.json"'''

[agents.master]
after = ["source"]
spawns = "subtasks.json"
cmd = '''echo '[{"id": "one", "worker": "reader"}]' > "$AGENTSUP_OUT/subtasks.json"'''

[workers.reader]
cmd = 'echo verdict {{ agents.source.result.verdict }} > "$AGENTSUP_OUT/seen.txt"'

[[on]]
event = "agent.completed"
agent = "master"
do = "notify"
message = "verdict {{ agents.source.result.verdict }}"
"""


def test_worker_template_reads_any_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    """docs/plan.md: worker templates may use `agents.NAME.*` of any agent, not only their upstreams."""
    plan = plan_file(tmp_path, ANY_AGENT_PLAN)
    agentsup.run("validate", str(plan))
    agentsup.run("start", str(plan), "--no-tui", "--run-id", "anyw", check=False)
    agents = agents_by_name(agentsup, "anyw")
    assert (agents["master/one"]["state"], agents["master/one"]["reason"]) == ("succeeded", None)
    assert out(agentsup, "anyw", "master/one", "seen.txt") == "verdict ship\n"


def test_handler_message_reads_any_agent(agentsup: Agentsup, tmp_path: Path) -> None:
    """docs/plan.md: a handler's `message` may use `agents.NAME.*` of any agent."""
    plan = plan_file(tmp_path, ANY_AGENT_PLAN)
    agentsup.run("start", str(plan), "--no-tui", "--run-id", "anyh", check=False)
    events = agentsup.events("anyh")
    assert [dict(e.data) for e in of_kind(events, EventKind.HANDLER_FIRED)] == [
        {"handler": 0, "trigger": state_seq(events, "master", "succeeded"), "do": "notify"}
    ]
    assert [e.data["message"] for e in of_kind(events, EventKind.NOTIFY)] == ["verdict ship"]
