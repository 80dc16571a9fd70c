"""How fast ``OutputTail.read`` reads a busy agent's log, against reading it one line at a time.

```sh
.venv/bin/python bench/output_read.py [--mib 20] [--append-kib 64] [--cases yes,colour,scan]
```

Each case writes a log of ``--mib`` MiB to a temp dir and reads it with 10 alert rules twice per reader: in
one go, and ``--append-kib`` at a time (appended, then read, as the engine reads a growing log; only the
reads are timed). The readers are ``per-line`` (each line stripped, decoded and matched on its own: the
plain loop whose results ``OutputTail`` must give) and ``OutputTail``. It prints MB/s and whether both
found the same alerts and lines. No tmux; one core.

- ``yes``: the ``output`` case of ``engine_cost.py``: ``yes line`` through a pty (``line\\r\\n``), a marker
  line after each MiB, and that case's 10 rules (one matches the marker).
- ``colour``: varied coloured lines, a progress bar redrawn with ``\\r`` now and then, the same rules.
- ``scan``: the ``yes`` log with 10 rules of which 7 hold no literal to look for (case-insensitive, classes):
  they are searched over whole runs of lines instead.
"""

from __future__ import annotations

import argparse
import re
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from engine_cost import RULES

from agentsup.plan import AlertRule, Severity
from agentsup.supervisor.output import MAX_LINE, READ_CHUNK, RING_LINE, RING_LINES, OutputTail, strip_ansi

SCAN_RULES = [
    r"(?i)traceback",
    r"(?i)\berror\b",
    r"[Pp]anic:",
    r"(?i)fatal",
    r"[Ss]egfault|[Ss]egmentation",
    r"[Oo][Oo][Mm]\b",
    r"(?i)rate.limit",
    r"[Dd]enied\b",
    r"(?i)timed?.?out",
    r"^[M]ARK \d+ ",
]


@dataclass
class PerLine:
    """The plain reader: each line stripped, decoded and matched on its own (alerts counted, no done)."""

    path: Path
    rules: tuple[AlertRule, ...]
    offset: int = 0
    partial: bytes = b""
    discarding: bool = False
    ring: deque[str] = field(default_factory=lambda: deque(maxlen=RING_LINES))

    def read(self) -> tuple[int, int]:
        """(alerts, lines) read since the last call."""
        alerts = count = 0
        with self.path.open("rb") as f:
            f.seek(self.offset)
            while chunk := f.read(READ_CHUNK):
                self.offset += len(chunk)
                data = self.partial + chunk
                if self.discarding:
                    newline = data.find(b"\n")
                    if newline < 0:
                        continue
                    data, self.discarding = data[newline + 1 :], False
                *complete, self.partial = data.split(b"\n")
                cut = len(self.partial) > MAX_LINE
                if cut:
                    complete.append(self.partial[:MAX_LINE])
                for raw in complete:
                    alerts += self._line(raw)
                    count += 1
                if cut:
                    self.partial, self.discarding = b"", True
        return alerts, count

    def _line(self, raw: bytes) -> int:
        text = strip_ansi(raw[:MAX_LINE]).decode("utf-8", "replace")
        if "\r" in text:
            text = text.rstrip("\r").rsplit("\r", 1)[-1]
        self.ring.append(text[:RING_LINE])
        return sum(1 for rule in self.rules if rule.pattern.search(text))


def yes_log(size: int) -> bytes:
    mib = b"line\r\n" * ((1 << 20) // 6)
    return b"".join(mib + f"MARK {i} 1700000000.{i:09d}\r\n".encode() for i in range(size >> 20))


def colour_log(size: int) -> bytes:
    words = [
        b"compiling",
        b"module",
        b"\x1b[32mok\x1b[0m",
        b"\x1b[1;33mwarning:\x1b[0m",
        b"unused",
        b"\xe2\x9c\x93",
    ]
    lines: list[bytes] = []
    total = i = 0
    while total < size:
        if i % 500 == 0:
            line = b"".join(f"\r[{'#' * k:<20}] {k * 5}%".encode() for k in range(21))
        else:
            line = b" ".join(words[(i * 7 + k) % len(words)] for k in range(3 + i % 9))
        lines.append(line + b"\r\n")
        total += len(lines[-1])
        i += 1
    return b"".join(lines)


def _timed(read: Callable[[], tuple[int, int]], path: Path, log: bytes, step: int) -> tuple[float, int, int]:
    """Seconds spent reading ``log`` appended to ``path`` ``step`` bytes at a time; the alerts, the lines."""
    path.write_bytes(b"")
    spent, alerts, lines = 0.0, 0, 0
    for at in range(0, len(log), step):
        with path.open("ab") as f:
            f.write(log[at : at + step])
        t0 = time.perf_counter()
        found, count = read()
        spent += time.perf_counter() - t0
        alerts, lines = alerts + found, lines + count
    return spent, alerts, lines


def _tail_reader(tail: OutputTail) -> Callable[[], tuple[int, int]]:
    def read() -> tuple[int, int]:
        result = tail.read()
        return len(result.alerts), result.lines

    return read


def run_case(name: str, log: bytes, rules: tuple[AlertRule, ...], step: int, tmp: Path) -> None:
    mb = len(log) / 1e6
    for mode, size in (("one read", len(log)), (f"{step >> 10} KiB reads", step)):
        plain = _timed(PerLine(tmp / "plain.log", rules).read, tmp / "plain.log", log, size)
        fast = _timed(_tail_reader(OutputTail(tmp / "fast.log", rules)), tmp / "fast.log", log, size)
        same = "same" if plain[1:] == fast[1:] else f"DIFFERENT {plain[1:]} != {fast[1:]}"
        print(
            f"{name:<7} {mode:<13} per-line {mb / plain[0]:7.1f} MB/s   OutputTail {mb / fast[0]:7.1f} MB/s"
            f"   x{plain[0] / fast[0]:<6.1f} {fast[1]} alerts, {fast[2]} lines: {same}"
        )
        (tmp / "plain.log").unlink()
        (tmp / "fast.log").unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=20, help="log size in MiB (default 20)")
    parser.add_argument(
        "--append-kib", type=int, default=64, help="bytes appended between reads (default 64)"
    )
    parser.add_argument("--cases", default="yes", help="comma-separated: yes, colour, scan (default yes)")
    args = parser.parse_args()
    size = args.mib << 20
    rules = tuple(AlertRule(re.compile(r), Severity.INFO) for r in RULES)
    scan_rules = tuple(AlertRule(re.compile(r), Severity.INFO) for r in SCAN_RULES)
    cases = {
        "yes": lambda: (yes_log(size), rules),
        "colour": lambda: (colour_log(size), rules),
        "scan": lambda: (yes_log(size), scan_rules),
    }
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.cases.split(","):
            log, case_rules = cases[name]()
            run_case(name, log, case_rules, args.append_kib << 10, Path(tmp))


if __name__ == "__main__":
    main()
