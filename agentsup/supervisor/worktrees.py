"""Git worktrees for agents: one worktree and branch per agent with ``worktree = true``.

An agent's worktree is ``RUN_DIR/worktrees/NAME`` on branch ``agentsup/RUN/NAME``, started from the repo's
HEAD; the commit it started from is kept in ``RUN_DIR/worktrees/.NAME.base`` so ``diff_stat`` can show what
the agent changed, and survives ``remove_worktrees`` with the branch. Every function blocks on ``git``:
call them off the event loop.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from agentsup.supervisor.rundir import RunDir

BRANCH_PREFIX = "agentsup"
# A nested agent's "/" becomes "+": a ref cannot be both a file (x/m) and a directory (x/m/w), and "+" is
# valid in a ref but in no agent name, so two agents never share a branch.
_NESTING = "+"
_SEGMENT = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9_.-]*\Z")
# Variables that point git at another repository, index or work tree than the one named by ``-C``.
REPO_ENV = frozenset(
    {
        "GIT_DIR",
        "GIT_WORK_TREE",
        "GIT_INDEX_FILE",
        "GIT_COMMON_DIR",
        "GIT_OBJECT_DIRECTORY",
        "GIT_ALTERNATE_OBJECT_DIRECTORIES",
        "GIT_IMPLICIT_WORK_TREE",
        "GIT_PREFIX",
        "GIT_NAMESPACE",
    }
)


class WorktreeError(Exception):
    """A worktree cannot be created, read or removed; the message says what, where and how to fix it."""


@dataclass(frozen=True)
class RemovedWorktree:
    """One worktree of a run that ``remove_worktrees`` removed (``error`` None) or failed to remove."""

    path: Path
    branch: str | None  # None: the worktree was on a detached HEAD
    error: str | None = None


def branch_name(run_id: str, agent: str) -> str:
    """``agentsup/RUN/AGENT``, a dynamic agent's ``master/worker-1`` as ``master+worker-1``."""
    _check_name(agent)
    return f"{BRANCH_PREFIX}/{run_id}/{agent.replace('/', _NESTING)}"


def worktree_path(run_dir: Path, agent: str) -> Path:
    """``RUN_DIR/worktrees/AGENT``, a dynamic agent's ``master/worker-1`` as ``master~worker-1``."""
    _check_name(agent)
    return RunDir(run_dir).worktree(agent)


def agent_worktree(repo: Path, run_dir: Path, agent: str) -> Path:
    """Create or reuse ``agent``'s worktree for the run in ``run_dir``; returns its path (the agent's cwd)."""
    return create_worktree(repo, worktree_path(run_dir, agent), branch_name(run_dir.name, agent))


def create_worktree(repo: Path, path: Path, branch: str) -> Path:
    """Check out ``branch`` in a new worktree at ``path``, creating the branch from ``repo``'s HEAD.

    Idempotent: a worktree already at ``path`` on ``branch`` is reused as it is (a retry or a resumed run
    goes on with what the agent left); a ``branch`` that exists without a worktree (after
    ``remove_worktrees``) is checked out again at ``path``.
    """
    with _locked(repo):
        if _run_git(repo, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).returncode:
            raise WorktreeError(
                f"the git repository {repo} has no commits yet (its HEAD is unborn), so there is nothing "
                f"to start a worktree from; make a first commit, e.g. "
                f"`git -C {repo} commit --allow-empty -m init`"
            )
        return _create(repo, path, branch)


