"""`tier report` gives byte-identical output before and after a ledger change: ~20 argument sets
(windows, --session, --user, --by views, sessions/tasks, --json/--csv, retry windows) run by two
source trees over copies of the same ledger, at the same frozen time.

    .venv/bin/python benchmarks/report_same.py --base-src /tmp/base/src [--branch-src src] [--calls 6000]

The ledger is made by the base tree (its schema), filled through sqlite3 (its triggers fire) with
varied calls: sessions, agent tasks of several steps repeating their instruction, instructions asked
again (retries), every kind, users and none, errors, unpriced calls. The branch's copy is migrated by
the branch's first command. Exit status 1 when any output differs.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOW = 1_796_000_000.0  # the frozen time.time() of every run
DAY = 86_400.0
TIERS = {"tier1": "claude-haiku-4-5", "tier2": "claude-sonnet-4-5", "tier3": "claude-opus-4-5"}
RUN = ("import os, sys, time\n_t = float(os.environ['REPORT_SAME_NOW'])\ntime.time = lambda: _t\n"
       "from tiercli.cli import main\nsys.argv = ['tier', *sys.argv[1:]]\nmain()\n")


def calls(n: int, seed: int = 17) -> list[dict]:
    rnd = random.Random(seed)
    rows: list[dict] = []
    i = 0
    t = NOW - 8.5 * DAY  # the last calls an hour or so before NOW
    while i < n:
        session, user = f"s{i // 80:04d}", rnd.choice(["alice", "bob", None])
        config = rnd.choice(["cfgA", "cfgB"])
        prev_prompt = None
        for _task in range(rnd.randint(1, 8)):
            task_id = f"t{i:06d}" if rnd.random() < 0.6 else None
            retry = prev_prompt is not None and rnd.random() < 0.15
            prompt = prev_prompt if retry else f"h{i:08d}"
            prev_prompt = prompt
            tier = rnd.choice(list(TIERS))
            task_type = rnd.choice(["bug_fix", "feature", "search", None])
            for _step in range(rnd.randint(1, 5) if task_id else 1):
                t += rnd.uniform(1, 240)
                kind = rnd.choices(["main", "classifier", "compaction", "import", "run"], [80, 6, 3, 10, 1])[0]
                status = rnd.choices(["ok", "error", "interrupted", "refused"], [90, 5, 2, 3])[0]
                unpriced = status == "ok" and rnd.random() < 0.04
                inp, out = rnd.randint(0, 4000), rnd.randint(0, 2000)
                cread = rnd.choice([0, rnd.randint(0, 50_000)])
                cost = None if unpriced or status == "refused" else round(inp * 3e-6 + out * 15e-6 + cread * 3e-7, 9)
                rows.append({
                    "id": f"c{i:07d}", "started_at": t, "ended_at": t + 2, "session": session, "kind": kind,
                    "source": "claude-code" if kind == "import" else "tier", "status": status,
                    "task_type": task_type, "decision_source": rnd.choice(["local", "override", "cascade", "sticky"]),
                    "decided_tier": rnd.choice(list(TIERS)), "tier": tier, "served_tier": tier,
                    "requested_model": TIERS[tier], "served_model": "local/x" if unpriced else TIERS[tier],
                    "input_tokens": inp, "cache_read_tokens": cread, "output_tokens": out, "cost_usd": cost,
                    "unpriced": int(unpriced), "prompt_hash": prompt if kind == "main" else f"x{i}",
                    "task_id": task_id, "config_hash": config, "user_id": user,
                    "fallback_count": int(rnd.random() < 0.05), "latency_ms": rnd.uniform(200, 9000),
                    "parent_id": f"c{i + 1:07d}" if kind in ("classifier", "compaction") else None,
                    "external_id": f"claude-code:{i}" if kind == "import" else None,
                    "meta_json": '{"history_tokens": 40000}' if kind == "compaction" else None,
                    "error_class": "RateLimitError" if status == "error" else None,
                })
                i += 1
    return rows[:n]


ARGSETS = [
    ["--all"], ["--all", "--json"], ["--all", "--csv"], [], ["--last", "7d"], ["--since", "2h"],
    ["--since", "2026-11-28", "--until", "2026-11-30T12:00:00", "--json"], ["--session", "s0003", "--all"],
    ["--session", "s0070", "--json"], ["--user", "alice", "--all", "--json"], ["--user", "(none)", "--all"],
    ["--by", "day", "--all"], ["--by", "user", "--all", "--json"], ["--by", "task", "--all"],
    ["--by", "session", "--last", "7d"], ["--by", "model", "--all", "--csv"],
    ["--by", "week", "--all", "--tz", "America/New_York"], ["sessions", "--all"], ["tasks", "--all"],
    ["tasks", "--all", "--json"], ["--all", "--retry-window", "60", "--json"],
    ["--all", "--retry-window", "3600"], ["--since", "3d", "--user", "bob", "--retry-window", "1200", "--json"],
]


def run(src: Path, argv: list[str], db: Path, cfg: Path) -> tuple[int, bytes, bytes]:
    env = {**os.environ, "PYTHONPATH": str(src), "REPORT_SAME_NOW": str(NOW), "TZ": "UTC", "NO_COLOR": "1",
           "TIER_NO_WORKER": "1", "COLUMNS": "160"}
    proc = subprocess.run([sys.executable, "-c", RUN, "report", *argv, "-c", str(cfg), "--db", str(db)],
                          capture_output=True, env=env, timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--base-src", required=True, type=Path)
    ap.add_argument("--branch-src", default=ROOT / "src", type=Path)
    ap.add_argument("--calls", type=int, default=6000)
    args = ap.parse_args()
    cfg = ROOT / "sample_configs" / "offline.yaml"
    with tempfile.TemporaryDirectory(prefix="tier-report-same-") as tmp:
        base_db, branch_db = Path(tmp) / "base.db", Path(tmp) / "branch.db"
        subprocess.run([sys.executable, "-c", "import sys; from tiercli.ledger import Ledger; Ledger(sys.argv[1]).close()",
                        str(base_db)], env={**os.environ, "PYTHONPATH": str(args.base_src)}, check=True)
        rows = calls(args.calls)
        keys = sorted(rows[0])
        con = sqlite3.connect(base_db)
        con.executemany(f"INSERT INTO calls ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})",
                        [[r[k] for k in keys] for r in rows])
        con.commit()
        version = con.execute("SELECT MAX(version) FROM schema_migrations").fetchone()[0]
        con.close()
        shutil.copy(base_db, branch_db)
        print(f"{len(rows):,} calls; base ledger at schema {version}")
        differ = 0
        for argv in ARGSETS:
            a, b = run(args.base_src, argv, base_db, cfg), run(args.branch_src, argv, branch_db, cfg)
            same = a == b
            differ += not same
            print(f"{'same' if same else 'DIFFERENT':9s} exit {a[0]}/{b[0]} {len(a[1]):7,d} bytes  tier report {' '.join(argv)}")
            if a[0] != 0:
                print("   base stderr:", a[2].decode(errors="replace").strip()[:300])
        con = sqlite3.connect(branch_db)
        print(f"branch ledger now at schema {con.execute('SELECT MAX(version) FROM schema_migrations').fetchone()[0]}")
        con.close()
    print(f"{len(ARGSETS) - differ} of {len(ARGSETS)} argument sets byte-identical")
    return 1 if differ else 0


if __name__ == "__main__":
    raise SystemExit(main())
