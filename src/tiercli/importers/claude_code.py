"""`tier import claude-code`: Claude Code session logs (JSONL) -> ledger rows, with agent tasks.

Counting rules (docs: shared/reference/agent-logs.md):
- One call per API response. Claude Code writes a response as several lines (one per content block)
  with the same (message.id, requestId) and a growing output_tokens: we count the key once and keep
  the line with the LARGEST token total; the other lines are "partial lines", not calls and not
  duplicates of anything imported. Without a requestId the key is message.id alone, and such a
  line joins any response already seen with that message.id. Sidechain lines that replay a seen key
  are partial lines too; sidechain/subagent responses with their own message ids are calls.
- Only `type: assistant` lines with `message.usage` are calls; model `<synthetic>` is not a call.
- Token buckets never overlap: input_tokens is uncached input only.
- A line that is not UTF-8, not JSON, too deeply nested, not an object, or an assistant line with a
  missing or wrongly typed field we need (a token count that is not an int in [0, 2**53)), is counted
  as malformed and skipped; it never stops the import. A file named on the command line in which no
  line is a log entry (a YAML file, say) is an error.

Tasks (tiercli.agent.TranscriptTasks): each user turn with text is judged in file order (new
instruction, continuation, compaction summary, a slash command's expansion, or not the user's words);
a sub-agent conversation (isSidechain, starting from a user line without parent) is a task of its own.
A call's task is the one of its nearest ancestor turn (parentUuid walked back); its rule is that
turn's rule for the first call after the turn and `tool_step` for the next ones. A tool-less call to a
small model (haiku) in the main chain of a session whose main model is not small is a side call.
prompt_text is the task's instruction; meta.request the turn the call answered.

Speed: lines are decoded with msgspec into typed structs that name only the fields used
(claude_code_lines.py), so the bulk of a log (tool results, file contents, tool inputs) is skipped,
not turned into Python objects; the tasks' instructions are classified in a forked child while the
next files parse (labeller.py).

`parse_claude_code` is pure (files -> rows + stats, no database); `import_claude_code` writes the
rows in one transaction. Nothing here imports litellm or SQLAlchemy.
"""

from __future__ import annotations

import hashlib
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

import msgspec

from tiercli import agent
from tiercli.importers.claude_code_files import _find, default_claude_code_dirs, find_log_files  # noqa: F401
from tiercli.importers.claude_code_lines import _DECODER, _Bad, _decode_slowly, _encode, _epoch, _Line, _str, _usage, _user_text
from tiercli.importers.common import (
    PROMPT_TEXT_MAX,
    REQUEST_META_MAX,
    ImportResult,
    ParseStats,
    Progress,
    label_tasks,
    not_a_log,
    safe,
    walk_parents,
    write_rows,
)
from tiercli.importers.labeller import Labeller
from tiercli.pricing import PriceBook, UnitPrice

if TYPE_CHECKING:
    from tiercli.ledger.db import Ledger

SOURCE = "claude-code"
SYNTHETIC_MODEL = "<synthetic>"
_ID_PREFIX = "cc-"
_BOM = b"\xef\xbb\xbf"

__all__ = ["ImportResult", "ParseStats", "default_claude_code_dirs", "import_claude_code", "parse_claude_code"]


class _Entry:
    """One API response, built from its best (largest-usage) line, plus what all its lines share."""

    __slots__ = ("msg_id", "request_id", "total", "tokens", "model", "timestamp", "session", "cwd", "version",
                 "agent_id", "file", "file_no", "parent", "reported_cost", "sidechain", "tools", "task", "rule",
                 "request")
    msg_id: str
    request_id: str | None
    total: int
    tokens: tuple[int, int, int, int, int]
    model: str
    timestamp: float
    session: str | None
    cwd: str | None
    version: str | None
    agent_id: str | None
    file: str
    file_no: int
    parent: str | None
    reported_cost: float | None
    sidechain: bool

    def __init__(self) -> None:
        self.tools: dict[Any, str] = {}  # tool_use block id -> tool name, in order
        self.task: str | None = None
        self.rule: str | None = None
        self.request: str | None = None


