"""Per-row write cost of the ledger: imported rows and gateway-style rows, CPU time per row.

- import rows: `tier import claude-code`'s rows (parsed once) written by Ledger.insert_new_calls into
  a ledger that already holds more calls than the batch (every index grown row by row, as in a
  second import), and into an empty one (a first import: non-unique indexes built after the rows).
- gateway rows: what `tier serve` writes per call, one transaction each: a pending row
  (upsert_call) then its settlement (upsert_call with `update`), kind main, in sessions of ~60 calls
  whose agent tasks repeat their instruction (prompt_hash) on every step, and some tasks asked
  again (retries), into a ledger of --base calls.

Measures whatever tiercli is on the path, so a base checkout runs the same script:

    PYTHONPATH=src .venv/bin/python benchmarks/ledger_write_cost.py
    PYTHONPATH=/tmp/base/src .venv/bin/python benchmarks/ledger_write_cost.py   # the same, older schema

CPU time (user + system of this process) per row is the figure to compare on a shared machine;
wall time is printed too.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from import_claude_code import DEFAULT_SAMPLES, generate  # noqa: E402

from tiercli.importers.claude_code import parse_claude_code  # noqa: E402
from tiercli.ledger import SCHEMA_VERSION, Ledger  # noqa: E402

T0 = 1_790_000_000.0


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(f"{path}{suffix}")
        except FileNotFoundError:
            pass


def _filler(n: int, prefix: str) -> list[dict]:
    """Calls already in the ledger (main and import rows, sessions, tasks, prompts)."""
    return [{"id": f"{prefix}{i:08d}", "started_at": T0 - 86_400 + i * 0.05, "session": f"{prefix}s{i // 60}",
             "kind": "main" if i % 3 else "import", "source": "tier", "status": "ok", "tier": "tier2",
             "task_id": f"{prefix}t{i // 6}", "prompt_hash": f"{prefix}h{i // 6:012x}", "cost_usd": 0.01,
             "input_tokens": 100, "output_tokens": 50, "external_id": None if i % 3 else f"{prefix}e{i}"}
            for i in range(n)]


def import_rows(tmp: Path, rows: list[dict], into_bigger: bool) -> tuple[float, float]:
    path = tmp / f"i{time.perf_counter_ns()}.db"
    with Ledger(path) as led:
        if into_bigger:
            led.insert_new_calls(_filler(len(rows) + 1, "f"))
        c0, t0 = _cpu(), time.perf_counter()
        added, _ = led.insert_new_calls(rows)
        cpu, wall = _cpu() - c0, time.perf_counter() - t0
        assert added == len(rows)
    _remove(path)
    return cpu / len(rows), wall / len(rows)


def gateway_rows(tmp: Path, n: int, base: int, fsync: bool = True) -> tuple[float, float]:
    path = tmp / f"g{time.perf_counter_ns()}.db"
    with Ledger(path) as led:
        led.insert_new_calls(_filler(base, "f"))
        if not fsync:  # the SQL's own CPU, without the commits' fsync (noisy on a shared disk)
            led._raw.execute("PRAGMA synchronous=OFF")
        pid = os.getpid()
        c0, t0 = _cpu(), time.perf_counter()
        prompt = ""
        for i in range(n):
            task = i // 6
            if i % 6 == 0:  # a new task; one in ten asks the previous one's instruction again
                prompt = prompt if task % 10 == 9 else f"h{task:012x}"
            at = T0 + i * 2.0
            call = {"id": f"g{i:08d}", "started_at": at, "session": f"s{i // 60}", "kind": "main",
                    "source": "tier", "status": "pending", "tier": "tier2", "requested_model": "m",
                    "task_type": "bug_fix", "decision_source": "local", "decided_tier": "tier2",
                    "task_id": f"t{task}", "prompt_hash": prompt, "config_hash": "cfg", "reserved_usd": 0.05,
                    "owner_pid": pid, "owner_started": T0}
            led.upsert_call(call)
            settled = {**call, "status": "ok", "ended_at": at + 1.5, "served_model": "m", "served_tier": "tier2",
                       "input_tokens": 1200, "cache_read_tokens": 30_000, "output_tokens": 400, "cost_usd": 0.031,
                       "price_source": "table", "latency_ms": 1500.0, "reserved_usd": None, "owner_pid": None,
                       "owner_started": None}
            led.upsert_call(settled, update=["status", "ended_at", "served_model", "served_tier", "input_tokens",
                                             "cache_read_tokens", "output_tokens", "cost_usd", "price_source",
                                             "latency_ms", "reserved_usd", "owner_pid", "owner_started"])
        cpu, wall = _cpu() - c0, time.perf_counter() - t0
    _remove(path)
    return cpu / n, wall / n


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=10.0, help="claude-code logs generated for the import rows")
    ap.add_argument("--calls", type=int, default=2000, help="gateway calls written")
    ap.add_argument("--base", type=int, default=50_000, help="calls in the ledger before the gateway's")
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--only", choices=["import", "gateway"], help="measure only these rows")
    ap.add_argument("--no-fsync", action="store_true", help="gateway rows with synchronous=OFF (the SQL's CPU only)")
    args = ap.parse_args()
    samples = next((p for p in DEFAULT_SAMPLES if p.is_dir()), None)
    if samples is None:
        print("no sample sessions found", file=sys.stderr)
        return 2
    print(f"schema {SCHEMA_VERSION} ({Path(sys.modules['tiercli'].__file__).parent})")
    with tempfile.TemporaryDirectory(prefix="tier-bench-ledger-write-") as tmp:
        rows: list[dict] = []
        if args.only != "gateway":
            logs = Path(tmp) / "projects"
            generate(samples, logs, int(args.mb * 1_000_000))
            rows, _ = parse_claude_code([logs])
        for _ in range(args.repeat):
            if args.only != "gateway":
                cpu, wall = import_rows(Path(tmp), rows, into_bigger=True)
                print(f"import row, into a bigger ledger ({len(rows):,} rows)    CPU {cpu * 1e6:6.1f} us/row  "
                      f"wall {wall * 1e6:6.1f} us", flush=True)
                cpu, wall = import_rows(Path(tmp), rows, into_bigger=False)
                print(f"import row, first import ({len(rows):,} rows)            CPU {cpu * 1e6:6.1f} us/row  "
                      f"wall {wall * 1e6:6.1f} us", flush=True)
            if args.only != "import":
                cpu, wall = gateway_rows(Path(tmp), args.calls, args.base, fsync=not args.no_fsync)
                print(f"gateway call, pending + settle ({args.calls:,} calls{', no fsync' if args.no_fsync else ''}) CPU {cpu * 1e6:6.1f} us/call "
                      f"wall {wall * 1e6:6.1f} us", flush=True)
    print(f"load average {os.getloadavg()[0]:.1f} {os.getloadavg()[1]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
