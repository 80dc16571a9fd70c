"""What the dashboard looks like, pinned as SVG screenshots (pytest-textual-snapshot).

The run on screen is recorded, not live: a run directory with an event log written through the
:class:`EventStore` on a fixed clock, output logs and output files, for a plan with a chain, a fan-out and
its aggregate, a master with two workers and an agent a handler spawned. No engine serves it (the header
says so), the dashboard's clock is fixed and the event times are shown in UTC, so every run of these
tests draws the same screens. ``pytest tests/tui/test_snapshots.py --snapshot-update`` redraws them after
a deliberate change; look at the SVGs before committing them.
"""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from agentsup.supervisor.events import JSON, EventKind
from agentsup.supervisor.rundir import RunDir, RunMeta, create_run_dir
from agentsup.supervisor.store import EventStore
from agentsup.tui.app import Dashboard
from agentsup.tui.graph import GraphScreen
from agentsup.tui.modals import ConfirmScreen, EmitScreen, PromptScreen, SendScreen
from tests.tui.test_dashboard import cell, details, header, output_text, until

pytestmark = pytest.mark.snapshot

SnapCompare = Callable[..., bool]
RunBefore = Callable[[Pilot[None]], Awaitable[None]]

T0 = 1_767_268_800.0  # 2026-01-01 12:00:00 UTC, when the recorded run started
NOW = T0 + 750  # the dashboard's clock: 12:30 into the run

PLAN = """\
[run]
name = "snap"
max_parallel = 3
on_failure = "continue"

[agents.fetch]
cmd = "curl -sS -o page.html https://example.com/report"

[agents.build]
cmd = "make build"
after = ["fetch"]

[agents.ship]
cmd = "make ship"
after = ["build"]

[agents.trend]
cmd = "analyse --trend page.html"
after = ["fetch"]

[agents.risk]
cmd = "analyse --risk page.html"
after = ["fetch"]
alerts = [{ match = "^CRITICAL", severity = "critical" }]

[agents.cost]
cmd = "analyse --cost page.html"
after = ["fetch"]

[agents.vote]
aggregate = { from = ["trend", "risk", "cost"], strategy = "vote", field = "verdict" }

[agents.planner]
cmd = "plan-sections --out subtasks.json"
spawns = "subtasks.json"

[agents.report]
cmd = "assemble-report"
after = ["planner.workers", "vote"]

[workers.writer]
cmd = "write-section"

[workers.responder]
cmd = "page-oncall"

[[on]]
event = "alert"
severity = "critical"
do = "spawn"
worker = "responder"
"""

AGENTS = ["fetch", "build", "ship", "trend", "risk", "cost", "vote", "planner", "report"]

OUTPUT = {
    "fetch": "GET https://example.com/report\n200 OK (12.1 kB)\nsaved page.html\n",
    "build": "compiling 12 modules\nlinking app\n\x1b[32mbuild ok\x1b[0m: dist/app.tar.gz\n",
    "planner": "reading page.html\nwrote 2 subtasks to subtasks.json\n",
    "planner/intro": "drafted the introduction (412 words)\n",
    "planner/body": "section 2 of 5: market size\n",
    "trend": "3 of 4 indicators up\nverdict: go\n",
    "risk": "checking exposure\nCRITICAL: quota exhausted for model x\n",
    "responder": "paging the on-call engineer about risk\n",
    "cost": "estimate: $1,240/month\nProceed with this estimate? [y/n]\n",
}


class Recorder:
    """Appends events to a run's log as the engine would, on a clock the test moves."""

    def __init__(self, run: RunDir) -> None:
        self.now = T0
        self.store = EventStore.open(run.events_db, clock=lambda: self.now)
        self.pids = iter(range(4100, 4200))

    def at(self, seconds: float, kind: EventKind, agent: str | None, source: str, **data: JSON) -> int:
        """Log an event ``seconds`` into the run; its seq."""
        self.now = T0 + seconds
        return self.store.append(kind, agent, source, data).seq

    def state(self, seconds: float, agent: str, source: str, was: str, to: str, **data: JSON) -> None:
        self.at(seconds, EventKind.AGENT_STATE, agent, source, **{"from": was, "to": to}, **data)

    def start(self, seconds: float, agent: str) -> None:
        pid = next(self.pids)
        self.at(seconds, EventKind.AGENT_SPAWN, agent, "scheduler", attempt=1)
        self.state(seconds, agent, "scheduler", "pending", "starting", attempt=1)
        window: dict[str, JSON] = {"window_id": f"@{pid}", "pane_id": f"%{pid}", "pid": pid}
        self.at(seconds, EventKind.AGENT_SPAWNED, agent, "engine", attempt=1, **window)
        self.state(seconds + 1, agent, "engine", "starting", "running")

    def end(self, seconds: float, agent: str, code: int, started: float) -> None:
        times: dict[str, JSON] = {"started_at": T0 + started + 1, "ended_at": T0 + seconds}
        self.at(seconds, EventKind.AGENT_EXIT, agent, "exit_file", attempt=1, code=code, signal=None, **times)
        to, reason = ("succeeded", None) if code == 0 else ("failed", f"exit code {code}")
        self.state(seconds, agent, "exit_file", "running", to, attempt=1, exit_code=code, reason=reason)


