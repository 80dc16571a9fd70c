from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agentsup, isolated_env, wait_until


@pytest.fixture
def agentsup(tmp_path: Path) -> Iterator[Agentsup]:
    """The installed agentsup on a tmux server and state directory of this test's own."""
    socket = f"agentsup-test-{uuid.uuid4().hex[:12]}"
    home = tmp_path / "home"
    home.mkdir()
    state = tmp_path / "state"
    env = isolated_env(home, state, socket)
    tool = Agentsup(env, state, socket)
    yield tool
    subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True, check=False)
    wait_until(lambda: not tool.engine_pids(), timeout=15, message="an engine outlived its tmux server")
