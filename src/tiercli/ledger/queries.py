"""The SQL of `tier report` and `tier log`, on the ledger's own sqlite3 connection.

Read-only queries only. They run on `Ledger`'s sqlite3 connection (no SQLAlchemy: a report pays
no ORM import), inside one read transaction (`snapshot`), so every figure of a report comes from
the same state of the ledger. Parameters are bound (`:name`), never formatted into the SQL; the
only text formatted in is built here from constants.

The report's main pass (`grand_rollups`)
-----------------------------------------
SQLite has no hash aggregation: a GROUP BY over an unindexed key sorts every row of the window. The
report makes ONE grouped pass instead: a materialized CTE groups the window's calls by every
dimension at once (REPORT_GROUP_COLUMNS), which with the covering index ix_calls_report is a
streaming scan of that index (no sort, no table reads), and UNION ALL rollups of its few thousand
rows give each section its groups. On SQLite the same work is grand_steps: temp tables on the report's
read connection, none needing the config, so a fresh `tier report` groups the calls while it loads
and validates its config (report_read.Reading). Gateway stickiness (decision_source 'sticky') is one of those
rollups, so it costs no scan of its own. The rest are small or indexed:
  last_call      MAX(started_at) off ix_calls_started_at
  feedback       the feedback table (small) joined to its calls by primary key
  compactions    only when the main pass counted compaction calls; off the partial index
                 ix_calls_compaction (migration 6)
  runs           `tier run` attempts, off the partial index ix_calls_run (migration 6)
  Last call, feedback and retries run on a second read connection next to the main pass (Beside).
  task_retries   tasks whose instruction comes again (see its docstring)
  tasks          per-task view, only for sessions with agent tasks (task_id): the window's calls grouped

Both engines
------------
Every query here runs on a SQLite ledger (sqlite3, in `snapshot`) and on a PostgreSQL one (psycopg,
in a REPEATABLE READ READ ONLY transaction, `PgRead`: the same `:named` parameters). The text is
shared, written in the SQL both speak (CASE WHEN ... THEN 1 ELSE 0 END, not a summed boolean;
COALESCE(SUM(x), 0.0), not TOTAL; aliased subqueries). Where they cannot share it, `Dialect` holds
both variants side by side, each with its reason: the day and quarter-hour numbers (SQLite's
indexed CAST truncates, PostgreSQL's CAST rounds: FLOOR there), JSON fields (json_extract vs
jsonb ->>), the rollup keys (one UNION ALL column holds text and numbers: SQLite's columns are
untyped, PostgreSQL's are cast to text and read back per section), text order for MIN/MAX
(PostgreSQL sorts by the database's collation: COLLATE "C" gives SQLite's byte order), and
INDEXED BY (SQLite only; PostgreSQL's planner picks). Nothing here imports psycopg: PgRead gets
the ledger's own connection.
"""

from __future__ import annotations

import math
import sqlite3
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Iterator

from tiercli.ledger.db import REPORT_DAY, REPORT_GROUP_COLUMNS
from tiercli.ledger.dialect import _NAMED, SQLITE, Dialect, PgRead, dialect, is_sqlite

if TYPE_CHECKING:
    from tiercli.ledger.db import Ledger

DAY_S = 86_400
QUALITY_KINDS = ("main", "import")
_QUALITY_KINDS_SQL = ", ".join(f"'{k}'" for k in QUALITY_KINDS)


@contextmanager
def snapshot(ledger: "Ledger") -> Iterator[Any]:
    """One read transaction (one consistent view): the SQLite ledger's sqlite3 connection, or a
    PostgreSQL ledger's connection in REPEATABLE READ READ ONLY (PgRead)."""
    if is_sqlite(ledger):
        with ledger._tx(immediate=False) as conn:
            yield conn
        return
    import psycopg

    from tiercli.errors import LedgerError

    try:
        conn = ledger._live()  # type: ignore[attr-defined]  # PgLedger's psycopg connection
        with conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            yield PgRead(conn)
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise LedgerError(f"ledger read failed: {str(exc).strip().splitlines()[0]}",
                          f"ledger at {ledger.path}") from None


NONE_USER = "(none)"  # --user (none) / --by user: calls made without a user (user names cannot hold "(")