def record_run(state_dir: Path) -> RunDir:
    meta = RunMeta("snap", "plan.toml", "agentsup-snap", "snap", T0)
    run = create_run_dir(state_dir, meta, PLAN, {})
    r = Recorder(run)
    r.at(
        0, EventKind.RUN_STARTED, None, "engine", plan="plan.toml", run_dir="snap", agents=list[JSON](AGENTS)
    )
    # The chain: fetch, then a long build; ship waits for a slot.
    r.start(1, "fetch")
    r.start(1, "planner")
    r.end(41, "fetch", 0, started=1)
    r.start(42, "build")
    # The fan-out from fetch, into the aggregate vote.
    for agent in ("trend", "risk", "cost"):
        r.start(42, agent)
    # The master's two workers.
    r.end(95, "planner", 0, started=1)
    for sub in ("intro", "body"):
        name = f"planner/{sub}"
        task: JSON = {"id": sub, "input": f"write the {sub}", "master": "planner"}
        added: dict[str, JSON] = {
            "name": name,
            "worker": "writer",
            "parent": "planner",
            "after": [],
            "task": task,
        }
        r.at(95, EventKind.AGENT_ADDED, name, "engine", **added)
        r.start(96, name)
    r.end(200, "trend", 0, started=42)
    # A critical alert fails risk and makes the handler spawn a responder.
    line = "CRITICAL: quota exhausted for model x"
    alert = r.at(230, EventKind.ALERT, "risk", "pattern", attempt=1, severity="critical", rule=0, line=line)
    r.at(230, EventKind.ALERT, "risk", "pattern", attempt=1, severity="warning", rule=1, line="retry in 30s")
    r.end(231, "risk", 3, started=42)
    responder = f"responder-{alert}"
    r.at(231, EventKind.HANDLER_FIRED, None, "engine", handler=0, trigger=alert, do="spawn")
    scope: JSON = {"seq": alert, "kind": "alert", "agent": "risk", "severity": "critical", "line": line}
    added = {"name": responder, "worker": "responder", "parent": None, "after": [], "event": scope}
    r.at(231, EventKind.AGENT_ADDED, responder, "engine", **added)
    r.start(232, responder)
    r.end(300, "planner/intro", 0, started=96)
    r.state(400, "cost", "pattern", "running", "needs_input", reason="Proceed with this estimate? [y/n]")
    r.end(500, "build", 0, started=42)
    r.state(500, "ship", "scheduler", "pending", "waiting")
    r.store.close()

    for agent, text in OUTPUT.items():
        name = responder if agent == "responder" else agent
        run.output_log(name, 1).write_text(text)
    context = {"agent": "build", "run": "snap", "after": {"fetch": {"state": "succeeded", "exit_code": 0}}}
    run.context_file("build").parent.mkdir(parents=True, exist_ok=True)
    run.context_file("build").write_text(json.dumps(context))
    (run.out_dir("build") / "dist").mkdir(parents=True)
    (run.out_dir("build") / "dist" / "app.tar.gz").write_bytes(b"\0" * 2048)
    (run.out_dir("build") / "build.log").write_text("ok\n" * 100)
    return run


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunDir]:
    # The event log shows local times: make them UTC here, whatever the machine's zone.
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield record_run(tmp_path / "state")
    monkeypatch.undo()
    time.tzset()


def dashboard(run: RunDir) -> Dashboard:
    return Dashboard(run, clock=lambda: NOW)


