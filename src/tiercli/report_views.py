"""`tier report`'s other views, as JSON-ready dicts: the session table (`tier report sessions`), the
per-task view of agent sessions (`tier report tasks`), usage per period or dimension (`--by day |
week | month | project | model | task | tier | session | user`), the time zone they are read in, and the
onboarding answer for an imported history (`history`: as run, then a "with routing" replay).

Pure core like report.py: SQL in tiercli.ledger.queries, drawing in tiercli.render_views.

Time zones: days, weeks (ISO, Monday first) and months are local to `--timezone`, by default the
machine's zone (TZ, else /etc/localtime), named in the output. The ledger groups calls by UTC
quarter hour and each quarter hour is placed in its local day here, so any zone (DST included,
every offset being a multiple of 15 minutes) is exact without reading each call in Python.

Projects: Claude Code logs name the folder a session ran in; the importer keeps it as meta_json
`cwd` (Codex rollouts as `project` or `cwd`). Calls without one (tier ask, tier serve) group under
null.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from typing import Any

from tiercli.errors import UsageError
from tiercli.ledger import queries as q
from tiercli.ledger import view_queries

PERIODS = ("day", "week", "month")
DIMENSIONS = ("project", "model", "task", "tier", "session", "user")
BY_CHOICES = PERIODS + DIMENSIONS
SESSIONS_TOP = 10  # sessions listed in the onboarding answer


# -- time zones ------------------------------------------------------------------------------------
def local_zone(name: str | None = None) -> tuple[dt.tzinfo, str]:
    """(tzinfo, its name) for --timezone NAME, else the machine's zone (TZ, then /etc/localtime)."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if name is not None:
        if name.upper() in ("UTC", "Z"):
            return dt.timezone.utc, "UTC"
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError, OSError):
            raise UsageError(f"unknown time zone {name!r}", "use an IANA name such as Europe/Paris, "
                             "America/New_York or UTC") from None
    env = os.environ.get("TZ", "").lstrip(":")
    if env:
        try:
            return ZoneInfo(env), env
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    try:
        target = str(Path("/etc/localtime").resolve())
        if "zoneinfo/" in target:
            zone = target.split("zoneinfo/", 1)[1]
            return ZoneInfo(zone), zone
    except (OSError, ZoneInfoNotFoundError, ValueError):
        pass
    here = dt.datetime.now().astimezone().tzinfo or dt.timezone.utc
    offset = dt.datetime.now(here).utcoffset() or dt.timedelta(0)
    if not offset:
        return dt.timezone.utc, "UTC"
    return here, dt.datetime.now(here).strftime("UTC%z")


def is_utc(tz: dt.tzinfo) -> bool:
    return tz is dt.timezone.utc or getattr(tz, "key", None) in ("UTC", "Etc/UTC", "Etc/Zulu", "Zulu")


def period_of(bucket: int, period: str, tz: dt.tzinfo) -> str:
    day = dt.datetime.fromtimestamp(bucket * 900, tz).date()
    if period == "day":
        return day.isoformat()
    if period == "week":
        return (day - dt.timedelta(days=day.weekday())).isoformat()  # the Monday of its ISO week
    return day.strftime("%Y-%m")


# -- usage per period or dimension --------------------------------------------------------------
_SUMS = ("calls", "priced_calls", "unpriced_calls", "cost", "input", "cache_read", "cache_write",
         "cache_write_1h", "output")


def _usage_row(key: Any, parts: list[dict[str, Any]]) -> dict[str, Any]:
    acc = {f: sum(p[f] or 0 for p in parts) for f in _SUMS}
    models: dict[Any, float] = {}
    for p in parts:
        models[p["model"]] = models.get(p["model"], 0.0) + (p["cost"] or 0.0)
    return {
        "key": key,
        "calls": acc["calls"],
        "input_tokens": acc["input"],
        "cache_write_tokens": acc["cache_write"],
        "cache_read_tokens": acc["cache_read"],
        "output_tokens": acc["output"],
        "tokens": acc["input"] + acc["cache_write"] + acc["cache_read"] + acc["output"],
        "cost_usd": round(acc["cost"], 9),
        "unpriced_calls": acc["unpriced_calls"],
        "models": [m for m, _ in sorted(models.items(), key=lambda kv: (-kv[1], str(kv[0]))) if m is not None],
        "first_call_at": min(p["first"] for p in parts),
        "last_call_at": max(p["last"] for p in parts),
    }


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ("calls", "input_tokens", "cache_write_tokens", "cache_read_tokens", "output_tokens", "tokens",
            "unpriced_calls")
    out = {k: sum(r[k] for r in rows) for k in keys}
    out["cost_usd"] = round(sum(r["cost_usd"] for r in rows), 9)
    return out


