"""Rendering of individual calls (`tier log`) for the terminal and as JSON."""

from __future__ import annotations

import datetime as dt
import time
from typing import Any

LOG_JSON_KEYS = (
    "id", "ts", "session", "kind", "source", "task_type", "decision_source", "tier", "served_tier", "model",
    "status", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "cost_usd",
    "unpriced", "price_source", "latency_ms", "attempts", "error_class", "parent_id",
)


# Control characters (C0, DEL, C1) from the ledger are shown as \xNN, never sent to the terminal: a
# session name or a reason may hold an escape sequence (Rich's Text does not strip ESC).
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(32), *range(127, 160)]}
_CONTROL_KEEP_LAYOUT = {c: v for c, v in _CONTROL.items() if c not in (9, 10, 13)}


def inert(value: object, keep_layout: bool = False) -> str:
    """Control characters (C0, DEL, C1; U+009B is a CSI too) shown as \\xNN instead of reaching the
    terminal; `keep_layout` leaves tab, newline and carriage return alone (for answer text)."""
    return str(value).translate(_CONTROL_KEEP_LAYOUT if keep_layout else _CONTROL)


STALE_PENDING_S = 3600  # no call lasts an hour (guardrails.timeout_s caps it): its process died


def _status(row: dict[str, Any]) -> str:
    """A pending row older than any call can last is the mark a killed process leaves."""
    status = row.get("status") or ""
    if status == "pending" and row.get("started_at") and time.time() - row["started_at"] > STALE_PENDING_S:
        return "interrupted?"
    return status


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def log_row_json(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: row.get(k) for k in LOG_JSON_KEYS}
    out["ts"] = _iso(row.get("started_at"))
    out["model"] = row.get("served_model") or row.get("requested_model")
    out["unpriced"] = bool(row.get("unpriced"))
    return out


def _cost(row: dict[str, Any]) -> str:
    if row.get("kind") == "run":  # a `tier run` attempt: the sum of its calls (they have their own rows)
        import json

        try:
            cost = (json.loads(row.get("meta_json") or "{}").get("run") or {}).get("cost_usd")
        except (ValueError, AttributeError):
            cost = None
        return f"Σ${cost:.4f}" if isinstance(cost, (int, float)) else "-"
    if row.get("cost_usd") is None:
        return "unpriced" if row.get("unpriced") else "-"
    return f"${row['cost_usd']:.4f}"


def print_log(rows: list[dict[str, Any]], console=None) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    wide = console.width >= 120
    columns = [("id", "left"), ("time (UTC)", "left")]
    if wide:
        columns += [("session", "left"), ("kind", "left")]
    columns += [("task", "left"), ("tier", "left"), ("model", "left"), ("status", "left"), ("in", "right")]
    if wide:
        columns += [("cache r/w", "right")]
    columns += [("out", "right"), ("cost", "right")]
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1, 0, 0))
    for name, justify in columns:
        # in a narrow terminal only task and model give way; the figures keep their width
        cap = None if wide else {"task": 11, "model": 15}.get(name)
        table.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis", max_width=cap)
    styles = {"ok": "green", "error": "red", "interrupted": "yellow", "pending": "yellow", "refused": "red"}
    for r in rows:
        when = dt.datetime.fromtimestamp(r["started_at"], dt.timezone.utc).strftime("%m-%d %H:%M:%S" if wide else "%m-%d %H:%M")
        tier = r.get("tier") or "-"
        if r.get("served_tier") and r.get("served_tier") != r.get("tier"):
            tier = f"{tier}→{r['served_tier']}"
        model = (r.get("served_model") or r.get("requested_model") or "").removeprefix("anthropic/").removeprefix("openai/")
        cells = {
            "id": r["id"][:8], "time (UTC)": when, "session": r.get("session") or "", "kind": r.get("kind") or "",
            "task": r.get("task_type") or "", "tier": tier, "model": model, "status": _status(r),
            "in": f"{(r.get('input_tokens') or 0) + (r.get('cache_read_tokens') or 0) + (r.get('cache_write_tokens') or 0):,}",
            "cache r/w": f"{r.get('cache_read_tokens') or 0:,}/{r.get('cache_write_tokens') or 0:,}",
            "out": f"{r.get('output_tokens') or 0:,}", "cost": _cost(r),
        }
        # Text objects: data is never parsed as Rich markup
        texts = []
        for name, _ in columns:
            t = Text(inert(cells[name]))
            if name == "status":
                t.stylize(styles.get(r.get("status"), ""))
            texts.append(t)
        table.add_row(*texts)
    console.print(table)


def print_decision(decision, console=None) -> None:
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    conf = "-" if decision.confidence is None else f"{decision.confidence:.2f}"
    fields = [("task type", decision.task_type or "-"), ("label", decision.label or "-"),
              ("tier", decision.tier), ("model", decision.model), ("confidence", conf),
              ("classifier", decision.classifier or decision.source)]
    for name, value in fields:
        console.print(Text.assemble((f"{name:>11}  ", "bold"), inert(value)))
    if decision.reasons:
        console.print(Text("    reasons", style="bold"))
        for reason in decision.reasons:
            console.print(Text(f"      · {inert(reason)}"))