def fetch(ledger: "Ledger", sql: str, params: dict[str, Any] | list[Any]) -> list[dict[str, Any]]:
    """Rows of a read query on either engine: SQLite's connection in a snapshot, or a PostgreSQL
    ledger's `_select` (named `:marks` turned into positional ones): one query, outside a snapshot."""
    if getattr(ledger, "engine_name", "sqlite") == "sqlite":
        with snapshot(ledger) as conn:
            return [dict(r) for r in conn.execute(sql, params)]
    if isinstance(params, dict):
        names = _NAMED.findall(sql)
        sql, values = _NAMED.sub("?", sql), [params[n] for n in names]
    else:
        values = list(params)
    return ledger._select(sql, values)


def routed_tier_sql(p: str = "") -> str:
    """SQL for the tier routing chose: decided_tier for an override (when recorded), else the tier."""
    return (f"CASE WHEN {p}decision_source = 'override' AND COALESCE({p}decided_tier, '') != '' "
            f"THEN {p}decided_tier ELSE {p}tier END")


class Where:
    """The window, session and user filter as SQL text plus bound parameters. `user` NONE_USER:
    the calls made without a user."""

    def __init__(self, since: float | None, until: float | None, session: str | None, alias: str = "",
                 user: str | None = None):
        self.since, self.until, self.session, self.user = since, until, session, user
        p = f"{alias}." if alias else ""
        self.parts: list[str] = []
        self.params: dict[str, Any] = {}
        if since is not None:
            self.parts.append(f"{p}started_at >= :w_since")
            self.params["w_since"] = since
        if until is not None:
            self.parts.append(f"{p}started_at < :w_until")
            self.params["w_until"] = until
        if session is not None:
            self.parts.append(f"{p}session = :w_session")
            self.params["w_session"] = session
        if user == NONE_USER:
            self.parts.append(f"{p}user_id IS NULL")
        elif user is not None:
            self.parts.append(f"{p}user_id = :w_user")
            self.params["w_user"] = user

    def on(self, alias: str, until: float | None = None) -> "Where":
        """The same filter on table alias `alias` (and another end, when given)."""
        return Where(self.since, self.until if until is None else until, self.session, alias, self.user)

    def sql(self, *extra: str) -> str:
        parts = self.parts + [e for e in extra if e]
        return ("WHERE " + " AND ".join(parts)) if parts else ""

    def day_range(self) -> tuple[list[str], dict[str, Any]]:
        """The window on the day expression too (implied by the started_at bounds), so SQLite can
        range-scan ix_calls_report instead of reading all of it."""
        parts, params = [], {}
        if self.since is not None:
            parts.append(f"{REPORT_DAY} >= :w_day0")
            params["w_day0"] = math.floor(self.since / DAY_S)
        if self.until is not None and self.until > 0:
            parts.append(f"{REPORT_DAY} <= :w_day1")
            params["w_day1"] = math.floor(self.until / DAY_S)
        return parts, params


# Every rollup row: (section, k1, k2, k3, then these sums)
ROLLUP_FIELDS = ("calls", "priced_calls", "unpriced_calls", "cost", "input", "cache_read", "cache_write",
                 "cache_write_1h", "output", "escalations", "overrides", "first")
ROLLUP_SECTIONS = ("kind", "tier", "task", "model", "day", "status", "quality", "decision")
_OVERRIDE_SUM = "SUM(CASE WHEN decision_source = 'override' AND {rank_tier} > {rank_decided} THEN calls ELSE 0 END)"
_ROLLUP_SUMS = """
    SUM(calls), SUM(CASE WHEN cost_null THEN 0 ELSE calls END), SUM(CASE WHEN unpriced THEN calls ELSE 0 END),
    COALESCE(SUM(cost), 0.0), SUM(inp), SUM(cr), SUM(cw), SUM(cw1h), SUM(outp), SUM(escalations),
    {overrides},
    MIN(first)
"""


# What each section's keys are (PostgreSQL's come back as text: read back with these)
_KEY_TYPES: dict[str, tuple[Any, Any, Any]] = {
    "kind": (str, int, None), "tier": (str, int, int), "task": (str, str, None), "model": (str, int, str),
    "day": (int, None, None), "status": (str, str, None), "quality": (str, str, str), "decision": (str, str, int),
}
_G_SUMS = """COUNT(*) AS calls, SUM(cost_usd) AS cost, SUM(input_tokens) AS inp,
                   SUM(cache_read_tokens) AS cr, SUM(cache_write_tokens) AS cw,
                   SUM(cache_write_1h_tokens) AS cw1h, SUM(output_tokens) AS outp,
                   SUM(CASE WHEN fallback_count > 0 OR decision_source = 'cascade' THEN 1 ELSE 0 END) AS escalations,
                   MIN(started_at) AS first"""
