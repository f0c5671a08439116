"""`tier report`: where the money goes and whether routing hurts quality, as a JSON-ready dict.

Pure core: `build_report(ledger, config, ...)` reads the ledger through report_read and
tiercli.ledger.queries (every SQL statement lives there, on the ledger's own connection, SQLite or
PostgreSQL: no SQLAlchemy on this path) and returns plain data (str, int, float, None, lists, dicts); `tiercli.render` draws it. Never imports
litellm. The other views (sessions, tasks, --by, an imported history) are in report_views.py.

How the figures are made
------------------------
All aggregation is SQL: ONE grouped pass over the window (queries.grand_query: a streaming scan of
the covering index ix_calls_report, rolled up per section), plus small queries run next to it on a
second read connection (queries.Beside, report_read): the last call time, feedback, compactions
(off the partial index ix_calls_compaction) and retries. Python only arranges a few hundred rows
(and prices each served model once, for caching).

Definitions (the JSON keys are listed in REPORT_KEYS and in the lead's docs)
- Window: `since <= started_at < until` (either end open when None), optionally `session = S`
  and `user_id = U` (--user; "(none)": calls made without a user).
  Every call kind counts in totals, tiers, task types, days and models:
  main | classifier | compaction | replay | import. Calls with no tier (imports) form a tier row
  whose `tier` is null; calls with no task type a task row whose `task_type` is null.
- Shares are fractions in 0..1; `saved_pct` is a percentage (0..100).
- Money: `cost_usd` sums priced calls only; unpriced calls (cost NULL) are counted in `calls` and
  in `unpriced`, never as $0. `mean_cost_usd` = cost_usd / priced calls.
- Tier targets are checked on ROUTED calls: kind = 'main' and not an override (decision_source
  'override': the user's choice, shown apart as override_calls). Classifier and compaction calls are
  overhead on fixed tiers. "Tiers 1-2" are the first two configured tiers below the top tier; "top
  tier" is the last of routing.tiers. The top-tier warning needs TOP_TIER_WARNING_MIN_CALLS routed
  calls and names how many it is based on.
- Savings: over the calls tier handled (every kind but import: tier did not route imported calls,
  so nothing was saved on them; they are counted apart). `top_tier_usd` re-prices those priced
  calls' token buckets (uncached input, cache read, 5-minute and 1-hour cache writes, output) at the
  top tier's primary model; classifier and compaction calls are included on both sides.
- Caching, per served model: saved = cache_read x (input - cache_read price)
  - [5m writes x (cache_write - input) + 1h writes x (cache_write_1h - input)].
- Models: per served_model (null: no model answered, e.g. an error before any reply). Unpriced
  calls are named by their served model, else the requested one. Errors: every status but ok
  (error, interrupted, pending) by error_class. Days: UTC days (the CLI redraws them in
  --timezone), gaps inside the span as zero days.
- Quality covers user-facing calls (kind main or import), per ROUTED tier (the tier routing chose:
  decided_tier for an override, else the tier the call was sent to) and per task type:
    overrides   decision_source = 'override' and the forced tier ranks above decided_tier
    retries     the user asking the same thing again after the task ended: a later task (rows
                sharing a task_id are one task's steps; a row without one is a task of its own)
                of the same session with the same prompt_hash, within retry_window_s of the earlier
                task's last step; counted once, on the earlier task (queries.task_retries)
    escalations fallback_count > 0 (the call went on to another group), or an attempt of a verified
                cascade after a failed --check (decision_source 'cascade')
    feedback    the latest `tier feedback` verdict per call (good | bad)
    rate        (overrides + retries + escalations + feedback_bad) / calls
  Regressions: configs (config_hash) are ordered by their first call in the window; for each task
  type with at least `regression_min_calls` calls under BOTH the newest and the previous config,
  it is flagged when rate(newest) - rate(previous) >= `regression_min_increase` (default 0.05).
"""

from __future__ import annotations

import time
from decimal import Decimal
from typing import Any, Callable, Iterable

