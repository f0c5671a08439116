"""`tier import codex`: OpenAI Codex CLI rollout files -> ledger rows, with agent tasks.

Where: `$CODEX_HOME/sessions/**/rollout-*.jsonl` (default `~/.codex/sessions`). Each line is
`{"timestamp", "type", "payload"}` with type session_meta (first line: id, cwd, cli_version),
turn_context (the model in use from then on), response_item (messages, function calls and their
outputs), event_msg (user_message: the user's words; token_count: usage) and compacted.

Counting rules (shared/reference/agent-logs.md): an `event_msg` of type token_count carries
`info.total_token_usage` (the session's running total) and `info.last_token_usage` (the call just
made). Codex writes the same total more than once, and a forked or resumed session's file replays
its parent's lines: a call is counted only when the running total CHANGES within a file, and each
(timestamp, running total) once across files. Its tokens are last_token_usage (or, without it, the
increase of the running total). OpenAI's input_tokens INCLUDES cached_input_tokens: the uncached
bucket is input - cached; output_tokens already includes reasoning tokens; Codex reports no cache
writes. `info: null` lines are rate-limit heartbeats, not calls.

Tasks: each `user_message` event is a human turn for tiercli.agent.TranscriptTasks (the response_item
copy of it also holds environment context, so it is not used); a call belongs to the latest turn.
Malformed lines (not JSON, too deep, a count that is not an int in [0, 2**53)) are counted and skipped.
"""

from __future__ import annotations

import hashlib
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Optional

import msgspec

from tiercli import agent
from tiercli.importers.common import (
    PROMPT_TEXT_MAX,
    REQUEST_META_MAX,
    ImportResult,
    ParseStats,
    Progress,
    count,
    find_files,
    label_tasks,
    not_a_log,
    write_rows,
)
from tiercli.pricing import PriceBook, UnitPrice, Usage

if TYPE_CHECKING:
    from tiercli.ledger.db import Ledger

SOURCE = "codex"
_ID_PREFIX = "cx-"


class _Payload(msgspec.Struct):
    type: Any = None
    id: Any = None
    session_id: Any = None
    cwd: Any = None
    cli_version: Any = None
    model: Any = None
    message: Any = None
    name: Any = None
    info: Any = None


class _Line(msgspec.Struct):
    timestamp: Any = None
    type: Any = None
    payload: Optional[_Payload] = None


_DECODER = msgspec.json.Decoder(_Line)
_encode = msgspec.json.Encoder().encode


def default_codex_dirs() -> list[Path]:
    """`$CODEX_HOME/sessions` if CODEX_HOME is set, else `~/.codex/sessions`, when it exists."""
    home = os.environ.get("CODEX_HOME")
    root = (Path(home).expanduser() if home else Path.home() / ".codex") / "sessions"
    return [root] if root.is_dir() else []


def _find(paths):
    return find_files(paths, default_codex_dirs, lambda n: n.startswith("rollout-") and n.endswith(".jsonl"),
                      "Codex rollout files (~/.codex/sessions/**/rollout-*.jsonl)")


def _epoch(value: Any) -> float:
    if not isinstance(value, str):
        raise ValueError("timestamp")
    dt = datetime.fromisoformat(value)
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


_FIELDS = ("input_tokens", "cached_input_tokens", "output_tokens", "reasoning_output_tokens", "total_tokens")


def _usage(raw: Any) -> tuple[int, ...] | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise ValueError("usage")
    return tuple(count(raw.get(k), k) for k in _FIELDS)


