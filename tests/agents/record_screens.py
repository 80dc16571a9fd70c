"""Record what the real agent CLIs show and send, as fixtures for tests/agents:

    .venv/bin/python -m tests.agents.record_screens [claude codex gemini aider]

Each CLI runs through its preset's own ``launch`` (argv, environment, run-private files) in a pane that the
sessions backend opens on a private tmux server, exactly as the engine runs agents, against the scripted
LLM server of tests/llm; its prompts go in through the preset's ``submit`` steps and its dialogs are
answered with the preset's ``approve_keys``/``deny_keys`` (a dialog that stays open fails the recording).

A capture is named after what the scenario knows at that moment, never after what a preset reads on it:

- ``starting-N``: frames before the CLI first drew its input line (the marker each CLI is given below,
  as observed; blank frames included);
- ``ready-N``: the settled screen before a prompt that the server then received, or after a turn the
  server answered in full;
- ``busy-N``: while the server holds the model call (``Held``);
- ``needs_permission-N``: the settled screen after the server sent a file write that the CLI has not
  made yet (its question names that file);
- ``rate_limited-N``: the screen after the server answered 429s.

It also saves every hook call the CLI made (``tests/fixtures/hooks/<preset>/<event>-N.json``) and one-shot
runs (``tests/fixtures/oneshot/<preset>/<case>.json``: the exit code and the pane's raw output). A preset's
old fixtures are replaced. Each CLI takes a few minutes; run it on an idle machine. Scratch files go under
``~/.cache/agentsup-record-*``: Gemini loads its hooks file only from directories owned by root and not
group/world writable, so its hooks are recorded only when this runs as root (the fixtures were).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Final, TypeVar

from agentsup.agents.aider import AiderPreset
from agentsup.agents.claude import ClaudePreset
from agentsup.agents.cli import Approve, CLIOptions, CLIPreset, HookSetup, Keys, KeyStep, Mode, Paste, Settle
from agentsup.agents.codex import CodexPreset
from agentsup.agents.gemini import GeminiPreset
from agentsup.plan import AgentSpec
from agentsup.sessions import LaunchSpec, TmuxBackend
from agentsup.sessions.backend import Pane
from tests.llm import clis
from tests.llm.script import Fail, Held, Script, Step, Text
from tests.llm.server import LLMServer

T = TypeVar("T")

ROOT: Final = Path(__file__).resolve().parent.parent.parent
FIXTURES: Final = ROOT / "tests" / "fixtures"
SESSION: Final = "record"
RUN: Final = "record"
# Hooks run this: it appends what it got (argv, stdin) as one JSON line to $AGENTSUP_TEST_HOOK_LOG.
HOOK_CODE: Final = (
    "import json, os, sys\n"
    "data = '' if sys.stdin is None or sys.stdin.isatty() else sys.stdin.read()\n"
    "with open(os.environ['AGENTSUP_TEST_HOOK_LOG'], 'a', encoding='utf-8') as f:\n"
    "    f.write(json.dumps({'argv': sys.argv[1:], 'stdin': data}) + '\\n')\n"
)
WRITE_FIRST: Final = "Write the first file."
WRITE_SECOND: Final = "Write the second file."
SETTLE: Final = 1.5  # seconds without a change that make a screen "settled"


@dataclass(frozen=True)
class Recorded:
    """One CLI as the recorder drives it."""

    cli: clis.AgentCLI
    preset: CLIPreset
    input_shown: Callable[[str], bool]  # observed: the TUI has drawn its input line
    options: CLIOptions = field(default_factory=CLIOptions)
    rate_limit: Fail = field(
        default_factory=lambda: Fail(429, "Rate limit reached for requests", retry_after=1)
    )
    # For the 429 scenarios only: fewer retries, so the CLI gives up within the recording.
    rate_env: Mapping[str, str] = field(default_factory=dict)
    rate_extra: tuple[str, ...] = ()
    turn_hook: str | None = None  # the hook event that ends a turn
    trust_dialog: bool = False  # an untrusted workdir opens a dialog at start (recorded as well)
    oneshot_extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # case -> more flags


def _claude_input(screen: str) -> bool:
    lines = [line.strip() for line in screen.splitlines()]
    return any(
        a and set(a) == {"─"} and b.startswith("\u276f") and c and set(c) == {"─"}
        for a, b, c in zip(lines, lines[1:], lines[2:], strict=False)
    )


def _codex_input(screen: str) -> bool:
    lines = screen.splitlines()
    return any(line.lstrip().startswith("\u203a") for line in lines) and not any(
        line.strip() == "loading" for line in lines
    )


def _gemini_input(screen: str) -> bool:
    # Its first frame already has the input line, but keys typed before the banner comes are lost.
    return "Type your message" in screen and "Gemini CLI v" in screen


def _aider_input(screen: str) -> bool:
    return any(line.rstrip() == ">" for line in screen.splitlines())


CODEX_RETRIES: Final = (
    "-c",
    "model_providers.agentsup.request_max_retries=1",
    "-c",
    "model_providers.agentsup.stream_max_retries=1",
)
CLIS: Final = {
    "claude": Recorded(
        clis.CLAUDE,
        ClaudePreset(),
        _claude_input,
        rate_env={"CLAUDE_CODE_MAX_RETRIES": "1"},
        turn_hook="Stop",
        trust_dialog=True,
    ),
    "codex": Recorded(
        clis.CODEX,
        CodexPreset(),
        _codex_input,
        rate_extra=CODEX_RETRIES,
        turn_hook="Stop",
        # Without the flag it waits for the network for ever ("Reconnecting... waiting for network").
        oneshot_extra={
            "rate_limited": CODEX_RETRIES,
            "unreachable": (*CODEX_RETRIES, "--disable", "unbounded_connection_retries"),
        },
    ),
    "gemini": Recorded(
        clis.GEMINI,
        GeminiPreset(),
        _gemini_input,
        # A delay over 5 minutes makes it give up at once (a shorter one is retried 10 times, 30 s apart).
        rate_limit=Fail(429, "Resource has been exhausted (e.g. check quota).", retry_after=3600),
        turn_hook="AfterAgent",
    ),
    "aider": Recorded(
        clis.AIDER,
        AiderPreset(),
        _aider_input,
        options=CLIOptions(model=f"openai/{clis.AIDER_MODEL}", extra=("--edit-format=whole", "--no-git")),
        turn_hook="notification",
    ),
}


class RecordingError(Exception):
    pass


def wait_until(predicate: Callable[[], T | None], timeout: float, what: str) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RecordingError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(0.05)


class Session:
    """One CLI's pane on the private tmux server, its files, and what it was sent and recorded."""

    def __init__(
        self, rec: Recorded, backend: TmuxBackend, base: Path, llm: LLMServer, name: str, *, url: str = ""
    ) -> None:
        self.rec = rec
        self.backend = backend
        self.llm = llm
        self.url = url or llm.url
        self.launch: LaunchSpec | None = None
        self.dir = base / name
        self.home = self.dir / "home"
        self.work = self.dir / "work"
        self.config = self.dir / "config"
        self.hook_log = self.dir / "hooks.jsonl"
        self.pane: Pane | None = None
        for d in (self.home, self.work):
            d.mkdir(parents=True)
        self.config.mkdir(mode=0o700)

    def start(
        self,
        options: CLIOptions,
        *,
        prompt: str | None = None,
        env: Mapping[str, str] | None = None,
        trusted: bool = True,
    ) -> Pane:
        rec = self.rec
        cli_env = rec.cli.env(self.home, self.url, self.work if trusted else None)
        hooks = HookSetup((sys.executable, "-c", HOOK_CODE), self.config)
        spec = AgentSpec(name=rec.cli.name, prompt=prompt or None)
        agentsup_env = {"AGENTSUP_AGENT": rec.cli.name, "AGENTSUP_TEST_HOOK_LOG": str(self.hook_log)}
        launch = rec.preset.launch(spec, agentsup_env, options, hooks)
        for rel, text in launch.files.items():
            path = self.config / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
            path.chmod(0o600)
        attempt = self.dir / uuid.uuid4().hex[:8]
        self.launch = LaunchSpec(
            run=RUN,
            agent=rec.cli.name,
            attempt=1,
            argv=launch.argv,
            cwd=self.work,
            env={**clis.base_env(cli_env), **dict(env or {}), **launch.env},
            script=attempt / "run.sh",
            exit_file=attempt / "exit.json",
            output_log=attempt / "output.log",
        )
        self.pane = self.backend.spawn(SESSION, self.launch)
        return self.pane

    def screen(self) -> str:
        assert self.pane is not None
        return self.backend.capture(self.pane.pane_id, lines=0)

    def settled(self, seconds: float = SETTLE, timeout: float = 60) -> str:
        last, since = self.screen(), time.monotonic()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            time.sleep(0.1)
            now = self.screen()
            if now != last:
                last, since = now, time.monotonic()
            elif time.monotonic() - since >= seconds:
                return now
        raise RecordingError(f"{self.rec.cli.name}: the screen did not settle in {timeout}s:\n{last}")

    def tmux(self, *args: str) -> None:
        subprocess.run(["tmux", "-L", self.backend.socket_name, *args], check=True, capture_output=True)

    def do(self, steps: Sequence[KeyStep]) -> None:
        assert self.pane is not None
        target = self.pane.pane_id
        for step in steps:
            if isinstance(step, Keys):
                self.tmux("send-keys", "-t", target, *step.keys)
            elif isinstance(step, Paste):
                buffer = f"record-{uuid.uuid4().hex}"
                self.tmux("set-buffer", "-b", buffer, "--", step.text)
                self.tmux("paste-buffer", "-p", "-d", "-b", buffer, "-t", target)
            elif isinstance(step, Settle):
                self.settled(step.seconds, timeout=10)

    def submit(self, text: str) -> None:
        before = len(self.asked(text))
        self.do(self.rec.preset.submit(text))
        wait_until(
            lambda: len(self.asked(text)) > before or self.llm_holding(), 60, f"the server to get {text!r}"
        )

    def asked(self, text: str) -> list[object]:
        return [r for r in self.llm.requests if r.asks(text)]

    def llm_holding(self) -> bool:
        try:
            self.llm.wait_holding(timeout=0)
        except TimeoutError:
            return False
        return True

    def hooks(self) -> list[dict[str, object]]:
        if not self.hook_log.exists():
            return []
        return [json.loads(line) for line in self.hook_log.read_text(encoding="utf-8").splitlines()]

    def turn_hooks(self) -> int:
        return sum(1 for h in self.hooks() if _event_of(h) == self.rec.turn_hook)

    def stop(self) -> None:
        if self.pane is not None:
            self.backend.stop(self.pane, grace=5)
            self.pane = None


