from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agentsup, isolated_env, wait_until


@pytest.fixture
def agentsup(tmp_path: Path) -> Iterator[Agentsup]:
    socket = f"agentsup-test-{uuid.uuid4().hex[:12]}"
    home = tmp_path / "home"
    home.mkdir()
    state = tmp_path / "state"
    env = isolated_env(home, state, socket)
    tool = Agentsup(env, state, socket)
    yield tool
    subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True, check=False)
    # An engine is the command of its tmux window: with the server gone it must be gone too.
    wait_until(lambda: not tool.engine_pids(), timeout=15, message="an engine outlived its tmux server")
