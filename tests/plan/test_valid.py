"""Valid plans load into the model with defaults applied, paths resolved and regexes compiled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from agentsup.plan import (
    ActionKind,
    AgentSpec,
    Aggregate,
    Backoff,
    Dependency,
    DoneKind,
    EventName,
    Handler,
    OnFailure,
    Severity,
    Strategy,
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


def test_patterns_run_inputs_and_pools() -> None:
    plan = parse(examples.PATTERNS)
    assert plan.run.min_free_memory == 2 * 1024**3
    assert dict(plan.run.pools) == {"llm": 2, "gpu": 1}
    assert dict(plan.inputs) == {"topic": "tmux supervisors", "depth": "3", "strict": "true"}
    assert list(plan.agents) == ["fetch", "critic-a", "critic-b", "vote", "score", "merge", "master", "join"]
    assert list(plan.workers) == ["coder", "fixer"]


def test_new_agent_keys_and_their_inheritance_from_defaults() -> None:
    plan = parse(examples.PATTERNS)
    fetch, critic_a, critic_b = (plan.agents[n] for n in ("fetch", "critic-a", "critic-b"))
    assert fetch.cmd == "fetch --topic {{ inputs.topic }} --run {{ run.id }}"
    assert critic_a.argv == ("critic", "--depth", "{{ inputs.depth }}", "{{agents.fetch.out}}")
    assert critic_a.prompt == "Rate {{ inputs.topic }} from {{ agents.fetch.output }}; write result.json"
    assert fetch.prompt is None
    assert (fetch.preset, critic_a.preset) == ("shell", "shell")
    # From [defaults]:
    assert (fetch.pool, fetch.idle_after, fetch.max_rss, fetch.max_cpu, fetch.kill_over_rss) == (
        "llm",
        300.0,
        1_500_000_000,
        150.0,
        4 * 1024**3,
    )
    # Own values win:
    assert (critic_b.pool, critic_b.idle_after, critic_b.max_rss, critic_b.max_cpu) == (
        "gpu",
        30.0,
        512_000,
        0.5,
    )
    assert critic_b.kill_over_rss == 4 * 1024**3
    for spec in (fetch, critic_a, critic_b):
        assert (spec.aggregate, spec.spawns, spec.recovery, spec.parent, spec.worker) == (None,) * 5


def test_worker_templates_get_defaults_but_no_after() -> None:
    plan = parse(examples.PATTERNS)
    coder, fixer = plan.workers["coder"], plan.workers["fixer"]
    assert (coder.name, coder.worker, coder.line) == ("coder", "coder", 61)
    assert (fixer.name, fixer.worker, fixer.line) == ("fixer", "fixer", 67)
    assert coder.cmd == "code {{ task.input.file }} for {{ task.master }} in {{ run.name }}"
    assert coder.prompt == "Task {{ task.id }}: {{ task.input }} ({{ agents.fetch.exit_code }})"
    assert fixer.argv == ("fix", "{{ event.agent }}", "{{ event.data.reason }}")
    assert (coder.retries, fixer.retries) == (2, 0)
    assert (coder.pool, fixer.pool) == ("gpu", "llm")
    assert (fixer.idle_after, fixer.max_rss, fixer.kill_over_rss) == (300.0, 1_500_000_000, 8 * 1024**3)
    assert dict(fixer.env) == {"TOPIC": "x"}
    assert fixer.on_failure is OnFailure.CONTINUE
    assert coder.after == fixer.after == ()
    plan = parse('[defaults]\nafter = ["a"]\n[agents.a]\ncmd = "x"\nafter = []\n[workers.w]\ncmd = "y"\n')
    assert plan.workers["w"].after == ()


def test_aggregate_sources_become_finished_dependencies() -> None:
    plan = parse(examples.PATTERNS)
    vote, score, merge = plan.agents["vote"], plan.agents["score"], plan.agents["merge"]
    assert (vote.cmd, vote.argv) == (None, None)
    assert vote.aggregate == Aggregate(
        ("critic-a", "critic-b"), Strategy.VOTE, field="verdict", require_all=True
    )
    assert vote.after == (
        Dependency("fetch"),
        Dependency("critic-a", When.FINISHED),
        Dependency("critic-b", When.FINISHED),
    )
    assert score.aggregate == Aggregate(
        ("critic-a", "critic-b"), Strategy.WEIGHTED, field="score", confidence="certainty"
    )
    assert score.after == (Dependency("critic-a", When.FINISHED), Dependency("critic-b", When.FINISHED))
    # A source the agent already lists keeps the dependency as written.
    assert merge.aggregate == Aggregate(("critic-a",), Strategy.FUSION)
    assert merge.after == (Dependency("critic-a", When.SUCCEEDED),)
    assert plan.dependents("critic-a") == ("vote", "score", "merge")


def test_master_workers_dependency_and_recovery() -> None:
    plan = parse(examples.PATTERNS)
    master, join = plan.agents["master"], plan.agents["join"]
    assert master.spawns == "subtasks.json"
    assert (master.recovery, master.on_failure) == ("fixer", None)
    assert plan.failure_policy("master") is OnFailure.HALT
    assert join.after == (Dependency("master", workers=True), Dependency("score", When.FINISHED))
    plan = parse(
        """\
        [agents.m]
        cmd = "x"
        spawns = "t.json"
        [agents.j]
        cmd = "x"
        after = [{ agent = "m.workers", when = "finished" }, "m"]
        [workers.w]
        cmd = "x"
        """
    )
    assert plan.agents["j"].after == (Dependency("m", When.FINISHED, workers=True), Dependency("m"))


def test_handlers_are_fully_parsed() -> None:
    plan = parse(examples.PATTERNS)
    assert plan.handlers == (
        Handler(0, EventName.AGENT_FAILED, ActionKind.SPAWN, agent="critic-*", worker="fixer", line=72),
        Handler(
            1,
            EventName.ALERT,
            ActionKind.SEND,
            severity=Severity.CRITICAL,
            match=re.compile("(?i)rate limit"),
            target="master",
            text="slow down, {{ event.agent }}: {{ event.line }}",
            line=78,
        ),
        Handler(
            2,
            EventName.RESOURCE,
            ActionKind.THROTTLE,
            severity=Severity.WARNING,
            max_parallel=1,
            duration=600.0,
            line=86,
        ),
        Handler(
            3,
            EventName.EXTERNAL,
            ActionKind.NOTIFY,
            name="deploy-*",
            message="{{ event.name }}: {{ event.data.url }} (run {{ run.id }}, {{ inputs.topic }})",
            line=93,
        ),
        Handler(4, EventName.AGENT_IDLE, ActionKind.RESTART, line=99),
        Handler(5, EventName.USER_INPUT, ActionKind.KILL, target="fetch", line=103),
        Handler(6, EventName.AGENT_NEEDS_INPUT, ActionKind.STOP, line=108),
        Handler(
            7,
            EventName.AGENT_COMPLETED,
            ActionKind.NOTIFY,
            agent="join",
            message="done: {{ agents.join.state }}",
            line=112,
        ),
    )


def test_handlers_written_inline_are_located() -> None:
    plan = parse(
        """\
        on = [
          { event = "alert", do = "stop" },
          { event = "external", do = "stop" },
        ]
        [agents.a]
        cmd = "x"
        """
    )
    assert [(h.index, h.event, h.line) for h in plan.handlers] == [
        (0, EventName.ALERT, 2),
        (1, EventName.EXTERNAL, 3),
    ]


def test_new_keys_have_no_effect_when_absent() -> None:
    plan = parse(examples.MINIMAL)
    assert (plan.run.min_free_memory, dict(plan.run.pools)) == (None, {})
    assert (dict(plan.inputs), dict(plan.workers), plan.handlers) == ({}, {}, ())


@pytest.mark.parametrize(
    ("overrides", "inputs"),
    [
        ({}, {"topic": "tmux", "depth": "3"}),
        ({"topic": "textual"}, {"topic": "textual", "depth": "3"}),
        ({"depth": "", "topic": "a=b c"}, {"topic": "a=b c", "depth": ""}),
    ],
)
def test_set_overrides_declared_inputs(overrides: dict[str, str], inputs: dict[str, str]) -> None:
    text = '[inputs]\ntopic = "tmux"\ndepth = 3\n[agents.a]\ncmd = "x {{ inputs.topic }}"\n'
    plan = parse_plan(text, file="plan.toml", base_dir=BASE, overrides=overrides)
    assert dict(plan.inputs) == inputs
    with pytest.raises(TypeError):
        plan.inputs["topic"] = "y"  # type: ignore[index]


def test_load_plan_takes_overrides(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text('[inputs]\ntopic = "tmux"\n[agents.a]\ncmd = "x"\n', encoding="utf-8")
    assert dict(load_plan(path, {"topic": "zellij"}).inputs) == {"topic": "zellij"}
