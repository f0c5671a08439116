"""The SQLite ledger's tables as plain DDL, so creating or migrating a ledger runs on sqlite3 alone.

The text is what SQLAlchemy emits for the SQLModel tables in models.py (tests/test_ledger_schema.py
compiles the models and compares), kept here because importing SQLModel and SQLAlchemy costs
~0.3 s: more than a whole `tier import` of 10 MB, on every first run. PostgreSQL (pg.py) still
builds its tables from models.py.

Each table comes with its own indexes; like SQLAlchemy's create_all, a table that exists already
(made by an older tier) is left as it is, indexes included.
"""

from __future__ import annotations

import sqlite3

CALLS = """CREATE TABLE calls (
    id VARCHAR(40) NOT NULL, started_at FLOAT NOT NULL, ended_at FLOAT, session VARCHAR,
    kind VARCHAR DEFAULT 'main' NOT NULL, source VARCHAR DEFAULT 'tier' NOT NULL, parent_id VARCHAR,
    task_type VARCHAR, label VARCHAR, decision_source VARCHAR, classifier VARCHAR, confidence FLOAT,
    decided_tier VARCHAR, tier VARCHAR, served_tier VARCHAR, requested_model VARCHAR, served_model VARCHAR,
    deployment_id VARCHAR, attempts INTEGER DEFAULT '1' NOT NULL, fallback_count INTEGER DEFAULT '0' NOT NULL,
    attempts_json VARCHAR, input_tokens INTEGER DEFAULT '0' NOT NULL, cache_read_tokens INTEGER DEFAULT '0' NOT NULL,
    cache_write_tokens INTEGER DEFAULT '0' NOT NULL, cache_write_1h_tokens INTEGER DEFAULT '0' NOT NULL,
    output_tokens INTEGER DEFAULT '0' NOT NULL, output_estimated BOOLEAN DEFAULT '0' NOT NULL, cost_usd FLOAT,
    price_source VARCHAR, unpriced BOOLEAN DEFAULT '0' NOT NULL, latency_ms FLOAT,
    status VARCHAR DEFAULT 'pending' NOT NULL, error_class VARCHAR, error_message VARCHAR, prompt_hash VARCHAR,
    prompt_text VARCHAR, response_text VARCHAR, config_hash VARCHAR, external_id VARCHAR, reserved_usd FLOAT,
    check_passed BOOLEAN, meta_json VARCHAR, task_id VARCHAR, owner_pid INTEGER, owner_started FLOAT,
    user_id VARCHAR, owner_host VARCHAR,
    PRIMARY KEY (id)
)"""
# schema 7: partial, over the rows that have the column (migration 7 builds the same on an older ledger)
PARTIAL_CALLS_INDEXES = [
    "CREATE UNIQUE INDEX ix_calls_external_id ON calls (external_id) WHERE external_id IS NOT NULL",
    "CREATE INDEX ix_calls_parent_id ON calls (parent_id) WHERE parent_id IS NOT NULL",
    "CREATE INDEX ix_calls_user_id ON calls (user_id) WHERE user_id IS NOT NULL",
]
CALLS_INDEXES = [*PARTIAL_CALLS_INDEXES, "CREATE INDEX ix_calls_started_at ON calls (started_at)"]
FEEDBACK = """CREATE TABLE feedback (
    id INTEGER NOT NULL, call_id VARCHAR NOT NULL, created_at FLOAT NOT NULL, verdict VARCHAR NOT NULL,
    note VARCHAR,
    PRIMARY KEY (id),
    FOREIGN KEY(call_id) REFERENCES calls (id)
)"""
FEEDBACK_INDEXES = ["CREATE INDEX ix_feedback_call_id ON feedback (call_id)"]
MIGRATIONS = """CREATE TABLE schema_migrations (
    version INTEGER NOT NULL, applied_at FLOAT NOT NULL, description VARCHAR NOT NULL,
    PRIMARY KEY (version)
)"""
USERS = """CREATE TABLE users (
    id VARCHAR NOT NULL, token_hash VARCHAR NOT NULL, token_hint VARCHAR NOT NULL, daily_usd FLOAT,
    monthly_usd FLOAT, disabled BOOLEAN DEFAULT '0' NOT NULL, created_at FLOAT NOT NULL, rotated_at FLOAT,
    PRIMARY KEY (id)
)"""
USERS_INDEXES = ["CREATE UNIQUE INDEX ix_users_token_hash ON users (token_hash)"]
LEASES = """CREATE TABLE ledger_leases (
    owner_host VARCHAR NOT NULL, owner_pid INTEGER NOT NULL, owner_started FLOAT NOT NULL,
    expires_at FLOAT NOT NULL,
    PRIMARY KEY (owner_host, owner_pid, owner_started)
)"""

# table -> (CREATE TABLE, its indexes), in the order SQLAlchemy creates them (calls before feedback)
TABLES: dict[str, tuple[str, list[str]]] = {
    "calls": (CALLS, CALLS_INDEXES),
    "schema_migrations": (MIGRATIONS, []),
    "feedback": (FEEDBACK, FEEDBACK_INDEXES),
    "users": (USERS, USERS_INDEXES),
    "ledger_leases": (LEASES, []),
}


def create_tables(conn: sqlite3.Connection, names: list[str]) -> None:
    """Create the named tables that do not exist yet, each with its indexes."""
    have = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    for name in names:
        if name in have:
            continue
        table, indexes = TABLES[name]
        conn.execute(table)
        for stmt in indexes:
            conn.execute(stmt)
