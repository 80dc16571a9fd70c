"""OutputTail reads a real log file incrementally: ANSI stripped, lines matched, a bounded ring kept."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentsup.plan import AlertRule, Severity
from agentsup.sessions import END_MARKER
from agentsup.supervisor.output import MAX_LINE, RING_LINE, RING_LINES, OutputTail, strip_ansi


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
