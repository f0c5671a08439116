"""Benchmark `tier replay` (dry) on a generated ledger of recorded calls.

    python benchmarks/replay.py                      # 100k calls under sample_configs/anthropic.yaml
    python benchmarks/replay.py --calls 20000        # another size
    python benchmarks/replay.py --db /tmp/r.db       # keep (and reuse) the generated ledger
    python benchmarks/replay.py --cli                # also time the whole `tier replay --json` process

The ledger's schema is made by `Ledger(path)`; its rows by sqlite3 executemany in one transaction.
The history is a plausible mix for a team using tier next to Claude Code:
- --calls replayable calls: 60% `main` calls with a recorded task type (routed by tier), 10% of them
  served by gpt-4o or gpt-4o-mini under an older config (tokenizer family change: input recounted
  from the stored prompt); 5% `main` calls without a task type (prompt text only: classified); 35%
  imported Claude Code calls (no tier, no task type; prompt text = the user request they served, a
  few thousand distinct requests, many calls each, as in real agent logs; classified once per text);
- plus one classifier or compaction call per nine (counted, not replayed); 0.5% on an unpriced model.
Token buckets: large cache reads on most calls, as agents have.

Timed: reading the selection (`select_ledger`), re-deciding and re-pricing (`dry_replay`) and shaping
the JSON (`dry_json`): best of --repeat runs, each from a cold decider (no classification cache kept
between runs). Target (issue 5): <= 10 s for 100k calls. Prints only; no API key and no network.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

os.environ.setdefault("ANTHROPIC_API_KEY", "sk-ant-dummy-for-benchmark")  # dry replay needs none; harmless

from harness import load_average, record  # noqa: E402

from tiercli import render_replay  # noqa: E402
from tiercli import replay as core  # noqa: E402
from tiercli.config import load  # noqa: E402
from tiercli.ledger.db import Ledger  # noqa: E402

COLUMNS = ("id", "started_at", "session", "kind", "source", "task_type", "tier", "requested_model", "served_model",
           "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens", "output_tokens",
           "cost_usd", "unpriced", "status", "prompt_text", "prompt_hash", "task_id", "meta_json")
TASK_TIER = {"file_lookup": "tier1", "search": "tier1", "docstring": "tier1", "reformat": "tier1", "test_gen": "tier1",
             "bug_fix": "tier2", "feature": "tier2", "code_review": "tier2", "architecture": "tier3",
             "cross_refactor": "tier3", "algorithm": "tier3"}
TIER_MODEL = {"tier1": "anthropic/claude-haiku-4-5", "tier2": "anthropic/claude-sonnet-4-5", "tier3": "anthropic/claude-opus-4-5"}
OLD_OPENAI = {"tier1": "openai/gpt-4o-mini", "tier2": "openai/gpt-4o", "tier3": "openai/gpt-4o"}
PRICE = {  # $/Mtok input, output (cache read 0.1x, write 1.25x)
    "anthropic/claude-haiku-4-5": (1, 5), "anthropic/claude-sonnet-4-5": (3, 15), "anthropic/claude-opus-4-5": (5, 25),
    "openai/gpt-4o-mini": (0.15, 0.6), "openai/gpt-4o": (2.5, 10), "claude-sonnet-4-5-20250929": (3, 15),
    "claude-opus-4-1-20250805": (15, 75),
}
VERBS = ["fix", "add", "refactor", "explain", "find", "write tests for", "document", "review", "speed up", "rename",
         "design", "reformat", "search for", "implement", "debug"]
THINGS = ["the retry loop in client.py", "parse_args", "the CSV importer", "the auth middleware", "the cache layer",
          "the plugin registry", "the billing report", "the websocket handler", "the migration script",
          "the rate limiter", "the config loader", "the search index", "the payment webhook"]
DETAILS = ["", " when the input is empty", " so that it handles unicode", " across all services", " with a 10 minute TTL",
           " and keep the public API", "; the traceback is below:\nTraceback (most recent call last):\n  File \"app.py\", line 3",
           " using the existing helpers", " for the v2 endpoint"]


def prompt(rng: random.Random, n: int) -> str:
    return f"{rng.choice(VERBS)} {rng.choice(THINGS)}{rng.choice(DETAILS)} (#{n})"


def build(path: Path, calls: int, requests: int, seed: int = 5) -> None:
    rng = random.Random(seed)
    Ledger(path).close()
    request_pool = [prompt(rng, i) for i in range(requests)]
    rows = []
    t0 = time.time() - 30 * 86_400
    types = list(TASK_TIER)
    total = calls + calls // 9
    for i in range(total):
        u = rng.random() if i % 10 != 9 else 1.0
        started = t0 + i * (30 * 86_400 / total)
        inp, read, write, out = rng.randint(5, 3000), rng.choice([0, rng.randint(2000, 80_000)]), rng.randint(0, 5000), rng.randint(20, 2000)
        text = None
        task = None
        source = "tier"
        task_id = meta = None
        if u < 0.60:
            kind, task = "main", rng.choice(types)
            tier = TASK_TIER[task]
            model = OLD_OPENAI[tier] if rng.random() < 0.10 else TIER_MODEL[rng.choice(["tier1", "tier2", "tier3"])]
            text = prompt(rng, 100_000 + i)
        elif u < 0.65:
            kind, tier = "main", "tier2"
            model = TIER_MODEL[tier]
            text = prompt(rng, 100_000 + i)
        elif u < 1.0:
            kind, tier, source = "import", None, "claude-code"
            model = rng.choice(["claude-sonnet-4-5-20250929", "claude-sonnet-4-5-20250929", "claude-opus-4-1-20250805"])
            n_task = i // 12  # agent tasks of ~4 imported steps each (imports label tasks once)
            text = request_pool[n_task % len(request_pool)]
            task_id, task = f"t{n_task}", types[n_task % len(types)]
            meta = '{"task_rule":"%s"}' % ("new_task" if i % 12 < 2 else "tool_step")
        else:
            kind = rng.choice(["classifier", "compaction"])
            tier = "tier1"
            model = TIER_MODEL[tier]
        if rng.random() < 0.005:
            model, cost, unpriced = "acme/private-model", None, 1
        else:
            pi, po = PRICE[model]
            cost, unpriced = (inp * pi + read * pi * 0.1 + write * pi * 1.25 + out * po) / 1e6, 0
        rows.append((f"c{i:08d}", started, f"s{i // 60}", kind, source, task, tier, model, model, inp, read, write, 0,
                     out, cost, unpriced, "ok", text, None, task_id, meta))
    conn = __import__("sqlite3").connect(path)
    with conn:
        conn.executemany(f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})", rows)
    conn.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--requests", type=int, default=3000, help="distinct Claude Code request texts")
    ap.add_argument("--config", default=str(ROOT / "sample_configs" / "anthropic.yaml"))
    ap.add_argument("--db", help="keep the ledger here (reused when it exists)")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--cli", action="store_true", help="also time `tier replay --json` as a whole process")
    args = ap.parse_args()
    tmp = None
    if args.db:
        path = Path(args.db)
    else:
        tmp = tempfile.TemporaryDirectory()
        path = Path(tmp.name) / "replay.db"
    if not path.exists():
        t = time.perf_counter()
        build(path, args.calls, args.requests)
        print(f"built {args.calls:,} replayable calls (+{args.calls // 9:,} overhead) in {time.perf_counter() - t:.1f} s ({path.stat().st_size / 1e6:.0f} MB)")
    loaded = load(args.config)
    best = None
    for _ in range(args.repeat):
        t = time.perf_counter()
        c = time.process_time()
        with Ledger(path, create=False) as ledger:
            rows, skipped = core.select_ledger(ledger)
        t_read = time.perf_counter() - t
        result = core.dry_replay(loaded, rows, core.Selection("ledger", skipped=skipped, location=str(path)))
        data = render_replay.dry_json(result, loaded.config.routing.tiers)
        total = time.perf_counter() - t
        cpu = time.process_time() - c
        if best is None or total < best[0]:
            best = (total, t_read, result.seconds, data, cpu)
    total, t_read, t_replay, data, cpu = best
    n = data["calls"]
    print(f"dry replay of {n:,} calls ({sum(data['skipped'].values()):,} overhead calls skipped) under {args.config}")
    print(f"  read {t_read:.2f} s + replay {t_replay:.2f} s + JSON = {total:.2f} s  ->  {n / total:,.0f} calls/s"
          f"  (target <= 10 s for 100k; CPU {cpu:.2f} s: on a loaded machine wall time is CPU plus waiting)")
    d = data["decisions"]
    print(f"  decisions: {d['recorded']:,} recorded task types, {d['classified']:,} classified "
          f"({d['distinct_prompts_classified']:,} distinct texts), {d['no_prompt']:,} without prompt; "
          f"{data['tokens']['recounted_calls']:,} input recounts")
    print(f"  before {render_replay.money(data['before']['cost_usd'])} -> after {render_replay.money(data['after']['cost_usd'])} "
          f"cache-aware ({render_replay.money(data['comparable']['after_warm_usd'])} if caches were warm; switch penalty "
          f"{render_replay.money(data['cache']['switch_penalty_usd'])} on {data['cache']['penalty_calls']:,} calls); "
          f"{data['tasks']['tasks']:,} tasks; {data['changed_calls']:,} calls change tier or priced model, "
          f"{data['renamed_calls']:,} renames; unpriced before {data['before']['unpriced']['calls']}")
    record(f"dry replay of {n:,} calls (by task, cache-aware), in-process", total, "s", target="value <= 10",
           note=f"read {t_read:.2f} s + replay {t_replay:.2f} s; CPU {cpu:.2f} s; best of {args.repeat}; {load_average()}")
    if args.cli:
        env = dict(os.environ)
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-m", "tiercli", "replay", "-c", args.config, "--db", str(path), "--json"],
                              env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        print(f"  whole process `tier replay --json`: {wall:.2f} s (exit {proc.returncode})")
    if tmp:
        tmp.cleanup()


if __name__ == "__main__":
    main()
