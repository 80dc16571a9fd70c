"""Agent CLIs (Claude Code, Codex, Gemini CLI, aider, third-party presets) in the engine.

- Launch: the preset's argv and environment, its run-private files written into the attempt's ``cli/``
  directory (0700), and ``AGENTSUP_HOOKS``: the file the CLI's hooks append to (``agentsup hook``).
- Interactive: a driver task per attempt waits for the CLI's ready screen (keys typed during its start-up
  banner are lost), types the prompt with the preset's steps (paste, settle, Enter), and confirms that the
  CLI took it (a busy screen or a hook) or tries once more. The prompt's delivery is logged before a key is
  typed (``agent.prompted``), so a resumed engine never types it twice. Then the task reads the screen
  when the pane prints (at most twice a second) and reports what changed.
- Signals, in order of trust (ARCHITECTURE §5): the exit, the done file or pattern, the CLI's hooks, its
  screen. Each transition records its source. A permission request becomes ``needs_input`` with the
  question (``approve = "ask"``), or is answered with the preset's keys (``always``/``never``).
- One-shot: the preset judges the run from its output, not only its exit code.
- Rate limits: the agent is parked (``rate_limited``) until the reset time the CLI showed, or for
  ``[run] rate_limit_wait``, then started again; the parked attempt does not count against ``retries``.

The driver tasks only read screens and press keys; every decision is made on the engine's loop, through
messages, like everything else the engine does.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING

from agentsup.agents import cli_preset
from agentsup.agents.base import Launch
from agentsup.agents.cli import (
    CLIOptions,
    CLIPreset,
    HookKind,
    HookSetup,
    HookSignal,
    Keys,
    KeyStep,
    Paste,
    Screen,
    ScreenState,
    Settle,
)
from agentsup.plan.model import AgentMode, AgentSpec, Approval, DoneKind
from agentsup.sessions import Backend, BackendError
from agentsup.supervisor import messages as m
from agentsup.supervisor.events import JSON, EventKind, EventSpec
from agentsup.supervisor.output import strip_ansi
from agentsup.supervisor.resettime import reset_at
from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.states import ACTIVE, AgentState, Source

if TYPE_CHECKING:
    from agentsup.supervisor.engine import Engine

log = logging.getLogger("agentsup.cli_agents")
S = AgentState

HOOK_COMMAND = (sys.executable, "-m", "agentsup", "hook")
READY_TIMEOUT = 120.0  # seconds for an interactive CLI to show its ready screen
POLL = 0.25  # the least time between two screen reads while waiting (for the ready screen, an uptake)
POLL_QUIET = 1.0  # the most: a CLI that prints nothing is read this often (printing wakes the driver)
CONFIRM_WAIT = 10.0  # seconds for a typed prompt to show (busy screen, a hook) before it is typed again
SETTLE_LIMIT = 3.0  # a Settle step waits at most this long for the screen to stop changing
SCREEN_GAP = 0.5  # at most two screen reads a second per agent while it prints
TURN_SETTLE = 1.0  # a ready screen read twice this far apart ends a turn, when no hook said so first
QUIET_POLL = 5.0  # done = "idle:…": how often the screen is read while nothing prints
DIALOG_WAIT = 5.0  # a hook's permission request: how long to wait for its dialog to be drawn
# Keys pressed as a dialog opens can be lost (seen with Claude Code): a dialog still open this long after
# its answer, its lines unchanged by the keys, is answered again, at most ANSWER_TRIES times in all.
ANSWER_WAIT = 2.0
ANSWER_TRIES = 3
JUDGE_TAIL = 256 * 1024  # bytes of a one-shot run's output given to its preset's judge


@dataclass
class CLISession:
    """What the engine knows of one attempt of an agent CLI."""

    preset: CLIPreset
    spec: AgentSpec
    attempt: int
    hooks_file: Path
    delivered: bool = False  # the prompt's delivery was logged (typed, or being typed)
    busy_seen: bool = False  # the CLI was seen working since the prompt
    turns: int = 0
    hook_offset: int = 0
    signals: int = 0  # hook signals read so far (the driver watches it grow)
    hook_turns: bool = False  # its hooks report turns: the screen is not asked about them
    asked_at: float | None = None  # when a hook asked permission (monotonic), until its dialog is seen
    question: str | None = None  # the dialog's text in the last screen reported
    answering: bool = False  # keys for a dialog are on their way (approve = always/never)
    screen: ScreenState | None = None  # the last screen state reported to the engine
    poke: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None

    @property
    def interactive(self) -> bool:
        return self.spec.mode is AgentMode.INTERACTIVE


# ---- launching (on an I/O thread) ---------------------------------------------------------------------


def prepare_launch(run: RunDir, spec: AgentSpec, attempt: int, env: Mapping[str, str]) -> Launch:
    """The preset's launch for ``spec`` (its prompt rendered), with its files written into the attempt's
    private ``cli/`` directory."""
    preset = cli_preset(spec.preset)
    config = run.cli_dir(spec.name, attempt)
    config.mkdir(mode=0o700, parents=True, exist_ok=True)
    config.chmod(0o700)  # mkdir's mode is masked by the umask
    hooks = HookSetup(HOOK_COMMAND, config)
    env = {**env, "AGENTSUP_HOOKS": str(run.hooks_file(spec.name, attempt))}
    options = CLIOptions(
        mode=spec.mode, approve=spec.approve, extra=spec.flags, model=spec.model, program=spec.program
    )
    launch = preset.launch(spec, env, options, hooks)
    for name, text in launch.files.items():
        path = config / name
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        tmp.replace(path)
    return launch


def new_session(engine: Engine, agent: str, attempt: int) -> None:
    """Start following an attempt of an agent CLI (its hooks file is watched from here on)."""
    spec = engine.plan.agents[agent]
    old = engine.cli.pop(agent, None)
    if old is not None and old.task is not None:
        old.task.cancel()
    hooks_file = engine.run.hooks_file(agent, attempt)
    engine.cli[agent] = CLISession(cli_preset(spec.preset), spec, attempt, hooks_file)


# ---- the driver task (reads screens and presses keys; decides nothing) ------------------------------


async def on_running(engine: Engine, agent: str, attempt: int, *, resumed: bool = False) -> None:
    """The attempt's pane is up: drive an interactive CLI."""
    session = engine.cli.get(agent)
    if session is None or not session.interactive or session.task is not None:
        return
    if resumed:
        session.delivered = any(
            ev.agent == agent and ev.data.get("attempt") == attempt
            for ev in await engine.in_db(partial(engine.store.read, kinds=[EventKind.AGENT_PROMPTED]))
        )
        session.busy_seen = session.delivered
        session.hook_offset = await engine.in_io(partial(_size, session.hooks_file))
    session.task = asyncio.ensure_future(_drive(engine, agent, session))


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


