"""What `tier run` achieved, from the ledger: resolved rate and cost per task by tier. Pure (rows in,
a JSON-ready dict out), for `tier report` and for `tier tune` on the ledger's own history.

Input: Ledger.run_attempts() rows (one per attempt, kind 'run', with its calls' summed cost).
"""

from __future__ import annotations

import json
from typing import Any


def summarize(attempts: list[dict[str, Any]]) -> dict[str, Any]:
    """Tasks and attempts from Ledger.run_attempts() rows: resolved rate and cost per task, overall,
    by the tier a task started on and by the tier it was resolved on, and per attempt tier. A task
    is resolved when its last attempt passed; its cost is None (unknown) when a call was unpriced or
    not linked (--gateway). Interrupted tasks are counted apart and left out of the rates."""
    tasks: dict[str, list[dict[str, Any]]] = {}
    for row in attempts:
        tasks.setdefault(row["task_id"], []).append(row)

    def cost_of(rows: list[dict[str, Any]]) -> float | None:
        if any(r["unpriced_calls"] or json.loads(r["meta_json"] or "{}").get("run", {}).get("calls") is None for r in rows):
            return None
        return sum(r["calls_cost_usd"] or 0.0 for r in rows)

    def group() -> dict[str, Any]:
        return {"tasks": 0, "resolved": 0, "cost_usd": 0.0, "unknown_cost": 0}

    def add(g: dict[str, Any], resolved: bool, cost: float | None) -> None:
        g["tasks"] += 1
        g["resolved"] += resolved
        if cost is None:
            g["unknown_cost"] += 1
        else:
            g["cost_usd"] += cost

    def finish(g: dict[str, Any]) -> dict[str, Any]:
        priced = g["tasks"] - g["unknown_cost"]
        return {**g, "resolved_rate": g["resolved"] / g["tasks"] if g["tasks"] else None,
                "cost_per_task_usd": g["cost_usd"] / priced if priced else None,
                "cost_per_resolved_usd": g["cost_usd"] / g["resolved"] if g["resolved"] and not g["unknown_cost"] else None}

    by_start: dict[str, dict[str, Any]]  # tier -> group()
    by_resolved: dict[str, dict[str, Any]]
    total, by_start, by_resolved, interrupted = group(), {}, {}, 0
    per_attempt: dict[str, dict[str, Any]] = {}
    for rows in tasks.values():
        rows.sort(key=lambda r: r["started_at"])
        for r in rows:
            a = per_attempt.setdefault(r["tier"], {"attempts": 0, "passed": 0, "cost_usd": 0.0, "unknown_cost": 0,
                                                   "outcomes": {}})
            a["attempts"] += 1
            a["passed"] += r["status"] == "ok"
            outcome = r["error_class"] or ("passed" if r["status"] == "ok" else r["status"])
            a["outcomes"][outcome] = a["outcomes"].get(outcome, 0) + 1
            c = cost_of([r])
            a["unknown_cost"] += c is None
            a["cost_usd"] += c or 0.0
        if rows[-1]["status"] in ("interrupted", "pending"):
            interrupted += 1
            continue
        resolved, cost = rows[-1]["status"] == "ok", cost_of(rows)
        add(total, resolved, cost)
        add(by_start.setdefault(rows[0]["tier"], group()), resolved, cost)
        if resolved:
            add(by_resolved.setdefault(rows[-1]["tier"], group()), True, cost)
    return {"tasks": finish(total), "interrupted_tasks": interrupted,
            "by_start_tier": {t: finish(g) for t, g in by_start.items()},
            "by_resolved_tier": {t: finish(g) for t, g in by_resolved.items()},
            "attempts_by_tier": {t: {**a, "pass_rate": a["passed"] / a["attempts"]} for t, a in per_attempt.items()}}


def outcome_rows(attempts: list[dict[str, Any]]) -> list[tuple[str, str | None, str, float, float | None]]:
    """(task_id, task_type, tier, quality, cost_usd) per finished attempt, for
    replay_outcomes.table_from_rows (`tier tune` on the ledger's own history): quality 1.0 when the
    attempt passed, else 0.0 (a capped attempt failed at what it spent, at most its cap); cost None
    when unknown. Interrupted and unfinished attempts are left out."""
    rows = []
    for r in attempts:
        if r["status"] not in ("ok", "error"):
            continue
        run = json.loads(r["meta_json"] or "{}").get("run", {})
        known = not r["unpriced_calls"] and run.get("calls") is not None
        rows.append((r["task_id"], r["task_type"], r["tier"], 1.0 if r["status"] == "ok" else 0.0,
                     (r["calls_cost_usd"] or 0.0) if known else None))
    return rows
