"""Ledger.insert_new_calls writes a batch's constant plain values as SQL literals (fewer bound
parameters): what lands in the ledger is exactly what binding every value stores."""

from __future__ import annotations

import sqlite3

from tiercli.ledger import Ledger
from tiercli.ledger.db import _insert_sql


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
