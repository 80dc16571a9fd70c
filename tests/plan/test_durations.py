"""Durations: every accepted spelling, every rejected one, and formatting that parses back."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentsup.plan import format_duration, parse_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30.0),
        ("10m", 600.0),
        ("1h30m", 5400.0),
        ("500ms", 0.5),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1d2h3m4s5ms", 93784.005),
        ("1.5h", 5400.0),
        ("0.25s", 0.25),
        ("5m500ms", 300.5),
        ("0s", 0.0),
        ("45", 45.0),
        ("2.5", 2.5),
        (12, 12.0),
        (0.5, 0.5),
        (0, 0.0),
    ],
)
def test_parse_duration(text: str | int | float, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", 'invalid duration "": expected a number of seconds or a number with a unit'),
        ("10x", 'invalid duration "10x": expected'),
        ("30m1h", 'invalid duration "30m1h": expected'),
        ("1h1h", 'invalid duration "1h1h": expected'),
        ("h", 'invalid duration "h": expected'),
        ("-5s", 'invalid duration "-5s": expected'),
        ("1 h", 'invalid duration "1 h": expected'),
        (".5s", 'invalid duration ".5s": expected'),
        ("5s\n", 'invalid duration "5s\n": expected'),
        ("9" * 50 + "x", f'invalid duration "{"9" * 37}...": expected'),
        ("9" * 400, f'invalid duration "{"9" * 37}...": too large'),
        ("9" * 400 + "d", f'invalid duration "{"9" * 37}...": too large'),
        (-1, "invalid duration -1: must not be negative"),
        (math.inf, "invalid duration inf: must be finite"),
        (math.nan, "invalid duration nan: must be finite"),
        (True, "expected a duration (a number of seconds or a number with a unit"),
    ],
)
def test_parse_duration_rejects(value: str | int | float, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace(".", r"\.")):
        parse_duration(value)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0s"),
        (0.5, "500ms"),
        (0.0004, "0s"),
        (1, "1s"),
        (2.5, "2.5s"),
        (59.999, "59.999s"),
        (60, "1m"),
        (90, "1m30s"),
        (5400, "1h30m"),
        (7200, "2h"),
        (86400, "1d"),
        (90061.25, "1d1h1m1.25s"),
        (-90, "-1m30s"),
    ],
)
def test_format_duration(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


def test_format_duration_rejects_non_finite() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        format_duration(math.inf)


@given(st.integers(min_value=0, max_value=10**12))
def test_format_then_parse_is_exact_to_the_millisecond(millis: int) -> None:
    assert round(parse_duration(format_duration(millis / 1000)) * 1000) == millis
