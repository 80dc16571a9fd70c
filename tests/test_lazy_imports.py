"""The CLI and the engine never import Textual: its import alone costs 0.2-0.4 s (issue 4)."""

from __future__ import annotations

import subprocess
import sys

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


def test_the_engine_imports_libtmux_only_to_run_tmux_as_a_process() -> None:
    """The engine's tmux commands go through its control-mode client; libtmux (0.04 s to import) is only
    for the commands run as a process."""
    code = "import sys, agentsup.supervisor.process; print('libtmux' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
