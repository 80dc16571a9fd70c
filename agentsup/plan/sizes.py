"""Sizes as the plan writes them: a number of bytes, or ``"500MB"``, ``"2GiB"``, ``"512k"``."""

from __future__ import annotations

import re

# Unit → bytes. Decimal units are powers of 1000; binary ones, and the single letters, powers of 1024.
UNITS: dict[str, int] = {
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
}

# One pattern for the parser and the JSON Schema (which has no flag for case): plain groups only.
SIZE_PATTERN = r"^[0-9]+(?:\.[0-9]+)?(?:[bB]|[kKmMgGtT](?:[iI]?[bB])?)?$"
_SIZE = re.compile(r"(?P<number>[0-9]+(?:\.[0-9]+)?)(?P<unit>[A-Za-z]*)")

_HINT = 'a number of bytes or a number with a unit (KB, MB, GB, KiB, MiB, GiB, k, m, g), e.g. "500MB", "2GiB"'

# Spellings tried by format_size, largest first; binary before decimal at the same power.
_FORMATS = ("TiB", "TB", "GiB", "GB", "MiB", "MB", "KiB", "KB")


def parse_size(value: str | int) -> int:
    """Bytes in ``value`` (rounded down to a whole byte); raises ValueError saying what a size looks like."""
    if isinstance(value, str):
        return _parse_text(value)
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ValueError(f"invalid size {value}: must not be negative")
        return value
    raise ValueError(f"expected a size ({_HINT}), found {type(value).__name__}")


def _parse_text(value: str) -> int:
    m = _SIZE.fullmatch(value)
    scale = UNITS.get(m["unit"].lower() or "b") if m is not None else None
    if m is None or scale is None:
        raise ValueError(f'invalid size "{_shown(value)}": expected {_HINT}')
    whole, _, fraction = m["number"].partition(".")
    if len(whole) > 30:  # far beyond any machine, and keeps the arithmetic below small
        raise ValueError(f'invalid size "{_shown(value)}": too large')
    # Exact integer arithmetic: "0.1GB" is 100000000 bytes, not a float's neighbour of it.
    divisor: int = 10 ** len(fraction)
    return int(whole + fraction) * scale // divisor


def _shown(value: str) -> str:
    return value if len(value) <= 40 else value[:37] + "..."


def format_size(size: int) -> str:
    """``size`` bytes the way a plan would write it, exactly: ``"2GiB"``, ``"500MB"``, ``"1500B"``.

    Of the units that divide ``size`` exactly, the shortest spelling wins, binary before decimal on a tie.
    """
    if size < 0:
        return "-" + format_size(-size)
    best = f"{size}B"
    for unit in _FORMATS:
        scale = UNITS[unit.lower()]
        if size and size % scale == 0 and len(str(size // scale)) + len(unit) < len(best):
            best = f"{size // scale}{unit}"
    return best
