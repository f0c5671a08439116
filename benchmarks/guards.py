"""Overhead of the guard checks per call: iteration count, budget check and the reservation write.

Measures, on a ledger with --rows existing calls, the time of what a guarded `tier ask` adds over an
unguarded one: the session's call count, the upper-bound estimate (offline token count), the
read-only budget check and the pending row written in the same IMMEDIATE transaction as the spend
query, against the plain pending-row write. Target: <= 2 ms p50. Prints, and records the overhead (harness.record).
Run: python benchmarks/guards.py [--rows 100000] [--calls 500]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from pathlib import Path

import yaml
from harness import load_average, record

from tiercli import ask, calls, guards
from tiercli.config import LoadedConfig, config_hash, embedded_default_text, validate
from tiercli.ledger import Ledger


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--calls", type=int, default=500)
    args = parser.parse_args()
    text = embedded_default_text().replace(
        "guardrails: {max_iterations: 15,", "guardrails: {budget: {daily_usd: 1000000, monthly_usd: 1000000, session_usd: 1000000}, max_iterations: 100000,")
    cfg = validate(yaml.safe_load(text), "bench")
    loaded = LoadedConfig(cfg, "bench", config_hash(cfg))
    path = Path(tempfile.mkdtemp()) / "guards.db"
    now = time.time()
    with Ledger(path) as ledger:
        import sqlite3

        raw = sqlite3.connect(path)
        raw.executemany(
            "INSERT INTO calls (id, started_at, session, kind, tier, status, cost_usd) VALUES (?, ?, ?, 'main', 'tier2', 'ok', ?)",
            ((uuid.uuid4().hex, now - i * 30, f"s{i % 500}", 0.001) for i in range(args.rows)))
        raw.commit()
        raw.close()
        req = ask.AskRequest(prompt="fix the failing test in tests/test_parser.py " * 5, session="s7")
        decision = ask.decide(cfg, task_type="bug_fix")
        messages = ask.build_messages(req.prompt, None)

        def plain():
            ledger.upsert_call({"id": uuid.uuid4().hex, "started_at": time.time(), "session": "s7", "status": "pending"})

        def guarded():
            ledger.session_calls(req.session)
            caps = guards.caps_for(cfg, req.session, time.time())
            estimate = calls.upper_bound_usd(loaded, decision.tier, calls.Plan(decision, req.prompt, messages))
            ledger.budget_overrun(caps, estimate)
            ledger.insert_pending({"id": uuid.uuid4().hex, "started_at": time.time(), "session": "s7", "status": "pending"},
                                  caps, estimate)

        def timed(fn):
            for _ in range(20):
                fn()
            samples = []
            for _ in range(args.calls):
                start = time.perf_counter()
                fn()
                samples.append(time.perf_counter() - start)
            samples.sort()
            return statistics.median(samples) * 1000, samples[int(len(samples) * 0.99) - 1] * 1000

        p50_plain, p99_plain = timed(plain)
        p50_guard, p99_guard = timed(guarded)
    print(f"ledger of {args.rows:,} calls, {args.calls} samples each")
    print(f"  pending row only            p50 {p50_plain:6.2f} ms  p99 {p99_plain:6.2f} ms")
    print(f"  guards + reserved row       p50 {p50_guard:6.2f} ms  p99 {p99_guard:6.2f} ms")
    print(f"  guard overhead              p50 {p50_guard - p50_plain:6.2f} ms  (target <= 2 ms)")
    record(f"guard checks per call (budget, iterations), {args.rows:,}-call ledger", (p50_guard - p50_plain) / 1000, "s",
           target="value <= 0.002", note=f"p50 over the pending-row write ({p50_plain:.2f} ms); {load_average()}")


if __name__ == "__main__":
    main()
