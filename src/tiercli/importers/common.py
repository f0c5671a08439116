"""What every importer shares: results, finding log files, task labelling, and the one write.

Writing: the rows of one import go in ONE transaction (`Ledger.insert_new_calls`), so a crash leaves
nothing half-imported and a second import adds nothing (ids and external ids are derived from the
log). Rows already in the ledger are found first (ledger.import_queries.known_call_keys) so the tallies
cover only what this run added. Nothing here imports SQLAlchemy or litellm.

Tasks: each importer gives every row a task id (tiercli.agent) and the task's instruction; the
instruction of each task is classified once with the local classifier, and every row of the task
gets its task type, label and confidence (decision_source stays `import`: tier did not route these
calls, it only says what they were). Side calls get no task type (meta task_rule says why).
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable

from tiercli.errors import InputError

if TYPE_CHECKING:
    from tiercli.ledger.db import Ledger

MAX_TOKENS = 2**53  # a token count above this is not a count: the line is malformed
PROMPT_TEXT_MAX = 4_000
REQUEST_META_MAX = 200

# (files done, files total, bytes done, bytes total, lines so far); called after each file
Progress = Callable[[int, int, int, int, int], None]


@dataclass
class ParseStats:
    """What parsing saw. `duplicates`: extra lines of one response (streamed partial lines, a
    sub-agent's replay of its parent's message) or repeated running totals (Codex)."""

    files: int = 0
    lines: int = 0  # non-blank lines read
    bytes: int = field(default=0, compare=False)  # (a trimmed copy of a log counts the same)
    malformed: int = 0
    duplicates: int = 0
    synthetic_skipped: int = 0
    calls: int = 0
    tasks: int = 0


@dataclass
class ImportResult:
    """What an import did. Token, cost and unpriced tallies cover the calls ADDED by this run."""

    source: str = ""
    files: int = 0
    lines: int = 0
    bytes: int = 0
    calls_added: int = 0
    already_imported: int = 0  # calls found in the ledger from an earlier import
    partial_lines: int = 0  # extra lines of a response already counted (not calls, not duplicates)
    duplicates_skipped: int = 0  # partial_lines + already_imported (kept for scripts reading the JSON)
    malformed: int = 0
    synthetic_skipped: int = 0
    tasks: int = 0
    unpriced_calls: int = 0
    unpriced_models: list[str] = field(default_factory=list)
    tokens: dict[str, int] = field(
        default_factory=lambda: {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0}
    )
    cost_usd: float = 0.0  # priced calls added; unpriced ones are NOT counted as $0, see unpriced_calls
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 10)
        data["seconds"] = round(self.seconds, 3)
        return data


def safe(text: str) -> str:
    """Text SQLite can store: lone surrogates (JSON "\\ud83d" from a cut emoji) become '?'."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")


def opt_str(value: Any) -> str | None:
    return safe(value) if isinstance(value, str) else None


def count(value: Any, what: str) -> int:
    """A token count: a non-negative int below MAX_TOKENS (bool is not a count), else ValueError."""
    if value is None:
        return 0
    if type(value) is not int or value < 0 or value >= MAX_TOKENS:
        raise ValueError(f"{what} is not a token count")
    return value


def find_files(paths: Iterable[str | os.PathLike] | None, default_dirs: Callable[[], list[Path]],
               matches: Callable[[str], bool], what: str) -> tuple[list[Path], set[Path]]:
    """(files, the ones named explicitly): matching files under `paths` (files are taken as given),
    sorted, each once. None means `default_dirs()`. A path that does not exist is an InputError."""
    if paths is None:
        roots = default_dirs()
        if not roots:
            raise InputError(f"no {what} found in the default places", "pass the log files or directories to import")
    else:
        roots = [Path(p).expanduser() for p in paths]
    files: list[Path] = []
    explicit: set[Path] = set()
    seen: set[str] = set()

    def add(path: Path) -> bool:
        real = os.path.realpath(path)
        if real in seen:
            return False
        seen.add(real)
        files.append(path)
        return True

    for root in roots:
        if root.is_dir():
            def fail(exc: OSError) -> None:
                raise InputError(f"cannot read the directory {exc.filename}: {exc.strerror}")

            for dirpath, dirnames, filenames in os.walk(root, onerror=fail):
                dirnames.sort()
                for name in sorted(filenames):
                    if matches(name):
                        add(Path(dirpath) / name)
        elif root.exists():
            if add(root):
                explicit.add(root)
        else:
            raise InputError(f"no such file or directory: {root}", f"pass {what} or their directories")
    return files, explicit


def not_a_log(path: Path, what: str) -> InputError:
    return InputError(f"{path} is not a {what}: none of its lines is a log entry",
                      f"pass {what} files (JSONL) or their directories")


def label_tasks(rows: list[dict[str, Any]], instructions: dict[str, str | None],
                known: dict[str, Any] | None = None) -> int:
    """Classify each task's instruction once (local classifier) and label its rows; the number of tasks.
    `known`: labels already worked out ({text: (task_type, label, confidence)}, importers.labeller)."""
    from tiercli.importers.labeller import classify_here

    done: dict[str, tuple[str | None, str | None, float | None]] = {}
    by_text: dict[str, tuple[str | None, str | None, float | None]] = dict(known) if known else {}
    for r in rows:
        tid = r.get("task_id")
        if tid is None:
            continue
        found = done.get(tid)
        if found is None:
            text = instructions.get(tid)
            if text and text.strip():
                found = by_text.get(text)
                if found is None:
                    found = by_text[text] = classify_here(text)
            else:
                found = (None, None, None)
            done[tid] = found
        if found[0] is not None or found[1] is not None:
            r["task_type"], r["label"], r["confidence"] = found
            r["classifier"] = "local"
    return len(done)


def write_rows(ledger: "Ledger", rows: list[dict[str, Any]], stats: ParseStats, source: str,
               started: float, now: Callable[[], float] = time.time) -> ImportResult:
    """Insert the rows that are new (one transaction) and tally what was added."""
    from tiercli.ledger.import_queries import known_call_keys

    known_ids, known_external = known_call_keys(ledger, rows) if rows else (set(), set())
    fresh = [r for r in rows if r["id"] not in known_ids and r["external_id"] not in known_external]
    added, skipped = ledger.insert_new_calls(fresh) if fresh else (0, 0)
    result = ImportResult(
        source=source, files=stats.files, lines=stats.lines, bytes=stats.bytes, calls_added=added,
        already_imported=(len(rows) - len(fresh)) + skipped, partial_lines=stats.duplicates,
        malformed=stats.malformed, synthetic_skipped=stats.synthetic_skipped, tasks=stats.tasks,
    )
    result.duplicates_skipped = result.partial_lines + result.already_imported
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


def walk_parents(start: str, parents: dict[str, str | None], found_in: dict[str, Any],
                 memo: dict[str, Any | None]) -> Any | None:
    """Follow parent links from `start` to the nearest id in `found_in` (memoised, cycle-safe)."""
    path: list[str] = []
    seen: set[str] = set()
    cur: str | None = start
    found: Any | None = None
    while cur is not None and cur not in seen:
        if cur in memo:
            found = memo[cur]
            break
        hit = found_in.get(cur)
        if hit is not None:
            found = hit
            break
        seen.add(cur)
        path.append(cur)
        cur = parents.get(cur)
    for uuid in path:
        memo[uuid] = found
    return found
