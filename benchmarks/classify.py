"""Benchmark the local (no-LLM) task classifier on the labelled corpus.

    python benchmarks/classify.py              # eval split, human-readable
    python benchmarks/classify.py --json       # the same figures as JSON
    python benchmarks/classify.py --split tune # the tuning split instead
    python benchmarks/classify.py --errors     # also list the misclassified tasks

Prints figures and asserts nothing: label accuracy, per-label precision/recall, the 3x3 label
confusion matrix, task-type accuracy, how many HIGH tasks would be routed to tier1 (through
taxonomy.DEFAULT_TASK_TIERS on the predicted type), confidence vs. accuracy (the hybrid classifier
trusts the local answer above its threshold), and decision latency p50/p99 for a 200-character and a
40 KB prompt.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import subprocess
import sys
import timeit

ROOT = pathlib.Path(__file__).resolve().parents[1]
try:
    import tiercli  # noqa: F401
except ImportError:  # not pip-installed: use the source tree
    sys.path.insert(0, str(ROOT / "src"))

from tiercli.classify.local import classify  # noqa: E402
from tiercli.taxonomy import DEFAULT_TASK_TIERS, LABELS, TASK_TYPES  # noqa: E402

DATA = ROOT / "tests" / "data"

SHORT_PROMPT = ("The login endpoint returns a 500 when the email address contains a plus sign; the traceback points "
                "at the user lookup in auth/views.py. Can you find the cause and fix it, and add a regression test? ty")


def long_prompt(target: int = 40_000) -> str:
    """About 40 KB: a pasted worker log with tracebacks, then a short ask."""
    block = (
        "2024-06-11T09:{m:02d}:{s:02d}.{ms:03d}Z WARNING [worker-{w}] retrying job id={j} attempt={a}/5 after "
        "ConnectionError\n"
        "2024-06-11T09:{m:02d}:{s:02d}.{ms:03d}Z ERROR   [worker-{w}] job id={j} failed\n"
        "Traceback (most recent call last):\n"
        '  File "/app/jobs/sync.py", line 19, in execute\n'
        "    self.client.push(batch)\n"
        '  File "/app/clients/crm.py", line 88, in push\n'
        "    resp.raise_for_status()\n"
        "requests.exceptions.HTTPError: 429 Client Error: Too Many Requests for url: https://crm.example.com/api\n"
    )
    parts, i = ["the sync workers are spamming this since the deploy:\n\n"], 0
    while sum(map(len, parts)) < target:
        parts.append(block.format(m=i % 60, s=(i * 7) % 60, ms=(i * 37) % 1000, w=i % 8 + 1, j=10000 + i, a=i % 5 + 1))
        i += 1
    parts.append("\nfix this please")
    return "".join(parts)


def load(split: str) -> list[dict]:
    path = DATA / f"tasks_{split}.jsonl"
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def latency(text: str, n: int) -> dict:
    classify(text)  # warm-up (lazy regex compilation)
    times = timeit.Timer(lambda: classify(text)).repeat(repeat=n, number=1)
    times.sort()
    return {"chars": len(text), "iterations": n, "p50_ms": round(times[len(times) // 2] * 1000, 3),
            "p99_ms": round(times[min(len(times) - 1, int(len(times) * 0.99))] * 1000, 3),
            "mean_ms": round(statistics.fmean(times) * 1000, 3)}


def import_ms() -> float | None:
    """Wall time of `import tiercli.classify.local` in a fresh interpreter (includes the package __init__)."""
    code = ("import time, sys; sys.path.insert(0, %r); t = time.perf_counter(); import tiercli.classify.local; "
            "print((time.perf_counter() - t) * 1000)" % str(ROOT / "src"))
    try:
        runs = [float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                                     timeout=60).stdout) for _ in range(5)]
    except (subprocess.SubprocessError, ValueError):
        return None
    return round(statistics.median(runs), 1)


def evaluate(rows: list[dict]) -> tuple[dict, list[dict]]:
    conf = {g: {p: 0 for p in LABELS} for g in LABELS}
    type_ok = 0
    high_to_tier1 = 0
    errors = []
    by_conf = []
    for r in rows:
        c = classify(r["task"])
        conf[r["label"]][c.label] += 1
        type_ok += c.task_type == r["task_type"]
        if r["label"] == "HIGH" and DEFAULT_TASK_TIERS[c.task_type] == "tier1":
            high_to_tier1 += 1
        by_conf.append((c.confidence, c.label == r["label"]))
        if c.label != r["label"] or c.task_type != r["task_type"]:
            errors.append({"id": r["id"], "gold": f'{r["task_type"]}/{r["label"]}', "pred": f"{c.task_type}/{c.label}",
                           "confidence": c.confidence, "reasons": list(c.reasons),
                           "task": r["task"] if len(r["task"]) < 300 else r["task"][:200] + " ... " + r["task"][-80:]})
    n = len(rows)
    per_label = {}
    for lab in LABELS:
        tp = conf[lab][lab]
        pred = sum(conf[g][lab] for g in LABELS)
        gold = sum(conf[lab].values())
        per_label[lab] = {"precision": round(tp / pred, 3) if pred else None,
                          "recall": round(tp / gold, 3) if gold else None, "support": gold}
    hi = [ok for c, ok in by_conf if c >= 0.6]
    lo = [ok for c, ok in by_conf if c < 0.6]
    res = {
        "tasks": n,
        "label_accuracy": round(sum(conf[g][g] for g in LABELS) / n, 3),
        "per_label": per_label,
        "confusion": {"rows=gold, cols=pred": list(LABELS), **{g: [conf[g][p] for p in LABELS] for g in LABELS}},
        "task_type_accuracy": round(type_ok / n, 3),
        "high_to_low": conf["HIGH"]["LOW"],
        "low_to_high": conf["LOW"]["HIGH"],
        "high_tasks_routed_to_tier1": high_to_tier1,
        "confidence": {"share_ge_0.6": round(len(hi) / n, 3),
                       "accuracy_ge_0.6": round(sum(hi) / len(hi), 3) if hi else None,
                       "accuracy_lt_0.6": round(sum(lo) / len(lo), 3) if lo else None},
        "type_counts": {t: sum(1 for r in rows if r["task_type"] == t) for t in TASK_TYPES},
    }
    return res, errors


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--split", default="eval", choices=("eval", "tune"))
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--errors", action="store_true", help="also list misclassified tasks")
    ap.add_argument("--iterations", type=int, default=500, help="timed calls per latency figure")
    args = ap.parse_args(argv)

    res, errors = evaluate(load(args.split))
    res["split"] = args.split
    res["latency"] = {"prompt_200_chars": latency(SHORT_PROMPT, args.iterations),
                      "prompt_40_kb": latency(long_prompt(), args.iterations)}
    res["import_ms_with_package"] = import_ms()
    if args.errors:
        res["errors"] = errors
    if args.json:
        print(json.dumps(res, indent=2))
        return 0

    print(f"local classifier on the {args.split} split ({res['tasks']} tasks)")
    print(f"  label accuracy        {res['label_accuracy']:.3f}")
    print(f"  task-type accuracy    {res['task_type_accuracy']:.3f}")
    print("  per label             precision  recall  support")
    for lab in LABELS:
        pl = res["per_label"][lab]
        fmt = lambda v: "   -  " if v is None else f"{v:6.3f}"  # noqa: E731
        print(f"    {lab:<8}            {fmt(pl['precision'])}    {fmt(pl['recall'])}  {pl['support']:5d}")
    print("  confusion (rows gold, cols predicted)")
    print("              " + "".join(f"{p:>8}" for p in LABELS))
    for g in LABELS:
        print(f"    {g:<8}  " + "".join(f"{v:8d}" for v in res["confusion"][g]))
    print(f"  HIGH -> LOW           {res['high_to_low']}")
    print(f"  LOW -> HIGH           {res['low_to_high']}")
    print(f"  HIGH tasks -> tier1   {res['high_tasks_routed_to_tier1']}")
    c = res["confidence"]
    print(f"  confidence >= 0.6     {c['share_ge_0.6']:.3f} of tasks, accuracy {c['accuracy_ge_0.6']} "
          f"(below: {c['accuracy_lt_0.6']})")
    for name, lat in res["latency"].items():
        print(f"  latency {name:<18} p50 {lat['p50_ms']:.3f} ms  p99 {lat['p99_ms']:.3f} ms  "
              f"({lat['chars']} chars, {lat['iterations']} calls)")
    print(f"  import (fresh interpreter, incl. package __init__)  {res['import_ms_with_package']} ms")
    if args.errors:
        print(f"  errors ({len(errors)}):")
        for e in errors:
            print(f"    {e['id']} gold={e['gold']} pred={e['pred']} conf={e['confidence']}")
            print(f"      {e['task']!r}")
            print(f"      {e['reasons']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