class _Parser:
    def __init__(self, labeller: Labeller | None = None) -> None:
        self.stats = ParseStats()
        self.by_key: dict[tuple[str, str | None], _Entry] = {}
        self.by_msg: dict[str, _Entry] = {}  # first response seen per message.id
        self.order: list[_Entry] = []
        self.instructions: dict[str, str | None] = {}  # task id -> instruction
        self.file_no = 0
        self.labeller = labeller

    def read_file(self, path: Path, explicit: bool = False) -> None:
        parents: dict[str, str | None] = {}
        turns: dict[str, tuple[str, str, str, str]] = {}  # uuid -> (task id, rule, turn text, uuid)
        chains: dict[str, str] = {}  # sidechain uuid -> its conversation's root uuid
        trackers: dict[Any, agent.TranscriptTasks] = {}
        touched: dict[int, _Entry] = {}
        self.file_no += 1
        file_no = self.file_no
        file_name = safe(path.name)
        stats = self.stats
        decode = _DECODER.decode
        try:
            fh = path.open("rb")
        except OSError as exc:
            from tiercli.errors import InputError

            raise InputError(f"cannot read {path}: {exc.strerror}") from None
        with fh:
            try:
                good = self._lines(fh, stats, decode, chains, trackers, turns, parents, touched, file_name, file_no)
            except OSError as exc:
                from tiercli.errors import InputError

                raise InputError(f"cannot read {path}: {exc.strerror}") from None
        if explicit and good == 0 and stats.lines:
            raise not_a_log(path, "Claude Code session log")
        stats.files += 1
        self._assign_tasks(touched.values(), file_no, parents, turns, trackers)

    def _lines(self, fh, stats, decode, chains, trackers, turns, parents, touched, file_name, file_no) -> int:
        """Read one file line by line (memory grows with calls, not file size); the count of log lines."""
        good = 0
        first = True
        for raw in fh:
            stats.bytes += len(raw)
            if first:
                first = False
                if raw.startswith(_BOM):
                    raw = raw[3:]
            if not raw or raw.isspace():
                continue
            stats.lines += 1
            try:
                line = decode(raw)
            except msgspec.DecodeError:
                line = _decode_slowly(raw)  # msgspec refuses lone surrogates ("\ud83d" of a cut emoji)
                if line is None:
                    stats.malformed += 1
                    continue
            except (msgspec.MsgspecError, RecursionError, ValueError):
                stats.malformed += 1
                continue
            kind = line.type
            if not isinstance(kind, str):
                stats.malformed += 1
                continue
            good += 1
            uuid = line.uuid
            if isinstance(uuid, str):
                parent = line.parentUuid
                parents[uuid] = parent if isinstance(parent, str) else None
            if kind == "user":
                msg = line.message
                if isinstance(uuid, str) and msg is not None:
                    text = _user_text(msg.content)
                    if text is not None:
                        self._turn(line, uuid, text, chains, trackers, turns)
                    elif line.isSidechain is True and not isinstance(line.parentUuid, str):
                        chains[uuid] = uuid
                    elif isinstance(line.parentUuid, str) and line.parentUuid in chains:
                        chains[uuid] = chains[line.parentUuid]
            elif kind == "assistant":
                try:
                    entry = self._assistant(line, file_name, file_no)
                except _Bad:
                    stats.malformed += 1
                    good -= 1
                    continue
                if isinstance(uuid, str) and isinstance(line.parentUuid, str) and line.parentUuid in chains:
                    chains[uuid] = chains[line.parentUuid]
                if entry is not None:
                    touched[id(entry)] = entry
        return good

    def _turn(self, line: _Line, uuid: str, text: str, chains: dict, trackers: dict, turns: dict) -> None:
        session = _str(line.sessionId)
        parent = line.parentUuid if isinstance(line.parentUuid, str) else None
        start = line.isSidechain is True and parent is None
        if line.isSidechain is True:
            chains[uuid] = uuid if start or parent not in chains else chains[parent]
        chain = chains.get(uuid)
        tracker = trackers.get(session)
        if tracker is None:
            tracker = trackers[session] = agent.TranscriptTasks(session)
        ref = tracker.turn(uuid, text, chain=chain, subagent_start=start, expansion=line.isMeta is True)
        if ref is not None:
            turns[uuid] = (ref.task_id, ref.rule, text, uuid)

    def _assign_tasks(self, entries, file_no: int, parents: dict, turns: dict, trackers: dict) -> None:
        memo: dict[str, tuple[str, str, str, str] | None] = {}
        firsts: set[str] = set()
        mains: dict[str | None, dict[str, int]] = {}
        entries = sorted((e for e in entries if e.file_no == file_no), key=lambda e: e.timestamp)
        for e in entries:
            if not e.sidechain:
                counts = mains.setdefault(e.session, {})
                counts[e.model] = counts.get(e.model, 0) + 1
        for tracker in trackers.values():
            for tid, ref in tracker.tasks.items():
                self.instructions[tid] = ref.instruction
            if self.labeller is not None:  # classified in the background while the next files parse
                self.labeller.submit(ref.instruction for ref in tracker.tasks.values())
        for e in entries:
            found = walk_parents(e.parent, parents, turns, memo) if e.parent is not None else None
            counts = mains.get(e.session) or {}
            main_model = max(counts, key=counts.__getitem__) if counts else None
            if not e.sidechain and not e.tools and agent.side_call_reason(
                    model=e.model, has_tools=False, main_model=main_model) is not None:
                e.task = agent.task_id(e.session, "side:" + e.msg_id)
                e.rule = agent.SIDE_CALL
                self.instructions[e.task] = None
                e.request = found[2] if found else None
                continue
            if found is None:
                continue
            tid, rule, text, turn = found
            e.task, e.request = tid, text
            e.rule = rule if turn not in firsts else agent.TOOL_STEP
            firsts.add(turn)

    def _assistant(self, line: _Line, file_name: str, file_no: int) -> _Entry | None:
        msg = line.message
        if msg is None:
            raise _Bad("message")
        model = msg.model
        if model == SYNTHETIC_MODEL:
            self.stats.synthetic_skipped += 1
            return None
        msg_id = msg.id
        if not isinstance(msg_id, str) or not msg_id:
            raise _Bad("message.id")
        if not isinstance(model, str) or not model:
            raise _Bad("message.model")
        inp, read, write, w1h, out = _usage(msg.usage)
        req = line.requestId
        if req == "":
            req = None
        if req is not None and not isinstance(req, str):
            raise _Bad("requestId")
        ts = _epoch(line.timestamp)
        tools: list[tuple[Any, str]] = []
        if isinstance(msg.content, list):
            for block in msg.content:
                if block.type == "tool_use" and isinstance(block.name, str):
                    key = block.id
                    if not isinstance(key, str):
                        key = (block.name, bytes(block.input))
                    tools.append((key, block.name))
        sidechain = line.isSidechain is True
        total = inp + read + write + out

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
                entry.tools[key] = name
        if total <= entry.total:
            return None
        entry.total = total
        entry.tokens = (inp, read, write, w1h, out)
        entry.model = model
        entry.timestamp = ts
        entry.session = _str(line.sessionId)
        entry.cwd = _str(line.cwd)
        entry.version = _str(line.version)
        entry.agent_id = _str(line.agentId)
        entry.file = file_name
        entry.file_no = file_no
        parent = line.parentUuid
        entry.parent = parent if isinstance(parent, str) else None
        cost = line.costUSD
        entry.reported_cost = cost if isinstance(cost, (int, float)) and not isinstance(cost, bool) else None
        return entry

    # rows -----------------------------------------------------------------------------------
    def rows(self, prices: PriceBook) -> list[dict[str, Any]]:
        unit_prices: dict[str, UnitPrice | None] = {}
        rows: list[dict[str, Any]] = []
        prompts: dict[str | None, tuple[str | None, str | None]] = {None: (None, None)}  # task -> (hash, text)
        by_text: dict[str, tuple[str | None, str | None]] = {}
        instructions = self.instructions
        sha256 = hashlib.sha256
        for e in self.order:
            inp, read, write, w1h, out = e.tokens
            model = e.model
            if model not in unit_prices:
                unit_prices[model] = prices.lookup(model)
            price = unit_prices[model]
            cost = float(price.cost_of(inp, read, write, out, w1h)) if price is not None else None
            external_id = f"claude-code:{e.msg_id}:{e.request_id}" if e.request_id else f"claude-code:{e.msg_id}"
            prompt = prompts.get(e.task)
            if prompt is None:  # the task's instruction: hashed and cut once, shared by its rows
                instruction = instructions.get(e.task) if e.task is not None else None
                if instruction is None:
                    prompt = (None, None)
                else:
                    prompt = by_text.get(instruction)
                    if prompt is None:
                        prompt = by_text[instruction] = (sha256(instruction.encode("utf-8")).hexdigest()[:16],
                                                         instruction[:PROMPT_TEXT_MAX])
                prompts[e.task] = prompt
            meta: dict[str, Any] = {
                "tools": list(e.tools.values()),
                "request": e.request[:REQUEST_META_MAX] if e.request is not None else None,
                "is_sidechain": e.sidechain,
                "file": e.file,
                "task_rule": e.rule,
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
                "id": _ID_PREFIX + sha256(external_id.encode("utf-8")).hexdigest()[:24],
                "external_id": external_id, "source": SOURCE, "kind": "import", "session": e.session,
                "started_at": e.timestamp, "ended_at": e.timestamp, "task_id": e.task, "task_type": None,
                "label": None, "confidence": None, "classifier": None, "decision_source": "import", "tier": None,
                "requested_model": e.model, "served_model": e.model, "input_tokens": inp, "cache_read_tokens": read,
                "cache_write_tokens": write, "cache_write_1h_tokens": w1h, "output_tokens": out,
                "output_estimated": False, "cost_usd": cost, "price_source": price.source if price is not None else None,
                "unpriced": price is None, "status": "ok",
                "prompt_hash": prompt[0],
                "prompt_text": prompt[1],
                "response_text": None,
                "meta_json": _encode(meta).decode("utf-8"),
            })
        self.stats.calls = len(rows)
        self.stats.tasks = label_tasks(rows, self.instructions, self.labeller.results() if self.labeller else None)
        return rows


