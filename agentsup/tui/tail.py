"""Follow one output log from an offset in a thread of its own, handing complete lines to the UI.

The UI says which file to follow (:meth:`OutputTail.follow`) and whether it may still grow; the tail
reads it while it may, once more when it stops growing, and then sleeps until told otherwise. Lines wait
in a bounded buffer until the UI takes them, so a chatty agent costs the UI one message per read.
"""

from __future__ import annotations

import codecs
import threading
from collections import deque
from collections.abc import Callable
from pathlib import Path

MAX_LINES = 2000
# Each batch of lines repaints the whole output panel (it scrolls), and while the log is shorter than
# MAX_LINES a second time for the new scroll height: twice a second is live enough.
INTERVAL = 0.5
# A log opened mid-way is read from this far before its end: enough for MAX_LINES ordinary lines.
START_BACK = 512 * 1024
READ_CHUNK = 256 * 1024


def screen_line(raw: str) -> str:
    """A pane's line as it ended up on screen: a carriage return rewrote the line (progress bars)."""
    raw = raw.removesuffix("\r")
    return raw.rsplit("\r", 1)[-1]


class OutputTail:
    def __init__(self, on_lines: Callable[[], object], interval: float = INTERVAL) -> None:
        self._on_lines = on_lines
        self._interval = interval
        self._cond = threading.Condition()
        self._path: Path | None = None
        self._live = False
        self._generation = 0  # bumped by follow(): lines of an older file are never handed out
        self._lines: deque[str] = deque(maxlen=MAX_LINES)
        self._reset = False  # the UI must clear what it shows before writing the next lines
        self._notified = False
        self._stopped = False
        self._thread = threading.Thread(target=self._main, name="output-tail", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stopped = True
            self._cond.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def follow(self, path: Path | None, live: bool) -> None:
        """Show ``path`` (None: nothing); ``live`` while the agent may still write to it."""
        with self._cond:
            if path != self._path:
                self._path = path
                self._generation += 1
                self._lines.clear()
                self._reset = True
                self._notify()
            self._live = live
            self._cond.notify_all()

    def take(self) -> tuple[bool, list[str]]:
        """Whether the UI must clear first, and the lines that arrived since the previous take."""
        with self._cond:
            reset, lines = self._reset, list(self._lines)
            self._reset, self._notified = False, False
            self._lines.clear()
            return reset, lines

    def _notify(self) -> None:
        if not self._notified:
            self._notified = True
            self._on_lines()

    def _main(self) -> None:
        generation, offset, partial, settled = -1, 0, "", False
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        while True:
            with self._cond:
                if self._stopped:
                    return
                if generation == self._generation and settled and not self._live:
                    self._cond.wait()  # the file is final and read: nothing changes until follow()
                    continue
                path, live = self._path, self._live
                if generation != self._generation:
                    generation, offset, partial = self._generation, -1, ""
                    decoder.reset()
            if path is not None:
                data = b""
                while True:  # everything written so far, a chunk at a time
                    offset, chunk = _read(path, offset)
                    data += chunk
                    if len(chunk) < READ_CHUNK:
                        break
                text = partial + decoder.decode(data)
                *complete, partial = text.split("\n")
                if not live and partial:  # the file is final: its last line has no newline to wait for
                    complete.append(partial)
                    partial = ""
                with self._cond:
                    if complete and generation == self._generation:
                        self._lines.extend(screen_line(line) for line in complete)
                        self._notify()
            settled = not live
            if live:
                with self._cond:
                    if not self._stopped and generation == self._generation and self._live:
                        self._cond.wait(self._interval)


def _read(path: Path, offset: int) -> tuple[int, bytes]:
    """New bytes of ``path`` from ``offset`` (-1: not opened yet, start near the end)."""
    try:
        with path.open("rb") as f:
            if offset < 0:
                size = f.seek(0, 2)
                offset = max(0, size - START_BACK)
                if offset:  # skip the cut line
                    f.seek(offset)
                    offset += len(f.readline())
            f.seek(offset)
            data = f.read(READ_CHUNK)
    except FileNotFoundError:
        return max(offset, -1), b""
    return offset + len(data), data
