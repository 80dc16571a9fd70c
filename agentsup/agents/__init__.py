"""Agent presets: pure translators from a plan's agent to what its pane runs. No tmux calls here."""

from agentsup.agents.aggregate import AggregatePreset, run_aggregate
from agentsup.agents.aider import AiderPreset
from agentsup.agents.base import Launch, Preset
from agentsup.agents.claude import ClaudePreset
from agentsup.agents.cli import (
    Approve,
    CLIOptions,
    CLIPreset,
    HookKind,
    HookSetup,
    HookSignal,
    Keys,
    KeyStep,
    Mode,
    Paste,
    Screen,
    ScreenState,
    Settle,
    Verdict,
)
from agentsup.agents.codex import CodexPreset
from agentsup.agents.gemini import GeminiPreset
from agentsup.agents.registry import PresetError, cli_preset, preset_for, preset_named, preset_names
from agentsup.agents.shell import ShellPreset

__all__ = [
    "AggregatePreset",
    "AiderPreset",
    "Approve",
    "CLIOptions",
    "CLIPreset",
    "ClaudePreset",
    "CodexPreset",
    "GeminiPreset",
    "HookKind",
    "HookSetup",
    "HookSignal",
    "KeyStep",
    "Keys",
    "Launch",
    "Mode",
    "Paste",
    "Preset",
    "PresetError",
    "Screen",
    "ScreenState",
    "Settle",
    "ShellPreset",
    "Verdict",
    "cli_preset",
    "preset_for",
    "preset_named",
    "preset_names",
    "run_aggregate",
]
