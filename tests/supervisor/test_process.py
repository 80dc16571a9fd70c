"""The engine process's own set-up (agentsup/supervisor/process.py)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_a_thread_that_dies_is_logged_where_the_engine_logs(tmp_path: Path) -> None:
    """watchdog's threads and the pools' workers run in the engine; by default a thread's exception goes
    to stderr, the engine's tmux window, where nobody reads it."""
    logfile = tmp_path / "engine.log"
    code = (
        "import logging, threading\n"
        "from agentsup.supervisor.process import log_thread_deaths\n"
        f"logging.basicConfig(filename={str(logfile)!r}, level=logging.INFO)\n"
        "log_thread_deaths()\n"
        "def boom():\n"
        "    raise KeyError('watch descriptor 7')\n"
        "t = threading.Thread(target=boom, name='inotify-reader')\n"
        "t.start(); t.join()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    text = logfile.read_text()
    assert "inotify-reader died of an exception" in text
    assert "KeyError: 'watch descriptor 7'" in text
