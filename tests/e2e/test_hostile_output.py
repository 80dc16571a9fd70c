"""Output no engine should choke on: a gigabyte, binary noise, invalid UTF-8, a 50 MB line without a
newline, fifty agents at ten thousand lines a second. The engine's memory stays under ENGINE_RSS_BOUND,
alerts still fire, and every byte is in the agent's log on disk.

The engine reports its own peak RSS (getrusage) in engine.log when the run ends.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentsup.supervisor.events import EventKind
from tests.e2e.harness import Agentsup

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

ENGINE_RSS_BOUND_MIB = 150  # documented in docs/reliability.md
GIB = 1 << 30


def run_plan(agentsup: Agentsup, tmp_path: Path, plan_text: str, run_id: str) -> Path:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text)
    result = agentsup.run("start", str(plan), "--no-tui", "--run-id", run_id, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    return agentsup.run_dir(run_id)


def engine_peak_mib(run_dir: Path) -> int:
    found = re.findall(r"engine peak RSS (\d+) MiB", (run_dir / "engine.log").read_text())
    assert found, "the engine did not report its peak RSS"
    return int(found[-1])


def alerts(agentsup: Agentsup, run_id: str) -> list[tuple[str | None, str]]:
    return [(ev.agent, str(ev.data["line"])) for ev in agentsup.events(run_id) if ev.kind is EventKind.ALERT]


def test_a_gigabyte_of_output_is_logged_whole_with_its_alerts_and_bounded_engine_memory(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    # 1 GiB of 1 KiB lines (1023 characters and a newline), with an alert at the start, middle and end.
    lines = GIB // 1024
    script = tmp_path / "flood.py"
    script.write_text(
        "import sys\n"
        "out = sys.stdout.buffer\n"
        "line = b'x' * 1023 + b'\\n'\n"
        f"for i in range({lines}):\n"
        f"    if i in (0, {lines // 2}, {lines - 1}):\n"
        "        out.write(b'ALERT line %d\\n' % i)\n"
        "    else:\n"
        "        out.write(line)\n"
    )
    run_dir = run_plan(
        agentsup,
        tmp_path,
        f"""
[agents.flood]
argv = ["python3", "{script}"]
alerts = [{{ match = "^ALERT", severity = "warning" }}]
""",
        "giga",
    )

    log = run_dir / "panes" / "flood.1.log"
    assert log.stat().st_size >= GIB  # tmux writes CRLF: a little more than what was printed
    assert alerts(agentsup, "giga") == [("flood", f"ALERT line {i}") for i in (0, lines // 2, lines - 1)]
    assert engine_peak_mib(run_dir) < ENGINE_RSS_BOUND_MIB


def test_binary_noise_invalid_utf8_and_a_50_mb_line_neither_stop_alerts_nor_lose_bytes(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    line_bytes = 50 * 1024 * 1024
    run_dir = run_plan(
        agentsup,
        tmp_path,
        f"""
[defaults]
alerts = [{{ match = "^AFTER", severity = "critical" }}]

[agents.noise]
cmd = 'head -c 20000000 /dev/urandom; printf "\\nAFTER noise\\n"'

[agents.badutf8]
cmd = '''
for i in $(seq 1 2000); do printf "\\377\\376 \\300\\200 half \\342\\202\\n"; done
echo "AFTER bad utf-8"
'''

[agents.longline]
cmd = 'head -c {line_bytes} /dev/zero | tr "\\0" "y"; printf "\\nAFTER the long line\\n"'
""",
        "hostile",
    )

    assert sorted(alerts(agentsup, "hostile")) == [
        ("badutf8", "AFTER bad utf-8"),
        ("longline", "AFTER the long line"),
        ("noise", "AFTER noise"),
    ]
    assert (run_dir / "panes" / "longline.1.log").read_bytes().count(b"y") == line_bytes
    assert (run_dir / "panes" / "badutf8.1.log").read_bytes().count(b"\xff\xfe \xc0\x80 half") == 2000
    assert engine_peak_mib(run_dir) < ENGINE_RSS_BOUND_MIB


def test_fifty_agents_at_ten_thousand_lines_a_second_with_ten_rules_each(
    agentsup: Agentsup, tmp_path: Path
) -> None:
    agents, seconds, rate = 50, 3, 10_000
    script = tmp_path / "burst.py"
    script.write_text(
        "import sys, time\n"
        "out = sys.stdout\n"
        f"for s in range({seconds}):\n"
        "    start = time.monotonic()\n"
        f"    for i in range({rate}):\n"
        "        out.write(f'line {s} {i} some ordinary progress text\\n')\n"
        "    out.write(f'RULE7 hit {s}\\n')\n"
        "    out.flush()\n"
        "    time.sleep(max(0.0, 1 - (time.monotonic() - start)))\n"
    )
    rules = ", ".join(f'{{ match = "^RULE{r} ", severity = "info" }}' for r in range(10))
    plan = "".join(
        f"""
[agents.burst-{n:02d}]
argv = ["python3", "{script}"]
alerts = [{rules}]
"""
        for n in range(agents)
    )
    run_dir = run_plan(
        agentsup, tmp_path, f'[run]\nname = "burst"\nmax_parallel = {agents}\n' + plan, "burst"
    )

    expected = sorted((f"burst-{n:02d}", f"RULE7 hit {s}") for n in range(agents) for s in range(seconds))
    assert sorted(alerts(agentsup, "burst")) == expected
    for n in range(agents):
        log = (run_dir / "panes" / f"burst-{n:02d}.1.log").read_bytes()
        assert log.count(b"some ordinary progress text") == seconds * rate
    assert engine_peak_mib(run_dir) < ENGINE_RSS_BOUND_MIB
