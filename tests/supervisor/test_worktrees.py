"""Agents' git worktrees against real git repositories in tmp_path, under a git config of the test's own."""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from agentsup.supervisor.worktrees import (
    WorktreeError,
    agent_worktree,
    branch_name,
    create_worktree,
    diff_stat,
    remove_worktrees,
    worktree_path,
)

GITCONFIG = "[user]\n\tname = Test\n\temail = test@example.invalid\n[init]\n\tdefaultBranch = main\n"


@pytest.fixture(autouse=True)
def git_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Git reads this file only: never the user's or the system's config, never a repo above tmp_path."""
    home = tmp_path / "home"
    home.mkdir()
    (home / ".gitconfig").write_text(GITCONFIG)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(home / ".gitconfig"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with one commit: a.txt (two lines) and gone.txt, *.log ignored."""
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "--quiet")
    (path / "a.txt").write_text("one\ntwo\n")
    (path / "gone.txt").write_text("x\n")
    (path / ".gitignore").write_text("*.log\n")
    git(path, "add", ".")
    git(path, "commit", "--quiet", "-m", "init")
    return path


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    path = tmp_path / "state" / "runs" / "r1"
    path.mkdir(parents=True)
    return path


def branches(repo: Path) -> set[str]:
    return set(git(repo, "branch", "--format=%(refname:short)").splitlines())


def registered(repo: Path) -> list[str]:
    return [
        line.split(" ", 1)[1]
        for line in git(repo, "worktree", "list", "--porcelain").splitlines()
        if line.startswith("worktree ")
    ]


def test_branch_names_are_valid_git_branches_one_per_agent(repo: Path) -> None:
    agents = ["a", "x_y", "v1.2", "master", "master/worker-1", "master/worker-1/fix", "master--worker-1"]
    names = [branch_name("r1-0101-120000-ab12", a) for a in agents]
    for name in names:
        assert git(repo, "check-ref-format", "--branch", name) == name
    assert len(set(names)) == len(agents)
    assert branch_name("r1", "master/worker-1") == "agentsup/r1/master+worker-1"


@pytest.mark.parametrize("bad", ["", ".hidden", "a..b", "x.lock", "a.", "a b", "m//w", "a~b", "a:b", "a@{1}"])
def test_names_git_cannot_take_are_refused(bad: str, run_dir: Path) -> None:
    with pytest.raises(WorktreeError, match="cannot name a git branch"):
        branch_name("r1", bad)
    with pytest.raises(WorktreeError, match="cannot name a git branch"):
        worktree_path(run_dir, bad)


def test_worktree_path_keeps_nesting_readable(run_dir: Path) -> None:
    assert worktree_path(run_dir, "coder") == run_dir / "worktrees" / "coder"
    assert worktree_path(run_dir, "master/worker-1") == run_dir / "worktrees" / "master~worker-1"


def test_create_checks_out_a_new_branch_from_head(repo: Path, run_dir: Path) -> None:
    path = worktree_path(run_dir, "coder")
    assert create_worktree(repo, path, "agentsup/r1/coder") == path
    assert (path / "a.txt").read_text() == "one\ntwo\n"
    assert git(path, "branch", "--show-current") == "agentsup/r1/coder"
    assert git(path, "rev-parse", "HEAD") == git(repo, "rev-parse", "HEAD")
    assert git(repo, "branch", "--show-current") == "main"
    assert git(repo, "status", "--porcelain") == ""
    assert diff_stat(path) == ""


def test_create_again_reuses_the_worktree_as_the_agent_left_it(repo: Path, run_dir: Path) -> None:
    path = agent_worktree(repo, run_dir, "coder")
    (path / "a.txt").write_text("one\ntwo\nthree\n")
    (path / "new.txt").write_text("n\n")
    (repo / "a.txt").write_text("moved on\n")
    git(repo, "commit", "--quiet", "-am", "the repo moves on")

    assert agent_worktree(repo, run_dir, "coder") == path
    assert (path / "a.txt").read_text() == "one\ntwo\nthree\n"
    assert (path / "new.txt").read_text() == "n\n"
    assert registered(repo) == [str(repo), str(path)]
    assert diff_stat(path).splitlines()[-1] == " 2 files changed, 2 insertions(+)"


def test_a_kept_branch_comes_back_with_its_commits(repo: Path, run_dir: Path) -> None:
    path = agent_worktree(repo, run_dir, "coder")
    (path / "a.txt").write_text("one\ntwo\nthree\n")
    git(path, "commit", "--quiet", "-am", "agent's work")
    remove_worktrees(repo, run_dir)
    assert not path.exists()
    (repo / "a.txt").write_text("moved on\n")
    git(repo, "commit", "--quiet", "-am", "the repo moves on")

    assert agent_worktree(repo, run_dir, "coder") == path
    assert git(path, "log", "-1", "--format=%s") == "agent's work"
    assert diff_stat(path).splitlines()[-1] == " 1 file changed, 1 insertion(+)"


def test_a_worktree_deleted_by_hand_is_made_again(repo: Path, run_dir: Path) -> None:
    path = agent_worktree(repo, run_dir, "coder")
    subprocess.run(["rm", "-rf", str(path)], check=True)
    assert agent_worktree(repo, run_dir, "coder") == path
    assert (path / "a.txt").exists()
    assert registered(repo) == [str(repo), str(path)]


