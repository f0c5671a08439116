"""Drawing `tier report` (tiercli.report.build_report's dict) in the terminal, and as CSV.

Terminal: Rich tables with bars of block characters, laid out for 80 columns and wider; meaning
never rides on colour alone (NO_COLOR works), and every string that comes from the ledger or the
config (task types, tiers, models, sessions, error classes, config hashes) is cleaned of control
characters and escaped, so markup or escape sequences in data are printed, never interpreted.

CSV (`report_to_csv`): one long table with the header `section,key,metric,value`, one row per
figure, in the report's order:
  section  blocks of single figures, key empty: window, totals, targets, savings, caching (its
           scalars), quality (kinds, retry_window_s, total.*, regression_rule.*), unpriced (calls),
           errors (calls, by_status.*);
           lists, one key per JSON row: tiers, task_types, caching_models (caching.models),
           quality_tiers, quality_task_types, quality_configs, regressions (quality.*), days,
           models, unpriced_models (unpriced.models), error_classes (errors.classes);
           warnings: key = 1-based position, metric "message"
  key      the row's identity: tier, task type, model, day (YYYY-MM-DD), config hash,
           "status/error_class" for errors; "(none)" stands for a JSON null identity
  metric   the JSON field name; nested maps are dotted (tier_mix.tier1, by_kind.main.calls,
           by_status.error); lists are joined with ";" (top_tier_share_target, tiers_1_2)
  value    numbers as Python writes them (full precision), true/false, empty for null
Section, key and metric names are exactly the JSON's, so the two stay in step.
"""

from __future__ import annotations

import csv
import io
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from tiercli.fmt import inert, pct  # noqa: F401 (pct: re-exported for the render modules)
from tiercli.fmt import usd as fmt_usd

NONE_LABEL = "(none)"
BAR_FULL = "█"
BAR_PARTS = " ▏▎▍▌▋▊▉"
SPARK = "▁▂▃▄▅▆▇█"
MAX_DAY_ROWS = 31  # a longer span shows a sparkline of every day and a table of the last 14
TAIL_DAYS = 14


# -- small formatting helpers --------------------------------------------------------------------
def clean(value: Any) -> str:
    """Data -> safe markup text: control and bidi characters shown inert (fmt.inert), markup escaped.
    None -> '(none)'."""
    if value is None:
        return NONE_LABEL
    return escape(inert(value))


def _plain(value: Any) -> str:
    if value is None:
        return NONE_LABEL
    return inert(value)


def usd(value: float | None) -> str:
    return fmt_usd(value, unknown="n/a")


