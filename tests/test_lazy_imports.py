"""The CLI and the engine never import Textual: its import alone costs 0.2-0.4 s (issue 4)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize("module", ["agentsup.cli", "agentsup.supervisor.process"])
def test_module_does_not_import_textual(module: str) -> None:
    code = f"import sys, {module}; print('textual' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


@pytest.mark.parametrize("heavy", ["agentsup.supervisor.engine", "agentsup.agents.aggregate", "asyncio"])
def test_the_cli_does_not_import_the_engine(heavy: str) -> None:
    """Every agentsup command pays for what agentsup.cli imports; the engine (0.07 s with asyncio) runs in a
    process of its own, and the aggregate code only in the command that needs it (issue 7)."""
    code = f"import sys, agentsup.cli; print({heavy!r} in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_a_tmux_command_run_as_a_process_imports_no_tmux_library(tmp_path: Path) -> None:
    """Commands before the engine's control-mode client exists (start, status, attach) run tmux as a
    process; libtmux's import alone cost every agentsup command 0.05 s (issue 7)."""
    code = (
        "import sys\n"
        "from agentsup.sessions.tmux import TmuxBackend\n"
        "assert not TmuxBackend('agentsup-lazy-imports').has_session('nothing')\n"
        "print('libtmux' in sys.modules)"
    )
    env = {**os.environ, "TMUX_TMPDIR": str(tmp_path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("module", ["agentsup.cli", "agentsup.supervisor.process"])
def test_a_plan_naming_only_built_in_presets_reads_no_entry_points(module: str, tmp_path: Path) -> None:
    """Looking for plugin presets imports importlib.metadata and email (0.015 s) and reads every installed
    package's entry points: only a preset name agentsup does not know needs it (issue 7)."""
    plan = tmp_path / "plan.toml"
    agents = '[agents.a]\ncmd = "true"\n[agents.b]\npreset = "shell"\ncmd = "true"\n'
    plan.write_text(f'[run]\nname = "p"\n{agents}')
    code = (
        f"import sys, {module}\n"
        "from pathlib import Path\n"
        "from agentsup.plan import load_plan\n"
        f"load_plan(Path({str(plan)!r}))\n"
        "print('importlib.metadata' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