class _Parser:
    def __init__(self) -> None:
        self.stats = ParseStats()
        self.rows: list[dict[str, Any]] = []
        self.seen: set[str] = set()
        self.instructions: dict[str, str | None] = {}

    def read_file(self, path: Path, prices: PriceBook, unit: dict, explicit: bool) -> None:
        from tiercli.errors import InputError

        try:
            with path.open("rb") as fh:
                self._read(fh, path, prices, unit, explicit)
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None

    def _read(self, fh, path: Path, prices: PriceBook, unit: dict, explicit: bool) -> None:
        """One rollout, line by line (memory grows with calls, not file size)."""
        stats = self.stats
        session = path.stem
        cwd = version = model = None
        tracker = agent.TranscriptTasks(session)
        turn: agent.TaskRef | None = None
        turn_no = 0
        first_call_of_turn = True
        last_total: tuple[int, ...] | None = None
        tools: list[str] = []
        good = 0
        for raw in fh:
            stats.bytes += len(raw)
            if not raw or raw.isspace():
                continue
            stats.lines += 1
            try:
                line = _DECODER.decode(raw)
                kind, p = line.type, line.payload
                if not isinstance(kind, str):
                    raise ValueError("type")
                good += 1
                if p is None:
                    continue
                if kind == "session_meta":
                    sid = p.id if isinstance(p.id, str) else p.session_id
                    if isinstance(sid, str) and sid:
                        session = sid
                        tracker = agent.TranscriptTasks(session)
                    cwd = p.cwd if isinstance(p.cwd, str) else cwd
                    version = p.cli_version if isinstance(p.cli_version, str) else version
                elif kind == "turn_context":
                    if isinstance(p.model, str) and p.model:
                        model = p.model
                elif kind == "response_item":
                    if p.type in ("function_call", "custom_tool_call", "local_shell_call") and isinstance(p.name, str):
                        tools.append(p.name)
                elif kind == "event_msg" and p.type == "user_message" and isinstance(p.message, str):
                    turn_no += 1
                    ref = tracker.turn(f"{session}:{line.timestamp}:{turn_no}", p.message)
                    if ref is not None:
                        turn, first_call_of_turn = ref, True
                elif kind == "event_msg" and p.type == "token_count":
                    info = p.info
                    if info is None:
                        continue  # a rate-limit heartbeat
                    if not isinstance(info, dict):
                        raise ValueError("info")
                    total = _usage(info.get("total_token_usage"))
                    last = _usage(info.get("last_token_usage"))
                    if total is None or total == last_total:
                        stats.duplicates += total is not None
                        tools = []
                        continue
                    ts = _epoch(line.timestamp)
                    if last is None or not any(last):
                        base = last_total if last_total is not None and all(
                            a <= b for a, b in zip(last_total, total)) else (0,) * len(total)
                        last = tuple(b - a for a, b in zip(base, total))
                    last_total = total
                    key = f"codex:{line.timestamp}:{_encode(total).decode()}"
                    if key in self.seen:  # a forked session replaying its parent's turns
                        stats.duplicates += 1
                        tools = []
                        continue
                    self.seen.add(key)
                    rule = None
                    if turn is not None:
                        rule = turn.rule if first_call_of_turn else agent.TOOL_STEP
                        first_call_of_turn = False
                    self._row(key, session, ts, model, last, turn, rule, tools, cwd, version, path.name, prices, unit)
                    tools = []
            except (msgspec.MsgspecError, RecursionError, ValueError, TypeError):
                stats.malformed += 1
        if explicit and good == 0 and stats.lines:
            raise not_a_log(path, "Codex rollout file")
        stats.files += 1
        for tid, ref in tracker.tasks.items():
            self.instructions[tid] = ref.instruction

    def _row(self, key, session, ts, model, last, turn, rule, tools, cwd, version, file, prices, unit) -> None:
        inp, cached, out, _reasoning, _total = last
        cached = min(cached, inp)
        uncached = inp - cached
        model = model or "unknown"
        if model not in unit:
            unit[model] = prices.lookup(model)
        price: UnitPrice | None = unit[model]
        cost = float(price.cost(Usage(uncached, cached, 0, out, 0))) if price is not None else None
        instruction = turn.instruction if turn is not None else None
        meta = {"tools": tools, "request": turn.anchor_text[:REQUEST_META_MAX] if turn else None, "file": file,
                "task_rule": rule, "cwd": cwd, "version": version, "reasoning_tokens": _reasoning}
        self.rows.append({
            "id": _ID_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()[:24], "external_id": key,
            "source": SOURCE, "kind": "import", "session": session, "started_at": ts, "ended_at": ts,
            "task_id": turn.task_id if turn else None, "task_type": None, "label": None, "confidence": None,
            "classifier": None, "decision_source": "import", "tier": None, "requested_model": model,
            "served_model": model, "input_tokens": uncached, "cache_read_tokens": cached, "cache_write_tokens": 0,
            "cache_write_1h_tokens": 0, "output_tokens": out, "output_estimated": False, "cost_usd": cost,
            "price_source": price.source if price is not None else None, "unpriced": price is None, "status": "ok",
            "prompt_hash": hashlib.sha256(instruction.encode("utf-8")).hexdigest()[:16] if instruction else None,
            "prompt_text": instruction[:PROMPT_TEXT_MAX] if instruction else None, "response_text": None,
            "meta_json": _encode(meta).decode("utf-8"),
        })


def parse_codex(paths: Iterable[str | os.PathLike] | None, prices: PriceBook | None = None,
                progress: Progress | None = None) -> tuple[list[dict[str, Any]], ParseStats]:
    """Codex rollout files -> (ledger rows, stats), without a database."""
    files, explicit = _find(paths)
    total = sum(p.stat().st_size for p in files if p.exists()) if progress else 0
    parser = _Parser()
    prices = prices if prices is not None else PriceBook()
    unit: dict[str, UnitPrice | None] = {}
    for n, path in enumerate(files, 1):
        parser.read_file(path, prices, unit, path in explicit)
        if progress:
            progress(n, len(files), parser.stats.bytes, total, parser.stats.lines)
    parser.stats.calls = len(parser.rows)
    parser.stats.tasks = label_tasks(parser.rows, parser.instructions)
    return parser.rows, parser.stats


def import_codex(paths: Iterable[str | os.PathLike] | None, ledger: "Ledger", prices: PriceBook | None = None,
                 now: Callable[[], float] = time.time, progress: Progress | None = None) -> ImportResult:
    """Import Codex rollouts into `ledger` (idempotent; all rows in one transaction)."""
    started = now()
    rows, stats = parse_codex(paths, prices, progress)
    return write_rows(ledger, rows, stats, SOURCE, started, now)