def _create(repo: Path, path: Path, branch: str) -> Path:
    target = path.resolve()
    registered = _worktrees(repo).get(target)
    if registered is not None:
        ref, exists = registered
        if exists and ref == f"refs/heads/{branch}":
            _ensure_base(repo, target, branch)
            return path
        if exists:
            on = "a detached HEAD" if ref is None else f"branch {ref.removeprefix('refs/heads/')}"
            raise WorktreeError(
                f"{path} is a worktree of {repo} on {on}, not on {branch}; switch it back "
                f"(`git -C {path} switch {branch}`) or remove it (`git -C {repo} worktree remove {path}`)"
            )
        # registered but its directory is gone (deleted by hand): drop the stale registration
        _run_git(repo, "worktree", "remove", "--force", str(target))
    if path.exists() and not (path.is_dir() and not any(path.iterdir())):
        raise WorktreeError(
            f"{path} already exists and is not a worktree of {repo} on branch {branch}; "
            "move it away or delete it, then retry"
        )
    if _branch_exists(repo, branch):
        _add(repo, "worktree", "add", "--quiet", str(target), branch, branch=branch)
        _ensure_base(repo, target, branch)
    else:
        head = _run_git(repo, "rev-parse", "--verify", "HEAD^{commit}").stdout.strip()
        _add(repo, "worktree", "add", "--quiet", "-b", branch, str(target), head, branch=branch)
        _write_base(target, head)
    return path


def diff_stat(path: Path) -> str:
    """``git diff --stat`` of the worktree at ``path`` against the commit its branch started from.

    Counts commits on the branch, staged and unstaged edits, and untracked files (not ignored ones). Reads
    only: untracked files are marked intent-to-add in a throwaway copy of the index, never in the real one.
    An empty string means no changes.
    """
    if not path.is_dir():
        raise WorktreeError(f"there is no worktree at {path}")
    top = _run_git(path, "rev-parse", "--show-toplevel", check=False)
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != path.resolve():
        raise WorktreeError(f"{path} is not the top of a git worktree: {_why(top)}")
    base_file = _base_file(path.resolve())
    try:
        base = base_file.read_text().strip()
    except FileNotFoundError:
        raise WorktreeError(
            f"no record of the commit {path}'s branch started from ({base_file} is missing); "
            f"`git -C {path} diff --stat COMMIT` shows the changes since a commit you choose"
        ) from None
    except OSError as exc:
        raise WorktreeError(f"cannot read {base_file}: {exc.strerror}") from exc
    index = path / _run_git(path, "rev-parse", "--git-path", "index").stdout.strip()  # may be relative
    with tempfile.TemporaryDirectory(prefix="agentsup-diff-") as tmp:
        scratch = Path(tmp) / "index"
        if index.exists():
            shutil.copyfile(index, scratch)
        env = {"GIT_INDEX_FILE": str(scratch), "GIT_OPTIONAL_LOCKS": "0"}
        _run_git(path, "add", "--intent-to-add", "--", ":/", env=env)
        out = _run_git(path, "diff", "--stat", "--no-color", "--no-ext-diff", base, "--", env=env).stdout
    return out.rstrip("\n")


def remove_worktrees(repo: Path, run_dir: Path) -> list[RemovedWorktree]:
    """Remove every worktree of the run in ``run_dir`` (uncommitted changes included); keep the branches.

    Tries each worktree even when one fails; a failure is in its ``error``. Then prunes ``repo``'s
    registrations of worktrees whose directories are gone.
    """
    root = RunDir(run_dir).worktrees_dir.resolve()
    removed: list[RemovedWorktree] = []
    with _locked(repo):
        for wt, (ref, _exists) in sorted(_worktrees(repo).items()):  # git lists them in no set order
            if not wt.is_relative_to(root):
                continue
            branch = None if ref is None else ref.removeprefix("refs/heads/")
            r = _run_git(repo, "worktree", "remove", "--force", str(wt), check=False)
            removed.append(RemovedWorktree(wt, branch, None if r.returncode == 0 else _why(r)))
        _run_git(repo, "worktree", "prune")
    return removed


def _check_name(agent: str) -> None:
    if not all(_SEGMENT.match(s) and not s.endswith((".", ".lock")) for s in agent.split("/")):
        raise WorktreeError(
            f"agent name {agent!r} cannot name a git branch: use letters, digits, '_', '-' and '.' "
            "between '/'s (a part may not start with '.' or end with '.' or '.lock')"
        )
    if ".." in agent:
        raise WorktreeError(f"agent name {agent!r} cannot name a git branch: it contains '..'")


