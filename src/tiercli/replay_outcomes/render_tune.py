"""Output of `tier tune`: JSON, CSV (the frontier), a Rich view, and the config snippet (`--write`).

JSON keys: mode ("tune"), config, table, map, tiers, objective, success_threshold, within, tasks,
tasks_incomplete, search {settings, orders, cap_grid, task_types, rare_types, frontier_points}, frontier
[{value, cost_usd, cost_vs_top, chosen, policy, order, caps, start}], chosen {policy, order, caps,
start, in_sample {tuned, oracle, always:<tier>..., cascade}}, cross_validation {folds, tasks,
policies {name: {...}}, per_fold [{fold, train_tasks, test_tasks, chosen}]}, snippet, notes, seconds.
`value` is the objective's mean (success rate or mean quality).

CSV (`--csv`): the frontier, one row per policy: value, cost_usd, cost_vs_top, chosen, policy.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from pathlib import Path
from typing import Any

import yaml

from tiercli.errors import InputError, UsageError
from tiercli.render_calls import inert
from tiercli.render_replay import money
from tiercli.replay_outcomes.render import console, pct, policy_json, text, usd
from tiercli.replay_outcomes.tune import Point, TuneResult

CAP_NOTE = ("caps are simulated: an attempt whose recorded cost is above its cap counts as failed at the cap's "
            "cost (an approximation: the table holds final costs only)")


def _point_json(p: Point, tiers: list[str], tasks: int, top_cost: float, chosen: Point) -> dict[str, Any]:
    return {"value": p.value / tasks if tasks else None, "cost_usd": usd(p.cost),
            "cost_vs_top": p.cost / top_cost if top_cost else None, "chosen": p == chosen,
            "policy": p.spec(tiers).name, **_run_section(p, tiers)}


def _run_section(p: Point, tiers: list[str]) -> dict[str, Any]:
    return {"order": [tiers[k] for k in p.order],
            "caps": {tiers[k]: c for k, c in enumerate(p.caps) if c is not None and k in p.order},
            "start": {g: tiers[k] for g, k in p.start}}


def tune_json(r: TuneResult, *, loaded, table: dict[str, Any], mapping: dict[str, str], incomplete: int,
              notes: list[str]) -> dict[str, Any]:
    m, s = r.matrix, r.search
    tiers, n = m.tiers, len(m)
    top_cost = r.in_sample[f"always:{tiers[-1]}"].cost_usd
    for p in r.in_sample.values():
        p.cost_vs_top = p.cost_usd / top_cost if top_cost else None
    pooled = r.cv.pooled
    cv_top = pooled.get(f"always:{tiers[-1]}")
    for p in pooled.values():
        p.cost_vs_top = p.cost_usd / cv_top.cost_usd if cv_top and cv_top.cost_usd else None
    data = {
        "mode": "tune",
        "config": {"source": loaded.source, "hash": loaded.hash},
        "table": table,
        "map": dict(mapping),
        "tiers": list(tiers),
        "objective": r.objective,
        "success_threshold": m.threshold,
        "within": r.within,
        "tasks": n,
        "tasks_incomplete": incomplete,
        "search": {"settings": s.settings, "orders": [[tiers[k] for k in o] for o in s.orders],
                   "cap_grid": {tiers[k]: g for k, g in enumerate(s.cap_grid)}, "task_types": list(s.groups),
                   "rare_types": s.rare_types,
                   "frontier_points": len(s.frontier)},
        "frontier": [_point_json(p, tiers, n, top_cost, r.chosen) for p in s.frontier],
        "chosen": {"policy": r.chosen.spec(tiers).name, **_run_section(r.chosen, tiers),
                   "in_sample": {k: policy_json(p, n) for k, p in r.in_sample.items()}},
        "cross_validation": {
            "folds": r.cv.k, "tasks": sum(len(f.test) for f in r.cv.folds),
            "policies": {k: policy_json(p, p.tasks) for k, p in pooled.items()},
            "per_fold": [{"fold": f.index, "train_tasks": len(f.train), "test_tasks": len(f.test),
                          "chosen": f.chosen.spec(tiers).name if f.chosen else None,
                          "tuned": policy_json(f.policies["tuned"], len(f.test)) if f.chosen else None}
                         for f in r.cv.folds],
        },
        "notes": list(notes),
        "seconds": round(r.seconds, 4),
    }
    data["snippet"] = snippet_yaml(data)
    return data


def tune_csv(data: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("value", "cost_usd", "cost_vs_top", "chosen", "policy"))
    for p in data["frontier"]:
        writer.writerow((repr(round(p["value"], 9)), repr(p["cost_usd"]),
                         "" if p["cost_vs_top"] is None else repr(round(p["cost_vs_top"], 9)),
                         "1" if p["chosen"] else "0", p["policy"]))
    return buf.getvalue()


# -- the config snippet --------------------------------------------------------------------------
def _comment(value: Any) -> str:
    return inert(value).replace("\n", " ")


def snippet_yaml(data: dict[str, Any]) -> str:
    """The chosen policy as a `run:` section, with where it came from in comments."""
    ch, cv = data["chosen"], data["cross_validation"]["policies"]
    key = "success_rate" if data["objective"] == "success" else "quality"
    tuned, oracle = cv.get("tuned"), cv.get("oracle")
    lines = [
        f"# tier tune on {_comment(data['table']['source'])}: {data['tasks']} tasks, "
        + ", ".join(f"{_comment(t)}={_comment(mdl)}" for mdl, t in data["map"].items()),
        f"# the cheapest policy within {data['within']:g} of the best {data['objective']}: {_comment(ch['policy'])}",
    ]
    if tuned and oracle:
        lines.append(f"# cross-validated ({data['cross_validation']['folds']} folds, held-out tasks): "
                     f"{key} {tuned[key]:.4f} for ${tuned['cost_usd']:.4f}; oracle {oracle[key]:.4f} for ${oracle['cost_usd']:.4f}")
    if ch["caps"]:
        lines.append("# " + CAP_NOTE)
    if ch["start"]:
        col = data["table"].get("task_type_column") or "task_type"
        lines.append(f"# start keys are the table's {_comment(col)} values")
    run: dict[str, Any] = {"tiers": ch["order"]}
    if ch["caps"]:
        run["caps"] = dict(ch["caps"])
    if ch["start"]:
        run["start"] = dict(ch["start"])
    body = yaml.safe_dump({"run": run}, sort_keys=False, default_flow_style=False, allow_unicode=True)
    return "\n".join(lines) + "\n" + body


def write_snippet(path: Path, text_: str, force: bool) -> None:
    """Write atomically; an existing file is kept unless --force (it may be the user's config)."""
    path = path.expanduser()
    if path.exists() and not force:
        raise UsageError(f"--write {path}: the file exists", "choose another path, or add --force to replace it")
    if path.is_dir():
        raise InputError(f"--write {path} is a directory")
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent if str(path.parent) else ".", prefix=".tier-tune-")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text_)
        os.replace(tmp, path)
    except OSError as exc:
        raise InputError(f"cannot write {path}: {exc.strerror or exc}") from None


