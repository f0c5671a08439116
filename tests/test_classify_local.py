"""The local (no-LLM) task classifier: corpus accuracy, specific cases, odd input, speed, imports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tiercli.classify.local import LocalClassification, classify, classify_rules
from tiercli.taxonomy import DEFAULT_TASK_TIERS, LABEL_OF_TASK_TYPE, LABELS, TASK_TYPES

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data"


def load(split: str) -> list[dict]:
    with open(DATA / f"tasks_{split}.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


TUNE = load("tune")
EVAL = load("eval")


def confusion(rows: list[dict]) -> tuple[Counter, float, float]:
    pairs: Counter = Counter()
    label_ok = type_ok = 0
    for r in rows:
        c = classify(r["task"])
        pairs[(r["label"], c.label)] += 1
        label_ok += c.label == r["label"]
        type_ok += c.task_type == r["task_type"]
    return pairs, label_ok / len(rows), type_ok / len(rows)


def assert_valid(c: LocalClassification) -> None:
    assert isinstance(c, LocalClassification)
    assert c.task_type in TASK_TYPES
    assert c.label in LABELS
    assert 0.0 <= c.confidence <= 1.0
    assert isinstance(c.reasons, tuple) and c.reasons and all(isinstance(r, str) and r for r in c.reasons)
    # the label is the taxonomy label of the type, except the documented safety hedge (LOW type -> MEDIUM)
    if c.label != LABEL_OF_TASK_TYPE[c.task_type]:
        assert LABEL_OF_TASK_TYPE[c.task_type] == "LOW" and c.label == "MEDIUM"
        assert any("hedged" in r for r in c.reasons)
        assert c.confidence <= 0.35


# --------------------------------------------------------------------------------------------------
# The corpus itself
# --------------------------------------------------------------------------------------------------

def test_corpus_shape():
    rows = TUNE + EVAL
    assert len(rows) >= 400
    ids = [r["id"] for r in rows]
    assert len(ids) == len(set(ids)), "ids must be unique across the splits"
    assert not {r["task"] for r in TUNE} & {r["task"] for r in EVAL}, "no task in both splits"
    for r in rows:
        assert set(r) == {"id", "task", "task_type", "label"}
        assert r["task_type"] in TASK_TYPES and r["label"] == LABEL_OF_TASK_TYPE[r["task_type"]]
    types = Counter(r["task_type"] for r in rows)
    assert set(types) == set(TASK_TYPES) and min(types.values()) >= 20
    labels = Counter(r["label"] for r in rows)
    assert 0.40 <= labels["LOW"] / len(rows) <= 0.55
    assert 0.30 <= labels["MEDIUM"] / len(rows) <= 0.45
    assert 0.10 <= labels["HIGH"] / len(rows) <= 0.18
    assert 0.55 <= len(TUNE) / len(rows) <= 0.65
    lengths = sorted(len(r["task"]) for r in rows)
    assert lengths[0] < 40 and sum(n > 2000 for n in lengths) >= 10 and sum(n > 30_000 for n in lengths) >= 3


# --------------------------------------------------------------------------------------------------
# Accuracy
# --------------------------------------------------------------------------------------------------

def test_tune_accuracy():
    _, label_acc, type_acc = confusion(TUNE)
    assert label_acc >= 0.9
    assert type_acc >= 0.85


def test_eval_accuracy_and_safety():
    pairs, label_acc, type_acc = confusion(EVAL)
    assert label_acc >= 0.9
    assert type_acc >= 0.85
    high = sum(v for (g, _), v in pairs.items() if g == "HIGH")
    assert pairs[("HIGH", "HIGH")] / high >= 0.95, "HIGH recall"
    assert pairs[("HIGH", "LOW")] == 0, "a HIGH task must never be labelled LOW"
    assert pairs[("LOW", "HIGH")] == 0, "a LOW task must never be labelled HIGH"


def test_no_high_eval_task_routed_to_tier1():
    for r in EVAL:
        if r["label"] == "HIGH":
            assert DEFAULT_TASK_TIERS[classify(r["task"]).task_type] != "tier1", r["id"]


def test_every_corpus_result_is_valid():
    for r in TUNE + EVAL:
        assert_valid(classify(r["task"]))


# --------------------------------------------------------------------------------------------------
# Specific cases: the instruction decides, pasted material is context
# --------------------------------------------------------------------------------------------------

TRACEBACK = """Traceback (most recent call last):
  File "/app/src/orders/api.py", line 88, in create_order
    total = compute_total(payload["items"], payload["currency"])
  File "/app/src/orders/pricing.py", line 41, in compute_total
    rate = RATES[currency]
