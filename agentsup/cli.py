"""The ``agentsup`` command. The only module that prints errors and picks exit codes.

Exit codes: 0 the run succeeded (or the command did what was asked), 1 the run failed or was stopped (or
a command was refused), 2 a usage, plan or environment error.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import click

from agentsup import __version__
from agentsup.hook import main as record_hook
from agentsup.plan import Plan, PlanError, Strategy, load_plan, parse_plan, plan_schema
from agentsup.sessions import END_MARKER, BackendError, TmuxBackend, TmuxNotFoundError
from agentsup.supervisor.client import ControlClient, ControlError
from agentsup.supervisor.events import JSON, Event, EventKind
from agentsup.supervisor.rundir import (
    RunDir,
    RunDirError,
    RunMeta,
    create_run_dir,
    default_state_dir,
    find_run,
    list_runs,
    new_run_id,
)
from agentsup.supervisor.runstate import RunState
from agentsup.supervisor.states import ACTIVE
from agentsup.supervisor.store import EventStore, StoreError
from agentsup.supervisor.worktrees import WorktreeError, branch_name, diff_stat, remove_worktrees

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
ENGINE_START_TIMEOUT = 20.0


class Ctx:
    def __init__(self, state_dir: Path, tmux_socket: str) -> None:
        self.state_dir = state_dir
        self.tmux_socket = tmux_socket


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"agentsup: {message}", err=True)
    sys.exit(code)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="agentsup")
@click.option(
    "--state-dir",
    type=click.Path(path_type=Path),
    envvar="AGENTSUP_STATE_DIR",
    help="Where runs keep their files.  [env: AGENTSUP_STATE_DIR; default: $XDG_STATE_HOME/agentsup]",
)
@click.option(
    "--tmux-socket",
    default="agentsup",
    envvar="AGENTSUP_TMUX_SOCKET",
    show_default=True,
    help="Name of agentsup's own tmux socket (tmux -L NAME).  [env: AGENTSUP_TMUX_SOCKET]",
)
@click.pass_context
def main(ctx: click.Context, state_dir: Path | None, tmux_socket: str) -> None:
    """Supervise CLI agents in tmux panes, as a plan.toml describes.

    \b
    agentsup validate plan.toml          check a plan, report every problem
    agentsup start plan.toml --no-tui    run it, one line per state change
    agentsup status RUN --json           where a run stands
    agentsup attach RUN AGENT            type into an agent's pane (plain tmux)
    """
    ctx.obj = Ctx((state_dir or default_state_dir(os.environ)).expanduser().resolve(), tmux_socket)


def _load(plan_file: Path, overrides: dict[str, str] | None = None) -> Plan:
    try:
        return load_plan(plan_file, overrides=overrides)
    except PlanError as exc:
        for problem in exc.problems:
            click.echo(str(problem), err=True)
        n = len(exc.problems)
        fail(f"{n} problem{'s' if n != 1 else ''} in {plan_file}; nothing was started")


@main.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
def validate(plan_file: Path) -> None:
    """Check PLAN_FILE and report every problem at once (exit 0 valid, 2 invalid)."""
    plan = _load(plan_file)
    click.echo(f"{plan_file}: ok, {len(plan.agents)} agent{'s' if len(plan.agents) != 1 else ''}")


@main.command()
def schema() -> None:
    """Print the JSON Schema (draft-07) of plan.toml, for editors such as taplo or tombi."""
    click.echo(json.dumps(plan_schema(), indent=2))


def _backend(socket: str) -> TmuxBackend:
    """The tmux backend on ``socket``; exit 2 when tmux is missing or cannot work (version, features)."""
    try:
        return TmuxBackend(socket)
    except TmuxNotFoundError as exc:
        fail(str(exc))
    except BackendError as exc:
        fail(str(exc))


@main.command()
@click.argument("plan_file", type=click.Path(path_type=Path, dir_okay=False))
@click.option("--no-tui", is_flag=True, help="Print one line per state change; exit with the run's outcome.")
@click.option("--detach", is_flag=True, help="Start the run and return at once; it goes on in tmux.")
@click.option("--run-id", help="Name the run (letters, digits, '_', '-'); default: PLAN-NAME-TIME-RANDOM.")
@click.option("--keep-session", is_flag=True, help="Keep the run's tmux session after the run ends.")
@click.option(
    "--set",
    "settings",
    multiple=True,
    metavar="KEY=VALUE",
    help="Set an [inputs] value ({{ inputs.KEY }} in templates); repeatable.",
)
@click.pass_obj
def start(
    ctx: Ctx,
    *,
    plan_file: Path,
    no_tui: bool,
    detach: bool,
    run_id: str | None,
    keep_session: bool,
    settings: tuple[str, ...],
) -> None:
    """Start a run of PLAN_FILE in its own tmux session.

    The run belongs to tmux, not to this terminal: closing it never stops the run. Without a flag, start
    opens the dashboard when it runs in a terminal, and behaves as --no-tui otherwise (pipes, CI).
    """
    if no_tui and detach:
        fail("--no-tui and --detach exclude each other")
    inputs = _parse_settings(settings)
    plan = _load(plan_file, inputs)
    backend = _backend(ctx.tmux_socket)
    rid = run_id or new_run_id(plan.run.name)
    meta = RunMeta(
        run_id=rid,
        plan_file=str(plan.path),
        tmux_socket=ctx.tmux_socket,
        session=rid,
        created_at=time.time(),
        keep_session=keep_session,
        inputs=inputs,
    )
    if run_id is not None and (existing := _existing_run(ctx, run_id)) is not None:
        _check_same_run(existing, plan, inputs)
        _resume(ctx, existing, no_tui=no_tui, detach=detach)
        return
    try:
        run = create_run_dir(ctx.state_dir, meta, plan.path.read_text(), os.environ)
    except RunDirError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"cannot read {plan.path}: {exc.strerror}")
    if backend.has_session(rid):
        fail(
            f"a tmux session named {rid!r} already exists on socket {ctx.tmux_socket!r}; "
            "choose another --run-id"
        )
    try:
        backend.create_session(rid, _engine_argv(run), plan.run.workdir, _engine_env(ctx.state_dir))
    except BackendError as exc:
        fail(f"cannot create the tmux session for run {rid}: {exc}")
    _wait_for_engine(run, backend, rid)
    _after_launch(run, no_tui=no_tui, detach=detach)


def _engine_argv(run: RunDir) -> list[str]:
    return [sys.executable, "-m", "agentsup.supervisor", str(run.path)]


def _engine_env(state_dir: Path) -> dict[str, str]:
    return {"AGENTSUP_STATE_DIR": str(state_dir)}


def _after_launch(run: RunDir, *, no_tui: bool, detach: bool) -> None:
    """With the engine up: return (--detach), open the dashboard (a terminal), or follow the run."""
    if detach:
        click.echo(run.run_id)
        return
    if not no_tui and sys.stdin.isatty() and sys.stdout.isatty():
        _dashboard(run)
        click.echo(
            f"agentsup: run {run.run_id} goes on in tmux; `agentsup tui {run.run_id}` comes back to it"
        )
        return
    sys.exit(_follow_run(run))


def _existing_run(ctx: Ctx, run_id: str) -> RunDir | None:
    try:
        return find_run(ctx.state_dir, run_id)
    except RunDirError:
        return None


def _check_same_run(run: RunDir, plan: Plan, inputs: dict[str, str]) -> None:
    """`start --run-id` of an existing run resumes it, only with the plan and inputs it started with."""
    how = f"`agentsup resume {run.run_id}` goes on with what it started with, or choose another --run-id"
    try:
        same_plan = plan.path.read_text() == run.plan_copy.read_text()
        meta = run.read_meta()
    except (OSError, RunDirError) as exc:
        fail(f"run {run.run_id} exists but cannot be read ({exc}); choose another --run-id")
    if any(ev.kind is EventKind.RUN_FINISHED for ev in _events(run)):
        fail(f"run id {run.run_id!r} is already in use by a finished run; choose another --run-id")
    if not same_plan:
        fail(f"run {run.run_id} exists and was started from a different plan; {how}")
    if inputs and inputs != meta.inputs:
        fail(f"run {run.run_id} exists and was started with other --set values; {how}")


def _engine_answers(run: RunDir) -> bool:
    try:
        with ControlClient(run.control_socket) as client:
            client.request("status")
    except ControlError:
        return False
    return True


def _resume(ctx: Ctx, run: RunDir, *, no_tui: bool, detach: bool) -> None:
    """Start a new engine on ``run``: it replays the log, adopts the live panes and goes on."""
    events = _events(run)
    finished = next((ev for ev in reversed(events) if ev.kind is EventKind.RUN_FINISHED), None)
    if finished is not None:
        click.echo(f"agentsup: run {run.run_id} has already finished; nothing to resume", err=True)
        sys.exit(_report_outcome(run, str(finished.data.get("state") or "")))
    if _engine_answers(run):
        fail(f"run {run.run_id} has a live engine; `agentsup tui {run.run_id}` shows it")
    try:
        meta = run.read_meta()
        plan = _run_plan(run, meta)
    except RunDirError as exc:
        fail(str(exc))
    backend = _backend(meta.tmux_socket)
    run.ready_file.unlink(missing_ok=True)
    try:
        backend.reopen_supervisor(
            meta.session, _engine_argv(run), plan.run.workdir, _engine_env(ctx.state_dir)
        )
    except BackendError as exc:
        fail(f"cannot start an engine for run {run.run_id}: {exc}")
    _wait_for_engine(run, backend, meta.session)
    _after_launch(run, no_tui=no_tui, detach=detach)


def _run_plan(run: RunDir, meta: RunMeta) -> Plan:
    """The plan a run started with (its copy in the run directory), with its --set values."""
    try:
        return parse_plan(
            run.plan_copy.read_text(),
            file=meta.plan_file,
            base_dir=Path(meta.plan_file).parent,
            overrides=meta.inputs,
        )
    except PlanError as exc:
        fail(f"the plan copy of run {run.run_id} is no longer valid:\n{exc}")
    except OSError as exc:
        fail(f"cannot read the plan copy of run {run.run_id}: {exc}")


@main.command()
@click.argument("run_id")
@click.option("--no-tui", is_flag=True, help="Print one line per state change; exit with the run's outcome.")
@click.option("--detach", is_flag=True, help="Start the engine and return at once; the run goes on in tmux.")
@click.pass_obj
def resume(ctx: Ctx, run_id: str, no_tui: bool, detach: bool) -> None:
    """Take RUN over after its engine died (killed, crashed, machine rebooted with tmux alive).

    The new engine replays the event log, adopts the agents still running in their panes, reads the exit
    files and output they wrote meanwhile, and goes on. Nothing starts twice, no handler fires twice.
    `agentsup start --run-id RUN` with the same plan does the same.
    """
    if no_tui and detach:
        fail("--no-tui and --detach exclude each other")
    _resume(ctx, _run(ctx, run_id), no_tui=no_tui, detach=detach)


def _parse_settings(settings: tuple[str, ...]) -> dict[str, str]:
    inputs: dict[str, str] = {}
    for item in settings:
        key, sep, value = item.partition("=")
        if not sep or not key:
            fail(f"--set {item!r}: expected KEY=VALUE")
        if "\0" in value:
            fail(f"--set {key}: a value cannot contain a NUL character")
        inputs[key] = value
    return inputs


def _wait_for_engine(run: RunDir, backend: TmuxBackend, session: str) -> None:
    deadline = time.monotonic() + ENGINE_START_TIMEOUT
    ready = run.ready_file
    while not ready.exists():
        if time.monotonic() > deadline or not backend.has_supervisor(session):
            fail(f"the engine of run {run.run_id} did not start; see {run.engine_log}", EXIT_FAILED)
        time.sleep(0.02)


def _state_line(ev: Event) -> str | None:
    t = time.strftime("%H:%M:%S", time.localtime(ev.ts))
    d = ev.data
    if ev.kind is EventKind.AGENT_STATE:
        extra = []
        if d.get("to") in ("starting", "running", "retrying"):
            extra.append(f"attempt {d.get('attempt')}")
        if (code := d.get("exit_code")) is not None:
            extra.append(f"exit {code}")
        if (reason := d.get("reason")) is not None:
            extra.append(" / ".join(line.strip() for line in str(reason).splitlines() if line.strip()))
        tail = f"  ({'; '.join(extra)})" if extra else ""
        return f"{t}  {ev.agent:<20} {d.get('to')!s:<11} by {ev.source}{tail}"
    if ev.kind is EventKind.ALERT:  # a run-level alert (memory, the event log's size) has no agent
        return f"{t}  {ev.agent or '(run)':<20} ALERT {d.get('severity')}: {d.get('line')}"
    if ev.kind is EventKind.RUN_HALTED:
        return f"{t}  run halted: {d.get('reason')}"
    return None


def _follow_run(run: RunDir) -> int:
    printed = 0
    try:
        with ControlClient(run.control_socket) as client:
            _, stream = client.subscribe(after=0)
            try:
                for item in stream:
                    if isinstance(item, str):
                        return _report_outcome(run, item)
                    printed = item.seq
                    if (line := _state_line(item)) is not None:
                        click.echo(line)
            except KeyboardInterrupt:
                click.echo(
                    f"\nagentsup: the run goes on in tmux; `agentsup stop {run.run_id}` stops it", err=True
                )
                return 130
    except ControlError:
        pass  # a quick run can end before we connect: the event log has the rest
    outcome = ""
    for ev in _events(run):
        if ev.seq > printed and (line := _state_line(ev)) is not None:
            click.echo(line)
        if ev.kind is EventKind.RUN_FINISHED:
            outcome = str(ev.data.get("state") or "")
    return _report_outcome(run, outcome)


def _report_outcome(run: RunDir, outcome: str) -> int:
    if not outcome:
        click.echo(
            f"agentsup: the engine of run {run.run_id} ended without finishing; see {run.engine_log}",
            err=True,
        )
        return EXIT_FAILED
    counts = Counter(rec.state.value for rec in _state(run).agents.values())
    summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
    click.echo(f"run {run.run_id} {outcome}: {summary}")
    return EXIT_OK if outcome == "succeeded" else EXIT_FAILED


def _run(ctx: Ctx, run_id: str | None) -> RunDir:
    try:
        if run_id is None:
            runs = list_runs(ctx.state_dir)
            if not runs:
                fail(f"no runs under {ctx.state_dir}")
            return runs[-1]
        return find_run(ctx.state_dir, run_id)
    except RunDirError as exc:
        fail(str(exc))


def _read_events(run: RunDir) -> list[Event]:
    """The run's whole event log; raises StoreError."""
    store = EventStore.open_readonly(run.events_db)
    try:
        return list(store.iter_all())
    finally:
        store.close()


