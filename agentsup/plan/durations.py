"""Durations as the plan writes them: ``"30s"``, ``"10m"``, ``"1h30m"``, ``"500ms"``, or bare seconds."""

from __future__ import annotations

import math
import re

# Units from largest to smallest; a duration names each unit at most once, in this order.
UNITS: tuple[tuple[str, int], ...] = (
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1000),
    ("ms", 1),
)

_NUMBER = r"[0-9]+(?:\.[0-9]+)?"

# One pattern for the parser and the JSON Schema: plain groups only, so it is valid in Python and ECMA 262.
DURATION_PATTERN = (
    r"^(?:" + _NUMBER + r"|(?=[0-9])" + "".join(f"(?:({_NUMBER}){u})?" for u, _ in UNITS) + r")$"
)
_DURATION = re.compile(DURATION_PATTERN)

_HINT = 'a number of seconds or a number with a unit (ms, s, m, h, d), e.g. "30s", "10m", "1h30m", "500ms"'


def parse_duration(value: str | int | float) -> float:
    """Seconds in ``value``; raises ValueError saying what a duration looks like."""
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if not math.isfinite(value):
            raise ValueError(f"invalid duration {value}: must be finite")
        if value < 0:
            raise ValueError(f"invalid duration {value}: must not be negative")
        return float(value)
    raise ValueError(f"expected a duration ({_HINT}), found {type(value).__name__}")


def _parse_text(value: str) -> float:
    m = _DURATION.fullmatch(value)
    if m is None:
        raise ValueError(f'invalid duration "{_shown(value)}": expected {_HINT}')
    if not any(m.groups()):
        seconds = float(value)
    else:
        seconds = sum(float(g) * scale / 1000 for g, (_, scale) in zip(m.groups(), UNITS, strict=True) if g)
    if not math.isfinite(seconds):
        raise ValueError(f'invalid duration "{_shown(value)}": too large')
    return seconds


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


def format_duration(seconds: float) -> str:
    """``seconds`` the way a plan would write it, to the millisecond: ``"1h30m"``, ``"2.5s"``, ``"500ms"``."""
    if not math.isfinite(seconds):
        raise ValueError(f"cannot format a non-finite duration: {seconds}")
    if seconds < 0:
        return "-" + format_duration(-seconds)
    rest = round(seconds * 1000)
    if rest < 1000:
        return f"{rest}ms" if rest else "0s"
    parts: list[str] = []
    for unit, scale in UNITS[:3]:
        count, rest = divmod(rest, scale)
        if count:
            parts.append(f"{count}{unit}")
    if rest:
        whole, millis = divmod(rest, 1000)
        parts.append(f"{whole}.{millis:03d}".rstrip("0").rstrip(".") + "s")
    return "".join(parts)
