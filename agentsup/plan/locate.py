"""Line numbers for key paths: tomllib reports none, so a small scanner maps each key to its line.

The scanner only needs to be right on text tomllib accepted; on anything else it must still never raise,
so every read goes through ``_peek`` and every loop advances or stops.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping

KeyPath = tuple[str | int, ...]

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_MAX_DEPTH = 32  # values nested deeper are skipped whole, not located
_SHOWN_KEY = 100  # longer keys are cut in messages
# Every run of characters is skipped by one regex match, so a huge value costs C time, not a Python step
# per character. Possessive quantifiers: nothing here ever backtracks.
_BLANK = re.compile(r"[ \t\r]*+")
_BLANK_LINES = re.compile(r"(?:[ \t\r\n]++|#[^\n]*+)*+")
_BARE_VALUE = re.compile(r"[^,\]}\n#]*+")
_BASIC_LINE = re.compile(r'(?:[^"\\\n]++|\\[\s\S])*+"?')
_LITERAL_LINE = re.compile(r"[^'\n]*+'?")
_BASIC_BLOCK = re.compile(r'(?:[^"\\]++|\\[\s\S]|"(?!""))*+(?:"""+)?')
_LITERAL_BLOCK = re.compile("(?:[^']++|'(?!''))*+(?:'{3,})?")
_NESTING_TOKEN = re.compile(r"[\"'#\[\]{}]")
NESTING_SHOWN = 100  # a document nested deeper than tomllib can parse is located where it passes this


