"""Ledger.insert_new_calls (ledger.bulk_insert): a batch's constant plain values go in as SQL literals,
and into a ledger smaller than the import the non-unique indexes are built after the rows. What lands
in the ledger, and its schema, is exactly what binding every value and growing every index stores."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path

import pytest

from tiercli.importers.claude_code import parse_claude_code
from tiercli.ledger import Ledger, bulk_insert, db
from tiercli.ledger.bulk_insert import insert_sql as _insert_sql


def _row(i: int, **over) -> dict:
    row = {
        "id": f"t-{i}", "external_id": f"test:{i}", "source": "claude-code", "kind": "import", "started_at": 1.7e9 + i,
        "status": "ok", "unpriced": False, "output_estimated": False, "input_tokens": 7, "output_tokens": i,
        "served_model": "claude-sonnet-4-5", "cost_usd": 0.25 * i, "tier": None, "session": "it's \"quoted\"",
        "meta_json": "{}", "label": "LOW",
    }
    row.update(over)
    return row


def _stored(path, ids):
    conn = sqlite3.connect(path)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(calls)")]
    picked = ", ".join(f"{c}, typeof({c})" for c in cols)
    out = [conn.execute(f"SELECT {picked} FROM calls WHERE id = ?", [i]).fetchone() for i in ids]
    conn.close()
    return out


def test_literals_store_what_binding_stores(tmp_path):
    rows = [_row(i) for i in range(5)]
    # mixed types that compare equal: 1 == True == 1.0 must not become one literal
    rows[3]["input_tokens"] = 7.0
    rows[4]["label"] = "LOW'); DROP TABLE calls; --"
    sql, bound = _insert_sql(tuple(rows[0]), rows)
    assert "'import'" in sql and "'claude-code'" in sql and "NULL" in sql  # constants inlined
    assert {"id", "input_tokens", "label", "session", "cost_usd"} <= set(bound)  # varying, mixed or not plain
    with Ledger(tmp_path / "a.db") as led:
        assert led.insert_new_calls(rows) == (5, 0)
    with Ledger(tmp_path / "b.db") as led:  # one row per batch: every value bound
        for r in rows:
            assert led.insert_new_calls([r]) == (1, 0)
    ids = [r["id"] for r in rows]
    assert _stored(tmp_path / "a.db", ids) == _stored(tmp_path / "b.db", ids)


def test_a_batch_of_constants_still_inserts_each_row(tmp_path):
    rows = [{"id": "same-shape", "started_at": 5, "kind": "import"}, {"id": "same-shape", "started_at": 5, "kind": "import"}]
    sql, bound = _insert_sql(tuple(rows[0]), rows)
    assert bound == ("id",)
    with Ledger(tmp_path / "c.db") as led:
        assert led.insert_new_calls(rows) == (1, 1)


# -- indexes built after the rows (ledger.bulk_insert.bulk_indexes) ----------------------------------
FIXTURES = Path(__file__).resolve().parent / "data" / "claude_code"


def _schema(path) -> list[tuple]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY type, name").fetchall()
    finally:
        conn.close()


def _plain_copy(rows, path):
    """The same rows inserted one statement at a time, every index grown row by row."""
    with Ledger(path) as led:
        for r in rows:
            led.insert_new_calls([r])


def test_first_import_builds_indexes_afterwards_and_the_schema_is_unchanged(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk_insert, "REBUILD_MIN_ROWS", 1)
    rows, _ = parse_claude_code([FIXTURES])
    built: list[bool] = []
    real = bulk_insert.bulk_indexes

    @contextmanager
    def spy(conn, n):
        with real(conn, n) as did:
            built.append(did)
            yield did

    monkeypatch.setattr(db, "bulk_indexes", spy)
    fresh = tmp_path / "fresh.db"
    Ledger(fresh).close()
    with Ledger(tmp_path / "a.db") as led:
        assert led.insert_new_calls(rows) == (len(rows), 0)
        assert led.insert_new_calls(rows) == (0, len(rows))  # the unique keys still dedup
    assert built == [True, False]  # the second batch went into a table as big as itself
    assert _schema(tmp_path / "a.db") == _schema(fresh)
    _plain_copy(rows, tmp_path / "b.db")
    conn = sqlite3.connect(tmp_path / "a.db")
    assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # the indexes answer what the table holds (each one read on its own by the planner)
    for name, cols in [("ix_calls_started_at", "started_at"), ("ix_calls_session_prompt", "session")]:
        got = conn.execute(f"SELECT {cols} FROM calls INDEXED BY {name} WHERE {cols} IS NOT NULL ORDER BY 1").fetchall()
        assert got == sorted((r[cols],) for r in rows if r[cols] is not None)
    conn.close()
    assert _stored(tmp_path / "a.db", [r["id"] for r in rows]) == _stored(tmp_path / "b.db", [r["id"] for r in rows])


def test_an_import_into_a_bigger_ledger_grows_the_indexes(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk_insert, "REBUILD_MIN_ROWS", 1)
    with Ledger(tmp_path / "a.db") as led:
        led.insert_new_calls([_row(i) for i in range(50)])
        conn = led._raw
        conn.execute("BEGIN IMMEDIATE")
        with bulk_insert.bulk_indexes(conn, 20) as did:
            assert did is False
            assert len(bulk_insert._non_unique_indexes(conn)) > 5  # nothing dropped
        with bulk_insert.bulk_indexes(conn, 60) as did:
            assert did is True
            assert bulk_insert._non_unique_indexes(conn) == []
        assert len(bulk_insert._non_unique_indexes(conn)) > 5
        conn.execute("ROLLBACK")


def test_a_failed_bulk_write_leaves_the_ledger_as_it_was(tmp_path, monkeypatch):
    monkeypatch.setattr(bulk_insert, "REBUILD_MIN_ROWS", 1)
    path = tmp_path / "a.db"
    Ledger(path).close()
    before = _schema(path)

    def crash(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(db, "add_bulk_spend", crash)  # after the rows went in, before the indexes return
    with Ledger(path) as led:
        with pytest.raises(RuntimeError):
            led.insert_new_calls([_row(i) for i in range(30)])
    assert _schema(path) == before
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT COUNT(*) FROM calls").fetchone() == (0,)
    conn.close()
