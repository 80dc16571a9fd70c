"""OutputTail reads a real log file incrementally: ANSI stripped, lines matched, a bounded ring kept."""

from __future__ import annotations

import os
import random
import re
import tempfile
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from agentsup.plan import AlertRule, Severity
from agentsup.sessions import END_MARKER
from agentsup.supervisor.output import (
    MAX_LINE,
    READ_CHUNK,
    RING_LINE,
    RING_LINES,
    AlertHit,
    OutputTail,
    ReadResult,
    _Filter,
    _filter,
    _starts,
    strip_ansi,
)


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as f:
        f.write(data)


@pytest.fixture
def log(tmp_path: Path) -> Path:
    path = tmp_path / "output.log"
    path.write_bytes(b"")
    return path


def test_reads_only_what_was_appended_since_the_last_read(log: Path) -> None:
    tail = OutputTail(log)
    _append(log, b"one\ntwo\n")
    first = tail.read()
    _append(log, b"three\n")
    second = tail.read()
    assert (first.lines, first.grew) == (2, True)
    assert (second.lines, second.grew) == (1, True)
    assert tail.last_lines(10) == ["one", "two", "three"]


def test_a_read_with_nothing_new_did_not_grow(log: Path) -> None:
    tail = OutputTail(log)
    _append(log, b"one\n")
    tail.read()
    again = tail.read()
    assert (again.lines, again.grew, again.alerts, again.done_line) == (0, False, (), None)


def test_a_line_split_across_two_appends_is_one_line(log: Path) -> None:
    rule = AlertRule(re.compile("disk full"), Severity.CRITICAL)
    tail = OutputTail(log, rules=(rule,))
    _append(log, b"ERROR: disk ")
    first = tail.read()
    _append(log, b"full\n")
    second = tail.read()
    assert (first.lines, first.alerts) == (0, ())
    assert second.lines == 1
    assert [a.line for a in second.alerts] == ["ERROR: disk full"]
    assert tail.last_lines(5) == ["ERROR: disk full"]


def test_a_multibyte_character_split_across_appends_decodes_whole(log: Path) -> None:
    tail = OutputTail(log)
    encoded = "héllo ✓\n".encode()
    cut = encoded.index("✓".encode()) + 1  # in the middle of the three-byte check mark
    _append(log, encoded[:cut])
    tail.read()
    _append(log, encoded[cut:])
    tail.read()
    assert tail.last_lines(1) == ["héllo ✓"]


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"\x1b[1;31mred\x1b[0m plain", b"red plain"),
        (b"\x1b[2K\x1b[1Gcursor\x1b[?25l", b"cursor"),
        (b"\x1b]0;window title\x07after", b"after"),
        (b"\x1b]8;;https://example.com\x1b\\link\x1b]8;;\x1b\\", b"link"),
        (b"\x1bMreverse\x1bD", b"reverse"),
        (b"no escapes here", b"no escapes here"),
    ],
    ids=["sgr-colour", "cursor-and-private-mode", "osc-bel", "osc-st-hyperlink", "two-byte-fe", "plain"],
)
def test_strip_ansi_removes_escape_sequences(raw: bytes, text: bytes) -> None:
    assert strip_ansi(raw) == text


@pytest.mark.parametrize(
    ("raw", "text"),
    [
        (b"\x1b(B\x1b[mreset", b"reset"),  # what `tput sgr0` prints for TERM=xterm-256color
        (b"\x1b7saved\x1b8", b"saved"),  # DECSC / DECRC, cursor save and restore
        (b"\x1b=keypad\x1b>", b"keypad"),  # DECKPAM / DECKPNM, sent by less and vim
        (b"\x1bcreset", b"reset"),  # RIS, full reset, printed by `reset` and `tput reset`
    ],
    ids=["charset-designation", "cursor-save-restore", "keypad-mode", "full-reset"],
)
def test_strip_ansi_removes_escape_sequences_outside_the_fe_range(raw: bytes, text: bytes) -> None:
    assert strip_ansi(raw) == text


