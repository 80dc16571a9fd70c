"""The examples the README and docs point at run offline, in seconds, and succeed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.harness import Agentsup

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

EXAMPLES = Path(__file__).resolve().parent.parent.parent / "examples"


def test_chain_example(agentsup: Agentsup) -> None:
    agentsup.run("validate", str(EXAMPLES / "chain.toml"))
    r = agentsup.run("start", str(EXAMPLES / "chain.toml"), "--no-tui", "--run-id", "chain")
    assert r.stdout.splitlines()[-1] == "run chain succeeded: 3 succeeded"
    report = (agentsup.run_dir("chain") / "agents/report/out/report.txt").read_text()
    assert report == "report: 3 loud words from shout\n"


def test_fanout_example(agentsup: Agentsup) -> None:
    r = agentsup.run("start", str(EXAMPLES / "fanout.toml"), "--no-tui", "--run-id", "fan")
    assert r.stdout.splitlines()[-1] == "run fan succeeded: 7 succeeded"
    summary = (agentsup.run_dir("fan") / "agents/summary/out/summary.txt").read_text().splitlines()
    assert sorted(summary) == sorted(
        [
            "lint: clean",
            "types: clean",
            "unit: 42 passed",
            "docs: 1 warning",
            "deps: up to date",
            "size: 1.2 MB",
        ]
    )
    alerts = [e for e in agentsup.events("fan") if e.kind.value == "alert"]
    assert [(a.agent, a.data["severity"]) for a in alerts] == [("docs", "warning")]
