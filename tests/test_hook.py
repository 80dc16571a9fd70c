"""`agentsup hook`: what an agent CLI's hooks run, as a real process; and how the engine reads its lines."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

from agentsup.agents.claude import ClaudePreset
from agentsup.agents.cli import HookKind
from agentsup.supervisor.clidriver import hook_signals


def hook(path: Path | None, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {"PATH": "/usr/bin:/bin"} | ({"AGENTSUP_HOOKS": str(path)} if path else {})
    return subprocess.run(
        [sys.executable, "-m", "agentsup", "hook", *args],
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_the_payload_comes_from_stdin_and_nothing_is_printed(tmp_path: Path) -> None:
    path = tmp_path / "a.1.hooks"
    result = hook(path, "Stop", stdin='{"session_id": "s"}')
    assert (result.returncode, result.stdout) == (0, "")  # stdout is an answer to some CLIs: none given
    [line] = lines(path)
    assert (line["event"], line["payload"], line["args"]) == ("Stop", '{"session_id": "s"}', [])


def test_an_extra_argument_is_the_payload_when_stdin_is_empty(tmp_path: Path) -> None:
    path = tmp_path / "a.1.hooks"
    hook(path, "notify", '{"type": "agent-turn-complete"}', stdin="")
    hook(path, "Stop", stdin="{}")
    first, second = lines(path)
    assert first["payload"] == '{"type": "agent-turn-complete"}'
    assert second["event"] == "Stop"


def test_without_its_variable_it_says_where_it_belongs(tmp_path: Path) -> None:
    result = hook(None, "Stop", stdin="{}")
    assert result.returncode == 2
    assert "AGENTSUP_HOOKS is not set" in result.stderr


def test_a_writer_that_keeps_stdin_open_does_not_hang_it(tmp_path: Path) -> None:
    path = tmp_path / "a.1.hooks"
    env = {"PATH": "/usr/bin:/bin", "AGENTSUP_HOOKS": str(path)}
    started = time.monotonic()
    with subprocess.Popen(
        [sys.executable, "-m", "agentsup", "hook", "Stop"], stdin=subprocess.PIPE, env=env
    ) as proc:
        assert proc.stdin is not None
        proc.stdin.write(b'{"partial": ')
        proc.stdin.flush()
        assert proc.wait(timeout=20) == 0  # the stdin stays open: it gives up waiting after 2 s
        proc.stdin.close()
    assert time.monotonic() - started < 20
    [line] = lines(path)
    assert line["payload"] == '{"partial": '


def test_the_engine_reads_complete_lines_only_and_resumes_from_its_offset(tmp_path: Path) -> None:
    path = tmp_path / "a.1.hooks"
    hook(path, "Stop", stdin="{}")
    hook(path, "PermissionRequest", stdin=json.dumps({"tool_name": "Bash", "tool_input": {"command": "ls"}}))
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"event": "Stop", "payl')  # a line still being written
    preset = ClaudePreset()
    signals, offset = hook_signals(path, 0, preset)
    assert [s.kind for s in signals] == [HookKind.TURN_DONE, HookKind.NEEDS_INPUT]
    assert signals[1].text == "Bash: ls"
    assert offset == len(whole)
    with path.open("ab") as f:
        f.write(b'oad": "{}"}\nnot json\n[1]\n')
    signals, offset = hook_signals(path, offset, preset)
    assert [s.kind for s in signals] == [HookKind.TURN_DONE]
    assert offset == path.stat().st_size
    assert hook_signals(tmp_path / "missing", 0, preset) == ([], 0)
