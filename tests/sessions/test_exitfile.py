"""read_exit_file: absent, valid and corrupt exit files."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.sessions import BackendError, ExitRecord, read_exit_file


def test_absent_file_means_not_ended(tmp_path: Path) -> None:
    assert read_exit_file(tmp_path / "exit.json") is None


def test_valid_record(tmp_path: Path) -> None:
    path = tmp_path / "exit.json"
    path.write_text('{"code": 143, "signal": 15, "started_at": 1700000000.5, "ended_at": 1700000001}\n')
    assert read_exit_file(path) == ExitRecord(
        code=143, signal=15, started_at=1700000000.5, ended_at=1700000001.0
    )


def test_null_signal(tmp_path: Path) -> None:
    path = tmp_path / "exit.json"
    path.write_text('{"code": 0, "signal": null, "started_at": 1.0, "ended_at": 2.0}')
    record = read_exit_file(path)
    assert record is not None
    assert record.signal is None


@pytest.mark.parametrize(
    "content",
    [
        "",
        "{",
        "[]",
        '{"code": "0", "signal": null, "started_at": 1, "ended_at": 2}',
        '{"code": true, "signal": null, "started_at": 1, "ended_at": 2}',
        '{"code": 0, "signal": 1.5, "started_at": 1, "ended_at": 2}',
        '{"code": 0, "signal": null, "ended_at": 2}',
        '{"code": 0, "signal": null, "started_at": "N", "ended_at": 2}',
    ],
)
def test_corrupt_file_names_its_path(tmp_path: Path, content: str) -> None:
    path = tmp_path / "exit.json"
    path.write_text(content)
    with pytest.raises(BackendError, match="corrupt exit file") as info:
        read_exit_file(path)
    assert str(path) in str(info.value)


def test_undecodable_file(tmp_path: Path) -> None:
    path = tmp_path / "exit.json"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(BackendError, match=str(path)):
        read_exit_file(path)
