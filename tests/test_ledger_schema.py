"""The SQLite schema without SQLAlchemy (ledger/sqlite_schema.py), migration 5 (indexes that earn
their keep; imported calls' spend added per day by the import), and which query reads which index."""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from tiercli.importers.claude_code import import_claude_code, parse_claude_code
from tiercli.ledger import SCHEMA_VERSION, Ledger
from tiercli.ledger.migrations import V5_DROPPED_INDEXES, apply_sqlite_step
from tiercli.ledger.sqlite_schema import TABLES

FIXTURES = Path(__file__).resolve().parent / "data" / "claude_code"
# what schema 4's SQLModel tables indexed besides what they index now (migration 5 drops them)
V4_MODEL_INDEXES = [
    "CREATE INDEX ix_calls_session ON calls (session)",
    "CREATE INDEX ix_calls_tier ON calls (tier)",
    "CREATE INDEX ix_calls_served_model ON calls (served_model)",
    "CREATE INDEX ix_calls_task_type ON calls (task_type)",
]


def _norm(sql: str) -> str:
    sql = re.sub(r"\s+", " ", sql).strip()
    return sql.replace("( ", "(").replace(" )", ")")


def test_plain_ddl_is_what_sqlalchemy_makes_of_the_models():
    from sqlalchemy.dialects import sqlite
    from sqlalchemy.schema import CreateIndex, CreateTable

    from tiercli.ledger.models import Call, Feedback, Lease, Migration, User

    dialect = sqlite.dialect()
    for model in (Call, Feedback, Migration, User, Lease):
        table = model.__table__  # type: ignore[attr-defined]
        ddl, indexes = TABLES[table.name]
        assert _norm(ddl) == _norm(str(CreateTable(table).compile(dialect=dialect)))
        assert sorted(indexes) == sorted(str(CreateIndex(ix).compile(dialect=dialect)) for ix in table.indexes)


def _schema(path: Path) -> set[tuple[str, str, str]]:
    raw = sqlite3.connect(path)
    try:
        return {(t, n, _norm(s or "")) for t, n, s in raw.execute("SELECT type, name, sql FROM sqlite_master")}
    finally:
        raw.close()


def _v4_ledger(path: Path) -> None:
    """A ledger as schema 4 left it: steps 1-4 and the indexes schema 4's models had."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    for version in (1, 2, 3, 4):
        apply_sqlite_step(raw, version)
        raw.execute("INSERT INTO schema_migrations VALUES (?, 0, 'v')", [version])
    for stmt in V4_MODEL_INDEXES:
        raw.execute(stmt)
    raw.execute("PRAGMA user_version=4")
    raw.execute("COMMIT")
    raw.close()


def test_a_v4_ledger_with_rows_is_migrated_in_place(tmp_path):
    old = tmp_path / "v4.db"
    _v4_ledger(old)
    raw = sqlite3.connect(old)
    rows = [(f"c{i}", 86_400 * 20_000 + 3600 * i, "main" if i % 3 else "import", 0.25 * i) for i in range(10)]
    raw.executemany("INSERT INTO calls (id, started_at, kind, cost_usd, status) VALUES (?, ?, ?, ?, 'ok')", rows)
    raw.commit()
    before_spend = raw.execute("SELECT day, usd FROM spend_days ORDER BY day").fetchall()
    names = {n for n, in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    raw.close()
    assert set(V5_DROPPED_INDEXES) <= names  # really a v4 ledger

    with Ledger(old) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION
        assert len(ledger.recent_calls(100)) == 10
        assert [(r["day"], r["usd"]) for r in ledger._select("SELECT day, usd FROM spend_days ORDER BY day")] \
            == before_spend
    Ledger(tmp_path / "new.db").close()
    assert _schema(old) == _schema(tmp_path / "new.db")  # migrated == created new
    assert not {n for t, n, _ in _schema(old) if t == "index"} & set(V5_DROPPED_INDEXES)


def test_creating_and_importing_load_no_sqlalchemy(tmp_path):
    script = ("import sys\nfrom tiercli.ledger import Ledger\nfrom tiercli.importers.claude_code import import_claude_code\n"
              "with Ledger(sys.argv[1]) as led:\n    r = import_claude_code([sys.argv[2]], led)\n"
              "assert r.calls_added > 0, r\n"
              "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'litellm'))\n"
              "assert not loaded, loaded\n")
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "l.db"), str(FIXTURES)], check=True, timeout=120)


def _spend_by_day(ledger: Ledger) -> tuple[dict[str, float], dict[str, float]]:
    kept = {r["day"]: r["usd"] for r in ledger._select("SELECT day, usd FROM spend_days")}
    summed = {r["day"]: r["usd"] for r in ledger._select(
        "SELECT date(started_at, 'unixepoch') AS day, SUM(COALESCE(cost_usd, 0) + COALESCE(reserved_usd, 0)) AS usd "
        "FROM calls GROUP BY 1")}
    return kept, summed


def test_imported_spend_is_added_per_day_once(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.upsert_call({"id": "own", "started_at": 1_760_000_000.0, "cost_usd": 0.5, "status": "ok"})
        first = import_claude_code([FIXTURES], ledger)
        assert first.calls_added > 0 and first.cost_usd > 0
        kept, summed = _spend_by_day(ledger)
        assert kept.keys() == summed.keys() and all(kept[d] == pytest.approx(summed[d], abs=1e-12) for d in kept)
        assert sum(kept.values()) == pytest.approx(0.5 + first.cost_usd, abs=1e-12)
        second = import_claude_code([FIXTURES], ledger)
        assert second.calls_added == 0
        assert _spend_by_day(ledger)[0] == kept


def test_rows_written_first_by_another_import_are_not_counted_twice(tmp_path):
    """insert_new_calls's ON CONFLICT skips rows a concurrent import wrote: the days are summed again."""
    rows, _ = parse_claude_code([FIXTURES])
    with Ledger(tmp_path / "l.db") as ledger:
        assert ledger.insert_new_calls(rows[::2]) == (len(rows[::2]), 0)
        added, skipped = ledger.insert_new_calls(rows)
        assert (added, skipped) == (len(rows) - len(rows[::2]), len(rows[::2]))
        kept, summed = _spend_by_day(ledger)
    priced = sum(r["cost_usd"] or 0 for r in rows)
    assert priced > 0 and sum(kept.values()) == pytest.approx(priced, abs=1e-12)
    assert all(kept[d] == pytest.approx(summed[d], abs=1e-12) for d in summed)


