"""`tier replay` output: JSON shaping (dry_json, live_json) and Rich tables (outcome replay: see
tiercli.replay_outcomes.render).

JSON keys (all modes): mode, config, before, after (each with cost_usd and tiers), changed, notes.
- dry: selection, calls, skipped, comparable, decisions, tokens, changed_calls; before/after also have
  calls, priced_calls, unpriced {calls, models}, task_types, models. tiers/task_types/models map a
  name ("(none)" for a missing one) to {calls, share, cost_usd, unpriced}.
- live: estimate_usd, max_cost_usd, spent_usd, executed, failed, not_run, no_prompt, stopped, calls
  (every planned call, old and new side by side); changed = the calls whose tier or model changed.
Every string from the ledger or a table is printed as text (control characters replaced, markup
escaped), never interpreted.
"""

from __future__ import annotations

from typing import Any

from tiercli.fmt import inert, usd
from tiercli.replay import NONE_KEY, DryReplay, LiveItem, LivePlan, LiveResult, Side, bare_model

ANSWER_CHARS = 80


def _usd(value: float | None) -> float | None:
    return None if value is None else round(float(value), 9)


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _ordered(keys, tiers: list[str]) -> list[str]:
    known = [t for t in tiers if t in keys]
    rest = sorted(k for k in keys if k not in tiers and k != NONE_KEY)
    return known + rest + ([NONE_KEY] if NONE_KEY in keys else [])


def _table_json(table: dict, total: int, order: list[str]) -> dict[str, Any]:
    return {k: {"calls": table[k].calls, "share": (table[k].calls / total if total else 0.0),
                "cost_usd": _usd(table[k].cost_usd), "unpriced": table[k].unpriced} for k in order}


def side_json(side: Side, tiers: list[str]) -> dict[str, Any]:
    return {
        "cost_usd": _usd(side.cost_usd),
        "calls": side.calls,
        "priced_calls": side.calls - side.unpriced_calls,
        "unpriced": {"calls": side.unpriced_calls, "models": dict(sorted(side.unpriced_models.items()))},
        "tiers": _table_json(side.tiers, side.calls, _ordered(side.tiers, tiers)),
        "task_types": _table_json(side.task_types, side.calls, _ordered(side.task_types, [])),
        "models": _table_json(side.models, side.calls, sorted(side.models, key=lambda m: (-side.models[m].calls, m))),
    }


def _selection_json(sel) -> dict[str, Any]:
    out: dict[str, Any] = {"source": sel.source, "session": sel.session, "since": _iso(sel.since)}
    if sel.source == "ledger":
        out["ledger"] = sel.location
    else:
        out["paths"] = list(sel.paths)
        out["parse"] = sel.parse
    return out


def _call_json(c) -> dict[str, Any]:
    return {
        "id": c.id, "session": c.session, "ts": _iso(c.started_at), "kind": c.kind, "source": c.source,
        "task_type": c.task_type, "decided_by": c.how, "old_tier": c.old_tier, "new_tier": c.new_tier,
        "old_model": c.old_model, "new_model": c.new_model, "old_cost_usd": _usd(c.old_cost_usd),
        "new_cost_usd": _usd(c.new_cost_usd), "diff_usd": _usd(c.diff_usd),
        "input_tokens_before": c.input_before, "input_tokens_after": c.input_after, "output_tokens": c.output_tokens,
        "recounted": c.recounted, "task_id": c.task_id, "rule": c.rule, "penalty_usd": _usd(c.penalty_usd),
    }


