"""``writers_gone``: whether any process still has an agent's log open for writing."""

from __future__ import annotations

import subprocess
from pathlib import Path

from agentsup.supervisor.reading import writers_gone


def test_writers_gone_follows_the_processes_that_write_the_file(tmp_path: Path) -> None:
    log = tmp_path / "out.log"
    log.write_text("")
    with log.open("a") as out:
        writer = subprocess.Popen(["sleep", "100"], stdout=out)
    reader = log.open("rb")  # a reader does not count
    try:
        assert writers_gone(log) is False
        writer.kill()
        writer.wait()
        assert writers_gone(log) is True
    finally:
        reader.close()
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_writers_gone_cannot_tell_for_a_missing_file(tmp_path: Path) -> None:
    assert writers_gone(tmp_path / "missing.log") is None
