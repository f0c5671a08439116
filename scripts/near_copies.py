"""Drop new corpus items that nearly copy an evaluation or training item (mechanically: no item is read).

    python scripts/near_copies.py NEW.jsonl... --out-dir DIR [--eval-cut 0.6] [--train-cut 0.8]

Similarity is difflib's ratio on lower-cased word sequences (the measure every corpus README of issue 15
quotes). An item is dropped when its ratio to any evaluation item (the untouched parts: the first blind
corpus's holdout, blind2, the holdout halves of writers C-F and G-J) is >= --eval-cut, or to any training item or an
earlier kept new item is >= --train-cut. Writes DIR/<name of each input> with the kept items and prints
what was dropped, by id and ratio.
"""

from __future__ import annotations

import argparse
import json
import re
from difflib import SequenceMatcher
from pathlib import Path

from tiercli.classify import corpus

_WORD = re.compile(r"\w+")


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def best_match(seq: list[str], pool: list[tuple[str, list[str]]], cut: float) -> tuple[float, str]:
    """The highest ratio >= cut to any pool item (with its id), else (0.0, "")."""
    sm = SequenceMatcher(autojunk=False)
    sm.set_seq2(seq)
    best, who = 0.0, ""
    for pid, other in pool:
        sm.set_seq1(other)
        if sm.real_quick_ratio() < cut or sm.quick_ratio() < cut:
            continue
        r = sm.ratio()
        if r >= cut and r > best:
            best, who = r, pid
    return best, who


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("inputs", nargs="+", type=Path)
    ap.add_argument("--out-dir", type=Path, required=True)
    ap.add_argument("--eval-cut", type=float, default=0.6)
    ap.add_argument("--train-cut", type=float, default=0.8)
    args = ap.parse_args(argv)
    evaluation = (corpus.blind("holdout") + corpus.blind2() + corpus.taxonomy_written("holdout")
                  + corpus.taxonomy_written2("holdout"))
    eval_pool = [(it.id, words(it.text)) for it in evaluation]
    train_pool = [(it.id, words(it.text)) for it in corpus.training_items()]
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for path in args.inputs:
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            seq = words(row["text"])
            r, who = best_match(seq, eval_pool, args.eval_cut)
            if r:
                print(f"drop {row['id']}: {r:.2f} to evaluation item {who}")
                continue
            r, who = best_match(seq, train_pool, args.train_cut)
            if r:
                print(f"drop {row['id']}: {r:.2f} to training item {who}")
                continue
            kept.append(line)
            train_pool.append((row["id"], seq))
        (args.out_dir / path.name).write_text("\n".join(kept) + "\n", encoding="utf-8")
        print(f"{path}: kept {len(kept)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
