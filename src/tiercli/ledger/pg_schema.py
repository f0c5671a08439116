"""PostgreSQL's DDL for the ledger's migrations (ledger/pg.py runs them): the same tables, columns
and indexes as SQLite's (db.py, users.py), with a plpgsql trigger keeping spend_days and, from
schema 4, spend_user_days equal to the calls' spend (settled cost plus open reservations)."""

from __future__ import annotations

from tiercli.ledger.migrations import (
    RETRY_ADD,
    RETRY_COLUMNS,
    RETRY_KEY,
    RETRY_REMOVE,
    RETRY_TABLE,
    V6_INDEXES,
    V7_FILL,
    V7_INDEXES,
)

SPEND = "COALESCE({r}.cost_usd, 0) + COALESCE({r}.reserved_usd, 0)"
PG_DAY_FUNCTION = """CREATE OR REPLACE FUNCTION tier_day(ts double precision) RETURNS text
    LANGUAGE sql IMMUTABLE AS $$ SELECT to_char(to_timestamp(ts) AT TIME ZONE 'UTC', 'YYYY-MM-DD') $$"""


def _spend_function(per_user: bool) -> str:
    """The trigger keeping spend_days (and from schema 4 spend_user_days) equal to the calls' spend."""
    old_user = (f"IF OLD.user_id IS NOT NULL THEN UPDATE spend_user_days SET usd = usd - ({SPEND.format(r='OLD')}) "
                "WHERE user_id = OLD.user_id AND day = tier_day(OLD.started_at); END IF;") if per_user else ""
    new_user = ("IF NEW.user_id IS NOT NULL THEN INSERT INTO spend_user_days (user_id, day, usd) VALUES "
                f"(NEW.user_id, tier_day(NEW.started_at), {SPEND.format(r='NEW')}) ON CONFLICT (user_id, day) "
                "DO UPDATE SET usd = spend_user_days.usd + EXCLUDED.usd; END IF;") if per_user else ""
    return f"""CREATE OR REPLACE FUNCTION tier_calls_spend() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE spend_days SET usd = usd - ({SPEND.format(r='OLD')}) WHERE day = tier_day(OLD.started_at);
        {old_user}
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO spend_days (day, usd) VALUES (tier_day(NEW.started_at), {SPEND.format(r='NEW')})
        ON CONFLICT (day) DO UPDATE SET usd = spend_days.usd + EXCLUDED.usd;
        {new_user}
    END IF;
    RETURN NULL;
END $$"""


V1_INDEXES = [
    "CREATE INDEX IF NOT EXISTS ix_calls_started_tier ON calls (started_at, tier)",
    "CREATE INDEX IF NOT EXISTS ix_calls_started_task ON calls (started_at, task_type)",
    "CREATE INDEX IF NOT EXISTS ix_calls_session_prompt ON calls (session, prompt_hash)",
]
V2 = [
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS reserved_usd FLOAT",
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS check_passed BOOLEAN",
    "CREATE TABLE IF NOT EXISTS spend_days (day TEXT PRIMARY KEY, usd FLOAT NOT NULL DEFAULT 0)",
    PG_DAY_FUNCTION,
    _spend_function(per_user=False),
    "DROP TRIGGER IF EXISTS calls_spend ON calls",
    "CREATE TRIGGER calls_spend AFTER INSERT OR DELETE OR UPDATE OF cost_usd, reserved_usd, started_at ON calls "
    "FOR EACH ROW EXECUTE FUNCTION tier_calls_spend()",
    f"INSERT INTO spend_days (day, usd) SELECT tier_day(started_at), SUM({SPEND.format(r='calls')}) FROM calls "
    "GROUP BY 1 ON CONFLICT (day) DO UPDATE SET usd = EXCLUDED.usd",
]
V3 = [
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS task_id VARCHAR",
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS owner_pid INTEGER",
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS owner_started FLOAT",
    "CREATE INDEX IF NOT EXISTS ix_calls_task_id ON calls (task_id)",
    "CREATE INDEX IF NOT EXISTS ix_calls_pending ON calls (status) WHERE status = 'pending'",
]
V4 = [
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS user_id VARCHAR",
    "ALTER TABLE calls ADD COLUMN IF NOT EXISTS owner_host VARCHAR",
    "CREATE INDEX IF NOT EXISTS ix_calls_user_id ON calls (user_id)",
    "CREATE TABLE IF NOT EXISTS spend_user_days (user_id TEXT NOT NULL, day TEXT NOT NULL, "
    "usd FLOAT NOT NULL DEFAULT 0, PRIMARY KEY (user_id, day))",
    _spend_function(per_user=True),
    "DROP TRIGGER IF EXISTS calls_spend ON calls",
    "CREATE TRIGGER calls_spend AFTER INSERT OR DELETE OR UPDATE OF cost_usd, reserved_usd, started_at, user_id "
    "ON calls FOR EACH ROW EXECUTE FUNCTION tier_calls_spend()",
]
# Migration 5: the same six indexes as SQLite's (ledger/migrations.py V5_DROPPED_INDEXES says why).
# The spend trigger is unchanged here: PgLedger.insert_new_calls leaves imported rows' spend to it.
V5 = [f"DROP INDEX IF EXISTS {name}" for name in (
    "ix_calls_tier", "ix_calls_task_type", "ix_calls_served_model", "ix_calls_started_tier", "ix_calls_started_task",
    "ix_calls_session")]
