"""The real agent CLIs, run offline against the scripted LLM server: where `.ci/install-clis` puts them, and
the environment, config files and command line each one needs.

Measured with Claude Code 2.1.330, Codex 0.169.0, Gemini CLI 0.61.0 and aider 0.86.2: with these settings
none of them resolves any host but the server's (checked with strace), and each answers a turn in seconds.
An `*_env` function writes the CLI's config files under `home` and returns the variables to run it with;
run it from `workdir` with stdin closed (`codex exec` reads stdin when it is not a terminal).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from tests.llm.script import Text, ToolCall, Turn
from tests.llm.wire import obj, string

CLI_DIR: Final = Path(os.environ.get("AGENTSUP_CLI_DIR") or Path.home() / ".cache" / "agentsup-test-clis")
NPM_BIN: Final = CLI_DIR / "npm" / "node_modules" / ".bin"
API_KEY: Final = "sk-agentsup-test"
CODEX_MODEL: Final = (
    "gpt-5.5"  # a model Codex has metadata for: it then offers apply_patch, and warns of nothing
)
AIDER_MODEL: Final = "test-model"


def base_env(overlay: dict[str, str]) -> dict[str, str]:
    """A clean environment for a CLI: PATH (node is found on it) and the CLI's own variables, nothing of
    the developer's (no real API keys, no real HOME)."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", **overlay}


# Claude Code: the Anthropic messages API; without NONESSENTIAL_TRAFFIC it resolves telemetry hosts.
# `-p` denies tools that need permission (Write) unless `--permission-mode acceptEdits`; it refuses
# `--dangerously-skip-permissions` as root. `.claude.json` matters to the interactive TUI: onboarding done,
# the API key approved (else it asks), the workdir trusted (else it asks).
def claude_env(home: Path, base_url: str, workdir: Path | None = None) -> dict[str, str]:
    config: dict[str, object] = {
        "hasCompletedOnboarding": True,
        "customApiKeyResponses": {"approved": [API_KEY[-20:]], "rejected": []},
        "projects": {str(workdir): {"hasTrustDialogAccepted": True}} if workdir else {},
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / ".claude.json").write_text(json.dumps(config))
    return {
        "HOME": str(home),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": API_KEY,
        "DISABLE_AUTOUPDATER": "1",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    }


def claude_oneshot_argv(prompt: str, *, edits: bool = False) -> list[str]:
    permission = ["--permission-mode", "acceptEdits"] if edits else []
    return [str(NPM_BIN / "claude"), "-p", "--output-format", "json", *permission, "--", prompt]


def claude_reply(stdout: str) -> str:
    """The `result` of `--output-format json` (its `subtype` is "success" when the turn went through)."""
    return string(obj(json.loads(stdout)).get("result"))


def claude_write(workdir: Path, name: str, content: str) -> Turn:
    return ToolCall(
        "Write", {"file_path": str(workdir / name), "content": content}
    )  # Write wants a full path


# Codex: the responses API through a provider of ours in $CODEX_HOME/config.toml (no env_key: no auth
# header). Plugins, apps and the update check would reach github.com; analytics is off for good measure.
# `exec` in an untrusted folder is read-only (a patch is rejected, and it still exits 0); a trusted one, or
# `--sandbox workspace-write`, may write. Under /tmp it warns that it makes no helper-binary aliases there.
def codex_env(home: Path, base_url: str, workdir: Path | None = None) -> dict[str, str]:
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    trusted = f'[projects.{json.dumps(str(workdir))}]\ntrust_level = "trusted"\n' if workdir else ""
    (codex_home / "config.toml").write_text(
        f'model = "{CODEX_MODEL}"\n'
        'model_provider = "agentsup"\n'
        "check_for_update_on_startup = false\n"
        "[model_providers.agentsup]\n"
        'name = "agentsup test LLM"\n'
        f"base_url = {json.dumps(base_url + '/v1')}\n"
        'wire_api = "responses"\n'
        "[features]\nplugins = false\nremote_plugin = false\napps = false\n"
        "[analytics]\nenabled = false\n"
        # The TUI offers this model's successor in a dialog at start unless the user has seen the offer.
        f'[notice.model_migrations]\n"{CODEX_MODEL}" = "gpt-6-sol"\n' + trusted
    )
    return {"HOME": str(home), "CODEX_HOME": str(codex_home)}


