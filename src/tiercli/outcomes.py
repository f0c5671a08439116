"""Outcome tables for `tier replay --outcomes`: per task and model, how good the answer was and what
it cost. Loading and validation only; the policies are evaluated in tiercli.replay.

Two shapes, CSV or JSONL (chosen by the extension: .csv/.tsv, .jsonl/.ndjson/.json; otherwise by the
first character: `{` is JSONL):

Long form: one row per (task, model), recognised by having both a `model` and a `quality` column.
  task_id (or id)   the task
  model             the model that answered
  quality           a number (0/1 for resolved / not, or a 0..1 score) or true/false
  cost_usd          optional: what the answer cost (alias `cost`)
  input_tokens      optional: prompt tokens, used to price the answer when cost_usd is missing
  output_tokens     optional: completion tokens, likewise
  prompt            optional: the task's prompt (else from --tasks)
  response          optional: the answer's text (its tokens are counted when output_tokens is missing)

Wide form: one row per task, one quality column per model (RouteLLM's tables, e.g. the GSM8K one:
`prompt, <model A>, <model B>, <model A>_response, <model B>_response`). Recognised by having no
`model` column. Columns:
  task_id (or id)   optional; without it, tasks are numbered by data row (1, 2, ...)
  prompt            optional: the task's prompt (alias `task`)
  <model>_response, <model>_cost_usd, <model>_input_tokens, <model>_output_tokens
                    optional per-model extras, as in the long form
  every other column is a model, its cell that model's quality on the task; an empty cell means the
  model was not run on that task.

Tasks that lack an outcome for one of the mapped models are left out of every policy (and counted),
so all policies are judged on the same tasks. Bad input (missing file, missing columns, a value that
is not a quality, a duplicated (task, model)) raises InputError naming the file and line.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from tiercli.errors import InputError, UsageError

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "pass", "passed", "resolved", "success", "correct"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "fail", "failed", "unresolved", "failure", "incorrect"})
ID_COLUMNS = ("task_id", "id")
PROMPT_COLUMNS = ("prompt", "task")
WIDE_SUFFIXES = ("_response", "_cost_usd", "_input_tokens", "_output_tokens")
MAX_FIELD = 64 * 1024 * 1024
LONG_FORM_HELP = "long form needs columns task_id, model, quality [, cost_usd, input_tokens, output_tokens, prompt, response]"
WIDE_FORM_HELP = ("wide form: one row per task, one quality column per model "
                  "(plus optional task_id, prompt and <model>_response/_cost_usd/_input_tokens/_output_tokens)")


@dataclass
class Outcome:
    quality: float
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    response: str | None = None


@dataclass
class OutcomeTable:
    source: str
    form: str  # "long" | "wide"
    format: str  # "csv" | "jsonl"
    models: list[str]  # in order of first appearance
    task_ids: list[str]  # in order of first appearance
    outcomes: dict[str, dict[str, Outcome]]  # task -> model -> outcome
    prompts: dict[str, str] = field(default_factory=dict)
    rows: int = 0

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "form": self.form, "format": self.format, "rows": self.rows,
                "tasks": len(self.task_ids), "models": list(self.models),
                "tasks_with_prompt": sum(1 for t in self.task_ids if self.prompts.get(t))}


# -- reading records -----------------------------------------------------------------------------
def _format_of(path: Path, head: str) -> str:
    suffix = path.suffix.lower()
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    return "jsonl" if head.lstrip().startswith("{") else "csv"


def _read_text(path: Path, what: str) -> str:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{what} {path} not found") from None
    except IsADirectoryError:
        raise InputError(f"{what} {path} is a directory, not a file") from None
    except OSError as exc:
        raise InputError(f"cannot read {what} {path}: {exc.strerror}") from None
    if b"\x00" in raw[:65536]:
        raise InputError(f"{what} {path} looks binary", "give a CSV or JSONL file")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{what} {path} is not UTF-8 text (bad byte at offset {exc.start})") from None


def _records(path: Path, what: str) -> tuple[str, list[str], Iterator[tuple[int, dict[str, Any]]]]:
    """(format, columns, iterator of (line number, record)). Columns of JSONL: keys of all records."""
    text = _read_text(path, what)
    fmt = _format_of(path, text[:200])
    if fmt == "csv":
        csv.field_size_limit(MAX_FIELD)
        delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
        reader = csv.DictReader(io.StringIO(text, newline=""), delimiter=delimiter)
        try:
            columns = [c.strip() for c in (reader.fieldnames or [])]
        except csv.Error as exc:
            raise InputError(f"{path}: not a CSV file ({exc})") from None
        if not columns:
            raise InputError(f"{path} is empty", "it needs a header line")
        if len(set(columns)) != len(columns):
            dupes = sorted({c for c in columns if columns.count(c) > 1})
            raise InputError(f"{path}: duplicate column(s) {', '.join(dupes)}")
        reader.fieldnames = columns

        def rows() -> Iterator[tuple[int, dict[str, Any]]]:
            try:
                for rec in reader:
                    if None in rec:
                        raise InputError(f"{path}:{reader.line_num}: more fields than the header has columns")
                    if all(v is None or not str(v).strip() for v in rec.values()):
                        continue
                    yield reader.line_num, rec
            except csv.Error as exc:
                raise InputError(f"{path}:{reader.line_num}: malformed CSV ({exc})") from None

        return fmt, columns, rows()
    records: list[tuple[int, dict[str, Any]]] = []
    seen: dict[str, None] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError as exc:
            raise InputError(f"{path}:{number}: not JSON ({exc.args[0] if exc.args else exc})") from None
        if not isinstance(rec, dict):
            raise InputError(f"{path}:{number}: expected a JSON object per line")
        for key in rec:
            seen.setdefault(str(key), None)
        records.append((number, rec))
    if not records:
        raise InputError(f"{path} has no records")
    return fmt, list(seen), iter(records)


# -- values --------------------------------------------------------------------------------------
def parse_quality(value: Any) -> float | None:
    """A quality cell -> float; None for an empty cell. Raises ValueError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)):
        q = float(value)
    else:
        text = str(value).strip()
        if not text:
            return None
        low = text.lower()
        if low in TRUE_WORDS:
            return 1.0
        if low in FALSE_WORDS:
            return 0.0
        q = float(text)
    if not math.isfinite(q):
        raise ValueError("not a finite number")
    return q


