"""Benchmark `tier replay --outcomes` and `tier tune` on CodeRouterBench's in-distribution test split
(2,919 tasks x 8 models; ../shared/data/coderouterbench-idtest), and print the README's table.

    python benchmarks/outcomes.py                 # timings (best of 3) and the README table
    python benchmarks/outcomes.py --repeat 1      # one timing run
    python benchmarks/outcomes.py --gsm8k         # also the RouteLLM GSM8K table (second check)
    python benchmarks/outcomes.py --table F.csv   # another CodeRouterBench-shaped table (e.g. its OOD176 split)

Tier map: tier1 = Qwen3-Max, tier2 = gpt-5.4, tier3 = claude-opus-4-6; success = score >= 1 (the
split's score is 0..1); config sample_configs/anthropic.yaml (only its tier names matter: the table
has cost_usd). The same figures come from the commands (printed below the table). Timed: reading
the table, mapping and pricing it, one search over the policy space, and the whole `tier tune`
(search on every task + 5-fold cross-validation, i.e. six searches). Prints only; no network.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from harness import load_average, record, skip  # noqa: E402

from tiercli.config import load  # noqa: E402
from tiercli.replay_outcomes import tune as tuning  # noqa: E402
from tiercli.replay_outcomes.commands import tune_table  # noqa: E402
from tiercli.replay_outcomes.evaluate import build_matrix, evaluate_outcomes  # noqa: E402
from tiercli.replay_outcomes.table import load_outcomes, parse_map  # noqa: E402

CRB = ROOT.parent / "shared" / "data" / "coderouterbench-idtest" / "id_test_results_long.csv"
GSM8K = ROOT.parent / "shared" / "data" / "routellm-gsm8k" / "gsm8k_responses.csv"
CONFIG = ROOT / "sample_configs" / "anthropic.yaml"
MAP = "tier1=Qwen3-Max,tier2=gpt-5.4,tier3=claude-opus-4-6"


def best_of(repeat: int, fn):
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return min(times), result


def row(label: str, p: dict, how: str) -> str:
    return (f"| {label} | {100 * p['success_rate']:.1f}% | {p['quality']:.4f} | ${p['cost_usd']:.2f} | "
            f"{p['attempts'] / p['tasks']:.2f} | {how} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gsm8k", action="store_true")
    ap.add_argument("--table", type=Path, default=CRB, help="a table with the same three models (score or resolved)")
    args = ap.parse_args()
    if not args.table.exists():
        skip("tier tune on CodeRouterBench", f"{args.table} is not here (the shared data folder beside the checkout)")
        return
    loaded = load(CONFIG)
    tiers = loaded.config.routing.tiers

    t_load, table = best_of(args.repeat, lambda: load_outcomes(args.table))
    mapping = parse_map([MAP], table, tiers)
    t_matrix, priced = best_of(args.repeat, lambda: build_matrix(loaded, table, mapping))
    m = priced.matrix
    t_search, found = best_of(args.repeat, lambda: tuning.search(m))
    t_tune, tuned = best_of(args.repeat, lambda: tune_table(loaded, table, mapping=[MAP]))
    caps_only = tune_table(loaded, table, mapping=[MAP], orders=["tier1,tier2,tier3"], by_type=False)
    print(f"{args.table.name}: {len(table.task_ids):,} tasks, {table.rows:,} rows, {len(table.models)} models; "
          f"{len(m):,} complete tasks for the map")
    print(f"read table {t_load:.3f}s | map and price {t_matrix:.3f}s | one search {t_search:.3f}s "
          f"({found.settings} (order, caps) settings x start tier per {len(found.groups)} dimensions, "
          f"{len(found.frontier)} frontier policies) | tier tune with 5-fold CV {t_tune:.3f}s  (best of {args.repeat})")
    record(f"tier tune on {args.table.name} ({len(m):,} tasks x 3 tiers), search + 5-fold CV, in-process", t_tune, "s",
           note=f"one search {t_search:.2f} s; reading the table {t_load:.2f} s; best of {args.repeat}; {load_average()}")

    replay = evaluate_outcomes(loaded, table, mapping, policies=["always:tier1", "always:tier2", "always:tier3",
                                                                 "cascade", "oracle"])
    base = {p.name: p for p in replay.policies}
    capped = {}
    for cap in (3.0, 2.0, 1.2):
        r = evaluate_outcomes(loaded, table, mapping, policies=["cascade"], caps={"tier3": cap})
        capped[cap] = r.policies[0]

    def pj(p) -> dict:
        return {"success_rate": p.success_rate, "quality": p.quality, "cost_usd": p.cost_usd, "attempts": p.attempts,
                "tasks": p.tasks}

    cv, cv_caps = tuned["cross_validation"]["policies"], caps_only["cross_validation"]["policies"]
    ins = tuned["chosen"]["in_sample"]
    print()
    print("| policy | resolved (score = 1) | mean score | cost | attempts per task | figures |")
    print("|---|---|---|---|---|---|")
    for t, model in zip(("tier1", "tier2", "tier3"), ("Qwen3-Max", "gpt-5.4", "claude-opus-4-6")):
        print(row(f"always:{t} ({model})", pj(base[f'always:{t}']), "whole table"))
    print(row("cascade tier1 -> tier2 -> tier3", pj(base["cascade"]), "whole table"))
    for cap, p in capped.items():
        print(row(f"cascade, tier3 capped at ${cap:g}", pj(p), "whole table"))
    caps_text = ", ".join(f"{k} ${v:g}" for k, v in caps_only["chosen"]["caps"].items()) or "none"
    print(row(f"cascade, caps tuned ({caps_text})", cv_caps["tuned"], "5-fold CV, held out"))
    print(row("tuned policy (order, start per dimension, caps)", cv["tuned"], "5-fold CV, held out"))
    print(row("tuned policy, in-sample", ins["tuned"], "chosen on the whole table"))
    print(row("oracle", pj(base["oracle"]), "whole table"))
    print()
    print(f"chosen on the whole table: {tuned['chosen']['policy']}")
    print(f"caps-only tuning chose: {caps_only['chosen']['policy']}")
    per_fold = [f["chosen"] for f in tuned["cross_validation"]["per_fold"]]
    print(f"policies chosen per fold: {len(set(per_fold))} distinct of {len(per_fold)}")
    print(f"held-out baselines (same folds): oracle {100 * cv['oracle']['success_rate']:.1f}% ${cv['oracle']['cost_usd']:.2f}; "
          + "; ".join(f"always:{t} {100 * cv[f'always:{t}']['success_rate']:.1f}% ${cv[f'always:{t}']['cost_usd']:.2f}"
                      for t in ("tier1", "tier2", "tier3")))
    table_arg = "../shared/data/coderouterbench-idtest/id_test_results_long.csv"
    print(f"same figures: tier replay -c sample_configs/anthropic.yaml --outcomes {table_arg} --map {MAP} "
          "[--policy cascade --cap tier3=3]")
    print(f"              tier tune -c sample_configs/anthropic.yaml --outcomes {table_arg} --map {MAP} "
          "[--order tier1,tier2,tier3 --by none]")

    if args.gsm8k and GSM8K.exists():
        g = load_outcomes(GSM8K)
        gmap = [f"tier1={g.models[0]}", f"tier3={g.models[1]}"]
        t_g, gdata = best_of(1, lambda: tune_table(loaded, g, mapping=gmap))
        gcv = gdata["cross_validation"]["policies"]
        print(f"\nGSM8K (1,319 tasks, tier1 = Mixtral, tier3 = GPT-4, costs counted offline): tier tune {t_g:.2f}s; "
              f"held out: tuned {100 * gcv['tuned']['success_rate']:.1f}% ${gcv['tuned']['cost_usd']:.2f}, "
              f"oracle {100 * gcv['oracle']['success_rate']:.1f}% ${gcv['oracle']['cost_usd']:.2f}, "
              f"always:tier3 {100 * gcv['always:tier3']['success_rate']:.1f}% ${gcv['always:tier3']['cost_usd']:.2f}")


if __name__ == "__main__":
    main()
