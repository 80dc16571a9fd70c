"""Reading an agent's output log incrementally: ANSI stripped, lines matched against its rules once.

A read handles runs of whole lines as one text (stripped, decoded and searched at once) and looks at a single
line only where one of the rules may match it (see ``_Filter``): the result is the same as matching every
line on its own, at a fraction of the cost.
"""

from __future__ import annotations

import importlib
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain, islice
from pathlib import Path
from typing import Any

from agentsup.plan import AlertRule, Severity
from agentsup.sessions import END_MARKER

# CSI, OSC (BEL or ST terminated), then any other escape (ECMA-48: ESC, intermediates 0x20-0x2F, a final
# 0x30-0x7E), which covers charset designation (ESC ( B), DECSC/DECRC (ESC 7/8) and RIS (ESC c).
_ESCAPES = rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b%s]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]"
_ANSI = re.compile(_ESCAPES % b"")
# No match of this one holds a newline, so over lines joined by newlines it strips each line as _ANSI does.
_ANSI_IN_LINES = re.compile(_ESCAPES % b"\n")
_CR_TRAILING = re.compile(r"\r+\n")
_CR_REDRAWN = re.compile(r"^[^\n]*\r", re.MULTILINE)  # greedy: up to the line's last \r
READ_CHUNK = 1 << 20
MAX_LINE = 64 * 1024  # longer lines are cut here for matching; the log on disk keeps everything
RING_LINES = 200
RING_LINE = 1000  # characters kept of a line in the ring and in an alert: memory O(agents), not O(output)

# re's parser has no public API and no type stubs: its tree is read by opcode name (as plan.regexes does).
_parser = importlib.import_module("re._parser")
_Item = tuple[str, Any]
_RARE = 3  # a literal this long is rare enough in lines that looking for it beats a scan
_STRUCTURE = (
    "SUBPATTERN",
    "BRANCH",
    "MAX_REPEAT",
    "MIN_REPEAT",
    "POSSESSIVE_REPEAT",
    "ATOMIC_GROUP",
    "GROUPREF_EXISTS",
)
_OPS = (*_STRUCTURE, "LITERAL", "NOT_LITERAL", "ANY", "IN", "AT", "GROUPREF", "ASSERT", "ASSERT_NOT")


def strip_ansi(data: bytes) -> bytes:
    return _ANSI.sub(b"", data)


@dataclass(frozen=True)
class AlertHit:
    severity: Severity
    rule: str
    line: str
    end: int  # the log offset just past the line: a resumed engine reads on from the last one logged


@dataclass(frozen=True)
class ReadResult:
    alerts: tuple[AlertHit, ...]
    done_line: str | None  # first line matching the done pattern, if any
    lines: int
    grew: bool
    capped: bool = False  # the log was cut back to the cap after this read


@dataclass
class _Found:
    """What the lines of one read matched so far."""

    alerts: list[AlertHit] = field(default_factory=list)
    done_line: str | None = None

    def done(self, line: str | None) -> None:
        """The done pattern's verdict on the next line: ``line`` if it matched, else None."""
        # ``or``, line after line: an empty matching line is forgotten at the next line that does not match.
        self.done_line = self.done_line or line


