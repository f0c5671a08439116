"""Benchmark `tier report` on generated ledgers: in process (build_report) and as a fresh process
against its anchors, written to bench-out/results.json (see harness.py).

    python benchmarks/report.py                       # 10k, 100k and 1M calls
    python benchmarks/report.py --sizes 10k,100k      # a subset
    python benchmarks/report.py --dir /tmp/ledgers    # keep (and reuse) the generated ledgers
    python benchmarks/report.py --no-fresh            # in process only (no anchors, nothing recorded)
    python benchmarks/report.py --pythonpath OLD/src --label before   # another tiercli tree, fresh only

Fresh process (issue 17), each pair run alternately, medians of --fresh-repeat runs:
    `tier report --all --json`, 1M calls   vs the same grouped query (tiercli.ledger.queries.grand_steps,
                                           parameters inlined) in the sqlite3 CLI: target ratio <= 1.3
    `tier report --all --json`, 10k calls  target <= 0.35 s; anchor `llm logs -n 1` (llm in
                                           bench-out/venv-llm, an empty LLM_USER_PATH)
Other sizes are recorded with the sqlite3 anchor, without a target. tiercli's bytecode is written
first (harness.compile_bytecode), as an installed tier has it.

For each size it builds a ledger (schema made by `Ledger(path)`, rows by sqlite3 executemany in one
transaction), then times build_report for the whole ledger (`--all`) and for the default window
(`--since 48h`): the first call (in this process: loads the price map, warms SQLite's page cache)
and the best of --repeat more, with microseconds per ledger row.
In process it prints only; the fresh-process figures above are recorded.

The report's covering index (tiercli.report.REPORT_INDEX_SQL) is created when the ledger lacks it
(as a ledger made by a tiercli whose migration does not add it yet would); --no-report-index
drops it instead, to measure the fallback (a sorting GROUP BY).

The generated data follows a plausible 60-day history: about 12% classifier and 2% compaction calls
on the cheapest tier, 5% imported calls (no tier), main calls split 50/36/14 across tier1..tier3,
1.5% fallbacks, 1% overrides, 2% retried prompts, 2% errors, 0.5% unpriced calls, three config
changes, sessions of about 60 calls, and large cache reads on most calls.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

import yaml  # noqa: E402

from tiercli.config import validate  # noqa: E402
from tiercli.ledger.db import Ledger  # noqa: E402
from tiercli.report import REPORT_INDEX_NAME, REPORT_INDEX_SQL, build_report  # noqa: E402

sys.path.insert(0, str(ROOT / "benchmarks"))
import harness  # noqa: E402

DAY = 86_400.0
DAYS = 60
END = 1_790_000_000.0  # a fixed "now" (2026-09-21), so runs are comparable

CONFIG_YAML = """
model_list:
  - {model_name: tier1, litellm_params: {model: claude-haiku-4-5, api_key: os.environ/ANTHROPIC_API_KEY}}
  - {model_name: tier2, litellm_params: {model: claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY}}
  - {model_name: tier3, litellm_params: {model: claude-opus-4-5, api_key: os.environ/ANTHROPIC_API_KEY}}
router_settings:
  fallbacks: [{tier1: [tier2]}, {tier2: [tier3]}]
