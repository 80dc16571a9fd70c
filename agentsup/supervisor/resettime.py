"""When a rate limit resets, from what a CLI shows: "2:03 AM UTC", "3pm (Europe/Paris)", "14:30",
"in 5 minutes", "2026-11-24T03:00:00Z". A clock time without a date is its next occurrence; without a
zone it is UTC (CLIs here print UTC, or name the zone). None for text none of these read.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_IN = re.compile(
    r"\bin\s+(?P<n>\d+(?:\.\d+)?)\s*(?P<unit>s|secs?|seconds?|m|mins?|minutes?|h|hrs?|hours?)\b", re.I
)
_CLOCK = re.compile(
    r"\b(?P<h>\d{1,2})(?::(?P<m>\d{2}))?(?::(?P<s>\d{2}))?\s*(?P<ampm>[ap]\.?m\.?)?(?![\d:])"
    r"(?:\s*\(?(?P<zone>UTC|GMT|Z|[A-Z][A-Za-z_]+/[A-Za-z_/+-]+)\)?)?",
    re.I,
)
_UNITS = {"s": 1, "m": 60, "h": 3600}


def reset_at(text: str | None, now: float) -> float | None:
    """The unix time ``text`` names, after ``now``; None when it names none."""
    if not text:
        return None
    found = _IN.search(text)
    if found:
        return now + float(found["n"]) * _UNITS[found["unit"][0].lower()]
    iso = _iso(text)
    if iso is not None:
        return iso
    for clock in _CLOCK.finditer(text):
        if clock["m"] is None and clock["ampm"] is None:
            continue  # a bare number is no time of day
        at = _next_clock(clock, now)
        if at is not None:
            return at
    return None


def _iso(text: str) -> float | None:
    for raw in text.split():
        word = raw.strip(".,;()")
        if len(word) >= 16 and word[4:5] == "-" and "T" in word:
            try:
                parsed = datetime.fromisoformat(word.replace("Z", "+00:00"))
            except ValueError:
                continue
            return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()
    return None


def _zone(name: str | None) -> tzinfo | None:
    if name is None or name.upper() in ("UTC", "GMT", "Z"):
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def _next_clock(clock: re.Match[str], now: float) -> float | None:
    hour, minute, second = int(clock["h"]), int(clock["m"] or 0), int(clock["s"] or 0)
    ampm = (clock["ampm"] or "").lower().replace(".", "")
    if ampm:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if ampm == "pm" else 0)
    if hour > 23 or minute > 59 or second > 59:
        return None
    zone = _zone(clock["zone"])
    if zone is None:
        return None
    local = datetime.fromtimestamp(now, zone)
    at = local.replace(hour=hour, minute=minute, second=second, microsecond=0)
    if at.timestamp() <= now:
        at += timedelta(days=1)
    return at.timestamp()