def dry_json(r: DryReplay, tiers: list[str]) -> dict[str, Any]:
    saved = r.comparable_before_usd - r.comparable_after_usd
    return {
        "mode": "dry",
        "config": {"source": r.config_source, "hash": r.config_hash, "classifier": r.classifier},
        "selection": _selection_json(r.selection),
        "calls": r.before.calls,
        "skipped": dict(r.selection.skipped),
        "before": side_json(r.before, tiers),
        "after": side_json(r.after, tiers),
        "comparable": {
            "calls": r.comparable_calls,
            "before_usd": _usd(r.comparable_before_usd),
            "after_usd": _usd(r.comparable_after_usd),
            "saved_usd": _usd(saved),
            "saved_pct": (100 * saved / r.comparable_before_usd) if r.comparable_before_usd else None,
            "after_warm_usd": _usd(r.comparable_after_warm_usd),
            "saved_warm_usd": _usd(r.comparable_before_usd - r.comparable_after_warm_usd),
        },
        "cache": {"switch_penalty_usd": _usd(r.switch_penalty_usd), "penalty_calls": r.penalty_calls,
                  "reads_rewritten_tokens": r.penalty_tokens},
        "tasks": {"tasks": r.tasks, "decided": dict(sorted(r.task_decided.items())),
                  "calls_by_rule": dict(sorted(r.rules.items(), key=lambda kv: (-kv[1], kv[0])))},
        "top_tier": {"tier": r.top_tier, "share": r.top_tier_share},
        "decisions": {**r.decided, "distinct_prompts_classified": r.distinct_prompts_classified},
        "tokens": {"recounted_calls": r.recounted_calls, "not_recounted_calls": r.not_recounted_calls,
                   "old_repriced_calls": r.old_repriced_calls},
        "changed_calls": r.changed_calls,
        "renamed_calls": r.renamed_calls,
        "changed": [_call_json(c) for c in r.changed],
        "notes": list(r.notes),
        "seconds": round(r.seconds, 4),
    }


def _head(text: str | None, n: int = ANSWER_CHARS) -> str | None:
    if text is None:
        return None
    flat = " ".join(text.split())
    return flat[:n]


def _item_json(i: LiveItem) -> dict[str, Any]:
    c = i.call
    return {
        "id": c.id, "new_id": i.new_id, "session": c.session, "status": i.status, "error": i.error,
        "old_tier": c.old_tier, "new_tier": i.new_tier or c.new_tier, "old_model": c.old_model,
        "new_model": i.new_model or c.new_model, "old_cost_usd": _usd(c.old_cost_usd),
        "estimate_usd": _usd(i.estimate_usd), "new_cost_usd": _usd(i.new_cost_usd),
        "old_answer": _head(i.old_answer), "new_answer": _head(i.new_answer),
    }


def _live_side(items: list[LiveItem], new: bool, tiers: list[str]) -> dict[str, Any]:
    side = Side()
    for i in items:
        if new:
            side.add(i.new_tier, i.call.task_type, i.new_model, i.new_cost_usd)
        else:
            side.add(i.call.old_tier, i.call.task_type, i.call.old_model, i.call.old_cost_usd)
    return side_json(side, tiers)


def live_json(res: LiveResult, dry: DryReplay, tiers: list[str], max_cost: float | None) -> dict[str, Any]:
    plan = res.plan
    done = [i for i in plan.items if i.status == "ok"]
    changed = [i for i in plan.items
               if i.status == "ok" and (i.call.old_tier != i.new_tier or bare_model(i.call.old_model) != bare_model(i.new_model))]
    return {
        "mode": "live",
        "config": {"source": dry.config_source, "hash": dry.config_hash, "classifier": dry.classifier},
        "selection": _selection_json(dry.selection),
        "estimate_usd": _usd(plan.estimate_usd),
        "unpriced_estimates": plan.unpriced_estimates,
        "max_cost_usd": max_cost,
        "spent_usd": _usd(res.spent_usd),
        "executed": res.executed,
        "failed": res.failed,
        "not_run": sum(1 for i in plan.items if i.status == "not_run"),
        "no_prompt": plan.no_prompt,
        "stopped": res.stopped,
        "before": _live_side(done, False, tiers),
        "after": _live_side(done, True, tiers),
        "calls": [_item_json(i) for i in plan.items],
        "changed": [_item_json(i) for i in changed],
        "notes": list(dry.notes),
    }


def empty_json(mode: str, message: str, selection=None) -> dict[str, Any]:
    empty = {"cost_usd": 0.0, "calls": 0, "tiers": {}}
    out = {"mode": mode, "message": message, "calls": 0, "before": dict(empty), "after": dict(empty), "changed": []}
    if selection is not None:
        out["selection"] = _selection_json(selection)
        out["skipped"] = dict(selection.skipped)
    return out


# -- terminal ------------------------------------------------------------------------------------
def _text(value: Any) -> str:
    from rich.markup import escape

    if value is None:
        return NONE_KEY
    return escape(inert(value))


def money(value: float | None) -> str:
    return usd(value)


def _signed(value: float | None) -> str:
    if value is None:
        return "-"
    sign = "+" if value > 0 else ("-" if value < 0 else "")
    return sign + money(abs(value))


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def _console(console=None):
    if console is not None:
        return console
    from rich.console import Console

    return Console(highlight=False)


