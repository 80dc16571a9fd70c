"""The shell preset: cmd under ``sh -c``, argv as given, the host's AGENTSUP_* variables on top."""

from __future__ import annotations

import subprocess
from types import MappingProxyType

import pytest

from agentsup.agents.shell import ShellPreset
from agentsup.plan import AgentSpec


def test_cmd_runs_under_sh_c_unchanged() -> None:
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