def parse_claude_code(paths: Iterable[str | os.PathLike] | None, prices: PriceBook | None = None,
                      progress: Progress | None = None) -> tuple[list[dict[str, Any]], ParseStats]:
    """Claude Code logs -> (ledger rows, stats), without a database.

    Rows are dicts keyed by `calls` columns, one per API response, in first-seen order.
    """
    files, explicit = _find(paths)
    total = sum(_size(p) for p in files) if progress else 0
    labeller = Labeller()
    parser = _Parser(labeller)
    try:
        for n, path in enumerate(files, 1):
            parser.read_file(path, explicit=path in explicit)
            if progress:
                progress(n, len(files), parser.stats.bytes, total, parser.stats.lines)
        rows = parser.rows(prices if prices is not None else PriceBook())
    finally:
        labeller.close()
    return rows, parser.stats


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def import_claude_code(paths: Iterable[str | os.PathLike] | None, ledger: "Ledger", prices: PriceBook | None = None,
                       now: Callable[[], float] = time.time, progress: Progress | None = None) -> ImportResult:
    """Import Claude Code logs into `ledger` (idempotent; all rows in one transaction)."""
    started = now()
    rows, stats = parse_claude_code(paths, prices, progress)
    return write_rows(ledger, rows, stats, SOURCE, started, now)
