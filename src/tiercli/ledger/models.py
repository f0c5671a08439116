"""The ledger's tables. One `Call` row per model call, classifier and compaction calls included.

Token buckets never overlap: input_tokens is UNCACHED input only; cache_read_tokens and
cache_write_tokens are the other two parts of the prompt; output_tokens is the completion.
cache_write_1h_tokens is the part of cache_write_tokens written with the 1-hour TTL.
cost_usd is NULL (and unpriced = 1) when the model has no known price: never 0 for unknown.
Times are Unix epoch seconds (REAL), so windows and per-day grouping are plain SQL.
"""

from __future__ import annotations

from typing import Optional

from sqlalchemy import Index, text
from sqlmodel import Field, SQLModel

SCHEMA_VERSION = 7  # keep equal to ledger.db.SCHEMA_VERSION (asserted in tests)


class Call(SQLModel, table=True):
    __tablename__ = "calls"
    # schema 7: partial, over the rows that have the column (the queries reading them compare it with a
    # value, which implies IS NOT NULL; ledger/migrations.py V7_PARTIAL_INDEXES)
    __table_args__ = tuple(
        Index(f"ix_calls_{col}", col, unique=col == "external_id", sqlite_where=text(f"{col} IS NOT NULL"),
              postgresql_where=text(f"{col} IS NOT NULL"))
        for col in ("external_id", "parent_id", "user_id"))

    id: str = Field(primary_key=True, max_length=40)  # made before the API call
    started_at: float = Field(index=True)
    ended_at: Optional[float] = None
    session: Optional[str] = None  # indexed with prompt_hash (ix_calls_session_prompt)
    kind: str = Field(default="main", sa_column_kwargs={"server_default": "main"})  # main | classifier | compaction | replay | import
    source: str = Field(default="tier", sa_column_kwargs={"server_default": "tier"})  # tier | claude-code | codex | replay
    parent_id: Optional[str] = None  # the call this one served / replays

    task_type: Optional[str] = None
    label: Optional[str] = None  # LOW | MEDIUM | HIGH
    decision_source: Optional[str] = None  # static | override | default | local | llm | hybrid | import
    classifier: Optional[str] = None
    confidence: Optional[float] = None
    decided_tier: Optional[str] = None  # what routing chose before an override
    tier: Optional[str] = None  # the tier the call was sent to
    served_tier: Optional[str] = None  # the group that answered (differs after a fallback)
    requested_model: Optional[str] = None
    served_model: Optional[str] = None
    deployment_id: Optional[str] = None
    attempts: int = Field(default=1, sa_column_kwargs={"server_default": "1"})
    fallback_count: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    attempts_json: Optional[str] = None  # [{"group", "model", "error_class", "message"}]

    input_tokens: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    cache_read_tokens: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    cache_write_tokens: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    cache_write_1h_tokens: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    output_tokens: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
    output_estimated: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})  # output tokens counted locally, not reported by the provider
    cost_usd: Optional[float] = None
    price_source: Optional[str] = None
    unpriced: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})

    latency_ms: Optional[float] = None
    status: str = Field(default="pending", sa_column_kwargs={"server_default": "pending"})  # pending | ok | error | interrupted
    error_class: Optional[str] = None
    error_message: Optional[str] = None

    prompt_hash: Optional[str] = None  # indexed with session (ix_calls_session_prompt)
    prompt_text: Optional[str] = None
    response_text: Optional[str] = None
    config_hash: Optional[str] = None
    external_id: Optional[str] = None  # importers' dedup key (unique: ix_calls_external_id)
    # v2: budgets and verified cascades
    reserved_usd: Optional[float] = None  # a pending call's budget reservation; NULL once settled
    check_passed: Optional[bool] = None  # --check result: 1 passed, 0 failed, NULL not checked
    meta_json: Optional[str] = None  # source-specific extras (tools used, request text, ...)
    # v3: agent tasks and crash recovery
    task_id: Optional[str] = None  # the agent task (one user instruction) this call is a step of
    owner_pid: Optional[int] = None  # a pending row's writer process, so a dead owner's row can be settled
    owner_started: Optional[float] = None  # that process's start time (pids are reused)
    # v4: team mode
    user_id: Optional[str] = None  # the user whose token made the call (tier users)
    owner_host: Optional[str] = None  # a pending row's writer's host: pids are per host (PostgreSQL leases)


class Feedback(SQLModel, table=True):
    __tablename__ = "feedback"

    id: Optional[int] = Field(default=None, primary_key=True)
    call_id: str = Field(index=True, foreign_key="calls.id")
    created_at: float
    verdict: str  # good | bad
    note: Optional[str] = None


class Migration(SQLModel, table=True):
    __tablename__ = "schema_migrations"

    version: int = Field(primary_key=True)
    applied_at: float
    description: str


class User(SQLModel, table=True):
    """A team member of `tier serve` (v4). Only a hash of the token is kept (users.py says why sha256)."""

    __tablename__ = "users"

    id: str = Field(primary_key=True)  # the name given to `tier users add`
    token_hash: str = Field(index=True, unique=True)
    token_hint: str  # the token's first characters, to tell tokens apart in `tier users list`
    daily_usd: Optional[float] = None
    monthly_usd: Optional[float] = None
    disabled: bool = Field(default=False, sa_column_kwargs={"server_default": "0"})
    created_at: float
    rotated_at: Optional[float] = None


class Lease(SQLModel, table=True):
    """A process holding pending rows on a shared (PostgreSQL) ledger renews its lease; a row whose
    owner's lease expired is settled by any other process (v4; unused on SQLite, one host)."""

    __tablename__ = "ledger_leases"

    owner_host: str = Field(primary_key=True)
    owner_pid: int = Field(primary_key=True)
    owner_started: float = Field(primary_key=True)
    expires_at: float