KeyError: 'CHF'"""

DIFF = """diff --git a/app/cache.py b/app/cache.py
--- a/app/cache.py
+++ b/app/cache.py
@@ -1,4 +1,6 @@
-def get(key):
-    return _CACHE[key]
+def get(key, default=None):
+    # refactor the architecture of the cache later
+    return _CACHE.get(key, default)"""


def big_log(target: int = 40_000) -> str:
    lines, i = [], 0
    while sum(map(len, lines)) < target:
        lines.append(f"2024-06-11T09:{i % 60:02d}:{(i * 7) % 60:02d}Z ERROR [worker-{i % 8}] job {10000 + i} failed: "
                     f"design/architecture sync step refactor_all_modules raised")
        if i % 10 == 0:
            lines.extend(TRACEBACK.splitlines())
        i += 1
    return "\n".join(lines)


def test_traceback_then_fix_this_is_bug_fix():
    c = classify(TRACEBACK + "\n\nfix this")
    assert (c.task_type, c.label) == ("bug_fix", "MEDIUM")
    assert any("traceback" in r for r in c.reasons)


def test_40kb_log_then_fix_this_is_bug_fix_not_architecture():
    text = big_log() + "\n\nfix this"
    assert len(text) >= 40_000
    c = classify(text)
    assert (c.task_type, c.label) == ("bug_fix", "MEDIUM")
    assert any("pasted" in r and "lines" in r for r in c.reasons)


def test_40kb_prompt_with_the_ask_first():
    c = classify("where is the retry config for this worker defined?\n\n" + big_log())
    assert (c.task_type, c.label) == ("file_lookup", "LOW")


def test_40kb_single_line_of_data_does_not_blow_up():
    c = classify('{"rows": [' + ",".join(['{"id": 1, "name": "refactor architecture"}'] * 1200) + "]}")
    assert_valid(c)
    assert c.confidence <= 0.35


@pytest.mark.parametrize(
    ("text", "task_type"),
    [
        ("add a docstring to refactor_all_modules", "docstring"),
        ("Where is `fix_bug_report` defined?", "file_lookup"),
        ("write tests for design_architecture()", "test_gen"),
        ("rename the variable architecture_v2 to arch in this function", "reformat"),
        ("fix these flake8 warnings\n\nsrc/a.py:3:1: F401 'os' imported but unused", "reformat"),
        ("The docstring on merge_accounts is wrong, it says it returns a list. Fix the docstring.", "docstring"),
        ("Find the bug in this function\n\n```python\ndef f(x):\n    return x / 0\n```", "bug_fix"),
        ("search for why the login fails on safari only", "bug_fix"),
        (TRACEBACK + "\n\nwrite a test that reproduces this, don't fix it yet", "test_gen"),
        (TRACEBACK + "\n\nwhich file is this coming from? don't fix anything, just tell me where", "file_lookup"),
        ("this trace got mangled into one line, reformat it so it's readable: " + TRACEBACK.replace("\n", " "),
         "reformat"),
        ("review this diff\n\n" + DIFF, "code_review"),
        ("add docstrings to the new functions in this diff, nothing else\n\n" + DIFF, "docstring"),
        ("add a comment explaining the heap in schedule_jobs. no changes to the algorithm itself", "docstring"),
        ("find all usages of get_user_by_email", "search"),
        ("add sorting by date to the results table", "feature"),
        ("implement an interval tree with O(log n) overlap queries", "algorithm"),
        ("migrate every service in the monorepo from requests to httpx", "cross_refactor"),
        ("rename tmp to buffer in this function, nothing else", "reformat"),
        ("Should we use Kafka or RabbitMQ for the notification pipeline? Lay out the tradeoffs.", "architecture"),
        ("sort the imports in main.py", "reformat"),
        ("hide the save button while the upload is running", "feature"),
    ],
)
def test_misleading_surface_words(text, task_type):
    c = classify(text)
    assert_valid(c)
    assert c.task_type == task_type, c


def test_identifiers_are_not_instruction_words():
    plain = classify("add a docstring to this function")
    tricky = classify("add a docstring to refactor_all_modules_across_the_codebase")
    assert tricky.task_type == plain.task_type == "docstring"
    assert not any("refactor" in r for r in tricky.reasons)


def test_safety_hedge_never_low_for_high_looking_tasks():
    """The rules' own hedge (the learned model has its own, tested in test_classify_model.py)."""
    c = classify_rules("find all usages and migrate the sharding layer across every service")
    assert c.label != "LOW"
    c = classify_rules("where is the multi-region failover design doc")
    assert c.label != "LOW" or c.confidence <= 0.35


