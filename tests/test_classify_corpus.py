"""The classifier's corpora: the rules author's corpus regenerates byte for byte; the blind corpus is
frozen and split by a hash of the id; nothing trains on its holdout part."""

from __future__ import annotations

import hashlib
import importlib.util
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tiercli import taxonomy
from tiercli.classify import corpus

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def test_make_corpus_regenerates_the_committed_corpus_byte_for_byte(tmp_path):
    proc = subprocess.run([sys.executable, str(DATA / "make_corpus.py"), "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for name in ("tasks_tune.jsonl", "tasks_eval.jsonl"):
        assert (tmp_path / name).read_bytes() == (DATA / name).read_bytes(), name


def test_make_corpus_labels_come_from_the_taxonomy():
    spec = importlib.util.spec_from_file_location("make_corpus", DATA / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.LABEL_OF_TASK_TYPE is taxonomy.LABEL_OF_TASK_TYPE
    for it in corpus.old("tune") + corpus.old("eval"):
        assert it.label == taxonomy.LABEL_OF_TASK_TYPE[it.task_type]


def test_the_blind_corpus_is_the_frozen_one():
    """The README records the sha256 of the files as committed before tuning; any edit shows here."""
    readme = (DATA / "blind" / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"sha256 ([0-9a-f]{8})\.\.\.([0-9a-f]{5}) and\s+([0-9a-f]{8})\.\.\.([0-9a-f]{3})", readme)
    assert recorded, "the README must record the frozen files' hashes"
    for name, head, tail in (("corpus.jsonl", recorded[1], recorded[2]), ("claude_code.jsonl", recorded[3], recorded[4])):
        digest = hashlib.sha256((DATA / "blind" / name).read_bytes()).hexdigest()
        assert digest.startswith(head) and digest.endswith(tail), name


def test_blind_items_are_well_formed():
    items = corpus.blind("tune") + corpus.blind("holdout")
    assert len(items) >= 660
    assert len({it.id for it in items}) == len(items)
    for it in items:
        assert it.task_type in taxonomy.TASK_TYPES and it.label == taxonomy.LABEL_OF_TASK_TYPE[it.task_type]
        assert it.text.strip()


def test_split_is_a_deterministic_hash_of_the_id():
    tune, holdout = corpus.blind("tune"), corpus.blind("holdout")
    assert not {it.id for it in tune} & {it.id for it in holdout}
    share = len(tune) / (len(tune) + len(holdout))
    assert 0.55 <= share <= 0.65
    for it in tune[:50] + holdout[:50]:
        h = int(hashlib.sha256(("tiercli-blind-split-v1:" + it.id).encode()).hexdigest()[:8], 16)
        assert corpus.blind_part(it.id) == ("tune" if h % 100 < 60 else "holdout")
    # every label is in both parts
    assert set(Counter(it.label for it in holdout)) == set(taxonomy.LABELS)


def test_training_never_sees_the_holdout():
    holdout_ids = {it.id for it in corpus.blind("holdout")}
    holdout_texts = {it.text for it in corpus.blind("holdout")}
    items = corpus.training_items()
    assert not any(it.source == "blind-holdout" for it in items)
    assert not {it.id for it in items if it.source.startswith("blind")} & holdout_ids
    assert not {it.text for it in items} & holdout_texts


def test_training_never_sees_the_second_blind_corpus():
    """blind2 is untouched whole: neither its ids nor its texts reach training or cross-validation."""
    blind2 = corpus.blind2()
    items = corpus.training_items()
    assert not any(it.source in corpus.UNTOUCHED_SOURCES for it in items)
    assert not {it.text for it in items} & {it.text for it in blind2}
    assert all(it.source == "blind2" and it.label == taxonomy.LABEL_OF_TASK_TYPE[it.task_type] for it in blind2)


def test_the_second_blind_corpus_is_the_frozen_one():
    readme = (DATA / "blind2" / "README.md").read_text(encoding="utf-8")
    recorded = re.search(r"sha256 ([0-9a-f]{64})", readme)
    assert recorded, "the README must record the frozen file's hash"
    assert hashlib.sha256((DATA / "blind2" / "corpus.jsonl").read_bytes()).hexdigest() == recorded[1]
    assert len(corpus.blind2()) == 582


@pytest.mark.parametrize("load, n, source", [(corpus.taxonomy_written, 1028, "written-cf"),
                                              (corpus.taxonomy_written2, 1124, "written-gj")])
def test_taxonomy_writers_tune_half_trains_and_holdout_half_is_untouched(load, n, source):
    """Writers C-F's and G-J's tune halves are training data; their holdout halves are untouched like blind2."""
    every = load()
    tune, holdout = load("tune"), load("holdout")
    assert len(every) == len(tune) + len(holdout) == n and tune and holdout
    assert {it.source for it in holdout} == {f"{source}-holdout"} <= corpus.UNTOUCHED_SOURCES
    assert {it.source for it in tune} == {source}
    trained = {it.text for it in corpus.training_items()}
    assert {it.text for it in tune} <= trained
    assert not trained & {it.text for it in holdout}
