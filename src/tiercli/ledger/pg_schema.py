"""PostgreSQL's DDL for the ledger's migrations (ledger/pg.py runs them): the same tables, columns
and indexes as SQLite's (db.py, users.py), with a plpgsql trigger keeping spend_days and, from
schema 4, spend_user_days equal to the calls' spend (settled cost plus open reservations)."""

from __future__ import annotations

from tiercli.ledger.migrations import V6_INDEXES

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
