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
