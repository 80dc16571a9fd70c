"""Agent presets: pure translators from a plan's agent to what its pane runs. No tmux calls here."""

from agentsup.agents.aggregate import AggregatePreset, run_aggregate
from agentsup.agents.base import Launch, Preset
from agentsup.agents.registry import preset_for
from agentsup.agents.shell import ShellPreset

__all__ = ["AggregatePreset", "Launch", "Preset", "ShellPreset", "preset_for", "run_aggregate"]
