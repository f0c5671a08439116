"""The SQL of `tier report`'s views (sessions, tasks, --by) and of its `runs` section, on either
engine (see ledger/queries.py: the snapshot, the Where filter and the dialect)."""

from __future__ import annotations

from typing import Any

from tiercli.ledger.dialect import Dialect, dialect
from tiercli.ledger.queries import _QUALITY_KINDS_SQL, Where, routed_tier_sql


def _project(d: Dialect) -> str:
    return (f"CASE WHEN {d.json_valid('meta_json')} THEN COALESCE({d.json_field('meta_json', 'project')}, "
            f"{d.json_field('meta_json', 'cwd')}) END")


# What a view groups by: SQL for the key. `bucket` is the quarter hour (UTC), which the caller turns
# into local days, weeks or months (every zone's offset is a multiple of 15 minutes).
VIEW_KEYS = {
    "bucket": lambda d: d.floor_div(900),
    "model": lambda d: "COALESCE(served_model, requested_model)",
    "task": lambda d: "task_type",
    "tier": lambda d: "tier",
    "project": _project,
    "session": lambda d: "session",
    "user": lambda d: "user_id",
}
VIEW_FIELDS = ("key", "model", "calls", "priced_calls", "unpriced_calls", "cost", "input", "cache_read",
               "cache_write", "cache_write_1h", "output", "first", "last", "project")


def grouped(conn: Any, where: Where, key: str) -> list[dict[str, Any]]:
    """The window's calls per (key, model): counts, cost, token buckets, first and last call, and
    (for sessions) the project they ran in."""
    d = dialect(conn)
    expr = VIEW_KEYS[key](d)
    project = f"MAX({d.text(_project(d))})" if key == "session" else "NULL"
    sql = f"""
        SELECT {expr} AS k, COALESCE(served_model, requested_model) AS m, COUNT(*), COUNT(cost_usd),
               SUM(CASE WHEN unpriced THEN 1 ELSE 0 END), COALESCE(SUM(cost_usd), 0.0), SUM(input_tokens),
               SUM(cache_read_tokens), SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(output_tokens),
               MIN(started_at), MAX(started_at), {project}
        FROM calls {where.sql()}
        GROUP BY 1, 2
    """
    return [dict(zip(VIEW_FIELDS, r)) for r in conn.execute(sql, where.params)]


TASK_FIELDS = ("task", "has_task_id", "session", "steps", "task_type", "tier", "cost", "unpriced_calls",
               "tokens", "first", "last", "escalated", "overridden")


def tasks(conn: Any, where: Where) -> list[dict[str, Any]]:
    """One row per task of user-facing calls (kind main or import): rows sharing a task_id are the
    steps of one task; a row without one is a task of its own. Type and tier: the smallest of its
    steps' (steps of one task share them). Cost sums priced steps; unpriced steps are counted."""
    d = dialect(conn)
    sql = f"""
        SELECT COALESCE(task_id, id), CASE WHEN task_id IS NOT NULL THEN 1 ELSE 0 END, MIN({d.text("session")}),
               COUNT(*), MIN({d.text("task_type")}), MIN({d.text(routed_tier_sql())}), COALESCE(SUM(cost_usd), 0.0),
               SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END),
               SUM(input_tokens + cache_read_tokens + cache_write_tokens + output_tokens),
               MIN(started_at), MAX(started_at),
               MAX(CASE WHEN fallback_count > 0 OR decision_source = 'cascade' THEN 1 ELSE 0 END),
               MAX(CASE WHEN decision_source = 'override' THEN 1 ELSE 0 END)
        FROM calls {where.sql(f"kind IN ({_QUALITY_KINDS_SQL})")}
        GROUP BY 1, 2
    """
    return [dict(zip(TASK_FIELDS, r)) for r in conn.execute(sql, where.params)]


def run_attempts(conn: Any, since: float | None, until: float | None, user: str | None = None) -> list[dict[str, Any]]:
    """`tier run` attempts (kind 'run' rows) started in [since, until) (of `user`, NONE_USER: rows
    without one), by task then start, each
    with its calls' priced `calls_cost_usd`, `calls` (refused ones apart) and `unpriced_calls`
    (the same rows as Ledger.run_attempts, on either engine)."""
    d = dialect(conn)
    calls_of = "FROM calls c WHERE c.session = r.session AND c.kind != 'run' AND c.status != 'refused'"
    where = Where(since, until, None, alias="r", user=user)
    run = "r.kind = 'run'"
    cur = conn.execute(
        "SELECT r.id, r.task_id, r.started_at, r.session, r.tier, r.status, r.error_class, r.check_passed, "
        "r.latency_ms, r.task_type, r.parent_id, r.meta_json, "
        f"(SELECT SUM(c.cost_usd) {calls_of}) AS calls_cost_usd, (SELECT COUNT(*) {calls_of}) AS calls, "
        f"(SELECT COUNT(*) {calls_of} AND c.cost_usd IS NULL) AS unpriced_calls "
        f"FROM calls r {where.sql(run)} "
        f"ORDER BY {d.text('r.task_id')}, r.started_at, {d.text('r.id')}", where.params)
    names = [c[0] for c in cur.description]
    return [dict(zip(names, row)) for row in cur]