async def _drive(engine: Engine, agent: str, session: CLISession) -> None:
    pane = engine.pane_of(agent)
    if pane is None:
        return
    try:
        if not session.delivered:
            if not await _wait_ready(engine, agent, session, pane.pane_id):
                return
            if session.spec.prompt is not None and not await _deliver(engine, agent, session, pane.pane_id):
                return
        await _watch(engine, agent, session, pane.pane_id)
    except BackendError as exc:  # the pane is gone: the exit or the sweep tells the rest
        log.info("%s: stopped reading its screen: %s", agent, exc)
    except Exception as exc:  # a bug: say so in the log, and let the engine carry on without a driver
        log.exception("%s: the CLI driver failed", agent)
        engine.post(m.CLIGaveUp(agent, session.attempt, f"agentsup could not drive its CLI: {exc}"))


async def _read(engine: Engine, session: CLISession, pane_id: str) -> tuple[str, Screen]:
    text = await engine.in_io(partial(engine.backend.capture, pane_id, 0))
    return text, session.preset.read_screen(text)


def _report(engine: Engine, agent: str, session: CLISession, screen: Screen, text: str) -> None:
    """Tell the engine when the screen's state changed (or another dialog opened)."""
    if screen.state is not session.screen or screen.question != session.question:
        session.screen, session.question = screen.state, screen.question
        engine.post(m.ScreenSeen(agent, session.attempt, screen, text))