from tiercli import report_quality, report_read
from tiercli.errors import UsageError
from tiercli.ledger.db import REPORT_INDEX_NAME, REPORT_INDEX_SQL  # noqa: F401 (re-exported)
from tiercli.ledger.queries import Where, grand_query  # noqa: F401 (re-exported)
from tiercli.pricing import PriceBook, UnitPrice
from tiercli.report_window import WINDOW_FORMS, _day_iso, is_duration, iso, parse_window  # noqa: F401 (re-exported)

TARGET_TIERS_1_2_SHARE = 0.8
TARGET_TOP_TIER_SHARE = (0.10, 0.12)
TOP_TIER_WARNING_ABOVE = 0.15
TOP_TIER_WARNING_MIN_CALLS = 50  # fewer routed calls than this are too few to judge the mix on
QUALITY_KINDS = ("main", "import")
ROUTED_KIND = report_read.ROUTED_KIND
DAY_S = 86_400
NONE_KEY = "(none)"  # the key of a NULL tier in tier_mix maps (JSON keys must be strings)

REPORT_KEYS = (
    "window", "totals", "tiers", "targets", "warnings", "task_types", "savings", "caching",
    "quality", "days", "models", "unpriced", "errors", "history", "runs",
)

def _usd(value: float | Decimal | None) -> float | None:
    return None if value is None else round(float(value), 9)


def _div(a: float | int | None, b: float | int | None) -> float | None:
    if a is None or not b:
        return None
    return a / b


# -- SQL -----------------------------------------------------------------------------------------
# Every query lives in tiercli.ledger.queries (the index that makes the grouped pass a streaming scan,
# REPORT_INDEX_SQL, is defined with the schema in ledger/db.py, which creates it in migration 2).


def _price_for(config, book: PriceBook, model: str) -> UnitPrice | None:
    params = None
    for d in config.model_list:
        if d.model == model:
            params = d.litellm_params
            break
    return book.lookup(model, params)


def _reprice(price: UnitPrice, *, input: int, cache_read: int, cache_write: int, cache_write_1h: int,
             output: int) -> Decimal:
    """Dollars for these token buckets at `price` (cache_write includes its 1-hour part)."""
    return (
        price.input * input + price.cache_read * cache_read + price.cache_write * (cache_write - cache_write_1h)
        + price.cache_write_1h * cache_write_1h + price.output * output
    )


def _cache_saving(price: UnitPrice, cread: int, cwrite: int, cw1h: int) -> tuple[Decimal, Decimal]:
    """(read saving, write premium) in dollars."""
    read_saved = (price.input - price.cache_read) * cread
    premium = (price.cache_write - price.input) * (cwrite - cw1h) + (price.cache_write_1h - price.input) * cw1h
    return read_saved, premium


# -- the report ----------------------------------------------------------------------------------
_BUCKETS = ("input", "cache_read", "cache_write", "cache_write_1h", "output")
_MONEY_FIELDS = ("calls", "priced_calls", "unpriced_calls", "cost") + _BUCKETS


def _compaction_saving(config, book: PriceBook, groups: list[tuple]) -> dict[str, Any]:
    """What compaction saved: the history tokens it removed from the call it served (history minus
    the summary), at that call's model's input price, less the compaction calls' own cost. A lower
    bound: later calls of the session start from the summary too."""
    removed = saved = cost = Decimal(0)
    calls = 0
    unpriced = []
    for model, n, history, summary, spent in groups:
        calls += n
        cut = max(int(history or 0) - int(summary or 0), 0)
        removed += cut
        cost += Decimal(str(spent or 0))
        price = _price_for(config, book, model) if model else None
        if price is None:
            unpriced.append(model)
            continue
        saved += price.input * cut
    return {"calls": calls, "tokens_removed": int(removed), "cost_usd": _usd(cost),
            "saved_usd": _usd(saved - cost), "unpriced_models": sorted(m for m in unpriced if m)}


