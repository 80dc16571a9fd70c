"""The locator maps key paths to lines on every TOML construct a plan may use."""

from __future__ import annotations

import pytest

from agentsup.plan.locate import KeyPath, Locator, format_path

TEXT = '''\
# a comment with [agents.fake] and key = 1
[run]
name = "x"  # trailing [comment]

[agents.build]
cmd = """
[agents.not_a_table]
retries = 99
"""
env.A = "1"
alerts = [
  { match = "a]", severity = "info" },

  { match = 'b\\' },
]
after = [ "x",
  # comment inside an array
  "y" ]

[[agents.build.extra]]
k = 1
[[agents.build.extra]]
k = 2
[agents.build.extra.sub]
z = 3

[agents."quoted.name"]
'cmd' = "y"
"b\\u0041r" = 1
doc = ["""ends in two quotes""""",
  "next"]
'''


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("run",), 2),
        (("run", "name"), 3),
        (("agents",), 5),
        (("agents", "build"), 5),
        (("agents", "build", "cmd"), 6),
        (("agents", "build", "env"), 10),
        (("agents", "build", "env", "A"), 10),
        (("agents", "build", "alerts"), 11),
        (("agents", "build", "alerts", 0), 12),
        (("agents", "build", "alerts", 0, "severity"), 12),
        (("agents", "build", "alerts", 1), 14),
        (("agents", "build", "alerts", 1, "match"), 14),
        (("agents", "build", "after", 0), 16),
        (("agents", "build", "after", 1), 18),
        (("agents", "build", "extra"), 20),
        (("agents", "build", "extra", 0, "k"), 21),
        (("agents", "build", "extra", 1), 22),
        (("agents", "build", "extra", 1, "k"), 23),
        (("agents", "build", "extra", 1, "sub", "z"), 25),
        (("agents", "quoted.name"), 27),
        (("agents", "quoted.name", "cmd"), 28),
        (("agents", "quoted.name", "bAr"), 29),
        (("agents", "quoted.name", "doc", 1), 31),
        (("agents", "build", "timeout"), 5),
        (("agents", "build", "alerts", 0, "nope"), 12),
        (("agents", "not_a_table"), 5),
        (("nowhere",), None),
        ((), None),
    ],
)
def test_lines(path: KeyPath, line: int | None) -> None:
    assert Locator(TEXT).line(path) == line


def test_strings_hide_headers_and_keys() -> None:
    located = Locator(TEXT).lines
    assert ("agents", "not_a_table") not in located
    assert ("agents", "build", "retries") not in located
    assert ("agents", "fake") not in located


def test_deep_nesting_is_skipped_not_recursed() -> None:
    text = "a = " + "[" * 5000 + "]" * 5000 + "\nb = 1\n"
    assert Locator(text).line(("b",)) == 2


@pytest.mark.parametrize(
    ("path", "text"),
    [
        (("agents", "build", "alerts", 1, "match"), "agents.build.alerts[1].match"),
        (("agents", "bad name"), 'agents."bad name"'),
        (("env", 'q"\n'), 'env."q\\u0022\\u000a"'),
        ((), ""),
    ],
)
def test_format_path(path: KeyPath, text: str) -> None:
    assert format_path(path) == text
