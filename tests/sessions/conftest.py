"""The backend's tests run twice: with a tmux process per command, and through a control-mode client."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.tmuxenv import TmuxEnv, isolated_tmux


@pytest.fixture(params=["process", "control"])
def tmux_env(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TmuxEnv]:
    """A real tmux server on a socket of its own, killed after the test; ``start_session`` backends use
    the way of sending commands the test is parametrised with."""
    with isolated_tmux(tmp_path, monkeypatch, via=request.param) as env:
        yield env
