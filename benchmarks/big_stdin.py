"""Big stdin into `tier ask` on the embedded offline default: wall time, peak RSS, exit code, ledger
size. Prints figures only. (The offline tiers count the prompt with the stood-in model's tokenizer,
which is where big input costs; a real provider would refuse anything past its context window.)
Run: python benchmarks/big_stdin.py [--sizes-mb 1,4,8,50]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TIER_NO_WORKER", "1")  # `tier ask` in-process, as measured before the warm worker

WORDS = "def return self value error import class for in range print if else None True".split()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes-mb", default="1,4,8,50")
    args = parser.parse_args()
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="tier-bench-stdin-") as d:
        tmp = Path(d)
        for size in [float(s) for s in args.sizes_mb.split(",")]:
            n = int(size * 1024 * 1024)
            text = (" ".join(rng.choice(WORDS) for _ in range(n // 4)) + "\n")[:n]
            if size == 8:
                text = text[: 8 * 1024 * 1024]  # exactly at the limit: accepted
            src = tmp / f"in-{size}.txt"
            src.write_text(text)
            stdin_mb = round(len(text.encode()) / 1024 / 1024, 2)
            del text  # a forked child counts the parent's pages in its peak RSS until it execs
            home = tmp / f"home-{size}"
            env = dict(os.environ, TIER_HOME=str(home))
            env.pop("TIER_CONFIG", None)
            # peak RSS via /usr/bin/time: a child forked from this (big) process would count our pages
            with src.open("rb") as stdin:
                started = time.perf_counter()
                proc = subprocess.run(["/usr/bin/time", "-f", "maxrss_kb=%M", sys.executable, "-m", "tiercli", "ask",
                                       "-t", "bug_fix", "--json"], stdin=stdin, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.PIPE, env=env)
                wall = time.perf_counter() - started
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            rss_kb = int(lines[-1].split("=")[1]) if lines and lines[-1].startswith("maxrss_kb=") else -1
            err = "\n".join(line for line in lines if not line.startswith(("maxrss_kb=", "Command exited"))).strip()
            ledger = home / "ledger.db"
            print(json.dumps({
                "stdin_mb": stdin_mb, "exit": proc.returncode,
                "wall_s": round(wall, 2), "max_rss_mb": round(rss_kb / 1024), "stderr": err[:120],
                "ledger_mb": round(sum(p.stat().st_size for p in home.glob("ledger.db*")) / 1024 / 1024, 1)
                if ledger.exists() else 0,
            }), flush=True)


if __name__ == "__main__":
    main()
