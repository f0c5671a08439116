"""`tier report`: where the money goes and whether routing hurts quality, as a JSON-ready dict.

Pure core: `build_report(ledger, config, ...)` reads the ledger through `ledger.read()` and returns
plain data (str, int, float, None, lists, dicts); `tiercli.render` draws it. Never imports litellm.

How the figures are made
------------------------
All aggregation is SQL. SQLite has no hash aggregation (every GROUP BY over an unindexed key is a
sort of all rows), so the report makes ONE grouped pass over the window instead of one per section:
a GROUP BY over a single integer key packed from the low-cardinality columns (UTC day, tier,
task_type, kind, served_model, flags), whose value lists come from their indexes in the same read
transaction (instant). The few thousand resulting groups are folded into the sections in Python.
Three small queries complete it: error classes (over ix_calls_status), feedback (small table)
and retries (see below).

Definitions (the JSON keys are listed in REPORT_KEYS and in the lead's docs)
- Window: `since <= started_at < until` (either end open when None), optionally `session = S`.
  Every call kind counts in totals, tiers, task types, days, models and savings:
  main | classifier | compaction | replay | import. Calls with no tier (imports) form a tier row
  whose `tier` is null; calls with no task type a task row whose `task_type` is null.
- Shares are fractions in 0..1; `saved_pct` is a percentage (0..100).
- Money: `cost_usd` sums priced calls only; unpriced calls (cost NULL) are counted in `calls` and
  in `unpriced`, never as $0. `mean_cost_usd` = cost_usd / priced calls.
- Tier targets are checked on ROUTED calls (kind = 'main'): classifier and compaction calls
  are overhead on fixed tiers and would distort the routing mix. "Tiers 1-2" are the first two
  configured tiers below the top tier; "top tier" is the last of routing.tiers.
- Savings: `top_tier_usd` re-prices every priced call's token buckets (uncached input, cache read,
  5-minute and 1-hour cache writes, output) at the top tier's primary model; the classifier's and
  compaction's calls are included on both sides (and shown alone in classifier_usd/compaction_usd).
- Caching, per served model: saved = cache_read x (input - cache_read price)
  - [5m writes x (cache_write - input) + 1h writes x (cache_write_1h - input)].
- Quality covers user-facing calls (kind main or import), per ROUTED tier (the tier routing chose:
  decided_tier for an override, else the tier the call was sent to) and per task type:
    overrides   decision_source = 'override' and the forced tier ranks above decided_tier
    retries     a call whose (session, prompt_hash) comes again within retry_window_s: counted on
                the earlier call (the answer that did not satisfy), once per call
    escalations fallback_count > 0 (the call went on to another group)
    feedback    the latest `tier feedback` verdict per call (good | bad)
    rate        (overrides + retries + escalations + feedback_bad) / calls
  Regressions: configs (config_hash) are ordered by their first call in the window; for each task
  type with at least `regression_min_calls` calls under BOTH the newest and the previous config,
  it is flagged when rate(newest) - rate(previous) >= `regression_min_increase` (default 0.05).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from decimal import Decimal
from typing import Any, Iterable

from tiercli.errors import UsageError
from tiercli.pricing import PriceBook, UnitPrice

TARGET_TIERS_1_2_SHARE = 0.8
TARGET_TOP_TIER_SHARE = (0.10, 0.12)
TOP_TIER_WARNING_ABOVE = 0.15
QUALITY_KINDS = ("main", "import")
ROUTED_KIND = "main"
DAY_S = 86_400
NONE_KEY = "(none)"  # the key of a NULL tier in tier_mix maps (JSON keys must be strings)
# Above this many calls in the window, retries are found from the duplicate (session, prompt_hash)
# pairs of the covering index ix_calls_session_prompt instead of a window function over the window.
_RETRY_INDEX_THRESHOLD = 150_000

REPORT_KEYS = (
    "window", "totals", "tiers", "targets", "warnings", "task_types", "savings", "caching",
    "quality", "days", "models", "unpriced", "errors",
)

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|h|hr|hrs|d|day|days|w|wk|wks)\s*$", re.I)
_UNIT_S = {"m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600,
           "d": DAY_S, "day": DAY_S, "days": DAY_S, "w": 7 * DAY_S, "wk": 7 * DAY_S, "wks": 7 * DAY_S}
WINDOW_FORMS = "a duration back from now (90m, 48h, 7d, 2w), a UTC date (2026-11-01) or an ISO time (2026-11-01T09:30:00Z)"


# -- windows -------------------------------------------------------------------------------------
def parse_window(text: str, now: float | None = None) -> float:
    """'48h' | '7d' | '90m' | '2w' (back from now) | '2026-11-01' | ISO datetime -> epoch seconds.

    Dates and datetimes without a zone are UTC (the report's days are UTC days too).
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError("empty time", f"use {WINDOW_FORMS}")
    now = time.time() if now is None else now
    m = _DURATION.match(text)
    if m:
        return now - float(m.group(1)) * _UNIT_S[m.group(2).lower()]
    raw = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw) or re.match(r"\d{4}-\d{2}-\d{2}[T ]\d", raw):
        try:
            when = dt.datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=dt.timezone.utc)
            return when.timestamp()
    raise UsageError(f"cannot read the time {text!r}", f"use {WINDOW_FORMS}")


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _day_iso(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


def _usd(value: float | Decimal | None) -> float | None:
    return None if value is None else round(float(value), 9)


def _div(a: float | int | None, b: float | int | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


# -- SQL -----------------------------------------------------------------------------------------
class _Where:
    """The window and session filter as SQL text plus bound parameters."""

    def __init__(self, since: float | None, until: float | None, session: str | None, alias: str = ""):
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

    def sql(self, *extra: str) -> str:
        parts = self.parts + [e for e in extra if e]
        return ("WHERE " + " AND ".join(parts)) if parts else ""


class _Dim:
    """One column of the packed group key: its values (from its index) and the SQL giving its code.

    Code 0 is NULL; values get 1..n. A value missing from the list (impossible: the list is read in
    the same transaction) would also land on 0.
    """

    def __init__(self, name: str, expr: str, values: Iterable[Any], params: dict[str, Any]):
        self.name = name
        self.values: list[Any] = [None] + [v for v in values if v is not None]
        self.radix = len(self.values)
        if self.radix == 1:
            self.sql = "0"
            return
        whens = []
        for i, value in enumerate(self.values[1:], start=1):
            key = f"{name}_{i}"
            params[key] = value
            whens.append(f"WHEN :{key} THEN {i}")
        self.sql = f"(CASE {expr} {' '.join(whens)} ELSE 0 END)"


def _distinct(conn, column: str) -> list[Any]:
    # Every column used here has a single-column index: SQLite answers DISTINCT from it at once.
    return [r[0] for r in conn.exec_driver_sql(f"SELECT DISTINCT {column} FROM calls")]


def _grand_groups(conn, where: _Where) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """The one grouped pass. Returns group dicts and the window's first/last call times."""
    params = dict(where.params)
    dims = [
        _Dim("tier", "tier", _distinct(conn, "tier"), params),
        _Dim("task", "task_type", _distinct(conn, "task_type"), params),
        _Dim("kind", "kind", _distinct(conn, "kind"), params),
        _Dim("model", "served_model", _distinct(conn, "served_model"), params),
    ]
    # small flags packed in the key too: cost is NULL, unpriced, escalated
    key = "CAST(started_at / 86400 AS INTEGER)"
    for dim in dims:
        key = f"({key}) * {dim.radix} + {dim.sql}" if dim.radix > 1 else key
    key = f"(({key}) * 2 + (cost_usd IS NULL)) * 2 + (unpriced != 0)"
    key = f"({key}) * 2 + (fallback_count > 0)"
    quality_kinds = ", ".join(f"'{k}'" for k in QUALITY_KINDS)
    sql = f"""
        SELECT {key} AS k,
               CASE WHEN kind IN ({quality_kinds}) THEN config_hash END AS cfg,
               CASE WHEN decision_source = 'override' THEN COALESCE(decided_tier, '') END AS decided,
               COUNT(*), SUM(cost_usd), SUM(input_tokens), SUM(cache_read_tokens),
               SUM(cache_write_tokens), SUM(cache_write_1h_tokens), SUM(output_tokens),
               MIN(started_at), MAX(started_at)
        FROM calls {where.sql()}
        GROUP BY 1, 2, 3
    """
    groups = []
    first = last = None
    for row in conn.execute(_text(sql), params):
        k, cfg, decided, n, cost, inp, cread, cwrite, cw1h, out, lo, hi = row
        escalated = k % 2
        k //= 2
        unpriced = k % 2
        k //= 2
        cost_null = k % 2
        k //= 2
        values = {}
        for dim in reversed(dims):
            if dim.radix > 1:
                k, code = divmod(k, dim.radix)
                values[dim.name] = dim.values[code]
            else:
                values[dim.name] = None
        groups.append({
            "day": k, "tier": values["tier"], "task_type": values["task"], "kind": values["kind"],
            "model": values["model"], "cost_null": bool(cost_null), "unpriced": bool(unpriced),
            "escalated": bool(escalated), "config_hash": cfg,
            "override_decided": None if decided is None else (decided or None), "overridden": decided is not None,
            "calls": n, "cost": cost, "input": inp or 0, "cache_read": cread or 0, "cache_write": cwrite or 0,
            "cache_write_1h": cw1h or 0, "output": out or 0, "first": lo, "last": hi,
        })
        first = lo if first is None else min(first, lo)
        last = hi if last is None else max(last, hi)
    return groups, {"first": first, "last": last}


def _text(sql: str):
    from sqlalchemy import text

    return text(sql)


def _errors(conn, where: _Where) -> list[tuple[str, str | None, int]]:
    statuses = [s for s in _distinct(conn, "status") if s != "ok"]
    if not statuses:
        return []
    params = dict(where.params)
    names = []
    for i, status in enumerate(statuses):
        params[f"st_{i}"] = status
        names.append(f":st_{i}")
    sql = f"""
        SELECT status, error_class, COUNT(*) FROM calls
        {where.sql(f"status IN ({', '.join(names)})")}
        GROUP BY status, error_class
    """
    return [tuple(r) for r in conn.execute(_text(sql), params)]


def _feedback(conn, where: _Where) -> list[tuple]:
    """(tier, decided tier if overridden, task_type, config_hash, bad, good) per group, latest verdict per call."""
    quality_kinds = ", ".join(f"'{k}'" for k in QUALITY_KINDS)
    sql = f"""
        SELECT c.tier, CASE WHEN c.decision_source = 'override' THEN COALESCE(c.decided_tier, '') END,
               c.task_type, c.config_hash,
               SUM(f.verdict = 'bad'), SUM(f.verdict = 'good')
        FROM (SELECT call_id, MAX(id) AS id FROM feedback GROUP BY call_id) AS latest
        JOIN feedback AS f ON f.id = latest.id
        JOIN calls AS c ON c.id = latest.call_id
        {_aliased(where, "c").sql(f"c.kind IN ({quality_kinds})")}
        GROUP BY 1, 2, 3, 4
    """
    return [tuple(r) for r in conn.execute(_text(sql), where.params)]


def _aliased(where: _Where, alias: str) -> _Where:
    out = _Where(None, None, None)
    out.parts = [f"{alias}.{p}" for p in where.parts]
    out.params = dict(where.params)
    return out


def _retries(conn, since: float | None, until: float | None, session: str | None,
             retry_window_s: float, window_calls: int, threshold: int) -> list[tuple]:
    """(tier, decided tier if overridden, task_type, config_hash, retried calls) per group.

    A call is retried when the next call of the same session with the same prompt_hash starts
    within retry_window_s of it. The search reaches retry_window_s past `until`, so a call near the
    end of the window still sees its retry.
    """
    quality_kinds = ", ".join(f"'{k}'" for k in QUALITY_KINDS)
    reach = None if until is None else until + retry_window_s
    scan = _Where(since, reach, session, alias="c")
    base = [f"c.kind IN ({quality_kinds})", "c.session IS NOT NULL", "c.prompt_hash IS NOT NULL"]
    params = dict(scan.params)
    params["r_win"] = retry_window_s
    in_window = ""
    if until is not None:
        in_window = "AND started_at < :r_until"
        params["r_until"] = until
    if window_calls > threshold and session is None:
        # Most prompts occur once: read the duplicate (session, prompt_hash) pairs off the covering
        # index ix_calls_session_prompt (in order, no sort), then look only at their calls.
        source = f"""
            (SELECT session, prompt_hash FROM calls INDEXED BY ix_calls_session_prompt
             WHERE session IS NOT NULL AND prompt_hash IS NOT NULL
             GROUP BY session, prompt_hash HAVING COUNT(*) > 1) AS d
            JOIN calls AS c ON c.session = d.session AND c.prompt_hash = d.prompt_hash
        """
    else:
        source = "calls AS c"
    sql = f"""
        SELECT tier, decided, task_type, config_hash, COUNT(*) FROM (
            SELECT c.tier AS tier,
                   CASE WHEN c.decision_source = 'override' THEN COALESCE(c.decided_tier, '') END AS decided,
                   c.task_type AS task_type, c.config_hash AS config_hash, c.started_at AS started_at,
                   LEAD(c.started_at) OVER (PARTITION BY c.session, c.prompt_hash
                                            ORDER BY c.started_at, c.id) AS next_at
            FROM {source}
            {scan.sql(*base)}
        )
        WHERE next_at IS NOT NULL AND next_at - started_at <= :r_win {in_window}
        GROUP BY 1, 2, 3, 4
    """
    return [tuple(r) for r in conn.execute(_text(sql), params)]


def _unpriced_unknown_models(conn, where: _Where) -> list[tuple[str | None, int]]:
    """Unpriced calls with no served model: named by the requested model."""
    sql = f"""
        SELECT requested_model, COUNT(*) FROM calls
        {where.sql("served_model IS NULL", "unpriced != 0")}
        GROUP BY requested_model
    """
    return [tuple(r) for r in conn.execute(_text(sql), where.params)]


# -- prices --------------------------------------------------------------------------------------
def _price_for(config, book: PriceBook, model: str) -> UnitPrice | None:
    params = None
    for d in config.model_list:
        if d.model == model:
            params = d.litellm_params
            break
    return book.lookup(model, params)


def _reprice(price: UnitPrice, inp: int, cread: int, cwrite: int, cw1h: int, out: int) -> Decimal:
    return (
        price.input * inp + price.cache_read * cread + price.cache_write * (cwrite - cw1h)
        + price.cache_write_1h * cw1h + price.output * out
    )


def _cache_saving(price: UnitPrice, cread: int, cwrite: int, cw1h: int) -> tuple[Decimal, Decimal]:
    """(read saving, write premium) in dollars."""
    read_saved = (price.input - price.cache_read) * cread
    premium = (price.cache_write - price.input) * (cwrite - cw1h) + (price.cache_write_1h - price.input) * cw1h
    return read_saved, premium


# -- the report ----------------------------------------------------------------------------------
def _new_quality() -> dict[str, int]:
    return {"calls": 0, "overrides": 0, "retries": 0, "escalations": 0, "feedback_bad": 0, "feedback_good": 0}


def _rate(q: dict[str, Any]) -> float | None:
    return _div(q["overrides"] + q["retries"] + q["escalations"] + q["feedback_bad"], q["calls"])


def build_report(
    ledger,
    config,
    *,
    since: float | None,
    until: float | None,
    session: str | None,
    retry_window_s: float = 600,
    now: float | None = None,
    regression_min_calls: int = 20,
    regression_min_increase: float = 0.05,
    _retry_index_threshold: int = _RETRY_INDEX_THRESHOLD,
) -> dict[str, Any]:
    """The report over `since <= started_at < until` (None: open), optionally one session."""
    if since is not None and until is not None and since > until:
        raise UsageError(f"--since ({iso(since)}) is after --until ({iso(until)})", "swap them")
    if retry_window_s < 0:
        raise UsageError("the retry window must be zero or more seconds")
    now = time.time() if now is None else now
    tiers_cfg = list(config.routing.tiers)
    rank = {t: i for i, t in enumerate(tiers_cfg)}
    top = config.top_tier
    book = PriceBook(config.prices)
    top_model = config.primary_model(top)
    top_price = _price_for(config, book, top_model)

    where = _Where(since, until, session)
    with ledger.read() as conn:
        groups, span = _grand_groups(conn, where)
        window_calls = sum(g["calls"] for g in groups)
        if window_calls:
            errors = _errors(conn, where)
            feedback = _feedback(conn, where)
            retries = _retries(conn, since, until, session, retry_window_s, window_calls, _retry_index_threshold)
            unknown_unpriced = (
                _unpriced_unknown_models(conn, where)
                if any(g["unpriced"] and g["model"] is None for g in groups) else []
            )
        else:
            errors, feedback, retries, unknown_unpriced = [], [], [], []

    window = {
        "since": since, "until": until, "since_iso": iso(since), "until_iso": iso(until),
        "session": session, "all": since is None and until is None,
        "generated_at": now, "generated_at_iso": iso(now),
        "first_call_at": span["first"], "last_call_at": span["last"],
        "first_call_iso": iso(span["first"]), "last_call_iso": iso(span["last"]),
    }

    # -- totals --------------------------------------------------------------------------------
    def bucket_sums(gs: Iterable[dict[str, Any]]) -> dict[str, int]:
        s = {"input": 0, "cache_read": 0, "cache_write": 0, "cache_write_1h": 0, "output": 0}
        for g in gs:
            for b in s:
                s[b] += g[b]
        return s

    def tokens(g: dict[str, Any]) -> int:
        return g["input"] + g["cache_read"] + g["cache_write"] + g["output"]

    total_calls = window_calls
    priced = [g for g in groups if not g["cost_null"]]
    total_cost = sum(g["cost"] for g in priced) if priced else 0.0
    sums = bucket_sums(groups)
    status_counts: dict[str, int] = {}
    for status, _cls, n in errors:
        status_counts[status] = status_counts.get(status, 0) + n
    unpriced_calls = sum(g["calls"] for g in groups if g["unpriced"])
    by_kind: dict[str, dict[str, Any]] = {}
    for g in groups:
        k = by_kind.setdefault(g["kind"], {"calls": 0, "cost_usd": 0.0, "unpriced_calls": 0})
        k["calls"] += g["calls"]
        k["cost_usd"] += g["cost"] or 0.0
        k["unpriced_calls"] += g["calls"] if g["unpriced"] else 0
    for k in by_kind.values():
        k["cost_usd"] = _usd(k["cost_usd"])
    totals = {
        "calls": total_calls,
        "priced_calls": sum(g["calls"] for g in priced),
        "cost_usd": _usd(total_cost),
        "input_tokens": sums["input"],
        "cache_read_tokens": sums["cache_read"],
        "cache_write_tokens": sums["cache_write"],
        "cache_write_1h_tokens": sums["cache_write_1h"],
        "output_tokens": sums["output"],
        "tokens": sums["input"] + sums["cache_read"] + sums["cache_write"] + sums["output"],
        "errors": status_counts.get("error", 0),
        "interrupted": status_counts.get("interrupted", 0),
        "pending": status_counts.get("pending", 0),
        "unpriced": unpriced_calls,
        "by_kind": dict(sorted(by_kind.items())),
    }

    # -- tiers ---------------------------------------------------------------------------------
    routed_total = sum(g["calls"] for g in groups if g["kind"] == ROUTED_KIND)
    tier_rows: dict[Any, dict[str, Any]] = {}
    for t in tiers_cfg:
        tier_rows[t] = {"tier": t, "calls": 0, "routed_calls": 0, "tokens": 0, "cost_usd": 0.0, "unpriced_calls": 0}
    for g in groups:
        row = tier_rows.setdefault(
            g["tier"], {"tier": g["tier"], "calls": 0, "routed_calls": 0, "tokens": 0, "cost_usd": 0.0, "unpriced_calls": 0}
        )
        row["calls"] += g["calls"]
        row["routed_calls"] += g["calls"] if g["kind"] == ROUTED_KIND else 0
        row["tokens"] += tokens(g)
        row["cost_usd"] += g["cost"] or 0.0
        row["unpriced_calls"] += g["calls"] if g["unpriced"] else 0
    extra = sorted((t for t in tier_rows if t not in rank and t is not None))
    order = tiers_cfg + extra + ([None] if None in tier_rows else [])
    tiers_out = []
    for t in order:
        row = tier_rows[t]
        tiers_out.append({
            "tier": t,
            "rank": rank.get(t) if t is not None else None,
            "calls": row["calls"],
            "share_calls": _div(row["calls"], total_calls) or 0.0,
            "routed_calls": row["routed_calls"],
            "share_routed": _div(row["routed_calls"], routed_total) or 0.0,
            "tokens": row["tokens"],
            "cost_usd": _usd(row["cost_usd"]),
            "share_cost": _div(row["cost_usd"], total_cost) or 0.0,
            "unpriced_calls": row["unpriced_calls"],
        })

    lower = [t for t in tiers_cfg[:2] if t != top]
    lower_share = _div(sum(tier_rows[t]["routed_calls"] for t in lower), routed_total)
    top_share = _div(tier_rows[top]["routed_calls"], routed_total)
    targets = {
        "basis": "routed calls (kind main)",
        "routed_calls": routed_total,
        "tiers_1_2": lower,
        "top_tier": top,
        "tiers_1_2_share_target": TARGET_TIERS_1_2_SHARE,
        "top_tier_share_target": list(TARGET_TOP_TIER_SHARE),
        "top_tier_warning_above": TOP_TIER_WARNING_ABOVE,
        "tiers_1_2_share": lower_share,
        "top_tier_share": top_share,
    }
    warnings: list[str] = []
    if top_share is not None and top_share > TOP_TIER_WARNING_ABOVE:
        warnings.append(
            f"{top} took {top_share:.1%} of routed calls, above {TOP_TIER_WARNING_ABOVE:.0%}: "
            "the classification needs tightening (target 10-12%)"
        )

    # -- task types ----------------------------------------------------------------------------
    task_rows: dict[Any, dict[str, Any]] = {}
    for g in groups:
        row = task_rows.setdefault(
            g["task_type"],
            {"task_type": g["task_type"], "calls": 0, "priced_calls": 0, "cost_usd": 0.0, "unpriced_calls": 0, "tier_mix": {}},
        )
        row["calls"] += g["calls"]
        row["priced_calls"] += 0 if g["cost_null"] else g["calls"]
        row["cost_usd"] += g["cost"] or 0.0
        row["unpriced_calls"] += g["calls"] if g["unpriced"] else 0
        key = g["tier"] if g["tier"] is not None else NONE_KEY
        row["tier_mix"][key] = row["tier_mix"].get(key, 0) + g["calls"]
    task_out = []
    for row in task_rows.values():
        mix_order = {t: i for i, t in enumerate(order)}
        mix = dict(sorted(row["tier_mix"].items(), key=lambda kv: mix_order.get(None if kv[0] == NONE_KEY else kv[0], 99)))
        task_out.append({
            "task_type": row["task_type"],
            "calls": row["calls"],
            "priced_calls": row["priced_calls"],
            "cost_usd": _usd(row["cost_usd"]),
            "mean_cost_usd": _usd(_div(row["cost_usd"], row["priced_calls"])),
            "share_cost": _div(row["cost_usd"], total_cost) or 0.0,
            "share_calls": _div(row["calls"], total_calls) or 0.0,
            "unpriced_calls": row["unpriced_calls"],
            "tier_mix": mix,
        })
    task_out.sort(key=lambda r: (-(r["cost_usd"] or 0.0), -r["calls"], r["task_type"] is None, r["task_type"] or ""))

    # -- savings -------------------------------------------------------------------------------
    priced_sums = bucket_sums(priced)
    top_usd = None
    if top_price is not None:
        top_usd = _reprice(top_price, priced_sums["input"], priced_sums["cache_read"], priced_sums["cache_write"],
                           priced_sums["cache_write_1h"], priced_sums["output"])
    saved = None if top_usd is None else float(top_usd) - total_cost
    savings = {
        "actual_usd": _usd(total_cost),
        "top_tier": top,
        "top_tier_model": top_model,
        "top_tier_usd": _usd(top_usd),
        "saved_usd": _usd(saved),
        "saved_pct": _div(saved * 100, float(top_usd)) if saved is not None and top_usd else None,
        "classifier_usd": _usd(by_kind.get("classifier", {}).get("cost_usd", 0.0)),
        "compaction_usd": _usd(by_kind.get("compaction", {}).get("cost_usd", 0.0)),
        "priced_calls": totals["priced_calls"],
        "unpriced_calls_excluded": total_calls - totals["priced_calls"],
    }
    if top_price is None and total_calls:
        warnings.append(f"the top tier's model {top_model} has no known price: savings cannot be computed")

    # -- caching and models --------------------------------------------------------------------
    model_rows: dict[Any, dict[str, Any]] = {}
    for g in groups:
        row = model_rows.setdefault(g["model"], {
            "model": g["model"], "calls": 0, "tokens": 0, "cost_usd": 0.0, "unpriced_calls": 0,
            "input": 0, "cache_read": 0, "cache_write": 0, "cache_write_1h": 0, "output": 0,
        })
        row["calls"] += g["calls"]
        row["tokens"] += tokens(g)
        row["cost_usd"] += g["cost"] or 0.0
        row["unpriced_calls"] += g["calls"] if g["unpriced"] else 0
        for b in ("input", "cache_read", "cache_write", "cache_write_1h", "output"):
            row[b] += g[b]
    models_out = []
    cache_models = []
    cache_saved = Decimal(0)
    read_saved_total = Decimal(0)
    premium_total = Decimal(0)
    unpriced_cache_models = []
    for row in sorted(model_rows.values(), key=lambda r: (-r["cost_usd"], -r["calls"], r["model"] is None, r["model"] or "")):
        price = _price_for(config, book, row["model"]) if row["model"] else None
        models_out.append({
            "model": row["model"], "calls": row["calls"], "tokens": row["tokens"],
            "input_tokens": row["input"], "cache_read_tokens": row["cache_read"],
            "cache_write_tokens": row["cache_write"], "output_tokens": row["output"],
            "cost_usd": _usd(row["cost_usd"]), "share_cost": _div(row["cost_usd"], total_cost) or 0.0,
            "unpriced_calls": row["unpriced_calls"], "priced": price is not None,
        })
        if row["cache_read"] or row["cache_write"]:
            entry = {
                "model": row["model"], "cache_read_tokens": row["cache_read"],
                "cache_write_tokens": row["cache_write"], "cache_write_1h_tokens": row["cache_write_1h"],
                "read_share": _div(row["cache_read"], row["input"] + row["cache_read"] + row["cache_write"]),
                "read_saved_usd": None, "write_premium_usd": None, "saved_usd": None, "priced": price is not None,
            }
            if price is not None:
                rs, prem = _cache_saving(price, row["cache_read"], row["cache_write"], row["cache_write_1h"])
                entry.update(read_saved_usd=_usd(rs), write_premium_usd=_usd(prem), saved_usd=_usd(rs - prem))
                read_saved_total += rs
                premium_total += prem
                cache_saved += rs - prem
            else:
                unpriced_cache_models.append(row["model"])
            cache_models.append(entry)
    prompt_total = sums["input"] + sums["cache_read"] + sums["cache_write"]
    caching = {
        "cache_read_tokens": sums["cache_read"],
        "cache_write_tokens": sums["cache_write"],
        "cache_write_1h_tokens": sums["cache_write_1h"],
        "read_share": _div(sums["cache_read"], prompt_total),
        "read_saved_usd": _usd(read_saved_total),
        "write_premium_usd": _usd(premium_total),
        "saved_usd": _usd(cache_saved),
        "unpriced_models": unpriced_cache_models,
        "models": cache_models,
    }

    # -- unpriced ------------------------------------------------------------------------------
    unpriced_models: dict[Any, int] = {}
    for g in groups:
        if g["unpriced"] and g["model"] is not None:
            unpriced_models[g["model"]] = unpriced_models.get(g["model"], 0) + g["calls"]
    for model, n in unknown_unpriced:
        unpriced_models[model] = unpriced_models.get(model, 0) + n
    unpriced = {
        "calls": unpriced_calls,
        "models": [{"model": m, "calls": n} for m, n in sorted(unpriced_models.items(), key=lambda kv: (-kv[1], kv[0] or ""))],
    }
    if unpriced_calls:
        names = ", ".join(str(m["model"]) for m in unpriced["models"])
        warnings.append(
            f"{unpriced_calls} call(s) have no known price ({names}): they are not in the dollar figures; "
            "add their models under prices: in the config"
        )

    # -- errors --------------------------------------------------------------------------------
    errors_out = {
        "calls": sum(n for _s, _c, n in errors),
        "by_status": dict(sorted(status_counts.items())),
        "classes": [
            {"status": s, "error_class": c, "calls": n}
            for s, c, n in sorted(errors, key=lambda r: (-r[2], r[0], r[1] or ""))
        ],
    }

    # -- days ----------------------------------------------------------------------------------
    day_rows: dict[int, dict[str, Any]] = {}
    for g in groups:
        row = day_rows.setdefault(g["day"], {"calls": 0, "cost_usd": 0.0, "unpriced_calls": 0, "tokens": 0})
        row["calls"] += g["calls"]
        row["cost_usd"] += g["cost"] or 0.0
        row["unpriced_calls"] += g["calls"] if g["unpriced"] else 0
        row["tokens"] += tokens(g)
    days_out = []
    if day_rows:
        for day in range(min(day_rows), max(day_rows) + 1):  # gaps shown as zero days
            row = day_rows.get(day, {"calls": 0, "cost_usd": 0.0, "unpriced_calls": 0, "tokens": 0})
            days_out.append({"day": _day_iso(day), "calls": row["calls"], "tokens": row["tokens"],
                             "cost_usd": _usd(row["cost_usd"]), "unpriced_calls": row["unpriced_calls"]})

    # -- quality -------------------------------------------------------------------------------
    def qtier(tier: Any, decided: Any) -> Any:
        """The tier routing chose: decided_tier for an override (when recorded), else the tier."""
        return decided if decided else tier

    by_tier: dict[Any, dict[str, int]] = {}
    by_task: dict[Any, dict[str, int]] = {}
    by_task_cfg: dict[tuple[Any, Any], dict[str, int]] = {}
    total_q = _new_quality()

    def bump(tier: Any, task: Any, cfg: Any, field: str, n: int) -> None:
        for table, key in ((by_tier, tier), (by_task, task), (by_task_cfg, (task, cfg))):
            table.setdefault(key, _new_quality())[field] += n
        total_q[field] += n

    for g in groups:
        if g["kind"] not in QUALITY_KINDS:
            continue
        t = qtier(g["tier"], g["override_decided"])
        bump(t, g["task_type"], g["config_hash"], "calls", g["calls"])
        if g["escalated"]:
            bump(t, g["task_type"], g["config_hash"], "escalations", g["calls"])
        if g["overridden"] and g["override_decided"] and g["tier"] in rank and g["override_decided"] in rank \
                and rank[g["tier"]] > rank[g["override_decided"]]:
            bump(t, g["task_type"], g["config_hash"], "overrides", g["calls"])
    for tier, decided, task, cfg, bad, good in feedback:
        t = qtier(tier, decided)
        bump(t, task, cfg, "feedback_bad", bad or 0)
        bump(t, task, cfg, "feedback_good", good or 0)
    for tier, decided, task, cfg, n in retries:
        bump(qtier(tier, decided), task, cfg, "retries", n)

    # configs, oldest first (by their first call in the window)
    cfg_first: dict[Any, float] = {}
    cfg_last: dict[Any, float] = {}
    for g in groups:
        cfg = g["config_hash"]
        if g["kind"] in QUALITY_KINDS and cfg is not None:
            cfg_first[cfg] = min(cfg_first.get(cfg, g["first"]), g["first"])
            cfg_last[cfg] = max(cfg_last.get(cfg, g["last"]), g["last"])
    configs = []
    for cfg in sorted(cfg_first, key=lambda c: (cfg_first[c], c)):
        q = _new_quality()
        for (task, c), v in by_task_cfg.items():
            if c == cfg:
                for f in q:
                    q[f] += v[f]
        configs.append({"config_hash": cfg, "first_call_at": cfg_first[cfg], "last_call_at": cfg_last[cfg],
                        "first_call_iso": iso(cfg_first[cfg]), "last_call_iso": iso(cfg_last[cfg]),
                        **q, "rate": _rate(q)})

    def qrow(key_name: str, key: Any, q: dict[str, int]) -> dict[str, Any]:
        return {key_name: key, **q, "rate": _rate(q)}

    q_tiers = [qrow("tier", t, by_tier[t]) for t in order if t in by_tier]
    q_tiers += [qrow("tier", t, by_tier[t]) for t in by_tier if t not in order]
    q_tasks = [qrow("task_type", k, v) for k, v in sorted(by_task.items(), key=lambda kv: (kv[0] is None, kv[0] or ""))]

    regressions = []
    if len(configs) >= 2:
        prev_cfg, new_cfg = configs[-2]["config_hash"], configs[-1]["config_hash"]
        for task in sorted(by_task, key=lambda k: (k is None, k or "")):
            a = by_task_cfg.get((task, prev_cfg))
            b = by_task_cfg.get((task, new_cfg))
            if not a or not b or a["calls"] < regression_min_calls or b["calls"] < regression_min_calls:
                continue
            ra, rb = _rate(a), _rate(b)
            if rb - ra >= regression_min_increase - 1e-12:
                regressions.append({
                    "task_type": task, "previous_config": prev_cfg, "newest_config": new_cfg,
                    "previous_calls": a["calls"], "newest_calls": b["calls"],
                    "previous_rate": ra, "newest_rate": rb, "increase": rb - ra,
                })
    for r in regressions:
        warnings.append(
            f"quality regression: {r['task_type'] or NONE_KEY} rate rose from {r['previous_rate']:.1%} to "
            f"{r['newest_rate']:.1%} after config {r['newest_config']}"
        )
    quality = {
        "kinds": list(QUALITY_KINDS),
        "retry_window_s": retry_window_s,
        "total": {**total_q, "rate": _rate(total_q)},
        "tiers": q_tiers,
        "task_types": q_tasks,
        "configs": configs,
        "regression_rule": {
            "min_calls": regression_min_calls,
            "min_increase": regression_min_increase,
            "description": (
                f"a task type is flagged when its rate under the newest config (by first call in the window) "
                f"exceeds its rate under the previous config by at least {regression_min_increase:g}, "
                f"with at least {regression_min_calls} calls under each"
            ),
        },
        "regressions": regressions,
    }

    return {
        "window": window,
        "totals": totals,
        "tiers": tiers_out,
        "targets": targets,
        "warnings": warnings,
        "task_types": task_out,
        "savings": savings,
        "caching": caching,
        "quality": quality,
        "days": days_out,
        "models": models_out,
        "unpriced": unpriced,
        "errors": errors_out,
    }
