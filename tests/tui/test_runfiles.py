"""What the dashboard reads beside the event log: usage, last output lines, an agent's files."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from agentsup.supervisor.rundir import RunDir
from agentsup.supervisor.worktrees import agent_worktree
from agentsup.tui.runfiles import MAX_OUTPUTS, TableSampler, Usage, last_line, read_agent_files, read_usage


def test_the_last_line_is_the_last_non_blank_one_as_the_screen_shows_it(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    log.write_bytes(b"first\n\x1b[1;32mgreen\x1b[0m done\tnow\n\n   \n")
    assert last_line(log) == "green done now"
    log.write_bytes(b"step 1\nprogress 10%\rprogress 90%")  # a line still being written counts
    assert last_line(log) == "progress 90%"
    log.write_bytes(b"\xff\xfeok\r\n")
    assert last_line(log) == "\ufffd\ufffdok"
    assert last_line(tmp_path / "missing.log") == ""


def test_the_last_line_is_found_near_the_end_of_a_big_log(tmp_path: Path) -> None:
    log = tmp_path / "big.log"
    log.write_text("x" * 100_000 + "\n" + "line\n" * 10_000 + "the end\n")
    assert last_line(log) == "the end"


def test_usage_skips_what_it_cannot_read(tmp_path: Path) -> None:
    path = tmp_path / "usage.json"
    assert read_usage(path) == {}
    path.write_text("{not json")
    assert read_usage(path) == {}
    path.write_text(
        json.dumps(
            {
                "a": {"cpu_percent": 12.5, "rss": 1000, "processes": 2},
                "b": {"cpu_percent": "high", "rss": 1},
                "c": [],
            }
        )
    )
    assert read_usage(path) == {"a": Usage(12.5, 1000)}


def test_the_sampler_reads_a_log_while_it_grows_and_once_more_after(tmp_path: Path) -> None:
    log = tmp_path / "a.log"
    usage = tmp_path / "usage.json"
    sampler = TableSampler(usage)
    assert sampler.sample({"a": (log, True)}, with_usage=True).last_lines == {"a": ""}

    log.write_text("one\n")
    usage.write_text(json.dumps({"a": {"cpu_percent": 1.0, "rss": 10}}))
    sample = sampler.sample({"a": (log, True)}, with_usage=True)
    assert sample.last_lines == {"a": "one"}
    assert sample.usage == {"a": Usage(1.0, 10)}
    assert sampler.sample({"a": (log, True)}, with_usage=False).usage == {}

    log.write_text("one\ntwo\n")
    assert sampler.sample({"a": (log, False)}, with_usage=False).last_lines == {"a": "two"}
    # Final: what is written after that is not read.
    log.write_text("one\ntwo\nthree\n")
    assert sampler.sample({"a": (log, False)}, with_usage=False).last_lines == {"a": "two"}
    # A new attempt's log is.
    log2 = tmp_path / "a.2.log"
    log2.write_text("again\n")
    assert sampler.sample({"a": (log2, True)}, with_usage=False).last_lines == {"a": "again"}


def test_an_agents_files_are_its_context_and_its_outputs(tmp_path: Path) -> None:
    run = RunDir(tmp_path / "run")
    files = read_agent_files(run, "w/1")
    assert files.context == "(no context file yet)"
    assert files.outputs == ()

    out = run.out_dir("w/1")
    (out / "sub").mkdir(parents=True)
    (out / "result.json").write_text("{}")
    (out / "sub" / "notes.txt").write_text("hello")
    run.context_file("w/1").write_text(json.dumps({"agent": "w/1", "upstreams": {}}))
    files = read_agent_files(run, "w/1")
    assert files.context.splitlines() == ["{", '  "agent": "w/1",', '  "upstreams": {}', "}"]
    assert files.outputs == (("result.json", 2), ("sub/notes.txt", 5))
    assert files.more_outputs == 0

    run.context_file("w/1").write_text("not json")
    assert read_agent_files(run, "w/1").context == "not json"
    for i in range(MAX_OUTPUTS + 5):
        (out / f"f{i:03d}").write_text("")
    files = read_agent_files(run, "w/1")
    assert len(files.outputs) == MAX_OUTPUTS
    assert files.more_outputs == 7


def test_a_worktree_agents_files_show_its_branch_and_diff_stat(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text("[user]\n\tname = T\n\temail = t@example.invalid\n")
    for key, value in (
        ("HOME", str(home)),
        ("GIT_CONFIG_GLOBAL", str(home / ".gitconfig")),
        ("GIT_CONFIG_NOSYSTEM", "1"),
        ("GIT_CEILING_DIRECTORIES", str(tmp_path)),
    ):
        monkeypatch.setenv(key, value)
    repo = tmp_path / "repo"
    repo.mkdir()
    for args in (("init", "-q"), ("commit", "-q", "--allow-empty", "-m", "init")):
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)
    run = RunDir(tmp_path / "run")
    assert read_agent_files(run, "coder").worktree is None  # no worktree: nothing to show
    tree = agent_worktree(repo, run.path, "coder")
    assert read_agent_files(run, "coder").worktree == "agentsup/run/coder: no changes"
    (tree / "new.txt").write_text("one\ntwo\n")
    shown = read_agent_files(run, "coder").worktree
    assert shown is not None
    branch, stat = shown.split("\n", 1)
    assert branch == "agentsup/run/coder"
    assert "new.txt" in stat
    assert "1 file changed, 2 insertions(+)" in stat
