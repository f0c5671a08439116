"""The SQLite ledger's schema steps (migrations 1-7), applied in order on the sqlite3 connection inside
one BEGIN IMMEDIATE transaction by Ledger._migrate, each recorded in schema_migrations. Every step
tolerates a table made by an older tier (columns added only when missing). No SQLAlchemy: the
tables' DDL is in sqlite_schema.py."""

from __future__ import annotations

import math
import time
from typing import Any

from tiercli.errors import LedgerError
from tiercli.ledger.sqlite_schema import PARTIAL_CALLS_INDEXES, create_tables
from tiercli.ledger.users import SQLITE_V4, SQLITE_V4_COLUMNS

APPLICATION_ID = 0x54494552  # "TIER"

# Spend of a row (settled cost + open reservation): budgets sum it; migration 2's triggers keep it per day
_SPEND = "COALESCE({r}.cost_usd, 0) + COALESCE({r}.reserved_usd, 0)"

# The report's one grouped pass reads this covering index in order (no sort, no table reads): its
# key is exactly that pass's GROUP BY, the rest the columns it sums. Plain columns, bar the day and
# cost IS NULL, whose columns are in it too: SQLite reads an index on expressions as covering only
# when every column a query names is in it. (1M calls: --all 3.4-4.7 s without, 1.0 s with.)
REPORT_INDEX_NAME = "ix_calls_report"
REPORT_DAY = "CAST(started_at / 86400 AS INTEGER)"
REPORT_GROUP_COLUMNS = (
    f"{REPORT_DAY}, tier, task_type, kind, served_model, requested_model, unpriced, (cost_usd IS NULL), "
    "status, error_class, decision_source, decided_tier, config_hash"
)
REPORT_INDEX_SQL = (
    f"CREATE INDEX IF NOT EXISTS {REPORT_INDEX_NAME} ON calls ({REPORT_GROUP_COLUMNS}, "
    "started_at, fallback_count, cost_usd, input_tokens, cache_read_tokens, cache_write_tokens, "
    "cache_write_1h_tokens, output_tokens)"
)


_EXTRA_INDEXES_V1 = [
    "CREATE INDEX IF NOT EXISTS ix_calls_started_tier ON calls (started_at, tier)",
    "CREATE INDEX IF NOT EXISTS ix_calls_started_task ON calls (started_at, task_type)",
    "CREATE INDEX IF NOT EXISTS ix_calls_session_prompt ON calls (session, prompt_hash)",
]

_V2_COLUMNS = {"reserved_usd": "FLOAT", "check_passed": "BOOLEAN"}
_V3_COLUMNS = {"task_id": "VARCHAR", "owner_pid": "INTEGER", "owner_started": "FLOAT"}
_V3_INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_calls_task_id ON calls (task_id)",
    # only pending rows carry an owner: the recovery scan reads this small partial index
    "CREATE INDEX IF NOT EXISTS ix_calls_pending ON calls (status) WHERE status = 'pending'",
]
# Spend per UTC day (settled cost + open reservations), kept by triggers in the same transaction as
# every change to calls, so a budget check reads at most ~31 rows instead of summing a month of calls.
_DAY = "date({r}.started_at, 'unixepoch')"
_V2_SPEND = [
    "CREATE TABLE IF NOT EXISTS spend_days (day TEXT PRIMARY KEY, usd FLOAT NOT NULL DEFAULT 0)",
    f"""CREATE TRIGGER IF NOT EXISTS calls_spend_insert AFTER INSERT ON calls BEGIN
        INSERT INTO spend_days (day, usd) VALUES ({_DAY.format(r="NEW")}, {_SPEND.format(r="NEW")})
        ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd; END""",
    f"""CREATE TRIGGER IF NOT EXISTS calls_spend_update AFTER UPDATE OF cost_usd, reserved_usd, started_at ON calls BEGIN
        UPDATE spend_days SET usd = usd - ({_SPEND.format(r="OLD")}) WHERE day = {_DAY.format(r="OLD")};
        INSERT INTO spend_days (day, usd) VALUES ({_DAY.format(r="NEW")}, {_SPEND.format(r="NEW")})
        ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd; END""",
    f"""CREATE TRIGGER IF NOT EXISTS calls_spend_delete AFTER DELETE ON calls BEGIN
        UPDATE spend_days SET usd = usd - ({_SPEND.format(r="OLD")}) WHERE day = {_DAY.format(r="OLD")}; END""",
    f"""INSERT OR REPLACE INTO spend_days (day, usd)
        SELECT {_DAY.format(r="calls")}, SUM({_SPEND.format(r="calls")}) FROM calls GROUP BY 1""",
]


