"""Start-up of commands that call no model, against the bare imports they cannot avoid.

Prints the median wall time of N runs of each command in a fresh process, and its ratio to
`python -c "import typer, rich, sqlmodel"` (the README's figures use this baseline; since ledger schema
5 no command that calls no model loads SQLModel, not even to create or migrate a ledger). Also shows
`import litellm` for scale. Prints, and records each command against the baseline (harness.record).
Run: python benchmarks/startup.py [--runs 15]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

from harness import compile_bytecode, load_average, record

os.environ.setdefault("TIER_NO_WORKER", "1")  # `tier ask` in-process, as measured before the warm worker


def timed(cmd: list[str], env: dict, runs: int) -> float:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    compile_bytecode()  # as an installed tier has it (this machine sets PYTHONDONTWRITEBYTECODE)
    home = tempfile.mkdtemp(prefix="tier-bench-")
    env = dict(os.environ, TIER_HOME=home, LITELLM_OFFLINE_MODE="true", LITELLM_LOCAL_MODEL_COST_MAP="True")
    env.pop("TIER_CONFIG", None)
    env.pop("TIER_DB", None)
    py = sys.executable
    for i in range(20):  # a ledger with rows, so `tier log` reads something
        subprocess.run([py, "-m", "tiercli", "ask", "-t", "search", f"where is thing {i}?"], env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    baseline = timed([py, "-c", "import typer, rich, sqlmodel"], env, args.runs)
    rows = [("python -c 'import typer, rich, sqlmodel'", baseline)]
    for label, argv in [
        ("tier --help", ["--help"]),
        ("tier --version", ["--version"]),
        ("tier log", ["log"]),
        ("tier report --all", ["report", "--all"]),
        ("tier config check", ["config", "check"]),
        ("tier classify --classifier local", ["classify", "--classifier", "local", "fix the failing test"]),
        ("tier ask (offline default)", ["ask", "-t", "search", "where is main?"]),
    ]:
        rows.append((label, timed([py, "-m", "tiercli", *argv], env, args.runs)))
    rows.append(("python -c 'import litellm' (for scale)", timed([py, "-c", "import litellm"], env, max(3, args.runs // 5))))
    print(f"median of {args.runs} runs, fresh process each ({os.cpu_count()} cores)")
    for label, seconds in rows:
        print(f"  {label:<44} {seconds * 1000:7.0f} ms   {seconds / baseline:5.2f}x baseline")
    for label, seconds in rows[1:-1]:
        record(f"start-up: {label}, fresh process", seconds, "s", anchor=rows[0][0].replace("'", '"'),
               anchor_value=baseline, note=f"median of {args.runs}; 20-call ledger; {load_average()}")


if __name__ == "__main__":
    main()