async def settled(pilot: Pilot[None]) -> None:
    """Until everything the dashboard reads is on screen: the log, the plan, the output files."""
    app = pilot.app
    assert isinstance(app, Dashboard)
    await until(pilot, lambda: "engine stopped" in header(app), "the log read and no engine")
    await until(pilot, lambda: cell(app, "planner/body", "role") == "worker", "the plan")
    await until(pilot, lambda: cell(app, "fetch", "last") == "saved page.html", "the last output lines")
    await until(pilot, lambda: "saved page.html" in output_text(app), "fetch's output")


def then(
    *keys: str, output: str = "", opens: str = "", screen: type | None = None, typed: str = ""
) -> RunBefore:
    """Wait until the dashboard settled and press ``keys``; when given, wait for the output panel to show
    ``output``, press ``opens`` and wait for ``screen``, and type ``typed`` (a newline is Enter)."""

    async def run_before(pilot: Pilot[None]) -> None:
        await settled(pilot)
        await pilot.press(*keys)
        app = pilot.app
        assert isinstance(app, Dashboard)
        await until(pilot, lambda: output in output_text(app), f"{output!r} in the output panel")
        await pilot.press(*opens)
        if screen is not None:
            await until(pilot, lambda: isinstance(pilot.app.screen, screen), screen.__name__)
        await pilot.press(*("enter" if c == "\n" else c for c in typed))
        for widget in (*pilot.app.screen.query(Input), *pilot.app.screen.query(TextArea)):
            widget.cursor_blink = False  # a blinking cursor is on or off depending on when the shot is taken

    return run_before


def test_the_main_screen_at_80_columns(run: RunDir, snap_compare: SnapCompare) -> None:
    assert snap_compare(dashboard(run), terminal_size=(80, 24), run_before=then())


def test_the_main_screen_at_120_columns(run: RunDir, snap_compare: SnapCompare) -> None:
    assert snap_compare(dashboard(run), terminal_size=(120, 40), run_before=then())


def test_the_details_of_a_finished_agent(run: RunDir, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await then("down", opens="i")(pilot)  # build, below fetch
        app = pilot.app
        assert isinstance(app, Dashboard)
        await until(pilot, lambda: '"agent": "build"' in details(app), "build's context and outputs")

    assert snap_compare(dashboard(run), terminal_size=(110, 70), run_before=run_before)


def test_the_details_of_an_agent_that_asks(run: RunDir, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await then(*("down",) * 5, output="Proceed with this estimate", opens="i")(pilot)  # cost
        app = pilot.app
        assert isinstance(app, Dashboard)
        await until(pilot, lambda: "(no context file yet)" in details(app), "cost's files read")

    assert snap_compare(dashboard(run), terminal_size=(100, 30), run_before=run_before)


def test_the_graph(run: RunDir, snap_compare: SnapCompare) -> None:
    assert snap_compare(
        dashboard(run), terminal_size=(100, 30), run_before=then(opens="g", screen=GraphScreen)
    )


def test_a_filter(run: RunDir, snap_compare: SnapCompare) -> None:
    # Enter goes back to the table and keeps the filter; the first agent left is selected.
    before = then("slash", *"plann", "enter", output="wrote 2 subtasks")
    assert snap_compare(dashboard(run), terminal_size=(100, 24), run_before=before)


def test_the_send_dialog(run: RunDir, snap_compare: SnapCompare) -> None:
    # cost, which asks
    before = then(
        *("down",) * 5, output="Proceed with this estimate", opens="s", screen=SendScreen, typed="yes"
    )
    assert snap_compare(dashboard(run), terminal_size=(100, 24), run_before=before)


def test_the_prompt_dialog(run: RunDir, snap_compare: SnapCompare) -> None:
    before = then(opens="m", screen=PromptScreen, typed="Summarise the page\nin three bullets.")
    assert snap_compare(dashboard(run), terminal_size=(100, 30), run_before=before)


def test_the_emit_dialog(run: RunDir, snap_compare: SnapCompare) -> None:
    async def run_before(pilot: Pilot[None]) -> None:
        await then(opens="e", screen=EmitScreen, typed="deploy.done")(pilot)
        await pilot.press("tab", *'{"ok": true}')

    assert snap_compare(dashboard(run), terminal_size=(100, 30), run_before=run_before)


def test_the_stop_confirmation(run: RunDir, snap_compare: SnapCompare) -> None:
    assert snap_compare(
        dashboard(run), terminal_size=(100, 24), run_before=then(opens="S", screen=ConfirmScreen)
    )