def test_lines_are_matched_without_their_escape_sequences(log: Path) -> None:
    rule = AlertRule(re.compile(r"^ERROR: boom$"), Severity.WARNING)
    tail = OutputTail(log, rules=(rule,))
    _append(log, b"\x1b[31mERROR\x1b[0m: \x1b]0;t\x07boom\n")
    result = tail.read()
    assert [a.line for a in result.alerts] == ["ERROR: boom"]
    assert tail.last_lines(1) == ["ERROR: boom"]


def test_a_progress_bar_line_keeps_its_last_segment(log: Path) -> None:
    tail = OutputTail(log)
    _append(log, b"downloading  10%\rdownloading  50%\rdownloading 100%\nwindows line\r\n")
    tail.read()
    assert tail.last_lines(2) == ["downloading 100%", "windows line"]


def test_invalid_utf8_becomes_replacement_characters(log: Path) -> None:
    tail = OutputTail(log)
    _append(log, b"bad \xff\xfe bytes\nok\n")
    result = tail.read()
    assert result.lines == 2
    assert tail.last_lines(2) == ["bad \ufffd\ufffd bytes", "ok"]


def test_a_line_over_max_line_is_cut_for_matching_and_reading_goes_on(log: Path) -> None:
    rule = AlertRule(re.compile("NEEDLE"), Severity.INFO)
    tail = OutputTail(log, rules=(rule,))
    _append(log, b"x" * (MAX_LINE + 10) + b"NEEDLE beyond the cut\nNEEDLE after\n")
    result = tail.read()
    assert result.lines == 2
    assert [a.line for a in result.alerts] == ["NEEDLE after"]
    long_line, after = tail.last_lines(2)
    assert long_line == "x" * RING_LINE  # the ring keeps the start of a line, whatever its length
    assert after == "NEEDLE after"