@dataclass
class OutputTail:
    """The read position and unfinished line of one attempt's ``output.log``."""

    path: Path
    rules: tuple[AlertRule, ...] = ()
    done: re.Pattern[str] | None = None
    offset: int = 0
    partial: bytes = b""
    discarding: bool = False  # inside a line longer than MAX_LINE, after its cut
    ended: bool = False  # the wrapper's end marker is in the log: everything the agent printed is read
    cap: int | None = None  # past this size the log is cut back to it after each read (max_log)
    _last: bytes = b""  # the previous chunk's last bytes, for a marker split between two reads
    ring: deque[str] = field(default_factory=lambda: deque(maxlen=RING_LINES))

    def read(self, final: bool = False) -> ReadResult:
        """Read what was appended since the last call; ``final`` also flushes an unterminated line.

        Blocking file I/O: call it off the event loop.
        """
        found = _Found()
        count = 0
        grew = False
        try:
            f = self.path.open("rb")
        except FileNotFoundError:
            return ReadResult((), None, 0, False)
        with f:
            f.seek(self.offset)
            while chunk := f.read(READ_CHUNK):
                grew = True
                if not self.ended:
                    self.ended = END_MARKER in self._last + chunk
                    self._last = chunk[-len(END_MARKER) :]
                start = self.offset - len(self.partial)  # where ``data`` begins in the file
                self.offset += len(chunk)
                data = self.partial + chunk
                if self.discarding:  # the rest of a line already cut at MAX_LINE
                    newline = data.find(b"\n")
                    if newline < 0:
                        continue
                    data, self.discarding = data[newline + 1 :], False
                    start += newline + 1
                complete = data.rfind(b"\n") + 1
                count += self._complete_lines(data[:complete], start, found)
                self.partial = data[complete:]
                if len(self.partial) > MAX_LINE:  # counts as a line, ending just past its cut
                    count += self._lines(self.partial[:MAX_LINE] + b"\n", start + complete, found)
                    self.partial, self.discarding = b"", True
        if final and self.partial:
            # Its alerts end at the log's end: just past the newline it does not have.
            count += self._lines(self.partial + b"\n", self.offset - len(self.partial) - 1, found)
            self.partial = b""
        capped = self.cap is not None and self.offset > self.cap
        if capped and self.cap is not None:
            # The writer appends (O_APPEND), so it goes on at the cut. Bytes written between the read and
            # the cut are lost unread; the exit then waits out EXIT_SETTLE if the end marker was among them.
            os.truncate(self.path, self.cap)
            self.offset = self.cap
        return ReadResult(tuple(found.alerts), found.done_line, count, grew, capped)

    def _complete_lines(self, data: bytes, base: int, found: _Found) -> int:
        """Match the newline-terminated lines ``data``, read from offset ``base``; lines over MAX_LINE cut."""
        count = done = 0
        for first, newline in _long_lines(data):
            count += self._lines(data[done:first], base + done, found)
            count += self._lines(data[first : first + MAX_LINE] + b"\n", base + newline - MAX_LINE, found)
            done = newline + 1
        return count + self._lines(data[done:], base + done, found)

    def _lines(self, data: bytes, base: int, found: _Found) -> int:
        """Match the lines ``data`` (each ends with a newline, none is over MAX_LINE): a line's alerts end
        at ``base`` plus the offset just past its newline in ``data``. Returns the number of lines."""
        lines = data.count(b"\n")
        if not lines:
            return 0
        if b"\x1b" in data:
            text = _ANSI_IN_LINES.sub(b"", data).decode("utf-8", "replace")
        else:
            text = data.decode("utf-8", "replace")
        patterns = [rule.pattern for rule in self.rules]
        if self.done is not None:
            patterns.append(self.done)
        text, picked = _pick(text, [_filter(p) for p in patterns], lines)
        _keep_last(self.ring, text)
        if patterns:
            self._match(picked, data, lines=lines, base=base, found=found)
        return lines

    def _match(
        self, picked: Iterable[tuple[int, str]], data: bytes, *, lines: int, base: int, found: _Found
    ) -> None:
        """Match the lines ``picked``: (index, text) of some of the ``lines`` lines of ``data``, in order; the
        others match nothing."""
        searches = [(rule, rule.pattern.search) for rule in self.rules]
        done = None if self.done is None else self.done.search
        stride = max(1, len(data) // lines)  # bytes per line, roughly
        looked = 0  # the lines before this one were matched
        past = offset = 0  # ``past`` lines of ``data`` end before ``offset``
        for index, text in picked:
            line = _shown(text) if "\r" in text else text
            if done is not None and index > looked:
                found.done(None)
            looked = index + 1
            hits = [rule for rule, search in searches if search(line)]
            if hits:
                offset, past = _past_lines(data, offset, index + 1 - past, stride), index + 1
                found.alerts += [AlertHit(r.severity, r.match, line[:RING_LINE], base + offset) for r in hits]
            if done is not None:
                found.done(line if done(line) else None)
        if done is not None and lines > looked:
            found.done(None)

    def last_lines(self, n: int) -> list[str]:
        return list(self.ring)[-n:]


def _shown(line: str) -> str:
    """What a line shows on screen: a progress bar redraws itself after a ``\\r``, the last drawing stays."""
    if "\r" in line:
        return line.rstrip("\r").rsplit("\r", 1)[-1]
    return line


def _without_redraws(text: str) -> str:
    """``_shown`` of each line of ``text`` (lines ending in newlines)."""
    if "\r" not in text:
        return text
    text = text.replace("\r\n", "\n")  # the pty's line ends: the usual case
    if "\r" in text:
        text = _CR_REDRAWN.sub("", _CR_TRAILING.sub("\n", text))
    return text


def _keep_last(ring: deque[str], text: str) -> None:
    """Append the lines of ``text`` (each ending in a newline) to ``ring`` as they show; only the last
    RING_LINES of them are built."""
    start = len(text) - 1
    for _ in range(RING_LINES):
        start = text.rfind("\n", 0, start)
        if start < 0:
            break
    last = _without_redraws(text[start + 1 :]).split("\n")[:-1]
    ring.extend(last if len(text) - start <= RING_LINE else (line[:RING_LINE] for line in last))


def _long_lines(data: bytes) -> Iterator[tuple[int, int]]:
    """(start, newline) of each line of ``data`` longer than MAX_LINE, in order; ``data`` ends in a newline.

    Such a line holds a whole window of MAX_LINE // 2 bytes of any tiling that starts at or before it, so only
    windows without a newline need a closer look.
    """
    step = MAX_LINE // 2
    at = 0
    while at + step <= len(data):
        if data.find(b"\n", at, at + step) >= 0:
            at += step
            continue
        start, newline = data.rfind(b"\n", 0, at) + 1, data.index(b"\n", at + step)
        if newline - start > MAX_LINE:
            yield start, newline
        at = newline + 1


def _past_lines(data: bytes, at: int, n: int, stride: int) -> int:
    """The offset just past the ``n``-th newline of ``data`` from ``at`` on (``data`` has that many), lines
    being about ``stride`` bytes long: newlines are counted over long stretches, not walked one by one."""
    while n > 16:
        stop = at + (n - n // 4) * stride
        seen = data.count(b"\n", at, stop)
        if seen >= n:  # shorter lines ahead: try a shorter stretch
            stride = max(1, stride // 2)
        else:  # the n-th newline is past ``stop`` (so ``stop`` is inside ``data``): go on from there
            stride = (stop - at) // seen if seen else stride * 2
            at, n = stop, n - seen
    for _ in range(n):
        at = data.index(b"\n", at) + 1
    return at


def _pick(text: str, filters: list[_Filter], lines: int) -> tuple[str, Iterable[tuple[int, str]]]:
    """The lines of ``text`` to match, as (index, text), and the text they are taken from: the lines the
    filters let through if they are at most a quarter of the ``lines`` (beyond that, going through every line
    costs less than picking lines out), else every line."""
    if not all(f.literal is not None for f in filters):
        text = _without_redraws(text)  # scans search the lines as they show
    if all(f.literal is not None or f.scan is not None for f in filters):
        starts = list(islice(chain.from_iterable(_starts(text, f) for f in filters), lines // 4 + 1))
        if len(starts) <= lines // 4:
            return text, _picked(text, sorted(set(starts)))
    text = _without_redraws(text)
    return text, enumerate(text.split("\n")[:-1])


def _picked(text: str, starts: Iterable[int]) -> Iterator[tuple[int, str]]:
    """(index, text) of the lines of ``text`` that begin at ``starts`` (ascending)."""
    index = at = 0  # line ``index`` begins at ``at``
    for start in starts:
        index, at = index + text.count("\n", at, start), start
        yield index, text[start : text.index("\n", start)]


# ---- where a pattern may match ------------------------------------------------------------------------


@dataclass(frozen=True)
class _Filter:
    """Where in a text of lines a pattern may match; looking only there finds every line it matches.

    - ``literal``: characters every match holds in a row (none of them case-insensitive), so only a line that
      contains them can match. This holds for any pattern, and for the text before ``_shown``: a line shows
      part of what it holds.
    - ``scan``: the pattern with re.MULTILINE, searched over the whole text (of lines as they show); only the
      lines a match of it touches, from the line where it starts to the line where it ends, can match. This
      holds when every match within a line is a match of ``scan`` at the same place in the text: by the
      leftmost rule, the text's matches then start there or cover it. A line's path through the pattern is a
      path through ``scan`` at the same place in the text when each step sees the same there: characters do;
      ``^`` and ``$`` do under MULTILINE (and not without it, as inside ``(?-m:...)``); ``\\b`` and ``\\B``
      do, as ``\\n`` is not a word character; ``\\A``, ``\\Z`` and lookarounds do not, as they see past the
      line; an atomic group or possessive repeat does only if it cannot take a ``\\n``, for in the text it
      could take one, then keep it and fail. A pattern that may match an empty string would touch every line.
    - neither: every line is looked at.
    """

    literal: str | None = None
    scan: re.Pattern[str] | None = None


@lru_cache(maxsize=256)
def _filter(pattern: re.Pattern[str]) -> _Filter:
    flags = pattern.flags | re.MULTILINE
    try:
        tree = _parser.parse(pattern.pattern, pattern.flags)
        literal = max(_literals(_items(tree), pattern.flags), key=len)
        local = tree.getwidth()[0] > 0 and _line_local(_items(tree), flags, atomic=False)
    except RecursionError:  # nested too deeply to walk
        return _Filter()
    if len(literal) >= _RARE or (literal and not local):
        return _Filter(literal=literal)
    return _Filter(scan=re.compile(pattern.pattern, flags)) if local else _Filter()


def _items(sub: Any) -> list[_Item]:
    return [(str(op), av) for op, av in sub]


def _literals(items: list[_Item], flags: int) -> Iterator[str]:
    """Runs of characters that every match of ``items`` holds in a row, all matched case-sensitively."""
    run: list[str] = []
    for op, av in items:
        if op == "LITERAL" and not flags & re.IGNORECASE:
            run.append(chr(av))
            continue
        yield "".join(run)
        run = []
        if op == "SUBPATTERN":
            _, add, remove, body = av
            yield from _literals(_items(body), (flags | add) & ~remove)
    yield "".join(run)


def _line_local(items: list[_Item], flags: int, atomic: bool) -> bool:
    """Whether every match of ``items`` within a line matches at the same place in the text (see _Filter)."""
    for op, av in items:
        if op not in _OPS or op in ("ASSERT", "ASSERT_NOT"):
            return False
        if op == "AT" and (
            str(av) in ("AT_BEGINNING_STRING", "AT_END_STRING")
            or (str(av) in ("AT_BEGINNING", "AT_END") and not flags & re.MULTILINE)
        ):
            return False
        if atomic and _may_take_newline(op, av, flags):
            return False
        inner = (flags | av[1]) & ~av[2] if op == "SUBPATTERN" else flags
        committed = atomic or op in ("ATOMIC_GROUP", "POSSESSIVE_REPEAT")
        if not all(_line_local(_items(body), inner, committed) for body in _children(op, av)):
            return False
    return True


def _children(op: str, av: Any) -> list[Any]:
    """The sub-patterns directly inside an item (of the ops _line_local lets through)."""
    if op in ("SUBPATTERN", "MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
        return [av[-1]]  # (group, add_flags, del_flags, body), (min, max, body)
    if op == "ATOMIC_GROUP":
        return [av]
    if op == "BRANCH":
        return list(av[1])  # (None, alternatives)
    if op == "GROUPREF_EXISTS":
        return [b for b in av[1:] if b is not None]  # (group, yes, no)
    return []


def _may_take_newline(op: str, av: Any, flags: int) -> bool:
    """Whether the item itself (not what it holds) may match a ``\\n``; True when unsure."""
    if op in _STRUCTURE or op == "AT":
        return False
    if op == "LITERAL":
        return bool(av == 10)
    if op == "NOT_LITERAL":
        return bool(av != 10)
    if op == "ANY":
        return bool(flags & re.DOTALL)
    if op == "IN":
        return _class_may_take_newline(_items(av))
    return True  # a back reference: it may have taken one elsewhere


def _class_may_take_newline(items: list[_Item]) -> bool:
    negate, holds = False, False
    for op, av in items:
        if op == "NEGATE":
            negate = True
        elif op == "LITERAL":
            holds = holds or av == 10
        elif op == "RANGE":
            holds = holds or av[0] <= 10 <= av[1]
        elif op == "CATEGORY" and str(av) in ("CATEGORY_SPACE", "CATEGORY_NOT_DIGIT", "CATEGORY_NOT_WORD"):
            holds = True
        elif op != "CATEGORY" or str(av) not in ("CATEGORY_DIGIT", "CATEGORY_WORD", "CATEGORY_NOT_SPACE"):
            return True
    return holds != negate


def _starts(text: str, f: _Filter) -> Iterator[int]:
    """Where each line of ``text`` that ``f`` lets through begins: ascending, maybe repeated."""
    if f.literal is not None:
        at = text.find(f.literal)
        while at >= 0:
            yield text.rfind("\n", 0, at) + 1
            at = text.find(f.literal, text.index("\n", at) + 1)
    elif f.scan is not None:
        for m in f.scan.finditer(text):
            start, last = text.rfind("\n", 0, m.start()) + 1, text.find("\n", max(m.start(), m.end() - 1))
            while 0 <= start <= last:
                yield start
                start = text.index("\n", start) + 1
