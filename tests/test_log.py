"""`tier log`: the table fits 120 columns with imported calls' figures, its `in` is --json's
input_tokens, every filter, `tier log show ID` and `tier log --path`, on a real ledger file."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from typer.testing import CliRunner

from tiercli.cli import app
from tiercli.ledger import Ledger

runner = CliRunner()
T0 = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.timezone.utc).timestamp()
SESSION = "5c0375b4-57a5-4f26-b12d-d022ee4e51b7"  # a Claude Code session id: 36 characters


def tier(*args):
    return runner.invoke(app, [str(a) for a in args])


ROWS = [
    {"id": "a1000000-0000-0000-0000-000000000001", "started_at": T0, "session": "s1", "kind": "main", "status": "ok",
     "task_type": "bug_fix", "tier": "tier2", "served_tier": "tier2", "served_model": "claude-sonnet-4-5",
     "input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.0081, "prompt_text": "fix the failing LOGIN test",
     "decision_source": "local", "classifier": "local", "confidence": 0.82, "label": "MEDIUM",
     "meta_json": json.dumps({"reasons": ["matched 'fix' and 'test'"]}), "response_text": "the patch",
     "attempts": 2, "fallback_count": 1,
     "attempts_json": json.dumps([{"group": "tier1", "model": "claude-haiku-4-5", "error_class": "RateLimitError"}])},
    {"id": "b2000000-0000-0000-0000-000000000002", "started_at": T0 + 3600, "session": SESSION, "kind": "import",
     "source": "claude-code", "status": "ok", "decision_source": "import", "served_model": "claude-sonnet-4-20250514",
     "input_tokens": 6, "cache_read_tokens": 123_456_789, "cache_write_tokens": 2_345_678, "output_tokens": 98_765,
     "cost_usd": 1234.5678, "prompt_text": "Split complex tasks 100% into_parts"},
    {"id": "c3000000-0000-0000-0000-000000000003", "started_at": T0 + 7200, "session": "s1", "kind": "main",
     "status": "error", "error_class": "RateLimitError", "task_type": "search", "tier": "tier1", "served_tier": "tier1",
     "requested_model": "claude-haiku-4-5", "prompt_text": "where is the retry policy?"},
]


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "ledger.db"
    with Ledger(path) as ledger:
        for row in ROWS:
            ledger.upsert_call(row)
        ledger.add_feedback(ROWS[0]["id"], "good", "worked")
    return path


def ids(*args, db):
    result = tier("log", "--json", *args, "--db", db)
    assert result.exit_code == 0, result.output
    return [r["id"][:2] for r in json.loads(result.stdout)]


def test_table_fits_120_columns_with_imported_figures(db, monkeypatch):
    monkeypatch.setenv("COLUMNS", "120")
    out = tier("log", "--db", db).stdout
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 120, out
    assert lines[0].startswith("in: uncached input")  # what `in` means
    imported = next(line for line in lines if line.startswith("b2000000"))
    for figure in ("123.5M/2.3M", "98.8k", "$1234.5678"):  # abbreviated, never cut
        assert figure in imported, imported
    assert SESSION not in out and "5c0375b4-" in out  # a short session id


def test_table_in_is_json_input_tokens(db):
    data = json.loads(tier("log", "--json", "--db", db).stdout)
    row = next(r for r in data if r["id"].startswith("b2"))
    assert row["input_tokens"] == 6 and row["cache_read_tokens"] == 123_456_789
    imported = next(line for line in tier("log", "--db", db).stdout.splitlines() if line.startswith("b2000000"))
    assert " 6 " in imported  # the table's `in` is the same 6 uncached tokens, not 6 + cache


@pytest.mark.parametrize("args, expected", [
    ((), ["c3", "b2", "a1"]),
    (("-n", "1"), ["c3"]),
    (("--session", "s1"), ["c3", "a1"]),
    (("--model", "sonnet"), ["b2", "a1"]),
    (("-m", "haiku"), ["c3"]),  # the requested model when none answered
    (("--tier", "tier2"), ["a1"]),
    (("--task-type", "search"), ["c3"]),
    (("--status", "error"), ["c3"]),
    (("-q", "login"), ["a1"]),  # case-insensitive
    (("-q", "100%"), ["b2"]),  # % and _ are literal
    (("-q", "x_t"), []),  # "complex tasks" would match a wildcard _
    (("--since", "2026-11-02T12:30:00Z"), ["c3", "b2"]),
    (("--until", "2026-11-02T12:30:00Z"), ["a1"]),
    (("--since", "2026-11-02T12:30:00Z", "--until", "2026-11-02T13:30:00Z"), ["b2"]),
    (("--session", "s1", "--status", "ok"), ["a1"]),
])
def test_filters(db, args, expected):
    assert ids(*args, db=db) == expected


def test_no_match_says_so_and_bad_filters_are_usage_errors(db):
    assert tier("log", "--tier", "tier9", "--db", db).stdout.strip() == "no calls match these filters"
    bad = tier("log", "--status", "done", "--db", db)
    assert bad.exit_code == 2 and "ok, error, interrupted, pending, refused" in bad.output


def test_show_prints_one_call_whole(db, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")
    result = tier("log", "show", "a1000000", "--db", db)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for part in ("a1000000-0000-0000-0000-000000000001", "tier2", "bug_fix", "MEDIUM", "confidence 0.82",
                 "matched 'fix' and 'test'", "input 1,200 (uncached)", "output 300", "$0.008100",
                 "attempts  2 (fallbacks 1)", "tier1 claude-haiku-4-5 RateLimitError", "good", "worked",
                 "fix the failing LOGIN test", "the patch"):
        assert part in out, part
    data = json.loads(tier("log", "show", "b2", "--json", "--db", db).stdout)
    assert data["cache_read_tokens"] == 123_456_789 and data["prompt_text"].startswith("Split")
    missing = tier("log", "show", "zz", "--db", db)
    assert missing.exit_code == 4 and "no call with id 'zz'" in missing.output
    assert tier("log", "show", "--db", db).exit_code == 2


def test_path_prints_the_ledger_path(db, tier_home):
    assert tier("log", "--path", "--db", db).stdout.strip() == str(db)
    assert tier("log", "--path").stdout.strip() == str(tier_home / "ledger.db")
