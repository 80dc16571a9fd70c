"""Claude Code (npm ``@anthropic-ai/claude-code``), measured with 2.1.330.

- One-shot: ``claude -p --output-format json … -- PROMPT``. The result object's ``subtype`` says
  "success" even when the API failed; ``is_error`` and ``api_error_status`` tell the truth (a 429 gave
  ``is_error: true``, ``api_error_status: 429``, exit 1).
- Interactive: the TUI. Hooks come from ``--settings FILE``, a run-private file that adds to the user's
  settings: ``Stop`` ends every turn, ``PermissionRequest`` comes at once with the tool and its input,
  ``Notification`` ("permission_prompt") some seconds later, ``StopFailure`` when a turn dies
  (``error: "rate_limit"`` for a 429).
- Permissions: ``--permission-mode``: ``manual`` asks, ``dontAsk`` refuses what is not pre-allowed,
  ``acceptEdits`` approves file edits (``bypassPermissions`` is refused as root, so "always" approves
  edits itself and leaves other dialogs to the engine). Without a mode, 2.1.330 runs in "auto" mode,
  where its own classifier decides.
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
    json_lines,
    last_index,
    launch_env,
    object_of,
    oneshot_prompt,
    parse_object,
    paste_then_enter,
    screen_lines,
    string_of,
    tool_summary,
)
from agentsup.plan import AgentSpec

SETTINGS_FILE = "claude-settings.json"
HOOK_EVENTS = ("Stop", "StopFailure", "PermissionRequest", "Notification")
ENV = {"DISABLE_AUTOUPDATER": "1", "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}
PERMISSION_MODES = {Approve.NEVER: "dontAsk", Approve.ASK: "manual", Approve.ALWAYS: "acceptEdits"}

PROMPT = "\u276f"  # the heavy right-pointing angle Claude draws before input
BUSY = re.compile(r"esc to interrupt", re.IGNORECASE)
DIALOG_FOOTER = re.compile(r"Esc to cancel", re.IGNORECASE)  # permission and trust dialogs
# Its API error line: "● API Error: Request rejected (429) · …" (a reply can talk of limits too).
RATE_LIMIT = re.compile(r"API Error: .*(?:\(429\)|rate.?limit)", re.IGNORECASE)
RESET = re.compile(r"\bresets?\s+(?:at\s+|in\s+)?(?P<when>[^·.\n]+)", re.IGNORECASE)


class ClaudePreset:
    name = "claude"

    def launch(
        self, spec: AgentSpec, env: Mapping[str, str], options: CLIOptions, hooks: HookSetup
    ) -> Launch:
        argv = [options.program or "claude"]
        files: dict[str, str] = {}
        if options.mode is Mode.ONESHOT:
            argv += ["-p", "--output-format", "json"]
        else:
            files[SETTINGS_FILE] = json.dumps(_settings(hooks), indent=2) + "\n"
            argv += ["--settings", str(hooks.config_dir / SETTINGS_FILE)]
        argv += ["--permission-mode", PERMISSION_MODES[options.approve]]
        if options.model is not None:
            argv += ["--model", options.model]
        argv += options.extra
        if options.mode is Mode.ONESHOT:
            argv += ["--", oneshot_prompt(spec)]
        return Launch(argv=tuple(argv), env=launch_env(ENV, spec, env), files=files)

    def read_screen(self, text: str) -> Screen:
        lines = screen_lines(text)
        if not any(line.strip() for line in lines):
            return Screen(ScreenState.STARTING)
        dialog = _dialog(lines)
        if dialog is not None:
            return Screen(ScreenState.NEEDS_PERMISSION, question=dialog)
        box = _input_box(lines)
        if box is None:
            return Screen(ScreenState.STARTING)
        footer = "\n".join(lines[box + 2 :])
        if BUSY.search(footer):
            return Screen(ScreenState.BUSY)
        reply = _last_reply(lines[:box])
        if RATE_LIMIT.search(reply):
            found = RESET.search(reply)
            return Screen(ScreenState.RATE_LIMITED, reset=found["when"].strip() if found else None)
        return Screen(ScreenState.READY)

    def approve_keys(self, screen: str) -> tuple[str, ...]:
        """Move the selection to the first "Yes" choice, then Enter: the choices are numbered in permission
        dialogs but not in the folder-trust one, whose selection starts on "No, exit"."""
        choices = _choices(screen_lines(screen))
        at = next((i for i, (_, selected) in enumerate(choices) if selected), 0)
        yes = next((i for i, (text, _) in enumerate(choices) if text.startswith("Yes")), at)
        move = ("Down",) * (yes - at) if yes >= at else ("Up",) * (at - yes)
        return (*move, "Enter")

    def deny_keys(self, screen: str) -> tuple[str, ...]:
        del screen
        return ("Escape",)  # cancels a tool call ("No" is choice 3 or 4); at the trust question, exits

    def submit(self, text: str) -> tuple[KeyStep, ...]:
        return paste_then_enter(text)

    def hook_signal(self, event: str, payload: str) -> HookSignal | None:
        data = parse_object(payload) or {}
        if event == "Stop":
            return HookSignal(HookKind.TURN_DONE)
        if event == "PermissionRequest":
            tool = string_of(data.get("tool_name")) or "a tool"
            return HookSignal(HookKind.NEEDS_INPUT, tool_summary(tool, object_of(data.get("tool_input"))))
        if event == "Notification" and string_of(data.get("notification_type")) == "permission_prompt":
            return HookSignal(HookKind.NEEDS_INPUT, string_of(data.get("message")) or None)
        if event == "StopFailure":
            return _stop_failure(data)
        return None  # other notifications (idle reminders, auth) and events

    def judge(self, exit_code: int, output_tail: str) -> Verdict:
        results = [r for r in json_lines(output_tail) if r.get("type") == "result"]
        if not results:
            code = f"exit {exit_code}"
            return Verdict(False, f"{code} and no result JSON in the output (claude -p --output-format json)")
        result = results[-1]
        text = clip(string_of(result.get("result")))
        subtype = string_of(result.get("subtype"))
        if result.get("is_error") is True or subtype != "success" or exit_code != 0:
            status = result.get("api_error_status")
            limited = status == 429 or result.get("api_error_type") == "rate_limit_error"
            found = RESET.search(text) if limited else None
            why = text or subtype or f"exit {exit_code}"
            return Verdict(False, why, rate_limited=limited, reset=found["when"].strip() if found else None)
        denied = _denied_tools(result.get("permission_denials"))
        if denied:
            return Verdict(True, f"{text} (denied: {', '.join(denied)})")
        return Verdict(True, text or "success")


def _stop_failure(data: Mapping[str, object]) -> HookSignal:
    error = string_of(data.get("error")) or "unknown"
    message = string_of(data.get("last_assistant_message"))
    if error == "rate_limit":
        found = RESET.search(message)
        return HookSignal(HookKind.RATE_LIMITED, found["when"].strip() if found else None)
    return HookSignal(HookKind.FAILED, clip(f"{error}: {message}" if message else error))


def _settings(hooks: HookSetup) -> dict[str, object]:
    """``--settings``: our hooks, added to whatever hooks the user's own settings have."""
    command = {"type": "command", "command": ""}
    return {
        "hooks": {
            event: [{"hooks": [{**command, "command": hooks.command_line(event)}]}] for event in HOOK_EVENTS
        }
    }


