"""Benchmark the local (no-LLM) task classifier on the labelled corpora.

    python benchmarks/classify.py                  # every part, human-readable, with the baseline
    python benchmarks/classify.py --json           # the same figures as JSON
    python benchmarks/classify.py --part tune      # one part: holdout | blind2 | written-cf-holdout | written-gj-holdout | written-cf | written-gj | tune | old-eval | old-tune
    python benchmarks/classify.py --part tune --errors   # misclassified items (refused for the untouched parts)
    python benchmarks/classify.py --rules-only     # the rules without the learned model
    python benchmarks/classify.py --save-baseline  # record the current figures as the baseline
    python benchmarks/classify.py --against 7875cc3  # also time the pre-issue-15 classifier side by side

Parts: the blind corpus (tests/data/blind, written from the taxonomy alone, frozen before tuning)
split by a hash of the id into `tune` (60%, may be trained and tuned on) and `holdout` (40%, never
looked at item by item, never trained or tuned on: only these aggregate figures); and the rules
author's own corpora (tests/data/tasks_eval.jsonl, tasks_tune.jsonl); and `blind2` (tests/data/blind2,
a second blind corpus by two other writers, issue 15's fourth round), all of it untouched like the holdout.

Per part: label accuracy, HIGH recall, the 3x3 label confusion matrix, HIGH<->LOW crossings,
per-task-type accuracy (of the label, and of the type), calibration bins (confidence vs accuracy) and
the accuracy above routing's hybrid_threshold (the hybrid classifier trusts the local answer there).
Then decision latency p50/p99 at 200 characters and 40 KB, and the import + first-decision time in a
fresh interpreter. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
try:
    import tiercli  # noqa: F401
except ImportError:  # not pip-installed: use the source tree
    sys.path.insert(0, str(ROOT / "src"))

from tiercli.classify import corpus  # noqa: E402
from tiercli.classify.local import classify, classify_rules  # noqa: E402
from tiercli.taxonomy import DEFAULT_TASK_TIERS, LABELS, TASK_TYPES  # noqa: E402

BASELINE = ROOT / "benchmarks" / "classify_baseline.json"
PARTS = ("holdout", "blind2", "written-cf-holdout", "written-gj-holdout", "written-cf", "written-gj", "tune", "old-eval",
         "old-tune")
UNTOUCHED_PARTS = ("holdout", "blind2", "written-cf-holdout", "written-gj-holdout")  # aggregate figures only
HYBRID_THRESHOLD = 0.6  # routing.hybrid_threshold's default (config.py)
BINS = (0.0, 0.2, 0.4, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0001)

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


def load(part: str) -> list[corpus.Item]:
    if part in ("holdout", "tune"):
        return corpus.blind(part)
    if part == "blind2":
        return corpus.blind2()
    if part == "written-cf":
        return corpus.taxonomy_written("tune")
    if part == "written-cf-holdout":
        return corpus.taxonomy_written("holdout")
    if part == "written-gj":
        return corpus.taxonomy_written2("tune")
    if part == "written-gj-holdout":
        return corpus.taxonomy_written2("holdout")
    return corpus.old(part.removeprefix("old-"))


def latency(fn, text: str, n: int) -> dict:
    """Wall-clock p50/p99 and the p50 of the thread's CPU time (the latter is what a busy machine,
    where other processes take the cores, does not inflate)."""
    fn(text)  # warm-up (lazy regex compilation, model file)
    wall, cpu = [], []
    for _ in range(n):
        w, c = time.perf_counter(), time.thread_time()
        fn(text)
        cpu.append(time.thread_time() - c)
        wall.append(time.perf_counter() - w)
    wall.sort()
    cpu.sort()
    return {"chars": len(text), "iterations": n, "p50_ms": round(wall[n // 2] * 1000, 3),
            "p99_ms": round(wall[min(n - 1, int(n * 0.99))] * 1000, 3), "cpu_p50_ms": round(cpu[n // 2] * 1000, 3)}


def side_by_side(rev: str, rounds: int) -> dict:
    """CPU p50 of the local classifier at git revision `rev` (its local.py, loaded from git), the rules
    now and rules + model, interleaved in one process so machine load hits all three alike."""
    import importlib.util
    import tempfile

    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/tiercli/classify/local.py"],
                         capture_output=True, text=True, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location("tier_local_at_rev", fh.name)
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old  # dataclasses look their module up
    spec.loader.exec_module(old)
    pathlib.Path(fh.name).unlink()
    fns = {f"rules at {rev}": old.classify, "rules now": classify_rules, "rules + model": classify}
    texts = {"prompt_200_chars": SHORT_PROMPT, "prompt_40_kb": long_prompt()}
    times: dict = {k: {t: [] for t in texts} for k in fns}
    for f in fns.values():
        for text in texts.values():
            f(text)
    for i in range(rounds):
        for name, f in fns.items():
            for tname, text in texts.items():
                if tname == "prompt_40_kb" and i % 5:
                    continue
                c = time.thread_time()
                f(text)
                times[name][tname].append(time.thread_time() - c)
    return {name: {t: round(sorted(v)[len(v) // 2] * 1000, 3) for t, v in per.items()} for name, per in times.items()}


def cold_start_ms(rules_only: bool) -> dict | None:
    """Median over 5 fresh interpreters: `import tiercli.classify.local` and the first decision."""
    fn = "classify_rules" if rules_only else "classify"
    code = ("import time, sys; sys.path.insert(0, %r); t = time.perf_counter(); import tiercli.classify.local as m; "
            "t1 = time.perf_counter(); m.%s('where is the retry config defined?'); t2 = time.perf_counter(); "
            "print((t1 - t) * 1000, (t2 - t1) * 1000)" % (str(ROOT / "src"), fn))
    try:
        runs = [tuple(map(float, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                check=True, timeout=60).stdout.split())) for _ in range(5)]
    except (subprocess.SubprocessError, ValueError):
        return None
    return {"import_ms": round(statistics.median(r[0] for r in runs), 1),
            "first_decision_ms": round(statistics.median(r[1] for r in runs), 1)}


def evaluate(items: list[corpus.Item], fn) -> tuple[dict, list[dict]]:
    conf = {g: {p: 0 for p in LABELS} for g in LABELS}
    per_type = {t: [0, 0, 0] for t in TASK_TYPES}  # n, label ok, type ok
    high_to_tier1 = 0
    errors, points = [], []
    for it in items:
        c = fn(it.text)
        conf[it.label][c.label] += 1
        pt = per_type.setdefault(it.task_type, [0, 0, 0])
        pt[0] += 1
        pt[1] += c.label == it.label
        pt[2] += c.task_type == it.task_type
        if it.label == "HIGH" and DEFAULT_TASK_TIERS.get(c.task_type) == "tier1":
            high_to_tier1 += 1
        points.append((c.confidence, c.label == it.label))
        if c.label != it.label or c.task_type != it.task_type:
            text = it.text if len(it.text) < 300 else it.text[:200] + " ... " + it.text[-80:]
            errors.append({"id": it.id, "gold": f"{it.task_type}/{it.label}", "pred": f"{c.task_type}/{c.label}",
                           "confidence": c.confidence, "reasons": list(c.reasons), "text": text})
    n = len(items)
    high = sum(conf["HIGH"].values())
    bins = []
    for lo, hi in zip(BINS, BINS[1:]):
        sel = [ok for cf, ok in points if lo <= cf < hi]
        bins.append({"from": lo, "to": min(hi, 1.0), "n": len(sel),
                     "accuracy": round(sum(sel) / len(sel), 3) if sel else None})
    above = [ok for cf, ok in points if cf >= HYBRID_THRESHOLD]
    res = {
        "items": n,
        "label_accuracy": round(sum(conf[g][g] for g in LABELS) / n, 3) if n else None,
        "high_recall": round(conf["HIGH"]["HIGH"] / high, 3) if high else None,
        "confusion": {"rows=gold, cols=pred": list(LABELS), **{g: [conf[g][p] for p in LABELS] for g in LABELS}},
        "high_to_low": conf["HIGH"]["LOW"],
        "low_to_high": conf["LOW"]["HIGH"],
        "high_tasks_routed_to_tier1": high_to_tier1,
        "task_type_accuracy": round(sum(v[2] for v in per_type.values()) / n, 3) if n else None,
        "per_type": {t: {"n": v[0], "label_accuracy": round(v[1] / v[0], 3) if v[0] else None,
                         "type_accuracy": round(v[2] / v[0], 3) if v[0] else None} for t, v in per_type.items()},
        "calibration": bins,
        "above_hybrid_threshold": {"threshold": HYBRID_THRESHOLD, "share": round(len(above) / n, 3) if n else None,
                                   "accuracy": round(sum(above) / len(above), 3) if above else None},
    }
    return res, errors


def print_part(name: str, res: dict, base: dict | None) -> None:
    def vs(key: str) -> str:
        if not base or base.get(key) is None:
            return ""
        return f"   (baseline {base[key]:.3f})"

    print(f"\n== {name}: {res['items']} items")
    if not res["items"]:
        return
    print(f"  label accuracy        {res['label_accuracy']:.3f}{vs('label_accuracy')}")
    hr = res["high_recall"]
    print(f"  HIGH recall           {'-' if hr is None else f'{hr:.3f}'}{vs('high_recall')}")
    print(f"  task-type accuracy    {res['task_type_accuracy']:.3f}{vs('task_type_accuracy')}")
    print(f"  HIGH->LOW {res['high_to_low']}   LOW->HIGH {res['low_to_high']}   HIGH tasks -> tier1 "
          f"{res['high_tasks_routed_to_tier1']}" + (f"   (baseline {base['high_to_low']} / {base['low_to_high']})"
                                                     if base else ""))
    print("  confusion (rows gold, cols predicted)" + ("        baseline" if base else ""))
    print("              " + "".join(f"{p:>8}" for p in LABELS))
    for g in LABELS:
        line = f"    {g:<8}  " + "".join(f"{v:8d}" for v in res["confusion"][g])
        if base:
            line += "     " + " ".join(f"{v:4d}" for v in base["confusion"][g])
        print(line)
    print("  per task type         n   label   type")
    for t, v in res["per_type"].items():
        if v["n"]:
            print(f"    {t:<16} {v['n']:4d}   {v['label_accuracy']:.3f}  {v['type_accuracy']:.3f}")
    print("  calibration (confidence bin: items, label accuracy)")
    for b in res["calibration"]:
        acc = "-" if b["accuracy"] is None else f"{b['accuracy']:.3f}"
        print(f"    [{b['from']:.2f}, {b['to']:.2f})  {b['n']:4d}  {acc}")
    a = res["above_hybrid_threshold"]
    ba = base["above_hybrid_threshold"] if base else None
    print(f"  confidence >= {a['threshold']}: {a['share']:.3f} of items, accuracy {a['accuracy']}"
          + (f"   (baseline {ba['share']:.3f}, {ba['accuracy']})" if ba else ""))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--part", choices=PARTS, action="append", help="one part (repeatable); default: all")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON")
    ap.add_argument("--errors", action="store_true", help="also list misclassified items (not for the holdout)")
    ap.add_argument("--rules-only", action="store_true", help="the rules without the learned model")
    ap.add_argument("--iterations", type=int, default=300, help="timed calls per latency figure")
    ap.add_argument("--save-baseline", action="store_true", help=f"write the figures to {BASELINE.name}")
    ap.add_argument("--against", metavar="REV", help="also time the classifier of git revision REV side by side "
                                                     "(CPU p50), e.g. 7875cc3, the last commit before issue 15")
    args = ap.parse_args(argv)
    parts = args.part or list(PARTS)
    if args.errors and set(parts) & set(UNTOUCHED_PARTS):
        ap.error(f"--errors lists items one by one: not for the untouched parts ({', '.join(UNTOUCHED_PARTS)}); "
                 f"use --part {'/'.join(p for p in PARTS if p not in UNTOUCHED_PARTS)}")
    fn = classify_rules if args.rules_only else classify

    baseline = json.loads(BASELINE.read_text()) if BASELINE.exists() and not args.save_baseline else {}
    out: dict = {"classifier": "rules only" if args.rules_only else "rules + learned model", "parts": {}}
    all_errors = {}
    for part in parts:
        items = load(part)
        if not items:
            continue
        res, errors = evaluate(items, fn)
        out["parts"][part] = res
        all_errors[part] = errors
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out["latency"] = {"prompt_200_chars": latency(fn, SHORT_PROMPT, args.iterations),
                      "prompt_40_kb": latency(fn, long_prompt(), max(20, args.iterations // 5))}
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    out["load_average_1min"] = {"before": load_before, "after": load_after, "cores": os.cpu_count()}
    out["cold_start"] = cold_start_ms(args.rules_only)
    if args.against:
        out["side_by_side_cpu_p50_ms"] = side_by_side(args.against, args.iterations)
    if args.save_baseline:
        BASELINE.write_text(json.dumps({k: v for k, v in out["parts"].items()} | {
            "latency": out["latency"], "cold_start": out["cold_start"], "classifier": out["classifier"]},
            indent=1) + "\n")
    if args.errors:
        out["errors"] = all_errors
    if args.json:
        if baseline:
            out["baseline"] = baseline
        print(json.dumps(out, indent=2))
        return 0
    print(f"local classifier: {out['classifier']}" + ("; baseline = " + baseline.get("classifier", "?") +
                                                      " before issue 15" if baseline else ""))
    for part, res in out["parts"].items():
        print_part(part, res, baseline.get(part))
    print()
    for name, lat in out["latency"].items():
        bl = baseline.get("latency", {}).get(name)
        print(f"  latency {name:<18} p50 {lat['p50_ms']:.3f} ms  p99 {lat['p99_ms']:.3f} ms  CPU p50 "
              f"{lat.get('cpu_p50_ms', float('nan')):.3f} ms  ({lat['chars']} chars)"
              + (f"   (baseline p50 {bl['p50_ms']:.3f} ms)" if bl else ""))
    la = out["load_average_1min"]
    if la["before"] is not None:
        print(f"  (1-minute load average {la['before']:.2f} before and {la['after']:.2f} after the timing, "
              f"{la['cores']} cores)")
    if not args.rules_only:
        out_rules = {"prompt_200_chars": latency(classify_rules, SHORT_PROMPT, args.iterations),
                     "prompt_40_kb": latency(classify_rules, long_prompt(), max(20, args.iterations // 5))}
        for name, lat in out_rules.items():
            print(f"  (rules alone, same run) {name:<18} p50 {lat['p50_ms']:.3f} ms  CPU p50 {lat['cpu_p50_ms']:.3f} ms")
    for name, per in out.get("side_by_side_cpu_p50_ms", {}).items():
        print(f"  side by side, CPU p50: {name:<22} {per['prompt_200_chars']:.3f} ms at 200 chars, "
              f"{per['prompt_40_kb']:.3f} ms at 40 KB")
    cs = out["cold_start"]
    if cs:
        print(f"  fresh interpreter: import {cs['import_ms']} ms, first decision {cs['first_decision_ms']} ms")
    if args.errors:
        for part, errors in all_errors.items():
            print(f"\n  errors in {part} ({len(errors)}):")
            for e in errors:
                print(f"    {e['id']} gold={e['gold']} pred={e['pred']} conf={e['confidence']}")
                print(f"      {e['text']!r}")
                print(f"      {e['reasons']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
