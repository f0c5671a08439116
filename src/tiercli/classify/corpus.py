"""The labelled corpora the local classifier is trained and measured on (repository files, not shipped data).

- tests/data/tasks_tune.jsonl, tasks_eval.jsonl: written by the author of the rules (make_corpus.py).
- tests/data/blind/corpus.jsonl, claude_code.jsonl: written and labelled from the taxonomy table alone
  by someone who never saw the rules, frozen before any tuning. Split by a hash of the id:
  `blind_part(id)` is "tune" for 60% of the ids and "holdout" for the rest. The holdout part is never
  read item by item, never trained or tuned on; only its aggregate figures are computed.
- tests/data/blind2/corpus.jsonl: a second blind corpus, written the same way by two other writers in the
  fourth round of issue 15 and frozen before that round's changes were merged. All of it is untouched:
  no part is ever read item by item, trained or tuned on (`blind2()`, source "blind2").
- tests/data/taxonomy_written/corpus_[C-F].jsonl: prompts by four more writers briefed the same way
  (taxonomy only), minus near-copies of any evaluation item (`taxonomy_written()`): split by the same
  hash into a tune half (source "written-cf", trained on since the sixth round) and an untouched holdout
  half ("written-cf-holdout").
- tests/data/taxonomy_written2/corpus_[G-J].jsonl: four writers of the sixth round, each with another
  emphasis (brief.md there), split the same way ("written-gj" trained on, "written-gj-holdout" untouched).
- tests/data/taxonomy_written3/corpus_[K-V].jsonl: twelve more writers of the sixth round, aimed at the
  weaknesses writers G-J's tune half showed; all training ("written-kv").
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data"
BLIND = DATA / "blind"
BLIND_FILES = ("corpus.jsonl", "claude_code.jsonl")
BLIND2 = DATA / "blind2"
TAXONOMY_WRITTEN = DATA / "taxonomy_written"
TAXONOMY_WRITTEN2 = DATA / "taxonomy_written2"
TAXONOMY_WRITTEN3 = DATA / "taxonomy_written3"
UNTOUCHED_SOURCES = frozenset({"blind-holdout", "blind2", "written-cf-holdout", "written-gj-holdout"})  # measured only, never trained or tuned on
SPLIT_SALT = "tiercli-blind-split-v1:"
TUNE_PERCENT = 60
WRITTEN_FILE = "tasks_families_written.jsonl"


@dataclass(frozen=True)
class Item:
    id: str
    text: str
    task_type: str
    label: str
    source: str  # old-tune | old-eval | blind-tune | blind-holdout | blind2 | written-cf | written-cf-holdout | written
    style: str = ""


def blind_part(item_id: str) -> str:
    """'tune' or 'holdout': sha256(salt + id), first 8 hex digits as an integer, mod 100 < 60 -> tune."""
    h = int(hashlib.sha256((SPLIT_SALT + item_id).encode("utf-8")).hexdigest()[:8], 16)
    return "tune" if h % 100 < TUNE_PERCENT else "holdout"


def _read(path: Path) -> list[dict]:
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def old(split: str, data: Path = DATA) -> list[Item]:
    return [Item(r["id"], r["task"], r["task_type"], r["label"], f"old-{split}")
            for r in _read(data / f"tasks_{split}.jsonl")]


def blind(part: str, blind_dir: Path = BLIND) -> list[Item]:
    """The blind items of one part ('tune' or 'holdout'); ids are prefixed by their file when they clash."""
    items: list[Item] = []
    for name in BLIND_FILES:
        path = blind_dir / name
        if not path.exists():
            continue
        for r in _read(path):
            rid = str(r["id"])
            if blind_part(rid) == part:
                items.append(Item(rid, r["text"], r["task_type"], r["label"], f"blind-{part}", r.get("style", "")))
    return items


def blind2(blind2_dir: Path = BLIND2) -> list[Item]:
    """The second blind corpus, whole: every item is untouched (measured only, by benchmarks/classify.py)."""
    path = blind2_dir / "corpus.jsonl"
    if not path.exists():
        return []
    return [Item(str(r["id"]), r["text"], r["task_type"], r["label"], "blind2", r.get("style", "")) for r in _read(path)]


def taxonomy_written(part: str | None = None, folder: Path = TAXONOMY_WRITTEN, source: str = "written-cf") -> list[Item]:
    """Prompts written from the taxonomy alone by writers C-F (issue 15, fourth round; `source`
    "written-cf") or G-J (sixth round: taxonomy_written2(), "written-gj"). Split by the same hash as the
    blind corpus: 'tune' (trained on; rules may be tuned on its misses) and 'holdout' (untouched,
    aggregate figures only); None: both."""
    items = []
    for path in sorted(folder.glob("corpus_*.jsonl")):
        for r in _read(path):
            rid = str(r["id"])
            half = blind_part(rid)
            if part is None or half == part:
                name = source if half == "tune" else f"{source}-holdout"
                items.append(Item(rid, r["text"], r["task_type"], r["label"], name, r.get("style", "")))
    return items


def taxonomy_written2(part: str | None = None, folder: Path = TAXONOMY_WRITTEN2) -> list[Item]:
    """Writers G-J's prompts (issue 15, sixth round), split like taxonomy_written's."""
    return taxonomy_written(part, folder, "written-gj")


def taxonomy_written3(folder: Path = TAXONOMY_WRITTEN3) -> list[Item]:
    """Writers K-V's prompts (issue 15, sixth round): training data, all of it (source "written-kv")."""
    return [Item(str(r["id"]), r["text"], r["task_type"], r["label"], "written-kv", r.get("style", ""))
            for path in sorted(folder.glob("corpus_*.jsonl")) for r in _read(path)]


def written(data: Path = DATA) -> list[Item]:
    """Training items written for the issue's phrasing families from the issue text (WRITTEN_FILE)."""
    path = data / WRITTEN_FILE
    if not path.exists():
        return []
    return [Item(r["id"], r["text"], r["task_type"], r["label"], "written", r.get("style", "")) for r in _read(path)]


def training_items(data: Path = DATA, *, written_items: bool = True) -> list[Item]:
    """What the model may learn from: the old corpora, the blind tune part, the items written for the
    issue's families, the tune halves of writers C-F and G-J and all of writers K-V. Never a holdout or
    blind2."""
    extra = written(data) if written_items else []
    writers = (taxonomy_written("tune", data / "taxonomy_written") + taxonomy_written2("tune", data / "taxonomy_written2")
               + taxonomy_written3(data / "taxonomy_written3"))
    return old("tune", data) + old("eval", data) + blind("tune", data / "blind") + extra + writers