def _input_box(lines: Sequence[str]) -> int | None:
    """The index of the input box's top rule: a rule, a line starting with the prompt, a rule."""
    for i in range(len(lines) - 3, -1, -1):
        if is_rule(lines[i]) and lines[i + 1].lstrip().startswith(PROMPT) and is_rule(lines[i + 2]):
            return i
    return None


def _dialog(lines: Sequence[str]) -> str | None:
    """The open dialog's text, from its title below the rule to its choices, decoration left out; None
    when no dialog (a permission request or the folder-trust question) is open."""
    block = _choice_block(lines)
    if block is None:
        return None
    first, _ = block
    # The dialog's top rule is solid; a diff inside it is framed by dashed (U+254C) rules.
    top = last_index(lines[:first], lambda line: is_rule(line) and "\u254c" not in line)
    body = [line.strip() for line in lines[top + 1 : first]]
    kept = [line for line in body if line and not is_rule(line, 4) and not line.startswith("Tip:")]
    asks = last_index(kept, lambda line: "?" in line)
    if asks == -1:
        return "\n".join(kept[:4])
    return "\n".join([*kept[: min(3, asks)], kept[asks]])  # the title, the subject, the question


def _choice_block(lines: Sequence[str]) -> tuple[int, int] | None:
    """(first, end) of the dialog's choice lines, just above its "Esc to cancel" footer: one is selected
    (drawn after the prompt sign), the others are indented further than the dialog's text."""
    footer = last_index(lines, lambda line: bool(DIALOG_FOOTER.search(line)))
    if footer == -1:
        return None
    end = footer
    while end > 0 and not lines[end - 1].strip():
        end -= 1
    first = end
    while first > 0 and (lines[first - 1].lstrip().startswith(PROMPT) or lines[first - 1].startswith("   ")):
        first -= 1
    if not any(line.lstrip().startswith(PROMPT) for line in lines[first:end]):
        return None
    return first, end


def _choices(lines: Sequence[str]) -> list[tuple[str, bool]]:
    """The open dialog's choices: (text without its number, whether it is selected), in order."""
    block = _choice_block(lines)
    if block is None:
        return []
    found = []
    for line in lines[block[0] : block[1]]:
        stripped = line.strip()
        label = re.sub(r"^\d+\.\s*", "", stripped.removeprefix(PROMPT).strip())
        found.append((label, stripped.startswith(PROMPT)))
    return found


def _last_reply(lines: Sequence[str]) -> str:
    """The text after the last prompt the user sent (history lines start with the prompt too)."""
    start = last_index(lines, lambda line: line.startswith(PROMPT))
    return "\n".join(lines[start + 1 :])


def _denied_tools(denials: object) -> list[str]:
    if not isinstance(denials, list):
        return []
    return [string_of(object_of(d).get("tool_name")) or "a tool" for d in denials]
