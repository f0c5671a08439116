"""Output of `tier replay --outcomes`: JSON, CSV and a Rich table.

JSON keys: mode ("outcomes"), config, table, map, tiers, success_threshold, tasks, tasks_incomplete,
pricing, decisions, remapped, caps, start, task_types (the table's, with task counts), policies
[{name, tasks, quality, success_rate, cost_usd, cost_per_task_usd, cost_vs_top, tier_shares, attempts,
capped_attempts, pgr}], pgr (the config policy's, two mapped tiers only), changed_tasks; before = the
always-top-tier policy, after = the config policy (when judged; tiers: {tier: {tasks, share}}),
changed = tasks the config sends below the top tier, by |cost difference|; notes.

CSV (`--csv`): one row per policy: policy, tasks, quality, success_rate, cost_usd, cost_per_task_usd,
cost_vs_top, attempts, capped_attempts, pgr, then share_<tier> per mapped tier.

Every string from a table is printed as text (control characters replaced, markup escaped).
"""

from __future__ import annotations

import csv
import io
from typing import Any

from tiercli.render_replay import money
from tiercli.replay_outcomes.evaluate import OutcomeReplay


def usd(value: float | None) -> float | None:
    return None if value is None else round(float(value), 9)


def policy_json(p, tasks: int) -> dict[str, Any]:
    return {
        "name": p.name,
        "tasks": p.tasks,
        "quality": p.quality,
        "success_rate": p.success_rate,
        "cost_usd": usd(p.cost_usd),
        "cost_per_task_usd": usd(p.cost_usd / tasks) if tasks else None,
        "cost_vs_top": p.cost_vs_top,
        "tier_shares": p.tier_shares(),
        "attempts": p.attempts,
        "capped_attempts": p.capped,
        "pgr": p.pgr,
    }


def _side(p) -> dict[str, Any]:
    return {"policy": p.name, "cost_usd": usd(p.cost_usd), "quality": p.quality,
            "tiers": {t: {"tasks": n, "share": (n / p.tasks if p.tasks else 0.0)} for t, n in p.finished.items()}}


def outcomes_json(r: OutcomeReplay) -> dict[str, Any]:
    by_name = {p.name: p for p in r.policies}
    config = by_name.get("config")
    top = by_name.get(f"always:{r.tiers[-1]}")
    return {
        "mode": "outcomes",
        "config": {"source": r.config_source, "hash": r.config_hash, "classifier": r.classifier},
        "table": r.table,
        "map": dict(r.mapping),
        "tiers": list(r.tiers),
        "success_threshold": r.threshold,
        "tasks": r.tasks,
        "tasks_incomplete": r.tasks_incomplete,
        "pricing": {**r.pricing, "models": dict(r.pricing_models)},
        "decisions": dict(r.decided),
        "remapped": r.remapped,
        "caps": dict(r.caps),
        "start": dict(r.start),
        "task_types": dict(r.groups),
        "config_decided_tiers": dict(r.config_decided) if config else {},
        "config_task_types": dict(r.config_task_types),
        "policies": [policy_json(p, r.tasks) for p in r.policies],
        "pgr": config.pgr if config else None,
        "before": _side(top) if top else None,
        "after": _side(config) if config else None,
        "changed_tasks": r.changed_tasks,
        "changed": [{"task_id": t.task_id, "task_type": t.task_type, "decided_tier": t.decided_tier,
                     "old_tier": t.top_tier, "new_tier": t.served_tier, "old_cost_usd": usd(t.top_cost_usd),
                     "new_cost_usd": usd(t.cost_usd), "diff_usd": usd(t.diff_usd), "old_quality": t.top_quality,
                     "new_quality": t.quality} for t in r.changed],
        "notes": list(r.notes),
    }


CSV_COLUMNS = ("policy", "tasks", "quality", "success_rate", "cost_usd", "cost_per_task_usd", "cost_vs_top",
               "attempts", "capped_attempts", "pgr")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(round(value, 9))
    return str(value)


