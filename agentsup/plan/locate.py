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


def format_path(path: KeyPath) -> str:
    """``("agents", "build", "alerts", 1, "match")`` → ``agents.build.alerts[1].match``."""
    out = ""
    for seg in path:
        if isinstance(seg, int):
            out += f"[{seg}]"
            continue
        text = seg if _BARE_KEY.fullmatch(seg) else _quote(seg)
        out += f".{text}" if out else text
    return out


def _quote(key: str) -> str:
    escaped = "".join(c if c.isprintable() and c not in '"\\' else f"\\u{ord(c):04x}" for c in key)
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
        for _ in range(count):
            if self.pos >= len(self.text):
                return
            if self.text[self.pos] == "\n":
                self.line += 1
            self.pos += 1

    def _record(self, path: KeyPath, line: int) -> None:
        self.lines.setdefault(path, line)

    def _skip_blank(self, newlines: bool) -> None:
        while self.pos < len(self.text):
            c = self._peek()
            if c in " \t\r" or (newlines and c == "\n"):
                self._advance()
            elif c == "#":
                while self.pos < len(self.text) and self._peek() != "\n":
                    self._advance()
            else:
                return

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
        while self.pos < len(self.text) and self._peek() != "\n":
            self._advance()

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
        if self._peek(1) == quote and self._peek(2) == quote:
            self._advance(3)
            while self.pos < len(self.text):
                if quote == '"' and self._peek() == "\\":
                    self._advance(2)
                elif self._peek() == quote and self._peek(1) == quote and self._peek(2) == quote:
                    self._advance(3)
                    while self._peek() == quote:  # up to two quotes may close the content
                        self._advance()
                    return
                else:
                    self._advance()
            return
        self._advance()
        while self.pos < len(self.text) and self._peek() not in (quote, "\n"):
            self._advance(2 if quote == '"' and self._peek() == "\\" else 1)
        if self._peek() == quote:
            self._advance()

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
            while self.pos < len(self.text) and self._peek() not in ",]}\n#":
                self._advance()

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
