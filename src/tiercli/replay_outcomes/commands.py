"""The two commands end to end (cli.py parses, calls these, renders): read the table, map and price
it, judge or tune, and shape the JSON. Bad options raise UsageError, bad tables InputError."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiercli.errors import UsageError
from tiercli.replay_outcomes.evaluate import build_matrix, evaluate_outcomes, zero_cost_note
from tiercli.replay_outcomes.parse import parse_cap_grid, parse_caps, parse_start
from tiercli.replay_outcomes.table import OutcomeTable, load_outcomes, parse_map

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig


def _load(path: Path, tasks: Path | None, by: str | None) -> tuple[OutcomeTable, bool]:
    """The table and whether task types are used. `--by none` drops them; `--by classifier` takes each
    task's type from the local classifier on its prompt (the taxonomy `tier ask` and `tier run` use)."""
    how = (by or "").strip().lower()
    if how in ("none", "classifier"):
        table = load_outcomes(path, tasks)
        table.groups, table.group_column = {}, None
        table.columns.pop("task_type", None)
        if how == "none":
            return table, False
        from tiercli.classify import run_local

        seen: dict[str, str | None] = {}
        for task in table.task_ids:
            prompt = table.prompts.get(task)
            if prompt and prompt.strip():
                if prompt not in seen:
                    seen[prompt] = run_local(prompt).task_type
                task_type = seen[prompt]
                if task_type is not None:  # a learned label-only route has no type: the task stays untyped
                    table.groups[task] = task_type
        if not table.groups:
            raise UsageError("--by classifier needs prompts", "add a prompt column or --tasks FILE")
        table.group_column = table.columns["task_type"] = "classifier"
        return table, True
    return load_outcomes(path, tasks, group_column=by), True


def replay_outcomes(loaded: "LoadedConfig", path: Path, *, tasks: Path | None = None, mapping: list[str] | None = None,
                    threshold: float = 1.0, classifier: str | None = None, top: int = 10,
                    policies: list[str] | None = None, caps: list[str] | None = None,
                    start: list[str] | None = None, by: str | None = None) -> dict[str, Any]:
    from tiercli.replay_outcomes.render import outcomes_json

    cfg = loaded.config
    table, _ = _load(path, tasks, by)
    model_map = parse_map(mapping or [], table, cfg.routing.tiers)
    groups = sorted(set(table.groups.values()))
    result = evaluate_outcomes(loaded, table, model_map, threshold=threshold, classifier=classifier, top=top,
                               policies=policies, caps=parse_caps(caps, cfg.routing.tiers),
                               start=parse_start(start, cfg.routing.tiers, groups))
    return outcomes_json(result)


def parse_orders(items: list[str] | None, tiers: list[str]) -> list[tuple[int, ...]] | None:
    if not items:
        return None
    orders: list[tuple[int, ...]] = []
    for item in items:
        names = [t.strip() for t in item.split(",") if t.strip()]
        bad = [t for t in names if t not in tiers]
        if not names or bad:
            raise UsageError(f"--order {item!r}: " + (f"tier {bad[0]!r} has no table model" if bad else "no tiers"),
                             f"mapped tiers: {', '.join(tiers)}")
        if len(set(names)) != len(names):
            raise UsageError(f"--order {item!r}: a tier appears twice")
        order = tuple(tiers.index(t) for t in names)
        if order not in orders:
            orders.append(order)
    return orders


def tune(loaded: "LoadedConfig", path: Path, *, mapping: list[str] | None = None, within: float = 0.01,
         folds: int = 5, objective: str = "success", threshold: float = 1.0, orders: list[str] | None = None,
         cap_grid: list[str] | None = None, by: str | None = None, tasks: Path | None = None,
         min_type_tasks: int = 10) -> dict[str, Any]:
    table, by_type = _load(path, tasks, by)
    return tune_table(loaded, table, mapping=mapping, within=within, folds=folds, objective=objective,
                      threshold=threshold, orders=orders, cap_grid=cap_grid, by_type=by_type,
                      min_type_tasks=min_type_tasks)


def tune_table(loaded: "LoadedConfig", table: OutcomeTable, *, mapping: list[str] | None = None, within: float = 0.01,
               folds: int = 5, objective: str = "success", threshold: float = 1.0, orders: list[str] | None = None,
               cap_grid: list[str] | None = None, by_type: bool = True, min_type_tasks: int = 10) -> dict[str, Any]:
    """`tier tune` on a table already read: from a file, or `table_from_rows` (the ledger's task outcomes)."""
    from tiercli.replay_outcomes import tune as tuning
    from tiercli.replay_outcomes.render_tune import tune_json

    cfg = loaded.config
    model_map = parse_map(mapping or [], table, cfg.routing.tiers)
    priced = build_matrix(loaded, table, model_map, threshold)
    m = priced.matrix
    result = tuning.tune(m, within=within, folds=folds, objective=objective, orders=parse_orders(orders, m.tiers),
                         cap_grid=parse_cap_grid(cap_grid, m.tiers), by_type=by_type, min_type_tasks=min_type_tasks)
    notes = []
    if priced.incomplete:
        notes.append(f"{priced.incomplete} task(s) lack an outcome for a mapped model and were left out")
    notes += zero_cost_note(priced)
    unmapped = [x for x in table.models if x not in model_map]
    if unmapped:
        notes.append(f"table model(s) not mapped to a tier, ignored: {', '.join(unmapped)}")
    if result.search.rare_types:
        notes.append(f"{result.search.rare_types} task type(s) with fewer than {min_type_tasks} tasks share the default "
                     "start (--min-type-tasks)")
    if by_type and not table.groups:
        notes.append("the table has no task-type column (task_type, dimension, category or --by): one start tier for all")
    if any(c is not None for g in result.search.cap_grid for c in g):
        notes.append("caps: an attempt whose recorded cost is above its cap counts as failed at the cap's cost. This is "
                     "an approximation: the table holds each attempt's final cost only")
    notes.append("the frontier and in-sample figures are measured on the tasks they were chosen on; the held-out "
                 "figures are the honest estimate")
    return tune_json(result, loaded=loaded, table=table.describe(), mapping=model_map, incomplete=priced.incomplete,
                     notes=notes)