def _opt_float(value: Any, name: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a number")
    q = float(value)
    if not math.isfinite(q) or q < 0:
        raise ValueError(f"{name} must be a number >= 0")
    return q


def _opt_int(value: Any, name: str) -> int | None:
    q = _opt_float(value, name)
    if q is None:
        return None
    if q != int(q):
        raise ValueError(f"{name} must be a whole number")
    return int(q)


def _opt_str(value: Any) -> str | None:
    if value is None:
        return None
    text = value if isinstance(value, str) else str(value)
    return text if text.strip() else None


def _first(rec: dict[str, Any], names: tuple[str, ...]) -> Any:
    for name in names:
        if name in rec:
            return rec[name]
    return None


# -- loading -------------------------------------------------------------------------------------
def load_outcomes(path: str | Path, tasks_path: str | Path | None = None) -> OutcomeTable:
    path = Path(path).expanduser()
    fmt, columns, records = _records(path, "outcome table")
    if "model" in columns:
        table = _load_long(path, fmt, columns, records)
    else:
        table = _load_wide(path, fmt, columns, records)
    if tasks_path is not None:
        prompts = load_tasks(tasks_path)
        table.prompts.update(prompts)
    return table


def _load_long(path: Path, fmt: str, columns: list[str], records) -> OutcomeTable:
    missing = [c for c in ("model", "quality") if c not in columns]
    if not any(c in columns for c in ID_COLUMNS):
        missing.insert(0, "task_id")
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}", LONG_FORM_HELP)
    table = OutcomeTable(str(path), "long", fmt, [], [], {})
    models: dict[str, None] = {}
    for number, rec in records:
        where = f"{path}:{number}"
        task = _opt_str(_first(rec, ID_COLUMNS))
        model = _opt_str(rec.get("model"))
        if task is None or model is None:
            raise InputError(f"{where}: empty {'task_id' if task is None else 'model'}")
        task, model = task.strip(), model.strip()
        try:
            quality = parse_quality(rec.get("quality"))
            if quality is None:
                raise ValueError("empty")
            cost = _opt_float(_first(rec, ("cost_usd", "cost")), "cost_usd")
            inp = _opt_int(rec.get("input_tokens"), "input_tokens")
            out = _opt_int(rec.get("output_tokens"), "output_tokens")
        except (ValueError, TypeError) as exc:
            raise InputError(f"{where}: bad value ({exc}); quality is a number or true/false") from None
        per_task = table.outcomes.setdefault(task, {})
        if model in per_task:
            raise InputError(f"{where}: task {task!r} has a second row for model {model!r}")
        if task not in table.prompts:
            prompt = _opt_str(_first(rec, PROMPT_COLUMNS))
            if prompt is not None:
                table.prompts[task] = prompt
        per_task[model] = Outcome(quality, cost, inp, out, _opt_str(rec.get("response")))
        models.setdefault(model, None)
        table.rows += 1
    table.models = list(models)
    table.task_ids = list(table.outcomes)
    if not table.task_ids:
        raise InputError(f"{path} has no rows")
    return table


