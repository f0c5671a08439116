"""Rendering of individual calls (`tier log`) for the terminal and as JSON."""

from __future__ import annotations

import datetime as dt
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import JustifyMethod

LOG_JSON_KEYS = (
    "id", "ts", "session", "kind", "source", "task_type", "decision_source", "tier", "served_tier", "model",
    "status", "input_tokens", "cache_read_tokens", "cache_write_tokens", "output_tokens", "cost_usd",
    "unpriced", "price_source", "latency_ms", "attempts", "error_class", "parent_id",
)


# Control and bidi characters from the ledger are shown inert, never sent to the terminal: a session
# name or a reason may hold an escape sequence (Rich's Text does not strip ESC). One table: fmt.inert.
from tiercli.fmt import inert  # noqa: E402,F401 (re-exported)

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


def _tokens(value: int | None) -> str:
    """1234 -> 1.2k, 1234567 -> 1.2M: the log's columns keep their width for imported calls."""
    value = value or 0
    for unit, size in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return str(value)


def short_id(value: Any, width: int) -> str:
    text = "" if value is None else str(value)
    return text if len(text) <= width else text[: width - 1] + "…"


LOG_LEGEND = "in: uncached input · cache r/w: cache read/written · times UTC · `tier log show ID`"


def print_log(rows: list[dict[str, Any]], console=None) -> None:
    """The calls as a table that fits the terminal: ids cut to 8 characters, token counts
    abbreviated (1.2M), text columns (session, task, model) giving way first; figures are never cut."""
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    console = console or Console()
    wide = console.width >= 120
    columns: list[tuple[str, JustifyMethod]] = [("id", "left"), ("time", "left")]
    if wide:
        columns += [("session", "left"), ("kind", "left")]
    columns += [("task", "left"), ("tier", "left"), ("model", "left"), ("status", "left"), ("in", "right")]
    if wide:
        columns += [("cache r/w", "right")]
    columns += [("out", "right"), ("cost", "right")]
    texts = {"session", "kind", "task", "model"}
    caps = {"session": 10, "kind": 7, "task": 12, "model": 22} if wide else {"task": 11, "model": 15}
    table = Table(box=None, header_style="bold", pad_edge=False, padding=(0, 1, 0, 0))
    for name, justify in columns:
        # text columns give way (ellipsis) before any figure: figures are no_wrap and never shrink first
        table.add_column(name, justify=justify, no_wrap=name not in texts, overflow="ellipsis", max_width=caps.get(name))
    styles: dict[str | None, str] = {"ok": "green", "error": "red", "interrupted": "yellow", "pending": "yellow", "refused": "red"}
    for r in rows:
        when = dt.datetime.fromtimestamp(r["started_at"], dt.timezone.utc).strftime("%m-%d %H:%M")
        tier = r.get("tier") or "-"
        if r.get("served_tier") and r.get("served_tier") != r.get("tier"):
            tier = f"{tier}→{r['served_tier']}"
        model = (r.get("served_model") or r.get("requested_model") or "").removeprefix("anthropic/").removeprefix("openai/")
        cells = {
            "id": r["id"][:8], "time": when, "session": short_id(r.get("session") or "", caps.get("session", 10)),
            "kind": r.get("kind") or "", "task": r.get("task_type") or "", "tier": tier, "model": model,
            "status": _status(r), "in": _tokens(r.get("input_tokens")),
            "cache r/w": f"{_tokens(r.get('cache_read_tokens'))}/{_tokens(r.get('cache_write_tokens'))}",
            "out": _tokens(r.get("output_tokens")), "cost": _cost(r),
        }
        # Text objects: data is never parsed as Rich markup
        row = []
        for name, _ in columns:
            t = Text(inert(cells[name]))
            if name == "status":
                t.stylize(styles.get(r.get("status"), ""))
            row.append(t)
        table.add_row(*row)
    console.print(Text(LOG_LEGEND, style="dim"), highlight=False)
    console.print(table)


def _plain_money(value: float | None, unpriced: Any) -> str:
    if value is None:
        return "unpriced (no known price for the model)" if unpriced else "-"
    return f"${value:.6f}"


