"""Which preset launches an agent."""

from __future__ import annotations

from agentsup.agents.base import Preset
from agentsup.agents.shell import ShellPreset
from agentsup.plan import AgentSpec


def preset_for(spec: AgentSpec) -> Preset:
    """The preset that launches ``spec``; only the shell preset exists so far."""
    del spec
    return ShellPreset()
