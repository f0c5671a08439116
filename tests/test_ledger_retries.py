"""Schema 7: retry_candidates (the (session, prompt_hash) pairs two tasks share, kept by triggers)
and the report's retries search over it. The oracle is schema 6's search over every call (the SQL
of queries.task_retries before migration 7, kept here): on random ledgers, after inserts, updates
and deletes, every window and filter gives the same retries, on SQLite and PostgreSQL. Also: a v6
ledger (built with the old DDL) migrated in place keeps every row and gives the same report as one
made at v7; duplicate external ids are still refused."""

from __future__ import annotations

import json
import random
import re
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from tiercli.ledger import SCHEMA_VERSION, Ledger, open_ledger
from tiercli.ledger import queries as q
from tiercli.ledger.dialect import dialect
from tiercli.ledger.migrations import V7_FILL, apply_sqlite_step

T0 = 1_790_000_000.0
WINDOW_S = 600.0


def _sorted(rows) -> list[tuple]:
    return sorted((tuple(r) for r in rows), key=repr)  # NULLs among the values


def _oracle(conn, where: q.Where, retry_window_s: float) -> list[tuple]:
    """Schema 6's retries search over every call (queries.task_retries' SQL with its plain source)."""
    d = dialect(conn)
    reach = None if where.until is None else where.until + retry_window_s
    scan = where.on("c", until=reach)
    params = dict(scan.params)
    params["r_win"] = retry_window_s
    in_window = ""
    if where.until is not None:
        in_window = "AND first_at < :r_until"
        params["r_until"] = where.until
    sql = f"""
        SELECT routed, task_type, config_hash, COUNT(*) FROM (
            SELECT routed, task_type, config_hash, first_at, last_at,
                   LEAD(first_at) OVER (PARTITION BY session, prompt_hash ORDER BY first_at, {d.text("task")}) AS next_at
            FROM (
                SELECT c.session AS session, c.prompt_hash AS prompt_hash, COALESCE(c.task_id, c.id) AS task,
                       MIN({d.text(q.routed_tier_sql("c."))}) AS routed, MIN({d.text("c.task_type")}) AS task_type,
                       MIN({d.text("c.config_hash")}) AS config_hash,
                       MIN(c.started_at) AS first_at, MAX(c.started_at) AS last_at
                FROM calls AS c
                {scan.sql("c.kind = 'main'", "c.session IS NOT NULL", "c.prompt_hash IS NOT NULL")}
                GROUP BY 1, 2, 3
            ) AS tasks
        ) AS next
        WHERE next_at IS NOT NULL AND next_at - last_at <= :r_win {in_window}
        GROUP BY 1, 2, 3
    """
    return _sorted(conn.execute(sql, params))


def _row(rnd: random.Random, i: int) -> dict:
    kind = rnd.choices(["main", "classifier", "import", "compaction"], [80, 8, 8, 4])[0]
    return {
        "id": f"c{i:05d}", "started_at": T0 + rnd.uniform(0, 6 * 3600), "status": "ok",
        "session": rnd.choice([f"s{rnd.randint(0, 6)}", None]) if rnd.random() < 0.1 else f"s{rnd.randint(0, 6)}",
        "kind": kind, "prompt_hash": None if rnd.random() < 0.05 else f"p{rnd.randint(0, 12)}",
        "task_id": f"t{rnd.randint(0, 25)}" if rnd.random() < 0.5 else None,
        "tier": rnd.choice(["tier1", "tier2", "tier3"]), "task_type": rnd.choice(["bug_fix", "search", None]),
        "config_hash": rnd.choice(["cfgA", "cfgB"]), "user_id": rnd.choice(["alice", "bob", None]),
        "decision_source": "local", "cost_usd": 0.01,
    }


