"""Time to the first output byte: `tier ask` (warm worker) against simonw's `llm`, same fake server.

Both stream the same 62-word answer from the fake provider (tests/fakeprovider.py, OpenAI protocol
on 127.0.0.1). `llm` is installed from PyPI into a git-ignored venv (bench-out/venv-llm) and pointed
at the fake server through its OpenAI plugin (extra-openai-models.yaml in LLM_USER_PATH); it keeps
its own SQLite log, as tier keeps its ledger. Each run is a fresh process, as in a shell loop; the
clock stops at the first byte on stdout and at the process's exit. Runs alternate between the two.

tier's first call starts the worker (it runs in-process, as before); the measured calls find it
warm. `--no-worker` measures in-process `tier ask` instead (TIER_NO_WORKER=1), for comparison.
Target: p50 first byte, tier / llm <= 1.2. Prints p50/p90 and the ratios and records the p50s with
llm as the anchor in bench-out/results.json (benchmarks/harness.py).
Run: python benchmarks/first_token.py [--runs 15] [--no-worker]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

sys.path.insert(0, str(ROOT / "benchmarks"))
import harness  # noqa: E402

from fakeprovider import FakeProvider, Reply  # noqa: E402

WORDS = 62
ANSWER = " ".join(f"word{i}" for i in range(WORDS))
PROMPT = "summarise the retry policy in one paragraph"
KEY = "sk-bench-first-token-0000000000"
CONFIG = """model_list:
  - model_name: tier1
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{base}", api_key: os.environ/OPENAI_API_KEY}}
router_settings: {{num_retries: 0}}
routing: {{classifier: static, tiers: [tier1], default_tier: tier1, task_types: {{}}, labels: {{}}}}
guardrails: {{compaction: {{tier: tier1}}}}
"""


def configure_llm(folder: Path, base: str) -> Path | None:
    """An LLM_USER_PATH whose model `fake-mini` is the fake server's gpt-4o-mini (llm's OpenAI plugin)."""
    home = harness.llm_home(folder)
    if home is None:
        return None
    (home / "extra-openai-models.yaml").write_text(
        f'- model_id: fake-mini\n  model_name: gpt-4o-mini\n  api_base: "{base}"\n  api_key_name: fake\n')
    (home / "keys.json").write_text(json.dumps({"fake": KEY}))
    return home


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, float, bytes]:
    """(seconds to the first stdout byte, seconds to exit, stdout)."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    first_byte = proc.stdout.read(1)
    first = time.perf_counter() - start
    rest = proc.stdout.read()
    if proc.wait() != 0:
        raise SystemExit(f"{argv[0]} ... failed (exit {proc.returncode})")
    return first, time.perf_counter() - start, first_byte + rest


def wait_warm(home: Path, timeout: float = 300) -> None:
    log = home / "worker" / "worker.log"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and "warm in" in log.read_text():
            return
        time.sleep(0.2)
    raise SystemExit(f"the worker did not warm up in {timeout:g} s (see {log})")


def stop_workers(home: Path) -> None:
    import re
    import signal

    log = home / "worker" / "worker.log"
    for pid in set(re.findall(r"tier worker (\d+): serving", log.read_text() if log.exists() else "")):
        try:
            os.kill(int(pid), signal.SIGTERM)
        except ProcessLookupError:
            pass


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-worker", action="store_true", help="tier ask in-process (TIER_NO_WORKER=1)")
    args = parser.parse_args()
    binary = harness.ensure_llm()
    if binary is None:
        harness.skip("tier ask first byte", "llm (the anchor) could not be installed")
        return
    with FakeProvider() as fake, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        fake.set_default("gpt-4o-mini", Reply(text=ANSWER))
        config = tmp / "tier.yaml"
        config.write_text(CONFIG.format(base=fake.openai_base))
        home = tmp / "tier-home"
        llm_user = configure_llm(tmp / "llm-home", fake.openai_base)
        if llm_user is None:
            return
        env = dict(os.environ, TIER_HOME=str(home), OPENAI_API_KEY=KEY, LLM_USER_PATH=str(llm_user))
        env.pop("TIER_NO_WORKER", None)
        if args.no_worker:
            env["TIER_NO_WORKER"] = "1"
        tier = [sys.executable, "-m", "tiercli", "ask", "-q", "-c", str(config), PROMPT]
        llm = [binary, "-m", "fake-mini", PROMPT]
        try:
            # untimed: tier's first call (in-process) starts the worker; llm's first run writes its caches
            expected = timed(tier, env)[2]
            assert expected.decode().split() == ANSWER.split(), expected[:200]
            assert timed(llm, env)[2].decode().split() == ANSWER.split()
            if not args.no_worker:
                wait_warm(home)
                timed(tier, env)
            samples: dict[str, list[tuple[float, float]]] = {"tier": [], "llm": []}
            for _ in range(args.runs):
                samples["tier"].append(timed(tier, env)[:2])
                samples["llm"].append(timed(llm, env)[:2])
        finally:
            stop_workers(home)
    version = subprocess.run([binary, "--version"], capture_output=True, text=True).stdout.strip()
    mode = "in-process (TIER_NO_WORKER=1)" if args.no_worker else "warm worker"
    print(f"first output byte and total time, {args.runs} runs each, {WORDS}-word stream from the fake provider")
    print(f"  tier ask: {mode}; {version}; {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    result: dict[str, float] = {}
    for name in ("tier", "llm"):
        first = [s[0] for s in samples[name]]
        total = [s[1] for s in samples[name]]
        result.update({f"{name}_first_p50_ms": pct(first, 0.5), f"{name}_first_p90_ms": pct(first, 0.9),
                       f"{name}_total_p50_ms": pct(total, 0.5), f"{name}_total_p90_ms": pct(total, 0.9)})
        print(f"  {name:5} first byte p50 {pct(first, 0.5):7.0f} ms  p90 {pct(first, 0.9):7.0f} ms   "
              f"total p50 {pct(total, 0.5):7.0f} ms  p90 {pct(total, 0.9):7.0f} ms")
    ratio = result["tier_first_p50_ms"] / result["llm_first_p50_ms"]
    total_ratio = result["tier_total_p50_ms"] / result["llm_total_p50_ms"]
    print(f"  ratio tier/llm, p50: first byte {ratio:.2f} (target <= 1.2), total {total_ratio:.2f}")
    spread = f"load {os.getloadavg()[0]:.1f}; p90 first byte {result['tier_first_p90_ms']:.0f} ms vs {result['llm_first_p90_ms']:.0f} ms"
    name = "tier ask, time to first output byte, " + ("in-process" if args.no_worker else "warm worker")
    harness.record(name, result["tier_first_p50_ms"] / 1000, "s", anchor="llm -m (same fake server, same stream)",
                   anchor_value=result["llm_first_p50_ms"] / 1000, target=None if args.no_worker else "ratio <= 1.2",
                   note=f"p50 of {args.runs} fresh processes each, alternating; {spread}")
    harness.record(name.replace("time to first output byte", "whole process"), result["tier_total_p50_ms"] / 1000,
                   "s", anchor="llm -m (same fake server, same stream)", anchor_value=result["llm_total_p50_ms"] / 1000,
                   note=f"p50 of {args.runs}; p90 {result['tier_total_p90_ms']:.0f} ms vs {result['llm_total_p90_ms']:.0f} ms")


if __name__ == "__main__":
    main()
