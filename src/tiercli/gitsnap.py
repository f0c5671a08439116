"""A git working tree's state, snapshotted before a `tier run` attempt and put back after a failed one.

The snapshot is three objects in the repository's own object store, made without touching the
working tree, the index or any ref:
  head    the commit checked out (and the branch, if one is)
  index   the index as a tree (`git write-tree`)
  files   every file that is not ignored, tracked or not, as a tree (`git add -A` into a temporary
          index file, then `write-tree`)
Restoring: check out the branch again if the attempt switched, `git reset --hard head` (the branch
moves back if the agent committed; its commits stay in the reflog), `git read-tree -u --reset files`
(the working tree becomes the snapshot, untracked files included, as if they were tracked), then
`git clean -fd` (removes exactly the files the attempt created: everything the snapshot had is in
the index at that moment), then `git read-tree index` (the index as it was; the untracked files of
the start are untracked again). Ignored files (build output, virtualenvs, caches) are neither saved
nor removed. A restore that fails leaves the snapshot's ids in the message, so it can be done by hand.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from tiercli.errors import TierError, UsageError


class GitError(TierError):
    exit_code = 1


def _git(root: Path | str, *args: str, env: dict[str, str] | None = None, check: bool = True) -> str:
    try:
        proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, env=env,
                              errors="replace", stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("tier run needs git on PATH (it restores the working tree after a failed attempt)") from None
    if check and proc.returncode != 0:
        raise GitError(f"git {' '.join(args[:2])} failed: {(proc.stderr or proc.stdout).strip()[:300]}")
    return proc.stdout


@dataclass(frozen=True)
class Snapshot:
    root: str  # the repository's top level
    head: str  # commit id
    branch: str | None  # refs/heads/... checked out, None when detached
    index_tree: str
    files_tree: str
    dirty: tuple[str, ...]  # `git status --porcelain` lines at the start (empty: a clean tree)

    def describe(self) -> str:
        return f"head {self.head[:12]}, files tree {self.files_tree[:12]}, index tree {self.index_tree[:12]}"


def repo_root(cwd: str | os.PathLike) -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=cwd, capture_output=True, text=True,
                             stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UsageError("tier run needs git on PATH (it restores the working tree after a failed attempt)") from None
    if out.returncode != 0:
        raise UsageError(f"{cwd} is not inside a git working tree",
                         "tier run restores the tree after a failed attempt; in a new project: "
                         "git init && git add -A && git commit -m start")
    return out.stdout.strip()


def status_lines(root: str) -> tuple[str, ...]:
    return tuple(line for line in _git(root, "status", "--porcelain", "--untracked-files=all").splitlines() if line)


def take(cwd: str | os.PathLike) -> Snapshot:
    """Snapshot the repository `cwd` is in. UsageError when it cannot be restored later (no commit
    yet, a merge or rebase half done)."""
    root = repo_root(cwd)
    head = _git(root, "rev-parse", "--verify", "--quiet", "HEAD^{commit}", check=False).strip()
    if not head:
        raise UsageError("the repository has no commit yet", "commit a starting point first (git add -A && git commit)")
    git_dir = Path(_git(root, "rev-parse", "--absolute-git-dir").strip())
    for marker in ("MERGE_HEAD", "rebase-merge", "rebase-apply", "CHERRY_PICK_HEAD", "REVERT_HEAD"):
        if (git_dir / marker).exists():
            raise UsageError(f"a git operation is in progress in {root} ({marker})", "finish or abort it first")
    branch = _git(root, "symbolic-ref", "--quiet", "HEAD", check=False).strip() or None
    index_tree = _git(root, "write-tree").strip()
    with tempfile.TemporaryDirectory(prefix="tier-run-") as tmp:
        index = Path(tmp) / "index"
        real_index = git_dir / "index"
        if real_index.exists():
            index.write_bytes(real_index.read_bytes())
        env = {**os.environ, "GIT_INDEX_FILE": str(index)}
        _git(root, "add", "-A", env=env)
        files_tree = _git(root, "write-tree", env=env).strip()
    return Snapshot(root, head, branch, index_tree, files_tree, status_lines(root))


def restore(snap: Snapshot) -> None:
    """Put the working tree, the index and the checked-out branch back as they were at `snap`."""
    root = snap.root
    try:
        current = _git(root, "symbolic-ref", "--quiet", "HEAD", check=False).strip() or None
        if current != snap.branch:
            target = snap.branch.removeprefix("refs/heads/") if snap.branch else snap.head
            _git(root, "checkout", "--force", "--quiet", *([] if snap.branch else ["--detach"]), target)
        _git(root, "reset", "--hard", "--quiet", snap.head)
        _git(root, "read-tree", "-u", "--reset", snap.files_tree)
        _git(root, "clean", "-fdq")
        _git(root, "read-tree", snap.index_tree)
    except GitError as exc:
        raise GitError(f"could not restore the working tree: {exc.message}",
                       f"by hand, in {root}: git reset --hard {snap.head} && git read-tree -u --reset "
                       f"{snap.files_tree} && git clean -fd && git read-tree {snap.index_tree}") from None


def changed_since(snap: Snapshot) -> bool:
    """Whether the attempt changed anything git sees (files, index or the commit checked out)."""
    root = snap.root
    if _git(root, "rev-parse", "HEAD").strip() != snap.head:
        return True
    return status_lines(root) != snap.dirty
