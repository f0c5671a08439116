"""Benchmark `tier report --all --json` on a PostgreSQL ledger in a fresh process, against the same
report on the same calls in a SQLite ledger (the anchor), run alternately; recorded in
bench-out/results.json (harness.record).

    python benchmarks/report_pg.py                    # 1M calls
    python benchmarks/report_pg.py --size 100k --dir /tmp/ledgers --repeat 3

The calls are benchmarks/report.py's (the same generator, seed and prompt texts): its SQLite ledger
(reused from --dir when present), and COPY of the same rows into a database of a PostgreSQL server
started like the test suite's (tests/pgserver.py: Debian's binaries, 127.0.0.1, fsync off). The load
runs with session_replication_role = replica (no per-row trigger), then fills spend_days and
retry_candidates (migrations.V7_FILL) as the migrations would, and runs ANALYZE (autovacuum does the same on a real server
a minute after such a load). The server's own CPU is not in the CPU note (it is not a child).
"""

from __future__ import annotations

import argparse
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))

import harness  # noqa: E402
import report as sqlite_bench  # noqa: E402


def load_postgresql(url: str, n: int, prompt_chars: int) -> float:
    """COPY the benchmark's calls and feedback into a fresh ledger at `url`; seconds taken."""
    import psycopg

    from tiercli.ledger import open_ledger
    from tiercli.ledger.migrations import V7_FILL
    from tiercli.ledger.pg_schema import SPEND

    open_ledger(url).close()  # the schema, indexes and triggers of the real thing
    t0 = time.perf_counter()
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("SET session_replication_role = replica")  # no per-row trigger during the load
        with conn.cursor() as cur:
            with cur.copy(f"COPY calls ({', '.join(sqlite_bench.COLUMNS)}) FROM STDIN") as copy:
                for row in sqlite_bench._rows(n, prompt_chars=prompt_chars):
                    copy.write_row(row)
        ids = [r[0] for r in conn.execute("SELECT id FROM calls WHERE kind = 'main' ORDER BY id LIMIT %s", [n // 200])]
        rnd = random.Random(11)
        with conn.cursor() as cur:
            with cur.copy("COPY feedback (call_id, created_at, verdict) FROM STDIN") as copy:
                for cid in ids[::2]:
                    copy.write_row((cid, sqlite_bench.END, "bad" if rnd.random() < 0.3 else "good"))
        conn.execute("SET session_replication_role = origin")
        conn.execute(f"INSERT INTO spend_days (day, usd) SELECT tier_day(started_at), SUM({SPEND.format(r='calls')}) "
                     "FROM calls GROUP BY 1 ON CONFLICT (day) DO UPDATE SET usd = EXCLUDED.usd")
        conn.execute(V7_FILL)  # the retry pairs the insert trigger would have kept (schema 7)
        conn.execute("ANALYZE calls")
        conn.execute("ANALYZE feedback")
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="1m", help="calls (10k, 100k, 1m)")
    ap.add_argument("--dir", help="keep (and reuse) the generated SQLite ledger here")
    ap.add_argument("--repeat", type=int, default=5, help="fresh-process runs per engine (median)")
    ap.add_argument("--prompt-chars", type=int, default=400)
    ap.add_argument("--pythonpath", help="run `tier` from this source tree (default: this script's own src)")
    args = ap.parse_args(argv)
    from pgserver import _bin_dir, start_server

    n = sqlite_bench._size(args.size)
    name = f"tier report --all, {sqlite_bench._size_label(n)} calls, PostgreSQL, fresh process"
    if _bin_dir() is None:
        harness.skip(name, "PostgreSQL server binaries not installed (make postgres-server)")
        return 0
    tmp = tempfile.TemporaryDirectory(prefix="tier-bench-pg-")
    base = Path(args.dir) if args.dir else Path(tmp.name)
    base.mkdir(parents=True, exist_ok=True)
    lite = base / f"ledger-{n}.db"
    if not lite.exists():
        sqlite_bench.generate(lite, n, args.prompt_chars)
    sqlite_bench._set_report_index(lite, True)
    cfg = Path(tmp.name) / "config.yaml"
    cfg.write_text(sqlite_bench.CONFIG_YAML)
    server = start_server()
    try:
        url = server.create_database()
        load_s = load_postgresql(url, n, args.prompt_chars)
        print(f"PostgreSQL: {n:,} calls loaded by COPY in {load_s:.1f} s")
        sys.stdout.flush()
        pg = harness.tier_argv("report", "--all", "--json", "-c", str(cfg), "--db", url)
        sq = harness.tier_argv("report", "--all", "--json", "-c", str(cfg), "--db", str(lite))
        # the tier of this script's own tree, not whichever the interpreter has installed (a base
        # checkout's copy of this script would otherwise time, and migrate, with this tree's code)
        env = {"PYTHONPATH": args.pythonpath or str(ROOT / "src")}
        t_pg, t_sq = harness.paired(pg, sq, args.repeat, env_a=env, env_b=env)
        cpu_pg, cpu_sq = harness.cpu_median(pg), harness.cpu_median(sq)
        note = (f"tier's CPU {cpu_pg:.3f} s vs {cpu_sq:.3f} s on SQLite (the server's CPU not counted); "
                f"PostgreSQL {server.bin_dir.parent.name}; loaded by COPY in "
                f"{load_s:.0f} s; {harness.load_average()}")
        harness.record(name, t_pg, "s",
                       anchor="the same report on a SQLite ledger", anchor_value=t_sq, note=note)
    finally:
        server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
