"""Record the local classifier's decisions on every non-holdout text, or check them against a record.

    python benchmarks/classify_same.py --save /tmp/before.json    # with the old code
    python benchmarks/classify_same.py --check /tmp/before.json   # with the new code: lists differences

Texts: every training item (corpus.training_items: the old corpora, the blind tune part, the written
items; never the holdout), each of them followed by another item's text (new word combinations and
two-part prompts, so caches start cold on words never seen together), the benchmark's 200-character
and 40 KB prompts. Per text: the rules' decision and the rules + model decision (task type, label,
confidence, reasons). A speed change must leave every one of them identical. Asserts nothing; the
exit status is 1 when --check finds a difference.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from classify import SHORT_PROMPT, long_prompt  # noqa: E402

from tiercli.classify import corpus, local  # noqa: E402


def texts() -> list[str]:
    items = corpus.training_items()
    if any(it.source in corpus.UNTOUCHED_SOURCES for it in items):
        raise SystemExit("refusing to use an untouched part (the blind holdout or blind2)")
    base = [it.text for it in items]
    n = len(base)
    pairs = [base[i] + "\n\n" + base[(7 * i + 3) % n] for i in range(n)]
    return base + pairs + [SHORT_PROMPT, long_prompt()]


def decisions() -> list[list]:
    out = []
    for t in texts():
        r, m = local.classify_rules(t), local.classify(t)
        out.append([r.task_type, r.label, r.confidence, list(r.reasons), m.task_type, m.label, m.confidence,
                    list(m.reasons)])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    g = ap.add_mutually_exclusive_group(required=True)
    g.add_argument("--save", metavar="FILE")
    g.add_argument("--check", metavar="FILE")
    args = ap.parse_args(argv)
    now = decisions()
    if args.save:
        pathlib.Path(args.save).write_text(json.dumps(now) + "\n", encoding="utf-8")
        print(f"{len(now)} decisions saved")
        return 0
    before = json.loads(pathlib.Path(args.check).read_text(encoding="utf-8"))
    diff = [i for i, (a, b) in enumerate(zip(before, now)) if a != b]
    if len(before) != len(now):
        print(f"different number of texts: {len(before)} recorded, {len(now)} now")
        return 1
    for i in diff[:10]:
        print(f"text {i}: {before[i]} -> {now[i]}")
    print(f"{len(now)} texts, {len(diff)} decisions differ")
    return 1 if diff else 0


if __name__ == "__main__":
    raise SystemExit(main())
