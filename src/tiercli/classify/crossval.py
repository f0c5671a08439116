"""Choosing the model's settings by k-fold cross-validation on the taxonomy writers' prompts (offline tool).

    python -m tiercli.classify.crossval --rules-at 7875cc3        # the honest proxy (see below)
    python -m tiercli.classify.crossval --lean 0.2 0.25 0.3 --hedge 0.2 0.25

Out-of-fold figures with today's rules flatter: the family rules (families.py) were written while
reading the tune part, so its items are "seen" by the rules' dense features even when the model's
fold left them out (0.97 out of fold vs 0.91 on the holdout, issue 15 look 4). `--rules-at REV` feeds
the model the rules of an older revision instead (7875cc3: before issue 15, they never saw the blind
corpus), which puts out-of-fold figures close to what unseen text gets, and settings are compared
there. The decision is model.predict's (label by summed probability, HIGH lean, LOW/HIGH hedge,
confidence capped when the rules are unsure or disagree), with the isotonic calibration fitted on
the other folds. Never reads the holdout part.
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from tiercli.classify import corpus, local, model, train
from tiercli.classify.result import RuleAnalysis
from tiercli.taxonomy import LABEL_OF_TASK_TYPE, LABELS, TASK_TYPES


def rules_at(rev: str) -> Callable[[str], RuleAnalysis]:
    """An analyser built from local.py at git revision `rev` (its own rules, today's RuleAnalysis)."""
    src = subprocess.run(["git", "-C", str(corpus.ROOT), "show", f"{rev}:src/tiercli/classify/local.py"],
                         capture_output=True, text=True, check=True).stdout
    with tempfile.NamedTemporaryFile("w", suffix=".py", delete=False) as fh:
        fh.write(src)
    spec = importlib.util.spec_from_file_location(f"tier_local_{rev}", fh.name)
    assert spec and spec.loader
    old = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = old
    spec.loader.exec_module(old)
    Path(fh.name).unlink()
    if hasattr(old, "analyse"):
        return old.analyse  # type: ignore[no-any-return]

    def analyse(text: str) -> RuleAnalysis:
        split = old._split(text)
        scores, evidence = old._score(split)[:2]
        normed = tuple((old._normalise(seg), sw) for seg, sw in split.segments)
        r = old.classify(text)
        fallback = any("no recognisable instruction" in why for why in r.reasons)
        result = local.LocalClassification(r.task_type, r.label, r.confidence, tuple(r.reasons))
        return RuleAnalysis(result, scores, normed, tuple(evidence), split.paste_lines, fallback)

    return analyse


def rows_with(items: list[corpus.Item], analyse: Callable[[str], RuleAnalysis], blind_weight: float,
              written_weight: float = train.WRITTEN_WEIGHT):
    rows, analyses = [], []
    for it in items:
        a = analyse(it.text)
        analyses.append(a)
        weight = train.item_weight(it, blind_weight, written_weight)
        rows.append((model.dense_features(a), model.sparse_features(a), TASK_TYPES.index(it.task_type), weight))
    return rows, analyses


def decide(probs: list[float], a: RuleAnalysis, calibrate: Callable[[float], float], lean: float,
           hedge: float, keep: float = model.HIGH_KEEP) -> tuple[str, float]:
    """model.predict's label and confidence, from the probabilities (the same model.label_decision)."""
    if model.rules_default_stands(a):
        return a.result.label, a.result.confidence
    by_label = {lab: 0.0 for lab in LABELS}
    for t, p in zip(TASK_TYPES, probs):
        by_label[LABEL_OF_TASK_TYPE[t]] += p
    label, conf, _ = model.label_decision(by_label, a, calibrate, lean, hedge, keep)
    return label, conf


def _calibrator(xs: list[float], ys: list[float]) -> Callable[[float], float]:
    m = model.Model((), [], {}, [], {}, model.array("b"), xs, ys, 0.0)
    return m.calibrate


def worth_listing(gold: str, label: str, probs: list[float], near: float = 0.05) -> bool:
    """A HIGH<->LOW crossing, or a near miss: a LOW item with P(HIGH) >= near, a HIGH item with P(LOW) >= near
    or not decided HIGH (the shapes to look at before changing the decision)."""
    by_label = {lab: 0.0 for lab in LABELS}
    for t, p in zip(TASK_TYPES, probs):
        by_label[LABEL_OF_TASK_TYPE[t]] += p
    if gold == "LOW":
        return label == "HIGH" or by_label["HIGH"] >= near
    if gold == "HIGH":
        return label != "HIGH" or by_label["LOW"] >= near
    return False


def figures(items, analyses, probs, folds, lean: float, hedge: float, threshold: float = 0.6,
            keep: float = model.HIGH_KEEP, listed: list | None = None, source: str = "blind-tune") -> dict:
    """One source's figures of the full decision (default the blind tune part), calibration fitted on the
    other folds' items of the taxonomy-written sources (train.TAXONOMY_SOURCES). `listed`, when given,
    receives (item, label, confidence) of the crossings and near misses (worth_listing)."""
    picked = [i for i, it in enumerate(items) if it.source == source]
    calib = [i for i, it in enumerate(items) if it.source in train.TAXONOMY_SOURCES]
    ok = high = high_ok = hl = lh = above = above_ok = 0
    for f in sorted(set(folds)):
        others = [(train.label_of(TASK_TYPES, probs[i])[1], float(train.label_of(TASK_TYPES, probs[i])[0]
                                                                     == items[i].label))
                  for i in calib if folds[i] != f]
        cal = _calibrator(*train.isotonic(others))
        for i in (i for i in picked if folds[i] == f):
            label, conf = decide(probs[i], analyses[i], cal, lean, hedge, keep)
            gold = items[i].label
            if listed is not None and worth_listing(gold, label, probs[i]):
                listed.append((items[i], label, conf, probs[i]))
            ok += label == gold
            high += gold == "HIGH"
            high_ok += gold == "HIGH" and label == "HIGH"
            hl += gold == "HIGH" and label == "LOW"
            lh += gold == "LOW" and label == "HIGH"
            if conf >= threshold:
                above += 1
                above_ok += label == gold
    n = len(picked)
    return {"n": n, "accuracy": round(ok / n, 3), "high_recall": round(high_ok / high, 3), "high_to_low": hl,
            "low_to_high": lh, "share_above": round(above / n, 3),
            "accuracy_above": round(above_ok / above, 3) if above else math.nan}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rules-at", metavar="REV", help="feed the model the rules of this git revision")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--lean", type=float, nargs="+", default=[model.HIGH_LEAN])
    ap.add_argument("--hedge", type=float, nargs="+", default=[train.HEDGE])
    ap.add_argument("--high-keep", type=float, nargs="+", default=[model.HIGH_KEEP],
                    help="a HIGH answer is hedged to MEDIUM only when P(LOW) >= this")
    ap.add_argument("--blind-weight", type=float, default=train.BLIND_WEIGHT)
    ap.add_argument("--written-weight", type=float, default=train.WRITTEN_WEIGHT)
    ap.add_argument("--sparse-lr", type=float, default=train.SPARSE_LR)
    ap.add_argument("--epochs", type=int, default=train.EPOCHS)
    ap.add_argument("--no-written", action="store_true", help="leave out the items written for the issue's families")
    ap.add_argument("--list", action="store_true", help="list the tune items that cross HIGH<->LOW or nearly do "
                                                        "(out of fold, first setting; never the holdout)")
    args = ap.parse_args(argv)

    items = corpus.training_items(written_items=not args.no_written)
    if any(it.source in corpus.UNTOUCHED_SOURCES for it in items):
        raise SystemExit("refusing to use an untouched part (the blind holdout or blind2)")
    analyse = rules_at(args.rules_at) if args.rules_at else local.analyse
    rows, analyses = rows_with(items, analyse, args.blind_weight, args.written_weight)
    folds = [int(corpus.hashlib.sha256(f"{train.SEED}:{it.id}".encode()).hexdigest()[:8], 16) % args.folds
             for it in items]
    fit = {"epochs": args.epochs, "sparse_lr": args.sparse_lr}
    probs: list[list[float]] = [[] for _ in items]
    for f in range(args.folds):
        tr = train.Trainer().fit([r for r, fo in zip(rows, folds) if fo != f], **fit)
        for i, fo in enumerate(folds):
            if fo == f:
                probs[i] = tr.probabilities(rows[i][0], rows[i][1])
    print(f"rules: {args.rules_at or 'today'}; {fit}, blind weight {args.blind_weight}, written weight {args.written_weight}; "
          f"written items: {'no' if args.no_written else 'yes'}")
    print("source              lean  hedge  keep  accuracy  HIGH-recall  H->L  L->H  share>=0.6  acc>=0.6")
    listed: list = []
    settings = [(le, h, k) for le in args.lean for h in args.hedge for k in args.high_keep]
    sources = [s for s in train.TAXONOMY_SOURCES if any(it.source == s for it in items)]
    for n, (lean, hedge, keep) in enumerate(settings):
        for source in sources:
            r = figures(items, analyses, probs, folds, lean, hedge, keep=keep,
                        listed=listed if n == 0 else None, source=source)
            print(f"{source:18s}  {lean:4.2f}  {hedge:5.2f}  {keep:4.2f}  {r['accuracy']:8.3f}  "
                  f"{r['high_recall']:11.3f}  {r['high_to_low']:4d}  {r['low_to_high']:4d}  "
                  f"{r['share_above']:10.3f}  {r['accuracy_above']:8.3f}")
    for it, label, conf, p in listed if args.list else []:
        shown = " ".join(f"{t}={v:.2f}" for t, v in zip(TASK_TYPES, p) if v >= 0.05)
        print(f"\n{it.id} gold {it.task_type}/{it.label} -> {label} ({conf:.2f}); {shown}\n  {it.text[:300]!r}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
