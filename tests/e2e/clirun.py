"""Shared pieces of the tests that run real agent CLIs as agents (tests/e2e/test_cli_*.py)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import psutil
import pytest

from agentsup.supervisor.events import Event, EventKind
from tests.e2e.harness import Agentsup, wait_until
from tests.llm import clis
from tests.llm.server import LLMServer


def need(cli: clis.AgentCLI) -> None:
    reason = cli.missing()
    if reason is not None:
        pytest.skip(reason)


def toml_table(values: Mapping[str, str]) -> str:
    return "{ " + ", ".join(f"{k} = {json.dumps(v)}" for k, v in values.items()) + " }"


def write_plan(tmp_path: Path, cli: clis.AgentCLI, llm: LLMServer, agent: str, **keys: Any) -> Path:
    """A plan of one agent of ``cli``, run offline against ``llm`` in ``tmp_path/work``; ``keys`` are
    more keys of its table (values as JSON, which TOML reads alike for strings, numbers and arrays)."""
    return write_plan_with(tmp_path, cli, llm, agent, keys)


def write_plan_with(
    tmp_path: Path,
    cli: clis.AgentCLI,
    llm: LLMServer,
    agent: str,
    keys: Mapping[str, Any],
    *,
    run_keys: Mapping[str, Any] | None = None,
    more_env: Mapping[str, str] | None = None,
) -> Path:
    """write_plan, with ``run_keys`` as more keys of ``[run]`` and ``more_env`` added to the CLI's
    environment."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    env = {**cli.env(tmp_path / "cli-home", llm.url, work), **(more_env or {})}
    lines = ["[run]", 'name = "t"', f'workdir = "{work}"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in (run_keys or {}).items()]
    lines += ["", f"[agents.{agent}]", f'preset = "{cli.name}"']
    lines.append(f"program = {json.dumps(str(cli.executable))}")
    lines.append(f"env = {toml_table(env)}")
    lines += [f"{key} = {json.dumps(value)}" for key, value in keys.items()]
    plan = tmp_path / "plan.toml"
    plan.write_text("\n".join(lines) + "\n")
    return plan


def start(tool: Agentsup, plan: Path) -> str:
    out = tool.run("start", str(plan), "--detach").stdout.split()
    assert len(out) == 1, out  # --detach prints the run id
    return out[0]


def agent_state(tool: Agentsup, run_id: str, agent: str) -> dict[str, Any]:
    for rec in tool.status_json(run_id)["agents"]:
        if rec["name"] == agent:
            assert isinstance(rec, dict)
            return rec
    raise AssertionError(f"no agent {agent} in {run_id}")


def explain(tool: Agentsup, run_id: str, agent: str, llm: LLMServer) -> str:
    events = "\n".join(f"  {e.kind} {e.agent} {e.source} {dict(e.data)}" for e in tool.events(run_id))
    requests = "\n".join(f"  {r.method} {r.path} -> {r.status}" for r in llm.requests) or "  none"
    try:
        screen = tool.tmux("capture-pane", "-p", "-t", f"{run_id}:{agent}")
    except AssertionError as exc:  # the run ended, and its tmux server with it
        screen = str(exc)
    log = tool.logs(run_id, agent)[-3000:]
    return f"--- events\n{events}\n--- requests\n{requests}\n--- log\n{log}\n--- screen\n{screen}"


def wait_for(predicate: Callable[[], object], timeout: float, why: Callable[[], str]) -> None:
    """wait_until, with the failure explained only when it fails."""
    try:
        wait_until(predicate, timeout=timeout)
    except AssertionError:
        raise AssertionError(f"not met within {timeout}s\n{why()}") from None


def no_process_left(run_dir: Path) -> bool:
    marker = str(run_dir)
    for proc in psutil.process_iter(["environ"]):
        try:
            environ = proc.info["environ"] or {}
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        if any(marker in v for v in environ.values()) and "agentsup.supervisor" not in " ".join(
            proc.cmdline()
        ):
            return False
    return True


def states_of(tool: Agentsup, run_id: str, agent: str) -> list[Event]:
    """The agent's state changes, in order."""
    return [e for e in tool.events(run_id) if e.kind is EventKind.AGENT_STATE and e.agent == agent]


def events_of(tool: Agentsup, run_id: str, kind: EventKind, agent: str) -> list[Event]:
    """The agent's events of one kind, in order."""
    return [e for e in tool.events(run_id) if e.kind is kind and e.agent == agent]


def processes_with(env_value: str, in_cmdline: str = "") -> list[psutil.Process]:
    """Live processes with ``env_value`` in one of their environment values and ``in_cmdline`` in their
    command line (e.g. a CLI's detached daemon, found by the private home the test gave it)."""
    found = []
    for proc in psutil.process_iter(["environ", "cmdline"]):
        environ = proc.info["environ"] or {}
        cmdline = " ".join(proc.info["cmdline"] or [])
        if any(env_value in v for v in environ.values()) and in_cmdline in cmdline:
            found.append(proc)
    return found


SETTLED = frozenset({"succeeded", "failed", "retrying", "rate_limited", "skipped", "stopped", "lost"})


def wait_settled(tool: Agentsup, run_id: str, agent: str, timeout: float, llm: LLMServer) -> str:
    """Wait until the agent has an outcome (or is parked), and return its state: a test then fails at once
    on the wrong outcome instead of waiting out its timeout."""
    states: list[str] = []

    def settled() -> bool:
        states.append(str(agent_state(tool, run_id, agent)["state"]))
        return states[-1] in SETTLED

    wait_for(settled, timeout, lambda: explain(tool, run_id, agent, llm))
    return states[-1]


def oneshot_verdict(
    tool: Agentsup,
    tmp_path: Path,
    llm: LLMServer,
    cli: clis.AgentCLI,
    expected: str,
    *,
    prompt: str = "What is the answer?",
    timeout: float = 90,
    **keys: Any,
) -> Event:
    """Run one agent of ``cli`` one-shot against ``llm`` (its script set by the caller); check that it ends
    ``expected`` ("succeeded" or "failed") by its preset's verdict, with the prompt delivered; return its
    last state change (the verdict's reason is in its data)."""
    need(cli)
    plan = write_plan(tmp_path, cli, llm, "asker", prompt=prompt, mode="oneshot", **keys)
    run_id = start(tool, plan)

    def why() -> str:
        return explain(tool, run_id, "asker", llm)

    assert wait_settled(tool, run_id, "asker", timeout, llm) == expected, why()
    assert any(r.asks(prompt) for r in llm.requests), why()
    last = states_of(tool, run_id, "asker")[-1]
    assert last.source == "verdict", why()
    return last