def _none_last(value: Any) -> tuple[bool, str]:
    return (value is None, "" if value is None else str(value))


def _money(rows: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Sum rollup rows' money fields; `tokens` is every bucket (cache_write includes its 1h part)."""
    acc: dict[str, Any] = dict.fromkeys(_MONEY_FIELDS, 0)
    acc["cost"] = 0.0
    for row in rows:
        for field in _MONEY_FIELDS:
            acc[field] += row[field]
    acc["tokens"] = acc["input"] + acc["cache_read"] + acc["cache_write"] + acc["output"]
    return acc


def _by(rows: Iterable[dict[str, Any]], key: str = "k1") -> dict[Any, list[dict[str, Any]]]:
    out: dict[Any, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row[key], []).append(row)
    return out


def build_report(
    ledger,
    config,
    *,
    since: float | None,
    until: float | None,
    session: str | None,
    user: str | None = None,
    retry_window_s: float = 600,
    now: float | None = None,
    regression_min_calls: int = 20,
    regression_min_increase: float = 0.05,
    _narrow_threshold: int | None = None,
    meanwhile: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The report over `since <= started_at < until` (None: open end), optionally one session and
    one user (queries.NONE_USER, "(none)": the calls made without one). `config`: the Config, or a
    function that loads it, called once the ledger's reads have started (a fresh `tier report` loads
    its config while SQLite groups the calls). `meanwhile()` runs on this thread while SQLite reads
    the ledger off the GIL (the CLI imports its renderer then).

    Raises UsageError for since > until or a negative retry window; LedgerError from the ledger.
    """
    if since is not None and until is not None and since > until:
        raise UsageError(f"--since ({iso(since)}) is after --until ({iso(until)})", "swap them")
    if retry_window_s < 0:
        raise UsageError("the retry window must be zero or more seconds")
    now = time.time() if now is None else now
    where = Where(since, until, session, user=user)
    reading = report_read.begin(ledger, where, retry_window_s, narrow_threshold=_narrow_threshold)
    try:
        if callable(config):  # loaded while the ledger is read (report_read.Reading)
            config = config()
        tiers_cfg = list(config.routing.tiers)
        top = config.top_tier
    except BaseException:
        if reading is not None:
            reading.cancel()
        raise
    rank = {t: i for i, t in enumerate(tiers_cfg)}
    loaded: dict[str, Any] = {}

    def prices() -> None:  # while SQLite's reads run
        loaded["book"] = book = PriceBook(config.prices)
        loaded["top_model"] = config.primary_model(top)
        loaded["top_price"] = _price_for(config, book, loaded["top_model"])
        if meanwhile is not None:
            meanwhile()

    got = report_read.read_report(ledger, where, tiers_cfg, retry_window_s, narrow_threshold=_narrow_threshold,
                                  meanwhile=prices, reading=reading)
    book, top_model, top_price = loaded["book"], loaded["top_model"], loaded["top_price"]
    roll, compactions = got["roll"], got.get("compactions", [])
    total_calls = sum(r["calls"] for r in roll["kind"])
    feedback: list[tuple] = []
    retries: list[tuple] = []
    last_call = None
    if total_calls:
        last_call, feedback, retries = got["last_call"], got["feedback"], got.get("retries", [])
    sticky_rows = [r for r in roll["decision"] if r["k1"] == "sticky"]
    sticky = (sum(r["calls"] for r in sticky_rows), sum(r["cache_read"] for r in sticky_rows))

    warnings: list[str] = []
    first = min((r["first"] for r in roll["kind"]), default=None)
    window = {
        "since": since, "until": until, "since_iso": iso(since), "until_iso": iso(until),
        "session": session, "user": user, "all": since is None and until is None,
        "generated_at": now, "generated_at_iso": iso(now),
        "first_call_at": first, "last_call_at": last_call,
        "first_call_iso": iso(first), "last_call_iso": iso(last_call),
        "retry_window_s": retry_window_s,
        "timezone": "UTC",
        "ledger_calls": got["ledger_calls"],  # when the window is empty: how many calls the whole ledger holds
    }

    # -- totals --------------------------------------------------------------------------------
    total = _money(roll["kind"])
    total_cost = total["cost"]
    by_kind = {kind: _money(rows) for kind, rows in _by(roll["kind"]).items()}
    errors = [(r["k1"], r["k2"], r["calls"]) for r in roll["status"]]
    status_counts: dict[str, int] = {}
    for status, _cls, n in errors:
        status_counts[status] = status_counts.get(status, 0) + n
    totals = {
        "calls": total_calls,
        "priced_calls": total["priced_calls"],
        "cost_usd": _usd(total_cost),
        "input_tokens": total["input"],
        "cache_read_tokens": total["cache_read"],
        "cache_write_tokens": total["cache_write"],
        "cache_write_1h_tokens": total["cache_write_1h"],
        "output_tokens": total["output"],
        "tokens": total["tokens"],
        "errors": status_counts.get("error", 0),
        "interrupted": status_counts.get("interrupted", 0),
        "pending": status_counts.get("pending", 0),
        "unpriced": total["unpriced_calls"],
        "by_kind": {
            kind: {"calls": m["calls"], "cost_usd": _usd(m["cost"]), "unpriced_calls": m["unpriced_calls"]}
            for kind, m in sorted(by_kind.items(), key=lambda kv: _none_last(kv[0]))
        },
    }

    # -- tiers and targets ---------------------------------------------------------------------
    tier_rows = _by(roll["tier"])
    by_tier = {t: _money(rows) for t, rows in tier_rows.items()}
    # routed: kind main, routing's own choice; an override (the user's choice) is shown apart
    routed_by_tier = {t: sum(r["calls"] for r in rows if r["k2"] and not r["k3"]) for t, rows in tier_rows.items()}
    override_by_tier = {t: sum(r["calls"] for r in rows if r["k2"] and r["k3"]) for t, rows in tier_rows.items()}
    routed_total = sum(routed_by_tier.values())
    tier_order = tiers_cfg + sorted(t for t in by_tier if t is not None and t not in rank)
    if None in by_tier:
        tier_order.append(None)
    tiers_out = []
    for t in tier_order:
        m = by_tier.get(t) or _money(())
        tiers_out.append({
            "tier": t,
            "rank": rank.get(t) if t is not None else None,
            "calls": m["calls"],
            "share_calls": _div(m["calls"], total_calls) or 0.0,
            "routed_calls": routed_by_tier.get(t, 0),
            "share_routed": _div(routed_by_tier.get(t, 0), routed_total) or 0.0,
            "override_calls": override_by_tier.get(t, 0),
            "tokens": m["tokens"],
            "cost_usd": _usd(m["cost"]),
            "share_cost": _div(m["cost"], total_cost) or 0.0,
            "unpriced_calls": m["unpriced_calls"],
        })
    lower = [t for t in tiers_cfg[:2] if t != top]
    lower_share = _div(sum(routed_by_tier.get(t, 0) for t in lower), routed_total)
    top_share = _div(routed_by_tier.get(top, 0), routed_total)
    targets = {
        "basis": "routed calls (kind main; overrides apart)",
        "routed_calls": routed_total,
        "override_calls": sum(override_by_tier.values()),
        "tiers_1_2": lower,
        "top_tier": top,
        "tiers_1_2_share_target": TARGET_TIERS_1_2_SHARE,
        "top_tier_share_target": list(TARGET_TOP_TIER_SHARE),
        "top_tier_warning_above": TOP_TIER_WARNING_ABOVE,
        "top_tier_warning_min_calls": TOP_TIER_WARNING_MIN_CALLS,
        "tiers_1_2_share": lower_share,
        "top_tier_share": top_share,
    }
    if top_share is not None and top_share > TOP_TIER_WARNING_ABOVE and routed_total >= TOP_TIER_WARNING_MIN_CALLS:
        warnings.append(
            f"{top} took {top_share:.1%} of {routed_total:,} routed calls, above {TOP_TIER_WARNING_ABOVE:.0%}: "
            f"the classification needs tightening (target {TARGET_TOP_TIER_SHARE[0]:.0%}-{TARGET_TOP_TIER_SHARE[1]:.0%})"
        )

    # -- task types ----------------------------------------------------------------------------
    tier_pos = {t: i for i, t in enumerate(tier_order)}
    task_out = []
    for task, rows in _by(roll["task"]).items():
        m = _money(rows)
        mix = sorted(((r["k2"], r["calls"]) for r in rows), key=lambda kv: tier_pos.get(kv[0], len(tier_pos)))
        task_out.append({
            "task_type": task,
            "calls": m["calls"],
            "priced_calls": m["priced_calls"],
            "cost_usd": _usd(m["cost"]),
            "mean_cost_usd": _usd(_div(m["cost"], m["priced_calls"])),
            "share_calls": _div(m["calls"], total_calls) or 0.0,
            "share_cost": _div(m["cost"], total_cost) or 0.0,
            "unpriced_calls": m["unpriced_calls"],
            "tier_mix": {(NONE_KEY if t is None else t): n for t, n in mix},
        })
    task_out.sort(key=lambda r: (-r["cost_usd"], -r["calls"], _none_last(r["task_type"])))

    # -- savings -------------------------------------------------------------------------------
    # only calls tier handled: imported calls ran as their agent chose, so nothing was "saved" on them
    handled = [r for r in roll["kind"] if r["k1"] != "import"]
    priced = _money(r for r in handled if not r["k2"])  # k2: cost IS NULL
    handled_cost = priced["cost"]
    imported = _money(r for r in roll["kind"] if r["k1"] == "import")
    top_usd = None if top_price is None else float(_reprice(top_price, **{b: priced[b] for b in _BUCKETS}))
    saved = None if top_usd is None or not priced["calls"] else top_usd - handled_cost
    savings = {
        "basis": "calls tier routed (imported calls left out: tier did not route them)",
        "actual_usd": _usd(handled_cost),
        "top_tier": top,
        "top_tier_model": top_model,
        "top_tier_usd": _usd(top_usd),
        "saved_usd": _usd(saved),
        "saved_pct": (saved / top_usd * 100) if saved is not None and top_usd else None,
        "imported_calls": imported["calls"],
        "imported_usd": _usd(imported["cost"]),
        "classifier_usd": _usd(by_kind["classifier"]["cost"] if "classifier" in by_kind else 0.0),
        "compaction_usd": _usd(by_kind["compaction"]["cost"] if "compaction" in by_kind else 0.0),
        "priced_calls": priced["calls"],
        "calls_without_cost": sum(r["calls"] for r in handled) - priced["calls"],
        "compaction": _compaction_saving(config, book, compactions),
    }
    if top_price is None and total_calls:
        warnings.append(f"the top tier's model {top_model} has no known price: savings cannot be computed")

    # -- models and caching (each model priced once, in Python) --------------------------------
    model_rows = _by(roll["model"])
    by_model = {model: _money(rows) for model, rows in model_rows.items()}
    models_out = []
    cache_models = []
    read_saved_total = premium_total = Decimal(0)
    cache_unpriced: list[Any] = []
    for model, m in sorted(by_model.items(), key=lambda kv: (-kv[1]["cost"], -kv[1]["calls"], _none_last(kv[0]))):
        price = _price_for(config, book, model) if model else None
        models_out.append({
            "model": model, "calls": m["calls"], "tokens": m["tokens"],
            "input_tokens": m["input"], "cache_read_tokens": m["cache_read"],
            "cache_write_tokens": m["cache_write"], "output_tokens": m["output"],
            "cost_usd": _usd(m["cost"]), "share_cost": _div(m["cost"], total_cost) or 0.0,
            "unpriced_calls": m["unpriced_calls"], "priced": price is not None,
        })
        if not (m["cache_read"] or m["cache_write"]):
            continue
        entry = {
            "model": model, "cache_read_tokens": m["cache_read"], "cache_write_tokens": m["cache_write"],
            "cache_write_1h_tokens": m["cache_write_1h"],
            "read_share": _div(m["cache_read"], m["input"] + m["cache_read"] + m["cache_write"]),
            "read_saved_usd": None, "write_premium_usd": None, "saved_usd": None, "priced": price is not None,
        }
        if price is None:
            cache_unpriced.append(model)
        else:
            read_saved, premium = _cache_saving(price, m["cache_read"], m["cache_write"], m["cache_write_1h"])
            entry.update(read_saved_usd=_usd(read_saved), write_premium_usd=_usd(premium),
                         saved_usd=_usd(read_saved - premium))
            read_saved_total += read_saved
            premium_total += premium
        cache_models.append(entry)
    caching = {
        "cache_read_tokens": total["cache_read"],
        "cache_write_tokens": total["cache_write"],
        "cache_write_1h_tokens": total["cache_write_1h"],
        "read_share": _div(total["cache_read"], total["input"] + total["cache_read"] + total["cache_write"]),
        "read_saved_usd": _usd(read_saved_total),
        "write_premium_usd": _usd(premium_total),
        "saved_usd": _usd(read_saved_total - premium_total),
        "unpriced_models": cache_unpriced,
        "models": cache_models,
        # tier serve: calls kept on their session's tier while its cache was warm, and what they read
        "sticky_calls": sticky[0],
        "sticky_cache_read_tokens": sticky[1],
    }

    # -- unpriced and errors -------------------------------------------------------------------
    unpriced_models: dict[Any, int] = {}
    for r in roll["model"]:
        if r["k2"]:  # unpriced: named by the model that answered, else the one asked for
            name = r["k1"] if r["k1"] is not None else r["k3"]
            unpriced_models[name] = unpriced_models.get(name, 0) + r["calls"]
    unpriced = {
        "calls": total["unpriced_calls"],
        "models": [{"model": m, "calls": n}
                   for m, n in sorted(unpriced_models.items(), key=lambda kv: (-kv[1], _none_last(kv[0])))],
    }
    if unpriced["calls"]:
        names = ", ".join(str(m["model"]) for m in unpriced["models"])
        warnings.append(
            f"{unpriced['calls']} call(s) have no known price ({names}) and are left out of the dollar "
            "figures: add their models under prices: in the config"
        )
    errors_out = {
        "calls": sum(n for _s, _c, n in errors),
        "by_status": dict(sorted(status_counts.items())),
        "classes": [
            {"status": st, "error_class": cls, "calls": n}
            for st, cls, n in sorted(errors, key=lambda r: (-r[2], r[0], _none_last(r[1])))
        ],
    }

    # -- days (gaps inside the span shown as zero days) ----------------------------------------
    by_day = {r["k1"]: r for r in roll["day"]}
    days_out = []
    if by_day:
        for day in range(min(by_day), max(by_day) + 1):
            m = _money([by_day[day]] if day in by_day else [])
            days_out.append({"day": _day_iso(day), "calls": m["calls"], "tokens": m["tokens"],
                             "cost_usd": _usd(m["cost"]), "unpriced_calls": m["unpriced_calls"]})

    # -- quality -------------------------------------------------------------------------------
    quality = report_quality.quality(roll["quality"], feedback, retries, tier_order, retry_window_s=retry_window_s,
                                     min_calls=regression_min_calls, min_increase=regression_min_increase)
    for r in quality["regressions"]:
        warnings.append(
            f"quality regression: {r['task_type'] or NONE_KEY} went from {r['previous_rate']:.1%} to "
            f"{r['newest_rate']:.1%} after config {r['newest_config']}"
        )

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
        "history": None,  # an imported history's "as run" and "with routing" (report_views.history)
        "runs": report_read.runs(ledger, since, until, user),  # `tier run` tasks: resolved rate and cost per task by tier
    }
