"""Reading the ``exit.json`` the wrapper writes when an agent ends."""

from __future__ import annotations

import json
from pathlib import Path

from agentsup.sessions.backend import BackendError, ExitRecord


def _number(data: dict[str, object], key: str) -> float:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{key!r} is {value!r}, not a number")
    return float(value)


def _integer(data: dict[str, object], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{key!r} is {value!r}, not an integer")
    return value


def read_exit_file(path: Path) -> ExitRecord | None:
    """The record in ``path``; None when the agent has not ended yet (no file).

    The wrapper renames a complete temp file onto ``path``, so a file that exists is whole: one that
    does not parse is corrupt, and BackendError says which.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise BackendError(f"cannot read exit file {path}: {exc}") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BackendError(f"corrupt exit file {path}: {exc}; content: {text[:200]!r}") from exc
    if not isinstance(data, dict):
        raise BackendError(f"corrupt exit file {path}: not a JSON object; content: {text[:200]!r}")
    try:
        return ExitRecord(
            code=_integer(data, "code"),
            signal=None if data.get("signal") is None else _integer(data, "signal"),
            started_at=_number(data, "started_at"),
            ended_at=_number(data, "ended_at"),
        )
    except TypeError as exc:
        raise BackendError(f"corrupt exit file {path}: {exc}; content: {text[:200]!r}") from exc