def num(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def tokens(value: int | None) -> str:
    if value is None:
        return "-"
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def bar(fraction: float | None, width: int) -> str:
    """A left-aligned bar of `width` cells for 0..1, in eighths of a cell."""
    if not fraction or fraction <= 0 or width <= 0:
        return ""
    eighths = round(min(fraction, 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    out = BAR_FULL * full + (BAR_PARTS[part] if part else "")
    return out or BAR_PARTS[1]


def sparkline(values: list[float]) -> str:
    top = max(values, default=0) or 0
    if top <= 0:
        return SPARK[0] * len(values)
    return "".join(SPARK[min(len(SPARK) - 1, int(v / top * (len(SPARK) - 1) + 0.5))] if v > 0 else " " for v in values)


def _table(console: Console, title: str | None) -> Table:
    return Table(title=title, title_justify="left", title_style="bold", box=None, header_style="bold",
                 pad_edge=False, padding=(0, 1, 0, 0), show_edge=False)


def _bar_width(console: Console) -> int:
    return 20 if console.width >= 120 else 10


def _name_width(console: Console) -> int:
    return 30 if console.width >= 120 else 16


# -- the terminal report -------------------------------------------------------------------------
def render_report(report: dict[str, Any], console: Console | None = None) -> None:
    """Print the report; an empty window prints the single line 'no calls yet in this window'."""
    console = console or Console()
    if not report.get("totals", {}).get("calls"):
        console.print("no calls yet in this window", markup=False, highlight=False)
        return
    parts = [
        _header, _warnings, _tiers, _task_types, _savings, _caching, _quality, _runs, _days, _models,
        _unpriced, _errors,
    ]
    if report.get("history"):  # an imported history: tier routed none of it (render_views.print_history)
        parts = [_header, _warnings, _caching, _days, _unpriced, _errors]
    for i, part in enumerate(parts):
        renderable = part(report, console)
        if renderable is None:
            continue
        if i:
            console.print()
        console.print(renderable, highlight=False)


def _runs(report: dict[str, Any], console: Console):
    """`tier run`: tasks, resolved rate and cost per task, by the tier each task started on."""
    runs = report.get("runs")
    if not runs:
        return None
    t = runs["tasks"]
    table = Table(title=f"tier run: {t['tasks']} task(s), {pct(t['resolved_rate'])} resolved, "
                        f"{usd(t['cost_per_task_usd'])} per task"
                        + (f", {t['unknown_cost']} of unknown cost" if t["unknown_cost"] else "")
                        + (f", {runs['interrupted_tasks']} interrupted" if runs["interrupted_tasks"] else ""),
                  title_justify="left", box=None, pad_edge=False)
    for column in ("started on", "tasks", "resolved", "cost per task", "cost per resolved"):
        table.add_column(column, justify="left" if column == "started on" else "right", no_wrap=True)
    for tier, g in runs["by_start_tier"].items():
        table.add_row(clean(tier), num(g["tasks"]), pct(g["resolved_rate"]), usd(g["cost_per_task_usd"]),
                      usd(g["cost_per_resolved_usd"]))
    return table


def _header(report: dict[str, Any], console: Console):
    w, t = report["window"], report["totals"]
    frm = w.get("since_iso") or "the first call"
    to = w.get("until_iso") or "now"
    scope = f"[bold]tier report[/bold]  {clean(frm)} → {clean(to)}"
    if w.get("session"):
        scope += f"  session {clean(w['session'])}"
    lines = [
        Text.from_markup(scope),
        Text(f"{num(t['calls'])} calls · {usd(t['cost_usd'])} · {tokens(t['tokens'])} tokens"),
        Text(f"tokens: {tokens(t['input_tokens'])} in · {tokens(t['cache_read_tokens'])} cache read · "
             f"{tokens(t['cache_write_tokens'])} cache write · {tokens(t['output_tokens'])} out"),
    ]
    status = f"errors {num(t['errors'])} · interrupted {num(t['interrupted'])} · unpriced {num(t['unpriced'])}"
    if t.get("pending"):
        status += f" · pending {num(t['pending'])}"
    lines.append(Text(status))
    first, last = w.get("first_call_iso"), w.get("last_call_iso")
    if first and last:
        lines.append(Text(f"calls from {_plain(first)} to {_plain(last)}"))
    return Group(*lines)


def _warnings(report: dict[str, Any], console: Console):
    warnings = report.get("warnings") or []
    if not warnings:
        return None
    return Group(*(Text.from_markup(f"[bold yellow]warning:[/bold yellow] {clean(msg)}") for msg in warnings))


def _tiers(report: dict[str, Any], console: Console):
    bw, wide = _bar_width(console), console.width >= 120
    table = _table(console, "1. Tier distribution")
    table.add_column("tier", no_wrap=True, overflow="ellipsis", max_width=_name_width(console))
    table.add_column("calls", justify="right")
    table.add_column("share", justify="right")
    table.add_column("", no_wrap=True, min_width=bw)
    table.add_column("routed", justify="right")
    if wide:
        table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("cost %", justify="right")
    for row in report["tiers"]:
        cells = [clean(row["tier"]), num(row["calls"]), pct(row["share_calls"]), bar(row["share_calls"], bw),
                 pct(row["share_routed"])]
        if wide:
            cells.append(tokens(row["tokens"]))
        cells += [usd(row["cost_usd"]), pct(row["share_cost"])]
        table.add_row(*cells)
    tg = report["targets"]
    lower = "+".join(clean(t) for t in tg["tiers_1_2"]) or "lower tiers"
    lo, hi = tg["top_tier_share_target"]
    top_share = tg["top_tier_share"]
    flag = ""
    enough = tg["routed_calls"] >= tg.get("top_tier_warning_min_calls", 0)
    if top_share is not None and top_share > tg["top_tier_warning_above"]:
        flag = (" [bold yellow]! above " + pct(tg["top_tier_warning_above"], 0) + "[/bold yellow]" if enough
                else f" (too few routed calls to judge: under {num(tg['top_tier_warning_min_calls'])})")
    note = Text.from_markup(
        f"of {num(tg['routed_calls'])} routed calls: {lower} {pct(tg['tiers_1_2_share'])} "
        f"(target ≈{pct(tg['tiers_1_2_share_target'], 0)})\n"
        f"{' ' * len('of ' + num(tg['routed_calls']) + ' routed calls: ')}{clean(tg['top_tier'])} {pct(top_share)} "
        f"(target {pct(lo, 0)}-{pct(hi, 0)}){flag}"
    )
    lines: list[RenderableType] = [table, note]
    if tg.get("override_calls"):
        lines.append(Text(f"overrides (a tier forced by the user) are apart: {num(tg['override_calls'])} call(s), "
                          "not in the routed shares"))
    return Group(*lines)


def _tier_mix(mix: dict[str, int], calls: int) -> str:
    parts = []
    for tier, n in mix.items():
        parts.append(f"{_plain(tier)} {n / calls:.0%}" if calls else f"{_plain(tier)} {n}")
    return escape(", ".join(parts))


def _mix_columns(report: dict[str, Any]) -> list[str]:
    """Tier-mix keys in tier order (as the JSON writes them: null is '(none)')."""
    seen: list[str] = []
    for row in report["tiers"]:
        key = NONE_LABEL if row["tier"] is None else row["tier"]
        if any(key in r["tier_mix"] for r in report["task_types"]):
            seen.append(key)
    return seen


def _task_types(report: dict[str, Any], console: Console):
    bw, wide = _bar_width(console), console.width >= 120
    table = _table(console, "2. Cost per task type")
    table.add_column("task type", no_wrap=True, overflow="ellipsis", max_width=_name_width(console))
    table.add_column("calls", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("mean", justify="right")
    table.add_column("share", justify="right")
    table.add_column("", no_wrap=True, min_width=bw)
    mix_keys = _mix_columns(report)
    if wide:
        table.add_column("tier mix", overflow="fold")
    else:
        table.add_column("mix %", no_wrap=True, justify="right")
    for row in report["task_types"]:
        if wide:
            mix = _tier_mix(row["tier_mix"], row["calls"])
        else:
            calls = row["calls"] or 1
            mix = "/".join(f"{row['tier_mix'].get(k, 0) / calls * 100:.0f}" for k in mix_keys)
        table.add_row(clean(row["task_type"]), num(row["calls"]), usd(row["cost_usd"]), usd(row["mean_cost_usd"]),
                      pct(row["share_cost"]), bar(row["share_cost"], bw), mix)
    if wide:
        return table
    return Group(table, Text(f"mix %: calls per tier, {'/'.join(_plain(k) for k in mix_keys)}"))


def _savings(report: dict[str, Any], console: Console):
    s = report["savings"]
    lines = [Text.from_markup("[bold]3. Savings[/bold] against sending every call tier routed to the top tier")]
    if s.get("imported_calls"):
        lines.append(Text(f"  left out: {num(s['imported_calls'])} imported calls ({usd(s['imported_usd'])}): "
                          "tier did not route them, so nothing was saved on them"))
        if not s.get("priced_calls"):
            return Group(*lines)
    lines.append(Text(f"  actual cost          {usd(s['actual_usd'])}"))
    if s["top_tier_usd"] is None:
        lines.append(Text(f"  on {_plain(s['top_tier'])} ({_plain(s['top_tier_model'])}): n/a, the model has no known price"))
    else:
        lines.append(Text(f"  all on {_plain(s['top_tier'])}".ljust(23) + f"{usd(s['top_tier_usd'])}  ({_plain(s['top_tier_model'])})"))
        lines.append(Text(f"  saved                {usd(s['saved_usd'])}  ({pct(None if s['saved_pct'] is None else s['saved_pct'] / 100)})"))
    lines.append(Text(f"  included: classifier {usd(s['classifier_usd'])}, compaction {usd(s['compaction_usd'])}"))
    comp = s.get("compaction") or {}
    if comp.get("calls"):
        lines.append(Text(f"  compaction: {num(comp['calls'])} summaries removed {tokens(comp['tokens_removed'])} tokens "
                          f"of history, saving {usd(comp['saved_usd'])} net of their cost (at least)"))
    if s["calls_without_cost"]:
        lines.append(Text(f"  left out: {num(s['calls_without_cost'])} calls without a cost (unpriced or unfinished)"))
    return Group(*lines)


def _caching(report: dict[str, Any], console: Console):
    c = report["caching"]
    head = Group(
        Text.from_markup(
            f"[bold]4. Prompt caching[/bold]  read {tokens(c['cache_read_tokens'])} tokens "
            f"({pct(c['read_share'])} of input), written {tokens(c['cache_write_tokens'])}"
        ),
        Text(f"  saved {usd(c['saved_usd'])}: reads {usd(c['read_saved_usd'])} cheaper, "
             f"write premium {usd(c['write_premium_usd'])}"),
        *([Text(f"  cache kept warm: {num(c['sticky_calls'])} gateway calls stayed on their session's tier, "
                f"reading {tokens(c['sticky_cache_read_tokens'])} cached tokens")] if c.get("sticky_calls") else []),
    )
    if not c["models"]:
        return head
    table = _table(console, None)
    table.add_column("model", no_wrap=True, overflow="ellipsis", max_width=_name_width(console) + 6)
    table.add_column("read", justify="right")
    table.add_column("written", justify="right")
    table.add_column("read %", justify="right")
    table.add_column("saved", justify="right")
    for m in c["models"]:
        table.add_row(clean(m["model"]), tokens(m["cache_read_tokens"]), tokens(m["cache_write_tokens"]),
                      pct(m["read_share"]),
                      usd(m["saved_usd"]) if m["priced"] else ("unpriced" if m["model"] is not None else "n/a"))
    return Group(head, table)


def _quality_table(console: Console, title: str, key: str, rows: list[dict[str, Any]]) -> Table:
    wide = console.width >= 120
    table = _table(console, title)
    table.add_column(key.replace("_", " "), no_wrap=True, overflow="ellipsis", max_width=_name_width(console))
    table.add_column("calls", justify="right")
    table.add_column("overr" if not wide else "overrides", justify="right")
    table.add_column("retry" if not wide else "retries", justify="right")
    table.add_column("escal" if not wide else "escalations", justify="right")
    table.add_column("bad", justify="right")
    table.add_column("good", justify="right")
    table.add_column("rate", justify="right")
    for r in rows:
        table.add_row(clean(r[key]), num(r["calls"]), num(r["overrides"]), num(r["retries"]), num(r["escalations"]),
                      num(r["feedback_bad"]), num(r["feedback_good"]), pct(r["rate"]))
    return table


def _quality(report: dict[str, Any], console: Console):
    q = report["quality"]
    total = q["total"]
    head = Group(
        Text.from_markup(f"[bold]5. Quality[/bold]  regression rate {pct(total['rate'])} of {num(total['calls'])} calls"),
        Text(f"  rate = (overrides + retries within {q['retry_window_s']:g}s + escalations + bad feedback) / calls"),
    )
    parts: list[Any] = [head]
    if q["tiers"]:
        parts.append(_quality_table(console, "by routed tier", "tier", q["tiers"]))
    if q["task_types"]:
        parts.append(_quality_table(console, "by task type", "task_type", q["task_types"]))
    if q["regressions"]:
        for r in q["regressions"]:
            parts.append(Text.from_markup(
                f"[bold yellow]regression:[/bold yellow] {clean(r['task_type'])} {pct(r['previous_rate'])} → "
                f"{pct(r['newest_rate'])} after config {clean(r['newest_config'])} "
                f"({num(r['previous_calls'])} → {num(r['newest_calls'])} calls)"
            ))
    elif len(q["configs"]) >= 2:
        parts.append(Text(f"no task type got worse after the last config change ({q['regression_rule']['min_calls']}+ calls each)"))
    return Group(*parts)


def _days(report: dict[str, Any], console: Console):
    days = report["days"]
    if not days:
        return None
    bw = _bar_width(console) + (10 if console.width >= 120 else 4)
    top = max((d["cost_usd"] or 0.0) for d in days) or 0.0
    top_calls = max(d["calls"] for d in days) or 1
    parts: list[Any] = []
    shown = days
    title = "6. By day (UTC)"
    if len(days) > MAX_DAY_ROWS:
        width = max(10, console.width - 2)
        values = [d["cost_usd"] or 0.0 for d in days] if top else [float(d["calls"]) for d in days]
        per_mark = -(-len(values) // width)  # one line: a mark per day, or per N days on a long span
        values = [sum(values[i:i + per_mark]) for i in range(0, len(values), per_mark)]
        unit = "day" if per_mark == 1 else f"{per_mark} days"
        parts.append(Text.from_markup(f"[bold]{title}[/bold]  {days[0]['day']} → {days[-1]['day']}, "
                                      f"{'cost' if top else 'calls'} per {unit}:"))
        parts.append(Text("  " + sparkline(values)))
        shown = days[-TAIL_DAYS:]
        title = f"last {TAIL_DAYS} days"
    table = _table(console, title)
    table.add_column("day", no_wrap=True)
    table.add_column("calls", justify="right")
    table.add_column("cost", justify="right")
    table.add_column("", no_wrap=True, min_width=bw)
    for d in shown:
        frac = (d["cost_usd"] or 0.0) / top if top else d["calls"] / top_calls
        table.add_row(d["day"], num(d["calls"]), usd(d["cost_usd"]), bar(frac, bw))
    parts.append(table)
    return Group(*parts)


def _models(report: dict[str, Any], console: Console):
    bw, wide = _bar_width(console), console.width >= 120
    table = _table(console, "By model")
    table.add_column("model", no_wrap=True, overflow="ellipsis", max_width=_name_width(console) + 6)
    table.add_column("calls", justify="right")
    table.add_column("tokens", justify="right")
    table.add_column("cost", justify="right")
    if wide:
        table.add_column("share", justify="right")
        table.add_column("", no_wrap=True, min_width=bw)
    table.add_column("unpriced", justify="right")
    for m in report["models"]:
        if m["priced"] or m["cost_usd"]:
            cost = usd(m["cost_usd"])
        else:
            cost = "unpriced" if m["model"] is not None else "-"
        cells = [clean(m["model"]), num(m["calls"]), tokens(m["tokens"]), cost]
        if wide:
            cells += [pct(m["share_cost"]), bar(m["share_cost"], bw)]
        cells.append(num(m["unpriced_calls"]) if m["unpriced_calls"] else "")
        table.add_row(*cells)
    return table


def _unpriced(report: dict[str, Any], console: Console):
    u = report["unpriced"]
    if not u["calls"]:
        return None
    names = ", ".join(f"{clean(m['model'])} ({num(m['calls'])})" for m in u["models"])
    return Text.from_markup(f"[bold]Unpriced calls[/bold] {num(u['calls'])}, not in any dollar figure: {names}")


def _errors(report: dict[str, Any], console: Console):
    e = report["errors"]
    if not e["calls"]:
        return None
    table = _table(console, f"Errors and unfinished calls ({num(e['calls'])})")
    table.add_column("status", no_wrap=True)
    table.add_column("error class", no_wrap=True, overflow="ellipsis", max_width=_name_width(console) + 14)
    table.add_column("calls", justify="right")
    for row in e["classes"]:
        table.add_row(clean(row["status"]), clean(row["error_class"]) if row["error_class"] else "-", num(row["calls"]))
    return table


# -- CSV -----------------------------------------------------------------------------------------
CSV_HEADER = ("section", "key", "metric", "value")
_SCALAR_SECTIONS = ("window", "totals", "targets", "savings", "caching")
# (CSV section, path in the report, the field naming each row)
_LIST_SECTIONS = (
    ("tiers", ("tiers",), "tier"),
    ("task_types", ("task_types",), "task_type"),
    ("caching_models", ("caching", "models"), "model"),
    ("quality_tiers", ("quality", "tiers"), "tier"),
    ("quality_task_types", ("quality", "task_types"), "task_type"),
    ("quality_configs", ("quality", "configs"), "config_hash"),
    ("regressions", ("quality", "regressions"), "task_type"),
    ("days", ("days",), "day"),
    ("models", ("models",), "model"),
    ("unpriced_models", ("unpriced", "models"), "model"),
    ("error_classes", ("errors", "classes"), None),
)


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return ";".join(_csv_value(v) for v in value)
    return str(value)


def _flatten(prefix: str, value: Any, out: list[tuple[str, Any]]) -> None:
    if isinstance(value, dict):
        for k, v in value.items():
            _flatten(f"{prefix}.{k}" if prefix else str(k), v, out)
    else:
        out.append((prefix, value))


def report_to_csv(report: dict[str, Any]) -> str:
    """The whole report as CSV rows `section,key,metric,value` (see the module docstring)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_HEADER)

    def emit(section: str, key: str, data: dict[str, Any], skip: tuple[str, ...] = ()) -> None:
        flat: list[tuple[str, Any]] = []
        for k, v in data.items():
            if k in skip:
                continue
            _flatten(k, v, flat)
        for metric, value in flat:
            writer.writerow((section, key, metric, _csv_value(value)))

    for section in _SCALAR_SECTIONS:
        block = report.get(section) or {}
        skip = ("models", "unpriced_models") if section == "caching" else ()
        emit(section, "", block, skip)
        if section == "caching":
            writer.writerow(("caching", "", "unpriced_models", _csv_value(block.get("unpriced_models") or [])))
    quality = report.get("quality") or {}
    emit("quality", "", {k: v for k, v in quality.items() if k in ("kinds", "retry_window_s", "total", "regression_rule")})
    unpriced = report.get("unpriced") or {}
    writer.writerow(("unpriced", "", "calls", _csv_value(unpriced.get("calls", 0))))
    errors = report.get("errors") or {}
    emit("errors", "", {k: v for k, v in errors.items() if k != "classes"})
    for section, path, key_field in _LIST_SECTIONS:
        rows: Any = report
        for p in path:
            rows = (rows or {}).get(p) if isinstance(rows, dict) else None
        for row in rows or []:
            if key_field is None:
                key = f"{row.get('status')}/{row.get('error_class') if row.get('error_class') is not None else NONE_LABEL}"
                emit(section, key, row, skip=("status", "error_class"))
            else:
                ident = row.get(key_field)
                emit(section, NONE_LABEL if ident is None else str(ident), row, skip=(key_field,))
    for i, message in enumerate(report.get("warnings") or [], start=1):
        writer.writerow(("warnings", str(i), "message", message))
    return buf.getvalue()