def _event_of(hook: Mapping[str, object]) -> str:
    argv = hook.get("argv")
    return str(argv[0]) if isinstance(argv, list) and argv else ""


class Fixtures:
    """Where one preset's recordings go; the old ones are removed first."""

    def __init__(self, name: str, root: Path = FIXTURES) -> None:
        self.name = name
        self.dirs = {kind: root / kind / name for kind in ("screens", "hooks", "oneshot")}
        for d in self.dirs.values():
            shutil.rmtree(d, ignore_errors=True)
            d.mkdir(parents=True)
        self.counts: dict[tuple[str, str], int] = {}
        self.mentions: dict[str, str] = {}

    def _next(self, kind: str, stem: str) -> int:
        n = self.counts.get((kind, stem), 0) + 1
        self.counts[(kind, stem)] = n
        return n

    def screen(self, state: str, text: str, mentions: str | None = None) -> None:
        """Save a capture; ``mentions``: what a dialog's question must name (the file the server wrote)."""
        n = self._next("screens", state)
        name = f"{state}-{n}.txt"
        (self.dirs["screens"] / name).write_text(text + "\n", encoding="utf-8")
        if mentions is not None:
            self.mentions[name] = mentions
            index = json.dumps(self.mentions, indent=2, sort_keys=True)
            (self.dirs["screens"] / "questions.json").write_text(index + "\n")
        print(f"  {self.name}: {state}-{n}")

    def hook(self, hook: Mapping[str, object]) -> None:
        raw = hook.get("argv")
        argv = [str(a) for a in raw] if isinstance(raw, list) else []
        event = argv[0] if argv else "unknown"
        payload = argv[1] if len(argv) > 1 else str(hook.get("stdin", ""))
        n = self._next("hooks", event)
        record = {"event": event, "payload": payload}
        (self.dirs["hooks"] / f"{event}-{n}.json").write_text(json.dumps(record, indent=2) + "\n")

    def oneshot(self, case: str, exit_code: int, output: str, expect: bool) -> None:
        record = {"case": case, "expect_success": expect, "exit_code": exit_code, "output": output}
        (self.dirs["oneshot"] / f"{case}.json").write_text(json.dumps(record, indent=2) + "\n")
        print(f"  {self.name}: oneshot {case} exit {exit_code}")