def test_big_words_in_a_lookup_do_not_make_it_high():
    """Blind-corpus lesson: a search or lookup about a hard topic is still a lookup."""
    for text in ("find all usages of the consistent hashing ring", "where does the raft leader election code live?"):
        c = classify(text)
        assert_valid(c)
        assert c.label == "LOW", c


@pytest.mark.parametrize(
    "text",
    ["", "   ", "?", "\n\n\n", "🙂🚀🔥", "これを修正してください", "корректно ли это?",
     "\x00\x01\x02", "§ § §", "x" * 50_000, "a\n" * 20_000, "```\n" + "code\n" * 3000, "```python\nprint(1)\n```"],
)
def test_odd_input_gives_a_valid_low_confidence_result(text):
    c = classify(text)
    assert_valid(c)
    assert c.confidence <= 0.35


def test_a_short_foreign_question_is_a_low_confidence_lookup():
    c = classify("¿dónde está la configuración?")
    assert_valid(c)
    assert c.confidence < 0.6  # below the hybrid threshold: hybrid asks the llm


def test_non_string_input_is_coerced():
    assert_valid(classify(12345))  # type: ignore[arg-type]


def test_confidence_is_higher_for_clear_asks():
    clear = classify("where is the database URL configured?")
    vague = classify("hmm, not sure, thoughts")
    assert clear.confidence >= 0.6 > vague.confidence


# --------------------------------------------------------------------------------------------------
# Determinism, speed, imports
# --------------------------------------------------------------------------------------------------

def test_deterministic_in_process():
    sample = [r["task"] for r in EVAL[:60]]
    first = [classify(t) for t in sample]
    for _ in range(3):
        assert [classify(t) for t in sample] == first


def test_deterministic_across_hash_seeds():
    code = ("import json, sys; from tiercli.classify.local import classify; "
            "rows = [json.loads(l) for l in open(sys.argv[1], encoding='utf-8')][:80]; "
            "print(json.dumps([[*map(str, (c.task_type, c.label, c.confidence)), list(c.reasons)] "
            "for c in map(classify, (r['task'] for r in rows))]))")
    outs = set()
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT / "src")}
        proc = subprocess.run([sys.executable, "-c", code, str(DATA / "tasks_eval.jsonl")], env=env,
                              capture_output=True, text=True, timeout=120, check=True)
        outs.add(proc.stdout)
    assert len(outs) == 1


def test_import_does_not_pull_litellm():
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-c", "import tiercli.classify.local, sys; assert 'litellm' not in sys.modules"],
                   env=env, check=True, timeout=60)


def test_import_compiles_no_regex_and_reads_no_weights():
    """Import stays cheap by construction (timings are the benchmark's job, not a test's): the rules'
    regexes compile on first use and the model file is read on the first decision."""
    code = (
        "import tiercli.classify.local as l, tiercli.classify.model as m, tiercli.classify.families as f\n"
        "slot = l._Lazy.__dict__['search']\n"
        "def compiled(rx):\n"
        "    try:\n"
        "        slot.__get__(rx, l._Lazy)\n"
        "        return True\n"
        "    except AttributeError:\n"
        "        return False\n"
        "assert not m._LOADED and f._rx.cache_info().currsize == 0\n"
        "assert not any(compiled(rx) for _, _, rx in l._RULES)\n"
        "l.classify('where is the config?')\n"
        "assert m._LOADED and any(compiled(rx) for _, _, rx in l._RULES)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=60)
