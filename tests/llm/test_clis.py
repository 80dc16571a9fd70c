"""Each real agent CLI runs one-shot turns against the scripted LLM server, offline, as a plain subprocess.

A CLI that .ci/install-clis could not install is skipped with the reason (pytest -ra prints it).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.llm.clis import AIDER, ALL, AgentCLI, base_env
from tests.llm.script import Script, Text
from tests.llm.server import LLMServer

REPLY = "Scripted words, exactly as the server sent them."
DONE = "The file is written."


@pytest.fixture(params=ALL, ids=lambda cli: cli.name)
def cli(request: pytest.FixtureRequest) -> AgentCLI:
    agent: AgentCLI = request.param
    reason = agent.missing()
    if reason is not None:
        pytest.skip(reason)
    return agent


def run_oneshot(
    cli: AgentCLI, tmp_path: Path, llm: LLMServer, prompt: str, *, edits: bool = False
) -> subprocess.CompletedProcess[str]:
    home, work = tmp_path / "home", tmp_path / "work"
    work.mkdir(exist_ok=True)
    return subprocess.run(
        cli.oneshot_argv(prompt, edits),
        cwd=work,
        env=base_env(cli.env(home, llm.url, work)),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def explain(result: subprocess.CompletedProcess[str], llm: LLMServer) -> str:
    seen = "\n".join(f"  {r.method} {r.path} -> {r.status}" for r in llm.requests) or "  none"
    return (
        f"exit {result.returncode}\n--- stdout\n{result.stdout[-3000:]}\n--- stderr\n{result.stderr[-3000:]}"
        f"\n--- requests\n{seen}"
    )


def assert_served(llm: LLMServer, prompt: str, result: subprocess.CompletedProcess[str]) -> None:
    assert any(r.asks(prompt) for r in llm.requests), "no model call carried the prompt\n" + explain(
        result, llm
    )
    unknown = [f"{r.method} {r.path}" for r in llm.requests if r.status != 200]
    assert not unknown, f"the CLI called what the server does not serve: {unknown}\n" + explain(result, llm)


def test_oneshot_turn_prints_the_scripted_reply(cli: AgentCLI, tmp_path: Path, llm: LLMServer) -> None:
    llm.script = Script([Text(REPLY)])
    prompt = f"Say the scripted words ({cli.name})."
    result = run_oneshot(cli, tmp_path, llm, prompt)
    assert result.returncode == 0, explain(result, llm)
    assert REPLY in cli.reply(result.stdout), explain(result, llm)
    assert_served(llm, prompt, result)


def test_oneshot_turn_writes_a_file_through_its_tool(cli: AgentCLI, tmp_path: Path, llm: LLMServer) -> None:
    work = tmp_path / "work"
    llm.script = Script([cli.write(work, "hello.txt", "hi there\n"), Text(DONE)])
    prompt = f"Write hello.txt ({cli.name})."
    result = run_oneshot(cli, tmp_path, llm, prompt, edits=True)
    assert result.returncode == 0, explain(result, llm)
    assert (work / "hello.txt").read_text() == "hi there\n", explain(result, llm)
    if cli is not AIDER:  # aider's edit is its reply: it has no turn after the tool
        assert DONE in cli.reply(result.stdout), explain(result, llm)
    assert_served(llm, prompt, result)