@contextmanager
def tmux_server() -> Iterator[TmuxBackend]:
    backend = TmuxBackend(f"agentsup-record-{uuid.uuid4().hex[:8]}")
    # Gemini loads its settings file only from a path whose directories all belong to root and are not
    # group/world writable: not under /tmp.
    backend.create_session(SESSION, ["sleep", "100000"], Path.home(), {"PATH": os.environ.get("PATH", "")})
    try:
        yield backend
    finally:
        subprocess.run(["tmux", "-L", backend.socket_name, "kill-server"], check=False, capture_output=True)


def record_interactive(rec: Recorded, out: Fixtures, backend: TmuxBackend, base: Path) -> None:
    release = threading.Event()
    work_file = "a.txt"
    denied_file = "b.txt"
    llm = LLMServer().start()
    try:
        s = Session(rec, backend, base, llm, "interactive")
        # A tool call is followed by one more model call for the closing words; aider's edit is its reply.
        closing = [] if rec.cli is clis.AIDER else [Text("Wrote it.")]
        steps: list[Step] = [
            Held(Text("First answer."), release),
            rec.cli.write(s.work, work_file, "hello\n"),
            *closing,
            rec.cli.write(s.work, denied_file, "nope\n"),
            Text("Left it."),
        ]
        llm.script = Script(steps)
        options = replace(
            rec.options, mode=Mode.INTERACTIVE, approve=Approve.ASK, program=str(rec.cli.executable)
        )
        s.start(options)
        _record_startup(s, out)
        out.screen("ready", s.settled())

        s.submit("Say something first.")
        llm.wait_holding(timeout=60)
        busy = wait_until(lambda: _showing(s.screen(), "Say something first."), 30, "the busy screen")
        out.screen("busy", busy)
        changed = _maybe(lambda: wait_until(lambda: _changed(s.screen(), busy), 5, "a spinner step"))
        if changed:
            out.screen("busy", changed)
        release.set()
        _await_turn(s, 1)
        out.screen("ready", s.settled())

        turns = s.turn_hooks()
        s.submit(WRITE_FIRST)
        question = _await_dialog(s, WRITE_FIRST, work_file)
        out.screen("needs_permission", question, mentions=work_file)
        s.do([Keys(rec.preset.approve_keys(s.screen()))])
        wait_until((s.work / work_file).exists, 60, f"{work_file} written after approve_keys")
        _await_turn(s, turns + 1)
        out.screen("ready", s.settled())

        s.submit(WRITE_SECOND)
        out.screen("needs_permission", _await_dialog(s, WRITE_SECOND, denied_file), mentions=denied_file)
        s.do([Keys(rec.preset.deny_keys(s.screen()))])
        after = s.settled(3)
        if (s.work / denied_file).exists():
            raise RecordingError(f"{rec.cli.name}: {denied_file} was written after deny_keys")
        s.submit("Are you there?")  # the screen after the denial took a prompt: it was ready
        out.screen("ready", after)
        s.stop()
        for hook in s.hooks():
            out.hook(hook)
    finally:
        release.set()
        llm.close()


