"""`agentsup diff` and `agentsup clean` on runs whose agents have git worktrees, against real repositories."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from agentsup.supervisor.rundir import RunDir, RunMeta, create_run_dir
from agentsup.supervisor.worktrees import agent_worktree
from tests.e2e.harness import Agentsup, wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.tmux]

GITCONFIG = "[user]\n\tname = Test\n\temail = test@example.invalid\n[init]\n\tdefaultBranch = main\n"


@pytest.fixture
def repo(agentsup: Agentsup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository with one commit; git here and in agentsup reads the test's own config only."""
    home = Path(agentsup.env["HOME"])
    (home / ".gitconfig").write_text(GITCONFIG)
    git_env = {
        "GIT_CONFIG_GLOBAL": str(home / ".gitconfig"),
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_CEILING_DIRECTORIES": str(tmp_path),
    }
    agentsup.env.update(git_env)
    monkeypatch.setenv("HOME", str(home))
    for key, value in git_env.items():
        monkeypatch.setenv(key, value)
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet")
    (path / "a.txt").write_text("one\n")
    git(path, "add", ".")
    git(path, "commit", "--quiet", "-m", "init")
    return path


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


def plan_text(repo: Path, cmd: str = "true") -> str:
    return (
        f'[run]\nname = "wt"\nrepo = "{repo}"\n\n'
        f'[agents.coder]\ncmd = "{cmd}"\nworktree = true\n\n'
        f'[agents.plain]\ncmd = "{cmd}"\n'
    )


def make_run(agentsup: Agentsup, tmp_path: Path, run_id: str, text: str) -> RunDir:
    """A run directory as `agentsup start` lays it out, with no engine."""
    plan = tmp_path / "plan.toml"
    plan.write_text(text)
    meta = RunMeta(run_id, str(plan), agentsup.socket, run_id, time.time())
    return create_run_dir(agentsup.state_dir, meta, text, agentsup.env)


def test_diff_shows_the_agents_changes_and_clean_keeps_its_branch(
    agentsup: Agentsup, repo: Path, tmp_path: Path
) -> None:
    run = make_run(agentsup, tmp_path, "wt1", plan_text(repo))
    coder = agent_worktree(repo, run.path, "coder")
    worker = agent_worktree(repo, run.path, "coder/fix")

    assert agentsup.run("diff", "wt1", "coder").stdout == "no changes on branch agentsup/wt1/coder\n"
    (coder / "a.txt").write_text("one\ntwo\n")
    git(coder, "commit", "--quiet", "-am", "agent's work")
    (coder / "new.txt").write_text("n\n")
    lines = agentsup.run("diff", "wt1", "coder").stdout.splitlines()
    assert [line.split("|")[0].strip() for line in lines[:-1]] == ["a.txt", "new.txt"]
    assert lines[-1] == " 2 files changed, 2 insertions(+)"

    r = agentsup.run("diff", "wt1", "nobody", check=False)
    assert (r.returncode, r.stderr) == (2, "agentsup: no agent 'nobody' in run wt1\n")
    r = agentsup.run("diff", "wt1", "plain", check=False)
    assert r.returncode == 1
    assert r.stderr.endswith("agent 'plain' has no worktree: its plan entry does not set worktree = true\n")

    r = agentsup.run("clean", "wt1")
    assert r.stdout.splitlines() == [
        f"removed {coder}",
        f"removed {worker}",
        f"kept 2 branches in {repo}:",
        "  agentsup/wt1/coder",
        "  agentsup/wt1/coder+fix",
    ]
    assert not coder.exists()
    assert not worker.exists()
    assert git(repo, "log", "-1", "--format=%s", "agentsup/wt1/coder") == "agent's work"
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1

    r = agentsup.run("diff", "wt1", "coder", check=False)
    assert r.returncode == 1
    assert "has not started yet, or `agentsup clean wt1` removed it" in r.stderr
    assert "its branch agentsup/wt1/coder keeps what it committed" in r.stderr
    assert agentsup.run("clean", "wt1").stdout == f"run wt1 has no worktrees in {repo}\n"


