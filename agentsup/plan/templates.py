"""Templates: ``{{ path }}`` placeholders in commands, prompts and messages, and how values are substituted.

A path is dot-separated segments of ``[A-Za-z0-9_-]``; spaces around it are allowed. A stray ``}}`` is
literal text. Values from one agent reach another agent's shell command only through ``Quoting.SHELL``
(each value becomes exactly one shell word, which is why a shell template may place its placeholders only
where the shell reads plain words: ``shell_problems``) or ``render_argv`` (a value never splits an
element). No rendered value may hold a NUL: no command line, environment or pane can carry one.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum

from agentsup.plan.shellsyntax import placeholder_contexts

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


def shell_problems(template: str) -> list[tuple[Placeholder, str]]:
    """Each placeholder of shell command ``template`` whose quoted value would not be one plain word of the
    command line (inside quotes, a comment, a here-document…), with what is wrong; TemplateError if the
    template is malformed."""
    literals = [""]
    holders: list[Placeholder] = []
    for part in parse(template):
        if isinstance(part, Placeholder):
            holders.append(part)
            literals.append("")
        else:
            literals[-1] += part
    contexts = placeholder_contexts(literals)
    return [
        (
            ph,
            f"{{{{ {ph.dotted} }}}} is {why}: its value would not be one shell word, and could run "
            "commands; write it outside any quotes (values are quoted for you), or use argv",
        )
        for ph, why in zip(holders, contexts, strict=True)
        if why is not None
    ]


def _value(ph: Placeholder, lookup: Callable[[tuple[str, ...]], str]) -> str:
    try:
        return lookup(ph.path)
    except KeyError as e:
        hint = e.args[0] if e.args and isinstance(e.args[0], str) and e.args[0] != ph.dotted else None
        message = f'unknown placeholder "{ph.dotted}"' + (f" — {hint}" if hint else "")
        raise TemplateError(message, ph.start) from e


def render(template: str, lookup: Callable[[tuple[str, ...]], str], quoting: Quoting) -> str:
    """``template`` with each placeholder replaced by ``lookup(path)``, quoted as ``quoting`` says.

    ``lookup`` raises KeyError for an unknown path; that becomes a TemplateError naming the path, as does a
    value holding NUL. With ``Quoting.SHELL``, so does a placeholder where a quoted value would not be one
    word (``shell_problems``; the loader rejects such plans, this guards specs built otherwise).
    """
    if quoting is Quoting.SHELL and (unsafe := shell_problems(template)):
        ph, problem = unsafe[0]
        raise TemplateError(problem, ph.start)
    return _render(template, lookup, quoting)


def _render(template: str, lookup: Callable[[tuple[str, ...]], str], quoting: Quoting) -> str:
    out: list[str] = []
    for part in parse(template):
        if isinstance(part, str):
            out.append(part)
            continue
        value = _value(part, lookup)
        if "\0" in value:
            raise TemplateError(
                f'the value of "{part.dotted}" contains a NUL byte, which no command line, environment '
                "or pane can carry",
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
            out.append(_render(element, lookup, Quoting.NONE))
        except TemplateError as e:
            raise TemplateError(f"argv[{index}]: {e}", e.position) from e
    return tuple(out)
