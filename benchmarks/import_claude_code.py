"""Benchmark `tier import claude-code`: ~50 MB of Claude Code JSONL into a fresh ledger.

The headline figure is the WHOLE PROCESS (`tier import claude-code DIR --db NEW --json` in a fresh
interpreter: start-up, imports, parse, write), as a user sees it; in-process parse and import times follow.

The logs are the real sample sessions (shared/data/claude-code) replicated with fresh message,
request and session ids, ten sessions per project directory, in a temp dir. Prints figures only.

    PYTHONPATH=src .venv/bin/python benchmarks/import_claude_code.py [--mb 50] [--samples DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from tiercli.importers.claude_code import import_claude_code, parse_claude_code
from tiercli.ledger import Ledger

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


CCUSAGE = "20.0.24"
ANCHORS = REPO / "benchmarks" / ".anchors"  # git-ignored


def _ccusage(tmp: Path, args) -> tuple[float, float] | None:
    """(wall, CPU) of ccusage's `daily --json --offline` on the same logs, best of --repeat; None (with a
    message) when it cannot be installed (no npm, no network)."""
    exe = ANCHORS / "node_modules" / ".bin" / "ccusage"
    if not exe.exists():
        ANCHORS.mkdir(parents=True, exist_ok=True)
        try:
            subprocess.run(["npm", "install", "--prefix", str(ANCHORS), "--no-audit", "--no-fund", "--silent",
                            f"ccusage@{CCUSAGE}"], check=True, timeout=300, capture_output=True)
        except (OSError, subprocess.SubprocessError) as exc:
            print(f"ccusage anchor   skipped: cannot install ccusage@{CCUSAGE} from npm ({type(exc).__name__})")
            return None
    env = {**os.environ, "CLAUDE_CONFIG_DIR": str(tmp)}
    best = None
    for _ in range(args.repeat):
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        subprocess.run([str(exe), "daily", "--json", "--offline"], check=True, env=env, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL)
        wall = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
        best = (wall, cpu) if best is None or wall < best[0] else best
    return best


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=50.0, help="how much JSONL to generate (MB)")
    ap.add_argument("--repeat", type=int, default=3, help="whole-process runs (the best is printed)")
    ap.add_argument("--no-anchor", dest="anchor", action="store_false",
                    help="skip the ccusage anchor (installed from npm into benchmarks/.anchors on first use)")
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

        env = {**os.environ, "TIER_HOME": str(Path(tmp) / "home")}
        tier = Path(sys.executable).with_name("tier")
        cmd = [str(tier)] if tier.exists() else [sys.executable, "-m", "tiercli"]
        whole, cpu = [], []
        for n in range(args.repeat):
            db = Path(tmp) / f"whole{n}.db"
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run([*cmd, "import", "claude-code", str(logs), "--db", str(db), "--json"], check=True,
                           env=env, stdout=subprocess.DEVNULL)
            whole.append(time.perf_counter() - t0)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu.append(r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime)
        whole_s, cpu_s = min(whole), min(cpu)

        anchor = _ccusage(Path(tmp), args) if args.anchor else None

        with Ledger(Path(tmp) / "ledger.db") as ledger:
            t0 = time.perf_counter()
            first = import_claude_code([logs], ledger)
            first_s = time.perf_counter() - t0
            t0 = time.perf_counter()
            second = import_claude_code([logs], ledger)
            second_s = time.perf_counter() - t0
        db_mb = (Path(tmp) / "ledger.db").stat().st_size / 1_000_000

    print(f"input            {mb:.1f} MB, {n_files} files, {stats.lines} lines")
    print(f"whole process    {whole_s:.2f} s  {mb / whole_s:.1f} MB/s  (tier import claude-code, fresh ledger, "
          f"best of {args.repeat}; CPU {cpu_s:.2f} s = {mb / cpu_s:.1f} MB/s of CPU: the machine's load shows in the gap)")
    if anchor is not None:
        a_wall, a_cpu = anchor
        print(f"ccusage anchor   {a_wall:.2f} s  {mb / a_wall:.1f} MB/s  (ccusage {CCUSAGE} daily --json --offline, same "
              f"files; CPU {a_cpu:.2f} s)  ->  tier takes {whole_s / a_wall:.1f}x its wall time, {cpu_s / a_cpu:.1f}x its CPU")
    print(f"calls            {first.calls_added} added in {first.tasks} tasks, {first.partial_lines} partial lines of calls already counted")
    print(f"parse only       {parse_s:.2f} s  {mb / parse_s:.1f} MB/s  {stats.calls / parse_s:,.0f} calls/s")
    print(f"first import     {first_s:.2f} s  {mb / first_s:.1f} MB/s  {first.calls_added / first_s:,.0f} calls/s"
          f"  (write ~{max(first_s - parse_s, 0):.2f} s)")
    print(f"second import    {second_s:.2f} s  {second.calls_added} added, {second.duplicates_skipped} skipped")
    print(f"ledger file      {db_mb:.1f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