_G_KEYS = """tier, task_type, kind, served_model AS model, requested_model,
                   unpriced, (cost_usd IS NULL) AS cost_null, status, error_class,
                   decision_source, decided_tier, config_hash"""


def _grand_source(where: Where, d: Dialect) -> tuple[str, dict[str, Any]]:
    """The body of `g`: the window's calls grouped by every dimension (REPORT_GROUP_COLUMNS).

    SQLite: grouped by exactly ix_calls_report's key (a streaming scan of it), whose day is a CAST
    that truncates; so calls before 1970 (none in practice; read off ix_calls_started_at) are
    grouped apart by the true floor. PostgreSQL: one GROUP BY on FLOOR (a hash aggregate)."""
    base = "kind != 'run'"
    if d.pg:
        day = d.floor_div(DAY_S)
        group = REPORT_GROUP_COLUMNS.replace(REPORT_DAY, day, 1)
        return (f"SELECT {day} AS day, {_G_KEYS}, {_G_SUMS} FROM calls {where.sql(base)} GROUP BY {group}",
                dict(where.params))
    extra, params = where.day_range() if where.session is None else ([], {})
    params.update(where.params)
    day = d.floor_div(DAY_S)
    before_1970 = REPORT_GROUP_COLUMNS.replace(REPORT_DAY, day, 1)
    sql = f"""SELECT {REPORT_DAY} AS day, {_G_KEYS}, {_G_SUMS}
            FROM calls {where.sql(*extra, base, "started_at >= 0")}
            GROUP BY {REPORT_GROUP_COLUMNS}
            UNION ALL
            SELECT {day} AS day, {_G_KEYS}, {_G_SUMS}
            FROM calls {d.indexed_by("ix_calls_started_at")} {where.sql(base, "started_at < 0")}
            GROUP BY {before_1970}"""
    return sql, params


def grand_query(where: Where, tiers: list[str], d: Dialect = SQLITE) -> tuple[str, dict[str, Any]]:
    """The report's one pass over the calls, and its rollups: SQL and parameters.

    `g` groups the window's calls by every dimension at once (a streaming scan of ix_calls_report);
    the rollups then regroup g's few thousand rows per section. Sections (k1, k2, k3):
      kind    (kind, cost IS NULL)          tier     (tier, kind = 'main', override)
      task    (task_type, tier)             model    (served_model, unpriced, requested model
      day     (UTC day number)                        when no model answered)
      status  (status, error_class), not ok quality  (routed tier, task_type, config_hash),
      decision (decision_source, kind, ok)           user-facing kinds only
    `tier run`'s attempt rows (kind 'run') summarise calls counted here already: left out.
    One statement (PostgreSQL); SQLite runs it as grand_steps.
    """
    source, params = _grand_source(where, d)
    rollups, rank_params = _rollups("g", tiers, d)
    return f"WITH g AS MATERIALIZED ({source}) {rollups}", {**params, **rank_params}


def grand_steps(where: Where) -> list[tuple[str, dict[str, Any]]]:
    """grand_query on SQLite, as statements of one read connection that need no config (they start
    before it is loaded; read_report rolls back, and the temp tables go): g into a temp table; the
    rollups over g into another, `overrides` 0; the quality section's override calls by forced and
    decided tier into a third. grouped_rollups reads the last two, and counts the overrides with the
    tiers' order. Each statement is one step, so the thread running them needs no GIL meanwhile."""
    source, params = _grand_source(where, SQLITE)
    rollups, _ = _rollups("temp.report_g", None, SQLITE)
    fields = ", ".join(ROLLUP_FIELDS)
    return [
        (f"CREATE TEMP TABLE report_g AS {source}", params),
        # columns without a type: values kept as they are (no affinity), whatever the section
        (f"CREATE TEMP TABLE report_roll (section, k1, k2, k3, {fields})", {}),
        (f"INSERT INTO temp.report_roll {rollups}", {}),
        ("CREATE TEMP TABLE report_overrides (routed, task_type, config_hash, tier, decided_tier, calls)", {}),
        (f"""INSERT INTO temp.report_overrides
             SELECT {routed_tier_sql()}, task_type, config_hash, tier, decided_tier, SUM(calls) FROM temp.report_g
             WHERE decision_source = 'override' AND kind IN ({_QUALITY_KINDS_SQL}) GROUP BY 1, 2, 3, 4, 5""", {}),
    ]


