"""Run directories on a real filesystem: layout, modes, errors that say what to do, lookup and listing."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from agentsup.supervisor.rundir import (
    MAX_SOCKET_PATH,
    RunDirError,
    RunMeta,
    create_run_dir,
    default_state_dir,
    find_run,
    list_runs,
)

PLAN = '[agents.a]\ncmd = "true"\n'


def _meta(run_id: str, created_at: float = 1_700_000_000.0) -> RunMeta:
    return RunMeta(
        run_id=run_id,
        plan_file="/plans/plan.toml",
        tmux_socket="agentsup-test",
        session=run_id,
        created_at=created_at,
        keep_session=True,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_create_run_dir_lays_out_a_private_directory(tmp_path: Path) -> None:
    environ = {"PATH": "/usr/bin", "SECRET": "s3cret", "TMUX": "/tmp/tmux-0/default,1,0", "TMUX_PANE": "%3"}
    run = create_run_dir(tmp_path / "state", _meta("r1"), PLAN, environ)
    assert run.path == tmp_path / "state" / "runs" / "r1"
    assert run.run_id == "r1"
    assert _mode(run.path) == 0o700
    assert run.plan_copy.read_text() == PLAN
    assert _mode(run.environ_file) == 0o600
    assert json.loads(run.environ_file.read_text()) == {"PATH": "/usr/bin", "SECRET": "s3cret"}
    assert run.read_environ() == {"PATH": "/usr/bin", "SECRET": "s3cret"}
    assert run.agents_dir.is_dir()
    assert run.panes_dir.is_dir()
    assert run.read_meta() == _meta("r1")


def test_the_run_dir_is_0700_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0o000)
    try:
        run = create_run_dir(tmp_path / "state", _meta("open-umask"), PLAN, {"A": "1"})
    finally:
        os.umask(old)
    assert _mode(run.path) == 0o700
    assert _mode(run.environ_file) == 0o600


def test_a_run_id_already_in_use_is_refused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    create_run_dir(state, _meta("twice"), PLAN, {})
    with pytest.raises(RunDirError, match=r"run id 'twice' is already in use") as err:
        create_run_dir(state, _meta("twice"), "other plan", {})
    assert "--run-id" in str(err.value)
    assert (state / "runs" / "twice" / "plan.toml").read_text() == PLAN


@pytest.mark.parametrize("run_id", ["", "../escape", "a/b", "-dash-first", "has space", "x" * 97, "dot.ted"])
def test_an_invalid_run_id_is_refused(tmp_path: Path, run_id: str) -> None:
    with pytest.raises(RunDirError, match=r"invalid run id"):
        create_run_dir(tmp_path / "state", _meta(run_id), PLAN, {})
    assert not (tmp_path / "escape").exists()
    assert not (tmp_path / "state" / "runs" / run_id / "run.json").exists()


def test_a_control_socket_path_too_long_is_refused_with_the_fix(tmp_path: Path) -> None:
    state = tmp_path / ("d" * (MAX_SOCKET_PATH - len(str(tmp_path))))
    with pytest.raises(RunDirError, match=r"over the 107") as err:
        create_run_dir(state, _meta("long"), PLAN, {})
    assert "AGENTSUP_STATE_DIR" in str(err.value)
    assert "--state-dir" in str(err.value)
    assert not (state / "runs" / "long").exists()


def test_the_longest_allowed_socket_path_is_accepted(tmp_path: Path) -> None:
    suffix = len("/runs/r/control.sock")
    state = tmp_path / ("d" * (MAX_SOCKET_PATH - suffix - len(str(tmp_path)) - 1))
    run = create_run_dir(state, _meta("r"), PLAN, {})
    assert len(str(run.control_socket).encode()) == MAX_SOCKET_PATH


def test_a_state_dir_that_cannot_be_created_names_the_path(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    with pytest.raises(RunDirError, match=r"cannot create the run directory") as err:
        create_run_dir(blocker / "state", _meta("r1"), PLAN, {})
    assert str(blocker / "state") in str(err.value)


def test_default_state_dir_prefers_agentsup_state_dir() -> None:
    environ = {"AGENTSUP_STATE_DIR": "/explicit", "XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}
    assert default_state_dir(environ) == Path("/explicit")


def test_default_state_dir_falls_back_to_xdg_state_home() -> None:
    environ = {"AGENTSUP_STATE_DIR": "", "XDG_STATE_HOME": "/xdg", "HOME": "/home/u"}
    assert default_state_dir(environ) == Path("/xdg/agentsup")


def test_default_state_dir_falls_back_to_home() -> None:
    environ = {"XDG_STATE_HOME": "", "HOME": "/home/u"}
    assert default_state_dir(environ) == Path("/home/u/.local/state/agentsup")


def test_find_run_returns_the_run(tmp_path: Path) -> None:
    state = tmp_path / "state"
    made = create_run_dir(state, _meta("known"), PLAN, {})
    assert find_run(state, "known") == made


def test_find_run_of_an_unknown_id_lists_the_known_runs(tmp_path: Path) -> None:
    state = tmp_path / "state"
    create_run_dir(state, _meta("alpha"), PLAN, {})
    create_run_dir(state, _meta("beta"), PLAN, {})
    with pytest.raises(RunDirError, match=r"no run 'gamma'") as err:
        find_run(state, "gamma")
    assert "known runs" in str(err.value)
    assert "alpha" in str(err.value)
    assert "beta" in str(err.value)


def test_find_run_refuses_an_id_that_leaves_the_runs_directory(tmp_path: Path) -> None:
    state = tmp_path / "state"
    create_run_dir(state, _meta("inside"), PLAN, {})
    (state / "run.json").write_text("{}")  # state/runs/.. holds a run.json
    with pytest.raises(RunDirError, match=r"no run '\.\.'"):
        find_run(state, "..")


def test_find_run_with_no_runs_at_all(tmp_path: Path) -> None:
    with pytest.raises(RunDirError, match=r"no run 'x'") as err:
        find_run(tmp_path / "empty", "x")
    assert "known runs" not in str(err.value)


def test_list_runs_is_oldest_first(tmp_path: Path) -> None:
    state = tmp_path / "state"
    ages = {"zulu": 100.0, "alpha": 300.0, "mike": 200.0}  # created in name order, not age order
    for run_id, t in ages.items():
        run = create_run_dir(state, _meta(run_id, created_at=1_700_000_000.0 + t), PLAN, {})
        os.utime(run.meta_file, (1_700_000_000.0 + t, 1_700_000_000.0 + t))
    (state / "runs" / "not-a-run").mkdir()  # no run.json: ignored
    assert [r.run_id for r in list_runs(state)] == ["zulu", "mike", "alpha"]


def test_list_runs_of_a_missing_state_dir_is_empty(tmp_path: Path) -> None:
    assert list_runs(tmp_path / "nothing-here") == []
