"""`tier import claude-code`: Claude Code session logs (JSONL) -> ledger rows.

Counting rules (docs: shared/reference/agent-logs.md):
- One call per API response. Claude Code writes a response as several lines (one per content block)
  with the same (message.id, requestId) and a growing output_tokens: we count the key once and keep
  the line with the LARGEST token total. Without a requestId the key is message.id alone, and such a
  line joins any response already seen with that message.id. Sidechain lines that replay a seen key
  are duplicates; sidechain/subagent responses with their own message ids are calls.
- Only `type: assistant` lines with `message.usage` are calls; model `<synthetic>` is not a call.
- Token buckets never overlap: input_tokens is uncached input only.
- A line that is not UTF-8, not JSON, not an object, or an assistant line with a missing or
  wrongly typed field we need, is counted as malformed and skipped; it never stops the import.

Files are read in binary, one line at a time, and decoded per line, so memory grows with the number
of calls and uuids, not with file size. The request text of a call is found by walking parentUuid
back (within the call's file) to the last `user` line whose content is text, not a tool_result.

`parse_claude_code` is pure (files -> rows + stats, no database); `import_claude_code` writes the
rows in one transaction through `Ledger.insert_new_calls`, so a second import of the same files adds
nothing and a crash leaves nothing half-imported. Nothing here imports litellm.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from tiercli.errors import InputError
from tiercli.pricing import PriceBook, UnitPrice, Usage

if TYPE_CHECKING:
    from tiercli.ledger.db import Ledger

SOURCE = "claude-code"
SYNTHETIC_MODEL = "<synthetic>"
PROMPT_TEXT_MAX = 4_000
REQUEST_META_MAX = 200
_ID_PREFIX = "cc-"
_EXISTING_CHUNK = 500  # ids per IN (...) query when looking for rows already in the ledger


# -- results -------------------------------------------------------------------------------------
@dataclass
class ParseStats:
    """What parsing saw. `duplicates` counts extra lines (or replayed copies) of a response."""

    files: int = 0
    lines: int = 0  # non-blank lines read
    malformed: int = 0
    duplicates: int = 0
    synthetic_skipped: int = 0
    calls: int = 0


@dataclass
class ImportResult:
    """What an import did. Token, cost and unpriced tallies cover the calls ADDED by this run."""

    files: int = 0
    lines: int = 0
    calls_added: int = 0
    duplicates_skipped: int = 0  # duplicate lines within the files + calls already in the ledger
    malformed: int = 0
    synthetic_skipped: int = 0
    unpriced_calls: int = 0
    unpriced_models: list[str] = field(default_factory=list)
    tokens: dict[str, int] = field(
        default_factory=lambda: {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0}
    )
    cost_usd: float = 0.0  # priced calls added; unpriced ones are NOT counted as $0, see unpriced_calls
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["source"] = SOURCE
        data["cost_usd"] = round(self.cost_usd, 10)
        data["seconds"] = round(self.seconds, 3)
        return data


# -- where the logs are --------------------------------------------------------------------------
def default_claude_code_dirs() -> list[Path]:
    """`$CLAUDE_CONFIG_DIR/projects` (if set), `~/.claude/projects`, `~/.config/claude/projects`: those that exist."""
    candidates: list[Path] = []
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env:
        candidates.append(Path(env).expanduser() / "projects")
    home = Path.home()
    candidates += [home / ".claude" / "projects", home / ".config" / "claude" / "projects"]
    found: list[Path] = []
    seen: set[str] = set()
    for cand in candidates:
        real = os.path.realpath(cand)
        if real not in seen and cand.is_dir():
            seen.add(real)
            found.append(cand)
    return found


def find_log_files(paths: Iterable[str | os.PathLike] | None) -> list[Path]:
    """The `*.jsonl` files under `paths` (files are taken as given), sorted, each once.

    None means the default Claude Code directories. A path that does not exist is an InputError.
    """
    if paths is None:
        roots = default_claude_code_dirs()
        if not roots:
            raise InputError(
                "no Claude Code logs found in $CLAUDE_CONFIG_DIR/projects, ~/.claude/projects or ~/.config/claude/projects",
                "pass the log files or directories to import",
            )
    else:
        roots = [Path(p).expanduser() for p in paths]
    files: list[Path] = []
    seen: set[str] = set()

    def add(path: Path) -> None:
        real = os.path.realpath(path)
        if real not in seen:
            seen.add(real)
            files.append(path)

    for root in roots:
        if root.is_dir():
            def fail(exc: OSError) -> None:
                raise InputError(f"cannot read the directory {exc.filename}: {exc.strerror}")

            for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
                dirnames.sort()
                for name in sorted(filenames):
                    if name.endswith(".jsonl"):
                        add(Path(dirpath) / name)
        elif root.exists():
            add(root)
        else:
            raise InputError(f"no such file or directory: {root}", "pass Claude Code .jsonl files or their directories")
    return files


# -- parsing -------------------------------------------------------------------------------------
class _Bad(Exception):
    """The line is not what it claims to be: counted as malformed."""


class _Entry:
    """One API response, built from its best (largest-usage) line, plus what all its lines share."""

    __slots__ = (
        "msg_id", "request_id", "total", "tokens", "model", "timestamp", "session", "cwd",
        "version", "agent_id", "file", "file_no", "parent", "reported_cost", "sidechain", "tools", "request",
    )

    def __init__(self) -> None:
        self.tools: dict[Any, str] = {}  # tool_use block id -> tool name, in order
        self.request: tuple[str, str, str] | None = None  # (prompt_text, prompt_hash, request[:200])


def _safe(text: str) -> str:
    """Text SQLite can store: lone surrogates (JSON "\\ud83d" from a cut emoji) become '?'."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def _tok(usage: dict[str, Any], key: str, required: bool = False) -> int:
    value = usage.get(key)
    if value is None:
        if required:
            raise _Bad(f"usage.{key} missing")
        return 0
    if type(value) is not int or value < 0:  # bool is not a token count
        raise _Bad(f"usage.{key} is not a count")
    return value


