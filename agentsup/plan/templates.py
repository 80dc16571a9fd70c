"""Templates: ``{{ path }}`` placeholders in commands, prompts and messages, and how values are substituted.

A path is dot-separated segments of ``[A-Za-z0-9_-]``; spaces around it are allowed. A stray ``}}`` is
literal text. Values from one agent reach another agent's shell command only through ``Quoting.SHELL``
(each value becomes exactly one shell word) or ``render_argv`` (a value never splits an element).
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

_OPEN = "{{"
_CLOSE = "}}"
_SEGMENT_CHAR = re.compile(r"[A-Za-z0-9_-]")
_SPACE = " \t"


class TemplateError(ValueError):
    """A template is malformed or cannot be rendered; ``position`` is the character offset in the template."""

    def __init__(self, message: str, position: int) -> None:
        self.position = position
        super().__init__(message)


@dataclass(frozen=True)
class Placeholder:
    """``{{ a.b }}`` spanning ``template[start:end]`` (braces included)."""

    path: tuple[str, ...]
    start: int
    end: int

    @property
    def dotted(self) -> str:
        return ".".join(self.path)


class Quoting(StrEnum):
    SHELL = "shell"  # each value shlex-quoted: one shell word, whatever it contains
    NONE = "none"  # values inserted as they are (prompts, messages, argv elements)


def _parse_path(template: str, start: int, inner_start: int, inner_end: int) -> tuple[str, ...]:
    """The path between ``inner_start`` and ``inner_end``; errors point at the offending character."""
    lo, hi = inner_start, inner_end
    while lo < hi and template[lo] in _SPACE:
        lo += 1
    while hi > lo and template[hi - 1] in _SPACE:
        hi -= 1
    if lo == hi:
        raise TemplateError("empty placeholder {{ }}: expected a name such as {{ inputs.topic }}", start)
    segments: list[str] = []
    seg_start = lo
    for i in range(lo, hi + 1):
        if i == hi or template[i] == ".":
            if i == seg_start:
                raise TemplateError(
                    f'empty segment in placeholder path "{template[lo:hi]}" (a stray or doubled ".")', i
                )
            segments.append(template[seg_start:i])
            seg_start = i + 1
        elif not _SEGMENT_CHAR.fullmatch(template[i]):
            raise TemplateError(
                f"bad character {template[i]!r} in placeholder path {template[lo:hi]!r}: "
                "segments use letters, digits, _ and -, separated by dots",
                i,
            )
    return tuple(segments)


def parse(template: str) -> list[str | Placeholder]:
    """Literal text and placeholders, in order; adjacent literal text is one string, empty text omitted."""
    parts: list[str | Placeholder] = []
    pos = 0
    while True:
        start = template.find(_OPEN, pos)
        if start < 0:
            break
        close = template.find(_CLOSE, start + len(_OPEN))
        if close < 0:
            raise TemplateError('unclosed "{{": no matching "}}" follows', start)
        end = close + len(_CLOSE)
        path = _parse_path(template, start, start + len(_OPEN), close)
        if start > pos:
            parts.append(template[pos:start])
        parts.append(Placeholder(path, start, end))
        pos = end
    if pos < len(template):
        parts.append(template[pos:])
    return parts


def references(template: str) -> list[tuple[str, ...]]:
    """The placeholder paths of ``template``, in order, repeats included."""
    return [p.path for p in parse(template) if isinstance(p, Placeholder)]


def _value(ph: Placeholder, lookup: Callable[[tuple[str, ...]], str]) -> str:
    try:
        return lookup(ph.path)
    except KeyError as e:
        hint = e.args[0] if e.args and isinstance(e.args[0], str) and e.args[0] != ph.dotted else None
        message = f'unknown placeholder "{ph.dotted}"' + (f" — {hint}" if hint else "")
        raise TemplateError(message, ph.start) from e


def render(template: str, lookup: Callable[[tuple[str, ...]], str], quoting: Quoting) -> str:
    """``template`` with each placeholder replaced by ``lookup(path)``, quoted as ``quoting`` says.

    ``lookup`` raises KeyError for an unknown path; that becomes a TemplateError naming the path. With
    ``Quoting.SHELL`` a value holding NUL is an error (no process can receive it).
    """
    return _render(template, lookup, quoting, reject_nul=quoting is Quoting.SHELL)


def _render(
    template: str, lookup: Callable[[tuple[str, ...]], str], quoting: Quoting, *, reject_nul: bool
) -> str:
    out: list[str] = []
    for part in parse(template):
        if isinstance(part, str):
            out.append(part)
            continue
        value = _value(part, lookup)
        if reject_nul and "\0" in value:
            raise TemplateError(
                f'the value of "{part.dotted}" contains a NUL byte, which no command line can carry',
                part.start,
            )
        if quoting is Quoting.SHELL:
            value = shlex.quote(value)
        out.append(value)
    return "".join(out)


def render_argv(argv: Sequence[str], lookup: Callable[[tuple[str, ...]], str]) -> tuple[str, ...]:
    """Each element rendered without quoting; one element stays one element, whatever the values hold.

    A NUL byte (in a value or the element) is an error. Errors name the element (``argv[2]: …``);
    ``position`` is the offset within that element.
    """
    out: list[str] = []
    for index, element in enumerate(argv):
        if "\0" in element:
            raise TemplateError(
                f"argv[{index}]: contains a NUL byte, which no command line can carry", element.index("\0")
            )
        try:
            out.append(_render(element, lookup, Quoting.NONE, reject_nul=True))
        except TemplateError as e:
            raise TemplateError(f"argv[{index}]: {e}", e.position) from e
    return tuple(out)