def _plain_table(title: str):
    """Report-style plain table: no box, numbers never cut (no_wrap), only names may fold."""
    from rich.table import Table

    return Table(title=title, title_justify="left", title_style="bold", box=None, header_style="bold",
                 pad_edge=False, padding=(0, 1, 0, 0), show_edge=False)


def _cols(table, names: list[str], left: set[str]) -> None:
    for name in names:
        if name in left:
            table.add_column(name, overflow="fold")
        else:
            table.add_column(name, justify="right", no_wrap=True)


def print_dry(data: dict[str, Any], console=None) -> None:
    con = _console(console)
    narrow = con.width < 80
    sel, before, after, comp = data["selection"], data["before"], data["after"], data["comparable"]
    where = sel.get("ledger") if sel["source"] == "ledger" else ", ".join(sel.get("paths") or [])
    scope = [f"session {sel['session']}" if sel.get("session") else None, f"since {sel['since']}" if sel.get("since") else None]
    scope_text = ", ".join(s for s in scope if s) or "all calls"
    cfg = data["config"]
    con.print(f"Dry replay of {data['calls']:,} call(s) from {_text(sel['source'])} ({_text(where)}; {_text(scope_text)}) "
              f"under {_text(cfg['source'])} {_text('[' + str(cfg['hash']) + ']')}. No model was called.")
    if data["skipped"]:
        con.print("not replayed: " + ", ".join(f"{n:,} {_text(k)}" for k, n in data["skipped"].items()) + " call(s)")
    tasks = data.get("tasks") or {}
    if tasks.get("tasks"):
        rules = ", ".join(f"{_text(k)} {n:,}" for k, n in tasks["calls_by_rule"].items())
        con.print(f"{tasks['tasks']:,} task(s) routed as units (every step on its task's tier); calls by rule: {rules}")
    totals = _plain_table("Cost")
    _cols(totals, ["", "calls", "cost", "unpriced"], {""})
    totals.add_row("before (as recorded)", f"{before['calls']:,}", money(before["cost_usd"]), f"{before['unpriced']['calls']:,}")
    totals.add_row("after, cache-aware", f"{after['calls']:,}", money(after["cost_usd"]), f"{after['unpriced']['calls']:,}")
    cache = data.get("cache") or {}
    if cache:
        totals.add_row("  of which cache rebuilds", f"{cache['penalty_calls']:,}", money(cache["switch_penalty_usd"]), "")
    saved = comp["saved_usd"]
    pct = f" ({comp['saved_pct']:.1f}%)" if comp["saved_pct"] is not None else ""
    totals.add_row("saved (priced both ways)", f"{comp['calls']:,}", (money(saved) if saved is not None else "-") + pct, "")
    if comp.get("saved_warm_usd") is not None:
        totals.add_row("saved if caches were warm", f"{comp['calls']:,}", money(comp["saved_warm_usd"]), "")
    con.print(totals)
    top = data.get("top_tier") or {}
    if top.get("tier") is not None and top.get("share") is not None:
        con.print(f"top tier {_text(top['tier'])}: {_pct(top['share'])} of calls after routing")
    names = list(dict.fromkeys([*after["tiers"], *before["tiers"]]))
    tiers = _plain_table("Tiers: calls before and after")
    _cols(tiers, ["tier", "before", "cost", "after", "cost"] if narrow else
          ["tier", "before", "share", "cost", "after", "share", "cost"], {"tier"})
    for t in names:
        b, a = before["tiers"].get(t), after["tiers"].get(t)
        cells = [f"{b['calls']:,}" if b else "0"] + ([] if narrow else [_pct(b["share"]) if b else "-"])
        cells += [money(b["cost_usd"]) if b else "-", f"{a['calls']:,}" if a else "0"]
        cells += ([] if narrow else [_pct(a["share"]) if a else "-"]) + [money(a["cost_usd"]) if a else "-"]
        tiers.add_row(_text(t), *cells)
    con.print(tiers)
    types = _plain_table("Task types")
    _cols(types, ["task type", "calls", "before", "after", "change"], {"task type"})
    for t in sorted(after["task_types"], key=lambda k: -after["task_types"][k]["calls"]):
        b, a = before["task_types"].get(t), after["task_types"][t]
        diff = a["cost_usd"] - b["cost_usd"] if b else None
        types.add_row(_text(t), f"{a['calls']:,}", money(b["cost_usd"]) if b else "-", money(a["cost_usd"]), _signed(diff))
    con.print(types)
    if data["changed"]:
        ch = _plain_table(f"Changed calls: {data['changed_calls']:,} (tier or priced model), top {len(data['changed'])} "
                          "by cost difference")
        if narrow:
            _cols(ch, ["call", "before", "after", "change"], {"call", "before", "after"})
        else:
            _cols(ch, ["call", "task type", "before", "after", "old $", "new $", "change"],
                  {"call", "task type", "before", "after"})
        for c in data["changed"]:
            if narrow:
                ch.add_row(_text(c["id"][:8]), _text(c["old_tier"]), _text(c["new_tier"]), _signed(c["diff_usd"]))
            else:
                ch.add_row(_text(c["id"][:8]), _text(c["task_type"]), f"{_text(c['old_tier'])} {_text(c['old_model'])}",
                           f"{_text(c['new_tier'])} {_text(c['new_model'])}", money(c["old_cost_usd"]),
                           money(c["new_cost_usd"]), _signed(c["diff_usd"]))
        con.print(ch)
    elif data["changed_calls"]:
        con.print(f"{data['changed_calls']:,} call(s) change tier or priced model (--top 0: none listed)")
    else:
        con.print("no call changes tier or priced model under this config")
    for note in data["notes"]:
        con.print(f"note: {_text(note)}")