def usage_view(ledger, where: q.Where, by: str, tz: dt.tzinfo, tz_name: str) -> dict[str, Any]:
    """Usage per local day/week/month or per project/model/task/tier/session/user, oldest or
    costliest first, with the models used in each row (ccusage's daily/weekly/monthly/session
    tables). Per user, the calls made without one are the row "(none)" (q.NONE_USER)."""
    if by not in BY_CHOICES:
        raise UsageError(f"unknown --by {by!r}", f"use one of {', '.join(BY_CHOICES)}")
    key = "bucket" if by in PERIODS else by
    with q.snapshot(ledger) as conn:
        parts = view_queries.grouped(conn, where, key)
    groups: dict[Any, list[dict[str, Any]]] = {}
    for p in parts:
        k = period_of(p["key"], by, tz) if by in PERIODS else p["key"]
        if by == "user" and k is None:
            k = q.NONE_USER
        groups.setdefault(k, []).append(p)
    rows = [_usage_row(k, g) for k, g in groups.items()]
    if by == "session":
        for row in rows:
            row["project"] = max((p["project"] for p in groups[row["key"]] if p["project"]), default=None)
    if by in PERIODS:
        rows.sort(key=lambda r: r["key"])
    elif by == "session":
        rows.sort(key=lambda r: (-r["last_call_at"], str(r["key"])))  # most recent first, like ccusage
    else:
        rows.sort(key=lambda r: (-r["cost_usd"], -r["calls"], r["key"] is None, str(r["key"])))
    return {"view": "sessions" if by == "session" else "by", "by": by, "timezone": tz_name,
            "rows": rows, "totals": _totals(rows)}


