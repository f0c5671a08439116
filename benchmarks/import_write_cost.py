"""Where `tier import`'s write time goes: the same rows inserted into fresh ledgers with parts of the
schema removed (the spend trigger, the report index, five secondary indexes). CPU time per row is
printed (wall time too, but on a shared machine only CPU is comparable). Evidence for a schema
proposal; tier itself never drops an index.

    PYTHONPATH=src .venv/bin/python benchmarks/import_write_cost.py [--mb 20] [--repeat 2]
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
from tiercli.ledger import Ledger  # noqa: E402

FIVE = ["ix_calls_tier", "ix_calls_task_type", "ix_calls_served_model", "ix_calls_started_tier", "ix_calls_started_task"]


def run(tmp: Path, rows, label: str, drop=(), trigger: bool = True) -> None:
    path = tmp / f"w{time.perf_counter_ns()}.db"
    led = Ledger(path)
    for ix in drop:
        led._raw.execute(f"DROP INDEX {ix}")
    if not trigger:
        led._raw.execute("DROP TRIGGER calls_spend_insert")
    c0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.perf_counter()
    led.insert_new_calls(rows)
    wall = time.perf_counter() - t0
    c1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = c1.ru_utime - c0.ru_utime + c1.ru_stime - c0.ru_stime
    led.close()
    for suffix in ("", "-wal", "-shm"):
        try:
            os.remove(f"{path}{suffix}")
        except FileNotFoundError:
            pass
    print(f"{label:58s} CPU {cpu * 1e6 / len(rows):5.0f} us/row  wall {wall:.2f} s", flush=True)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=20.0)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    samples = next((p for p in DEFAULT_SAMPLES if p.is_dir()), None)
    if samples is None:
        print("no sample sessions found", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="tier-bench-write-") as tmp:
        logs = Path(tmp) / "projects"
        generate(samples, logs, int(args.mb * 1_000_000))
        rows, _ = parse_claude_code([logs])
        print(f"{len(rows):,} rows")
        for _ in range(args.repeat):
            run(Path(tmp), rows, "schema v3 as is (15 indexes + spend trigger)")
            run(Path(tmp), rows, "without the spend_days insert trigger", trigger=False)
            run(Path(tmp), rows, "without ix_calls_report", drop=["ix_calls_report"])
            run(Path(tmp), rows, "without 5 secondary indexes (" + ", ".join(i[9:] for i in FIVE) + ")", drop=FIVE)
            run(Path(tmp), rows, "without those 5 and the trigger", drop=FIVE, trigger=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
