"""The `agentsup` command as a user meets it: bad input, detached runs, control commands, attach."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pexpect
import pytest

from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]


def _plan(tmp_path: Path, text: str, name: str = "plan.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


WAITER = """
[run]
name = "waiter"

[agents.reader]
cmd = 'read line; echo "got: $line" | tee "$AGENTSUP_OUT/got.txt"'

[agents.sleeper]
cmd = "sleep 300"

[agents.after_reader]
after = ["reader"]
cmd = "echo downstream ran"

[agents.keeper]
cmd = "sleep 300"
"""


def test_validate_reports_every_problem_with_location(agentsup: Agentsup, tmp_path: Path) -> None:
    good = _plan(tmp_path, '[agents.a]\ncmd = "true"\n', "good.toml")
    r = agentsup.run("validate", str(good))
    assert r.stdout.strip() == f"{good}: ok, 1 agent"

    bad = _plan(
        tmp_path,
        '[agents.review]\ncmd = "true"\n\n[agents.merge]\ncmd = "true"\nafter = ["reviw"]\ntimout = "5s"\n',
        "bad.toml",
    )
    r = agentsup.run("validate", str(bad), check=False)
    assert r.returncode == 2
    lines = r.stderr.splitlines()
    assert f"{bad}:6:" in lines[0]
    assert 'agents.merge.after[0]: unknown agent "reviw"' in lines[0]
    assert 'did you mean "review"?' in lines[0]
    assert f"{bad}:7:" in lines[1]
    assert "agents.merge.timout" in lines[1]
    assert "timeout" in lines[1]
    assert lines[-1] == f"agentsup: 2 problems in {bad}; nothing was started"

    broken = _plan(tmp_path, "[agents.a\ncmd = 1\n", "broken.toml")
    r = agentsup.run("validate", str(broken), check=False)
    assert r.returncode == 2
    assert r.stderr.startswith(f"{broken}:1:")


def test_invalid_plan_starts_nothing(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = _plan(tmp_path, '[agents.a]\ncmd = "true"\nafter = ["a"]\n')
    r = agentsup.run("start", str(plan), "--no-tui", check=False)
    assert r.returncode == 2
    assert "nothing was started" in r.stderr
    assert not (agentsup.state_dir / "runs").exists()
    assert not agentsup.server_running()


def test_schema_is_draft07_json(agentsup: Agentsup) -> None:
    schema = json.loads(agentsup.run("schema").stdout)
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    assert "agents" in schema["properties"]


def test_environment_errors_are_clear(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = _plan(tmp_path, '[agents.a]\ncmd = "true"\n')

    # tmux missing: exit 2 and how to install it.
    env = dict(agentsup.env, PATH=str(Path(sys.executable).parent))
    r = subprocess.run(
        [str(Path(sys.executable).parent / "agentsup"), "start", str(plan), "--no-tui"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert r.returncode == 2
    assert "tmux" in r.stderr
    assert "install" in r.stderr

    # A state directory that cannot be created.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    r = agentsup.run("--state-dir", str(blocker / "state"), "start", str(plan), "--no-tui", check=False)
    assert r.returncode == 2
    assert "cannot create the run directory" in r.stderr
    assert str(blocker) in r.stderr

    # A run id already in use.
    agentsup.run("start", str(plan), "--no-tui", "--run-id", "once")
    r = agentsup.run("start", str(plan), "--no-tui", "--run-id", "once", check=False)
    assert r.returncode == 2
    assert "run id 'once' is already in use" in r.stderr

    # A command that does not exist fails the agent with 127, and its log says why.
    missing = _plan(tmp_path, '[agents.a]\nargv = ["no-such-program-xyz"]\n', "missing.toml")
    r = agentsup.run("start", str(missing), "--no-tui", "--run-id", "missing", check=False)
    assert r.returncode == 1
    status = agentsup.status_json("missing")
    assert status["agents"][0]["exit_code"] == 127
    assert "not found" in agentsup.logs("missing", "a")


def test_detached_run_is_driven_by_control_commands(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = _plan(tmp_path, WAITER)
    r = agentsup.run("start", str(plan), "--detach", "--run-id", "w1")
    assert r.stdout.strip() == "w1"

    def state(agent: str) -> str:
        by = {a["name"]: a for a in agentsup.status_json("w1")["agents"]}
        return str(by[agent]["state"])

    wait_until(lambda: state("reader") == "running" and state("sleeper") == "running")
    listing = agentsup.run("ls").stdout
    assert "w1" in listing
    assert "running" in listing

    # status without a run id shows the newest run.
    table = agentsup.run("status").stdout.splitlines()
    assert table[0] == "run w1: running"
    assert any(line.split()[:2] == ["sleeper", "running"] for line in table[2:])

    # send types a line into the pane; the agent reads it and finishes; its dependent runs.
    tail = agentsup.spawn("logs", "w1", "reader", "--follow")
    agentsup.run("send", "w1", "reader", "hello; $(touch pwned) `id`")
    tail.expect_exact("got: hello; $(touch pwned) `id`")
    tail.expect(pexpect.EOF)  # --follow ends with the agent
    wait_until(lambda: state("after_reader") == "succeeded")
    out = agentsup.run_dir("w1") / "agents/reader/out/got.txt"
    assert out.read_text() == "got: hello; $(touch pwned) `id`\n"
    assert not (tmp_path / "pwned").exists()

    # kill stops one agent; restart runs it again as attempt 2.
    agentsup.run("kill", "w1", "sleeper")
    wait_until(lambda: state("sleeper") == "stopped")
    agentsup.run("restart", "w1", "sleeper")
    wait_until(lambda: state("sleeper") == "running")
    by = {a["name"]: a for a in agentsup.status_json("w1")["agents"]}
    assert by["sleeper"]["attempts"] == 2

    # Refusals say why and exit 1.
    r = agentsup.run("kill", "w1", "nobody", check=False)
    assert r.returncode == 1
    assert "no agent 'nobody'" in r.stderr
    r = agentsup.run("send", "w1", "after_reader", "hi", check=False)
    assert r.returncode == 1
    assert "has no live pane" in r.stderr

    # events --follow streams until the run ends; stop ends it.
    follower = agentsup.spawn("events", "w1", "--follow")
    agentsup.run("stop", "w1")
    follower.expect(r"run\.finished\s+-\s+engine\s+\{\"state\":\"stopped\"\}")
    follower.expect(pexpect.EOF)
    assert agentsup.status_json("w1")["state"] == "stopped"
    assert state("sleeper") == "stopped"

    # Commands that need the engine say so once it is gone; read-only ones still work.
    wait_until(lambda: not (agentsup.run_dir("w1") / "control.sock").exists())
    r = agentsup.run("kill", "w1", "sleeper", check=False)
    assert r.returncode == 1
    assert "not reachable" in r.stderr
    assert "got: hello" in agentsup.logs("w1", "reader")


def test_attach_puts_the_terminal_on_the_agent_pane(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = _plan(tmp_path, WAITER)
    agentsup.run("start", str(plan), "--detach", "--run-id", "att")
    wait_until(lambda: agentsup.status_json("att")["agents"][1]["state"] == "running")
    window = agentsup.status_json("att")["agents"][1]["window_id"]

    term = agentsup.spawn("attach", "att", "sleeper")
    # The engine's own control-mode client is attached too.
    terminals = "#{?client_control_mode,,#{client_session} #{window_id}}"
    wait_until(lambda: agentsup.tmux("list-clients", "-F", terminals).strip() != "")
    assert agentsup.tmux("list-clients", "-F", terminals).split() == ["att", window]
    agentsup.tmux("detach-client", "-s", "att")
    term.expect(pexpect.EOF)
    agentsup.run("stop", "att")


def test_run_goes_on_when_the_client_goes(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = _plan(tmp_path, WAITER)
    child = agentsup.spawn("start", str(plan), "--no-tui", "--run-id", "gone")
    child.expect(r"sleeper\s+running")
    child.sendintr()
    child.expect("the run goes on in tmux")
    child.expect(pexpect.EOF)
    assert agentsup.status_json("gone")["state"] == "running"
    agentsup.run("stop", "gone")
    wait_until(lambda: agentsup.status_json("gone")["state"] == "stopped")


def test_no_engine_outlives_a_killed_server(agentsup: Agentsup, tmp_path: Path) -> None:
    plan = _plan(tmp_path, WAITER)
    agentsup.run("start", str(plan), "--detach", "--run-id", "kill-server")
    pid_file = agentsup.run_dir("kill-server") / "engine.ready"
    wait_until(pid_file.exists)
    engines = agentsup.engine_pids()
    assert len(engines) == 1
    agentsup.tmux("kill-server")
    wait_until(lambda: not agentsup.engine_pids(), timeout=15, message="the engine outlived its tmux server")