def outcomes_csv(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    tiers = data["tiers"]
    writer.writerow([*CSV_COLUMNS, *(f"share_{t}" for t in tiers)])
    for p in data["policies"]:
        row = [p["name"], data["tasks"], p["quality"], p["success_rate"], p["cost_usd"], p["cost_per_task_usd"],
               p["cost_vs_top"], p["attempts"], p["capped_attempts"], p["pgr"]]
        writer.writerow([_cell(v) for v in row] + [_cell(p["tier_shares"].get(t)) for t in tiers])
    return buf.getvalue()


# -- terminal ------------------------------------------------------------------------------------
def text(value: Any) -> str:
    from rich.markup import escape

    from tiercli.render_calls import inert

    return escape(inert("(none)" if value is None else value))


def pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def console(con=None):
    if con is not None:
        return con
    from rich.console import Console

    return Console(highlight=False)


def print_outcomes(data: dict[str, Any], con=None) -> None:
    from rich.table import Table

    con = console(con)
    t = data["table"]
    con.print(f"Outcome replay: {data['tasks']:,} task(s) of {text(t['source'])} ({text(t['form'])} {text(t['format'])}), "
              f"under {text(data['config']['source'])}; success = quality >= {data['success_threshold']:g}")
    con.print("map: " + ", ".join(f"{text(m)} = {text(tier)}" for m, tier in data["map"].items()))
    if data["caps"]:
        con.print("caps per attempt: " + ", ".join(f"{text(k)} {money(v)}" for k, v in data["caps"].items())
                  + " (an attempt over its cap counts as failed at the cap's cost; an approximation, see the notes)")
    if data["start"]:
        con.print("cascade start per task type: " + ", ".join(f"{text(k)} -> {text(v)}" for k, v in data["start"].items()))
    tiers = data["tiers"]
    graded = any(p["quality"] != p["success_rate"] for p in data["policies"])
    capped = any(p["capped_attempts"] for p in data["policies"])
    table = Table(title="Policies (finishing tier shares on the right)", title_justify="left")
    cols = ["policy", "quality"] + (["success"] if graded else []) + ["cost", "vs top"]
    cols += (["capped"] if capped else []) + (["PGR"] if data["pgr"] is not None else []) + tiers
    for col in cols:
        table.add_column(text(col), justify="left" if col == "policy" else "right", overflow="fold")
    for p in data["policies"]:
        row = [text(p["name"]), f"{p['quality']:.4f}"] + ([pct(p["success_rate"])] if graded else [])
        row += [money(p["cost_usd"]), pct(p["cost_vs_top"])]
        row += [f"{p['capped_attempts']:,}"] if capped else []
        if data["pgr"] is not None:
            row.append("-" if p["pgr"] is None else f"{p['pgr']:.3f}")
        row += [pct(p["tier_shares"].get(t)) for t in tiers]
        table.add_row(*row)
    con.print(table)
    pr = data["pricing"]
    how = []
    if pr["cost_usd"]:
        how.append(f"{pr['cost_usd']:,} from the table's cost_usd")
    if pr["token_columns"]:
        how.append(f"{pr['token_columns']:,} from its token columns")
    if pr["counted"]:
        how.append(f"{pr['counted']:,} from tokens counted in the prompt and response text")
    models = ", ".join(f"{text(k)}: {text(v)}" for k, v in pr["models"].items())
    con.print("costs: " + "; ".join(how) + (f" (priced as {models})" if models else ""))
    if data["after"] is not None:
        chose = ", ".join(f"{text(k)} {n:,}" for k, n in data["config_decided_tiers"].items() if n)
        con.print(f"config policy: decided {chose}; task types: "
                  + ", ".join(f"{text(k)} {n:,}" for k, n in list(data["config_task_types"].items())[:6]))
    for note in data["notes"]:
        con.print(f"note: {text(note)}")
