"""An agent's files before it starts: output directory, upstream inputs, context, rendered command.

The context (``AGENTSUP_CONTEXT``) and the template values (``{{ agents.X.output }}``…) come from one
scope built here, so what an agent reads from its context file is what its command line was given.
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from agentsup.plan.model import AgentSpec
from agentsup.plan.templates import Quoting, TemplateError, references, render, render_argv
from agentsup.supervisor.events import JSON
from agentsup.supervisor.output import strip_ansi
from agentsup.supervisor.rundir import RunDir, agent_fs_name

TAIL_BYTES = 64 * 1024
TAIL_LINES = 50
META_MAX = 1 << 20


@dataclass(frozen=True)
class UpstreamFacts:
    """What the engine knows of one upstream; the rest is read from its files."""

    name: str
    state: str
    exit_code: int | None
    duration: float | None
    out_dir: Path
    log: Path | None  # its last attempt's output log


def _json_object(path: Path) -> dict[str, JSON] | None:
    try:
        if path.stat().st_size > META_MAX:
            return None
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def output_tail(log: Path | None, lines: int = TAIL_LINES) -> str:
    """The last ``lines`` lines of an output log, ANSI escapes removed."""
    if log is None:
        return ""
    try:
        with log.open("rb") as f:
            size = f.seek(0, 2)
            f.seek(max(0, size - TAIL_BYTES))
            data = f.read()
    except OSError:
        return ""
    text = strip_ansi(data).decode("utf-8", "replace").replace("\r\n", "\n")
    return "\n".join(text.rstrip("\n").split("\n")[-lines:])


def settled_tail(log: Path | None, quiet: float = 0.05, limit: float = 1.0) -> str:
    """``output_tail`` once the log has stopped growing for ``quiet`` seconds (at most ``limit``).

    An exit record can land before tmux's pipe-pane has flushed the agent's last bytes into the log.
    Blocking: call it off the event loop.
    """
    deadline = time.monotonic() + limit
    size = -1
    while log is not None and time.monotonic() < deadline:
        try:
            now = log.stat().st_size
        except OSError:
            break
        if now == size:
            break
        size = now
        time.sleep(quiet)
    return output_tail(log)


def upstream_json(up: UpstreamFacts) -> dict[str, JSON]:
    """The chain's context enrichment for one upstream. Blocking file I/O."""
    files: list[JSON] = []
    if up.out_dir.is_dir():
        files = [str(p.relative_to(up.out_dir)) for p in sorted(up.out_dir.rglob("*")) if p.is_file()]
    return {
        "name": up.name,
        "state": up.state,
        "exit_code": up.exit_code,
        "duration": up.duration,
        "out": str(up.out_dir),
        "out_dir": str(up.out_dir),
        "files": files,
        "output": output_tail(up.log),
        "meta": _json_object(up.out_dir / "meta.json"),
        "result": _json_object(up.out_dir / "result.json"),
    }


def named_agents(*templates: str | None) -> list[str]:
    """The agents ``{{ agents.NAME… }}`` placeholders in ``templates`` name, in order of appearance."""
    names: list[str] = []
    for template in templates:
        if template is None:
            continue
        try:
            paths = references(template)
        except TemplateError:
            continue  # the loader reported it
        names += [p[1] for p in paths if len(p) > 1 and p[0] == "agents" and p[1] not in names]
    return names


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
        "AGENTSUP_INBOX": str(run.inbox_dir),
    }


def lookup_in(scope: Mapping[str, JSON]) -> _Lookup:
    return _Lookup(scope)


class _Lookup:
    """Resolves a template path in the scope; KeyError names what is missing."""

    def __init__(self, scope: Mapping[str, JSON]) -> None:
        self.scope = scope

    def __call__(self, path: tuple[str, ...]) -> str:
        node: JSON = dict(self.scope)
        if path[0] == "agents":  # context.json calls them upstreams
            node = {"agents": self.scope.get("upstreams")}
        for i, key in enumerate(path):
            if not isinstance(node, dict) or key not in node:
                raise KeyError(".".join(path[: i + 1]))
            node = node[key]
        if node is None:
            return ""
        return node if isinstance(node, str) else json.dumps(node)


def render_spec(spec: AgentSpec, scope: Mapping[str, JSON]) -> AgentSpec:
    """``spec`` with its templates filled in: values shell-quoted in ``cmd``, one element each in ``argv``."""
    lookup = lookup_in(scope)
    return dataclasses.replace(
        spec,
        cmd=None if spec.cmd is None else render(spec.cmd, lookup, Quoting.SHELL),
        argv=None if spec.argv is None else render_argv(spec.argv, lookup),
        prompt=None if spec.prompt is None else render(spec.prompt, lookup, Quoting.NONE),
    )


def make_agent_dirs(run: RunDir, agents: Iterable[str], attempt: int = 1) -> None:
    """Create the agents' directories (its own, ``out/``, ``in/``, the attempt's) ahead of their start.

    ``prepare_agent`` creates them too; done earlier, off the path from an upstream's exit to the next
    start, it leaves that path one cheap existence check per directory (a new directory costs 0.2 to 0.6 ms
    on some file systems, five of them per agent). Blocking: call it off the event loop.
    """
    for agent in agents:
        run.attempt_dir(agent, attempt).mkdir(parents=True, exist_ok=True)
        run.out_dir(agent).mkdir(exist_ok=True)
        run.in_dir(agent).mkdir(exist_ok=True)


def prepare_agent(
    run: RunDir,
    spec: AgentSpec,
    attempt: int,
    upstreams: list[UpstreamFacts],
    extra: Mapping[str, JSON],
) -> AgentSpec:
    """Create the agent's directories, link its upstreams' outputs into ``in/``, write ``context.json``,
    and return ``spec`` rendered against the same scope.

    Blocking file I/O: call it off the event loop. Idempotent, so a retried attempt rewrites the context.
    Raises TemplateError when a template names a value the scope does not have.
    """
    agent = spec.name
    run.attempt_dir(agent, attempt).mkdir(parents=True, exist_ok=True)
    run.out_dir(agent).mkdir(parents=True, exist_ok=True)
    in_dir = run.in_dir(agent)
    in_dir.mkdir(exist_ok=True)
    for up in upstreams:
        link = in_dir / agent_fs_name(up.name)
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(up.out_dir, target_is_directory=True)
    scope: dict[str, JSON] = {
        "agent": agent,
        "attempt": attempt,
        "upstreams": {up.name: upstream_json(up) for up in upstreams},
        **extra,
    }
    # Written in place, not renamed over: nothing reads it before the agent starts (and a crash before the
    # start rewrites it on resume), and on some file systems a rename costs as much as the write.
    run.context_file(agent).write_text(json.dumps(scope, indent=2) + "\n")
    rendered = render_spec(spec, scope)
    if rendered.prompt is not None:
        (run.agent_dir(agent) / "prompt.txt").write_text(rendered.prompt)
    return rendered


__all__ = [
    "TemplateError",
    "UpstreamFacts",
    "agent_environment",
    "make_agent_dirs",
    "named_agents",
    "output_tail",
    "prepare_agent",
    "render_spec",
    "settled_tail",
    "upstream_json",
]