def group_calls(conn: Any, where: Where) -> None:
    """SQLite: grand_steps (the work of the report's grouped pass, nothing fetched yet)."""
    for sql, params in grand_steps(where):
        conn.execute(sql, params)


def grouped_rollups(conn: Any, tiers: list[str]) -> dict[str, list[dict[str, Any]]]:
    """SQLite, on the connection that ran group_calls: the rollups, as grand_rollups gives them (an
    override counts when the forced tier ranks above the decided one, as _ROLLUP_SUMS says)."""
    out = _rollup_rows(conn.execute("SELECT * FROM temp.report_roll"), SQLITE)
    rank: dict[str, int] = {}
    for i, tier in enumerate(tiers):
        rank.setdefault(tier, i)  # CASE tier WHEN ...: the first match
    quality = {(r["k1"], r["k2"], r["k3"]): r for r in out["quality"]}
    for routed, task_type, config_hash, tier, decided, calls in conn.execute("SELECT * FROM temp.report_overrides"):
        forced, chosen = rank.get(tier), rank.get(decided)
        if forced is not None and chosen is not None and forced > chosen:
            quality[(routed, task_type, config_hash)]["overrides"] += calls
    return out


def _rollups(g: str, tiers: list[str] | None, d: Dialect) -> tuple[str, dict[str, Any]]:
    """The UNION ALL of the sections over the grouped calls `g` (a CTE or a table); `tiers` None:
    `overrides` 0 (grouped_rollups counts them)."""
    k = d.key
    params: dict[str, Any] = {}
    ranks = []
    for i, tier in enumerate(tiers or []):
        params[f"rk_{i}"] = tier
        ranks.append(f"WHEN :rk_{i} THEN {i}")
    rank = " ".join(ranks) or "WHEN NULL THEN NULL"
    overrides = "0" if tiers is None else _OVERRIDE_SUM.format(  # None: counted in grouped_rollups
        rank_tier=f"(CASE tier {rank} END)", rank_decided=f"(CASE decided_tier {rank} END)")
    sums = _ROLLUP_SUMS.format(overrides=overrides)
    sql = f"""
        SELECT 'kind', {k("kind")}, {k("CASE WHEN cost_null THEN 1 ELSE 0 END")}, NULL, {sums} FROM {g} GROUP BY 2, 3
        UNION ALL SELECT 'tier', {k("tier")}, {k("CASE WHEN kind = 'main' THEN 1 ELSE 0 END")},
            {k("CASE WHEN decision_source = 'override' THEN 1 ELSE 0 END")}, {sums} FROM {g} GROUP BY 2, 3, 4
        UNION ALL SELECT 'task', {k("task_type")}, {k("tier")}, NULL, {sums} FROM {g} GROUP BY 2, 3
        UNION ALL SELECT 'model', {k("model")}, {k("CASE WHEN unpriced THEN 1 ELSE 0 END")},
            {k("CASE WHEN model IS NULL THEN requested_model END")}, {sums} FROM {g} GROUP BY 2, 3, 4
        UNION ALL SELECT 'day', {k("day")}, NULL, NULL, {sums} FROM {g} GROUP BY 2
        UNION ALL SELECT 'status', {k("status")}, {k("error_class")}, NULL, {sums} FROM {g} WHERE status != 'ok' GROUP BY 2, 3
        UNION ALL SELECT 'quality', {k(routed_tier_sql())}, {k("task_type")}, {k("config_hash")}, {sums}
            FROM {g} WHERE kind IN ({_QUALITY_KINDS_SQL}) GROUP BY 2, 3, 4
        UNION ALL SELECT 'decision', {k("decision_source")}, {k("kind")}, {k("CASE WHEN status = 'ok' THEN 1 ELSE 0 END")},
            {sums} FROM {g} GROUP BY 2, 3, 4
    """
    return sql, params


def grand_rollups(conn: Any, where: Where, tiers: list[str]) -> dict[str, list[dict[str, Any]]]:
    """The rollups of grand_query in one statement (PostgreSQL)."""
    d = dialect(conn)
    sql, params = grand_query(where, tiers, d)
    return _rollup_rows(conn.execute(sql, params), d)


