"""The two helpers most test modules need: run `tier` in-process, read the ledger's rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from typer.testing import CliRunner

from tiercli.cli import app

runner = CliRunner()


def tier(*args, input=None):
    """`tier ARGS` through Typer's CliRunner (stdout and stderr apart); arguments may be paths."""
    return runner.invoke(app, [str(a) for a in args], input=input)


def rows(home_or_db) -> list[dict]:
    """Every call row of a ledger (a tier home or the file itself), in the order they were started."""
    path = Path(home_or_db)
    db = path / "ledger.db" if path.is_dir() else path
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at, rowid")]
    finally:
        conn.close()


def git(root: Path, *args: str) -> str:
    """`git ARGS` in `root`; its stdout (raises on a non-zero exit)."""
    import subprocess

    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def git_repo(root: Path, files: dict[str, str], message: str = "start") -> Path:
    """A new git repository at `root` whose first commit holds `files` and a .gitignore for caches."""
    root.mkdir()
    for name, text in files.items():
        (root / name).write_text(text)
    (root / ".gitignore").write_text("__pycache__/\n")
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "-c", "user.email=t@example.com", "-c", "user.name=t", "commit", "-qm", message)
    return root