V6 = V6_INDEXES  # the same partial indexes as SQLite's (migrations.py)

# Migration 7: retry_candidates (ledger/migrations.py says what and why), the same statements as
# SQLite's in one plpgsql trigger function. Concurrent writers: two transactions each adding the
# second task of a pair would not see each other's row and neither would add the pair, so each
# takes a transaction-scoped advisory lock on its (session, prompt_hash) first; a READ COMMITTED
# statement after the wait sees the other's committed row (every write of the ledger is READ
# COMMITTED: pg.py's autocommit connection, one transaction per unit of work). An update moving a
# row between pairs locks both keys in order, so two such updates cannot deadlock.
RETRY_LOCK_CLASS = 0x5254  # the first key of pg_advisory_xact_lock(int, int): "RT"
_LOCK_KEY = "hashtext({r}.session || chr(31) || {r}.prompt_hash)"
RETRY_FUNCTION = f"""CREATE OR REPLACE FUNCTION tier_calls_retry() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    old_key integer := NULL;
    new_key integer := NULL;
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') AND {RETRY_KEY.format(r='OLD')} THEN
        old_key := {_LOCK_KEY.format(r='OLD')};
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') AND {RETRY_KEY.format(r='NEW')} THEN
        new_key := {_LOCK_KEY.format(r='NEW')};
    END IF;
    IF old_key IS NOT NULL AND (new_key IS NULL OR old_key <= new_key) THEN
        PERFORM pg_advisory_xact_lock({RETRY_LOCK_CLASS}, old_key);
    END IF;
    IF new_key IS NOT NULL THEN
        PERFORM pg_advisory_xact_lock({RETRY_LOCK_CLASS}, new_key);
    END IF;
    IF old_key IS NOT NULL AND new_key IS NOT NULL AND old_key > new_key THEN
        PERFORM pg_advisory_xact_lock({RETRY_LOCK_CLASS}, old_key);
    END IF;
    IF old_key IS NOT NULL THEN
        {RETRY_REMOVE.format(r='OLD')};
    END IF;
    IF new_key IS NOT NULL THEN
        {RETRY_ADD.format(r='NEW')};
    END IF;
    RETURN NULL;
END $$"""
_RETRY_CHANGED = " OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}" for c in RETRY_COLUMNS)
V7 = [
    *V7_INDEXES,
    RETRY_TABLE,
    RETRY_FUNCTION,
    f"CREATE TRIGGER calls_retry_insert AFTER INSERT ON calls FOR EACH ROW WHEN ({RETRY_KEY.format(r='NEW')}) "
    "EXECUTE FUNCTION tier_calls_retry()",
    f"CREATE TRIGGER calls_retry_update AFTER UPDATE OF {', '.join(RETRY_COLUMNS)} ON calls "
    f"FOR EACH ROW WHEN ({_RETRY_CHANGED}) EXECUTE FUNCTION tier_calls_retry()",
    f"CREATE TRIGGER calls_retry_delete AFTER DELETE ON calls FOR EACH ROW WHEN ({RETRY_KEY.format(r='OLD')}) "
    "EXECUTE FUNCTION tier_calls_retry()",
    V7_FILL,
]