def _rollup_rows(rows: Any, d: Dialect) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {s: [] for s in ROLLUP_SECTIONS}
    for section, k1, k2, k3, *values in rows:
        row = dict(zip(ROLLUP_FIELDS, values))
        for field in ROLLUP_FIELDS[:-1]:
            row[field] = row[field] or 0
        if d.pg:  # keys came back as text, sums of bigints as Decimal (every field but cost is a count)
            k1, k2, k3 = (None if v is None or t is None else t(v) for v, t in zip((k1, k2, k3), _KEY_TYPES[section]))
            row.update({f: int(row[f]) for f in ROLLUP_FIELDS[:-1] if f != "cost"}, cost=float(row["cost"]))
        row.update(k1=k1, k2=k2, k3=k3)
        out[section].append(row)
    return out


def last_call(conn: Any, where: Where) -> float | None:
    """The window's last call time, off ix_calls_started_at (one index step)."""
    return conn.execute(f"SELECT MAX(started_at) FROM calls {where.sql()}", where.params).fetchone()[0]


def ledger_size(conn: Any) -> int:
    """About COUNT(*): SQLite's largest rowid (one index step); PostgreSQL's planner estimate."""
    if dialect(conn).pg:
        return int(conn.execute("SELECT GREATEST(reltuples, 0) FROM pg_class WHERE oid = 'calls'::regclass")
                   .fetchone()[0])
    return conn.execute("SELECT MAX(rowid) FROM calls").fetchone()[0] or 0


def feedback(conn: Any, where: Where) -> list[tuple]:
    """(routed tier, task_type, config_hash, bad, good): the latest verdict per call."""
    calls = where.on("c")
    sql = f"""
        SELECT {routed_tier_sql("c.")}, c.task_type, c.config_hash,
               SUM(CASE WHEN f.verdict = 'bad' THEN 1 ELSE 0 END), SUM(CASE WHEN f.verdict = 'good' THEN 1 ELSE 0 END)
        FROM (SELECT call_id, MAX(id) AS id FROM feedback GROUP BY call_id) AS latest
        JOIN feedback AS f ON f.id = latest.id
        JOIN calls AS c ON c.id = latest.call_id
        {calls.sql(f"c.kind IN ({_QUALITY_KINDS_SQL})")}
        GROUP BY 1, 2, 3
    """
    return [tuple(r) for r in conn.execute(sql, calls.params)]


_COMPACTIONS = """
    SELECT COALESCE(p.served_model, p.requested_model), COUNT(*),
           SUM(COALESCE({history}, 0)), SUM(c.output_tokens), COALESCE(SUM(c.cost_usd), 0.0)
    FROM calls AS c LEFT JOIN calls AS p ON p.id = c.parent_id
    {where}
    GROUP BY 1
"""


def compactions(conn: Any, where: Where) -> list[tuple]:
    """(model of the call each compaction served, compactions, history tokens, summary tokens, cost)
    for the window's answered compaction calls: read off the partial index ix_calls_compaction
    (migration 6), which covers what is read of them; only the calls they served are looked up."""
    scan = where.on("c")
    sql = _COMPACTIONS.format(history=dialect(conn).json_field("c.meta_json", "history_tokens", numeric=True),
                              where=scan.sql("c.kind = 'compaction'", "c.status = 'ok'"))
    return [tuple(r) for r in conn.execute(sql, scan.params)]