def _live(engine: Engine, agent: str, session: CLISession) -> bool:
    rec = engine.state.agents.get(agent)
    return rec is not None and rec.attempts == session.attempt and rec.state in ACTIVE


async def _wait_ready(engine: Engine, agent: str, session: CLISession, pane_id: str) -> bool:
    """Wait for the ready screen; a dialog on the way (a trust question) is reported and waited out."""
    waited, last = 0.0, ""
    while _live(engine, agent, session):
        text, screen = await _read(engine, session, pane_id)
        last = text
        if screen.state is ScreenState.READY:
            session.screen = ScreenState.READY
            return True
        if screen.state in (ScreenState.NEEDS_PERMISSION, ScreenState.RATE_LIMITED):
            _report(engine, agent, session, screen, text)
        if waited >= READY_TIMEOUT:
            tail = " | ".join(line.strip() for line in last.splitlines() if line.strip())[-300:]
            why = f"its CLI showed no ready screen within {READY_TIMEOUT:g}s (screen: {tail or 'blank'})"
            engine.post(m.CLIGaveUp(agent, session.attempt, why))
            return False
        paused = await _pause(session)
        if engine.state.agents[agent].state is not S.NEEDS_INPUT:
            waited += paused  # a person's answer is not timed
    return False


async def _pause(session: CLISession) -> float:
    """Wait until the pane prints (or a hook comes), POLL to POLL_QUIET seconds; the seconds it took."""
    start = time.monotonic()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(session.poke.wait(), POLL_QUIET)
    session.poke.clear()
    rest = POLL - (time.monotonic() - start)
    if rest > 0:
        await asyncio.sleep(rest)
    return time.monotonic() - start


async def _deliver(engine: Engine, agent: str, session: CLISession, pane_id: str) -> bool:
    """Type the prompt; confirm the CLI took it, else type it once more."""
    prompt = session.spec.prompt
    if prompt is None:
        return True
    if not await engine.in_actor(partial(_log_prompted, engine, agent, session)):
        return False
    for tries in (1, 2):
        signals, session.busy_seen = session.signals, False
        await engine.in_io(partial(type_steps, engine.backend, pane_id, session.preset.submit(prompt)))
        if await _confirmed(engine, agent, session, pane_id, signals):
            if tries > 1:
                log.info("%s: the prompt was taken at the second try", agent)
            return True
        _, screen = await _read(engine, session, pane_id)
        if screen.state is not ScreenState.READY:
            return True  # it moved on (a dialog, a limit): the screen reports tell the rest
    engine.post(m.CLINote(agent, session.attempt, "warning", "its CLI did not show that it took the prompt"))
    return True


async def _log_prompted(engine: Engine, agent: str, session: CLISession) -> bool:
    """Write ahead: the prompt is about to be typed (never typed twice, even by a resumed engine)."""
    if not _live(engine, agent, session):
        return False
    data: dict[str, JSON] = {"attempt": session.attempt, "chars": len(session.spec.prompt or "")}
    await engine.record([(EventKind.AGENT_PROMPTED, agent, Source.ENGINE.value, data)])
    session.delivered = True
    return True


async def _confirmed(engine: Engine, agent: str, session: CLISession, pane_id: str, signals: int) -> bool:
    waited = 0.0
    while waited < CONFIRM_WAIT and _live(engine, agent, session):
        if session.signals > signals or session.busy_seen:
            return True
        text, screen = await _read(engine, session, pane_id)
        if screen.state is not ScreenState.READY:
            if screen.state is ScreenState.BUSY:
                session.busy_seen = True
            _report(engine, agent, session, screen, text)
            return True
        waited += await _pause(session)
    return False


