"""Benchmark `tier import claude-code`: ~50 MB of Claude Code JSONL into a fresh ledger.

The headline figure is the WHOLE PROCESS (`tier import claude-code DIR --db NEW --json` in a fresh
interpreter: start-up, imports, parse, write), as a user sees it, run alternately with its anchor,
ccusage 20.0.24 `daily --json --offline` on the same files (harness.ensure_ccusage installs it into
bench-out/npm; skipped with a message when it cannot be). Issue 17's targets: >= 100 MB/s and within
2x of ccusage's time; both are recorded into bench-out/results.json. In-process parse and import
times follow (printed only).

The logs are the real sample sessions (shared/data/claude-code) replicated with fresh message,
request and session ids, ten sessions per project directory, in a temp dir. Prints figures only.

    PYTHONPATH=src .venv/bin/python benchmarks/import_claude_code.py [--mb 50] [--samples DIR]
"""

from __future__ import annotations

import argparse
import re
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402

from tiercli.importers.claude_code import import_claude_code, parse_claude_code  # noqa: E402
from tiercli.ledger import Ledger  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
DEFAULT_SAMPLES = [REPO.parent / "shared" / "data" / "claude-code", Path("/work/shared/data/claude-code")]
_IDS = re.compile(r"\b(msg|req)_([0-9A-Za-z]+)")


def generate(samples: Path, dst: Path, target_bytes: int) -> tuple[int, int]:
    """Write copies of the sample sessions under dst until target_bytes; (files, bytes)."""
    originals = [(p.stem, p.read_text(encoding="utf-8")) for p in sorted(samples.glob("*.jsonl"))]
    if not originals:
        raise SystemExit(f"no sample sessions in {samples}")
    files = written = 0
    copy = 0
    while written < target_bytes:
        for session, text in originals:
            if written >= target_bytes:
                break
            tag = f"b{copy:05d}"
            new_session = str(uuid.uuid4())
            body = _IDS.sub(lambda m, tag=tag: f"{m.group(1)}_{m.group(2)}{tag}", text).replace(session, new_session)
            project = dst / f"-home-bench-project{files // 10:03d}"
            project.mkdir(parents=True, exist_ok=True)
            data = body.encode("utf-8")
            (project / f"{new_session}.jsonl").write_bytes(data)
            files += 1
            written += len(data)
        copy += 1
    return files, written


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="how much JSONL to generate (MB)")
    ap.add_argument("--repeat", type=int, default=3, help="paired whole-process runs (medians are recorded)")
    ap.add_argument("--no-anchor", dest="anchor", action="store_false",
                    help="skip the ccusage anchor (installed from npm into bench-out/npm on first use)")
    ap.add_argument("--samples", type=Path, default=None, help="directory of sample .jsonl sessions")
    args = ap.parse_args()
    samples = args.samples or next((p for p in DEFAULT_SAMPLES if p.is_dir()), None)
    if samples is None:
        print("no sample sessions found; pass --samples DIR", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="tier-bench-cc-") as tmp:
        logs = Path(tmp) / "projects"
        n_files, n_bytes = generate(samples, logs, int(args.mb * 1_000_000))
        mb = n_bytes / 1_000_000

        t0 = time.perf_counter()
        rows, stats = parse_claude_code([logs])
        parse_s = time.perf_counter() - t0
        del rows

        db = Path(tmp) / "whole.db"
        # a fresh ledger on every run (the shell's rm is a millisecond of the figure)
        tier = ["sh", "-c", 'rm -f "$1" "$1-wal" "$1-shm"; exec "$2" -m tiercli import claude-code "$3" --db "$1" --json',
                "sh", str(db), sys.executable, str(logs)]
        env = {"TIER_HOME": str(Path(tmp) / "home")}
        ccusage = harness.ensure_ccusage() if args.anchor else None
        anchor = [ccusage, "daily", "--json", "--offline"] if ccusage else None
        if anchor is not None:
            whole_s, anchor_s = harness.paired(tier, anchor, args.repeat, env_a=env, env_b={"CLAUDE_CONFIG_DIR": tmp})
        else:
            whole_s, anchor_s = harness.time_command(tier, args.repeat, env=env), None
        cpu, anchor_cpu = harness.cpu_median(tier), harness.cpu_median(anchor) if anchor else None
        note = f"{mb:.0f} MB, {n_files} files; CPU {cpu:.2f} s" + (
            f" vs ccusage {anchor_cpu:.2f} s (ratio {cpu / anchor_cpu:.2f})" if cpu and anchor_cpu else "")
        note += f"; {harness.load_average()}"
        label = f"ccusage {harness.CCUSAGE_VERSION} daily --json --offline"
        harness.record("tier import claude-code, whole process, MB/s", mb / whole_s, "MB/s", anchor=label,
                       anchor_value=mb / anchor_s if anchor_s else None, target="value >= 100", note=note)
        harness.record("tier import claude-code, whole process, time", whole_s, "s", anchor=label,
                       anchor_value=anchor_s, target="ratio <= 2", note=note)

        with Ledger(Path(tmp) / "ledger.db") as ledger:
            t0 = time.perf_counter()
            first = import_claude_code([logs], ledger)
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            second = import_claude_code([logs], ledger)
            second_s = time.perf_counter() - t0
        db_mb = (Path(tmp) / "ledger.db").stat().st_size / 1_000_000

    print(f"input            {mb:.1f} MB, {n_files} files, {stats.lines} lines")
    print(f"whole process    {whole_s:.2f} s  {mb / whole_s:.1f} MB/s  (median of {args.repeat}; CPU {cpu:.2f} s)")
    if anchor_s is not None:
        print(f"ccusage anchor   {anchor_s:.2f} s  {mb / anchor_s:.1f} MB/s  (CPU {anchor_cpu:.2f} s)  ->  tier takes "
              f"{whole_s / anchor_s:.1f}x its wall time, {cpu / anchor_cpu:.1f}x its CPU")
    print(f"calls            {first.calls_added} added in {first.tasks} tasks, {first.partial_lines} partial lines of calls already counted")
    print(f"parse only       {parse_s:.2f} s  {mb / parse_s:.1f} MB/s  {stats.calls / parse_s:,.0f} calls/s  (in process)")
    print(f"first import     {first_s:.2f} s  {mb / first_s:.1f} MB/s  {first.calls_added / first_s:,.0f} calls/s"
          f"  (write ~{max(first_s - parse_s, 0):.2f} s)")
    print(f"second import    {second_s:.2f} s  {second.calls_added} added, {second.duplicates_skipped} skipped")
    print(f"ledger file      {db_mb:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