def test_nested_dynamic_agents_get_worktrees_side_by_side(repo: Path, run_dir: Path) -> None:
    agents = ["master", "master/worker-1", "master/worker-2", "master/worker-1/fix"]
    with ThreadPoolExecutor(len(agents)) as pool:  # the engine creates them from several threads at once
        paths = list(pool.map(lambda a: agent_worktree(repo, run_dir, a), agents))
    assert [p.name for p in paths] == ["master", "master~worker-1", "master~worker-2", "master~worker-1~fix"]
    for agent, path in zip(agents, paths, strict=True):
        assert git(path, "branch", "--show-current") == branch_name("r1", agent)
    assert branches(repo) == {"main", *(branch_name("r1", a) for a in agents)}


def test_diff_stat_counts_commits_edits_and_untracked_files_without_touching_the_index(
    repo: Path, run_dir: Path
) -> None:
    path = agent_worktree(repo, run_dir, "coder")
    (path / "a.txt").write_text("one\ntwo\nthree\n")
    git(path, "commit", "--quiet", "-am", "committed")
    (path / "a.txt").write_text("ONE\ntwo\nthree\nfour\n")  # modified, not staged
    (path / "gone.txt").unlink()
    (path / "staged.txt").write_text("s\n")
    git(path, "add", "staged.txt")
    (path / "sub").mkdir()
    (path / "sub" / "untracked.txt").write_text("1\n2\n3\n")
    (path / "debug.log").write_text("ignored\n")
    index = Path(git(path, "rev-parse", "--path-format=absolute", "--git-path", "index"))
    status = git(path, "status", "--porcelain")  # refreshes the index first, so it stays as it is
    before = index.read_bytes()

    stat = diff_stat(path)

    assert index.read_bytes() == before
    assert git(path, "status", "--porcelain") == status
    files = {line.split("|")[0].strip(): line.split("|")[1].split()[0] for line in stat.splitlines()[:-1]}
    assert files == {"a.txt": "4", "gone.txt": "1", "staged.txt": "1", "sub/untracked.txt": "3"}
    assert stat.splitlines()[-1] == " 4 files changed, 7 insertions(+), 2 deletions(-)"


def test_diff_stat_without_a_worktree_says_so(repo: Path, run_dir: Path) -> None:
    with pytest.raises(WorktreeError, match=r"there is no worktree at .*worktrees/coder"):
        diff_stat(worktree_path(run_dir, "coder"))
    (run_dir / "plain").mkdir()
    with pytest.raises(WorktreeError, match="is not the top of a git worktree"):
        diff_stat(run_dir / "plain")


def test_remove_takes_the_runs_worktrees_and_keeps_branches(repo: Path, run_dir: Path) -> None:
    coder = agent_worktree(repo, run_dir, "coder")
    worker = agent_worktree(repo, run_dir, "master/worker-1")
    other = agent_worktree(repo, run_dir.parent / "r2", "coder")
    (coder / "uncommitted.txt").write_text("lost with the worktree\n")
    subprocess.run(["rm", "-rf", str(worker)], check=True)

    removed = remove_worktrees(repo, run_dir)

    assert [(r.path, r.branch, r.error) for r in removed] == [
        (coder, "agentsup/r1/coder", None),
        (worker, "agentsup/r1/master+worker-1", None),
    ]
    assert registered(repo) == [str(repo), str(other)]
    assert branches(repo) == {"main", "agentsup/r1/coder", "agentsup/r1/master+worker-1", "agentsup/r2/coder"}
    assert remove_worktrees(repo, run_dir) == []


def test_unborn_head_is_refused_with_how_to_fix(tmp_path: Path, run_dir: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "--quiet")
    with pytest.raises(WorktreeError, match=r"has no commits yet .*commit --allow-empty"):
        agent_worktree(empty, run_dir, "coder")
    assert not (run_dir / "worktrees").exists()


def test_a_directory_that_is_no_repository_is_refused(tmp_path: Path, run_dir: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    with pytest.raises(WorktreeError, match=r"plain is not a git repository .*set \[run\] repo"):
        agent_worktree(plain, run_dir, "coder")
    with pytest.raises(WorktreeError, match=r"missing does not exist"):
        agent_worktree(tmp_path / "missing", run_dir, "coder")
    with pytest.raises(WorktreeError, match=r"plain is not a git repository"):
        remove_worktrees(plain, run_dir)


def test_git_missing_from_path_is_said(
    repo: Path, run_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "nothing-here"))
    with pytest.raises(WorktreeError, match=r"git is not on PATH.*install git"):
        agent_worktree(repo, run_dir, "coder")


def test_a_path_taken_by_something_else_is_refused(repo: Path, run_dir: Path) -> None:
    path = worktree_path(run_dir, "coder")
    path.mkdir(parents=True)
    (path / "notes.txt").write_text("mine\n")
    with pytest.raises(WorktreeError, match=r"worktrees/coder already exists and is not a worktree"):
        create_worktree(repo, path, "agentsup/r1/coder")
    assert (path / "notes.txt").read_text() == "mine\n"
    assert "agentsup/r1/coder" not in branches(repo)

    other = agent_worktree(repo, run_dir, "other")
    git(other, "switch", "--quiet", "-c", "elsewhere")
    with pytest.raises(WorktreeError, match=r"on branch elsewhere, not on agentsup/r1/other; switch it back"):
        agent_worktree(repo, run_dir, "other")


def test_many_worktrees_created_at_once_all_succeed(repo: Path, run_dir: Path) -> None:
    """Unserialised, concurrent `git worktree add`s trip over each other's half-made entries."""
    agents = [f"w{i}" for i in range(16)]
    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda a: agent_worktree(repo, run_dir, a), agents))
    assert all((p / "a.txt").exists() for p in paths)
    assert len(registered(repo)) == 1 + len(agents)
