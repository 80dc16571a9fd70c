"""An agent's files before it starts, on a real run directory: inputs linked, context written."""

from __future__ import annotations

import json
from pathlib import Path

from agentsup.plan.model import AgentSpec
from agentsup.supervisor.agentfiles import UpstreamFacts, agent_environment, prepare_agent, upstream_json
from agentsup.supervisor.events import JSON
from agentsup.supervisor.rundir import RunDir, RunMeta, create_run_dir


def _run(tmp_path: Path) -> RunDir:
    meta = RunMeta("chain", "/plans/plan.toml", "agentsup-test", "chain", 1_700_000_000.0)
    return create_run_dir(tmp_path / "state", meta, "", {})


def _upstream(run: RunDir, name: str, files: dict[str, str], exit_code: int | None = 0) -> UpstreamFacts:
    out = run.out_dir(name)
    for rel, text in files.items():
        (out / rel).parent.mkdir(parents=True, exist_ok=True)
        (out / rel).write_text(text)
    return UpstreamFacts(name, "succeeded", exit_code, 1.5, out, log=None)


def _prepare(
    run: RunDir, agent: str, attempt: int, upstreams: list[UpstreamFacts], extra: dict[str, JSON]
) -> None:
    prepare_agent(run, AgentSpec(name=agent, cmd="true"), attempt, upstreams, extra)


_DOCUMENTED = {
    "AGENTSUP_RUN",
    "AGENTSUP_AGENT",
    "AGENTSUP_ATTEMPT",
    "AGENTSUP_OUT",
    "AGENTSUP_IN",
    "AGENTSUP_CONTEXT",
    "AGENTSUP_DONE",
}


def _context(run: RunDir, agent: str) -> dict[str, JSON]:
    ctx = json.loads(run.context_file(agent).read_text())
    assert isinstance(ctx, dict)
    return ctx


def test_prepare_creates_the_agents_directories(tmp_path: Path) -> None:
    run = _run(tmp_path)
    _prepare(run, "solo", 1, [], {})
    assert run.attempt_dir("solo", 1).is_dir()
    assert run.out_dir("solo").is_dir()
    assert run.in_dir("solo").is_dir()
    assert list(run.in_dir("solo").iterdir()) == []
    ctx = _context(run, "solo")
    assert (ctx["agent"], ctx["attempt"], ctx["upstreams"]) == ("solo", 1, {})


def test_each_upstream_out_dir_is_linked_into_in(tmp_path: Path) -> None:
    run = _run(tmp_path)
    fetch = _upstream(run, "fetch", {"words.txt": "alpha\n"})
    parse = _upstream(run, "parse", {"tree.json": "{}"})
    _prepare(run, "report", 1, [fetch, parse], {})
    in_dir = run.in_dir("report")
    assert sorted(p.name for p in in_dir.iterdir()) == ["fetch", "parse"]
    assert (in_dir / "fetch").is_symlink()
    assert (in_dir / "fetch").resolve() == run.out_dir("fetch").resolve()
    assert (in_dir / "fetch" / "words.txt").read_text() == "alpha\n"
    assert (in_dir / "parse" / "tree.json").read_text() == "{}"


def test_context_lists_upstream_facts_with_relative_files(tmp_path: Path) -> None:
    run = _run(tmp_path)
    build = _upstream(run, "build", {"b.log": "x", "sub/deep/a.txt": "y"}, exit_code=3)
    _prepare(run, "test", 2, [build], {"note": "extra facts"})
    ctx = _context(run, "test")
    assert ctx["attempt"] == 2
    assert ctx["note"] == "extra facts"
    upstreams = ctx["upstreams"]
    assert isinstance(upstreams, dict)
    assert list(upstreams) == ["build"]
    facts = upstreams["build"]
    assert isinstance(facts, dict)
    assert {k: facts[k] for k in ("name", "state", "exit_code", "duration", "out_dir", "files")} == {
        "name": "build",
        "state": "succeeded",
        "exit_code": 3,
        "duration": 1.5,
        "out_dir": str(run.out_dir("build")),
        "files": ["b.log", "sub/deep/a.txt"],
    }


def test_prepare_is_idempotent_and_a_retry_rewrites_the_context(tmp_path: Path) -> None:
    run = _run(tmp_path)
    up = _upstream(run, "up", {"first.txt": "1"})
    _prepare(run, "down", 1, [up], {})
    (run.out_dir("down") / "partial.txt").write_text("kept")
    _upstream(run, "up", {"second.txt": "2"})
    _prepare(run, "down", 1, [up], {})
    _prepare(run, "down", 2, [up], {})
    assert (run.in_dir("down") / "up").resolve() == run.out_dir("up").resolve()
    assert (run.out_dir("down") / "partial.txt").read_text() == "kept"
    assert run.attempt_dir("down", 2).is_dir()
    ctx = _context(run, "down")
    assert ctx["attempt"] == 2
    upstreams = ctx["upstreams"]
    assert isinstance(upstreams, dict)
    assert upstreams["up"] == upstream_json(up)
    assert upstream_json(up)["files"] == ["first.txt", "second.txt"]
    assert not run.context_file("down").with_suffix(".tmp").exists()


def test_a_stale_link_or_file_in_in_is_replaced(tmp_path: Path) -> None:
    run = _run(tmp_path)
    up = _upstream(run, "up", {"f.txt": "fresh"})
    in_dir = run.in_dir("down")
    in_dir.mkdir(parents=True)
    (in_dir / "up").symlink_to(tmp_path / "gone", target_is_directory=True)  # dangling
    _prepare(run, "down", 1, [up], {})
    assert (in_dir / "up" / "f.txt").read_text() == "fresh"


def test_agent_environment_has_every_agentsup_variable(tmp_path: Path) -> None:
    run = _run(tmp_path)
    env = agent_environment(run, "build", 3)
    assert {k: v for k, v in env.items() if k in _DOCUMENTED} == {
        "AGENTSUP_RUN": "chain",
        "AGENTSUP_AGENT": "build",
        "AGENTSUP_ATTEMPT": "3",
        "AGENTSUP_OUT": str(run.out_dir("build")),
        "AGENTSUP_IN": str(run.in_dir("build")),
        "AGENTSUP_CONTEXT": str(run.context_file("build")),
        "AGENTSUP_DONE": str(run.done_file("build", 3)),
    }
    assert run.done_file("build", 3).parent == run.panes_dir
    assert all(k.startswith("AGENTSUP_") for k in env)


def test_the_environment_points_at_what_prepare_creates(tmp_path: Path) -> None:
    run = _run(tmp_path)
    _prepare(run, "a", 1, [], {})
    env = agent_environment(run, "a", 1)
    assert Path(env["AGENTSUP_OUT"]).is_dir()
    assert Path(env["AGENTSUP_IN"]).is_dir()
    assert json.loads(Path(env["AGENTSUP_CONTEXT"]).read_text())["agent"] == "a"
