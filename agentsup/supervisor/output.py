"""Reading an agent's output log incrementally: ANSI stripped, lines matched against its rules once."""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from agentsup.plan import AlertRule, Severity
from agentsup.sessions import END_MARKER

# CSI, OSC (BEL or ST terminated), then any other escape (ECMA-48: ESC, intermediates 0x20-0x2F, a final
# 0x30-0x7E), which covers charset designation (ESC ( B), DECSC/DECRC (ESC 7/8) and RIS (ESC c).
_ANSI = re.compile(rb"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -/]*[0-~]")
READ_CHUNK = 1 << 20
MAX_LINE = 64 * 1024  # longer lines are cut here for matching; the log on disk keeps everything
RING_LINES = 200
RING_LINE = 1000  # characters kept of a line in the ring and in an alert: memory O(agents), not O(output)


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
        alerts: list[AlertHit] = []
        done_line: str | None = None
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
                *complete, self.partial = data.split(b"\n")
                cut = len(self.partial) > MAX_LINE
                if cut:
                    complete.append(self.partial[:MAX_LINE])
                for raw in complete:
                    start += len(raw) + 1
                    d = self._line(raw, alerts, start)
                    done_line = done_line or d
                    count += 1
                if cut:
                    self.partial, self.discarding = b"", True
        if final and self.partial:
            d = self._line(self.partial, alerts, self.offset)
            done_line = done_line or d
            self.partial = b""
            count += 1
        capped = self.cap is not None and self.offset > self.cap
        if capped and self.cap is not None:
            # The writer appends (O_APPEND), so it goes on at the cut. Bytes written between the read and
            # the cut are lost unread; the exit then waits out EXIT_SETTLE if the end marker was among them.
            os.truncate(self.path, self.cap)
            self.offset = self.cap
        return ReadResult(tuple(alerts), done_line, count, grew, capped)

    def _line(self, raw: bytes, alerts: list[AlertHit], end: int) -> str | None:
        text = strip_ansi(raw[:MAX_LINE]).decode("utf-8", "replace")
        if "\r" in text:  # a progress bar redraws the line: keep what the screen shows last
            text = text.rstrip("\r").rsplit("\r", 1)[-1]
        self.ring.append(text[:RING_LINE])
        for rule in self.rules:
            if rule.pattern.search(text):
                alerts.append(AlertHit(rule.severity, rule.match, text[:RING_LINE], end))
        if self.done is not None and self.done.search(text):
            return text
        return None

    def last_lines(self, n: int) -> list[str]:
        return list(self.ring)[-n:]
