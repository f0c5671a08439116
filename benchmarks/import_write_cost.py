"""Where `tier import`'s write time goes: the same rows inserted (Ledger.insert_new_calls) into fresh
ledgers: schema 6 as a first import writes it (non-unique indexes built after the rows,
ledger/bulk_insert.py); schema 6 with every index grown row by row (an import into a ledger bigger
than it); schema 4's six extra indexes and per-row spend trigger put back (what migration 5 saved);
without the report's covering index; without any secondary index (the floor). CPU time per row is
printed (wall time too, but on a shared machine only CPU is comparable). Evidence for schema
decisions; tier itself drops an index only inside an import's transaction, and creates it again.

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
from tiercli.ledger import Ledger, bulk_insert  # noqa: E402

V4_INDEXES = [
    "CREATE INDEX ix_calls_session ON calls (session)",
    "CREATE INDEX ix_calls_tier ON calls (tier)",
    "CREATE INDEX ix_calls_served_model ON calls (served_model)",
    "CREATE INDEX ix_calls_task_type ON calls (task_type)",
    "CREATE INDEX ix_calls_started_tier ON calls (started_at, tier)",
    "CREATE INDEX ix_calls_started_task ON calls (started_at, task_type)",
]
V4_TRIGGER = """CREATE TRIGGER calls_spend_insert AFTER INSERT ON calls BEGIN
    INSERT INTO spend_days (day, usd) VALUES (date(NEW.started_at, 'unixepoch'),
        COALESCE(NEW.cost_usd, 0) + COALESCE(NEW.reserved_usd, 0))
    ON CONFLICT(day) DO UPDATE SET usd = usd + excluded.usd; END"""
SECONDARY = ["ix_calls_report", "ix_calls_prompt_hash", "ix_calls_parent_id", "ix_calls_session_prompt",
             "ix_calls_started_at", "ix_calls_task_id", "ix_calls_user_id", "ix_calls_pending", "ix_calls_run",
             "ix_calls_compaction"]


def run(tmp: Path, rows, label: str, drop=(), v4: bool = False, built_after: bool = False) -> None:
    # an import into an empty ledger builds the non-unique indexes after its rows (ledger.bulk_insert);
    # the schema comparisons grow every index row by row, as an import into a bigger ledger does
    bulk_insert.REBUILD_MIN_ROWS = 1_000 if built_after else 1 << 62
    path = tmp / f"w{time.perf_counter_ns()}.db"
    led = Ledger(path)
    raw = led._raw
    assert raw is not None
    for ix in drop:
        raw.execute(f"DROP INDEX IF EXISTS {ix}")  # IF EXISTS: schema 7 has no prompt_hash/task_id index
    if v4:
        for stmt in V4_INDEXES:
            raw.execute(stmt)
        raw.execute("DROP TRIGGER calls_spend_insert")
        raw.execute(V4_TRIGGER)
        rows = [{**r, "kind": "import-v4"} for r in rows]  # the bulk spend of schema 5 leaves these to the trigger
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
            run(Path(tmp), rows, "schema 6, indexes built after the rows (a first import)", built_after=True)
            run(Path(tmp), rows, "schema 6, indexes grown row by row (into a bigger ledger)")
            run(Path(tmp), rows, "schema 4's six indexes and per-row spend trigger put back", v4=True)
            run(Path(tmp), rows, "schema 6 without ix_calls_report", drop=["ix_calls_report"])
            run(Path(tmp), rows, "schema 6 without any secondary index", drop=SECONDARY)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