def call_json(call: dict[str, Any], feedback: list[dict[str, Any]]) -> dict[str, Any]:
    """`tier log show ID --json`: the whole row, its meta and attempts decoded, linked calls, feedback."""
    import json

    out = {k: v for k, v in call.items() if k not in ("meta_json", "attempts_json", "linked")}
    out["ts"] = _iso(call.get("started_at"))
    for key, field in (("meta", "meta_json"), ("attempts_detail", "attempts_json")):
        try:
            out[key] = json.loads(call[field]) if call.get(field) else None
        except ValueError:
            out[key] = call.get(field)
    out["linked"] = call.get("linked", [])
    out["feedback"] = feedback
    return out


def print_call(call: dict[str, Any], feedback: list[dict[str, Any]], console=None) -> None:
    """One call whole: decision and reasons, models, tokens per bucket, cost, attempts, prompt, answer."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console()
    data = call_json(call, feedback)
    meta = data.get("meta")
    if not isinstance(meta, dict):
        meta = {}

    def line(label: str, value: Any) -> None:
        console.print(Text.assemble((f"{label:>10}  ", "bold"), inert(value, keep_layout=True)), highlight=False)

    line("call", f"{call['id']}  ({call.get('kind')}, source {call.get('source')}, status {_status(call)})")
    ended = f" → {_iso(call['ended_at'])}" if call.get("ended_at") else ""
    latency = f" ({call['latency_ms']:.0f} ms)" if call.get("latency_ms") is not None else ""
    line("time", f"{_iso(call.get('started_at'))}{ended}{latency}")
    line("session", f"{call.get('session') or '-'}   task {call.get('task_id') or '-'}")
    decided = f" (routing chose {call['decided_tier']})" if call.get("decided_tier") and call.get("decided_tier") != call.get("tier") else ""
    conf = f", confidence {call['confidence']:.2f}" if call.get("confidence") is not None else ""
    line("decision", f"{call.get('tier') or '-'}{decided} · task type {call.get('task_type') or '-'} · label "
                     f"{call.get('label') or '-'} · {call.get('decision_source') or '-'} ({call.get('classifier') or '-'}{conf})")
    for reason in meta.get("reasons") or []:
        line("", f"· {reason}")
    served = f", served by {call['served_tier']}" if call.get("served_tier") and call.get("served_tier") != call.get("tier") else ""
    line("model", f"asked {call.get('requested_model') or '-'}, answered {call.get('served_model') or '-'}{served}")
    line("tokens", f"input {call.get('input_tokens') or 0:,} (uncached) · cache read {call.get('cache_read_tokens') or 0:,} · "
                   f"cache write {call.get('cache_write_tokens') or 0:,} (1h: {call.get('cache_write_1h_tokens') or 0:,}) · "
                   f"output {call.get('output_tokens') or 0:,}{' (estimated)' if call.get('output_estimated') else ''}")
    price = f" (prices: {call['price_source']})" if call.get("price_source") else ""
    line("cost", _plain_money(call.get("cost_usd"), call.get("unpriced")) + price)
    line("attempts", f"{call.get('attempts') or 1} (fallbacks {call.get('fallback_count') or 0})")
    for a in data.get("attempts_detail") or []:
        if isinstance(a, dict):
            line("", "· " + " ".join(str(a.get(k)) for k in ("group", "model", "error_class", "message") if a.get(k)))
    if call.get("check_passed") is not None:
        line("check", "passed" if call["check_passed"] else "failed")
    if call.get("error_class") or call.get("error_message"):
        line("error", f"{call.get('error_class') or ''}: {call.get('error_message') or ''}")
    extra = {k: v for k, v in meta.items() if k not in ("reasons", "request")}  # request: the prompt below
    if extra:
        import json

        line("meta", json.dumps(extra, ensure_ascii=False)[:2000])
    for linked in call.get("linked") or []:
        line("linked", f"{linked['id'][:8]} {linked.get('kind')} {linked.get('tier') or '-'} "
                       f"{linked.get('served_model') or '-'} {linked.get('status')} "
                       f"{_plain_money(linked.get('cost_usd'), linked.get('unpriced'))}")
    for f in feedback:
        line("feedback", f"{f['verdict']} at {_iso(f['created_at'])}" + (f": {f['note']}" if f.get("note") else ""))
    console.print(Text("prompt", style="bold"))
    console.print(Text(inert(call.get("prompt_text") or "(not stored)", keep_layout=True)), highlight=False)
    console.print(Text("answer", style="bold"))
    console.print(Text(inert(call.get("response_text") or "(not stored)", keep_layout=True)), highlight=False)


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