# Migration 5: indexes that earn their keep (docs/ARCHITECTURE.md, "The ledger's indexes", says which
# query reads each one). Nothing filters or sorts on tier, task_type or served_model alone (the report
# reads them off ix_calls_report, `tier log` walks ix_calls_started_at newest first), the two
# (started_at, X) indexes add nothing to ix_calls_started_at, and ix_calls_session is the prefix of
# ix_calls_session_prompt. Each cost every write 2-6 us a row.
V5_DROPPED_INDEXES = ("ix_calls_tier", "ix_calls_task_type", "ix_calls_served_model", "ix_calls_started_tier",
                      "ix_calls_started_task", "ix_calls_session")
# Imported calls (kind 'import') are added to spend_days by the import itself, one upsert per day
# (add_bulk_spend), not by this trigger once a row: an import writes thousands of rows of history.
_V5 = [
    *(f"DROP INDEX IF EXISTS {name}" for name in V5_DROPPED_INDEXES),
    "DROP TRIGGER IF EXISTS calls_spend_insert",
    f"""CREATE TRIGGER calls_spend_insert AFTER INSERT ON calls WHEN NEW.kind != 'import' BEGIN
        INSERT INTO spend_days (day, usd) VALUES ({_DAY.format(r="NEW")}, {_SPEND.format(r="NEW")})
        ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd; END""",
]
_DAY_S = 86_400


