"""Sizes: every accepted spelling, every rejected one, and formatting that parses back exactly."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from agentsup.plan import format_size, parse_size
from agentsup.plan.sizes import SIZE_PATTERN, UNITS


@pytest.mark.parametrize(
    ("value", "size"),
    [
        (0, 0),
        (1, 1),
        (123456789, 123456789),
        ("0", 0),
        ("512", 512),
        ("512b", 512),
        ("512B", 512),
        ("500KB", 500_000),
        ("500MB", 500_000_000),
        ("2GB", 2_000_000_000),
        ("1TB", 10**12),
        ("1KiB", 1024),
        ("3MiB", 3 * 1024**2),
        ("2GiB", 2 * 1024**3),
        ("1TiB", 1024**4),
        ("512k", 512 * 1024),
        ("512K", 512 * 1024),
        ("64m", 64 * 1024**2),
        ("8g", 8 * 1024**3),
        ("1t", 1024**4),
        ("2gib", 2 * 1024**3),
        ("2gIB", 2 * 1024**3),
        ("500mb", 500_000_000),
        ("1.5GiB", 3 * 512 * 1024**2),
        ("0.1GB", 100_000_000),
        ("0.5k", 512),
        ("1.0001KB", 1000),
        ("2.5", 2),
    ],
)
def test_parse_size(value: str | int, size: int) -> None:
    assert parse_size(value) == size


_HINT = r"expected a number of bytes or a number with a unit \(KB, MB, GB, KiB, MiB, GiB, k, m, g\)"


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", 'invalid size "": ' + _HINT),
        ("10XB", 'invalid size "10XB": ' + _HINT),
        ("2 GB", 'invalid size "2 GB": ' + _HINT),
        ("GB", 'invalid size "GB": ' + _HINT),
        ("-1MB", 'invalid size "-1MB": ' + _HINT),
        (".5GB", 'invalid size ".5GB": ' + _HINT),
        ("1e9", 'invalid size "1e9": ' + _HINT),
        ("1kibb", 'invalid size "1kibb": ' + _HINT),
        ("1ib", 'invalid size "1ib": ' + _HINT),
        ("5MB\n", 'invalid size "5MB\n": ' + _HINT),
        ("9" * 50 + "x", f'invalid size "{"9" * 37}...": ' + _HINT),
        ("9" * 31, f'invalid size "{"9" * 31}": too large'),
        (-1, r"invalid size -1: must not be negative"),
        (True, r"expected a size \(a number of bytes"),
        (1.5, r"expected a size \(a number of bytes"),
    ],
)
def test_parse_size_rejects(value: str | int, message: str) -> None:
    with pytest.raises(ValueError, match="^" + message):
        parse_size(value)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (1, "1B"),
        (999, "999B"),
        (1000, "1KB"),
        (1024, "1KiB"),
        (1500, "1500B"),
        (1_500_000_000, "1500MB"),
        (2 * 1024**3, "2GiB"),
        (10**12, "1TB"),
        (4096000, "4096KB"),  # shorter than "4000KiB"
        (1024**4 * 3, "3TiB"),
        (-2048, "-2KiB"),
    ],
)
def test_format_size(size: int, text: str) -> None:
    assert format_size(size) == text


@given(st.integers(min_value=0, max_value=2**64))
def test_format_then_parse_is_exact(size: int) -> None:
    assert parse_size(format_size(size)) == size


@given(
    st.from_regex(r"[0-9]{1,6}(\.[0-9]{1,3})?", fullmatch=True),
    st.sampled_from(sorted(UNITS) + [u.upper() for u in UNITS] + ["KiB", "Mib", "", "x", "kbb", "i"]),
)
def test_the_schema_pattern_accepts_what_the_parser_does(number: str, unit: str) -> None:
    text = number + unit
    try:
        parse_size(text)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed == bool(re.fullmatch(SIZE_PATTERN, text))
