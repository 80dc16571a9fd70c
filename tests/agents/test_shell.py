"""The shell preset: cmd under ``sh -c``, argv as given, the host's AGENTSUP_* variables on top."""

from __future__ import annotations

import subprocess
from pathlib import Path
from types import MappingProxyType

import pytest

from agentsup.agents.shell import ShellPreset
from agentsup.plan import AgentSpec


def test_a_shell_command_runs_under_sh_c_unchanged() -> None:
    cmd = 'echo "$AGENTSUP_OUT" | tr a-z A-Z; exit 3'
    launch = ShellPreset().launch(AgentSpec(name="a", cmd=cmd), {})
    assert launch.argv == ("sh", "-c", cmd)


def test_argv_runs_as_given() -> None:
    argv = ("python3", "-c", "print('$HOME')", "two words")
    launch = ShellPreset().launch(AgentSpec(name="a", argv=argv), {})
    assert launch.argv == argv


def test_the_launch_argv_really_runs_the_command() -> None:
    cmd = 'printf "%s|%s" "$GREETING" "$AGENTSUP_AGENT"'
    spec = AgentSpec(name="a", cmd=cmd, env=MappingProxyType({"GREETING": "hi"}))
    launch = ShellPreset().launch(spec, {"AGENTSUP_AGENT": "a"})
    out = subprocess.run(list(launch.argv), env=dict(launch.env), capture_output=True, text=True, check=True)
    assert out.stdout == "hi|a"


def test_env_merges_plan_env_with_agentsup_variables_winning() -> None:
    plan_env = MappingProxyType({"MODE": "fast", "AGENTSUP_OUT": "/plan/override", "AGENTSUP_RUN": "fake"})
    spec = AgentSpec(name="a", cmd="true", env=plan_env)
    host = {"AGENTSUP_OUT": "/run/agents/a/out", "AGENTSUP_RUN": "r1", "AGENTSUP_AGENT": "a"}
    launch = ShellPreset().launch(spec, host)
    assert dict(launch.env) == {
        "MODE": "fast",
        "AGENTSUP_OUT": "/run/agents/a/out",
        "AGENTSUP_RUN": "r1",
        "AGENTSUP_AGENT": "a",
    }


def test_launch_leaves_its_inputs_alone() -> None:
    plan_env = MappingProxyType({"MODE": "fast"})
    spec = AgentSpec(name="a", cmd="true", env=plan_env)
    host = {"AGENTSUP_RUN": "r1"}
    ShellPreset().launch(spec, host)
    assert dict(spec.env) == {"MODE": "fast"}
    assert host == {"AGENTSUP_RUN": "r1"}


def test_a_spec_with_neither_cmd_nor_argv_is_an_error() -> None:
    with pytest.raises(ValueError, match="neither cmd nor argv"):
        ShellPreset().launch(AgentSpec(name="broken"), {})


@pytest.mark.parametrize(
    ("cmd", "argv"),
    [
        ("sleep 2", ("sleep", "2")),
        ("  python3   worker.py --jobs=3  ", ("python3", "worker.py", "--jobs=3")),
        ("./bin/run-agent a@b 50% x+y k:v a,b", ("./bin/run-agent", "a@b", "50%", "x+y", "k:v", "a,b")),
        ("make", ("make",)),
    ],
)
def test_a_plain_command_is_execd_without_a_shell(cmd: str, argv: tuple[str, ...]) -> None:
    assert ShellPreset().launch(AgentSpec(name="a", cmd=cmd), {}).argv == argv


@pytest.mark.parametrize(
    "cmd",
    [
        "echo hi",  # sh's echo is not /bin/echo
        "true",
        "exit 3",
        ". ./env.sh",
        "cd sub",
        "FOO=1 prog",
        "prog $HOME",
        "prog 'two words'",
        'prog "x"',
        "prog *.txt",
        "prog ~/x",
        "prog > out",
        "a; b",
        "a && b",
        "a | b",
        "prog # note",
        "prog\targ",
        "prog\nother",
        "prog \\x",
        "if true",
        "   ",
    ],
)
def test_anything_the_shell_must_read_runs_under_sh_c(cmd: str) -> None:
    assert ShellPreset().launch(AgentSpec(name="a", cmd=cmd), {}).argv == ("sh", "-c", cmd)


def test_a_plain_command_runs_exactly_as_under_sh_c(tmp_path: Path) -> None:
    show = tmp_path / "show-args"
    show.write_text('#!/bin/sh\nprintf "%s|" "$0" "$#" "$@"\nexit 7\n')
    show.chmod(0o755)
    cmd = f"{show} --jobs=3  a@b 50%"
    direct = ShellPreset().launch(AgentSpec(name="a", cmd=cmd), {}).argv
    assert direct[0] == str(show)
    ran = [
        subprocess.run(argv, capture_output=True, text=True, check=False)
        for argv in (direct, ("sh", "-c", cmd))
    ]
    assert ran[0].stdout == ran[1].stdout == f"{show}|3|--jobs=3|a@b|50%|"
    assert ran[0].returncode == ran[1].returncode == 7
