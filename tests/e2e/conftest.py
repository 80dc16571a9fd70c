from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.harness import Agentsup, isolated_env


@pytest.fixture
def agentsup(tmp_path: Path) -> Iterator[Agentsup]:
    socket = f"agentsup-test-{uuid.uuid4().hex[:12]}"
    home = tmp_path / "home"
    home.mkdir()
    state = tmp_path / "state"
    env = isolated_env(home, state, socket)
    yield Agentsup(env, state, socket)
    subprocess.run(["tmux", "-L", socket, "kill-server"], env=env, capture_output=True, check=False)
