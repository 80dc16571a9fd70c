"""Where each placeholder of a ``cmd`` sits in POSIX sh syntax, so that its quoted value stays one word.

A value substituted into ``cmd`` is single-quoted (``shlex.quote``). That makes one plain word only where
the shell reads words: at the top of a command line, or inside ``$( … )``. Inside double quotes the quotes
become literal and a ``$( … )`` in the value runs; inside single quotes the value's own quote ends them; a
backslash or ``$`` just before it, a comment, a here-document, backquotes, ``${ … }`` and ``$(( … ))`` all
read it differently, and so does bash's ``(( … ))``. The scanner follows quoting, substitutions, comments
and here-documents. Where it is unsure it errs toward unsafe (a ``case`` pattern's ``)`` inside ``$( … )``
ends the substitution early). What a command then does with its arguments is its own: ``eval``, ``sh -c``,
and bash's ``let`` and ``[[ … -eq … ]]`` run code from a value however it is quoted.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass

# Why a placeholder in each context would not be one plain word.
SINGLE = "inside single quotes"
DOUBLE = "inside double quotes"
BACKQUOTES = "inside backquotes"
ANSI = "inside $'...'"
PARAMETER = "inside ${...}"
ARITHMETIC = "in arithmetic, $((...)) or ((...))"
COMMENT = "in a comment"
HEREDOC = "in a here-document"
AFTER_BACKSLASH = "right after a backslash"
AFTER_DOLLAR = "right after $"

_MARK = "\0"  # stands for each placeholder: a cmd holds no NUL of its own
_WORD_BREAK = frozenset(" \t\n;&|()<>")
_DELIMITER_END = re.compile(r"[ \t\n;&|<>()]")
_UNQUOTE = re.compile(r"""\\(.)|["']""", re.DOTALL)

# Per context: the characters that mean something there (anything else is skipped in one match), and why
# a placeholder there is unsafe (None: it is one word).
_SPECIAL = {
    "cmd": ("\\'\"`$#<\n()", None),
    "sq": ("'", SINGLE),
    "ansi": ("\\'", ANSI),
    "dq": ('\\"`$', DOUBLE),
    "bq": ("\\`", BACKQUOTES),
    "param": ("\\}'\"`$", PARAMETER),
    "arith": ("\\()`$", ARITHMETIC),
}
_PLAIN = {kind: re.compile(f"[^{re.escape(_MARK + chars)}]++") for kind, (chars, _) in _SPECIAL.items()}
_QUOTES = {"'": "sq", '"': "dq", "`": "bq"}


@dataclass
class _Frame:
    kind: str  # a key of _SPECIAL; "cmd" is the top level or the inside of $( … )
    depth: int = 0  # parentheses open inside this frame
    nested: bool = False  # a cmd frame opened by $( … )