async def _watch(engine: Engine, agent: str, session: CLISession, pane_id: str) -> None:
    """Read the screen when the pane prints (or a hook comes), at most every SCREEN_GAP seconds."""
    done = session.spec.done
    quiet = done.quiet if done.kind is DoneKind.IDLE else None
    ready_text, ready_since, last_read = "", 0.0, 0.0
    while _live(engine, agent, session):
        timeout = QUIET_POLL if quiet is not None else None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(session.poke.wait(), timeout)
        session.poke.clear()
        gap = last_read + SCREEN_GAP - time.monotonic()
        if gap > 0:
            await asyncio.sleep(gap)
        if not _live(engine, agent, session):
            return
        text, screen = await _read(engine, session, pane_id)
        last_read = time.monotonic()
        if screen.state is ScreenState.BUSY:
            session.busy_seen = True
        if screen.state is ScreenState.READY and session.screen is not ScreenState.READY:
            await asyncio.sleep(TURN_SETTLE)  # a ready screen between two steps of one turn is no end
            text, screen = await _read(engine, session, pane_id)
        _report(engine, agent, session, screen, text)
        if quiet is not None:
            if screen.state is not ScreenState.READY:
                ready_text = ""
            elif text != ready_text:
                ready_text, ready_since = text, time.monotonic()
            elif time.monotonic() - ready_since >= quiet:
                engine.post(m.QuietDone(agent, session.attempt, quiet))
                return


def type_steps(backend: Backend, pane_id: str, steps: Sequence[KeyStep]) -> None:
    """Carry out a preset's key steps (blocking)."""
    for step in steps:
        if isinstance(step, Paste):
            backend.paste(pane_id, step.text)
        elif isinstance(step, Keys):
            backend.send_keys(pane_id, step.keys)
        elif isinstance(step, Settle):
            _settle(backend, pane_id, step.seconds)


def _settle(backend: Backend, pane_id: str, seconds: float) -> None:
    """Wait until the screen has not changed for ``seconds`` (at most SETTLE_LIMIT)."""
    deadline = time.monotonic() + SETTLE_LIMIT
    last, since = backend.capture(pane_id, 0), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(min(seconds, 0.1))
        now = backend.capture(pane_id, 0)
        if now != last:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            return


def poke(engine: Engine, agent: str) -> None:
    """The pane printed: the driver reads the screen again."""
    session = engine.cli.get(agent)
    if session is not None:
        session.poke.set()


# ---- hooks --------------------------------------------------------------------------------------------


def read_hooks(engine: Engine, agent: str, attempt: int) -> None:
    """Read the hook lines appended since the last read, on the I/O pool."""
    session = engine.cli.get(agent)
    if session is None or session.attempt != attempt:
        return
    offset, path, preset = session.hook_offset, session.hooks_file, session.preset

    def read() -> m.Message:
        signals, new_offset = hook_signals(path, offset, preset)
        return m.HooksRead(agent, attempt, tuple(signals), offset, new_offset)

    engine._background(read, lambda msg: msg)