def record_trust(rec: Recorded, out: Fixtures, backend: TmuxBackend, base: Path) -> None:
    """The dialog an untrusted workdir opens at start (Claude), answered with approve_keys."""
    with LLMServer(Script([Text("Trusted.")])) as llm:
        s = Session(rec, backend, base, llm, "trust")
        options = replace(
            rec.options, mode=Mode.INTERACTIVE, approve=Approve.ASK, program=str(rec.cli.executable)
        )
        s.start(options, trusted=False)
        dialog = wait_until(lambda: _trust_shown(s.settled()), 90, "the trust dialog")
        out.screen("needs_permission", dialog, mentions="trust")
        s.do([Keys(rec.preset.approve_keys(s.screen()))])
        wait_until(lambda: rec.input_shown(s.screen()), 60, "the input line after trusting")
        s.submit("Hello after trusting.")
        s.stop()


def _showing(screen: str, text: str) -> str | None:
    return screen if text in screen else None


def _changed(screen: str, before: str) -> str | None:
    return screen if screen != before else None


def _trust_shown(screen: str) -> str | None:
    return screen if "trust" in screen.lower() else None


def record_rate_limit(rec: Recorded, out: Fixtures, backend: TmuxBackend, base: Path) -> None:
    with LLMServer(Script([rec.rate_limit])) as llm:
        s = Session(rec, backend, base, llm, "ratelimit")
        extra = rec.options.extra + rec.rate_extra
        options = replace(rec.options, extra=extra, approve=Approve.ASK, program=str(rec.cli.executable))
        s.start(options, env=rec.rate_env)
        wait_until(lambda: rec.input_shown(s.screen()), 120, "the input line")
        s.settled()
        s.submit("Hello despite the limit.")

        def refused(n: int) -> bool:
            return sum(1 for r in llm.requests if r.status == 429) >= n

        wait_until(lambda: refused(1), 120, "a 429")
        if rec.cli is clis.AIDER:  # it retries for a minute: the screen while it does, then the end
            wait_until(lambda: refused(3), 120, "three 429s")
            out.screen("rate_limited", wait_until(lambda: _showing(s.screen(), "Retrying in"), 60, "a retry"))
        out.screen("rate_limited", s.settled(4, timeout=240))
        s.stop()
        for hook in s.hooks():
            out.hook(hook)