def format_path(path: KeyPath) -> str:
    """``("agents", "build", "alerts", 1, "match")`` → ``agents.build.alerts[1].match``."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
            continue
        # A message names a key; it need not print all of a huge one.
        key = seg if len(seg) <= _SHOWN_KEY else seg[: _SHOWN_KEY - 3] + "..."
        text = key if _BARE_KEY.fullmatch(key) else _quote(key)
        out += f".{text}" if out else text
    return out


def _escape(c: str) -> str:
    return f"\\u{ord(c):04x}" if ord(c) <= 0xFFFF else f"\\U{ord(c):08x}"


def nesting_line(text: str) -> int | None:
    """The line where arrays and tables first nest over ``NESTING_SHOWN`` levels (strings and comments
    aside), for a document too deep to parse; None if they never do."""
    return _Scanner(text, {}).line_nested_over(NESTING_SHOWN)


def _quote(key: str) -> str:
    escaped = "".join(c if c.isprintable() and c not in '"\\' else _escape(c) for c in key)
    return f'"{escaped}"'


class Locator:
    """Maps key paths to the 1-based line where the key (or its table header) appears."""

    def __init__(self, text: str) -> None:
        self._lines: dict[KeyPath, int] = {}
        _Scanner(text, self._lines).document()

    def line(self, path: KeyPath) -> int | None:
        """The line of ``path``, else of its nearest located ancestor, else None."""
        for end in range(len(path), 0, -1):
            found = self._lines.get(path[:end])
            if found is not None:
                return found
        return None

    @property
    def lines(self) -> Mapping[KeyPath, int]:
        return self._lines


class _Scanner:
    def __init__(self, text: str, lines: dict[KeyPath, int]) -> None:
        self.text = text
        self.pos = 0
        self.line = 1
        self.lines = lines
        self.array_tables: dict[KeyPath, int] = {}  # path of a [[table]] → number of its elements so far

    def _peek(self, offset: int = 0) -> str:
        i = self.pos + offset
        return self.text[i] if 0 <= i < len(self.text) else ""

    def _advance(self, count: int = 1) -> None:
        self._jump(self.pos + count)

    def _jump(self, end: int) -> None:
        """Move to ``end`` (at most the end of the text), counting the newlines passed."""
        end = min(end, len(self.text))
        if end > self.pos:
            self.line += self.text.count("\n", self.pos, end)
            self.pos = end

    def _match(self, pattern: re.Pattern[str]) -> None:
        m = pattern.match(self.text, self.pos)
        if m is not None:
            self._jump(m.end())

    def _skip_to_newline(self) -> None:
        end = self.text.find("\n", self.pos)
        self._jump(len(self.text) if end < 0 else end)

    def _record(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    def _skip_blank(self, newlines: bool) -> None:
        if newlines:
            self._match(_BLANK_LINES)
            return
        self._match(_BLANK)
        if self._peek() == "#":
            self._skip_to_newline()

    def line_nested_over(self, limit: int) -> int | None:
        depth = 0
        while (m := _NESTING_TOKEN.search(self.text, self.pos)) is not None:
            self._jump(m.start())
            c = m.group()
            if c in "\"'":
                self._string()
            elif c == "#":
                self._skip_to_newline()
            else:
                self._advance()
                depth = max(0, depth + (1 if c in "[{" else -1))
                if depth > limit:
                    return self.line
        return None

    def document(self) -> None:
        table: KeyPath = ()
        while self.pos < len(self.text):
            start = self.pos
            self._skip_blank(newlines=True)
            if self._peek() == "[":
                table = self._header()
            elif self.pos < len(self.text):
                key = self._key()
                self._skip_blank(newlines=False)
                if self._peek() == "=":
                    self._advance()
                    self._value(table, key, 0)
            self._skip_line()
            if self.pos == start:
                self._advance()

    def _skip_line(self) -> None:
        self._skip_blank(newlines=False)
        self._skip_to_newline()

    def _header(self) -> KeyPath:
        line = self.line
        is_array = self._peek(1) == "["
        self._advance(2 if is_array else 1)
        self._skip_blank(newlines=False)
        segments = self._key_segments()
        path: KeyPath = ()
        for i, seg in enumerate(segments):
            path = (*path, seg)
            last = i == len(segments) - 1
            if last and is_array:
                count = self.array_tables.get(path, 0)
                self.array_tables[path] = count + 1
                self._record(path, line)
                path = (*path, count)
            elif path in self.array_tables:
                path = (*path, self.array_tables[path] - 1)
            self._record(path, line)
        return path

    def _key(self) -> KeyPath:
        return tuple(self._key_segments())

    def _key_segments(self) -> list[str]:
        segments: list[str] = []
        while self.pos < len(self.text):
            self._skip_blank(newlines=False)
            c = self._peek()
            if c in "\"'":
                segments.append(self._quoted_key(c))
            else:
                m = _BARE_KEY.match(self.text, self.pos)
                if m is None:
                    break
                segments.append(m.group())
                self._advance(len(m.group()))
            self._skip_blank(newlines=False)
            if self._peek() != ".":
                break
            self._advance()
        return segments

    def _quoted_key(self, quote: str) -> str:
        start = self.pos
        self._string()
        raw = self.text[start : self.pos]
        if quote == "'":
            return raw[1:-1]
        try:
            decoded = tomllib.loads(f"k = {raw}").get("k")
        except tomllib.TOMLDecodeError:
            return raw[1:-1]
        return decoded if isinstance(decoded, str) else raw[1:-1]

    def _string(self) -> None:
        quote = self._peek()
        basic = quote == '"'
        if self._peek(1) == quote and self._peek(2) == quote:
            self._advance(3)
            self._match(_BASIC_BLOCK if basic else _LITERAL_BLOCK)  # up to two quotes may end the content
            return
        self._advance()
        self._match(_BASIC_LINE if basic else _LITERAL_LINE)

    def _value(self, table: KeyPath, key: KeyPath, depth: int) -> None:
        """Record ``table + key`` (and each prefix of a dotted key), then scan the value after ``=``."""
        line = self.line
        for end in range(1, len(key) + 1):
            self._record((*table, *key[:end]), line)
        self._skip_blank(newlines=False)
        self._scan_value((*table, *key), depth)

    def _scan_value(self, path: KeyPath, depth: int) -> None:
        c = self._peek()
        if c in "\"'":
            self._string()
        elif depth >= _MAX_DEPTH and c in "[{":
            self._skip_nested()
        elif c == "[":
            self._advance()
            self._array(path, depth + 1)
        elif c == "{":
            self._advance()
            self._inline_table(path, depth + 1)
        else:
            self._match(_BARE_VALUE)

    def _skip_nested(self) -> None:
        """Skip a whole array or inline table without recursing, so no nesting depth can overflow."""
        level = 0
        while self.pos < len(self.text):
            c = self._peek()
            if c in "\"'":
                self._string()
                continue
            if c == "#":
                self._skip_blank(newlines=False)
                continue
            self._advance()
            level += 1 if c in "[{" else -1 if c in "]}" else 0
            if level <= 0:
                return

    def _array(self, path: KeyPath, depth: int) -> None:
        index = 0
        while self.pos < len(self.text):
            self._skip_blank(newlines=True)
            c = self._peek()
            if c == "]":
                self._advance()
                return
            if c == ",":
                self._advance()
                continue
            start = self.pos
            self._record((*path, index), self.line)
            self._scan_value((*path, index), depth)
            index += 1
            if self.pos == start:
                self._advance()

    def _inline_table(self, path: KeyPath, depth: int) -> None:
        while self.pos < len(self.text):
            self._skip_blank(newlines=True)
            c = self._peek()
            if c == "}":
                self._advance()
                return
            if c == ",":
                self._advance()
                continue
            start = self.pos
            key = self._key()
            self._skip_blank(newlines=False)
            if key and self._peek() == "=":
                self._advance()
                self._value(path, key, depth)
            if self.pos == start:
                self._advance()