def _load_wide(path: Path, fmt: str, columns: list[str], records) -> OutcomeTable:
    id_col = next((c for c in ID_COLUMNS if c in columns), None)
    prompt_col = next((c for c in PROMPT_COLUMNS if c in columns), None)
    if "quality" in columns:
        raise InputError(f"{path}: a quality column but no model column", LONG_FORM_HELP)
    special = {id_col, prompt_col}
    models = [c for c in columns if c not in special and not c.endswith(WIDE_SUFFIXES) and c]
    if not models:
        raise InputError(f"{path}: no model quality columns found", f"{WIDE_FORM_HELP}; or {LONG_FORM_HELP}")
    table = OutcomeTable(str(path), "wide", fmt, list(models), [], {})
    for index, (number, rec) in enumerate(records, start=1):
        where = f"{path}:{number}"
        task = _opt_str(rec.get(id_col)) if id_col else str(index)
        if task is None:
            raise InputError(f"{where}: empty {id_col}")
        task = task.strip()
        if task in table.outcomes:
            raise InputError(f"{where}: task {task!r} appears twice")
        per_task: dict[str, Outcome] = {}
        for model in models:
            try:
                quality = parse_quality(rec.get(model))
                if quality is None:
                    continue
                cost = _opt_float(rec.get(f"{model}_cost_usd"), f"{model}_cost_usd")
                inp = _opt_int(rec.get(f"{model}_input_tokens"), f"{model}_input_tokens")
                out = _opt_int(rec.get(f"{model}_output_tokens"), f"{model}_output_tokens")
            except (ValueError, TypeError) as exc:
                raise InputError(
                    f"{where}: column {model!r}: bad value {str(rec.get(model))[:40]!r} ({exc})",
                    WIDE_FORM_HELP,
                ) from None
            per_task[model] = Outcome(quality, cost, inp, out, _opt_str(rec.get(f"{model}_response")))
        table.outcomes[task] = per_task
        if prompt_col:
            prompt = _opt_str(rec.get(prompt_col))
            if prompt is not None:
                table.prompts[task] = prompt
        table.rows += 1
    table.task_ids = list(table.outcomes)
    if not table.task_ids:
        raise InputError(f"{path} has no rows")
    return table


def load_tasks(path: str | Path) -> dict[str, str]:
    """--tasks: CSV or JSONL with task_id (or id) and prompt (or task, text) per task."""
    path = Path(path).expanduser()
    _fmt, columns, records = _records(path, "tasks file")
    id_col = next((c for c in ID_COLUMNS if c in columns), None)
    text_col = next((c for c in (*PROMPT_COLUMNS, "text") if c in columns), None)
    if id_col is None or text_col is None:
        raise InputError(f"{path}: the tasks file needs columns task_id (or id) and prompt (or task, text)")
    prompts: dict[str, str] = {}
    for number, rec in records:
        task = _opt_str(rec.get(id_col))
        text = rec.get(text_col)
        if task is None or not isinstance(text, str):
            raise InputError(f"{path}:{number}: needs a task_id and a prompt string")
        prompts[task.strip()] = text
    return prompts


def parse_map(items: list[str], table: OutcomeTable, tiers: list[str]) -> dict[str, str]:
    """--map MODEL=TIER (repeatable) -> {model: tier}; one model per tier."""
    if not items:
        raise UsageError(
            f"--map MODEL=TIER is needed: the table has model(s) {', '.join(table.models)}",
            f"the config's tiers, cheapest first: {', '.join(tiers)}",
        )
    mapping: dict[str, str] = {}
    for item in items:
        model, sep, tier = item.rpartition("=")
        model, tier = model.strip(), tier.strip()
        if not sep or not model or not tier:
            raise UsageError(f"--map {item!r}: expected MODEL=TIER")
        if model not in table.models:
            raise UsageError(f"--map {item!r}: the table has no model {model!r}",
                             f"its models: {', '.join(table.models)}")
        if tier not in tiers:
            raise UsageError(f"--map {item!r}: unknown tier {tier!r}", f"the config's tiers: {', '.join(tiers)}")
        if model in mapping and mapping[model] != tier:
            raise UsageError(f"--map: model {model!r} is mapped twice")
        if tier in mapping.values() and mapping.get(model) != tier:
            raise UsageError(f"--map: tier {tier!r} has two models", "map one table model per tier")
        mapping[model] = tier
    return mapping