def _record_startup(s: Session, out: Fixtures) -> None:
    frames: list[str] = []

    def input_shown() -> bool:
        now = s.screen()
        if not frames or frames[-1] != now:
            frames.append(now)
        return s.rec.input_shown(now)

    wait_until(input_shown, 120, f"{s.rec.cli.name} to draw its input line")
    before = frames[:-1]
    for frame in [before[0], *before[1:][-2:]] if before else []:
        out.screen("starting", frame)


def _await_turn(s: Session, hooks_before: int) -> None:
    if s.rec.turn_hook is not None:
        wait_until(lambda: s.turn_hooks() >= hooks_before, 120, f"the {s.rec.turn_hook} hook")


def _await_dialog(s: Session, prompt: str, file: str) -> str:
    """The settled screen once the CLI shows the write the server sent (the prompt does not name the file:
    the screen names it only once the CLI shows the call)."""
    wait_until(lambda: any(r.asks(prompt) for r in s.llm.requests), 60, "the write turn")
    wait_until(lambda: _showing(s.screen(), file), 60, f"{file} on screen")
    screen = s.settled(2)
    if (s.work / file).exists():
        raise RecordingError(f"{s.rec.cli.name} wrote {file} without asking")
    if file not in screen:
        raise RecordingError(f"{s.rec.cli.name}: no dialog naming {file}:\n{screen}")
    return screen


def _maybe(make: Callable[[], T]) -> T | None:
    try:
        return make()
    except RecordingError:
        return None


@dataclass(frozen=True)
class OneShot:
    case: str
    steps: Callable[[Path], list[Step]]  # workdir -> the script
    expect_success: bool
    approve: Approve = Approve.ASK
    unreachable: bool = False
    check: Callable[[Path], bool] | None = None  # on the workdir, after the run