def _events(run: RunDir) -> list[Event]:
    try:
        return _read_events(run)
    except StoreError as exc:
        fail(str(exc), EXIT_FAILED)


def _state(run: RunDir) -> RunState:
    return _fold(_events(run))


def _fold(events: list[Event]) -> RunState:
    names: list[str] = []
    if (
        events
        and events[0].kind is EventKind.RUN_STARTED
        and isinstance(agents := events[0].data.get("agents"), list)
    ):
        names = [str(a) for a in agents]
    return RunState.fold(names, events)


@main.command("ls")
@click.pass_obj
def ls_cmd(ctx: Ctx) -> None:
    """List runs, oldest first."""
    for run in list_runs(ctx.state_dir):
        state = _state(run)
        click.echo(f"{run.run_id:<40} {state.run_state():<10} {len(state.agents)} agents")


@main.command()
@click.argument("run_id", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
@click.pass_obj
def status(ctx: Ctx, run_id: str | None, as_json: bool) -> None:
    """Show where RUN stands (the newest run when omitted). Works when the engine is down."""
    run = _run(ctx, run_id)
    state = _state(run)
    usage = _usage(run) if state.run_state() == "running" else {}
    if as_json:
        out = state.status_json(run.run_id)
        for agent in out["agents"] if isinstance(out["agents"], list) else []:
            if isinstance(agent, dict) and isinstance(name := agent.get("name"), str) and name in usage:
                agent.update(usage[name])
        click.echo(json.dumps(out))
        return
    click.echo(f"run {run.run_id}: {state.run_state()}")
    header = f"{'AGENT':<24} {'STATE':<12} {'ATTEMPTS':>8} {'EXIT':>5} {'DURATION':>8} {'CPU%':>5} {'RSS':>7}"
    click.echo(f"  {header}  REASON")
    for rec in state.agents.values():
        dur = ""
        if rec.started_at is not None and rec.ended_at is not None:
            dur = f"{rec.ended_at - rec.started_at:.1f}s"
        code = "" if rec.exit_code is None else str(rec.exit_code)
        use = usage.get(rec.name, {})
        cpu_v, rss_v = use.get("cpu_percent"), use.get("rss")
        cpu = f"{cpu_v:.0f}" if isinstance(cpu_v, int | float) else ""
        rss = f"{rss_v / 1e6:.0f}MB" if isinstance(rss_v, int | float) else ""
        row = f"{rec.name:<24} {rec.state.value:<12} {rec.attempts:>8} {code:>5} {dur:>8} {cpu:>5} {rss:>7}"
        click.echo(f"  {row}  {rec.reason or ''}")


def _usage(run: RunDir) -> dict[str, dict[str, JSON]]:
    """The engine's last resource sample (``usage.json``): agent -> cpu_percent, rss, processes."""
    try:
        raw = json.loads((run.path / "usage.json").read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): v for k, v in raw.items() if isinstance(v, dict)} if isinstance(raw, dict) else {}


