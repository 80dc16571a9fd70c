"""An agent's files before it starts: output directory, upstream inputs, context and environment."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from agentsup.supervisor.events import JSON
from agentsup.supervisor.rundir import RunDir


@dataclass(frozen=True)
class UpstreamFacts:
    """What a dependent learns about one upstream (the chain's context enrichment)."""

    name: str
    state: str
    exit_code: int | None
    duration: float | None
    out_dir: Path

    def to_json(self) -> dict[str, JSON]:
        files = sorted(str(p.relative_to(self.out_dir)) for p in self.out_dir.rglob("*") if p.is_file())
        return {
            "name": self.name,
            "state": self.state,
            "exit_code": self.exit_code,
            "duration": self.duration,
            "out_dir": str(self.out_dir),
            "files": list[JSON](files),
        }


def agent_environment(run: RunDir, agent: str, attempt: int) -> dict[str, str]:
    """The ``AGENTSUP_*`` variables every agent gets (ARCHITECTURE §4)."""
    return {
        "AGENTSUP_RUN": run.run_id,
        "AGENTSUP_AGENT": agent,
        "AGENTSUP_ATTEMPT": str(attempt),
        "AGENTSUP_OUT": str(run.out_dir(agent)),
        "AGENTSUP_IN": str(run.in_dir(agent)),
        "AGENTSUP_CONTEXT": str(run.context_file(agent)),
        "AGENTSUP_DONE": str(run.done_file(agent, attempt)),
    }


def prepare_agent_files(
    run: RunDir, agent: str, attempt: int, upstreams: list[UpstreamFacts], extra: Mapping[str, JSON]
) -> None:
    """Create the agent's directories, link its upstreams' outputs into ``in/`` and write ``context.json``.

    Blocking file I/O: call it off the event loop. Idempotent, so a retried attempt rewrites the context.
    """
    run.attempt_dir(agent, attempt).mkdir(parents=True, exist_ok=True)
    run.out_dir(agent).mkdir(parents=True, exist_ok=True)
    in_dir = run.in_dir(agent)
    in_dir.mkdir(exist_ok=True)
    for up in upstreams:
        link = in_dir / up.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(up.out_dir, target_is_directory=True)
    context: dict[str, JSON] = {
        "run": run.run_id,
        "agent": agent,
        "attempt": attempt,
        "upstreams": {up.name: up.to_json() for up in upstreams},
        **extra,
    }
    path = run.context_file(agent)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(context, indent=2) + "\n")
    tmp.replace(path)