def oneshot_cases(rec: Recorded) -> list[OneShot]:
    write = rec.cli.write
    cases = [
        OneShot("ok", lambda w: [Text("The answer is 42.")], True),
        OneShot(
            "edit",
            lambda w: [write(w, "out.txt", "written\n"), Text("Done.")],
            True,
            approve=Approve.ALWAYS,
            check=lambda w: (w / "out.txt").exists(),
        ),
        OneShot("rate_limited", lambda w: [rec.rate_limit], False),
        OneShot("bad_request", lambda w: [Fail(400, "Invalid request: the prompt is malformed.")], False),
    ]
    if rec.cli is not clis.GEMINI:  # it retries a refused connection 10 times, 30 s apart
        cases.append(OneShot("unreachable", lambda w: [Text("never sent")], False, unreachable=True))
    if rec.cli is clis.CODEX:  # read-only sandbox: the patch is refused, and codex still exits 0
        cases.append(
            OneShot(
                "edit_refused",
                lambda w: [write(w, "out.txt", "written\n"), Text("I could not write it.")],
                True,
                check=lambda w: not (w / "out.txt").exists(),
            )
        )
    if rec.cli is clis.AIDER:  # an edit whose SEARCH text is not in the file
        bad = "a.txt\n```\n<<<<<<< SEARCH\nnot there\n=======\nreplaced\n>>>>>>> REPLACE\n```\n"
        cases.append(OneShot("edit_failed", lambda w: [Text(bad)], False, approve=Approve.ALWAYS))
    return cases


def record_oneshots(rec: Recorded, out: Fixtures, backend: TmuxBackend, base: Path) -> None:
    for case in oneshot_cases(rec):
        with LLMServer() as llm:
            url = llm.url
            if case.unreachable:  # a port nothing listens on any more
                with LLMServer() as gone:
                    url = gone.url
            s = Session(rec, backend, base, llm, f"oneshot-{case.case}", url=url)
            llm.script = Script(case.steps(s.work))
            extra = rec.options.extra + rec.oneshot_extra.get(case.case, ())
            if case.case == "edit_failed":
                (s.work / "a.txt").write_text("original\n")
                extra = (
                    *(f for f in extra if not f.startswith("--edit-format")),
                    "--edit-format=diff",
                    "a.txt",
                )
            options = replace(
                rec.options,
                mode=Mode.ONESHOT,
                approve=case.approve,
                extra=extra,
                program=str(rec.cli.executable),
            )
            env = dict(rec.rate_env) if case.case in ("rate_limited", "unreachable") else {}
            s.start(options, prompt=f"One-shot task: {case.case}.", env=env)
            assert s.launch is not None
            exit_file = s.launch.exit_file
            wait_until(exit_file.exists, 400, f"one-shot {case.case} to exit")
            code = int(json.loads(exit_file.read_text())["code"])
            output = s.launch.output_log.read_bytes().decode("utf-8", errors="replace")
            if case.check is not None and not case.check(s.work):
                raise RecordingError(f"{rec.cli.name} one-shot {case.case}: the workdir is not as expected")
            out.oneshot(case.case, code, output, case.expect_success)
            s.stop()


def record(name: str, base: Path) -> None:
    rec = CLIS[name]
    missing = rec.cli.missing()
    if missing is not None:
        print(f"skipped: {missing}")
        return
    out = Fixtures(name)
    print(f"{name}: recording into {FIXTURES}")
    with tmux_server() as backend:
        record_interactive(rec, out, backend, base)
        if rec.trust_dialog:
            record_trust(rec, out, backend, base)
        record_rate_limit(rec, out, backend, base)
        record_oneshots(rec, out, backend, base)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("presets", nargs="*", help=f"some of: {' '.join(CLIS)} (default: all)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory (HOMEs, logs)")
    args = parser.parse_args(argv)
    unknown = [p for p in args.presets if p not in CLIS]
    if unknown:
        parser.error(f"unknown presets: {' '.join(unknown)}")
    cache = Path.home() / ".cache"
    cache.mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix="agentsup-record-", dir=cache))
    try:
        for name in args.presets or list(CLIS):
            record(name, base / name)
    except RecordingError as e:
        print(f"recording failed: {e}", file=sys.stderr)
        print(f"scratch directory kept: {base}", file=sys.stderr)
        return 1
    if args.keep:
        print(f"scratch directory: {base}")
    else:
        shutil.rmtree(base)
    return 0


if __name__ == "__main__":
    sys.exit(main())
