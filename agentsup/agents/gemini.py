"""Gemini CLI (npm ``@google/gemini-cli``), measured with 0.61.0.

- One-shot: ``gemini --output-format json … --prompt=PROMPT``: one pretty-printed JSON object, with
  ``response`` on success and ``error`` (``code`` 429 for a rate limit) on failure.
- Interactive: the TUI. ``GEMINI_CLI_TRUST_WORKSPACE=true`` (an untrusted folder exits 55 one-shot and asks
  first interactively). ``CI`` and ``GITHUB_ACTIONS`` are set to ``false``: either one ``true`` makes it
  headless, and it exits 42 for want of a prompt on stdin.
- Hooks (``AfterAgent`` at the end of a turn, ``Notification`` "ToolPermission" for a dialog) come from a
  settings file. The only settings file that can be given per process is the system one:
  ``GEMINI_CLI_SYSTEM_DEFAULTS_PATH`` (the lowest precedence: the user's settings still apply, hook lists
  are concatenated). Gemini loads it only when the file and every directory above it are owned by root and
  not writable by group or others, and otherwise skips it with a warning: the hooks then work only for an
  engine running as root with its run directory outside /tmp, and the screen is read either way.
- Approvals: ``--approval-mode`` default (asks), yolo (approves everything).
- A 429 with a retry delay over 5 minutes ends the turn at once with "Usage limit reached … Access resets
  at TIME"; a shorter one is retried up to 10 times, 30 s apart, under the busy spinner.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence

from agentsup.agents.base import Launch
from agentsup.agents.cli import (
    Approve,
    CLIOptions,
    HookKind,
    HookSetup,
    HookSignal,
    KeyStep,
    Mode,
    Screen,
    ScreenState,
    Verdict,
    clip,
    is_rule,
    last_index,
    last_json_object,
    launch_env,
    object_of,
    oneshot_prompt,
    parse_object,
    paste_then_enter,
    screen_lines,
    string_of,
)
from agentsup.plan import AgentSpec

DEFAULTS_FILE = "gemini-system-defaults.json"
HOOK_EVENTS = ("AfterAgent", "Notification")
ENV = {"GEMINI_CLI_TRUST_WORKSPACE": "true"}
# Its TUI turns headless (exit 42: "No input provided via stdin") when CI=true or GITHUB_ACTIONS=true, as
# a supervisor run inside CI inherits: an interactive agent has a terminal, whatever the run's surroundings.
NOT_CI = {"CI": "false", "GITHUB_ACTIONS": "false"}
APPROVAL_MODES = {Approve.NEVER: "default", Approve.ASK: "default", Approve.ALWAYS: "yolo"}

BUSY = re.compile(r"\(esc to cancel", re.IGNORECASE)
PLACEHOLDER = "Type your message"
BANNER = "Gemini CLI v"
OPTION_ONE = re.compile(r"^[│\s]*(?:●\s*)?1\.\s")  # the first choice, selected (●) or not
# The dialog a refused request opens (its first line), not words in a file a permission dialog shows.
RATE_LIMIT = re.compile(r"^(?:Usage limit reached|We are currently experiencing high demand)", re.MULTILINE)
RESET = re.compile(r"resets at (?P<when>[^.\n│]+)", re.IGNORECASE)
RETRY_AFTER = re.compile(r"retry after (?P<when>\S+?)\.?$", re.IGNORECASE | re.MULTILINE)


class GeminiPreset:
    name = "gemini"

    def launch(
        self, spec: AgentSpec, env: Mapping[str, str], options: CLIOptions, hooks: HookSetup
    ) -> Launch:
        argv = [options.program or "gemini", "--approval-mode", APPROVAL_MODES[options.approve]]
        defaults = dict(ENV)
        files: dict[str, str] = {}
        if options.mode is Mode.ONESHOT:
            argv += ["--output-format", "json"]
        else:
            files[DEFAULTS_FILE] = json.dumps(_settings(hooks), indent=2) + "\n"
            defaults["GEMINI_CLI_SYSTEM_DEFAULTS_PATH"] = str(hooks.config_dir / DEFAULTS_FILE)
            defaults.update(NOT_CI)
        if options.model is not None:
            argv += ["--model", options.model]
        argv += options.extra
        if options.mode is Mode.ONESHOT:
            argv.append(f"--prompt={oneshot_prompt(spec)}")  # one word: a prompt starting with "-" stays one
        return Launch(argv=tuple(argv), env=launch_env(defaults, spec, env), files=files)

    def read_screen(self, text: str) -> Screen:
        lines = screen_lines(text)
        if not any(line.strip() for line in lines):
            return Screen(ScreenState.STARTING)
        box = _dialog_box(lines)
        if box is not None:
            body = "\n".join(box)
            if RATE_LIMIT.search(body):
                found = RESET.search(body)
                return Screen(ScreenState.RATE_LIMITED, reset=found["when"].strip() if found else None)
            return Screen(ScreenState.NEEDS_PERMISSION, question=_question(box))
        composer = _composer(lines)
        if composer is None or not _session_shown(lines[:composer]):
            return Screen(ScreenState.STARTING)
        if any(BUSY.search(line) for line in lines[max(0, composer - 4) : composer]):
            return Screen(ScreenState.BUSY)
        return Screen(ScreenState.READY)

    def approve_keys(self, screen: str) -> tuple[str, ...]:
        del screen  # one dialog shape
        return ("1",)  # "1. Allow once"

    def deny_keys(self, screen: str) -> tuple[str, ...]:
        del screen
        return ("Escape",)  # "No, suggest changes (esc)"

    def submit(self, text: str) -> tuple[KeyStep, ...]:
        return paste_then_enter(text)

    def hook_signal(self, event: str, payload: str) -> HookSignal | None:
        data = parse_object(payload) or {}
        if event == "AfterAgent":
            return HookSignal(HookKind.TURN_DONE)
        if event == "Notification" and string_of(data.get("notification_type")) == "ToolPermission":
            details = object_of(data.get("details"))
            question = string_of(details.get("title")) or string_of(data.get("message"))
            return HookSignal(HookKind.NEEDS_INPUT, clip(question) or None)
        return None

    def judge(self, exit_code: int, output_tail: str) -> Verdict:
        result = last_json_object(output_tail)
        if result is None:
            return Verdict(False, f"exit {exit_code} and no JSON result (gemini --output-format json)")
        error = object_of(result.get("error"))
        if error or exit_code != 0:
            message = string_of(error.get("message")) or f"exit {exit_code}"
            limited = error.get("code") == 429
            found = RETRY_AFTER.search(message) if limited else None
            reset = f"retry after {found['when']}" if found else None
            return Verdict(False, clip(message), rate_limited=limited, reset=reset)
        return Verdict(True, clip(string_of(result.get("response"))) or "success")


def _settings(hooks: HookSetup) -> dict[str, object]:
    handler = {"type": "command", "command": ""}
    return {
        "hooksConfig": {"enabled": True, "notifications": False},  # no "running hook" lines on screen
        "hooks": {
            event: [{"hooks": [{**handler, "command": hooks.command_line(event)}]}] for event in HOOK_EVENTS
        },
    }


def _composer(lines: Sequence[str]) -> int | None:
    """The index of the input line: the first ">" line below the last full-width rule."""
    rule = last_index(lines, is_rule)
    if rule == -1:
        return None
    for i in range(rule + 1, min(len(lines), rule + 5)):
        stripped = lines[i].strip()
        if stripped.startswith(">") or PLACEHOLDER in stripped:
            return i
    return None


def _session_shown(lines: Sequence[str]) -> bool:
    """Whether the session has started: its banner, or a prompt or answer above the input line. The input
    line is drawn before the session starts, and keys typed then are lost."""
    return any(BANNER in line or line.lstrip().startswith((">", "\u2726")) for line in lines)


def _dialog_box(lines: Sequence[str]) -> list[str] | None:
    """The inside of the last bordered box (│ … │) when it offers numbered choices; None otherwise."""
    bottom = last_index(lines, lambda line: line.lstrip().startswith("╰"))
    if bottom == -1 or _composer(lines[bottom:]) is not None:
        return None
    indent = len(lines[bottom]) - len(lines[bottom].lstrip())  # boxes nest: find this one's own top
    top = last_index(lines[:bottom], lambda line: line.startswith(" " * indent + "╭"))
    inside = [line.strip().strip("│").strip() for line in lines[top + 1 : bottom]]
    if not any(OPTION_ONE.match(line) for line in lines[top + 1 : bottom]):
        return None
    return inside


def _question(box: Sequence[str]) -> str:
    """The dialog's heading (the tool and what it does) and its question."""
    kept = [line for line in box if line and not line.startswith(("╭", "╰", "│"))]
    heading = kept[0].lstrip("? ").strip() if kept else ""
    ask = next((line for line in kept if line.endswith("?")), "")
    return "\n".join(part for part in (heading, ask) if part) or "\n".join(kept[:2])