def _mutate(ledger, rnd: random.Random, ids: list[str], n: int) -> None:
    """Updates that move rows between pairs, tasks and kinds, and deletes (through the ledger's API)."""
    for _ in range(n):
        cid = rnd.choice(ids)
        change = rnd.choice(["session", "prompt_hash", "task_id", "kind", "delete", "other"])
        if change == "delete":
            if is_sqlite(ledger):
                with ledger._tx() as conn:
                    conn.execute("DELETE FROM calls WHERE id = ?", [cid])
            else:
                with ledger._live().transaction():
                    ledger._live().execute("DELETE FROM calls WHERE id = %s", [cid])
            ids.remove(cid)
            continue
        value = {"session": f"s{rnd.randint(0, 6)}", "prompt_hash": rnd.choice([f"p{rnd.randint(0, 12)}", None]),
                 "task_id": rnd.choice([f"t{rnd.randint(0, 25)}", None]), "kind": rnd.choice(["main", "import"]),
                 "other": None}[change]
        if change == "other":
            ledger.update_call(cid, cost_usd=0.02)
        else:
            ledger.update_call(cid, **{change: value})


def is_sqlite(ledger) -> bool:
    return isinstance(ledger, Ledger)


def _windows() -> list[q.Where]:
    hour = 3600.0
    return [
        q.Where(None, None, None), q.Where(T0 + hour, None, None), q.Where(None, T0 + 3 * hour, None),
        q.Where(T0 + 2 * hour, T0 + 2 * hour + 900, None),  # narrow
        q.Where(None, None, "s1"), q.Where(T0, T0 + 4 * hour, "s2"),
        q.Where(None, None, None, user="alice"), q.Where(T0 + hour, None, None, user=q.NONE_USER),
    ]


def _check(ledger) -> None:
    """Every window and filter, both forms of the search: the oracle's retries; and the table holds
    exactly the pairs two tasks share."""
    with q.snapshot(ledger) as conn:
        kept = _sorted(conn.execute("SELECT session, prompt_hash FROM retry_candidates"))
        fill = V7_FILL.split(" SELECT ", 1)[1].split(" ON CONFLICT")[0]
        assert kept == _sorted(conn.execute(f"SELECT {fill}"))
        for where in _windows():
            want = _oracle(conn, where, WINDOW_S)
            for narrow in (False, True):
                assert _sorted(q.task_retries(conn, where, WINDOW_S, narrow=narrow)) == want, (where.parts, narrow)


def _fill(ledger, seed: int, n: int) -> list[str]:
    rnd = random.Random(seed)
    rows = [_row(rnd, i) for i in range(n)]
    for r in rows:
        ledger.upsert_call(r)
    return [r["id"] for r in rows]


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_retries_equal_the_search_over_every_call_sqlite(tmp_path, seed):
    with Ledger(tmp_path / "l.db") as ledger:
        ids = _fill(ledger, seed, 400)
        _check(ledger)
        with q.snapshot(ledger) as conn:  # the planted data has retries at all
            assert q.task_retries(conn, q.Where(None, None, None), WINDOW_S, narrow=False)
        rnd = random.Random(seed + 100)
        for _ in range(3):  # the table stays exact through every batch of updates and deletes
            _mutate(ledger, rnd, ids, 60)
            _check(ledger)


def test_retries_equal_the_search_over_every_call_postgresql(pg_url):
    with open_ledger(pg_url, recover=False) as ledger:
        ids = _fill(ledger, 4, 300)
        _check(ledger)
        _mutate(ledger, random.Random(104), ids, 120)
        _check(ledger)


def test_concurrent_writers_of_one_pair_on_postgresql(pg_url):
    """Two transactions each write one task of a new pair; the second waits for the first's pair
    lock, then sees its row: the pair is kept (without the lock neither would see the other's)."""
    import psycopg

    open_ledger(pg_url, recover=False).close()
    a = psycopg.connect(pg_url, autocommit=True)
    b = psycopg.connect(pg_url, autocommit=True)
    insert = "INSERT INTO calls (id, started_at, session, kind, prompt_hash, status) VALUES (%s, %s, 's', 'main', 'p', 'ok')"
    try:
        a.execute("BEGIN")
        a.execute(insert, ["one", T0])
        done = threading.Event()

        def second() -> None:
            with b.transaction():
                b.execute(insert, ["two", T0 + 5])
            done.set()

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.5)
        assert not done.is_set()  # waiting on the pair's advisory lock
        a.execute("COMMIT")
        thread.join(30)
        assert done.is_set()
        assert a.execute("SELECT session, prompt_hash FROM retry_candidates").fetchall() == [("s", "p")]
    finally:
        a.close()
        b.close()


