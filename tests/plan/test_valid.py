"""Valid plans load into the model with defaults applied, paths resolved and regexes compiled."""

from __future__ import annotations

from pathlib import Path

import pytest

from agentsup.plan import (
    AgentSpec,
    Backoff,
    Dependency,
    DoneKind,
    OnFailure,
    Severity,
    When,
    load_plan,
    parse_plan,
)
from tests.plan import examples
from tests.plan.parsing import BASE, parse


def test_minimal_plan_gets_every_default() -> None:
    plan = parse(examples.MINIMAL)
    assert plan.path == BASE / "plan.toml"
    assert plan.run.name == "plan"
    assert plan.run.workdir == BASE
    assert plan.run.max_parallel is None
    assert plan.run.on_failure is OnFailure.HALT
    assert dict(plan.agents) == {"only": AgentSpec(name="only", cmd="true", line=1)}
    assert plan.failure_policy("only") is OnFailure.HALT


def test_every_key_is_read() -> None:
    plan = parse(examples.EVERY_KEY)
    assert plan.run.name == "release-2"
    assert plan.run.workdir == BASE / "work"
    assert plan.run.max_parallel == 3
    assert plan.run.on_failure is OnFailure.CONTINUE
    assert list(plan.agents) == ["build", "test", "report"]

    build, test, report = plan.agents.values()
    assert build.cmd == "make -j"
    assert build.argv is None
    assert build.cwd == BASE / "work" / "src"
    assert build.line == 15
    assert test.cmd is None
    assert test.argv == ("pytest", "-q")
    assert test.cwd is None
    assert test.line == 21
    assert report.line == 38

    assert test.timeout == 600.0
    assert build.timeout == 1800.0
    assert test.retries == 0
    assert build.retries == 1
    assert build.success_exit_codes == frozenset({0, 3})
    assert test.on_failure is OnFailure.HALT
    assert build.on_failure is None
    assert plan.failure_policy("build") is OnFailure.CONTINUE
    assert plan.failure_policy("test") is OnFailure.HALT
    assert plan.dependents("build") == ("test", "report")


def test_defaults_are_inherited_and_env_is_merged() -> None:
    plan = parse(examples.EVERY_KEY)
    build, test, _ = plan.agents.values()
    assert dict(build.env) == {"LOG": "debug", "LEVEL": "3", "FAST": "true", "RATIO": "0.5"}
    assert dict(test.env) == {"LOG": "debug", "LEVEL": "2"}
    assert [(a.match, a.severity) for a in build.alerts] == [("Traceback", Severity.WARNING)]
    assert [(a.match, a.severity) for a in test.alerts] == [
        ("FAILED", Severity.CRITICAL),
        ("(?i)deprecat", Severity.INFO),
    ]
    assert test.alerts[1].pattern.search("DEPRECATED: x")


def test_command_comes_from_defaults_unless_the_agent_sets_one() -> None:
    plan = parse(
        """\
        [defaults]
        cmd = "claude"
        [agents.a]
        [agents.b]
        argv = ["codex"]
        """
    )
    assert (plan.agents["a"].cmd, plan.agents["a"].argv) == ("claude", None)
    assert (plan.agents["b"].cmd, plan.agents["b"].argv) == (None, ("codex",))


def test_after_both_spellings() -> None:
    plan = parse(examples.EVERY_KEY)
    assert plan.agents["test"].after == (Dependency("build"),)
    assert plan.agents["report"].after == (
        Dependency("test", When.FINISHED),
        Dependency("build", When.SUCCEEDED),
    )


def test_backoff_both_spellings() -> None:
    plan = parse(examples.EVERY_KEY)
    assert plan.agents["build"].backoff == Backoff(initial=5.0)
    assert plan.agents["test"].backoff == Backoff(initial=2.0, factor=3.0, max=60.0, jitter=0.0)
    assert plan.agents["report"].backoff == Backoff(initial=5.0)
    partial = parse('[agents.a]\ncmd = "x"\nbackoff = { factor = 1.5 }\n')
    assert partial.agents["a"].backoff == Backoff(factor=1.5)


@pytest.mark.parametrize(
    ("done", "kind", "pattern"),
    [
        ('"exit"', DoneKind.EXIT, None),
        ('"file"', DoneKind.FILE, None),
        (r"'pattern:^DONE \d+$'", DoneKind.PATTERN, r"^DONE \d+$"),
        ("'pattern:pattern:x'", DoneKind.PATTERN, "pattern:x"),
    ],
)
def test_done_variants(done: str, kind: DoneKind, pattern: str | None) -> None:
    rule = parse(f'[agents.a]\ncmd = "x"\ndone = {done}\n').agents["a"].done
    assert rule.kind is kind
    assert (rule.pattern.pattern if rule.pattern else None) == pattern
    assert str(rule) == (f"pattern:{pattern}" if pattern else kind.value)


def test_done_defaults_to_exit() -> None:
    assert parse(examples.MINIMAL).agents["only"].done.kind is DoneKind.EXIT


@pytest.mark.parametrize(
    ("workdir", "cwd", "expected_workdir", "expected_cwd"),
    [
        (None, "sub", BASE, BASE / "sub"),
        ('"w"', "sub", BASE / "w", BASE / "w" / "sub"),
        ('"../elsewhere/./w"', "../x", Path("/srv/elsewhere/w"), Path("/srv/elsewhere/x")),
        ('"/abs/w"', "/other", Path("/abs/w"), Path("/other")),
    ],
)
def test_relative_workdir_and_cwd_resolve(
    workdir: str | None, cwd: str, expected_workdir: Path, expected_cwd: Path
) -> None:
    run = f"[run]\nworkdir = {workdir}\n" if workdir else ""
    plan = parse(f'{run}[agents.a]\ncmd = "x"\ncwd = "{cwd}"\n')
    assert plan.run.workdir == expected_workdir
    assert plan.agents["a"].cwd == expected_cwd


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("plan.toml", "plan"),
        ("my plan.v2.toml", "my-plan-v2"),
        (".hidden.toml", "hidden"),
        ("_x.toml", "x"),
        ("***.toml", "plan"),
        ("a" * 80 + ".toml", "a" * 64),
    ],
)
def test_run_name_defaults_to_the_sanitised_file_stem(file: str, name: str) -> None:
    plan = parse_plan('[agents.a]\ncmd = "x"\n', file=file, base_dir=BASE)
    assert plan.run.name == name


def test_inline_and_dotted_agents_are_located() -> None:
    plan = parse(examples.INLINE)
    assert plan.agents["a"].line == 1
    assert plan.agents["b"].line == 2
    assert plan.agents["b"].after == (Dependency("a"),)


def test_load_plan_resolves_against_the_file_directory(tmp_path: Path) -> None:
    path = tmp_path / "ci.toml"
    path.write_text('[run]\nworkdir = "repo"\n[agents.a]\ncmd = "x"\n', encoding="utf-8")
    plan = load_plan(path)
    assert plan.path == path
    assert plan.run.name == "ci"
    assert plan.run.workdir == tmp_path / "repo"


def test_model_is_immutable() -> None:
    plan = parse(examples.EVERY_KEY)
    with pytest.raises(TypeError):
        plan.agents["build"].env["X"] = "y"  # type: ignore[index]
    with pytest.raises(TypeError):
        plan.agents["x"] = plan.agents["build"]  # type: ignore[index]
