"""Many `tier ask` calls in one process, for the concurrency tests and benchmarks/concurrency.py.

Each call is exactly what `tier ask` does after parsing its arguments: open the ledger, run
`tiercli.ask.run` (pending row, provider call, settle by id), close the ledger. litellm is imported
once per process (a 3.3 s import would otherwise dominate 16 x 100 runs).

    python tests/ask_driver.py --config C --db D --calls N --tag T [--json] [--fork K]

It builds its router, makes one warm-up call into a throwaway ledger, prints "ready" on stdout,
waits for a line on stdin (so all drivers start together), makes its calls and prints one JSON
summary line: {"tag", "ok": [call ids], "errors": {class: n}, "locked": n, "cost": $, "wall_s"}.

--fork K: import litellm and build the router once, then fork K worker processes (no thread exists
yet, no ledger connection and no HTTP connection is open at the fork: each worker opens its own);
"ready" is printed when all K are warm, and one summary line per worker follows. The suite uses
this to pay litellm's import once; the benchmark runs separate interpreters.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time


def worker(loaded, args, tag: str) -> dict:
    from tiercli import ask
    from tiercli.errors import TierError
    from tiercli.ledger import Ledger

    summary: dict = {"tag": tag, "ok": [], "errors": {}, "locked": 0, "cost": 0.0}
    started = time.perf_counter()
    for i in range(args.calls):
        # no session: a session's calls would meet guardrails.max_iterations (15 by default)
        req = ask.AskRequest(prompt=f"{tag} call {i}: where is the config loaded?", task_type="search",
                             stream=not args.json)
        try:
            with Ledger(args.db) as ledger:
                result = ask.run(loaded, req, ledger, on_text=None)
        except TierError as exc:
            if "locked" in str(exc):
                summary["locked"] += 1
            key = getattr(exc, "error_class", None) or type(exc).__name__
            summary["errors"][key] = summary["errors"].get(key, 0) + 1
            continue
        summary["ok"].append(result.call_id)
        summary["cost"] += result.cost_usd or 0.0
    summary["wall_s"] = time.perf_counter() - started
    return summary


def warm_up(loaded, args) -> None:
    """One call into a throwaway ledger: a process's first call pays ~1 s of lazy set-up (HTTP
    client, tokenizer) that would otherwise swamp the timing. Its prompt says "warm-up"."""
    from tiercli import ask
    from tiercli.ledger import Ledger

    with tempfile.TemporaryDirectory() as scratch, Ledger(os.path.join(scratch, "warmup.db")) as ledger:
        ask.run(loaded, ask.AskRequest(prompt="warm-up", task_type="search", stream=not args.json), ledger)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--config", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--json", action="store_true", help="no streaming (like tier ask --json)")
    parser.add_argument("--fork", type=int, default=0, help="fork this many workers after importing litellm")
    args = parser.parse_args()
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

    from tiercli import config, providers

    loaded = config.load(args.config)
    if any(not d.is_offline for d in loaded.config.model_list):
        providers._router(loaded.config, loaded.hash)  # import litellm and build the router before "go"
    if not args.fork:
        warm_up(loaded, args)
        print("ready", flush=True)
        sys.stdin.readline()
        print(json.dumps(worker(loaded, args, args.tag)), flush=True)
        return 0

    import multiprocessing as mp
    import threading

    assert threading.active_count() == 1, "forking with threads alive"
    ctx = mp.get_context("fork")
    ready = ctx.Barrier(args.fork + 1)
    go = ctx.Event()
    results = ctx.Queue()

    def child(k: int) -> None:
        warm_up(loaded, args)
        ready.wait()
        go.wait()
        results.put(worker(loaded, args, f"{args.tag}-{k}"))

    procs = [ctx.Process(target=child, args=(k,)) for k in range(args.fork)]
    for p in procs:
        p.start()
    ready.wait(timeout=300)
    print("ready", flush=True)
    sys.stdin.readline()
    go.set()
    for _ in procs:
        print(json.dumps(results.get(timeout=1800)), flush=True)
    for p in procs:
        p.join(timeout=60)
    return 0 if all(p.exitcode == 0 for p in procs) else 1


if __name__ == "__main__":
    sys.exit(main())