def test_an_over_long_line_reads_the_same_however_it_was_written(tmp_path: Path) -> None:
    """The bytes decide the lines, not how the writer happened to split its writes."""
    line = b"a" * (MAX_LINE + 100) + b" tail of the long line\n" + b"next\n"
    whole, pieces = tmp_path / "whole.log", tmp_path / "pieces.log"
    whole.write_bytes(line)
    pieces.write_bytes(b"")
    one = OutputTail(whole)
    one_lines = one.read().lines
    split = OutputTail(pieces)
    split_lines = 0
    for start in range(0, len(line), MAX_LINE // 2 + 7):
        _append(pieces, line[start : start + MAX_LINE // 2 + 7])
        split_lines += split.read().lines
    assert (one_lines, one.last_lines(5)) == (split_lines, split.last_lines(5))


def test_an_unterminated_line_never_grows_past_max_line(log: Path) -> None:
    tail = OutputTail(log)
    for _ in range(4):
        _append(log, b"y" * MAX_LINE)
        tail.read()
    assert len(tail.partial) <= MAX_LINE


def test_alert_rules_report_severity_rule_and_line(log: Path) -> None:
    rules = (
        AlertRule(re.compile(r"(?i)error"), Severity.CRITICAL),
        AlertRule(re.compile(r"warn"), Severity.WARNING),
        AlertRule(re.compile(r"never printed"), Severity.INFO),
    )
    tail = OutputTail(log, rules=rules)
    _append(log, b"all good\nan Error happened\nwarn: low disk\nwarn and error\n")
    result = tail.read()
    found = [(a.severity, a.rule, a.line) for a in result.alerts]
    assert found == [
        (Severity.CRITICAL, "(?i)error", "an Error happened"),
        (Severity.WARNING, "warn", "warn: low disk"),
        (Severity.CRITICAL, "(?i)error", "warn and error"),
        (Severity.WARNING, "warn", "warn and error"),
    ]


def test_the_done_pattern_reports_the_first_matching_line(log: Path) -> None:
    tail = OutputTail(log, done=re.compile(r"^DONE"))
    _append(log, b"working\nDONE first\nDONE second\n")
    first = tail.read()
    _append(log, b"more\n")
    later = tail.read()
    assert first.done_line == "DONE first"
    assert later.done_line is None


def test_final_flushes_an_unterminated_last_line(log: Path) -> None:
    tail = OutputTail(log, done=re.compile("finished"))
    _append(log, b"line\nfinished without newline")
    normal = tail.read()
    final = tail.read(final=True)
    assert (normal.lines, normal.done_line) == (1, None)
    assert (final.lines, final.done_line) == (1, "finished without newline")
    assert tail.last_lines(2) == ["line", "finished without newline"]
    assert tail.read(final=True).lines == 0  # flushed once


def test_the_ring_keeps_the_last_ring_lines_lines(log: Path) -> None:
    tail = OutputTail(log)
    total = RING_LINES + 57
    _append(log, b"".join(f"line {i}\n".encode() for i in range(total)))
    assert tail.read().lines == total
    kept = tail.last_lines(total)
    assert len(kept) == RING_LINES
    assert kept[0] == f"line {total - RING_LINES}"
    assert kept[-1] == f"line {total - 1}"
    assert tail.last_lines(3) == [f"line {i}" for i in range(total - 3, total)]


def test_a_missing_file_reads_as_nothing(tmp_path: Path) -> None:
    tail = OutputTail(tmp_path / "not-yet.log", done=re.compile("x"))
    result = tail.read(final=True)
    assert (result.alerts, result.done_line, result.lines, result.grew) == ((), None, 0, False)
    assert tail.last_lines(5) == []


def test_a_file_that_appears_later_is_read_from_its_start(tmp_path: Path) -> None:
    path = tmp_path / "late.log"
    tail = OutputTail(path)
    tail.read()
    path.write_bytes(b"first\n")
    assert tail.read().lines == 1
    assert tail.last_lines(1) == ["first"]


def test_each_alert_carries_the_offset_just_past_its_line(log: Path) -> None:
    rule = AlertRule(re.compile("ERROR"), Severity.WARNING)
    tail = OutputTail(log, rules=(rule,))
    _append(log, b"ok\nERROR one\npart")
    hits = [*tail.read().alerts]
    _append(log, b"ial ERROR two\nafter\n\x1b[31mERROR three\x1b[0m\n")
    hits += tail.read().alerts
    _append(log, b"ERROR four")
    hits += tail.read(final=True).alerts
    whole = log.read_bytes()
    expected = [whole.index(b"\n", whole.index(w)) + 1 for w in (b"ERROR one", b"ERROR two", b"ERROR three")]
    assert [h.end for h in hits] == [*expected, len(whole)]


def test_a_tail_started_at_a_logged_offset_reports_only_the_later_alerts(log: Path) -> None:
    rule = AlertRule(re.compile("ERROR"), Severity.WARNING)
    _append(log, b"ERROR one\nfine\nERROR two\nERROR three\n")
    first = OutputTail(log, rules=(rule,)).read().alerts
    resumed = OutputTail(log, rules=(rule,), offset=first[1].end).read().alerts
    assert [h.line for h in resumed] == ["ERROR three"]


def test_the_offset_after_a_cut_line_counts_the_whole_line(log: Path) -> None:
    rule = AlertRule(re.compile("ERROR"), Severity.WARNING)
    tail = OutputTail(log, rules=(rule,))
    _append(log, b"x" * (MAX_LINE + 10))
    tail.read()
    _append(log, b"yyy\nERROR next\n")
    hits = tail.read().alerts
    assert [h.end for h in hits] == [len(log.read_bytes())]


def test_the_end_marker_is_seen_even_split_between_two_reads(log: Path) -> None:
    tail = OutputTail(log)
    _append(log, b"last words\n" + END_MARKER[:4])
    tail.read()
    before = tail.ended
    _append(log, END_MARKER[4:])
    tail.read()
    assert (before, tail.ended) == (False, True)
    assert tail.last_lines(1) == ["last words"]


def test_output_without_the_marker_has_not_ended(log: Path) -> None:
    tail = OutputTail(log)
    _append(log, b"\x1b]5379;something-else\x07 and more\n")
    tail.read(final=True)
    assert not tail.ended


# ---- the same results as matching every line on its own -------------------------------------------------


@dataclass
class PerLineTail:
    """Reading a log the plain way, each line stripped, decoded and matched on its own: OutputTail must give
    the same results."""

    path: Path
    rules: tuple[AlertRule, ...] = ()
    done: re.Pattern[str] | None = None
    cap: int | None = None
    offset: int = 0
    partial: bytes = b""
    discarding: bool = False
    ended: bool = False
    last: bytes = b""
    ring: deque[str] = field(default_factory=lambda: deque(maxlen=RING_LINES))

    def read(self, final: bool = False) -> ReadResult:
        alerts: list[AlertHit] = []
        done_line: str | None = None
        count, grew = 0, False
        if not self.path.exists():
            return ReadResult((), None, 0, False)
        with self.path.open("rb") as f:
            f.seek(self.offset)
            while chunk := f.read(READ_CHUNK):
                grew = True
                if not self.ended:
                    self.ended = END_MARKER in self.last + chunk
                    self.last = chunk[-len(END_MARKER) :]
                start = self.offset - len(self.partial)
                self.offset += len(chunk)
                data = self.partial + chunk
                if self.discarding:
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
            os.truncate(self.path, self.cap)
            self.offset = self.cap
        return ReadResult(tuple(alerts), done_line, count, grew, capped)

    def _line(self, raw: bytes, alerts: list[AlertHit], end: int) -> str | None:
        text = strip_ansi(raw[:MAX_LINE]).decode("utf-8", "replace")
        if "\r" in text:
            text = text.rstrip("\r").rsplit("\r", 1)[-1]
        self.ring.append(text[:RING_LINE])
        for rule in self.rules:
            if rule.pattern.search(text):
                alerts.append(AlertHit(rule.severity, rule.match, text[:RING_LINE], end))
        if self.done is not None and self.done.search(text):
            return text
        return None


PIECES = [
    *(b"plain words", b"ERROR: disk full", b"an Error here", b"warn", b"FATAL", b"DONE", b"MARK 12 x"),
    *(b"Out of memory", b"  ok", b"12", b"k", b"M", b"_", b"", b"aaa"),
    *(b"\n", b"\n", b"\n", b"\r\n", b"\r", b"\r\r", b"\r\n\n"),
    *(b"\x1b[31m", b"\x1b[0m", b"\x1b[2K\x1b[1G", b"\x1b]0;title\x07", b"\x1b]8;;http://x\x1b\\", b"\x1b(B"),
    *(b"\x1b]0;unterminated", b"\x1b7", b"\x1b", b"\x1b[", b"\x1b]", END_MARKER, END_MARKER[:5]),
    *("héllo ✓ 😀".encode(), b"\xff\xfe", b"\xe2\x9c", b"\xf0\x9f\x98", b"\xed\xa0\x80", b"\xc3"),
    *(b"x" * 40_000, b"z" * (MAX_LINE - 2), b"w" * 20_000, b"line\r\n" * 300, b"y\n" * 2000),
]
# Rules a literal finds, rules a scan over the text finds, rules matched on every line (they see past it).
LITERAL_RULES = [r"\bERROR\b", r"MARK \d+ ", r"[Ww]arn", r"(?i:disk) (?-i:full)", r"ut of memory"]
SCAN_RULES = [
    r"(?i)error",
    r"ERROR|FATAL",
    r"\d\d$",
    r"[Kk]\s*",  # a match over the text may run on over the next lines
    r"^\s*ok",
    r"\w{1,4}+k\b",
    r"(?s:.)M",
    r"\B_",
    r"^[✓😀]",
]
LINE_RULES = [
    r"(?<!\n)^[Ww]",
    r"[Ee]r(?=r)",
    r"\A[Dd]",
    r"[Kk]\Z",
    r"(?-m:^[Mm])",
    r"[^a]{1,3}+$",
    r"(?>\s*)[ok]",
]
DONES = [None, r"^DONE", r"(?i)done\b", r"DONE\Z", r"^$", r"^\s*$"]


@dataclass(frozen=True)
class Case:
    log: bytes
    appends: list[int]  # where each append (followed by a read) ends in ``log``
    rules: tuple[AlertRule, ...]
    done: re.Pattern[str] | None
    cap: int | None
    final: bool  # the last read is final


@st.composite
def cases(draw: st.DrawFn) -> Case:
    log = b"".join(draw(st.lists(st.sampled_from(PIECES), min_size=1, max_size=120)))
    appends = sorted(draw(st.lists(st.integers(0, len(log)), max_size=12)))
    sources = draw(
        st.lists(st.sampled_from(LITERAL_RULES + SCAN_RULES + LINE_RULES), max_size=6, unique=True)
    )
    rules = tuple(AlertRule(re.compile(s), draw(st.sampled_from(list(Severity)))) for s in sources)
    done = draw(st.sampled_from(DONES))
    cap = draw(st.none() | st.integers(1, len(log) + 10))
    compiled = None if done is None else re.compile(done)
    return Case(log, [*appends, len(log)], rules, compiled, cap, draw(st.booleans()))


def _bulk_case(seed: int) -> Case:
    """A longer log than hypothesis tends to draw, with more appends."""
    rng = random.Random(seed)  # noqa: S311 -- seeded test data, not crypto
    log = b"".join(rng.choice(PIECES) for _ in range(rng.randint(100, 600)))
    appends = sorted(rng.randint(0, len(log)) for _ in range(rng.randint(0, 40)))
    sources = rng.sample(LITERAL_RULES + SCAN_RULES + LINE_RULES, rng.randint(0, 10))
    rules = tuple(AlertRule(re.compile(s), rng.choice(list(Severity))) for s in sources)
    done = rng.choice(DONES)
    cap = rng.choice([None, rng.randint(1, len(log) + 10)])
    compiled = None if done is None else re.compile(done)
    return Case(log, [*appends, len(log)], rules, compiled, cap, rng.random() < 0.5)


def _state(tail: OutputTail | PerLineTail) -> tuple[object, ...]:
    return list(tail.ring), tail.offset, tail.partial, tail.discarding, tail.ended


def _read_both(case: Case, tmp: Path) -> None:
    """Append ``case.log`` to two logs, reading each after each append; the two tails must agree."""
    fast, plain = tmp / "fast.log", tmp / "plain.log"
    tail = OutputTail(fast, case.rules, case.done, cap=case.cap)
    reference = PerLineTail(plain, case.rules, case.done, case.cap)
    written = 0
    for i, end in enumerate(case.appends):
        for path in (fast, plain):
            _append(path, case.log[written:end])
        written = end
        final = case.final and i == len(case.appends) - 1
        assert tail.read(final) == reference.read(final)
        assert _state(tail) == _state(reference)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_reads_give_what_matching_each_line_on_its_own_gives(case: Case) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        _read_both(case, Path(tmp))


@pytest.mark.parametrize("seed", range(40))
def test_long_logs_read_as_matching_each_line_on_its_own_reads_them(seed: int, tmp_path: Path) -> None:
    _read_both(_bulk_case(seed), tmp_path)


@pytest.mark.parametrize("rules", [LITERAL_RULES, SCAN_RULES, LITERAL_RULES + SCAN_RULES, LINE_RULES])
@pytest.mark.parametrize("size", [4096, READ_CHUNK])
def test_rare_lines_among_many_read_as_matching_each_line_on_its_own_reads_them(
    rules: list[str], size: int, tmp_path: Path
) -> None:
    """Few lines to look at in a read: the others are not looked at one by one."""
    rare = [piece for piece in PIECES if len(piece) < 100] + [b"k\n\nk  \n\n", b"12\r\n\r\n12\r\r"]
    log = b"".join(b"filler\r\n" * 40 + piece + b"\n" for piece in rare)
    alerts = tuple(AlertRule(re.compile(s)) for s in rules)
    _read_both(
        Case(log, [*range(size, len(log), size), len(log)], alerts, re.compile("^DONE"), None, True), tmp_path
    )


@pytest.mark.parametrize(
    "size", [MAX_LINE // 2, MAX_LINE + 1, MAX_LINE * 2 - 7, READ_CHUNK // 3, READ_CHUNK + 9]
)
def test_lines_about_max_line_long_read_as_matching_each_line_on_its_own_reads_them(
    size: int, tmp_path: Path
) -> None:
    lines = [b"z" * (MAX_LINE + d) + end for d in range(-4, 4) for end in (b"12", b"k", "✓".encode())]
    log = b"\n".join([b"k", *lines, b"y", *reversed(lines), b"a", *lines[::3]])
    rules = tuple(AlertRule(re.compile(s)) for s in (r"\d\d$", r"[Kk]\s*", "k$", "\ufffd"))
    _read_both(Case(log, [*range(size, len(log), size), len(log)], rules, None, None, True), tmp_path)


@pytest.mark.parametrize(
    ("source", "literal", "scan"),
    [
        (r"\bERROR\b", "ERROR", False),
        (r"[Oo]ut of memory", "ut of memory", False),
        (r"(?i)error", None, True),  # matched case-insensitively: no literal
        (r"(?i:disk) (?-i:full)", "full", False),
        (r"ERROR|FATAL", None, True),
        (r"\d+ s$", None, True),  # too short a literal to look for
        (r"\w++:", None, True),  # the possessive repeat takes no newline
        (r"(?>\s+)[xy]", None, False),  # this atomic group could take the newline and keep it
        (r"[^,]*+[,;]", None, False),
        (r"(?s:.)*+[yz]", None, False),
        (r"[xy](?=y)", None, False),  # lookarounds see past the line
        (r"(?<!a)[bc]", None, False),
        (r"\A[xy]", None, False),
        (r"[xy]\Z", None, False),
        (r"(?-m:^[xy])", None, False),
        (r"^x$", None, True),
        (r"[xy]*", None, False),  # matches the empty string: every line
        (r"(?<=x)ERROR", "ERROR", False),  # a literal is sound whatever else the pattern does
    ],
)
def test_which_lines_a_pattern_is_looked_for_in(source: str, literal: str | None, scan: bool) -> None:
    f = _filter(re.compile(source))
    assert (f.literal, f.scan is not None) == (literal, scan)


SCANNED = [s for s in [*SCAN_RULES, *LINE_RULES, r"^x$", r"\bx\b", r"\B"] if _filter(re.compile(s)).scan]


def _touched(source: str, lines: list[str], f: _Filter) -> tuple[set[int], set[int]]:
    """Where the lines ``source`` matches on their own begin, and where those ``f`` lets through begin."""
    text = "".join(f"{line}\n" for line in lines)
    starts = [len("".join(f"{line}\n" for line in lines[:i])) for i in range(len(lines))]
    matching = {start for start, line in zip(starts, lines, strict=True) if re.search(source, line)}
    return matching, set(_starts(text, f))


@settings(max_examples=500, deadline=None)
@example(r"[Kk]\s*", ["k", "", "x"])  # the match runs on over the empty line: the line it starts in counts
@given(st.sampled_from(SCANNED), st.lists(st.text(alphabet="xkaoyMWDer_1 \t✓", max_size=6), min_size=1))
def test_a_scan_touches_every_line_its_pattern_matches_alone(source: str, lines: list[str]) -> None:
    matching, touched = _touched(source, lines, _filter(re.compile(source)))
    assert matching <= touched


@pytest.mark.parametrize(
    ("source", "lines"),
    [
        (r"(?<!\n)^[Ww]", ["x", "w"]),  # sees the newline before the line
        (r"[xy](?!\n)", ["x"]),  # sees the newline after it
        (r"\A[xy]", ["a", "x"]),  # the text's start, not the line's
        (r"[xy]\Z", ["x", "a"]),
        (r"(?-m:^[xy])", ["a", "x"]),
        (r"[^a]{1,3}+$", ["xx", "ya"]),  # takes "xx\n", then fails at "y" and gives nothing back
    ],
)
def test_a_scan_would_miss_lines_of_the_patterns_it_is_not_used_for(source: str, lines: list[str]) -> None:
    assert _filter(re.compile(source)).scan is None
    matching, touched = _touched(source, lines, _Filter(scan=re.compile(source, re.MULTILINE)))
    assert not matching <= touched