def hook_signals(path: Path, offset: int, preset: CLIPreset) -> tuple[list[HookSignal], int]:
    """The signals of the complete hook lines after ``offset``, and the offset after them."""
    try:
        with path.open("rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return [], offset
    end = data.rfind(b"\n") + 1
    signals: list[HookSignal] = []
    for line in data[:end].splitlines():
        try:
            call = json.loads(line)
        except ValueError:
            continue
        if not isinstance(call, dict):
            continue
        event, payload = call.get("event"), call.get("payload")
        if isinstance(event, str):
            signal = preset.hook_signal(event, payload if isinstance(payload, str) else "")
            if signal is not None:
                signals.append(signal)
    return signals, offset + end


async def on_hooks(engine: Engine, msg: m.HooksRead) -> None:
    session = engine.cli.get(msg.agent)
    if session is None or session.attempt != msg.attempt or msg.offset != session.hook_offset:
        return  # a stale read: a newer one is on its way
    session.hook_offset = msg.new_offset
    session.signals += len(msg.signals)
    for signal in msg.signals:
        if engine.state.agents[msg.agent].state not in ACTIVE:
            return
        await _on_signal(engine, msg.agent, session, signal)
    session.poke.set()


async def _on_signal(engine: Engine, agent: str, session: CLISession, signal: HookSignal) -> None:
    match signal.kind:
        case HookKind.TURN_DONE:
            session.hook_turns = True
            await _turn_done(engine, agent, session, Source.HOOK)
        case HookKind.WAITING:
            session.poke.set()  # only the screen tells a finished turn from a question
        case HookKind.NEEDS_INPUT:
            await _permission(engine, agent, session, signal.text, source=Source.HOOK)
        case HookKind.RATE_LIMITED:
            await park(engine, agent, signal.text, Source.HOOK)
        case HookKind.FAILED:
            await _turn_failed(engine, agent, signal.text or "its turn failed", Source.HOOK)


# ---- decisions (on the engine's loop) -----------------------------------------------------------------


async def handle(engine: Engine, msg: m.CLIMessage) -> None:
    """A message about an agent CLI's attempt (the engine checked that the attempt is current)."""
    match msg:
        case m.HookGrew():
            read_hooks(engine, msg.agent, msg.attempt)
        case m.HooksRead():
            await on_hooks(engine, msg)
        case m.ScreenSeen():
            await on_screen(engine, msg)
        case m.CLIGaveUp():
            await on_gave_up(engine, msg)
        case m.CLINote():
            await on_note(engine, msg)
        case m.QuietDone():
            await on_quiet(engine, msg)
        case m.CLIAnswered():
            await on_answered(engine, msg)


async def on_screen(engine: Engine, msg: m.ScreenSeen) -> None:
    session = engine.cli.get(msg.agent)
    state = engine.state.agents[msg.agent].state
    if session is None or session.attempt != msg.attempt or state not in ACTIVE:
        return
    match msg.screen.state:
        case ScreenState.BUSY | ScreenState.READY if _dialog_pending(session):
            return  # a hook asked and its dialog is not drawn yet: this screen was before it
        case ScreenState.NEEDS_PERMISSION:
            session.asked_at = None
            await _permission(engine, msg.agent, session, msg.screen.question, source=Source.SCREEN)
        case ScreenState.RATE_LIMITED:
            await park(engine, msg.agent, msg.screen.reset, Source.SCREEN)
        case ScreenState.BUSY:
            session.busy_seen = True
            await _answered(engine, msg.agent, Source.SCREEN, "its dialog was answered in its pane")
        case ScreenState.READY:
            await _answered(engine, msg.agent, Source.SCREEN, "its dialog was answered in its pane")
            if session.delivered and session.busy_seen and not session.hook_turns:
                await _turn_done(engine, msg.agent, session, Source.SCREEN)


def _dialog_pending(session: CLISession) -> bool:
    return session.asked_at is not None and time.monotonic() - session.asked_at < DIALOG_WAIT


async def _answered(engine: Engine, agent: str, source: Source, reason: str) -> None:
    if engine.state.agents[agent].state is S.NEEDS_INPUT:
        await engine.transition(agent, S.RUNNING, source, reason=reason)


async def _turn_done(engine: Engine, agent: str, session: CLISession, source: Source) -> None:
    if not session.delivered:
        return
    session.turns += 1
    session.busy_seen = False
    data: dict[str, JSON] = {"attempt": session.attempt, "turn": session.turns}
    await engine.record([(EventKind.AGENT_TURN, agent, source.value, data)])
    await _answered(engine, agent, source, "its turn ended")
    if session.spec.done.kind is DoneKind.TURN and session.turns == 1:
        await finish(engine, agent, source, "its turn ended")


async def finish(engine: Engine, agent: str, source: Source, reason: str) -> None:
    """The done rule is met: success, and the CLI is stopped (its pane stays, for its output)."""
    from agentsup.supervisor import outcomes  # noqa: PLC0415 (outcomes imports this module)

    engine._disarm(agent)
    await outcomes.succeed(engine, agent, source, reason=reason)
    engine.stop_agent(agent, "finished")


async def _turn_failed(engine: Engine, agent: str, reason: str, source: Source) -> None:
    from agentsup.supervisor import outcomes  # noqa: PLC0415

    engine._disarm(agent)
    await outcomes.fail(engine, agent, source, reason)
    engine.stop_agent(agent, "finished")


async def on_quiet(engine: Engine, msg: m.QuietDone) -> None:
    if engine.state.agents[msg.agent].state in ACTIVE:
        await finish(engine, msg.agent, Source.SILENCE, f"quiet at its ready screen for {msg.seconds:g}s")


async def on_gave_up(engine: Engine, msg: m.CLIGaveUp) -> None:
    if engine.state.agents[msg.agent].state in ACTIVE:
        await _turn_failed(engine, msg.agent, msg.reason, Source.SCREEN)


async def on_note(engine: Engine, msg: m.CLINote) -> None:
    data: dict[str, JSON] = {
        "attempt": msg.attempt,
        "severity": msg.severity,
        "rule": "agent CLI",
        "line": msg.text,
    }
    await engine.record([(EventKind.ALERT, msg.agent, Source.ENGINE.value, data)])


async def _permission(
    engine: Engine, agent: str, session: CLISession, question: str | None, *, source: Source
) -> None:
    """The CLI asks permission: wait for a person, or answer by the plan's policy."""
    rec = engine.state.agents[agent]
    if rec.state is S.NEEDS_INPUT:
        return  # asked already (the hook and the screen both say so)
    policy = session.spec.approve
    if policy is Approval.ASK:
        await engine.transition(
            agent, S.NEEDS_INPUT, source, reason=question or "its CLI asks permission", question=question
        )
        if source is Source.HOOK:  # the hook comes before the dialog is drawn
            session.asked_at = time.monotonic()
        return
    pane = engine.pane_of(agent)
    if pane is None or session.answering:
        return  # one answer at a time: the hook and the screen announce the same dialog
    session.answering = True
    approve = policy is Approval.ALWAYS
    preset, backend, attempt = session.preset, engine.backend, session.attempt

    def press() -> m.Message:
        screen = _dialog_screen(backend, preset, pane.pane_id)
        if screen is None:
            return m.CLIAnswered(agent, attempt, None, None, f"no dialog on its screen to answer: {question}")
        shown = preset.read_screen(screen).question or question
        # Logged as the keys go: the turn may end before the dialog is seen closed.
        engine.post(m.CLIAnswered(agent, attempt, "approve" if approve else "deny", shown, None))
        problem = _press_until_closed(backend, preset, pane.pane_id, screen, approve=approve)
        return m.CLIAnswered(agent, attempt, None, shown, problem)

    engine._background(_guarded(press, agent, attempt), lambda msg: msg)


def _press_until_closed(
    backend: Backend, preset: CLIPreset, pane_id: str, screen: str, *, approve: bool
) -> str | None:
    """Answer the dialog on ``screen``, and again (ANSWER_TRIES in all) while it ignores the keys; what
    went wrong, or None."""
    shown = preset.read_screen(screen).question
    keys = preset.approve_keys if approve else preset.deny_keys
    for _ in range(ANSWER_TRIES):
        backend.send_keys(pane_id, keys(screen))
        if not _keys_lost(backend, preset, pane_id, shown, screen):
            return None
    return f"its dialog ignored {ANSWER_TRIES} answers: {shown}"


async def on_answered(engine: Engine, msg: m.CLIAnswered) -> None:
    """Keys for a dialog went (approve = always/never): log what was answered. A message without an
    answer ends the answering (the dialog closed, or it could not be answered: ``problem``)."""
    session = engine.cli.get(msg.agent)
    if session is None or session.attempt != msg.attempt:
        return
    if msg.answer is None:
        session.answering = False
    else:
        data: dict[str, JSON] = {
            "attempt": msg.attempt,
            "answer": msg.answer,
            "by": f"approve = {session.spec.approve.value}",
            "question": msg.question,
        }
        await engine.record([(EventKind.AGENT_ANSWERED, msg.agent, Source.ENGINE.value, data)])
        if msg.answer == "deny":
            await on_note(engine, m.CLINote(msg.agent, msg.attempt, "warning", f"refused: {msg.question}"))
    if msg.problem is not None:
        await on_note(engine, m.CLINote(msg.agent, msg.attempt, "warning", msg.problem))


def _keys_lost(backend: Backend, preset: CLIPreset, pane_id: str, question: str | None, before: str) -> bool:
    """Wait (up to ANSWER_WAIT) until the answered dialog is off the screen; whether it is still there as
    the keys found it (keys it shows took them: aider echoes its answer after the question)."""
    deadline = time.monotonic() + ANSWER_WAIT
    while True:
        text = backend.capture(pane_id, 0)
        screen = preset.read_screen(text)
        if screen.state is not ScreenState.NEEDS_PERMISSION or screen.question != question:
            return False
        if time.monotonic() >= deadline:
            return _dialog_lines(text, question) == _dialog_lines(before, question)
        time.sleep(POLL)


def _dialog_lines(text: str, question: str | None) -> list[str]:
    """The screen's lines from the dialog's first line down (above it, a CLI may animate: Claude does)."""
    lines = [line.rstrip() for line in text.splitlines()]
    first = question.splitlines()[0].strip() if question else ""
    top = max((i for i, line in enumerate(lines) if first and first in line), default=0)
    return lines[top:]


def _dialog_screen(backend: Backend, preset: CLIPreset, pane_id: str) -> str | None:
    """The screen once its permission dialog is drawn (a hook comes before it is), or None."""
    deadline = time.monotonic() + DIALOG_WAIT
    while True:
        text = backend.capture(pane_id, 0)
        if preset.read_screen(text).state is ScreenState.NEEDS_PERMISSION:
            return text
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL)