def codex_oneshot_argv(prompt: str, *, edits: bool = False) -> list[str]:
    sandbox = ["--sandbox", "workspace-write"] if edits else []
    return [str(NPM_BIN / "codex"), "exec", "--skip-git-repo-check", "--json", *sandbox, "--", prompt]


def codex_reply(stdout: str) -> str:
    """The last agent message in `exec --json`'s event lines (a good turn ends with `turn.completed`)."""
    said = [
        string(obj(event.get("item")).get("text"))
        for event in events_of(stdout)
        if event.get("type") == "item.completed" and obj(event.get("item")).get("type") == "agent_message"
    ]
    return said[-1] if said else ""


def events_of(stdout: str) -> list[dict[str, object]]:
    """The JSON objects of a JSON-lines stdout (Codex's `exec --json`), other lines skipped."""
    return [dict(obj(json.loads(line))) for line in stdout.splitlines() if line.startswith("{")]


def codex_write(workdir: Path, name: str, content: str) -> Turn:
    del workdir  # apply_patch paths are relative to the turn's working directory
    lines = "".join(f"+{line}\n" for line in content.splitlines())
    return ToolCall(
        "apply_patch", {"input": f"*** Begin Patch\n*** Add File: {name}\n{lines}*** End Patch\n"}
    )


# Gemini CLI: the Gemini API. Without an auth type in settings it exits 41; in an untrusted folder it exits 55
# (and drops --approval-mode to default). Usage statistics would go to play.googleapis.com. Its model router
# first asks a small model for JSON (the server answers JSON-mode requests from their schema). `-p` offers
# only read-only tools unless `--approval-mode auto_edit` (write_file, replace) or yolo.
def gemini_env(home: Path, base_url: str, workdir: Path | None = None) -> dict[str, str]:
    del workdir  # trusted through GEMINI_CLI_TRUST_WORKSPACE
    settings = {
        "security": {"auth": {"selectedType": "gemini-api-key"}},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {"enableAutoUpdate": False, "enableAutoUpdateNotification": False},
        "telemetry": {"enabled": False},
    }
    (home / ".gemini").mkdir(parents=True, exist_ok=True)
    (home / ".gemini" / "settings.json").write_text(json.dumps(settings))
    return {
        "HOME": str(home),
        "GOOGLE_GEMINI_BASE_URL": base_url,
        "GEMINI_API_KEY": API_KEY,
        "GEMINI_CLI_TRUST_WORKSPACE": "true",
    }


def gemini_oneshot_argv(prompt: str, *, edits: bool = False) -> list[str]:
    approval = ["--approval-mode", "auto_edit"] if edits else []
    return [str(NPM_BIN / "gemini"), f"--prompt={prompt}", "--output-format", "json", *approval]


def gemini_reply(stdout: str) -> str:
    return string(obj(json.loads(stdout)).get("response"))


def gemini_write(workdir: Path, name: str, content: str) -> Turn:
    del workdir  # relative paths resolve against the workspace
    return ToolCall("write_file", {"file_path": name, "content": content})