"""

TIERS = ["tier1", "tier2", "tier3"]
MODEL = {"tier1": "claude-haiku-4-5", "tier2": "claude-sonnet-4-5", "tier3": "claude-opus-4-5"}
# $/token: input, output, cache read, cache write
PRICE = {
    "claude-haiku-4-5": (1e-6, 5e-6, 0.1e-6, 1.25e-6),
    "claude-sonnet-4-5": (3e-6, 15e-6, 0.3e-6, 3.75e-6),
    "claude-opus-4-5": (5e-6, 25e-6, 0.5e-6, 6.25e-6),
}
TASKS = {  # task type -> (weight, tier weights)
    "file_lookup": (14, (85, 13, 2)),
    "search": (12, (85, 13, 2)),
    "docstring": (6, (80, 18, 2)),
    "reformat": (5, (85, 13, 2)),
    "test_gen": (10, (60, 35, 5)),
    "bug_fix": (16, (25, 60, 15)),
    "feature": (14, (20, 60, 20)),
    "code_review": (9, (25, 60, 15)),
    "architecture": (4, (5, 35, 60)),
    "cross_refactor": (5, (5, 35, 60)),
    "algorithm": (5, (5, 40, 55)),
}
TASK_NAMES = list(TASKS)
TASK_WEIGHTS = [TASKS[t][0] for t in TASK_NAMES]
ERRORS = ["RateLimitError", "APIConnectionError", "ContextWindowExceededError", "InternalServerError"]
CONFIGS = ["cfg-a0000000000001", "cfg-b0000000000002", "cfg-c0000000000003"]

COLUMNS = (
    "id started_at ended_at session kind source task_type decision_source decided_tier tier served_tier "
    "requested_model served_model fallback_count input_tokens cache_read_tokens cache_write_tokens "
    "cache_write_1h_tokens output_tokens cost_usd unpriced status error_class prompt_hash config_hash "
    "attempts latency_ms output_estimated prompt_text parent_id"
).split()


def _rows(n: int, seed: int = 7, prompt_chars: int = 0):
    rnd = random.Random(seed)
    # prompt texts are stored by default (ledger.store_prompts: full): they widen every table row,
    # which a report reading the table (not its covering index) pays for
    corpus = "".join(rnd.choice("abcdefghijklmnopqrstuvwxyz      \n") for _ in range(4096)) * 4
    start = END - DAYS * DAY
    step = DAYS * DAY / n
    session = None
    left_in_session = 0
    recent: list[str] = []
    for i in range(n):
        t = start + i * step + rnd.random() * step
        if left_in_session <= 0:
            session = f"s{i:08d}"
            left_in_session = int(rnd.expovariate(1 / 60)) + 1
            recent = []
        left_in_session -= 1
        day_index = int((t - start) / DAY)
        config_hash = CONFIGS[0] if day_index < 20 else CONFIGS[1] if day_index < 45 else CONFIGS[2]
        r = rnd.random()
        kind = "main"
        task = rnd.choices(TASK_NAMES, TASK_WEIGHTS)[0]
        decision, decided = "local", None
        if r < 0.12:
            kind, tier, decision = "classifier", "tier1", None
        elif r < 0.14:
            kind, tier, decision = "compaction", "tier2", None
        elif r < 0.19:
            kind, tier, decision = "import", None, "import"
        else:
            tier = rnd.choices(TIERS, TASKS[task][1])[0]
            if rnd.random() < 0.01:
                decided = tier
                tier = rnd.choice(TIERS)
                decision = "override"
        served_tier = tier
        fallback = 0
        if tier in ("tier1", "tier2") and rnd.random() < 0.015:
            served_tier = TIERS[TIERS.index(tier) + 1]
            fallback = 1
        model = MODEL[served_tier] if served_tier else rnd.choice(list(PRICE))
        unpriced = rnd.random() < 0.005
        if unpriced:
            model = "local/llama-3.3-70b"
        status = "ok"
        error_class = None
        if rnd.random() < 0.02:
            status, error_class = "error", rnd.choice(ERRORS)
        elif rnd.random() < 0.002:
            status = "interrupted"
        if kind == "classifier":
            inp, cread, cwrite, out = rnd.randint(200, 900), 0, 0, rnd.randint(1, 8)
        else:
            inp = rnd.randint(50, 4000)
            cread = rnd.randint(0, 60_000) if rnd.random() < 0.8 else 0
            cwrite = rnd.randint(0, 8000) if rnd.random() < 0.3 else 0
            out = rnd.randint(20, 3000)
        cwrite_1h = cwrite // 4 if rnd.random() < 0.1 else 0
        if status == "error":
            inp = cread = cwrite = cwrite_1h = out = 0
        if unpriced:
            cost = None
        else:
            p = PRICE[model]
            cost = inp * p[0] + out * p[1] + cread * p[2] + cwrite * p[3]
        if kind == "main" and recent and rnd.random() < 0.02:
            prompt_hash = rnd.choice(recent)  # the same prompt again in the session: a retry
        else:
            prompt_hash = hashlib.blake2b(f"{seed}-{i}".encode(), digest_size=8).hexdigest()  # 16 hex, as ask.py
            if kind == "main":
                recent = (recent + [prompt_hash])[-5:]
        yield (
            f"c{i:010d}", t, t + 2.0, session, kind, "tier" if kind != "import" else "claude-code",
            task if kind != "classifier" else None, decision, decided, tier, served_tier,
            model, model if status == "ok" else None, fallback, inp, cread, cwrite, cwrite_1h, out,
            cost, int(unpriced), status, error_class, prompt_hash, config_hash, 1 + fallback,
            rnd.uniform(300, 9000), 0,
            corpus[i % 4096:i % 4096 + rnd.randint(prompt_chars // 2, prompt_chars)] if prompt_chars else None,
            f"c{i + 1:010d}" if kind in ("classifier", "compaction") else None,  # the call it served
        )


def generate(path: Path, n: int, prompt_chars: int = 0) -> None:
    Ledger(path).close()  # the schema, indexes and pragmas of the real thing
    con = sqlite3.connect(path, isolation_level=None)
    try:
        con.execute("PRAGMA journal_mode=WAL")
        con.execute("PRAGMA synchronous=OFF")
        con.execute("BEGIN")
        sql = f"INSERT INTO calls ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
        con.executemany(sql, _rows(n, prompt_chars=prompt_chars))
        con.execute("COMMIT")
        ids = [r[0] for r in con.execute("SELECT id FROM calls WHERE kind = 'main' ORDER BY id LIMIT ?", (n // 200,))]
        rnd = random.Random(11)
        con.execute("BEGIN")
        con.executemany(
            "INSERT INTO feedback (call_id, created_at, verdict, note) VALUES (?, ?, ?, NULL)",
            [(cid, END, "bad" if rnd.random() < 0.3 else "good") for cid in ids[::2]],
        )
        con.execute("COMMIT")
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no ANALYZE: real ledgers have no statistics
    finally:
        con.close()


def _set_report_index(path: Path, wanted: bool) -> str:
    """Create or drop the report's covering index; says what it did ('' when nothing)."""
    con = sqlite3.connect(path, isolation_level=None)
    try:
        row = con.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (REPORT_INDEX_NAME,)).fetchone()
        present = row is not None

        def columns(sql: str) -> str:
            return " ".join(sql.split("(", 1)[1].split())

        if wanted and present and columns(row[0]) != columns(REPORT_INDEX_SQL):
            con.execute(f"DROP INDEX {REPORT_INDEX_NAME}")  # an older definition
            present = False
        if wanted and not present:
            t0 = time.perf_counter()
            con.execute(REPORT_INDEX_SQL)
            return f"{REPORT_INDEX_NAME} created in {time.perf_counter() - t0:.1f}s"
        if not wanted and present:
            con.execute(f"DROP INDEX {REPORT_INDEX_NAME}")
            return f"{REPORT_INDEX_NAME} dropped"
        return f"{REPORT_INDEX_NAME} {'present' if present else 'absent'}"
    finally:
        con.close()