def _epoch(value: Any) -> float:
    if not isinstance(value, str):
        raise _Bad("timestamp")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad("timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _user_text(message: Any) -> str | None:
    """The text of a user message, or None when it is a tool_result (or has no text)."""
    if not isinstance(message, dict):
        return None
    content = message.get("content")
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts: list[str] = []
    for block in content:
        if not isinstance(block, dict):
            continue
        kind = block.get("type")
        if kind == "tool_result":
            return None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
    return "\n\n".join(parts) if parts else None


def _request_info(text: str) -> tuple[str, str, str]:
    text = _safe(text)
    digest = hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
    return text[:PROMPT_TEXT_MAX], digest, text[:REQUEST_META_MAX]


class _Parser:
    def __init__(self) -> None:
        self.stats = ParseStats()
        self.by_key: dict[tuple[str, str | None], _Entry] = {}
        self.by_msg: dict[str, _Entry] = {}  # first response seen per message.id
        self.order: list[_Entry] = []
        self.file_no = 0  # which file is being read, to know where an entry's best line is

    # one file -------------------------------------------------------------------------------
    def read_file(self, path: Path) -> None:
        parents: dict[str, str | None] = {}
        texts: dict[str, tuple[str, str, str]] = {}
        touched: dict[int, _Entry] = {}  # entries whose best line is in this file
        self.file_no += 1
        file_no = self.file_no
        file_name = _safe(path.name)
        stats = self.stats
        try:
            fh = path.open("rb")
        except OSError as exc:
            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        with fh:
            try:
                for raw in fh:
                    if raw.isspace() or not raw:
                        continue
                    stats.lines += 1
                    try:
                        line = raw.decode("utf-8")
                        if line.startswith("\ufeff"):
                            line = line[1:]
                        obj = json.loads(line)
                    except ValueError:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
                        stats.malformed += 1
                        continue
                    if not isinstance(obj, dict):
                        stats.malformed += 1
                        continue
                    uuid = obj.get("uuid")
                    if isinstance(uuid, str):
                        parent = obj.get("parentUuid")
                        parents[uuid] = parent if isinstance(parent, str) else None
                    kind = obj.get("type")
                    if kind == "user":
                        if isinstance(uuid, str):
                            text = _user_text(obj.get("message"))
                            if text is not None:
                                texts[uuid] = _request_info(text)
                    elif kind == "assistant":
                        try:
                            entry = self._assistant(obj, file_name, file_no)
                        except _Bad:
                            stats.malformed += 1
                            continue
                        if entry is not None:
                            touched[id(entry)] = entry
            except OSError as exc:
                raise InputError(f"cannot read {path}: {exc.strerror}") from None
        stats.files += 1
        memo: dict[str, tuple[str, str, str] | None] = {}
        for entry in touched.values():
            if entry.file_no != file_no or entry.parent is None:
                continue
            found = _walk(entry.parent, parents, texts, memo)
            if found is not None:
                entry.request = found

    def _assistant(self, obj: dict[str, Any], file_name: str, file_no: int) -> _Entry | None:
        msg = obj.get("message")
        if not isinstance(msg, dict):
            raise _Bad("message")
        model = msg.get("model")
        if model == SYNTHETIC_MODEL:
            self.stats.synthetic_skipped += 1
            return None
        msg_id = msg.get("id")
        if not isinstance(msg_id, str) or not msg_id:
            raise _Bad("message.id")
        if not isinstance(model, str) or not model:
            raise _Bad("message.model")
        usage = msg.get("usage")
        if not isinstance(usage, dict):
            raise _Bad("message.usage")
        inp = _tok(usage, "input_tokens", required=True)
        out = _tok(usage, "output_tokens", required=True)
        read = _tok(usage, "cache_read_input_tokens")
        w1h = w5m = 0
        creation = usage.get("cache_creation")
        if creation is not None:
            if not isinstance(creation, dict):
                raise _Bad("usage.cache_creation")
            w1h = _tok(creation, "ephemeral_1h_input_tokens")
            w5m = _tok(creation, "ephemeral_5m_input_tokens")
        if usage.get("cache_creation_input_tokens") is not None:
            write = _tok(usage, "cache_creation_input_tokens")
        else:
            write = w5m + w1h
        if w1h > write:
            raise _Bad("1h cache writes exceed cache writes")
        req = obj.get("requestId")
        if req == "":
            req = None
        if req is not None and not isinstance(req, str):
            raise _Bad("requestId")
        ts = _epoch(obj.get("timestamp"))
        content = msg.get("content")
        tools: list[tuple[Any, str]] = []
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_use" and isinstance(block.get("name"), str):
                    key = block.get("id")
                    if not isinstance(key, str):
                        key = (block["name"], json.dumps(block.get("input"), sort_keys=True, default=str))
                    tools.append((key, block["name"]))
        sidechain = obj.get("isSidechain") is True
        total = inp + read + write + out

        msg_id = _safe(msg_id)
        req = _safe(req) if req is not None else None
        if req is not None:
            entry = self.by_key.get((msg_id, req))
            if entry is None:
                first = self.by_msg.get(msg_id)
                if first is not None and first.request_id is None:
                    # the same response seen earlier without its requestId: one call, now fully keyed
                    del self.by_key[(msg_id, None)]
                    first.request_id = req
                    self.by_key[(msg_id, req)] = first
                    entry = first
        else:
            entry = self.by_msg.get(msg_id)

        if entry is None:
            entry = _Entry()
            entry.msg_id, entry.request_id, entry.sidechain = msg_id, req, sidechain
            entry.total = -1
            self.by_key[(msg_id, req)] = entry
            self.by_msg.setdefault(msg_id, entry)
            self.order.append(entry)
        else:
            self.stats.duplicates += 1
            entry.sidechain = entry.sidechain and sidechain  # a replay of a main-chain call is main-chain
        for key, name in tools:
            if key not in entry.tools:
                entry.tools[key] = _safe(name)
        if total <= entry.total:
            return None
        entry.total = total
        entry.tokens = (inp, read, write, w1h, out)
        entry.model = _safe(model)
        entry.timestamp = ts
        entry.session = _opt_str(obj.get("sessionId"))
        entry.cwd = _opt_str(obj.get("cwd"))
        entry.version = _opt_str(obj.get("version"))
        entry.agent_id = _opt_str(obj.get("agentId"))
        entry.file = file_name
        entry.file_no = file_no
        parent = obj.get("parentUuid")
        entry.parent = parent if isinstance(parent, str) else None
        cost = obj.get("costUSD")
        entry.reported_cost = cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
        return entry

    # rows -----------------------------------------------------------------------------------
    def rows(self, prices: PriceBook) -> list[dict[str, Any]]:
        unit_prices: dict[str, UnitPrice | None] = {}
        rows: list[dict[str, Any]] = []
        for e in self.order:
            inp, read, write, w1h, out = e.tokens
            if e.model not in unit_prices:
                unit_prices[e.model] = prices.lookup(e.model)
            price = unit_prices[e.model]
            cost = float(price.cost(Usage(inp, read, write, out, w1h))) if price is not None else None
            external_id = f"claude-code:{e.msg_id}:{e.request_id}" if e.request_id else f"claude-code:{e.msg_id}"
            prompt_text, prompt_hash, request = e.request if e.request is not None else (None, None, None)
            meta: dict[str, Any] = {
                "tools": list(e.tools.values()),
                "request": request,
                "is_sidechain": e.sidechain,
                "file": e.file,
            }
            if e.cwd is not None:
                meta["cwd"] = e.cwd
            meta["version"] = e.version
            if e.agent_id is not None:
                meta["agent_id"] = e.agent_id
            if e.request_id is None:
                meta["request_id_missing"] = True
            if e.reported_cost is not None:
                meta["reported_cost_usd"] = e.reported_cost
            rows.append({
                "id": _ID_PREFIX + hashlib.sha256(external_id.encode("utf-8")).hexdigest()[:24],
                "external_id": external_id,
                "source": SOURCE,
                "kind": "import",
                "session": e.session,
                "started_at": e.timestamp,
                "ended_at": e.timestamp,
                "task_type": None,
                "decision_source": "import",
                "tier": None,
                "requested_model": e.model,
                "served_model": e.model,
                "input_tokens": inp,
                "cache_read_tokens": read,
                "cache_write_tokens": write,
                "cache_write_1h_tokens": w1h,
                "output_tokens": out,
                "output_estimated": False,
                "cost_usd": cost,
                "price_source": price.source if price is not None else None,
                "unpriced": price is None,
                "status": "ok",
                "prompt_hash": prompt_hash,
                "prompt_text": prompt_text,
                "response_text": None,
                "meta_json": json.dumps(meta, ensure_ascii=False, separators=(",", ":")),
            })
        self.stats.calls = len(rows)
        return rows


def _opt_str(value: Any) -> str | None:
    return _safe(value) if isinstance(value, str) else None


def _walk(
    start: str,
    parents: dict[str, str | None],
    texts: dict[str, tuple[str, str, str]],
    memo: dict[str, tuple[str, str, str] | None],
) -> tuple[str, str, str] | None:
    """Follow parentUuid from `start` to the nearest user text line (memoised, cycle-safe)."""
    path: list[str] = []
    seen: set[str] = set()
    cur: str | None = start
    found: tuple[str, str, str] | None = None
    while cur is not None and cur not in seen:
        if cur in memo:
            found = memo[cur]
            break
        hit = texts.get(cur)
        if hit is not None:
            found = hit
            break
        seen.add(cur)
        path.append(cur)
        cur = parents.get(cur)
    for uuid in path:
        memo[uuid] = found
    return found


def parse_claude_code(
    paths: Iterable[str | os.PathLike] | None, prices: PriceBook | None = None
) -> tuple[list[dict[str, Any]], ParseStats]:
    """Claude Code logs -> (ledger rows, stats), without a database.

    Rows are dicts keyed by `calls` columns, one per API response, in first-seen order.
    """
    parser = _Parser()
    for path in find_log_files(paths):
        parser.read_file(path)
    rows = parser.rows(prices if prices is not None else PriceBook())
    return rows, parser.stats


# -- writing -------------------------------------------------------------------------------------
def _already_in_ledger(ledger: "Ledger", rows: list[dict[str, Any]]) -> tuple[set[str], set[str]]:
    from sqlalchemy import bindparam, text

    ids: set[str] = set()
    external: set[str] = set()
    by_id = text("SELECT id FROM calls WHERE id IN :keys").bindparams(bindparam("keys", expanding=True))
    by_ext = text("SELECT external_id FROM calls WHERE external_id IN :keys").bindparams(
        bindparam("keys", expanding=True)
    )
    with ledger.read() as conn:
        for start in range(0, len(rows), _EXISTING_CHUNK):
            chunk = rows[start:start + _EXISTING_CHUNK]
            ids.update(conn.execute(by_id, {"keys": [r["id"] for r in chunk]}).scalars())
            external.update(conn.execute(by_ext, {"keys": [r["external_id"] for r in chunk]}).scalars())
    return ids, external


def import_claude_code(
    paths: Iterable[str | os.PathLike] | None,
    ledger: "Ledger",
    prices: PriceBook | None = None,
    now: Callable[[], float] = time.time,
) -> ImportResult:
    """Import Claude Code logs into `ledger` (idempotent; all rows in one transaction)."""
    started = now()
    rows, stats = parse_claude_code(paths, prices)
    known_ids, known_external = _already_in_ledger(ledger, rows) if rows else (set(), set())
    fresh = [r for r in rows if r["id"] not in known_ids and r["external_id"] not in known_external]
    added, skipped = ledger.insert_new_calls(fresh) if fresh else (0, 0)

    result = ImportResult(
        files=stats.files,
        lines=stats.lines,
        calls_added=added,
        duplicates_skipped=stats.duplicates + (len(rows) - len(fresh)) + skipped,
        malformed=stats.malformed,
        synthetic_skipped=stats.synthetic_skipped,
    )
    # Tallies cover the rows this run inserted. (If another process inserted some of the same rows
    # between our check and our write, `skipped` > 0 and the tallies include those few rows.)
    costs: list[float] = []
    unpriced: set[str] = set()
    tokens = result.tokens
    for r in fresh:
        tokens["input"] += r["input_tokens"]
        tokens["cache_read"] += r["cache_read_tokens"]
        tokens["cache_write"] += r["cache_write_tokens"]
        tokens["output"] += r["output_tokens"]
        if r["cost_usd"] is None:
            result.unpriced_calls += 1
            unpriced.add(r["served_model"])
        else:
            costs.append(r["cost_usd"])
    result.cost_usd = math.fsum(costs)
    result.unpriced_models = sorted(unpriced)
    result.seconds = now() - started
    return result
