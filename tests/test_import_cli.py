"""`tier import` on the command line: what the summary says, a non-log file, progress only on a TTY."""

from __future__ import annotations

import io
from pathlib import Path

from typer.testing import CliRunner

from tiercli.cli import app
from tiercli.render_import import progress_bar

runner = CliRunner()
HERE = Path(__file__).resolve().parent
CC = HERE / "data" / "claude_code"
CODEX = HERE / "data" / "codex"


def test_first_import_names_partial_lines_not_duplicates(tmp_path):
    db = tmp_path / "l.db"
    res = runner.invoke(app, ["import", "claude-code", str(CC), "--db", str(db)])
    assert res.exit_code == 0, res.output
    assert "duplicate" not in res.stdout
    assert "6 extra line(s) of calls already counted" in res.stdout and "8 call(s) added" in res.stdout
    again = runner.invoke(app, ["import", "claude-code", str(CC), "--db", str(db)])
    assert "0 call(s) added" in again.stdout and "8 call(s) already in the ledger" in again.stdout
    cx = runner.invoke(app, ["import", "codex", str(CODEX), "--db", str(db)])
    assert cx.exit_code == 0 and "5 call(s) added" in cx.stdout and "repeated token count(s)" in cx.stdout


def test_a_yaml_file_exits_non_zero_with_one_line(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("model_list:\n  - model_name: tier1\n    litellm_params: {model: x}\n")
    db = tmp_path / "l.db"
    res = runner.invoke(app, ["import", "claude-code", str(bad), "--db", str(db)])
    assert res.exit_code == 4
    assert "is not a Claude Code session log" in res.output and "Traceback" not in res.output
    assert len(res.output.strip().splitlines()) == 1


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_only_on_a_terminal():
    piped = io.StringIO()
    with progress_bar("importing", piped) as update:
        assert update is None
    assert piped.getvalue() == ""
    tty = _Tty()
    with progress_bar("importing", tty) as update:
        update(1, 2, 5_000_000, 10_000_000, 1234)
    assert "importing" in tty.getvalue()