# aider: OpenAI chat completions through litellm. It fetches model prices at start unless the model is in
# a metadata file (~/.aider.model.metadata.json is read by default) and litellm keeps to its local copy.
# It edits through its reply text ("whole" format: a file name, then the file in a fence), not tool calls;
# it exits 0 even when the API is unreachable.
def aider_env(home: Path, base_url: str, workdir: Path | None = None) -> dict[str, str]:
    del workdir
    metadata = {
        f"openai/{AIDER_MODEL}": {
            "max_tokens": 8192,
            "max_input_tokens": 128000,
            "max_output_tokens": 8192,
            "input_cost_per_token": 0,
            "output_cost_per_token": 0,
            "litellm_provider": "openai",
            "mode": "chat",
        }
    }
    home.mkdir(parents=True, exist_ok=True)
    (home / ".aider.model.metadata.json").write_text(json.dumps(metadata))
    return {
        "HOME": str(home),
        "OPENAI_API_BASE": base_url + "/v1",
        "OPENAI_API_KEY": API_KEY,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        # History files go to the workdir unless told otherwise; keep them out of the agent's diff.
        "AIDER_CHAT_HISTORY_FILE": str(home / ".aider.chat.history.md"),
        "AIDER_INPUT_HISTORY_FILE": str(home / ".aider.input.history"),
    }


def aider_oneshot_argv(prompt: str, *, edits: bool = False) -> list[str]:
    del edits  # --yes-always answers its "create file?" and "edit?" questions either way
    return [
        str(CLI_DIR / "aider" / "bin" / "aider"),
        f"--model=openai/{AIDER_MODEL}",
        "--edit-format=whole",
        "--no-check-update",
        "--analytics-disable",
        "--no-show-model-warnings",
        "--no-git",
        "--no-pretty",
        "--yes-always",
        f"--message={prompt}",
    ]


def aider_reply(stdout: str) -> str:
    """aider prints the reply among its banner and token counts; there is nothing more precise to take."""
    return stdout


def aider_write(workdir: Path, name: str, content: str) -> Turn:
    del workdir
    body = content if content.endswith("\n") else content + "\n"
    return Text(f"{name}\n```\n{body}```\n")


@dataclass(frozen=True)
class AgentCLI:
    """One CLI, as the test suite runs it; a one-shot run is `oneshot_argv` in `workdir` with `env`."""

    name: str
    package: str  # as .ci/install-clis installs it
    executable: Path
    env: Callable[[Path, str, Path | None], dict[str, str]]  # (home, server URL, workdir) -> variables
    oneshot_argv: Callable[[str, bool], list[str]]  # (prompt, may edit files) -> argv
    reply: Callable[[str], str]  # one-shot stdout -> the assistant's answer
    write: Callable[[Path, str, str], Turn]  # (workdir, file name, content) -> the turn that writes it

    def missing(self) -> str | None:
        """Why this CLI cannot run here, or None when it can."""
        if not os.access(self.executable, os.X_OK):
            return f"{self.name} ({self.package}) is not installed at {self.executable}: run .ci/install-clis"
        return None


CLAUDE: Final = AgentCLI(
    "claude",
    "npm @anthropic-ai/claude-code",
    NPM_BIN / "claude",
    claude_env,
    lambda prompt, edits: claude_oneshot_argv(prompt, edits=edits),
    claude_reply,
    claude_write,
)
CODEX: Final = AgentCLI(
    "codex",
    "npm @openai/codex",
    NPM_BIN / "codex",
    codex_env,
    lambda prompt, edits: codex_oneshot_argv(prompt, edits=edits),
    codex_reply,
    codex_write,
)
GEMINI: Final = AgentCLI(
    "gemini",
    "npm @google/gemini-cli",
    NPM_BIN / "gemini",
    gemini_env,
    lambda prompt, edits: gemini_oneshot_argv(prompt, edits=edits),
    gemini_reply,
    gemini_write,
)
AIDER: Final = AgentCLI(
    "aider",
    "PyPI aider-chat",
    CLI_DIR / "aider" / "bin" / "aider",
    aider_env,
    lambda prompt, edits: aider_oneshot_argv(prompt, edits=edits),
    aider_reply,
    aider_write,
)
ALL: Final = (CLAUDE, CODEX, GEMINI, AIDER)
