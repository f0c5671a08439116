"""`tier serve`'s console: one line per request (or one JSON object per line with --json-log)."""

from __future__ import annotations

import datetime as dt
import json
import sys
import threading
from typing import Any, Callable, TextIO

from tiercli.fmt import inert, usd


def _tokens(n: int | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1_000_000:.1f}M" if n >= 1_000_000 else f"{n / 1000:.1f}k" if n >= 1000 else str(n)


def line(record: dict[str, Any]) -> str:
    """`12:03:04 claude-cli s:0d3e5f7a /v1/messages claude-opus-4-8 -> tier2 claude-sonnet-4-5 1.2k/34 $0.0041 ok 812 ms`"""
    when = dt.datetime.fromtimestamp(record["time"]).strftime("%H:%M:%S")
    session = (record.get("session") or "-")[:8]
    parts = [when, record.get("client") or "-", f"s:{session}", record.get("endpoint") or "-",
             record.get("requested_model") or "-"]
    if record.get("tier"):
        served = record.get("served_tier") or record["tier"]
        tier = record["tier"] if served == record["tier"] else f"{record['tier']}->{served}"
        parts += ["->", tier, str(record.get("model") or "-"),
                  f"{_tokens(record.get('input_tokens'))}/{_tokens(record.get('output_tokens'))}",
                  usd(record.get("cost_usd"))]
    parts.append(record.get("status") or "?")
    if record.get("http_status"):
        parts.append(str(record["http_status"]))
    if record.get("ms") is not None:
        parts.append(f"{record['ms']:.0f} ms")
    text = " ".join(str(p) for p in parts)
    if record.get("error") and record.get("status") != "ok":
        text += f"  ({str(record['error'])[:160]})"
    return inert(text)


def printer(json_log: bool, stream: TextIO | None = None) -> Callable[[dict[str, Any]], None]:
    out = stream or (sys.stdout if json_log else sys.stderr)
    lock = threading.Lock()

    def emit(record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False, default=str) if json_log else line(record)
        with lock:
            out.write(text + "\n")
            out.flush()
    return emit