def add_bulk_spend(conn: Any, rows: list[dict[str, Any]], all_inserted: bool) -> None:
    """Add imported rows' spend to spend_days (the insert trigger leaves kind 'import' rows out).

    `all_inserted`: every row of `rows` was written, so their spend is summed here, per UTC day
    (the day an integer, turned into spend_days' text once per day). Otherwise (a concurrent
    import wrote some of the same rows first) the days they touch are summed again from calls."""
    days: dict[int, list[float]] = {}
    for r in rows:
        spend = (r.get("cost_usd") or 0.0) + (r.get("reserved_usd") or 0.0)
        days.setdefault(int(r["started_at"] // _DAY_S), []).append(spend)
    if all_inserted:
        conn.executemany(
            "INSERT INTO spend_days (day, usd) VALUES (date(? * 86400, 'unixepoch'), ?) "
            "ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd",
            [(day, math.fsum(spends)) for day, spends in days.items()])
        return
    for day in days:
        conn.execute(
            f"INSERT OR REPLACE INTO spend_days (day, usd) SELECT date(? * 86400, 'unixepoch'), "
            f"COALESCE(SUM({_SPEND.format(r='calls')}), 0) FROM calls WHERE started_at >= ? AND started_at < ?",
            [day, day * _DAY_S, (day + 1) * _DAY_S])


# Migration 6 (both engines, the same text): partial indexes over the few rows two report queries
# read, which otherwise cost a pass over the whole table each (1M calls: `tier run` attempts 0.7 s ->
# 0.0004 s, compactions 0.6 s -> 0.15 s). Compaction rows' index covers what the report reads of
# them (meta_json holds their history_tokens), so only the calls they served are looked up.
V6_INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_calls_run ON calls (started_at) WHERE kind = 'run'",
    "CREATE INDEX IF NOT EXISTS ix_calls_compaction ON calls (started_at, status, parent_id, session, user_id, "
    "output_tokens, cost_usd, meta_json) WHERE kind = 'compaction'",
]


# Migration 7: the report's retries search (queries.task_retries) reads only the (session, prompt_hash)
# pairs of routed calls (kind main) that more than one task shares: retry_candidates, kept by triggers
# in the same transaction as every insert, update and delete of calls (PostgreSQL: pg_schema.V7, the
# same semantics). A retry needs two tasks with the same pair, so the search over these pairs finds
# exactly what the search over every call found, in any window or filter. Existence checks, never
# counts: a count kept by triggers would race under PostgreSQL's concurrent writers. Each pair's
# calls are found through ix_calls_session_prompt.
RETRY_KEY = "{r}.kind = 'main' AND {r}.session IS NOT NULL AND {r}.prompt_hash IS NOT NULL"
_SAME_PAIR = "{a}.session = {r}.session AND {a}.prompt_hash = {r}.prompt_hash AND {a}.kind = 'main'"
_TASK = "COALESCE({a}.task_id, {a}.id)"
# Add the row's pair when another task of the pair exists (and the pair is not there yet). While a
# pair is absent, all its other rows are one task's (these triggers add it as soon as a second task
# comes, and remove it only when one task is left), so one other row tells: an agent task of
# hundreds of steps, each repeating the instruction, costs one row read a step, not hundreds.
RETRY_ADD = (
    "INSERT INTO retry_candidates (session, prompt_hash) SELECT {r}.session, {r}.prompt_hash "
    f"WHERE {RETRY_KEY} AND NOT EXISTS (SELECT 1 FROM retry_candidates AS k "
    "WHERE k.session = {r}.session AND k.prompt_hash = {r}.prompt_hash) "
    f"AND (SELECT {_TASK.format(a='c')} FROM calls AS c WHERE {_SAME_PAIR.format(a='c', r='{r}')} "
    f"AND c.id <> {{r}}.id LIMIT 1) <> {_TASK.format(a='{r}')} ON CONFLICT DO NOTHING"
)
# remove the row's pair when no two tasks share it any more (the row deleted, or moved off the pair)
RETRY_REMOVE = (
    "DELETE FROM retry_candidates WHERE session = {r}.session AND prompt_hash = {r}.prompt_hash "
    f"AND NOT EXISTS (SELECT 1 FROM calls AS c WHERE {_SAME_PAIR.format(a='c', r='{r}')} AND {_TASK.format(a='c')} <> "
    f"(SELECT {_TASK.format(a='d')} FROM calls AS d WHERE {_SAME_PAIR.format(a='d', r='{r}')} LIMIT 1))"
)
RETRY_COLUMNS = ("kind", "session", "prompt_hash", "task_id", "id")
_RETRY_CHANGED = " OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in RETRY_COLUMNS)
RETRY_TABLE = ("CREATE TABLE IF NOT EXISTS retry_candidates (session VARCHAR NOT NULL, prompt_hash VARCHAR NOT NULL, "
               "PRIMARY KEY (session, prompt_hash))")
# every pair two tasks share, from calls (a migration, or a bulk load made with the triggers off)
V7_FILL = (
    "INSERT INTO retry_candidates (session, prompt_hash) SELECT session, prompt_hash FROM calls "
    f"WHERE {RETRY_KEY.format(r='calls')} GROUP BY session, prompt_hash "
    "HAVING MIN(COALESCE(task_id, id)) <> MAX(COALESCE(task_id, id)) ON CONFLICT DO NOTHING"
)
# Indexes nothing reads any more: ix_calls_prompt_hash (the retries search reads retry_candidates)
# and ix_calls_task_id (the per-task view groups the window's calls by COALESCE(task_id, id), and
# no query looks a task_id up). Three become partial: every query reading them compares the column
# with a value (`=`, IN), which implies IS NOT NULL, so both engines still use them; their NULL rows
# (most calls: no parent, no user, no external id) cost no write. The unique external_id index still
# refuses a duplicate; imports' ON CONFLICT DO NOTHING names no target, so it covers it as before.
V7_DROPPED_INDEXES = ("ix_calls_prompt_hash", "ix_calls_task_id")
V7_PARTIAL_INDEXES = PARTIAL_CALLS_INDEXES  # the text a new ledger is created with
V7_INDEXES = [
    *(f"DROP INDEX IF EXISTS {name}" for name in V7_DROPPED_INDEXES),
    *(f"DROP INDEX IF EXISTS {name}" for name in ("ix_calls_external_id", "ix_calls_parent_id", "ix_calls_user_id")),
    *V7_PARTIAL_INDEXES,
]
_V7 = [
    *V7_INDEXES,
    RETRY_TABLE,
    f"""CREATE TRIGGER calls_retry_insert AFTER INSERT ON calls WHEN {RETRY_KEY.format(r="NEW")} BEGIN
        {RETRY_ADD.format(r="NEW")}; END""",
    f"""CREATE TRIGGER calls_retry_update AFTER UPDATE OF {", ".join(RETRY_COLUMNS)} ON calls
        WHEN {_RETRY_CHANGED} BEGIN
        {RETRY_REMOVE.format(r="OLD")};
        {RETRY_ADD.format(r="NEW")}; END""",
    f"""CREATE TRIGGER calls_retry_delete AFTER DELETE ON calls WHEN {RETRY_KEY.format(r="OLD")} BEGIN
        {RETRY_REMOVE.format(r="OLD")}; END""",
    V7_FILL,
]


def _add_missing_columns(conn: Any, columns: dict[str, str]) -> None:
    """ALTER TABLE calls ADD COLUMN for each of `columns` the table lacks (a table made by an older tier)."""
    have = {r[1] for r in conn.execute("PRAGMA table_info(calls)")}
    for column, sql_type in columns.items():
        if column not in have:
            conn.execute(f"ALTER TABLE calls ADD COLUMN {column} {sql_type}")


def apply_sqlite_step(conn: Any, version: int) -> None:
    """Apply schema step `version` on a sqlite3 connection inside the migration's transaction."""
    if version == 1:
        create_tables(conn, ["calls", "schema_migrations", "feedback"])
        for stmt in _EXTRA_INDEXES_V1:
            conn.execute(stmt)
        conn.execute(f"PRAGMA application_id={APPLICATION_ID}")
    elif version == 2:
        _add_missing_columns(conn, _V2_COLUMNS)
        for stmt in _V2_SPEND:
            conn.execute(stmt)
        conn.execute(REPORT_INDEX_SQL)
    elif version == 3:
        _add_missing_columns(conn, _V3_COLUMNS)
        for stmt in _V3_INDEXES:
            conn.execute(stmt)
    elif version == 4:
        _add_missing_columns(conn, SQLITE_V4_COLUMNS)
        create_tables(conn, ["users", "ledger_leases"])
        for stmt in SQLITE_V4:
            conn.execute(stmt)
    elif version == 5:
        for stmt in _V5:
            conn.execute(stmt)
    elif version == 6:
        for stmt in V6_INDEXES:
            conn.execute(stmt)
    elif version == 7:
        for stmt in _V7:
            conn.execute(stmt)


def migrate_sqlite(conn: Any, schema_version: int, steps: list[tuple[int, str]], path: Any) -> None:
    """Apply the steps the ledger lacks and record each (inside the caller's BEGIN IMMEDIATE)."""
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    current = 0
    if "schema_migrations" in tables:
        current = conn.execute("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").fetchone()[0] or 0
    if current > schema_version:
        raise LedgerError(
            f"the ledger {path} has schema version {current}, newer than this tier knows ({schema_version})",
            "upgrade tiercli; the file was left untouched",
        )
    for version, description in steps:
        if version <= current:
            continue
        apply_sqlite_step(conn, version)
        conn.execute("INSERT INTO schema_migrations (version, applied_at, description) VALUES (?, ?, ?)",
                     [version, time.time(), description])
    conn.execute(f"PRAGMA user_version={max(current, schema_version)}")