def _size(text: str) -> int:
    text = text.strip().lower()
    mult = 1
    if text.endswith("k"):
        mult, text = 1_000, text[:-1]
    elif text.endswith("m"):
        mult, text = 1_000_000, text[:-1]
    return int(float(text) * mult)


def _time(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def _size_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k" if n % 1000 == 0 else str(n)


def anchor_sql() -> str:
    """The report's grouped pass as the sqlite3 CLI runs it: the statements tier runs on SQLite
    (queries.grand_steps: the calls grouped into a temp table, the rollups over it into another, the
    override calls into a third; then both read back), parameters inlined."""
    from tiercli.ledger.queries import Where, grand_steps

    statements = []
    steps = [*grand_steps(Where(None, None, None)), ("SELECT * FROM temp.report_roll", {}),
             ("SELECT * FROM temp.report_overrides", {})]
    for sql, params in steps:
        for key in sorted(params, key=len, reverse=True):  # rk_10 before rk_1
            value = params[key]
            sql = sql.replace(f":{key}", "'" + value.replace("'", "''") + "'" if isinstance(value, str) else repr(value))
        statements.append(sql.strip() + ";")
    return "\n".join(statements)


def _cpu_note(tier: list[str], anchor: list[str] | None) -> str:
    """CPU seconds (user + sys, medians) of both sides: steadier than wall time on a shared machine."""
    mine, theirs = harness.cpu_median(tier), harness.cpu_median(anchor) if anchor else None
    note = f"CPU {mine:.3f} s" if mine is not None else ""
    if theirs is not None:
        note += f" vs anchor {theirs:.3f} s (ratio {mine / theirs:.2f})"
    load = harness.load_average()
    return f"{note}; {load}" if load else note


def fresh(path: Path, n: int, base: Path, args) -> None:
    """`tier report --all --json` in a fresh process, against its anchors, recorded."""
    cfg = base / "config.yaml"
    cfg.write_text(CONFIG_YAML)
    env = {"PYTHONPATH": args.pythonpath} if args.pythonpath else None
    tier = harness.tier_argv("report", "--all", "--json", "-c", str(cfg), "--db", str(path))
    size = _size_label(n)
    suffix = f" ({args.label})" if args.label else ""
    name = f"tier report --all, {size} calls, fresh process{suffix}"
    sqlite = harness.sqlite3_cli()
    if sqlite is not None:
        t_tier, t_sql = harness.paired(tier, [sqlite, str(path), anchor_sql()], args.fresh_repeat, env_a=env)
    else:
        t_tier, t_sql = harness.time_command(tier, args.fresh_repeat, env=env), None
    if n >= 1_000_000:
        harness.record(name, t_tier, "s", anchor="the same grouped query in the sqlite3 CLI", anchor_value=t_sql,
                       target="ratio <= 1.3", note=_cpu_note(tier, [sqlite, str(path), anchor_sql()] if sqlite else None))
        return
    if n == 10_000:
        llm = harness.ensure_llm()
        t_llm = None
        home = harness.llm_home(base / "llm-home") if llm is not None else None
        if home is not None:
            t_llm = harness.run_anchor("llm logs -n 1", [llm, "logs", "-n", "1"], args.fresh_repeat,
                                       env={"LLM_USER_PATH": str(home)})
        note = _cpu_note(tier, llm and [llm, "logs", "-n", "1"])
        if t_sql is not None:
            note += f"; the sqlite3 CLI's grouped query: {t_sql:.3f} s"
        harness.record(name, t_tier, "s", anchor="llm logs -n 1", anchor_value=t_llm, target="value <= 0.35",
                       note=note)
        return
    harness.record(name, t_tier, "s", anchor="the same grouped query in the sqlite3 CLI", anchor_value=t_sql,
                   note=_cpu_note(tier, [sqlite, str(path), anchor_sql()] if sqlite else None))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="10k,100k,1m", help="comma-separated row counts (10k, 100k, 1m, 250000)")
    ap.add_argument("--dir", help="keep the generated ledgers here and reuse those already present")
    ap.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best is printed")
    ap.add_argument("--no-report-index", action="store_true", help=f"measure without {REPORT_INDEX_NAME}")
    ap.add_argument("--prompt-chars", type=int, default=400,
                    help="stored prompt text per call, up to this many characters (default 400)")
    ap.add_argument("--no-fresh", action="store_true", help="skip the fresh-process runs and their anchors")
    ap.add_argument("--fresh-repeat", type=int, default=5, help="fresh-process runs per side (median)")
    ap.add_argument("--pythonpath", help="run the fresh `tier` from this source tree (e.g. an older checkout's src)")
    ap.add_argument("--label", default="", help="suffix for the recorded names (e.g. before)")
    args = ap.parse_args(argv)
    sizes = [_size(s) for s in args.sizes.split(",") if s.strip()]
    config = validate(yaml.safe_load(CONFIG_YAML), "benchmark")
    tmp = None
    if args.dir:
        base = Path(args.dir)
        base.mkdir(parents=True, exist_ok=True)
    else:
        tmp = tempfile.TemporaryDirectory(prefix="tier-bench-")
        base = Path(tmp.name)
    print(f"{'rows':>9}  {'window':<7} {'in window':>9}  {'first s':>8}  {'best s':>8}  {'us/row':>7}  notes")
    try:
        for n in sizes:
            path = base / f"ledger-{n}.db"
            gen_s = 0.0
            if not path.exists():
                t0 = time.perf_counter()
                generate(path, n, args.prompt_chars)
                gen_s = time.perf_counter() - t0
            index_note = _set_report_index(path, not args.no_report_index)
            with Ledger(path) as ledger:
                for label, since in (("--all", None), ("48h", END - 2 * DAY)):
                    t0 = time.perf_counter()
                    report = build_report(ledger, config, since=since, until=None, session=None, now=END)
                    first = time.perf_counter() - t0
                    secs = _time(
                        lambda since=since: build_report(ledger, config, since=since, until=None, session=None, now=END),
                        args.repeat,
                    )
                    rows = report["totals"]["calls"]
                    notes = []
                    if label == "--all":
                        if gen_s:
                            notes.append(f"generated in {gen_s:.1f}s, {path.stat().st_size / 1e6:.0f} MB")
                        notes.append(index_note)
                    print(f"{n:>9}  {label:<7} {rows:>9}  {first:>8.3f}  {secs:>8.3f}  "
                          f"{secs / max(n, 1) * 1e6:>7.2f}  {'; '.join(notes)}")
                    sys.stdout.flush()
            if not args.no_fresh:
                harness.compile_bytecode(args.pythonpath)
                fresh(path, n, base, args)
    finally:
        if tmp is not None:
            tmp.cleanup()
    print(f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {os.cpu_count()} cpus")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
