"""The preset contract: what the host guarantees and what a preset must do.

The host (the supervisor) guarantees that ``launch`` gets a validated AgentSpec and the environment it will
add (``AGENTSUP_*``). A preset must be pure: it returns data describing the launch and never starts
processes, touches tmux or writes files. Agent CLIs (Claude Code, Codex, …) have a richer contract,
``agentsup.agents.cli.CLIPreset``: the same ``Launch``, plus reading their screen, hooks and results.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from types import MappingProxyType
from typing import Protocol

from agentsup.plan import AgentSpec


@dataclass(frozen=True)
class Launch:
    """The program an agent's pane runs: argv (never a shell string) plus environment to add, and the
    run-private files the host writes before it starts: a path relative to the agent's config directory
    (``HookSetup.config_dir``) → the file's text."""

    argv: tuple[str, ...]
    env: Mapping[str, str]
    files: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        for name in self.files:
            path = PurePosixPath(name)
            if path.is_absolute() or not path.parts or ".." in path.parts:
                raise ValueError(
                    f"a launch file must be a relative path inside the config directory: {name!r}"
                )


class Preset(Protocol):
    name: str

    def launch(self, spec: AgentSpec, env: Mapping[str, str]) -> Launch:
        """Translate ``spec`` into the argv and environment its pane runs."""
        ...
