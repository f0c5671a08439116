"""What `tier run` achieved, from the ledger: resolved rate and cost per task by tier. Pure (rows in,
a JSON-ready dict out), for `tier report` and for `tier tune --ledger` on the ledger's own history.

Input: Ledger.run_attempts() rows (one per attempt, kind 'run', with its calls' summed cost).

`tier tune --ledger` needs, per task, an outcome on every tier it searches over. A cascade stops at
the first pass, so a task resolved on tier1 says nothing about tier2: such tasks are left out (and the
rest leans towards hard tasks: said in the output). Attempts of separate `tier run` invocations are
one task when they share the task text, the check command and the starting tree, so re-running a
task with `--start TIER` fills in the tier it skipped; when a tier was tried more than once, the
latest attempt counts.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tiercli.errors import InputError

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig

FEW_TASKS = 20  # below this many complete tasks, the held-out figures are flagged as rough


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


def task_key(row: dict[str, Any]) -> str:
    """The same task across `tier run` invocations: task text, check command and starting tree (the
    files' content: the same files committed twice are the same start)."""
    run = json.loads(row["meta_json"] or "{}").get("run", {})
    tree = run.get("files_tree") or run.get("snapshot")
    if not row.get("prompt_hash") or not tree:
        return row["task_id"]
    text = json.dumps([row["prompt_hash"], run.get("check"), tree])
    return "task-" + hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class LedgerOutcomes:
    rows: list[tuple[str, str | None, str, float, float | None]] = field(default_factory=list)
    runs: int = 0  # `tier run` invocations with a finished attempt
    tasks: int = 0  # distinct tasks among them (task_key)
    unknown_cost: int = 0  # tasks left out: an attempt's cost is unknown (unpriced or not linked)
    superseded: int = 0  # attempts replaced by a later attempt of the same task on the same tier


def ledger_outcomes(attempts: list[dict[str, Any]]) -> LedgerOutcomes:
    """outcome_rows, one per (task, tier): merged across invocations by task_key, the latest attempt
    per tier, tasks with an attempt of unknown cost left out (never counted as zero)."""
    out = LedgerOutcomes()
    per_attempt = dict(zip((r["id"] for r in attempts if r["status"] in ("ok", "error")), outcome_rows(attempts)))
    latest: dict[str, dict[str, tuple[str | None, float, float | None]]] = {}
    types: dict[str, str | None] = {}
    runs: set[str] = set()
    for r in sorted(attempts, key=lambda r: (r["started_at"], r["id"])):
        if r["id"] not in per_attempt:
            continue
        _, task_type, tier, quality, cost = per_attempt[r["id"]]
        key = task_key(r)
        runs.add(r["task_id"])
        tiers = latest.setdefault(key, {})
        out.superseded += tier in tiers
        tiers[tier] = (task_type, quality, cost)
        types[key] = types.get(key) or task_type
    out.runs, out.tasks = len(runs), len(latest)
    for key, tiers in latest.items():
        if any(cost is None for _, _, cost in tiers.values()):
            out.unknown_cost += 1
            continue
        out.rows += [(key, types[key], tier, quality, cost) for tier, (_, quality, cost) in tiers.items()]
    return out


def tune_ledger(loaded: "LoadedConfig", attempts: list[dict[str, Any]], *, mapping: list[str] | None = None,
                folds: int = 5, **options: Any) -> dict[str, Any]:
    """`tier tune --ledger`: the same search as on an outcome table (replay_outcomes.commands.tune_table),
    on the outcomes of the ledger's `tier run` tasks. InputError when there are too few tasks with an
    outcome on every tier to cross-validate."""
    from tiercli.replay_outcomes.commands import tune_table
    from tiercli.replay_outcomes.table import table_from_rows
    from tiercli.replay_outcomes.tune import fold_of

    found = ledger_outcomes(attempts)
    if not found.rows:
        why = f" ({found.unknown_cost} with an unpriced or unlinked call)" if found.unknown_cost else ""
        raise InputError(f"the ledger holds no finished `tier run` task of known cost{why}",
                         "record tasks with tier run --check CMD -- AGENT ... first")
    table = table_from_rows(found.rows, source="the ledger's tier run history")
    tiers = [t for t in loaded.config.routing.tiers if t in table.models]
    if not tiers:
        raise InputError(f"the ledger's tier run tasks ran on tier(s) {', '.join(table.models)}, none of them in this "
                         "config", f"its tiers: {', '.join(loaded.config.routing.tiers)}; pass the config they ran with (-c)")
    chosen = mapping or [f"{t}={t}" for t in tiers]
    mapped = _mapped_tiers(chosen, tiers)
    complete_ids = [task for task in table.task_ids if all(t in table.outcomes[task] for t in mapped)]
    complete, used = len(complete_ids), len({fold_of(task, folds) for task in complete_ids})
    if used < folds:
        raise InputError(
            f"too few tasks to cross-validate: {complete} of the ledger's {found.tasks} tier run task(s) have an "
            f"outcome on every tier searched ({', '.join(mapped) or 'none'}), falling in {used} of the --folds {folds} "
            "folds (each fold needs one)",
            "record more tasks (re-run a task with --start TIER to fill in a tier its cascade skipped), "
            "or search fewer tiers (--map tier1=tier1,tier2=tier2) or use fewer --folds")
    data = tune_table(loaded, table, mapping=chosen, folds=folds, **options)
    notes = [f"from the ledger: {found.runs} tier run invocation(s), {found.tasks} task(s) (same task text, check and "
             f"starting tree = one task), {complete} with an outcome on every tier searched"]
    if complete < found.tasks - found.unknown_cost:
        notes.append("a cascade stops at the first pass, so tasks resolved early have no outcome on the later tiers and "
                     "are left out: the rest leans towards hard tasks. Re-run tasks with --start TIER to fill them in")
    if found.unknown_cost:
        notes.append(f"{found.unknown_cost} task(s) left out: an attempt's cost is unknown (an unpriced call, or "
                     "--gateway), never counted as zero")
    if found.superseded:
        notes.append(f"{found.superseded} earlier attempt(s) of a task on a tier it was tried on again: the latest counts")
    if complete < FEW_TASKS:
        notes.append(f"only {complete} task(s): the cross-validated figures are rough")
    data["notes"] = notes + data["notes"]
    data["ledger"] = {"runs": found.runs, "tasks": found.tasks, "complete_tasks": complete,
                      "unknown_cost_tasks": found.unknown_cost, "superseded_attempts": found.superseded}
    return data


def _mapped_tiers(items: list[str], tiers: list[str]) -> list[str]:
    """The tiers a --map over the ledger's tiers names (each item TIER=TIER, or comma-separated)."""
    names = {part.strip() for item in items for piece in item.split(",") for part in piece.split("=") if part.strip()}
    return [t for t in tiers if t in names]
