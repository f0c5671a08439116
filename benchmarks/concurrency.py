"""Concurrent writers at full size: 16 processes x 100 calls, three ways. Prints figures only.

1. direct ledger writes: 16 spawned processes, each 100 x (a read, the pending row with a budget
   check in one BEGIN IMMEDIATE transaction, the settling upsert; every 10th settle sent twice);
2. `tier ask` as real processes on the EMBEDDED OFFLINE DEFAULT config (no network, placeholder
   answers, real routing, token counts and prices): 16 at a time, 100 each (1,600 processes);
3. through the fake provider (OpenAI protocol, real litellm client, streamed): 16 processes running
   tests/ask_driver.py, 100 calls each (litellm imported once per process).

4. first runs: 16 processes create the same fresh ledger at the same instant, 50 times (800 opens),
   counting the opens that fail.

For 1-3: rows expected / written, duplicates, missing, "database is locked" errors, other errors,
statuses, the `tier log --json` and report totals against the sum of the rows, wall time.
Run: python benchmarks/concurrency.py [--processes 16] [--calls 100] [--only ledger,ask,fake,first]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

os.environ.setdefault("TIER_NO_WORKER", "1")  # `tier ask` in-process, as measured before the warm worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from fakeprovider import FakeProvider, Reply  # noqa: E402
from relhelp import (  # noqa: E402
    concurrent_first_opens,
    read_rows,
    report_totals,
    run_ask_drivers,
    run_ledger_writers,
    run_tier_asks,
    two_tier_config,
)


def summarize(name: str, rows: list[dict], expected_ids: list[str], locked: int, other: int, wall: float,
              reported_cost: float | None, db: Path, env: dict) -> dict:
    counts = Counter(r["id"] for r in rows)
    dup = sum(n - 1 for n in counts.values() if n > 1)
    missing = len(set(expected_ids) - set(counts))
    unexpected = len(set(counts) - set(expected_ids))
    statuses = dict(Counter(r["status"] for r in rows))
    row_cost = sum(r["cost_usd"] or 0 for r in rows)
    logged = run_tier_asks([["log", "--json", "-n", "100000", "--db", str(db)]], env, parallel=1)[0][0]
    log_cost = sum(r["cost_usd"] or 0 for r in json.loads(logged[2])) if logged[1] == 0 else None
    try:
        totals = report_totals(db, env)
        report_cost, report_calls = totals["cost_usd"], totals["calls"]
    except Exception as exc:  # noqa: BLE001 - a figure, not a gate
        report_cost, report_calls = None, f"n/a ({type(exc).__name__})"
    out = {
        "run": name, "rows_expected": len(expected_ids), "rows_written": len(rows), "duplicates": dup,
        "missing": missing, "unexpected": unexpected, "lock_errors": locked, "other_errors": other,
        "statuses": statuses, "wall_s": round(wall, 2), "calls_per_s": round(len(rows) / wall, 1) if wall else None,
        "sum_rows_usd": round(row_cost, 9), "sum_reported_usd": None if reported_cost is None else round(reported_cost, 9),
        "tier_log_usd": None if log_cost is None else round(log_cost, 9),
        "report_usd": None if report_cost is None else round(report_cost, 9), "report_calls": report_calls,
    }
    print(json.dumps(out), flush=True)
    return out


def bench_ledger(processes: int, calls: int, tmp: Path, env: dict) -> dict:
    db = tmp / "ledger-direct.db"
    r = run_ledger_writers(str(db), processes, calls)
    return summarize("direct ledger writes", read_rows(db), r["ids"], r["locked"], len(r["other"]), r["wall_s"],
                     r["cost"], db, env)


def bench_tier_ask(processes: int, calls: int, tmp: Path, env: dict) -> dict:
    db = tmp / "ledger-ask.db"
    jobs = [["ask", "--json", "--db", str(db), "-t", ("search", "bug_fix", "architecture")[k % 3],
             f"call {k}: explain the retry loop"] for k in range(processes * calls)]
    done, wall = run_tier_asks(jobs, env, parallel=processes, timeout=600)
    ids, reported, locked, other = [], 0.0, 0, 0
    for _, code, out, err in done:
        if code == 0:
            answer = json.loads(out)
            ids.append(answer["call_id"])
            reported += answer["cost_usd"] or 0
        elif "locked" in err:
            locked += 1
        else:
            other += 1
    return summarize("tier ask processes, offline default config", read_rows(db), ids, locked, other, wall,
                     reported, db, env)


def bench_fake(processes: int, calls: int, tmp: Path, env: dict) -> dict:
    db = tmp / "ledger-fake.db"
    with FakeProvider() as fake:
        fake.set_default("*", Reply(text="the loader is in config.py", output_tokens=7))
        cfg = two_tier_config(tmp / "fake.yaml", "openai", fake.openai_base, timeout_s=60)
        r = run_ask_drivers(str(cfg), str(db), processes, calls, dict(env, OPENAI_API_KEY="sk-bench-000000000000"),
                            timeout=1800)
        requests = len([q for q in fake.requests if "warm-up" not in json.dumps(q.body["messages"])])
    s = r["summaries"]
    ids = [i for x in s for i in x["ok"]]
    out = summarize("ask.run per process via the fake provider (streamed)", read_rows(db), ids,
                    sum(x["locked"] for x in s), sum(sum(x["errors"].values()) for x in s), r["wall_s"],
                    sum(x["cost"] for x in s), db, env)
    print(json.dumps({"run": "fake provider", "provider_requests": requests}), flush=True)
    return out


def bench_first(processes: int, calls: int, tmp: Path, env: dict) -> dict:
    started = time.perf_counter()
    outcomes = concurrent_first_opens(tmp / "first", trials=50, processes=processes)
    failures = Counter(o.split(":")[0] + (": database is locked" if "locked" in o else "") for o in outcomes if o != "ok")
    out = {"run": "first runs: simultaneous creation of a fresh ledger", "opens": len(outcomes),
           "failed": sum(failures.values()), "failures": dict(failures), "wall_s": round(time.perf_counter() - started, 2)}
    print(json.dumps(out), flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--processes", type=int, default=16)
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--only", default="ledger,ask,fake,first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tier-bench-concurrency-") as d:
        tmp = Path(d)
        env = dict(os.environ, TIER_HOME=str(tmp / "home"))
        env.pop("TIER_CONFIG", None)
        env.pop("TIER_DB", None)
        print(f"# {args.processes} processes x {args.calls} calls; machine: {os.cpu_count()} cores", flush=True)
        started = time.perf_counter()
        for name in args.only.split(","):
            {"ledger": bench_ledger, "ask": bench_tier_ask, "fake": bench_fake, "first": bench_first}[name](args.processes, args.calls, tmp, env)
        print(f"# total {time.perf_counter() - started:.1f} s", flush=True)


if __name__ == "__main__":
    main()
