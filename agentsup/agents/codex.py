"""Codex CLI (npm ``@openai/codex``), measured with 0.169.0.

- One-shot: ``codex exec --json --skip-git-repo-check … -- PROMPT``: JSON lines; a good run ends with
  ``turn.completed``, a failed one with ``error`` events and ``turn.failed`` (exit 1).
- Interactive: the TUI with ``--no-daemon`` (else it starts a detached app-server that outlives the pane;
  0.169.0 skips it when given any ``-c``, as here, but ``--no-daemon`` does not rest on that).
- Settings go on the command line (``-c key=value``), never into ``$CODEX_HOME``.
- Hooks: ``-c hooks.Stop=…`` and ``hooks.PermissionRequest``. Codex runs a hook only once a person has
  trusted it (the TUI opens a review dialog; ``exec`` skips it), and ours are new every run, so the
  preset passes ``--dangerously-bypass-hook-trust``, which also runs the user's other enabled hooks
  unreviewed for this agent. ``notify`` is not used: it also fires for the side thread that names the
  session, seconds before the real turn ends. A failed turn (429) fires neither: only the screen shows it.
- Approvals: ``-a`` (on-request | never) with ``-s`` (read-only | workspace-write); ``exec`` has no ``-a``
  and never asks.
- Its composer takes keys that arrive right after text as part of a paste (Enter would add a newline).
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

HOOK_EVENTS = ("Stop", "PermissionRequest")
SETTINGS = ("check_for_update_on_startup=false",)
INTERACTIVE_POLICY = {  # approve -> (--ask-for-approval, --sandbox)
    Approve.NEVER: ("never", "read-only"),
    Approve.ASK: ("on-request", "read-only"),
    Approve.ALWAYS: ("never", "workspace-write"),
}
EXEC_SANDBOX = {Approve.NEVER: "read-only", Approve.ASK: "read-only", Approve.ALWAYS: "workspace-write"}

COMPOSER = "\u203a"  # the single right-pointing angle Codex draws before input
BUSY = re.compile(r"esc to interrupt", re.IGNORECASE)
LOADING = re.compile(r"^\s*loading\s*$")
OPTION_ONE = re.compile(r"^\s*(?:\u203a\s*)?1\.\s")  # the first choice, selected or not
DIALOG_FOOTER = re.compile(r"enter to confirm|enter/esc confirm|enter confirm", re.IGNORECASE)
RATE_LIMIT = re.compile(r"\b429\b|rate.?limit|usage limit|too many requests", re.IGNORECASE)
ERROR = "\u25a0"  # the black square Codex puts before an error in the transcript
RESET = re.compile(r"(?:try again|resets?)\s+(?:at|in)\s+(?P<when>[^.\n]+)", re.IGNORECASE)


class CodexPreset:
    name = "codex"

    def launch(
        self, spec: AgentSpec, env: Mapping[str, str], options: CLIOptions, hooks: HookSetup
    ) -> Launch:
        program = options.program or "codex"
        settings = [f for s in SETTINGS for f in ("-c", s)]
        if options.mode is Mode.ONESHOT:
            argv = [program, "exec", "--json", "--skip-git-repo-check", *settings]
            argv += ["--sandbox", EXEC_SANDBOX[options.approve]]
        else:
            argv = [program, "--no-daemon", "--dangerously-bypass-hook-trust", *settings]
            for event in HOOK_EVENTS:
                handler = f'{{type="command",command={json.dumps(hooks.command_line(event))}}}'
                argv += ["-c", f"hooks.{event}=[{{hooks=[{handler}]}}]"]
            policy, sandbox = INTERACTIVE_POLICY[options.approve]
            argv += ["--ask-for-approval", policy, "--sandbox", sandbox]
        if options.model is not None:
            argv += ["--model", options.model]
        argv += options.extra
        if options.mode is Mode.ONESHOT:
            argv += ["--", oneshot_prompt(spec)]
        return Launch(argv=tuple(argv), env=launch_env({}, spec, env))

    def read_screen(self, text: str) -> Screen:
        lines = screen_lines(text)
        if not any(line.strip() for line in lines) or any(LOADING.match(line) for line in lines[:6]):
            return Screen(ScreenState.STARTING)
        dialog = _dialog(lines)
        if dialog is not None:
            return Screen(ScreenState.NEEDS_PERMISSION, question=dialog)
        composer = _composer(lines)
        if composer is None:
            return Screen(ScreenState.STARTING)
        if any(BUSY.search(line) for line in lines[max(0, composer - 4) :]):
            return Screen(ScreenState.BUSY)
        reply = _last_reply(lines[:composer])
        if RATE_LIMIT.search(reply):
            found = RESET.search(reply)
            return Screen(ScreenState.RATE_LIMITED, reset=found["when"].strip() if found else None)
        return Screen(ScreenState.READY)

    def approve_keys(self, screen: str) -> tuple[str, ...]:
        del screen  # one dialog shape
        return ("y",)  # "1. Yes, proceed (y)"

    def deny_keys(self, screen: str) -> tuple[str, ...]:
        del screen
        return ("Escape",)  # "No, and tell Codex what to do differently (esc)"

    def submit(self, text: str) -> tuple[KeyStep, ...]:
        return paste_then_enter(text)

    def hook_signal(self, event: str, payload: str) -> HookSignal | None:
        data = parse_object(payload) or {}
        if event == "Stop":
            return HookSignal(HookKind.TURN_DONE)
        if event == "PermissionRequest":
            tool = string_of(data.get("tool_name")) or "a tool"
            tool_input = object_of(data.get("tool_input"))
            if tool == "apply_patch":
                return HookSignal(HookKind.NEEDS_INPUT, _patch_summary(string_of(tool_input.get("command"))))
            return HookSignal(HookKind.NEEDS_INPUT, tool_summary(tool, tool_input))
        return None

    def judge(self, exit_code: int, output_tail: str) -> Verdict:
        events = list(json_lines(output_tail))
        kinds = [string_of(e.get("type")) for e in events]
        errors = [string_of(e.get("message")) for e in events if e.get("type") == "error"]
        failed = [
            string_of(object_of(e.get("error")).get("message"))
            for e in events
            if e.get("type") == "turn.failed"
        ]
        reason = (failed or errors or [""])[-1]
        turns = [kind for kind in kinds if kind in ("turn.completed", "turn.failed")]
        if exit_code == 0 and turns[-1:] == ["turn.completed"]:
            return Verdict(True, _last_message(events) or "turn completed")
        if not reason:
            reason = (
                f"exit {exit_code} without turn.completed" if kinds else f"exit {exit_code}, no JSON events"
            )
        limited = bool(RATE_LIMIT.search(reason))
        found = RESET.search(reason) if limited else None
        return Verdict(
            False, clip(reason), rate_limited=limited, reset=found["when"].strip() if found else None
        )


def _composer(lines: Sequence[str]) -> int | None:
    """The index of the composer line (the prompt), which only status lines follow."""
    i = last_index(lines, lambda line: line.lstrip().startswith(COMPOSER))
    return i if i != -1 and len(lines) - i <= 5 else None


def _dialog(lines: Sequence[str]) -> str | None:
    """An approval (or other selection) dialog's question and details; None when none is open."""
    footer = last_index(lines, lambda line: bool(DIALOG_FOOTER.search(line)))
    first = last_index(lines[: max(footer, 0)], lambda line: bool(OPTION_ONE.match(line)))
    if footer == -1 or first == -1:
        return None
    above = [line.strip() for line in lines[max(0, first - 12) : first]]
    start = last_index(above, lambda line: line.endswith("?"))
    if start == -1:  # no question (a notice with choices): the paragraph right above the choices
        end = len(above)
        while end and not above[end - 1]:
            end -= 1
        start = end
        while start and above[start - 1]:
            start -= 1
    return "\n".join([line for line in above[start:] if line][:4])


def _last_reply(lines: Sequence[str]) -> str:
    """The error lines of the last turn (a reply may well talk about rate limits)."""
    start = last_index(lines, lambda line: line.lstrip().startswith(COMPOSER))
    return "\n".join(line for line in lines[start + 1 :] if line.lstrip().startswith(ERROR))


def _patch_summary(patch: str) -> str:
    """``apply_patch`` as its file operations ("Add File: a.txt")."""
    ops = [line[4:] for line in patch.splitlines() if line.startswith("*** ") and "Patch" not in line]
    return clip("apply_patch: " + "; ".join(ops)) if ops else clip(f"apply_patch: {patch}")


def _last_message(events: Sequence[Mapping[str, object]]) -> str:
    said = [
        string_of(object_of(e.get("item")).get("text"))
        for e in events
        if e.get("type") == "item.completed" and object_of(e.get("item")).get("type") == "agent_message"
    ]
    return clip(said[-1]) if said else ""
