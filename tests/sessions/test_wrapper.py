"""The wrapper script on its own, run by /bin/sh without tmux."""

from __future__ import annotations

import json
import queue
import subprocess
from pathlib import Path

import pytest
from watchdog.events import FileCreatedEvent, FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer

from agentsup.sessions import END_MARKER, BackendError, LaunchSpec, read_exit_file, render_wrapper
from agentsup.sessions.wrapper import exit_tmp_path


def make_launch(tmp_path: Path, **changes: object) -> LaunchSpec:
    fields: dict[str, object] = {
        "run": "run1",
        "agent": "a",
        "attempt": 1,
        "argv": ("true",),
        "cwd": tmp_path,
        "env": {},
        "script": tmp_path / "run.sh",
        "exit_file": tmp_path / "exit.json",
        "output_log": tmp_path / "output.log",
    }
    fields.update(changes)
    return LaunchSpec(**fields)  # type: ignore[arg-type]


def run_wrapper(launch: LaunchSpec) -> subprocess.CompletedProcess[str]:
    """Run the wrapper; its stdout without the end marker it prints last (tested on its own below)."""
    launch.script.write_text(render_wrapper(launch))
    proc = subprocess.run(["/bin/sh", str(launch.script)], capture_output=True, text=True, check=False)
    proc.stdout = proc.stdout.replace(END_MARKER.decode(), "")
    return proc


def test_exit_code_and_status_are_passed_through(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, argv=("sh", "-c", "echo out; exit 5"))

    proc = run_wrapper(launch)

    assert (proc.returncode, proc.stdout) == (5, "out\n")
    record = read_exit_file(launch.exit_file)
    assert record is not None
    assert (record.code, record.signal) == (5, None)
    assert json.loads(launch.exit_file.read_text())["code"] == 5


def test_death_by_signal_is_recorded_as_sh_does(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, argv=("sh", "-c", "kill -KILL $$"))

    proc = run_wrapper(launch)

    record = read_exit_file(launch.exit_file)
    assert record is not None
    assert (proc.returncode, record.code, record.signal) == (137, 137, 9)


def test_agent_environment_does_not_leak_into_bookkeeping(tmp_path: Path) -> None:
    launch = make_launch(
        tmp_path,
        argv=("/bin/sh", "-c", 'printf "%s" "$agentsup_code"; exit 3'),
        env={"PATH": "/nonexistent", "agentsup_code": "0"},
    )

    proc = run_wrapper(launch)

    assert (proc.returncode, proc.stdout) == (3, "0")
    record = read_exit_file(launch.exit_file)
    assert record is not None
    assert record.code == 3
    assert record.ended_at >= record.started_at > 0


def test_shell_keywords_in_argv0_are_programs(tmp_path: Path) -> None:
    proc = run_wrapper(make_launch(tmp_path, argv=("if", "true")))
    assert proc.returncode == 127
    assert "not found" in proc.stderr


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"argv": ("echo", "a\0b")}, "NUL"),
        ({"env": {"X": "a\0b"}}, "NUL"),
        ({"cwd": Path("/tmp/a\0b")}, "NUL"),
        ({"env": {"1BAD": "x"}}, "environment variable name"),
        ({"env": {"A-B": "x"}}, "environment variable name"),
        ({"argv": ()}, "empty argv"),
    ],
)
def test_unpassable_values_are_refused(tmp_path: Path, changes: dict[str, object], message: str) -> None:
    launch = make_launch(tmp_path, **changes)
    with pytest.raises(BackendError, match=message):
        render_wrapper(launch)


def test_a_second_wrapper_of_the_same_attempt_runs_nothing(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    launch = make_launch(
        tmp_path,
        argv=("sh", "-c", f"echo ran >> {ledger}; exit 4"),
        started_marker=tmp_path / "a.1.started",
    )

    first = run_wrapper(launch)
    launch.exit_file.unlink()
    second = run_wrapper(launch)

    assert first.returncode == 4
    assert (second.returncode, second.stdout) == (0, "")
    assert "started already" in second.stderr
    assert ledger.read_text() == "ran\n"
    assert not launch.exit_file.exists()  # the first attempt's record is the only one


def test_without_a_marker_the_wrapper_runs_every_time(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    launch = make_launch(tmp_path, argv=("sh", "-c", f"echo ran >> {ledger}"))

    run_wrapper(launch)
    run_wrapper(launch)

    assert ledger.read_text() == "ran\nran\n"


def test_the_wrapper_prints_the_end_marker_after_the_agent_and_before_the_exit_record(tmp_path: Path) -> None:
    launch = make_launch(tmp_path, argv=("sh", "-c", "printf 'no newline at the end'"))
    script = launch.script
    script.write_text(render_wrapper(launch))
    proc = subprocess.run(["/bin/sh", str(script)], capture_output=True, check=False)
    assert proc.stdout == b"no newline at the end" + END_MARKER


def test_the_started_guard_leaves_noclobber_off_for_the_rest(tmp_path: Path) -> None:
    """The guard creates its marker with noclobber; a stale exit.json.tmp (a wrapper killed while writing
    it) must still be overwritten afterwards, or the attempt would end without a record."""
    launch = make_launch(tmp_path, argv=("true",), started_marker=tmp_path / "a.1.started")
    exit_tmp_path(launch).write_text("stale")

    assert run_wrapper(launch).returncode == 0
    assert json.loads(launch.exit_file.read_text())["code"] == 0


def test_the_exit_record_arrives_in_its_directory_as_a_created_file_not_a_rename_within_it(
    tmp_path: Path,
) -> None:
    """The engine watches the exit file's directory. A rename inside it would report a moved-from event,
    which watchdog may hold 0.5 s (and every event behind it) waiting for the moved-to."""
    panes = tmp_path / "panes"
    panes.mkdir()
    (tmp_path / "attempt").mkdir()
    launch = make_launch(tmp_path, script=tmp_path / "attempt" / "run.sh", exit_file=panes / "a.1.exit.json")
    seen: queue.Queue[FileSystemEvent] = queue.Queue()

    class Handler(FileSystemEventHandler):
        def on_any_event(self, event: FileSystemEvent) -> None:
            if not event.is_directory:
                seen.put(event)

    observer = Observer()
    observer.schedule(Handler(), str(panes), recursive=False)
    observer.start()
    try:
        assert run_wrapper(launch).returncode == 0
        event = seen.get(timeout=10)
    finally:
        observer.stop()
        observer.join(timeout=5)

    assert (type(event), event.src_path) == (FileCreatedEvent, str(launch.exit_file))
    assert [p.name for p in panes.iterdir()] == ["a.1.exit.json"]
    assert exit_tmp_path(launch).parent == tmp_path / "attempt"


def test_unset_drops_inherited_variables_before_the_env_is_added(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GIT_DIR", "/elsewhere/.git")
    monkeypatch.setenv("GIT_WORK_TREE", "/elsewhere")
    argv = ("sh", "-c", 'echo "${GIT_DIR-none} ${GIT_WORK_TREE-none}"')
    launch = make_launch(
        tmp_path, argv=argv, unset=("GIT_DIR", "GIT_WORK_TREE"), env={"GIT_WORK_TREE": "mine"}
    )

    assert run_wrapper(launch).stdout.strip() == "none mine"


def test_unset_refuses_a_name_that_is_not_a_variable(tmp_path: Path) -> None:
    with pytest.raises(BackendError, match="not a valid environment variable name"):
        render_wrapper(make_launch(tmp_path, unset=("GIT_DIR; rm -rf x",)))