def test_clean_of_a_run_without_a_repository_says_what_is_wrong(
    agentsup: Agentsup, repo: Path, tmp_path: Path
) -> None:
    run = make_run(agentsup, tmp_path, "wt2", plan_text(tmp_path / "not-a-repo"))
    assert agentsup.run("clean", "wt2").stdout == "run wt2 has no worktrees\n"
    run.worktrees_dir.mkdir()
    (tmp_path / "not-a-repo").mkdir()
    r = agentsup.run("clean", "wt2", check=False)
    assert r.returncode == 1
    assert "not-a-repo is not a git repository" in r.stderr
    assert "set [run] repo to one" in r.stderr


def test_clean_refuses_a_live_run_unless_forced(agentsup: Agentsup, repo: Path, tmp_path: Path) -> None:
    plan = tmp_path / "plan.toml"
    plan.write_text(plan_text(repo, cmd="sleep 300"))
    agentsup.run("start", str(plan), "--detach", "--run-id", "live")
    wait_until(lambda: agentsup.status_json("live")["state"] == "running")
    coder = agent_worktree(repo, agentsup.run_dir("live"), "coder")

    r = agentsup.run("clean", "live", check=False)
    assert r.returncode == 1
    assert "run live is still running; `agentsup stop live` it first, or --force" in r.stderr
    assert coder.is_dir()

    r = agentsup.run("clean", "live", "--force")
    assert r.stdout.splitlines()[0] == f"removed {coder}"
    assert not coder.exists()
    agentsup.run("stop", "live")


def test_a_run_gives_each_worktree_agent_its_branch_and_diff_shows_its_work(
    agentsup: Agentsup, repo: Path, tmp_path: Path
) -> None:
    plan = tmp_path / "run.toml"
    plan.write_text(
        f'[run]\nname = "wt"\nrepo = "{repo}"\nworkdir = "{repo}"\n\n'
        "[agents.coder]\n"
        'cmd = "pwd > where.txt && echo two >> a.txt && git commit -qam work && echo new > b.txt"\n'
        "worktree = true\n\n"
        '[agents.check]\ncmd = "pwd > checked.txt"\nafter = ["coder"]\n'
    )
    agentsup.run("start", str(plan), "--no-tui", "--run-id", "wt-1")
    run_id = "wt-1"
    run_dir = agentsup.run_dir(run_id)
    tree = run_dir / "worktrees" / "coder"
    assert (tree / "where.txt").read_text().strip() == str(tree)  # it ran in its worktree
    assert (repo / "checked.txt").read_text().strip() == str(repo)  # the other agent in the workdir
    assert not (repo / "b.txt").exists()
    assert git(repo, "rev-parse", "--abbrev-ref", "HEAD") == "main"
    assert git(tree, "rev-parse", "--abbrev-ref", "HEAD") == f"agentsup/{run_id}/coder"
    stat = agentsup.run("diff", run_id, "coder").stdout
    assert "a.txt" in stat
    assert "b.txt" in stat  # untracked work counts too
    agentsup.run("clean", run_id)
    assert not tree.exists()
    assert git(repo, "log", "-1", "--format=%s", f"agentsup/{run_id}/coder") == "work"


def test_a_worktree_agent_works_in_its_worktree_even_when_the_caller_s_git_dir_points_elsewhere(
    agentsup: Agentsup, repo: Path, tmp_path: Path
) -> None:
    """`agentsup start` run from a git hook (or a shell that set GIT_DIR) passes GIT_DIR on; in a worktree
    agent it would turn every git command back to the main repository and its branch."""
    agentsup.env["GIT_DIR"] = str(repo / ".git")
    agentsup.env["GIT_WORK_TREE"] = str(repo)
    plan = tmp_path / "run.toml"
    plan.write_text(
        f'[run]\nname = "wt"\nrepo = "{repo}"\nworkdir = "{repo}"\n\n'
        '[agents.coder]\ncmd = "git rev-parse --abbrev-ref HEAD > branch.txt && echo two >> a.txt && '
        'git commit -qam work"\nworktree = true\n'
    )

    agentsup.run("start", str(plan), "--no-tui", "--run-id", "wt-git")

    tree = agentsup.run_dir("wt-git") / "worktrees" / "coder"
    assert (tree / "branch.txt").read_text().strip() == "agentsup/wt-git/coder"
    assert git(repo, "log", "-1", "--format=%s", "main") == "init"  # the main branch got no commit
    assert git(repo, "log", "-1", "--format=%s", "agentsup/wt-git/coder") == "work"
