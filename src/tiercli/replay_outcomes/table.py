"""Outcome tables: per task and model, how good the answer was and what it cost. Loading and
validation only; the policies are simulated in tiercli.replay_outcomes.simulate.

Two shapes, CSV or JSONL (chosen by the extension: .csv/.tsv, .jsonl/.ndjson/.json; otherwise by the
first character: `{` is JSONL). Common column names are accepted (first one present wins):

  quality       quality | resolved | score | success | correct   (a number, or true/false)
  cost          cost_usd | cost
  input tokens  input_tokens | in_tok | prompt_tokens
  output tokens output_tokens | out_tok | completion_tokens
  task type     task_type | dimension | category   (or the column named by `group_column`)

Long form: one row per (task, model), recognised by having a `model` column.
  task_id (or id)   the task
  model             the model that answered
  quality           see above
  cost_usd          optional: what the answer cost
  input_tokens      optional: prompt tokens, used to price the answer when cost_usd is missing
  output_tokens     optional: completion tokens, likewise
  task type         optional: what kind of task it is (policies may start each type at its own tier)
  prompt            optional: the task's prompt (else from --tasks)
  response          optional: the answer's text (its tokens are counted when output_tokens is missing)

Wide form: one row per task, one quality column per model (RouteLLM's tables, e.g. the GSM8K one:
`prompt, <model A>, <model B>, <model A>_response, <model B>_response`). Recognised by having no
`model` column. Columns:
  task_id (or id)   optional; without it, tasks are numbered by data row (1, 2, ...)
  prompt            optional: the task's prompt (alias `task`)
  task type         optional, as above
  <model>_response, <model>_cost_usd (or _cost), <model>_input_tokens (or _in_tok),
  <model>_output_tokens (or _out_tok)
                    optional per-model extras, as in the long form
  every other column is a model, its cell that model's quality on the task; an empty cell means the
  model was not run on that task.

Tasks that lack an outcome for one of the mapped models are left out of every policy (and counted),
so all policies are judged on the same tasks. Bad input (missing file, missing columns, a value that
is not a quality, a duplicated (task, model)) raises InputError naming the file and line.

`table_from_rows` builds the same table from (task_id, task_type, tier, quality, cost) rows: the shape
the ledger's `tier run` history will have once it records task outcomes (the ledger query itself is
not written yet; the search in tiercli.replay_outcomes.tune takes such a table unchanged).
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, NoReturn

from tiercli.errors import InputError, UsageError

TRUE_WORDS = frozenset({"true", "t", "yes", "y", "pass", "passed", "resolved", "success", "correct"})
FALSE_WORDS = frozenset({"false", "f", "no", "n", "fail", "failed", "unresolved", "failure", "incorrect"})
ID_COLUMNS = ("task_id", "id")
PROMPT_COLUMNS = ("prompt", "task")
QUALITY_COLUMNS = ("quality", "resolved", "score", "success", "correct")
COST_COLUMNS = ("cost_usd", "cost")
INPUT_COLUMNS = ("input_tokens", "in_tok", "prompt_tokens")
OUTPUT_COLUMNS = ("output_tokens", "out_tok", "completion_tokens")
GROUP_COLUMNS = ("task_type", "dimension", "category")
WIDE_SUFFIXES = ("_response", "_cost_usd", "_cost", "_input_tokens", "_in_tok", "_output_tokens", "_out_tok")
MAX_FIELD = 64 * 1024 * 1024
LONG_FORM_HELP = ("long form needs columns task_id, model and a quality column (quality, resolved, score, success "
                  "or correct) [, cost_usd, input_tokens, output_tokens, task_type, prompt, response]")
WIDE_FORM_HELP = ("wide form: one row per task, one quality column per model "
                  "(plus optional task_id, prompt, task_type and <model>_response/_cost_usd/_input_tokens/_output_tokens)")


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
    groups: dict[str, str] = field(default_factory=dict)  # task -> task type (when the table has one)
    group_column: str | None = None
    columns: dict[str, str] = field(default_factory=dict)  # role (quality, cost, ...) -> column read

    def describe(self) -> dict[str, Any]:
        return {"source": self.source, "form": self.form, "format": self.format, "rows": self.rows,
                "tasks": len(self.task_ids), "models": list(self.models),
                "tasks_with_prompt": sum(1 for t in self.task_ids if self.prompts.get(t)),
                "task_type_column": self.group_column, "columns": dict(self.columns)}


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


def _pick(columns: list[str], names: tuple[str, ...]) -> str | None:
    return next((c for c in names if c in columns), None)


# -- loading -------------------------------------------------------------------------------------
def load_outcomes(path: str | Path, tasks_path: str | Path | None = None, *,
                  group_column: str | None = None) -> OutcomeTable:
    """Read a table. `group_column` names the task-type column (else task_type, dimension, category)."""
    path = Path(path).expanduser()
    fmt, columns, records = _records(path, "outcome table")
    if group_column is not None and group_column not in columns:
        raise InputError(f"{path}: no column {group_column!r} for the task type",
                         f"its columns: {', '.join(columns)}")
    group = group_column or _pick(columns, GROUP_COLUMNS)
    if "model" in columns:
        table = _load_long(path, fmt, columns, records, group)
    else:
        table = _load_wide(path, fmt, columns, records, group)
    if tasks_path is not None:
        prompts = load_tasks(tasks_path)
        table.prompts.update(prompts)
    return table


def _load_long(path: Path, fmt: str, columns: list[str], records, group: str | None) -> OutcomeTable:
    quality_col = _pick(columns, QUALITY_COLUMNS)
    missing = [c for c, ok in (("model", True), ("quality", quality_col)) if not ok]
    if not any(c in columns for c in ID_COLUMNS):
        missing.insert(0, "task_id")
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}", LONG_FORM_HELP)
    cost_col, in_col, out_col = (_pick(columns, n) for n in (COST_COLUMNS, INPUT_COLUMNS, OUTPUT_COLUMNS))
    table = OutcomeTable(str(path), "long", fmt, [], [], {}, group_column=group)
    table.columns = {k: v for k, v in (("quality", quality_col), ("cost", cost_col), ("input_tokens", in_col),
                                       ("output_tokens", out_col), ("task_type", group)) if v}
    models: dict[str, None] = {}
    for number, rec in records:
        where = f"{path}:{number}"
        task = _opt_str(_first(rec, ID_COLUMNS))
        model = _opt_str(rec.get("model"))
        if task is None or model is None:
            raise InputError(f"{where}: empty {'task_id' if task is None else 'model'}")
        task, model = task.strip(), model.strip()
        try:
            quality = parse_quality(rec.get(quality_col))
            if quality is None:
                raise ValueError(f"empty {quality_col}")
            cost = _opt_float(rec.get(cost_col), "cost_usd") if cost_col else None
            inp = _opt_int(rec.get(in_col), "input_tokens") if in_col else None
            out = _opt_int(rec.get(out_col), "output_tokens") if out_col else None
        except (ValueError, TypeError) as exc:
            raise InputError(f"{where}: bad value ({exc}); {quality_col} is a number or true/false") from None
        per_task = table.outcomes.setdefault(task, {})
        if model in per_task:
            raise InputError(f"{where}: task {task!r} has a second row for model {model!r}")
        if group:
            _set_group(table, task, rec.get(group), where)
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


def _set_group(table: OutcomeTable, task: str, value: Any, where: str) -> None:
    text = _opt_str(value)
    if text is None:
        return
    text = text.strip()
    seen = table.groups.setdefault(task, text)
    if seen != text:
        raise InputError(f"{where}: task {task!r} has two task types ({seen!r} and {text!r})")


def _extra(rec: dict[str, Any], model: str, suffixes: tuple[str, ...]) -> Any:
    return _first(rec, tuple(model + s for s in suffixes))


def _load_wide(path: Path, fmt: str, columns: list[str], records, group: str | None) -> OutcomeTable:
    id_col = next((c for c in ID_COLUMNS if c in columns), None)
    prompt_col = next((c for c in PROMPT_COLUMNS if c in columns), None)
    if "quality" in columns:
        raise InputError(f"{path}: a quality column but no model column", LONG_FORM_HELP)
    special = {id_col, prompt_col, group}
    models = [c for c in columns if c not in special and not c.endswith(WIDE_SUFFIXES) and c]
    if not models:
        raise InputError(f"{path}: no model quality columns found", f"{WIDE_FORM_HELP}; or {LONG_FORM_HELP}")
    table = OutcomeTable(str(path), "wide", fmt, list(models), [], {}, group_column=group)
    if group:
        table.columns["task_type"] = group
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
                cost = _opt_float(_extra(rec, model, ("_cost_usd", "_cost")), f"{model}_cost_usd")
                inp = _opt_int(_extra(rec, model, ("_input_tokens", "_in_tok")), f"{model}_input_tokens")
                out = _opt_int(_extra(rec, model, ("_output_tokens", "_out_tok")), f"{model}_output_tokens")
            except (ValueError, TypeError) as exc:
                raise InputError(
                    f"{where}: column {model!r}: bad value {str(rec.get(model))[:40]!r} ({exc})",
                    WIDE_FORM_HELP,
                ) from None
            per_task[model] = Outcome(quality, cost, inp, out, _opt_str(rec.get(f"{model}_response")))
        table.outcomes[task] = per_task
        if group:
            _set_group(table, task, rec.get(group), where)
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


def _map_items(items: list[str], table: OutcomeTable, tiers: list[str]) -> list[tuple[str, str, str]]:
    """Each --map value -> (item, model, tier). A value is MODEL=TIER or TIER=MODEL (whichever names a
    table model and a tier), or several of them separated by commas."""
    out: list[tuple[str, str, str]] = []
    for raw in items:
        whole = _map_one(raw, table, tiers)
        pieces = [raw] if whole is not None or "," not in raw else [p for p in raw.split(",") if p.strip()]
        for item in pieces:
            pair = whole if item is raw and whole is not None else _map_one(item, table, tiers)
            if pair is None:
                _bad_map_item(item, table, tiers)
            out.append((item, *pair))
    return out


def _bad_map_item(item: str, table: OutcomeTable, tiers: list[str]) -> NoReturn:
    left, sep, right = item.rpartition("=")
    left, right = left.strip(), right.strip()
    if not sep or not left or not right:
        raise UsageError(f"--map {item!r}: expected MODEL=TIER (or TIER=MODEL)")
    models = f"its models: {', '.join(table.models)}"
    known = f"the config's tiers: {', '.join(tiers)}"
    if left in table.models or right in table.models:
        bad = right if left in table.models else left
        raise UsageError(f"--map {item!r}: unknown tier {bad!r}", known)
    bad = right if left in tiers else left
    raise UsageError(f"--map {item!r}: the table has no model {bad!r}", models)


def _map_one(item: str, table: OutcomeTable, tiers: list[str]) -> tuple[str, str] | None:
    left, sep, right = item.rpartition("=")
    if sep and left.strip() in table.models and right.strip() in tiers:
        return left.strip(), right.strip()
    left, sep, right = item.partition("=")
    if sep and left.strip() in tiers and right.strip() in table.models:
        return right.strip(), left.strip()
    return None


def parse_map(items: list[str], table: OutcomeTable, tiers: list[str]) -> dict[str, str]:
    """--map MODEL=TIER or TIER=MODEL (repeatable, or comma-separated) -> {model: tier}; one model per tier."""
    if not items:
        raise UsageError(
            f"--map MODEL=TIER is needed: the table has model(s) {', '.join(table.models)}",
            f"the config's tiers, cheapest first: {', '.join(tiers)}",
        )
    mapping: dict[str, str] = {}
    for _item, model, tier in _map_items(items, table, tiers):
        if model in mapping and mapping[model] != tier:
            raise UsageError(f"--map: model {model!r} is mapped twice")
        if tier in mapping.values() and mapping.get(model) != tier:
            raise UsageError(f"--map: tier {tier!r} has two models", "map one table model per tier")
        mapping[model] = tier
    return mapping


def table_from_rows(rows: Iterable[tuple[str, str | None, str, Any, Any]], source: str = "ledger") -> OutcomeTable:
    """(task_id, task_type, tier, quality, cost_usd) rows -> a long-form table whose models are tiers
    (map each tier to itself). For the ledger's `tier run` history once it records outcomes."""
    table = OutcomeTable(source, "long", "rows", [], [], {}, group_column="task_type")
    table.columns = {"quality": "quality", "cost": "cost_usd", "task_type": "task_type"}
    models: dict[str, None] = {}
    for n, (task, task_type, tier, quality, cost) in enumerate(rows, start=1):
        where = f"{source} row {n}"
        try:
            q = parse_quality(quality)
            if q is None:
                raise ValueError("empty quality")
            c = _opt_float(cost, "cost_usd")
        except (ValueError, TypeError) as exc:
            raise InputError(f"{where}: bad value ({exc})") from None
        task, tier = str(task), str(tier)
        per_task = table.outcomes.setdefault(task, {})
        if tier in per_task:
            raise InputError(f"{where}: task {task!r} has a second outcome for tier {tier!r}")
        per_task[tier] = Outcome(q, c)
        _set_group(table, task, task_type, where)
        models.setdefault(tier, None)
        table.rows += 1
    table.models, table.task_ids = list(models), list(table.outcomes)
    if not table.task_ids:
        raise InputError(f"{source} has no rows")
    return table