def _guarded(fn: Callable[[], m.Message], agent: str, attempt: int) -> Callable[[], m.Message]:
    def run() -> m.Message:
        try:
            return fn()
        except BackendError as exc:
            return m.CLIAnswered(agent, attempt, None, None, f"could not answer its dialog: {exc}")

    return run


async def approve(engine: Engine, agent: str, yes: bool) -> str:
    """``agentsup approve`` / the dashboard: answer the permission dialog the agent waits on. Returns what
    was done; raises ValueError with the reason it cannot be."""
    session = engine.cli.get(agent)
    rec = engine.state.agents[agent]
    if session is None:
        preset = engine.plan.agents[agent].preset
        raise ValueError(
            f"agent {agent!r} is not an agent CLI (its preset is {preset}); type into it with send"
        )
    if rec.state is not S.NEEDS_INPUT:
        raise ValueError(f"agent {agent!r} is not waiting for an answer (it is {rec.state.value})")
    pane = engine.pane_of(agent)
    if pane is None:
        raise ValueError(f"agent {agent!r} has no pane")
    # A hook's question comes before its dialog is drawn: give the dialog a moment.
    text = await engine.in_io(partial(_dialog_screen, engine.backend, session.preset, pane.pane_id))
    if text is None:
        text = await engine.in_io(partial(engine.backend.capture, pane.pane_id, 0))
    screen = session.preset.read_screen(text)
    if screen.state is not ScreenState.NEEDS_PERMISSION:
        raise ValueError(
            f"no permission dialog on {agent!r}'s screen now ({screen.state.value}); attach to see it"
        )
    answer: dict[str, JSON] = {
        "attempt": session.attempt,
        "answer": "approve" if yes else "deny",
        "by": "user",
        "question": screen.question,
    }
    await engine.record([(EventKind.AGENT_ANSWERED, agent, Source.USER.value, answer)])
    session.asked_at = None
    cli, backend, attempt, dialog = session.preset, engine.backend, session.attempt, text

    def press() -> m.Message:  # again while the dialog ignores the keys (they can be lost as it opens)
        problem = _press_until_closed(backend, cli, pane.pane_id, dialog, approve=yes)
        return m.CLIAnswered(agent, attempt, None, screen.question, problem)

    engine._background(_guarded(press, agent, attempt), lambda msg: msg)
    what = "approved" if yes else "denied"
    await engine.transition(agent, S.RUNNING, Source.USER, reason=f"{what} by the user")
    return what