def test_a_settled_or_deleted_imported_row_still_moves_spend(tmp_path):
    rows, _ = parse_claude_code([FIXTURES])
    priced = [r for r in rows if r["cost_usd"]]
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.insert_new_calls(rows)
        ledger.update_call(priced[0]["id"], cost_usd=priced[0]["cost_usd"] + 1.0)
        with ledger._tx() as conn:
            conn.execute("DELETE FROM calls WHERE id = ?", [priced[1]["id"]])
        kept, summed = _spend_by_day(ledger)
    assert all(kept[d] == pytest.approx(summed[d], abs=1e-9) for d in summed)


def _plan(ledger: Ledger, sql: str, params: list) -> str:
    return " | ".join(r["detail"] for r in ledger._select(f"EXPLAIN QUERY PLAN {sql}", params))


@pytest.mark.parametrize("sql, params, index", [
    # Ledger.session_calls, session_turns, last_compaction, budgets' session cap: a session's calls
    ("SELECT COUNT(*) FROM calls WHERE session = ? AND +kind IN ('main') AND +status != 'refused'", ["s"],
     "ix_calls_session_prompt"),
    # tier log (queries.log_calls) and the report's window: newest calls first, a time range
    ("SELECT * FROM calls WHERE started_at >= ? AND tier = ? ORDER BY started_at DESC, id LIMIT 20", [0.0, "t"],
     "ix_calls_started_at"),
    ("SELECT * FROM calls WHERE task_type = ? ORDER BY started_at DESC, id LIMIT 20", ["x"], "ix_calls_started_at"),
    # tier log CALL_ID: the calls it caused (classifier, compaction, replays)
    ("SELECT id FROM calls WHERE parent_id = ? ORDER BY started_at, id", ["p"], "ix_calls_parent_id"),
    # the report's retried-prompt pass (queries.task_retries): the calls of retry_candidates' pairs
    ("SELECT c.id FROM retry_candidates AS r CROSS JOIN calls AS c ON c.session = r.session "
     "AND c.prompt_hash = r.prompt_hash", [], "ix_calls_session_prompt"),
    # imports' dedup (import_queries.known_call_keys)
    ("SELECT external_id FROM calls WHERE external_id IN (?, ?)", ["a", "b"], "ix_calls_external_id"),
    # recovery of pending rows; team figures per user (--user U: partial, `=` implies IS NOT NULL)
    ("SELECT id FROM calls WHERE status = 'pending'", [], "ix_calls_pending"),
    ("SELECT COUNT(*) FROM calls WHERE user_id = ?", ["u"], "ix_calls_user_id"),
])
def test_each_kept_index_serves_a_query(tmp_path, sql, params, index):
    with Ledger(tmp_path / "l.db") as ledger:
        ledger._raw.execute("ANALYZE")  # type: ignore[union-attr]
        assert index in _plan(ledger, sql, params)


def test_report_and_log_migrate_a_v4_ledger_without_sqlalchemy(tmp_path):
    """Read commands on a ledger an older tier left at schema 4: migrated in place on sqlite3 alone."""
    db = tmp_path / "v4.db"
    _v4_ledger(db)
    raw = sqlite3.connect(db)
    raw.execute("INSERT INTO calls (id, started_at, status, cost_usd) VALUES ('a', 1760000000.0, 'ok', 0.5)")
    raw.commit()
    raw.close()
    script = (
        "import sys\nfrom tiercli.cli import main\ndb = sys.argv[1]\n"
        "for argv in (['log', '-n', '3'], ['report', '--all', '--json']):\n"
        "    sys.argv = ['tier', *argv, '--db', db]  # not sys.argv[1]: by now 'log'\n"
        "    try:\n        main()\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'litellm'))\n"
        "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    with Ledger(db, create=False) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION and ledger.get_call("a")["cost_usd"] == 0.5