@pytest.mark.parametrize("engine", ["sqlite", "postgresql"])
def test_a_duplicate_external_id_is_still_refused(tmp_path, engine, request):
    target = str(tmp_path / "l.db") if engine == "sqlite" else request.getfixturevalue("pg_url")
    row = {"id": "a", "started_at": T0, "external_id": "claude-code:m1", "kind": "import", "status": "ok"}
    with open_ledger(target, recover=False) as ledger:
        assert ledger.insert_new_calls([row]) == (1, 0)
        assert ledger.insert_new_calls([{**row, "id": "b"}]) == (0, 1)  # ON CONFLICT DO NOTHING on the partial index
        with pytest.raises(Exception, match="(?i)unique|duplicate"):
            ledger.upsert_call({**row, "id": "c"})
        ledger.upsert_call({"id": "d", "started_at": T0})  # rows without one are many
        ledger.upsert_call({"id": "e", "started_at": T0})


# -- migration from schema 6 ------------------------------------------------------------------------
V6_CALLS_INDEXES = [  # what schema 6's models indexed (sqlite_schema.CALLS_INDEXES before migration 7)
    "CREATE UNIQUE INDEX ix_calls_external_id ON calls (external_id)",
    "CREATE INDEX ix_calls_parent_id ON calls (parent_id)",
    "CREATE INDEX ix_calls_prompt_hash ON calls (prompt_hash)",
    "CREATE INDEX ix_calls_user_id ON calls (user_id)",
]


def v6_ledger(path: Path) -> None:
    """A ledger as schema 6 left it: steps 1-6, with schema 6's full (not partial) indexes."""
    raw = sqlite3.connect(path, isolation_level=None)
    raw.execute("BEGIN")
    for version in range(1, 7):
        apply_sqlite_step(raw, version)
        raw.execute("INSERT INTO schema_migrations VALUES (?, 0, 'v')", [version])
        if version == 1:
            for name in ("ix_calls_external_id", "ix_calls_parent_id", "ix_calls_user_id"):
                raw.execute(f"DROP INDEX {name}")
            for stmt in V6_CALLS_INDEXES:
                raw.execute(stmt)
    raw.execute("PRAGMA user_version=6")
    raw.execute("COMMIT")
    raw.close()


def _report_json(db: Path) -> str:
    """The whole report (every window the CLI offers: --all here) at a fixed time, as JSON."""
    import yaml

    from tiercli.config import validate
    from tiercli.report import build_report

    config = validate(yaml.safe_load((Path(__file__).resolve().parents[1] / "sample_configs" / "offline.yaml")
                                     .read_text()), "test")
    with Ledger(db) as ledger:
        report = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 7 * 3600)
    report.pop("ledger", None)
    return json.dumps(report, sort_keys=True, default=str)


def test_a_v6_ledger_is_migrated_in_place(tmp_path, tier_home):
    old, new = tmp_path / "v6.db", tmp_path / "new.db"
    v6_ledger(old)
    rnd = random.Random(6)
    rows = [_row(rnd, i) for i in range(300)]
    raw = sqlite3.connect(old)
    keys = sorted(rows[0])
    raw.executemany(f"INSERT INTO calls ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                    [[r[k] for k in keys] for r in rows])
    raw.commit()
    before_rows = raw.execute("SELECT * FROM calls ORDER BY id").fetchall()
    before_retries = {tuple(w.parts): _oracle(raw, w, WINDOW_S) for w in _windows()}
    assert "ix_calls_prompt_hash" in {n for n, in raw.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    raw.close()
    with Ledger(old) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION == 7
        with q.snapshot(ledger) as conn:
            assert [tuple(r) for r in conn.execute("SELECT * FROM calls ORDER BY id")] == before_rows
            for w in _windows():
                assert _sorted(q.task_retries(conn, w, WINDOW_S, narrow=False)) == before_retries[tuple(w.parts)]
        _check(ledger)
    with Ledger(new) as ledger:
        for r in rows:
            ledger.upsert_call(r)
    schema = {}
    for path in (old, new):
        raw = sqlite3.connect(path)
        schema[path] = {(t, n, s) for t, n, s in raw.execute("SELECT type, name, sql FROM sqlite_master")}
        raw.close()
    assert schema[old] == schema[new]  # migrated == created at v7
    report = _report_json(new)
    assert _report_json(old) == report
    assert re.search(r'"retries": [1-9]', report)  # the report counted retries at all
