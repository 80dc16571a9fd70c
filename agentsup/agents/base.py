"""The preset contract: what the host guarantees and what a preset must do.

The host (the supervisor) guarantees that ``launch`` gets a validated AgentSpec and the environment it will
add (``AGENTSUP_*``). A preset must be pure: it returns data describing the launch and never starts
processes, touches tmux or writes files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from agentsup.plan import AgentSpec


@dataclass(frozen=True)
class Launch:
    """The program an agent's pane runs: argv (never a shell string) plus environment to add."""

    argv: tuple[str, ...]
    env: Mapping[str, str]


class Preset(Protocol):
    name: str

    def launch(self, spec: AgentSpec, env: Mapping[str, str]) -> Launch:
        """Translate ``spec`` into the argv and environment its pane runs."""
        ...