async def send(engine: Engine, agent: str, text: str, enter: bool) -> bool:
    """Type into an interactive CLI the way its prompt is typed (paste, settle, Enter); False when the
    agent is no CLI (the caller types plainly)."""
    session = engine.cli.get(agent)
    pane = engine.pane_of(agent)
    if session is None or not session.interactive or pane is None:
        return False
    steps = session.preset.submit(text) if enter else (Paste(text),)
    await engine.in_io(partial(type_steps, engine.backend, pane.pane_id, steps))
    return True


# ---- rate limits and one-shot verdicts ----------------------------------------------------------------


async def park(
    engine: Engine, agent: str, reset: str | None, source: Source, before: Sequence[EventSpec] = ()
) -> None:
    """Park a rate-limited agent until its reset (or ``rate_limit_wait``); it starts again then."""
    rec = engine.state.agents[agent]
    if rec.state not in ACTIVE or engine.state.halted or engine.state.stopping:
        if before:
            await engine.record(before)
        return
    now = engine.clock()
    until = reset_at(reset, now)
    shown = until is not None
    if until is None:
        until = now + engine.plan.run.rate_limit_wait
    when = datetime.fromtimestamp(until, UTC).strftime("%H:%M:%S UTC")
    why = f"rate limited; starts again at {when}" + ("" if shown else " ([run] rate_limit_wait)")
    engine._disarm(agent)
    await engine.transition(
        agent, S.RATE_LIMITED, source, before=before, reason=why, retry_at=until, reset=reset
    )
    engine.stop_agent(agent, "finished")