# -- terminal ------------------------------------------------------------------------------------
def _spread(points: list[dict[str, Any]], top: int) -> list[dict[str, Any]]:
    """At most `top` frontier rows, evenly spread, always with the cheapest, the chosen and the best."""
    if len(points) <= top:
        return points
    keep = {0, len(points) - 1, next(i for i, p in enumerate(points) if p["chosen"])}
    step = (len(points) - 1) / max(top - 1, 1)
    keep |= {round(i * step) for i in range(top)}
    return [points[i] for i in sorted(keep)][: top + 2]


def print_tune(data: dict[str, Any], top: int = 15, con=None) -> None:
    from rich.table import Table

    con = console(con)
    t = data["table"]
    key = "success_rate" if data["objective"] == "success" else "quality"
    con.print(f"Tune: {data['tasks']:,} task(s) of {text(t['source'])}; success = quality >= {data['success_threshold']:g}; "
              f"objective {data['objective']}; map " + ", ".join(f"{text(tier)}={text(m)}" for m, tier in data["map"].items()))
    s = data["search"]
    types = f"start tier per {text(t.get('task_type_column'))} ({len(s['task_types'])} types)" if s["task_types"] else "no task types"
    con.print(f"searched {s['settings']:,} (order, caps) settings x {types}; {len(s['orders'])} order(s); cap grid "
              + "; ".join(f"{text(k)}: " + ", ".join("none" if c is None else money(c) for c in v) for k, v in s["cap_grid"].items())
              + f"; {data['seconds']:.2f}s")
    front = Table(title=f"Pareto frontier ({s['frontier_points']} policies; * = chosen)", title_justify="left")
    for col in ("", data["objective"], "cost", "vs top", "policy"):
        front.add_column(col, justify="left" if col in ("", "policy") else "right", overflow="fold")
    for p in _spread(data["frontier"], top):
        front.add_row("*" if p["chosen"] else "", pct(p["value"]), money(p["cost_usd"]), pct(p["cost_vs_top"]), text(p["policy"]))
    con.print(front)
    ch = data["chosen"]
    con.print(f"chosen (cheapest within {data['within']:g} of the best): {text(ch['policy'])}")
    cv = data["cross_validation"]
    table = Table(title=f"Held-out figures ({cv['folds']}-fold cross-validation; each task scored once, by a policy "
                        "chosen without it) and in-sample", title_justify="left")
    for col in ("policy", "quality", "success", "cost", "vs top", "in-sample success", "in-sample cost"):
        table.add_column(col, justify="left" if col == "policy" else "right", overflow="fold",
                         min_width=12 if col == "policy" else None)
    for name, p in cv["policies"].items():
        ins = ch["in_sample"].get(name)
        table.add_row(text(name), f"{p['quality']:.4f}", pct(p["success_rate"]), money(p["cost_usd"]), pct(p["cost_vs_top"]),
                      pct(ins["success_rate"]) if ins else "-", money(ins["cost_usd"]) if ins else "-")
    con.print(table)
    chosen = {f["chosen"] for f in cv["per_fold"] if f["chosen"]}
    con.print(f"{len(chosen)} distinct polic{'y' if len(chosen) == 1 else 'ies'} chosen over the {cv['folds']} folds; "
              f"tuned is the chosen policy's {key} on held-out tasks")
    for note in data["notes"]:
        con.print(f"note: {text(note)}")
