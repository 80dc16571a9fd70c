"""Shared fixtures: an isolated tmux server per test. tmux is required: without it the run fails."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agentsup, isolated_agentsup
from tests.llm.server import LLMServer
from tests.tmuxenv import TmuxEnv, isolated_tmux


def pytest_configure(config: pytest.Config) -> None:
    if shutil.which("tmux") is None:
        pytest.exit(
            "tmux is required to run agentsup's tests (install tmux >= 3.0, e.g. `apt install tmux`)",
            returncode=3,
        )


@pytest.fixture
def tmux_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TmuxEnv]:
    """A real tmux server on a socket of its own, killed after the test."""
    with isolated_tmux(tmp_path, monkeypatch) as env:
        yield env


@pytest.fixture
def agentsup(tmp_path: Path) -> Iterator[Agentsup]:
    """The installed agentsup command on a tmux server and state directory of this test's own."""
    with isolated_agentsup(tmp_path) as tool:
        yield tool


@pytest.fixture
def llm() -> Iterator[LLMServer]:
    """A scripted LLM server of the test's own on 127.0.0.1 (set ``llm.script`` before a client calls)."""
    with LLMServer() as server:
        yield server