def judge_tail(log_path: Path) -> str:
    """The end of a one-shot run's output, ANSI removed, as its preset's judge reads it."""
    try:
        with log_path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - JUDGE_TAIL))
            data = f.read()
    except FileNotFoundError:
        return ""
    return strip_ansi(data).replace(b"\r\n", b"\n").decode("utf-8", "replace")


async def judge_exit(
    engine: Engine, agent: str, attempt: int, *, code: int | None, sig: int | None, exit_ev: EventSpec
) -> None:
    """A one-shot CLI exited: its preset judges the run from its output."""
    from agentsup.supervisor import outcomes  # noqa: PLC0415

    session = engine.cli.get(agent)
    preset = session.preset if session is not None else cli_preset(engine.plan.agents[agent].preset)
    tail = await engine.in_io(partial(judge_tail, engine.run.output_log(agent, attempt)))
    verdict = preset.judge(code if code is not None else -1, tail)
    if verdict.rate_limited:
        await park(engine, agent, verdict.reset, Source.VERDICT, before=[exit_ev])
    elif verdict.succeeded:
        await outcomes.succeed(
            engine, agent, Source.VERDICT, before=[exit_ev], exit_code=code, reason=verdict.reason
        )
    else:
        await outcomes.fail(
            engine, agent, Source.VERDICT, verdict.reason, code=code, sig=sig, before=[exit_ev]
        )


def is_oneshot_cli(spec: AgentSpec) -> bool:
    return spec.is_cli and spec.mode is AgentMode.ONESHOT and spec.done.kind is DoneKind.EXIT
