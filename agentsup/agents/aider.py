"""aider (PyPI ``aider-chat``), measured with 0.86.2.

- One-shot: ``aider … --message=PROMPT``. It exits 0 after an unreachable API, a rate limit it gave up
  on and edits it could not apply: its own error lines decide.
- Interactive: its prompt_toolkit prompt (``>``). Questions ("Create new file? (Y)es/(N)o [Yes]:") are
  answered with a letter and Enter; ``--yes-always`` answers them all.
- Hook: ``--notifications-command`` runs (through the shell, synchronously) the first time aider waits
  for input after a model reply, which is either the next prompt or a question about the reply (a file to
  create), so it only says "waiting": the screen tells which.
- Unattended: no update check, no analytics (``--no-analytics``; ``--analytics-disable`` would write the
  user's config), no release notes question, no model warnings, no ``.gitignore`` edit, and chat
  history files in the run-private directory instead of the workdir.
- A 429 is retried with a doubling delay for about a minute under the spinner, each try printing "The API
  provider has rate limited you".
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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
    launch_env,
    oneshot_prompt,
    paste_then_enter,
    screen_lines,
)
from agentsup.plan import AgentSpec

HOOK_EVENT = "notification"
FLAGS = (
    "--no-check-update",
    "--no-analytics",
    "--no-show-release-notes",
    "--no-show-model-warnings",
    "--no-gitignore",
)
CHAT_HISTORY = "aider.chat.history.md"
INPUT_HISTORY = "aider.input.history"

# "Create new file? (Y)es/(N)o [Yes]:", with the answer once given
QUESTION = re.compile(r"^(?P<question>.*?)\s*\(Y\)es/\(N\)o.*\]:\s*\S*$")
PROMPT = re.compile(r"^(?:[a-z]+)?>(?: |$)")  # ">", "ask>", "architect>", then what was typed
BARE_PROMPT = re.compile(r"^(?:[a-z]+)?>$")
RATE_LIMIT = re.compile(r"The API provider has rate limited you")
ERRORS = re.compile(
    r"litellm\.\w+Error|rate limited you"
    r"|did not conform to the edit format|Failed to apply edit|failed to match|SearchReplaceNoExactMatch"
    r"|Unable to (?:write|read)|Malformed response",
)


class AiderPreset:
    name = "aider"

    def launch(
        self, spec: AgentSpec, env: Mapping[str, str], options: CLIOptions, hooks: HookSetup
    ) -> Launch:
        argv = [options.program or "aider", *FLAGS]
        argv += ["--chat-history-file", str(hooks.config_dir / CHAT_HISTORY)]
        argv += ["--input-history-file", str(hooks.config_dir / INPUT_HISTORY)]
        if options.approve is Approve.ALWAYS:
            argv.append("--yes-always")
        if options.model is not None:
            argv += ["--model", options.model]
        if options.mode is Mode.INTERACTIVE:
            argv += ["--notifications", "--notifications-command", hooks.command_line(HOOK_EVENT)]
        argv += options.extra
        if options.mode is Mode.ONESHOT:
            argv.append(f"--message={oneshot_prompt(spec)}")
        return Launch(argv=tuple(argv), env=launch_env({}, spec, env))

    def read_screen(self, text: str) -> Screen:
        lines = screen_lines(text)
        last = lines[-1].strip() if lines else ""
        asked = QUESTION.match(last)
        if asked:
            subject = lines[-2].strip() if len(lines) > 1 and not is_rule(lines[-2]) else ""
            question = asked["question"]
            return Screen(ScreenState.NEEDS_PERMISSION, question="\n".join(filter(None, (subject, question))))
        prompts = [i for i, line in enumerate(lines) if PROMPT.match(line)]
        if not prompts:
            return Screen(ScreenState.STARTING)
        waiting = BARE_PROMPT.match(last) is not None
        # The turn on screen: since the prompt that started it (the one before an empty prompt).
        start = (prompts[-2] if len(prompts) > 1 else -1) if waiting else prompts[-1]
        if any(RATE_LIMIT.search(line) for line in lines[start + 1 :]):
            return Screen(ScreenState.RATE_LIMITED)
        # "> text" last: a prompt just sent (its reply not begun) or being typed; either way not idle.
        return Screen(ScreenState.READY if waiting else ScreenState.BUSY)

    def approve_keys(self, screen: str) -> tuple[str, ...]:
        del screen  # one dialog shape
        return ("y", "Enter")

    def deny_keys(self, screen: str) -> tuple[str, ...]:
        del screen
        return ("n", "Enter")

    def submit(self, text: str) -> tuple[KeyStep, ...]:
        return paste_then_enter(text)

    def hook_signal(self, event: str, payload: str) -> HookSignal | None:
        del payload  # aider passes nothing
        return HookSignal(HookKind.WAITING) if event == HOOK_EVENT else None

    def judge(self, exit_code: int, output_tail: str) -> Verdict:
        errors = [_shown(line) for line in output_tail.splitlines() if ERRORS.search(line)]
        if exit_code != 0:
            return Verdict(False, clip(errors[-1]) if errors else f"exit {exit_code}")
        if errors:
            limited = any(RATE_LIMIT.search(line) for line in errors)
            return Verdict(False, clip(errors[-1]), rate_limited=limited)
        return Verdict(True, "exit 0 and no error lines")


def _shown(line: str) -> str:
    """An error line without the spinner frames ("░█", erased with backspaces) printed before it."""
    parts = [part.strip() for part in line.split("\b")]
    return next((part for part in reversed(parts) if ERRORS.search(part)), line.strip())
