"""The shell preset: any command, run as given."""

from __future__ import annotations

from collections.abc import Mapping

from agentsup.agents.base import Launch
from agentsup.plan import AgentSpec


class ShellPreset:
    """``cmd`` runs under ``sh -c`` (its own words, unchanged); ``argv`` runs directly."""

    name = "shell"

    def launch(self, spec: AgentSpec, env: Mapping[str, str]) -> Launch:
        if spec.argv is not None:
            argv = spec.argv
        elif spec.cmd is not None:
            argv = ("sh", "-c", spec.cmd)
        else:  # the loader guarantees one of the two
            raise ValueError(f"agent {spec.name!r} has neither cmd nor argv")
        return Launch(argv=argv, env={**spec.env, **env})
