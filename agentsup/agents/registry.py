"""Which preset launches an agent."""

from __future__ import annotations

from agentsup.agents.aggregate import AggregatePreset
from agentsup.agents.base import Preset
from agentsup.agents.shell import ShellPreset
from agentsup.plan import AgentSpec


def preset_for(spec: AgentSpec) -> Preset:
    """The preset that launches ``spec``: the aggregate preset for an agent with ``aggregate`` set, else
    the shell preset."""
    if spec.aggregate is not None:
        return AggregatePreset()
    return ShellPreset()
