"""The agent-CLI keys: what they load into, their defaults, and the mistakes they are checked for."""

from __future__ import annotations

import pytest

from agentsup.agents.registry import BUILT_IN
from agentsup.plan.keys import PRESETS
from agentsup.plan.model import AgentMode, Approval, DoneKind
from tests.plan.parsing import BASE, parse, problems_of


def test_a_cli_agent_loads_every_key() -> None:
    plan = parse(
        """\
        [run]
        repo = "src"
        rate_limit_wait = "90s"
        [agents.fix]
        preset = "claude"
        prompt = "Fix it."
        mode = "interactive"
        approve = "always"
        flags = ["--verbose", "--add-dir", "/tmp"]
        model = "sonnet"
        program = "/opt/claude"
        worktree = true
        done = "idle:30s"
        """
    )
    spec = plan.agents["fix"]
    assert spec.is_cli
    assert (spec.preset, spec.mode, spec.approve) == ("claude", AgentMode.INTERACTIVE, Approval.ALWAYS)
    assert spec.flags == ("--verbose", "--add-dir", "/tmp")
    assert (spec.model, spec.program, spec.worktree) == ("sonnet", "/opt/claude", True)
    assert (spec.done.kind, spec.done.quiet, str(spec.done)) == (DoneKind.IDLE, 30.0, "idle:30s")
    assert plan.run.repo == BASE / "src"
    assert plan.run.rate_limit_wait == 90.0


def test_defaults_interactive_asks_and_is_done_after_its_turn() -> None:
    plan = parse(
        """\
        [agents.a]
        preset = "codex"
        prompt = "x"
        [agents.b]
        preset = "gemini"
        [agents.c]
        preset = "aider"
        mode = "oneshot"
        prompt = "x"
        """
    )
    a, b, c = (plan.agents[n] for n in "abc")
    assert (a.mode, a.approve, a.done.kind) == (AgentMode.INTERACTIVE, Approval.ASK, DoneKind.TURN)
    assert b.done.kind is DoneKind.EXIT  # no prompt: done when the person using it quits
    assert c.done.kind is DoneKind.EXIT
    assert (plan.run.repo, plan.run.rate_limit_wait) == (None, 300.0)
    assert not a.worktree


def test_shell_agents_may_have_worktrees_and_stay_shell() -> None:
    spec = parse('[agents.a]\ncmd = "make"\nworktree = true\n').agents["a"]
    assert (spec.preset, spec.is_cli, spec.worktree) == ("shell", False, True)


def test_defaults_may_set_cli_keys_for_a_mixed_plan() -> None:
    plan = parse(
        """\
        [defaults]
        approve = "always"
        mode = "oneshot"
        [agents.a]
        cmd = "make"
        [agents.b]
        preset = "claude"
        prompt = "x"
        """
    )
    assert plan.agents["b"].approve is Approval.ALWAYS
    assert plan.agents["b"].mode is AgentMode.ONESHOT
    assert not plan.agents["a"].is_cli


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[agents.a]\npreset = "claude"\ncmd = "claude -p hi"\nprompt = "x"\n',
            'plan.toml:3: agents.a.cmd: preset "claude" runs its own CLI: remove "cmd" (use '
            '"flags" for extra '
            'arguments, "program" for another executable)',
        ),
        (
            '[agents.a]\npreset = "codex"\nmode = "oneshot"\n',
            'plan.toml:3: agents.a.mode: mode "oneshot" needs a "prompt": the CLI gets it on '
            "its command line",
        ),
        (
            '[agents.a]\npreset = "codex"\nmode = "oneshot"\nprompt = "x"\ndone = "turn"\n',
            'plan.toml:5: agents.a.done: "turn" is for mode "interactive"; a one-shot CLI is '
            "done when it exits",
        ),
        (
            '[agents.a]\npreset = "gemini"\ndone = "turn"\n',
            'plan.toml:3: agents.a.done: "turn" needs a "prompt": the turn is the CLI\'s answer to it',
        ),
        (
            '[agents.a]\ncmd = "x"\napprove = "always"\n',
            'plan.toml:3: agents.a.approve: "approve" is for agent CLI presets (claude, '
            "codex, gemini, aider), "
            'and this agent\'s preset is "shell"',
        ),
        (
            '[agents.a]\ncmd = "x"\ndone = "idle:5s"\n',
            'plan.toml:3: agents.a.done: "idle:5s" needs an interactive agent CLI preset, not "shell"',
        ),
        (
            '[agents.a]\npreset = "claude"\nprompt = "x"\ndone = "idle:soon"\n',
            'plan.toml:4: agents.a.done: invalid duration "soon": expected a number of '
            "seconds or a number with "
            'a unit (ms, s, m, h, d), e.g. "30s", "10m", "1h30m", "500ms"',
        ),
        (
            '[agents.a]\npreset = "claude"\nprompt = "x"\napprove = "yes"\n',
            'plan.toml:4: agents.a.approve: invalid value "yes": expected one of "never", "ask", "always"',
        ),
    ],
)
def test_mistakes_are_located_and_explained(text: str, expected: str) -> None:
    assert problems_of(text) == [expected]


def test_the_plan_and_the_registry_know_the_same_built_in_presets() -> None:
    assert list(PRESETS) == list(BUILT_IN)
