"""Reset times as the CLIs print them, read into unix times after 'now'."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agentsup.supervisor.resettime import reset_at

NOW = datetime(2026, 11, 24, 1, 30, 0, tzinfo=UTC).timestamp()


def utc(day: int, hour: int, minute: int = 0) -> float:
    return datetime(2026, 11, day, hour, minute, tzinfo=UTC).timestamp()


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2:03 AM UTC", utc(24, 2, 3)),  # Claude Code's banner (tests/fixtures/screens/claude)
        ("resets at 2:03 AM UTC.", utc(24, 2, 3)),
        ("1:26 AM UTC", utc(25, 1, 26)),  # already past today: tomorrow
        ("3pm", utc(24, 15)),
        ("12am", utc(25, 0)),
        ("12:30 PM", utc(24, 12, 30)),
        ("14:30", utc(24, 14, 30)),
        ("3pm (Europe/Paris)", utc(24, 14)),
        ("in 5 minutes", NOW + 300),
        ("in 30s", NOW + 30),
        ("in 2 hours", NOW + 7200),
        ("2026-11-24T03:00:00Z", utc(24, 3)),
        ("until 2026-11-24T04:15:00+00:00.", utc(24, 4, 15)),
    ],
)
def test_reset_times_are_read(text: str, expected: float) -> None:
    assert reset_at(text, NOW) == expected


@pytest.mark.parametrize(
    "text", [None, "", "soon", "try again later", "429", "13pm", "25:00", "3pm (Mars/Base)"]
)
def test_text_without_a_time_gives_none(text: str | None) -> None:
    assert reset_at(text, NOW) is None
