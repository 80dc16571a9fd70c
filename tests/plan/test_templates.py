"""Templates: parsing, error positions, and substitution that never lets a value escape its word."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from agentsup.plan.templates import (
    Placeholder,
    Quoting,
    TemplateError,
    parse,
    references,
    render,
    render_argv,
)

P = Placeholder


@pytest.mark.parametrize(
    ("template", "parts"),
    [
        ("", []),
        ("plain text", ["plain text"]),
        ("{{a}}", [P(("a",), 0, 5)]),
        ("{{ a }}", [P(("a",), 0, 7)]),
        ("{{\ta.b\t}}", [P(("a", "b"), 0, 9)]),
        ("x {{ inputs.topic }} y", ["x ", P(("inputs", "topic"), 2, 20), " y"]),
        ("{{a}}{{b}}", [P(("a",), 0, 5), P(("b",), 5, 10)]),
        ("{{a}}x", [P(("a",), 0, 5), "x"]),
        ("x{{a}}", ["x", P(("a",), 1, 6)]),
        ("{{ up-1.out_dir.X9 }}", [P(("up-1", "out_dir", "X9"), 0, 21)]),
        ("a }} b", ["a }} b"]),  # a stray close is literal text
        ("{{a}}}}", [P(("a",), 0, 5), "}}"]),
        ("{ {a} }", ["{ {a} }"]),
        ("${x} $(y) `z`", ["${x} $(y) `z`"]),
    ],
)
def test_parse(template: str, parts: list[str | Placeholder]) -> None:
    assert parse(template) == parts


@pytest.mark.parametrize(
    ("template", "paths"),
    [
        ("no placeholders", []),
        ("{{a}} and {{ b.c }} and {{a}}", [("a",), ("b", "c"), ("a",)]),
        ("{{ agents.review.out_dir }}/x", [("agents", "review", "out_dir")]),
    ],
)
def test_references(template: str, paths: list[tuple[str, ...]]) -> None:
    assert references(template) == paths


@pytest.mark.parametrize(
    ("template", "position", "words"),
    [
        ("abc {{ a", 4, "unclosed"),
        ("{{a}} {{", 6, "unclosed"),
        ("{{}}", 0, "empty placeholder"),
        ("x {{   }}", 2, "empty placeholder"),
        ("{{ a b }}", 4, "bad character ' '"),
        ("{{ a/b }}", 4, "bad character '/'"),
        ("{{ a.$b }}", 5, "bad character '$'"),
        ("{{{a}}}", 2, "bad character '{'"),
        ("{{ a..b }}", 5, "empty segment"),
        ("{{ .a }}", 3, "empty segment"),
        ("{{ a. }}", 5, "empty segment"),
        ("{{ a{{ b }}", 4, "bad character '{'"),
    ],
)
def test_parse_errors_say_what_and_where(template: str, position: int, words: str) -> None:
    with pytest.raises(TemplateError, match=re.escape(words)) as info:
        parse(template)
    assert info.value.position == position
    with pytest.raises(TemplateError):
        references(template)


class Lookup:
    """A lookup over a flat table keyed by dotted paths; records what it was asked."""

    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.asked: list[tuple[str, ...]] = []

    def __call__(self, path: tuple[str, ...]) -> str:
        self.asked.append(path)
        return self.values[".".join(path)]


def test_render_none_substitutes_values_as_they_are() -> None:
    lookup = Lookup({"a": "it's $(x)", "b.c": "2"})
    assert render("[{{a}}|{{ b.c }}] }}", lookup, Quoting.NONE) == "[it's $(x)|2] }}"
    assert lookup.asked == [("a",), ("b", "c")]


def test_render_shell_quotes_each_value() -> None:
    lookup = Lookup({"a": "two words", "b": "plain", "e": ""})
    assert render("echo {{a}} {{b}} {{e}}", lookup, Quoting.SHELL) == "echo 'two words' plain ''"


def test_render_unknown_path_names_it() -> None:
    with pytest.raises(TemplateError, match=r'unknown placeholder "inputs\.topik"') as info:
        render("say {{ inputs.topik }}", Lookup({}), Quoting.NONE)
    assert info.value.position == 4


def test_render_unknown_path_keeps_the_lookups_hint() -> None:
    def lookup(path: tuple[str, ...]) -> str:
        raise KeyError('did you mean "inputs.topic"?')

    with pytest.raises(TemplateError, match=r'"inputs\.topik" — did you mean "inputs\.topic"\?'):
        render("{{inputs.topik}}", lookup, Quoting.SHELL)


def test_render_reports_syntax_errors_before_looking_anything_up() -> None:
    lookup = Lookup({"a": "1"})
    with pytest.raises(TemplateError, match="unclosed"):
        render("{{a}} {{a", lookup, Quoting.NONE)
    assert lookup.asked == []


def test_nul_in_a_shell_value_is_refused() -> None:
    with pytest.raises(TemplateError, match=r'"a" contains a NUL byte') as info:
        render("x {{a}}", Lookup({"a": "bad\0value"}), Quoting.SHELL)
    assert info.value.position == 2


HOSTILE = [
    "it's",
    'say "hi"',
    "$(touch {marker})",
    "`touch {marker}`",
    "; touch {marker}",
    "a && touch {marker} || b",
    "line one\nline two\n; touch {marker}",
    "$HOME ${HOME} $((1+1))",
    "'; touch {marker}; echo '",
    "\\'\\\"\\\\",
    "*",
    "~",
    "-n",
    "",
    "   ",
    "\t\r\n",
    "é ✓ \x1b[31m",
    "> {marker}",
    "| tee {marker}",
]


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_values_reach_sh_as_one_literal_word(raw: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = raw.replace("{marker}", str(marker))
    script = render('printf "%s" {{ up.value }}', Lookup({"up.value": value}), Quoting.SHELL)
    out = subprocess.run(["sh", "-c", script], capture_output=True, check=True, cwd=tmp_path)
    assert out.stdout.decode() == value
    assert not marker.exists()


@pytest.mark.parametrize("raw", HOSTILE)
def test_hostile_values_are_one_argument_of_a_shell_command(raw: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = raw.replace("{marker}", str(marker))
    script = render(
        f"{sys.executable} -c 'import sys; sys.stdout.write(repr(sys.argv[1:]))' {{{{a}}}} {{{{a}}}}",
        Lookup({"a": value}),
        Quoting.SHELL,
    )
    out = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout == repr([value, value])
    assert not marker.exists()


def test_render_argv_keeps_elements_whole(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    values = {"a": f"two words; touch {marker}", "b": "x\ny", "c": ""}
    argv = render_argv(
        [sys.executable, "-c", "import sys; print(repr(sys.argv[1:]))", "{{a}}", "pre-{{b}}-post", "{{c}}"],
        Lookup(values),
    )
    assert argv[3:] == (values["a"], "pre-x\ny-post", "")
    out = subprocess.run(list(argv), capture_output=True, text=True, check=True, cwd=tmp_path)
    assert out.stdout.strip() == repr([values["a"], "pre-x\ny-post", ""])
    assert not marker.exists()


def test_render_argv_does_not_quote() -> None:
    assert render_argv(["echo", "{{a}}"], Lookup({"a": "it's"})) == ("echo", "it's")


def test_render_argv_errors_name_the_element() -> None:
    with pytest.raises(TemplateError, match=r'^argv\[1\]: unknown placeholder "nope"') as info:
        render_argv(["ok", "x{{ nope }}"], Lookup({}))
    assert info.value.position == 1
    with pytest.raises(TemplateError, match=r"^argv\[0\]: unclosed") as info:
        render_argv(["ab{{"], Lookup({}))
    assert info.value.position == 2


def test_render_argv_refuses_nul() -> None:
    with pytest.raises(TemplateError, match=r'^argv\[1\]: the value of "a" contains a NUL') as info:
        render_argv(["x", "--{{a}}"], Lookup({"a": "\0"}))
    assert info.value.position == 2
    with pytest.raises(TemplateError, match=r"^argv\[0\]: contains a NUL") as info:
        render_argv(["ab\0"], Lookup({}))
    assert info.value.position == 2


def test_template_error_is_a_value_error() -> None:
    assert issubclass(TemplateError, ValueError)