def task_retries(conn: Any, where: Where, retry_window_s: float, *, narrow: bool) -> list[tuple]:
    """(routed tier, task_type, config_hash, retried tasks).

    A retry is the user asking the same thing again after the task ended: a later task of the same
    session with the same prompt_hash, starting within retry_window_s of the earlier task's last
    step. Rows sharing a task_id are steps of one task (an agent's tool loop repeats the
    instruction on every step; those are not retries); a row without task_id is a task of its own.
    The retry is counted once, on the earlier task, attributed to its routed tier, task type and
    config (the smallest value when its steps differ, which tier's gateway does not do). Only
    routed calls (kind main) count. The search reaches retry_window_s past `until`, so a task near
    the end of the window still sees its retry.

    `narrow` (a window of a few thousand calls): a window function over the window's calls, read
    through ix_calls_started_at. Otherwise only the calls of the (session, prompt_hash) pairs that
    two tasks share are grouped: the pairs are retry_candidates (kept by triggers, migration 7; most
    prompts occur once), their calls read through ix_calls_session_prompt. A retry needs two tasks
    of one pair, so every window and filter finds the same retries as over all calls.
    PostgreSQL takes the same two forms without INDEXED BY (its planner picks the indexes).
    """
    d = dialect(conn)
    indexes = set() if d.pg else {r[1] for r in conn.execute("PRAGMA index_list(calls)")}

    def by(index: str) -> str:
        return d.indexed_by(index) if index in indexes else ""

    reach = None if where.until is None else where.until + retry_window_s
    scan = where.on("c", until=reach)
    params = dict(scan.params)
    params["r_win"] = retry_window_s
    in_window = ""
    if where.until is not None:
        in_window = "AND first_at < :r_until"
        params["r_until"] = where.until
    if not narrow and where.session is None:
        # SQLite: CROSS JOIN keeps the small table outside (a ledger has no statistics to tell)
        source = f"""
            retry_candidates AS r {"JOIN" if d.pg else "CROSS JOIN"}
            calls AS c {by("ix_calls_session_prompt")} ON c.session = r.session AND c.prompt_hash = r.prompt_hash
        """
    elif not d.pg and where.session is None and (where.since is not None or where.until is not None):
        source = f"calls AS c {by('ix_calls_started_at')}"  # the window's range, not a whole-index walk
    else:
        source = "calls AS c"
    sql = f"""
        SELECT routed, task_type, config_hash, COUNT(*) FROM (
            SELECT routed, task_type, config_hash, first_at, last_at,
                   LEAD(first_at) OVER (PARTITION BY session, prompt_hash ORDER BY first_at, {d.text("task")}) AS next_at
            FROM (
                SELECT c.session AS session, c.prompt_hash AS prompt_hash, COALESCE(c.task_id, c.id) AS task,
                       MIN({d.text(routed_tier_sql("c."))}) AS routed, MIN({d.text("c.task_type")}) AS task_type,
                       MIN({d.text("c.config_hash")}) AS config_hash,
                       MIN(c.started_at) AS first_at, MAX(c.started_at) AS last_at
                FROM {source}
                {scan.sql("c.kind = 'main'", "c.session IS NOT NULL", "c.prompt_hash IS NOT NULL")}
                GROUP BY 1, 2, 3
            ) AS tasks
        ) AS next
        WHERE next_at IS NOT NULL AND next_at - last_at <= :r_win {in_window}
        GROUP BY 1, 2, 3
    """
    return [tuple(r) for r in conn.execute(sql, params)]


def count_calls(conn: Any) -> int:
    return conn.execute("SELECT COUNT(*) FROM calls").fetchone()[0]


def window_exceeds(conn: Any, where: Where, limit: int) -> bool:
    """Whether the window holds more than `limit` calls, counting at most limit + 1 of them
    (off ix_calls_started_at, or ix_calls_session_prompt for one session)."""
    if not where.parts:
        return ledger_size(conn) > limit
    sql = f"SELECT COUNT(*) FROM (SELECT 1 FROM calls {where.sql()} LIMIT :w_limit) AS w"
    return conn.execute(sql, {**where.params, "w_limit": limit + 1}).fetchone()[0] > limit


class Beside:
    """Queries run on a second read connection in a thread, while the caller's main pass runs.

    SQLite releases the GIL while it steps a statement, so on two cores the report's retry search
    costs no wall time next to its grouped pass. The second connection reads its own snapshot: a
    call committed between the two BEGINs can be seen by one of them only (a report is a view of a
    moving ledger; no figure is written back). `cancel()` interrupts it when its answer is not
    needed after all (a progress handler stops its statement within a few thousand steps);
    `result()` waits and re-raises its error. `work(conn, done)` may put partial answers in the
    dict `done`, which cancel() returns."""

    def __init__(self, ledger: "Ledger", work):
        import threading

        self._conn = sqlite3.connect(ledger.path.resolve().as_uri() + "?mode=ro", uri=True, check_same_thread=False,
                                     isolation_level=None, timeout=30)
        self._conn.set_progress_handler(lambda: 1 if self._cancelled else 0, 4096)
        self._work = work
        self.done: dict[str, Any] = {}
        self._value: Any = None
        self._error: BaseException | None = None
        self._cancelled = False
        self._thread = threading.Thread(target=self._run, name="tier-report-beside", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._conn.execute("BEGIN")
            try:
                self._value = self._work(self._conn, self.done)
            finally:
                self._conn.execute("ROLLBACK")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc

    def cancel(self) -> dict[str, Any]:
        self._cancelled = True
        self._thread.join()
        self._conn.close()
        return self.done

    def result(self) -> Any:
        self._thread.join()
        self._conn.close()
        if self._error is not None:
            if isinstance(self._error, sqlite3.Error):
                from tiercli.errors import LedgerError

                raise LedgerError(f"ledger read failed: {self._error}")
            raise self._error
        return self._value