class _Scan:
    def __init__(self, text: str, marks: list[int]) -> None:
        self.text = text
        self.marks = marks  # offsets of the placeholders' stand-ins, ascending
        self.found: dict[int, str | None] = {}
        self.stack = [_Frame("cmd")]
        self.heredocs: list[tuple[str, bool]] = []  # opened on this line: (delimiter, strip tabs)
        self.pos = 0

    def at(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if 0 <= i < len(self.text) else ""

    def run(self) -> list[str | None]:
        """Per placeholder, why it is unsafe or None; one a backslash escaped counts as after it."""
        while self.pos < len(self.text):
            frame = self.stack[-1]
            plain = _PLAIN[frame.kind].match(self.text, self.pos)
            if plain is not None:
                self.pos = plain.end()
            elif self.at() == _MARK:
                self.found[self.pos] = _SPECIAL[frame.kind][1]
                self.pos += 1
            else:
                self._special(frame, self.at())
        return [self.found.get(m, AFTER_BACKSLASH) for m in self.marks]

    def _special(self, frame: _Frame, c: str) -> None:
        kind = frame.kind
        if c == "\\":
            self.pos += 2
        elif c == "$" and kind not in ("sq", "ansi"):
            self._dollar()
        elif (c == "'" and kind in ("sq", "ansi")) or (c, kind) in (('"', "dq"), ("`", "bq"), ("}", "param")):
            self._pop(1)
        elif (c in _QUOTES and kind in ("cmd", "param")) or (c == "`" and kind in ("dq", "arith")):
            self._push(_QUOTES[c], 1)
        elif kind == "arith":
            self._paren(frame, c, closes="))")
        elif kind == "cmd":
            self._cmd(frame, c)
        else:
            self.pos += 1

    def _cmd(self, frame: _Frame, c: str) -> None:
        if c == "#" and (self.pos == 0 or self.at(-1) in _WORD_BREAK):
            self._skip_lines(self.text.find("\n", self.pos), COMMENT)
        elif c == "<" and self.text.startswith("<<<", self.pos):  # bash's here-string: a plain word follows
            self.pos += 3
        elif c == "<" and self.at(1) == "<":
            self._heredoc()
        elif c == "(" and self.at(1) == "(":  # bash's arithmetic command; in sh, two subshells
            self._push("arith", 2)
        elif c == "\n":
            self.pos += 1
            self._heredoc_bodies()
        elif frame.nested:
            self._paren(frame, c, closes=")")
        else:
            self.pos += 1

    def _paren(self, frame: _Frame, c: str, closes: str) -> None:
        """Count parentheses; ``closes`` at depth 0 ends the frame."""
        if c == ")" and frame.depth == 0 and self.text.startswith(closes, self.pos):
            self._pop(len(closes))
            return
        if c == "(":
            frame.depth += 1
        elif c == ")" and frame.depth > 0:
            frame.depth -= 1
        self.pos += 1

    def _dollar(self) -> None:
        nxt = self.at(1)
        self.pos += 1
        if nxt == _MARK:
            self.found[self.pos] = AFTER_DOLLAR
            self.pos += 1
        elif nxt == "(" and self.at(1) == "(":
            self._push("arith", 2)
        elif nxt == "(":
            self._push("cmd", 1, nested=True)
        elif nxt in ("{", "'", '"'):
            self._push({"{": "param", "'": "ansi", '"': "dq"}[nxt], 1)

    def _push(self, kind: str, width: int, nested: bool = False) -> None:
        self.stack.append(_Frame(kind, nested=nested))
        self.pos += width

    def _pop(self, width: int) -> None:
        if len(self.stack) > 1:
            self.stack.pop()
        self.pos += width

    def _skip_lines(self, end: int, why: str) -> None:
        """Skip to ``end`` (-1: the end of the text), every placeholder on the way unsafe for ``why``."""
        end = len(self.text) if end < 0 else end
        first = bisect.bisect_left(self.marks, self.pos)
        for mark in self.marks[first : bisect.bisect_left(self.marks, end)]:
            self.found[mark] = why
        self.pos = end

    def _heredoc(self) -> None:
        """``<<WORD`` or ``<<-WORD``: note the delimiter; the body starts at the next newline."""
        self.pos += 2
        strip = self.at() == "-"
        self.pos += strip
        while self.at() in (" ", "\t"):
            self.pos += 1
        m = _DELIMITER_END.search(self.text, self.pos)
        end = len(self.text) if m is None else m.start()
        word = self.text[self.pos : end]
        self._skip_lines(end, HEREDOC)
        self.heredocs.append((_UNQUOTE.sub(r"\1", word), strip))

    def _heredoc_bodies(self) -> None:
        for delimiter, strip in self.heredocs:
            while self.pos < len(self.text):
                end = self.text.find("\n", self.pos)
                line = self.text[self.pos : len(self.text) if end < 0 else end]
                self._skip_lines(end, HEREDOC)
                self.pos = min(self.pos + 1, len(self.text))
                if (line.lstrip("\t") if strip else line) == delimiter:
                    break
        self.heredocs.clear()


def placeholder_contexts(literals: Sequence[str]) -> list[str | None]:
    """Why each placeholder's shell-quoted value would not be one plain word (None: it would), for a
    template whose literal text around its placeholders is ``literals`` (one more than placeholders)."""
    marks: list[int] = []
    offset = 0
    for literal in literals[:-1]:
        offset += len(literal)
        marks.append(offset)
        offset += 1
    return _Scan(_MARK.join(literals), marks).run()
