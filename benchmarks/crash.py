"""SIGKILL `tier ask` 100 times at random points, alongside calls that complete. Prints figures only.

Each kill is a real `python -m tiercli ask` process, killed with SIGKILL at one of:
  pending   - after its pending row is committed, before the provider call (TIER_TEST_PAUSE_AT hook)
  midstream - while the answer streams (fake provider, 0.05 s between words; killed after k words)
  response  - after the full response, before the settling commit (TIER_TEST_PAUSE_AT hook)
  random    - a random moment between 0.3x and 1.2x the measured run time of one offline `tier ask`
              (start-up, routing, a commit, the exit... or after it ended: then it was not killed)
pending/response/random run on the embedded offline default, midstream through the fake provider.
Meanwhile --acks `tier ask --json` calls run to completion (exit 0 = acknowledged).

Then: the ledger opens (tier's own checks), PRAGMA integrity_check, duplicates, acknowledged calls
lost, what each killed call left (pending / ok / no row), `tier log --json` row count.
Run: python benchmarks/crash.py [--kills 100] [--acks 100] [--seed 1]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

os.environ.setdefault("TIER_NO_WORKER", "1")  # `tier ask` in-process, as measured before the warm worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from fakeprovider import FakeProvider, Reply  # noqa: E402
from relhelp import kill_tier_ask, ledger_health, read_rows, run_tier_asks, two_tier_config  # noqa: E402

POINTS = ("pending", "midstream", "response", "random")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--kills", type=int, default=100)
    parser.add_argument("--acks", type=int, default=100)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--parallel", type=int, default=4)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    plan = [POINTS[i % len(POINTS)] for i in range(args.kills)]
    rng.shuffle(plan)
    with tempfile.TemporaryDirectory(prefix="tier-bench-crash-") as d, FakeProvider() as fake:
        tmp = Path(d)
        env = dict(os.environ, TIER_HOME=str(tmp / "home"), OPENAI_API_KEY="sk-bench-crash-000000000000")
        env.pop("TIER_CONFIG", None)
        env.pop("TIER_DB", None)
        fake.set_default("gpt-4o-mini", Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay_s=0.05))
        online = two_tier_config(tmp / "online.yaml", "openai", fake.openai_base, timeout_s=60)

        t0 = time.perf_counter()
        run_tier_asks([["ask", "--json", "-s", "calibrate", "-t", "search", "how long does a call take?"]], env, 1)
        one = time.perf_counter() - t0
        print(f"# one offline tier ask: {one:.2f} s; random kills in [{0.3 * one:.2f}, {1.2 * one:.2f}] s", flush=True)

        def kill(item):
            n, point = item
            session = f"kill-{point}-{n}"
            base = ["-s", session, "-t", "search", f"killed call {n}"]
            if point in ("pending", "response"):
                res = kill_tier_ask(base, env, point=point)
            elif point == "midstream":
                res = kill_tier_ask(["-c", str(online), *base], env, after_chunks=rng.randint(1, 60))
            else:
                res = kill_tier_ask(base, env, after_s=rng.uniform(0.3 * one, 1.2 * one))
            return point, session, res

        acks = [["ask", "--json", "-s", f"ack-{k}", "-t", ("search", "bug_fix")[k % 2], f"acknowledged {k}"]
                for k in range(args.acks)]
        started = time.perf_counter()
        with ThreadPoolExecutor(args.parallel) as pool:
            ack_future = pool.submit(run_tier_asks, acks, env, 2)
            results = list(pool.map(kill, enumerate(plan)))
            acked, _ = ack_future.result()
        wall = time.perf_counter() - started

        db = tmp / "home" / "ledger.db"
        try:
            health = ledger_health(db)
            opens, integrity = True, health["integrity"]
        except Exception as exc:  # noqa: BLE001 - a figure
            opens, integrity = False, f"{type(exc).__name__}: {exc}"
        rows = read_rows(db)
        by_session: dict[str, list[dict]] = {}
        for r in rows:
            by_session.setdefault(r["session"], []).append(r)
        dup = sum(n - 1 for n in Counter(r["id"] for r in rows).values() if n > 1)
        ack_ids = [json.loads(out)["call_id"] for _, code, out, _ in acked if code == 0]
        ack_ids.append(by_session["calibrate"][0]["id"])
        ack_failed = sum(1 for _, code, _, _ in acked if code != 0)
        by_id = {r["id"]: r for r in rows}
        lost = sum(1 for i in ack_ids if i not in by_id)
        not_ok = sum(1 for i in ack_ids if i in by_id and by_id[i]["status"] != "ok")
        outcome: dict[str, Counter] = {p: Counter() for p in POINTS}
        landed = Counter()
        for point, session, res in results:
            landed[point] += res["killed"]
            mine = by_session.get(session, [])
            outcome[point]["more than one row" if len(mine) > 1 else (mine[0]["status"] if mine else "no row")] += 1
        logged = run_tier_asks([["log", "--json", "-n", "100000"]], env, parallel=1)[0][0]
        print(json.dumps({
            "kills_planned": len(plan), "kills_landed": sum(landed.values()),
            "landed_by_point": dict(landed), "rows_left_by_point": {p: dict(c) for p, c in outcome.items()},
            "acknowledged": len(ack_ids), "ack_nonzero_exit": ack_failed, "acknowledged_lost": lost,
            "acknowledged_not_ok": not_ok, "duplicates": dup, "ledger_opens": opens, "integrity_check": integrity,
            "rows": len(rows), "tier_log_rows": len(json.loads(logged[2])) if logged[1] == 0 else f"exit {logged[1]}",
            "pending_rows": sum(1 for r in rows if r["status"] == "pending"), "wall_s": round(wall, 1),
        }, indent=1))


if __name__ == "__main__":
    main()