def _base_file(worktree: Path) -> Path:
    # a leading "." keeps it apart from every worktree: _check_name refuses names starting with "."
    return worktree.parent / f".{worktree.name}.base"


def _write_base(worktree: Path, commit: str) -> None:
    base = _base_file(worktree)
    tmp = base.with_name(base.name + ".tmp")
    tmp.write_text(commit + "\n")
    tmp.replace(base)


def _ensure_base(repo: Path, worktree: Path, branch: str) -> None:
    """Keep the recorded start of the branch; without one, take where it forked from the repo's HEAD."""
    if not _base_file(worktree).exists():
        fork = _run_git(repo, "merge-base", "HEAD", f"refs/heads/{branch}").stdout.strip()
        _write_base(worktree, fork)


@contextmanager
def _locked(repo: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``repo``'s common git directory while changing its worktrees.

    Concurrent ``git worktree add``s in one repository fail now and then ("failed to read
    .git/worktrees/X/commondir") when one lists the worktrees another is half-way through creating. An
    flock on the directory itself writes nothing into the repository, and holds across threads and processes.
    """
    common = _common_dir(repo)
    try:
        fd = os.open(common, os.O_RDONLY)
    except OSError as exc:
        raise WorktreeError(f"cannot open {common} to lock its worktrees: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def _common_dir(repo: Path) -> Path:
    """``repo``'s git directory shared by all its worktrees, or raise what is wrong with ``repo``."""
    if not repo.is_dir():
        raise WorktreeError(
            f"the repository {repo} does not exist or is not a directory; set [run] repo to a git "
            "repository (the run's workdir when repo is not set)"
        )
    r = _run_git(repo, "rev-parse", "--git-common-dir", check=False)
    if r.returncode != 0:
        raise WorktreeError(
            f"{repo} is not a git repository ({_why(r)}); set [run] repo to one, "
            f"or make it one with `git -C {repo} init` and a first commit"
        )
    return repo / r.stdout.strip()  # relative to repo unless absolute


def _branch_exists(repo: Path, branch: str) -> bool:
    r = _run_git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    return r.returncode == 0


def _worktrees(repo: Path) -> dict[Path, tuple[str | None, bool]]:
    """Every worktree registered in ``repo``: path -> (checked-out ref or None, directory exists)."""
    out = _run_git(repo, "worktree", "list", "--porcelain").stdout
    found: dict[Path, tuple[str | None, bool]] = {}
    for block in out.split("\n\n"):
        fields = dict(line.partition(" ")[::2] for line in block.splitlines() if line)
        if "worktree" in fields:
            wt = Path(fields["worktree"])
            found[wt.resolve()] = (fields.get("branch"), wt.is_dir())
    return found


def _add(repo: Path, *args: str, branch: str) -> None:
    r = _run_git(repo, *args, check=False)
    if r.returncode != 0:
        raise WorktreeError(f"cannot add a worktree for branch {branch} of {repo}: {_why(r)}")


def _why(r: subprocess.CompletedProcess[str]) -> str:
    lines = [line.removeprefix("fatal: ") for line in r.stderr.strip().splitlines()]
    return "; ".join(lines) or f"git exited {r.returncode}"


def _run_git(
    cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if k not in REPO_ENV}
    full_env.update(env or {})
    try:
        r = subprocess.run(
            ["git", "-C", str(cwd), *args], capture_output=True, text=True, env=full_env, check=False
        )
    except FileNotFoundError:
        raise WorktreeError(
            "git is not on PATH, and worktree = true needs it; install git (e.g. `apt install git`)"
        ) from None
    if check and r.returncode != 0:
        raise WorktreeError(f"`git -C {cwd} {' '.join(args)}` failed: {_why(r)}")
    return r