# -- the per-task view ---------------------------------------------------------------------------
def tasks_view(ledger, where: q.Where) -> dict[str, Any]:
    """Tasks of user-facing calls (kind main or import): steps per task, cost per task, per task
    type and tier. Rows sharing calls.task_id are one task's steps; rows without one (older rows,
    imports made before tasks were recorded) count as a task each."""
    with q.snapshot(ledger) as conn:
        tasks = view_queries.tasks(conn, where)
    groups: dict[tuple[Any, Any], dict[str, Any]] = {}
    for t in tasks:
        g = groups.setdefault((t["task_type"], t["tier"]), {"task_type": t["task_type"], "tier": t["tier"], "tasks": 0,
                                                           "steps": 0, "cost_usd": 0.0, "unpriced_steps": 0,
                                                           "escalated_tasks": 0, "overridden_tasks": 0})
        g["tasks"] += 1
        g["escalated_tasks"] += 1 if t["escalated"] else 0
        g["overridden_tasks"] += 1 if t["overridden"] else 0
        g["steps"] += t["steps"]
        g["cost_usd"] += t["cost"] or 0.0
        g["unpriced_steps"] += t["unpriced_calls"] or 0
    rows = sorted(groups.values(), key=lambda g: (-g["cost_usd"], -g["tasks"], g["task_type"] is None,
                                                  str(g["task_type"]), str(g["tier"])))
    for g in rows:
        g["cost_usd"] = round(g["cost_usd"], 9)
        g["steps_per_task"] = g["steps"] / g["tasks"]
        g["cost_per_task_usd"] = round(g["cost_usd"] / g["tasks"], 9)
    steps = sorted(t["steps"] for t in tasks)
    n = len(tasks)
    cost = sum(t["cost"] or 0.0 for t in tasks)
    return {
        "view": "tasks",
        "basis": "calls of kind main or import; rows sharing a task_id are one task's steps, a row without "
                 "one is a task of its own",
        "tasks": n,
        "steps": sum(steps),
        "with_task_id": sum(1 for t in tasks if t["has_task_id"]),
        "sessions": len({t["session"] for t in tasks}),
        "steps_per_task": (sum(steps) / n) if n else None,
        "median_steps": steps[n // 2] if n else None,
        "max_steps": steps[-1] if n else None,
        "cost_usd": round(cost, 9),
        "cost_per_task_usd": round(cost / n, 9) if n else None,
        # per task, not per step: a task escalated when any step fell back or a --check cascade moved it up
        "escalated_tasks": sum(1 for t in tasks if t["escalated"]),
        "overridden_tasks": sum(1 for t in tasks if t["overridden"]),
        "by_type_and_tier": rows,
    }


# -- the onboarding answer -------------------------------------------------------------------------
def is_imported_history(report: dict[str, Any]) -> bool:
    """The window holds imported calls and no call tier routed: a history as the agent ran it."""
    kinds = report["totals"]["by_kind"]
    return bool(kinds.get("import", {}).get("calls")) and not kinds.get("main", {}).get("calls")


def history(loaded, ledger, report: dict[str, Any], where: q.Where, tz: dt.tzinfo, tz_name: str) -> dict[str, Any]:
    """An imported history: as it was run (by model, by session, by task type as the local
    classifier reads it) and, apart, "with routing": tier's dry replay of the same calls under the
    current config. No "saved" figure: tier did not route these calls; the replay is an estimate.

    The replay is tiercli.replay's (dry_replay): by task, each call's recorded token buckets priced on
    the new tier's model, cache-aware (a call moved to a model whose cache is cold pays the writes:
    the switch penalty, shown apart)."""
    from tiercli import replay

    rows, skipped = replay.select_ledger(ledger, session=where.session, since=where.since, user=where.user)
    if where.until is not None:
        rows = [r for r in rows if (r.get("started_at") or 0) < where.until]
    selection = replay.Selection("ledger", where.session, where.since, location=str(ledger.path), skipped=skipped)
    dry = replay.dry_replay(loaded, rows, selection, top=0)
    cfg = loaded.config
    top = cfg.top_tier
    after_tiers = {t: b.calls for t, b in dry.after.tiers.items()}
    all_sessions = usage_view(ledger, where, "session", tz, tz_name)["rows"]
    sessions = all_sessions[:SESSIONS_TOP]
    as_run_types: list[dict[str, Any]] = sorted(
        ({"task_type": k, "calls": b.calls, "cost_usd": round(b.cost_usd, 9), "unpriced_calls": b.unpriced}
         for k, b in dry.before.task_types.items()), key=lambda r: (-r["cost_usd"], -r["calls"], r["task_type"]))
    return {
        "calls": len(rows),
        "as_run": {
            "cost_usd": round(dry.before.cost_usd, 9),
            "unpriced_calls": dry.before.unpriced_calls,
            "models": [{"model": m["model"], "calls": m["calls"], "cost_usd": m["cost_usd"]} for m in report["models"]],
            "sessions": [{"session": s["key"], "project": s.get("project"), "calls": s["calls"],
                          "cost_usd": s["cost_usd"], "last_call_at": s["last_call_at"]} for s in sessions],
            "session_count": len(all_sessions),
            "task_types": as_run_types,
            "task_types_basis": "each task's instruction classified once (by the importer, or now in the replay); "
                                "every step of a task counts with it",
        },
        "with_routing": {
            "label": "estimate: the same calls replayed under the current config (dry, nothing called)",
            "config": loaded.source,
            "config_hash": loaded.hash,
            "cost_usd": round(dry.after.cost_usd, 9),
            "unpriced_calls": dry.after.unpriced_calls,
            "comparable_calls": dry.comparable_calls,
            "comparable_as_run_usd": round(dry.comparable_before_usd, 9),
            "comparable_with_routing_usd": round(dry.comparable_after_usd, 9),
            "comparable_with_routing_warm_usd": round(dry.comparable_after_warm_usd, 9),
            "switch_penalty_usd": round(dry.switch_penalty_usd, 9),
            "switch_penalty_calls": dry.penalty_calls,
            "tasks": dry.tasks,
            "tiers": {t: after_tiers.get(t, 0) for t in cfg.routing.tiers},
            "top_tier": top,
            "top_tier_share": (after_tiers.get(top, 0) / len(rows)) if rows else None,
            "cache_aware": True,
            "notes": list(dry.notes),
        },
    }


def local_days(ledger, where: q.Where, tz: dt.tzinfo) -> list[dict[str, Any]]:
    """The report's days section in a local zone (gaps inside the span as zero days)."""
    rows = {r["key"]: r for r in usage_view(ledger, where, "day", tz, "")["rows"]}
    if not rows:
        return []
    first, last = dt.date.fromisoformat(min(rows)), dt.date.fromisoformat(max(rows))
    out = []
    for i in range((last - first).days + 1):
        day = (first + dt.timedelta(days=i)).isoformat()
        r = rows.get(day)
        out.append({"day": day, "calls": r["calls"] if r else 0, "tokens": r["tokens"] if r else 0,
                    "cost_usd": r["cost_usd"] if r else 0.0, "unpriced_calls": r["unpriced_calls"] if r else 0})
    return out
