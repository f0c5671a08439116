"""Drawing `tier report`'s views (report_views' dicts): usage per period or dimension, the session
table, the per-task view, the onboarding answer for an imported history, the empty-window hint,
and CSV for the views. Plain tables (no boxes); numbers are abbreviated (1.2M), never cut; every
string from the ledger goes through render.clean (control characters replaced, markup escaped)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from typing import Any

from rich.console import Console, Group
from rich.text import Text

from tiercli.render import _table, clean, num, pct, tokens, usd

_BY_TITLE = {"day": "day", "week": "week (Monday)", "month": "month", "project": "project", "model": "model",
             "task": "task type", "tier": "tier", "session": "session",
             "user": "user"}


def _when(ts: float | None, tz_name: str, form: str = "%Y-%m-%d %H:%M") -> str:
    if ts is None:
        return "-"
    from tiercli.report_views import local_zone

    tz = local_zone(tz_name)[0] if tz_name else dt.timezone.utc
    return dt.datetime.fromtimestamp(ts, tz).strftime(form)


def short_session(value: Any, width: int = 12) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def print_usage(data: dict[str, Any], console: Console | None = None) -> None:
    """Wide (120+): every bucket and the models; 80+: the token buckets; narrower: calls, tokens,
    cost. Columns are dropped, never numbers cut."""
    console = console or Console()
    by, width = data["by"], console.width
    wide, medium = width >= 120, width >= 80
    title = "Sessions" if data["view"] == "sessions" else f"Usage by {_BY_TITLE[by]}"
    if by in ("day", "week", "month", "session"):
        title += f" (times in {data['timezone']})"
    key_width = 36 if wide else 12 if by == "session" else 22 if medium else 14
    table = _table(console, title)
    table.add_column(_BY_TITLE[by], no_wrap=True, overflow="ellipsis", max_width=key_width)
    if by == "session" and wide:
        table.add_column("project", no_wrap=True, overflow="ellipsis", max_width=28)
    figures = ("calls", "input", "output", "cache w", "cache r", "total", "cost") if medium else ("calls", "tokens", "cost")
    for name in figures:
        table.add_column(name, justify="right", no_wrap=True)
    if by == "session":
        table.add_column("last call", no_wrap=True)
    if wide and by != "model":
        table.add_column("models", overflow="fold")
    for r in data["rows"]:
        key = r["key"]
        cells = [clean(short_session(key, key_width) if by == "session" else key)]
        if by == "session" and wide:
            cells.append(clean(r.get("project")))
        cost = usd(r["cost_usd"]) + ("*" if r["unpriced_calls"] else "")
        if medium:
            cells += [num(r["calls"]), tokens(r["input_tokens"]), tokens(r["output_tokens"]),
                      tokens(r["cache_write_tokens"]), tokens(r["cache_read_tokens"]), tokens(r["tokens"]), cost]
        else:
            cells += [num(r["calls"]), tokens(r["tokens"]), cost]
        if by == "session":
            cells.append(_when(r["last_call_at"], data["timezone"], "%Y-%m-%d %H:%M" if wide else "%m-%d %H:%M"))
        if wide and by != "model":
            cells.append(clean(", ".join(r["models"])))
        table.add_row(*cells)
    t = data["totals"]
    footer = Text(f"total: {num(t['calls'])} calls · {tokens(t['tokens'])} tokens · {usd(t['cost_usd'])}"
                  + (f" · {num(t['unpriced_calls'])} unpriced call(s) not in the cost (*)" if t["unpriced_calls"] else ""))
    console.print(Group(table, footer), highlight=False)


def print_tasks(data: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    if not data["tasks"]:
        console.print("no tasks in this window", markup=False, highlight=False)
        return
    head = Text(f"{num(data['tasks'])} tasks · {num(data['steps'])} steps · "
                f"{data['steps_per_task']:.1f} steps per task (median {data['median_steps']}, max {data['max_steps']}) · "
                f"{usd(data['cost_usd'])}, {usd(data['cost_per_task_usd'])} per task")
    note = Text(f"escalated {num(data['escalated_tasks'])} · overridden {num(data['overridden_tasks'])} task(s); "
                f"{num(data['with_task_id'])} recorded with a task id (a call without one is a task of its own)")
    table = _table(console, "Tasks by task type and tier")
    table.add_column("task type", no_wrap=True, overflow="ellipsis", max_width=22)
    table.add_column("tier", no_wrap=True, overflow="ellipsis", max_width=12)
    for name in ("tasks", "steps", "steps/task", "escal", "cost", "cost/task"):
        table.add_column(name, justify="right", no_wrap=True)
    for g in data["by_type_and_tier"]:
        table.add_row(clean(g["task_type"]), clean(g["tier"]), num(g["tasks"]), num(g["steps"]),
                      f"{g['steps_per_task']:.1f}", num(g["escalated_tasks"]), usd(g["cost_usd"]),
                      usd(g["cost_per_task_usd"]))
    console.print(Group(head, note, table), highlight=False)


def print_history(h: dict[str, Any], console: Console) -> None:
    """The onboarding answer: the imported history as run, then "with routing" (an estimate)."""
    run, routed = h["as_run"], h["with_routing"]
    parts: list[Any] = [Text.from_markup(
        f"[bold]Your history as it ran[/bold]  {num(h['calls'])} imported calls · {usd(run['cost_usd'])}"
        + (f" · {num(run['unpriced_calls'])} unpriced" if run["unpriced_calls"] else ""))]
    models = _table(console, "by model")
    models.add_column("model", no_wrap=True, overflow="ellipsis", max_width=30)
    models.add_column("calls", justify="right")
    models.add_column("cost", justify="right")
    for m in run["models"]:
        models.add_row(clean(m["model"]), num(m["calls"]), usd(m["cost_usd"]))
    parts.append(models)
    sessions = _table(console, f"by session (top {len(run['sessions'])} of {num(run['session_count'])}, latest first)")
    sessions.add_column("session", no_wrap=True)
    sessions.add_column("project", no_wrap=True, overflow="ellipsis", max_width=28 if console.width >= 100 else 16)
    sessions.add_column("calls", justify="right")
    sessions.add_column("cost", justify="right")
    for s in run["sessions"]:
        sessions.add_row(clean(short_session(s["session"])), clean(s["project"]), num(s["calls"]), usd(s["cost_usd"]))
    parts.append(sessions)
    types = _table(console, "by task type")
    types.add_column("task type", no_wrap=True)
    types.add_column("calls", justify="right")
    types.add_column("cost", justify="right")
    for t in run["task_types"]:
        types.add_row(clean(t["task_type"]), num(t["calls"]), usd(t["cost_usd"]))
    parts += [types, Text("task types: each task's instruction as the classifier reads it (one decision per "
                          "task, every step of it counted with it)")]
    tiers = " · ".join(f"{clean(t)} {num(n)}" for t, n in routed["tiers"].items())
    parts += [
        Text(""),
        Text.from_markup("[bold]With routing[/bold] (an estimate: the same calls replayed under the current "
                         "config, nothing called)"),
        Text(f"  config {routed['config']} ({routed['config_hash']})"),
        Text.from_markup(f"  tiers: {tiers}; top tier {clean(routed['top_tier'])} "
                         f"{pct(routed['top_tier_share'])} of calls"),
        Text(f"  on the {num(routed['comparable_calls'])} calls priced both ways ({num(routed['tasks'])} tasks, each "
             f"routed as a whole): as run {usd(routed['comparable_as_run_usd'])}, with routing "
             f"{usd(routed['comparable_with_routing_usd'])}"),
        Text(f"  of which cache rebuilds after a model switch: {usd(routed['switch_penalty_usd'])} on "
             f"{num(routed['switch_penalty_calls'])} calls (with every cache warm it would be "
             f"{usd(routed['comparable_with_routing_warm_usd'])})"),
    ]
    parts += [Text(f"  note: {n}") for n in routed["notes"]]
    console.print(Group(*parts), highlight=False)


def empty_window(data: dict[str, Any], label: str | None) -> str:
    """The one line an empty window prints: which window, and what to try."""
    w = data.get("window") or {}
    where = label or (f"since {w['since_iso']}" if w.get("since_iso") else "this window")
    if w.get("until_iso"):
        where += f" until {w['until_iso']}"
    if w.get("session"):
        where += f" in session {w['session']}"
    held = w.get("ledger_calls")
    if not held:
        return f"no calls yet in {where}: the ledger is empty (tier ask, tier serve or tier import add calls)"
    return f"no calls in {where}; the ledger holds {held:,} call(s): try --all (or a wider --since / --last)"


def view_to_csv(data: dict[str, Any]) -> str:
    """A view's rows as CSV: one header line, one line per row (lists joined with ';')."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    rows = data.get("rows") if "rows" in data else data.get("by_type_and_tier", [])
    if not rows:
        writer.writerow(["key"])
        return buf.getvalue()
    header = list(rows[0])
    writer.writerow(header)
    for r in rows:
        writer.writerow(["" if r[k] is None else ";".join(map(str, r[k])) if isinstance(r[k], list) else r[k]
                         for k in header])
    return buf.getvalue()