@main.command()
@click.argument("run_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@click.option("--follow", "-f", is_flag=True, help="Keep printing new events until the run ends.")
@click.pass_obj
def events(ctx: Ctx, run_id: str, as_json: bool, follow: bool) -> None:
    """Print RUN's event log: the audit trail of every step."""
    run = _run(ctx, run_id)

    def show(ev: Event) -> None:
        if as_json:
            click.echo(json.dumps(ev.to_json()))
        else:
            t = time.strftime("%H:%M:%S", time.localtime(ev.ts))
            data = json.dumps(dict(ev.data), separators=(",", ":"))
            click.echo(f"{ev.seq:>6} {t} {ev.kind.value:<14} {ev.agent or '-':<20} {ev.source:<11} {data}")

    last = 0
    for ev in _events(run):
        show(ev)
        last = ev.seq
    if not follow:
        return
    try:
        with ControlClient(run.control_socket) as client:
            _, stream = client.subscribe(after=last)
            for item in stream:
                if isinstance(item, str):
                    return
                if item.seq > last:
                    show(item)
                    last = item.seq
    except ControlError:
        pass  # the engine is gone, maybe since we read the log: print what it wrote meanwhile
    for ev in _events(run):
        if ev.seq > last:
            show(ev)


def _log_path(run: RunDir, agent: str, attempt: int | None) -> Path:
    rec = _state(run).agents.get(agent)
    if rec is None:
        fail(f"no agent {agent!r} in run {run.run_id}")
    n = attempt or rec.attempts
    if n < 1:
        fail(f"agent {agent!r} has not started yet ({rec.state.value})", EXIT_FAILED)
    return run.output_log(agent, n)


@main.command()
@click.argument("run_id")
@click.argument("agent")
@click.option("--attempt", type=int, help="Which attempt (default: the latest).")
@click.option("--follow", "-f", is_flag=True, help="Keep printing as the agent writes, until it ends.")
@click.pass_obj
def logs(ctx: Ctx, run_id: str, agent: str, attempt: int | None, follow: bool) -> None:
    """Print AGENT's output (as its pane received it, colours included)."""
    run = _run(ctx, run_id)
    path = _log_path(run, agent, attempt)
    out = sys.stdout.buffer
    for chunk in _tail(path, follow, lambda: _agent_active(run, agent)):
        out.write(chunk)
        out.flush()


def _agent_active(run: RunDir, agent: str) -> bool:
    return _state(run).agents[agent].state in ACTIVE


def _tail(path: Path, follow: bool, alive: object) -> Iterator[bytes]:
    offset = 0
    while True:
        try:
            with path.open("rb") as f:
                f.seek(offset)
                data = f.read()
        except FileNotFoundError:
            data = b""
        if data:
            offset += len(data)
            yield data.replace(END_MARKER, b"")  # the wrapper's invisible end marker is bookkeeping
            continue
        if not follow or not (callable(alive) and alive()):
            return
        time.sleep(0.2)


@main.command()
@click.argument("run_id", required=False)
@click.option("--web", is_flag=True, help="Serve the dashboard to browsers instead, on http://HOST:PORT/.")
@click.option("--host", help="--web: the address to listen on.  [default: 127.0.0.1]")
@click.option("--port", type=click.IntRange(1, 65535), help="--web: the port to listen on.  [default: 8000]")
@click.pass_obj
def tui(ctx: Ctx, run_id: str | None, web: bool, host: str | None, port: int | None) -> None:
    """Open the dashboard on RUN (the newest run when omitted). q leaves; the run goes on.

    With --web, serve it on http://127.0.0.1:8000/ (see --host, --port) instead: each browser page runs a
    dashboard of its own on this run, which stays the one served even when newer runs start. Attaching
    to a pane needs a terminal. Ctrl+C stops serving; the run goes on.
    """
    if not web and (host is not None or port is not None):
        fail("--host and --port go with --web")
    run = _run(ctx, run_id)
    if not web:
        _dashboard(run)
        return
    from agentsup.tui.web import serve  # noqa: PLC0415 -- Textual and aiohttp are slow imports: only here

    global_options = ["--state-dir", str(ctx.state_dir), "--tmux-socket", ctx.tmux_socket]
    argv = [sys.executable, "-m", "agentsup", *global_options, "tui", run.run_id]
    host, port = host or "127.0.0.1", port or 8000
    try:
        serve(argv, host=host, port=port, title=f"agentsup {run.run_id}")
    except OSError as exc:
        fail(f"cannot serve on {host}:{port}: {exc.strerror or exc}")


def _dashboard(run: RunDir) -> None:
    meta = run.read_meta()
    backend = _backend(meta.tmux_socket)

    def attach_argv(agent: str | None) -> list[str]:
        """The argv attaching to ``agent``'s window, or to the session when it has none (never raises)."""
        try:
            rec = _fold(_read_events(run)).agents.get(agent or "")
        except StoreError:
            rec = None
        window = None if rec is None else rec.window_id
        return backend.attach_command(meta.session, window, os.environ.get("TMUX"))

    from agentsup.tui.app import Dashboard  # noqa: PLC0415 -- Textual costs 0.2-0.4 s to import: only here

    Dashboard(run, attach=attach_argv).run()


@main.command()
@click.argument("run_id")
@click.argument("agent", required=False)
@click.pass_obj
def attach(ctx: Ctx, run_id: str, agent: str | None) -> None:
    """Put this terminal on AGENT's pane (or the run's session) with plain tmux; detach as usual."""
    run = _run(ctx, run_id)
    meta = run.read_meta()
    backend = _backend(meta.tmux_socket)
    if not backend.has_session(meta.session):
        fail(
            f"run {run.run_id} has no tmux session any more; "
            f"its output is in `agentsup logs {run.run_id} AGENT`",
            EXIT_FAILED,
        )
    window = None
    if agent is not None:
        rec = _state(run).agents.get(agent)
        if rec is None:
            fail(f"no agent {agent!r} in run {run.run_id}")
        if rec.window_id is None:
            fail(f"agent {agent!r} has no pane yet ({rec.state.value})", EXIT_FAILED)
        window = rec.window_id
    argv = backend.attach_command(meta.session, window, os.environ.get("TMUX"))
    os.execvp(argv[0], argv)  # noqa: S606 -- attach hands this terminal to tmux itself


def _control(ctx: Ctx, run_id: str, cmd: str, **args: JSON) -> None:
    run = _run(ctx, run_id)
    try:
        with ControlClient(run.control_socket) as client:
            client.request(cmd, **args)
    except ControlError as exc:
        fail(f"{cmd}: {exc}", EXIT_FAILED)


@main.command()
@click.argument("run_id")
@click.argument("agent")
@click.argument("text")
@click.option("--no-enter", is_flag=True, help="Type the text without pressing Enter.")
@click.pass_obj
def send(ctx: Ctx, run_id: str, agent: str, text: str, no_enter: bool) -> None:
    """Type TEXT into AGENT's pane (bracketed paste when it has several lines), then Enter. An interactive
    agent CLI is typed into the way its prompt was: pasted, then Enter once its screen has settled."""
    _control(ctx, run_id, "send", agent=agent, text=text, enter=not no_enter)


@main.command()
@click.argument("run_id")
@click.argument("agent")
@click.option("--deny", is_flag=True, help="Answer no instead.")
@click.pass_obj
def approve(ctx: Ctx, run_id: str, agent: str, deny: bool) -> None:
    """Answer yes (once) to the permission dialog agent CLI AGENT waits on (state needs_input, with
    approve = "ask"); --deny answers no. The question is in 'agentsup status' and the dashboard."""
    _control(ctx, run_id, "approve", agent=agent, deny=deny)


@main.command()
@click.argument("sources", nargs=-1, required=True)
@click.option(
    "--strategy", type=click.Choice([s.value for s in Strategy]), required=True, help="How to combine."
)
@click.option("--field", help="vote: the field voted on; weighted: the score field (default score).")
@click.option("--confidence", default="confidence", show_default=True, help="weighted: the weight field.")
@click.option("--require-all", is_flag=True, help="Fail when any source failed or gave no usable result.")
def aggregate(
    sources: tuple[str, ...], strategy: str, field: str | None, confidence: str, require_all: bool
) -> None:
    """Combine SOURCES' result.json files (run by an aggregate agent in its own pane).

    Reads the agent's $AGENTSUP_CONTEXT and writes $AGENTSUP_OUT/result.json.
    """
    context, out = os.environ.get("AGENTSUP_CONTEXT"), os.environ.get("AGENTSUP_OUT")
    if not context or not out:
        fail("aggregate runs inside an aggregate agent: AGENTSUP_CONTEXT and AGENTSUP_OUT are not set")
    from agentsup.agents.aggregate import run_aggregate  # noqa: PLC0415 -- only this command needs it

    code, summary = run_aggregate(
        Strategy(strategy),
        sources,
        field=field,
        confidence=confidence,
        require_all=require_all,
        context=Path(context),
        out_dir=Path(out),
    )
    click.echo(summary)
    sys.exit(code)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("event")
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def hook(event: str, args: tuple[str, ...]) -> None:
    """What an agent CLI's hooks run: record hook EVENT (its stdin, or the last ARG, as the payload) for
    the engine, in the file $AGENTSUP_HOOKS names. agentsup installs these hooks per run; you do not run
    this yourself."""
    sys.exit(record_hook([event, *args]))


@main.command()
@click.argument("run_id")
@click.argument("name")
@click.option("--data", default="null", metavar="JSON", help="The event's data, as JSON.")
@click.pass_obj
def emit(ctx: Ctx, run_id: str, name: str, data: str) -> None:
    """Raise an external event NAME in RUN, for its [[on]] event = "external" handlers.

    Without the engine, or from another machine, drop a file RUN_DIR/inbox/ANY.json holding
    {"name": NAME, "data": ...} instead.
    """
    try:
        payload = json.loads(data)
    except ValueError as exc:
        fail(f"--data is not JSON: {exc}")
    _control(ctx, run_id, "emit", name=name, data=payload)


@main.command()
@click.argument("run_id")
@click.argument("agent")
@click.pass_obj
def restart(ctx: Ctx, run_id: str, agent: str) -> None:
    """Start AGENT again (stopping it first if it runs)."""
    _control(ctx, run_id, "restart", agent=agent)


@main.command()
@click.argument("run_id")
@click.argument("agent")
@click.pass_obj
def kill(ctx: Ctx, run_id: str, agent: str) -> None:
    """Stop AGENT: SIGTERM to its process group, SIGKILL after the grace period."""
    _control(ctx, run_id, "kill", agent=agent)


@main.command()
@click.argument("run_id")
@click.option(
    "--reverse", is_flag=True, help="Stop dependents first, each layer gone before what it depends on."
)
@click.pass_obj
def stop(ctx: Ctx, run_id: str, reverse: bool) -> None:
    """Stop the whole run: nothing new starts; every agent still running (a done one too) gets SIGTERM,
    and SIGKILL after the grace period, with whatever it started, detached daemons included."""
    _control(ctx, run_id, "stop", reverse=reverse)


def _run_repo(run: RunDir) -> Path:
    """The git repository a run's worktrees come from: its plan's [run] repo, else its workdir."""
    try:
        plan = _run_plan(run, run.read_meta())
    except RunDirError as exc:
        fail(str(exc))
    return plan.run.repo or plan.run.workdir


@main.command("diff")
@click.argument("run_id")
@click.argument("agent")
@click.pass_obj
def diff_cmd(ctx: Ctx, run_id: str, agent: str) -> None:
    """Show what AGENT changed in its git worktree (worktree = true): the diff stat of its commits, edits
    and new files against the commit its branch started from."""
    run = _run(ctx, run_id)
    path = run.worktree(agent)
    if not path.is_dir():
        plan = _run_plan(run, run.read_meta())
        try:
            dynamic = _fold(_read_events(run)).agents
        except StoreError:
            dynamic = {}
        spec = plan.agents.get(agent)
        if spec is None and agent not in dynamic:
            fail(f"no agent {agent!r} in run {run.run_id}")
        if spec is not None and not spec.worktree:
            fail(f"agent {agent!r} has no worktree: its plan entry does not set worktree = true", EXIT_FAILED)
        fail(
            f"agent {agent!r} has no worktree at {path}: it has not started yet, or `agentsup clean "
            f"{run.run_id}` removed it (its branch {branch_name(run.run_id, agent)} keeps what it committed)",
            EXIT_FAILED,
        )
    try:
        stat = diff_stat(path)
    except WorktreeError as exc:
        fail(str(exc), EXIT_FAILED)
    click.echo(stat or f"no changes on branch {branch_name(run.run_id, agent)}")


@main.command()
@click.argument("run_id")
@click.option("--force", is_flag=True, help="Clean even while the run's engine is alive.")
@click.pass_obj
def clean(ctx: Ctx, run_id: str, force: bool) -> None:
    """Remove RUN's git worktrees, uncommitted changes included; keep their branches and the commits on
    them. A resumed run checks the branches out again."""
    run = _run(ctx, run_id)
    if not force and _engine_answers(run):
        fail(
            f"run {run.run_id} is still running; `agentsup stop {run.run_id}` it first, "
            "or --force to remove the worktrees from under its agents",
            EXIT_FAILED,
        )
    if not run.worktrees_dir.is_dir():
        click.echo(f"run {run.run_id} has no worktrees")
        return
    repo = _run_repo(run)
    try:
        removed = remove_worktrees(repo, run.path)
    except WorktreeError as exc:
        fail(str(exc), EXIT_FAILED)
    for wt in removed:
        if wt.error is not None:
            click.echo(f"agentsup: cannot remove the worktree {wt.path}: {wt.error}", err=True)
        else:
            click.echo(f"removed {wt.path}" + ("" if wt.branch else " (it was on a detached HEAD)"))
    if kept := sorted({wt.branch for wt in removed if wt.branch}):
        click.echo(f"kept {len(kept)} branch{'es' if len(kept) != 1 else ''} in {repo}:")
        for branch in kept:
            click.echo(f"  {branch}")
    elif not removed:
        click.echo(f"run {run.run_id} has no worktrees in {repo}")
    if any(wt.error is not None for wt in removed):
        sys.exit(EXIT_FAILED)