def _flat(prefix: str, value: Any, out: list[tuple[str, str]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flat(f"{prefix}.{k}" if prefix else str(k), v, out)
    elif isinstance(value, list) and value and isinstance(value[0], dict):
        for i, item in enumerate(value):
            _flat(f"{prefix}.{item.get('id') or item.get('name') or i}", item, out)
    elif isinstance(value, list):
        out.append((prefix, ";".join(str(v) for v in value)))
    else:
        out.append((prefix, "" if value is None else str(value)))


def to_csv(data: dict[str, Any]) -> str:
    """Any replay JSON as one long CSV table `section,key,metric,value` (like `tier report --csv`)."""
    import csv
    import io

    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("section", "key", "metric", "value"))
    for section, value in data.items():
        pairs: list[tuple[str, str]] = []
        _flat("", value, pairs)
        for path, leaf in pairs:
            head, _, metric = path.rpartition(".")
            writer.writerow((section, head, metric, leaf))
    return buf.getvalue()


def print_live_plan(plan: LivePlan, max_cost: float | None, console=None) -> None:
    con = _console(console)
    extra = f", {plan.unpriced_estimates} unpriced" if plan.unpriced_estimates else ""
    cap = f"; --max-cost {money(max_cost)}" if max_cost is not None else ""
    con.print(f"Live replay: {len(plan.items):,} call(s) to re-execute, estimated {money(plan.estimate_usd)}{extra}{cap}"
              + (f"; {plan.no_prompt:,} call(s) without prompt text cannot be replayed" if plan.no_prompt else ""))


def print_live(data: dict[str, Any], console=None) -> None:
    """One block per call: id, tier and model before -> after, cost before -> after, then both answers."""
    con = _console(console)
    con.print("Old and new, side by side")
    for c in data["calls"]:
        if c["status"] == "ok":
            cost = f"{money(c['old_cost_usd'])} → {money(c['new_cost_usd'])}"
        else:
            cost = f"{money(c['old_cost_usd'])} → {_text(c['status'])} (est. {money(c['estimate_usd'])})"
        con.print(f"{_text(c['id'][:8])}  {_text(c['old_tier'])} {_text(c['old_model'])} → "
                  f"{_text(c['new_tier'])} {_text(c['new_model'])}  {cost}")
        con.print(f"  old: {_text(c['old_answer'] if c['old_answer'] is not None else '(not stored)')}")
        if c["status"] == "ok":
            con.print(f"  new: {_text(c['new_answer'] or '')}")
        elif c["error"]:
            con.print(f"  error: {_text(c['error'])}")
    before, after = data["before"], data["after"]
    con.print(f"executed {data['executed']:,}, failed {data['failed']:,}, not run {data['not_run']:,}: "
              f"before {money(before['cost_usd'])}, after {money(after['cost_usd'])} "
              f"(estimated {money(data['estimate_usd'])})")
    if data["stopped"]:
        con.print(f"stopped: {_text(data['stopped'])}")
    for note in data["notes"]:
        con.print(f"note: {_text(note)}")
