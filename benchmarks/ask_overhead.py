"""`tier ask` against the fake provider versus a bare litellm.completion script on the same server.

Two views, both printed:
  1. whole process (what a shell user waits for): `tier ask` versus `python bare_litellm.py`, each a
     fresh process making one streamed call; median of --runs. Both pay litellm's import.
  2. per call, warm, in one process: tiercli's ask.run (decision, pending row, litellm Router call,
     settled row) versus litellm.completion; median of --calls after warm-up.
Target: ratio <= 1.15 for the whole process. Prints, and records both views (harness.record).
Run: python benchmarks/ask_overhead.py [--runs 5] [--calls 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TIER_NO_WORKER", "1")  # `tier ask` in-process, as measured before the warm worker

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from harness import load_average, record  # noqa: E402

from fakeprovider import FakeProvider, Reply  # noqa: E402

BARE = """
import os, sys
os.environ.setdefault("LITELLM_OFFLINE_MODE", "true"); os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
import litellm
litellm.suppress_debug_info = True
resp = litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=sys.argv[1], api_key="sk-bench",
                          messages=[{"role": "user", "content": "fix the failing test"}], max_tokens=4096,
                          stream=True, stream_options={"include_usage": True}, num_retries=0)
for chunk in resp:
    if chunk.choices and chunk.choices[0].delta.content:
        sys.stdout.write(chunk.choices[0].delta.content)
"""

CONFIG = """
model_list:
  - model_name: tier1
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{base}", api_key: os.environ/ANTHROPIC_API_KEY}}
  - model_name: tier2
    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{base}", api_key: os.environ/ANTHROPIC_API_KEY}}
  - model_name: tier3
    litellm_params: {{model: anthropic/claude-opus-4-5, api_base: "{base}", api_key: os.environ/ANTHROPIC_API_KEY}}
router_settings: {{num_retries: 0, fallbacks: [{{tier1: [tier2]}}, {{tier2: [tier3]}}]}}
routing: {{classifier: local}}
"""


def median_ms(samples: list[float]) -> float:
    return statistics.median(samples) * 1000


def whole_process(fake: FakeProvider, runs: int, tmp: Path) -> tuple[float, float]:
    config = tmp / "bench.yaml"
    config.write_text(CONFIG.format(base=fake.anthropic_base))
    bare = tmp / "bare_litellm.py"
    bare.write_text(BARE)
    env = dict(os.environ, ANTHROPIC_API_KEY="sk-bench", TIER_HOME=str(tmp / "home"))
    tier_s, bare_s = [], []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "tiercli", "ask", "-c", str(config), "-t", "bug_fix", "fix the failing test"],
                       env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tier_s.append(time.perf_counter() - start)
        start = time.perf_counter()
        subprocess.run([sys.executable, str(bare), fake.anthropic_base], env=env, check=True, stdout=subprocess.DEVNULL)
        bare_s.append(time.perf_counter() - start)
    return median_ms(tier_s), median_ms(bare_s)


def per_call(fake: FakeProvider, calls: int, tmp: Path) -> tuple[float, float, float]:
    import litellm

    from tiercli import ask, config
    from tiercli.ledger import Ledger

    os.environ["ANTHROPIC_API_KEY"] = "sk-bench"
    path = tmp / "inproc.yaml"
    path.write_text(CONFIG.format(base=fake.anthropic_base))
    loaded = config.load(path)
    messages = [{"role": "user", "content": "fix the failing test"}]

    def bare_call():
        resp = litellm.completion(model="anthropic/claude-sonnet-4-5", api_base=fake.anthropic_base, api_key="sk-bench",
                                  messages=messages, max_tokens=4096, stream=True, stream_options={"include_usage": True},
                                  num_retries=0)
        for _ in resp:
            pass

    def timed(fn, n):
        for _ in range(10):
            fn()
        out = []
        for _ in range(n):
            start = time.perf_counter()
            fn()
            out.append(time.perf_counter() - start)
        return median_ms(out)

    bare_ms = timed(bare_call, calls)
    with Ledger(tmp / "inproc.db") as ledger:
        static = timed(lambda: ask.run(loaded, ask.AskRequest(prompt="fix the failing test", task_type="bug_fix"), ledger), calls)
        local = timed(lambda: ask.run(loaded, ask.AskRequest(prompt="fix the failing test"), ledger), calls)
    return bare_ms, static, local


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="tier-ask-bench-"))
    with FakeProvider() as fake:
        fake.set_default("*", Reply(text="patched the test " * 20))
        tier_ms, bare_ms = whole_process(fake, args.runs, tmp)
        print(f"whole process, median of {args.runs} (one streamed call each):")
        print(f"  bare litellm.completion script  {bare_ms:8.0f} ms")
        print(f"  tier ask                        {tier_ms:8.0f} ms   ratio {tier_ms / bare_ms:.2f}  (target <= 1.15)")
        bare_call, static, local = per_call(fake, args.calls, tmp)
        print(f"per call, warm, in one process, median of {args.calls}:")
        print(f"  litellm.completion              {bare_call:8.2f} ms")
        print(f"  ask.run --task-type (static)    {static:8.2f} ms   +{static - bare_call:.2f} ms  ratio {static / bare_call:.2f}")
        print(f"  ask.run (local classifier)      {local:8.2f} ms   +{local - bare_call:.2f} ms  ratio {local / bare_call:.2f}")
        print("  (tier's per-call extra: two ledger commits, the litellm Router, cost lookup)")
        record("tier ask, whole process, one streamed call (in-process, no worker)", tier_ms / 1000, "s",
               anchor="a bare litellm.completion script", anchor_value=bare_ms / 1000, target="ratio <= 1.15",
               note=f"median of {args.runs}; both pay litellm's import; {load_average()}")
        record("tier ask per call, warm, in one process (static route)", static / 1000, "s",
               anchor="litellm.completion, same process", anchor_value=bare_call / 1000,
               note=f"median of {args.calls}; added {static - bare_call:+.2f} ms; local classifier {local - bare_call:+.2f} ms; "
                    f"{load_average()}")


if __name__ == "__main__":
    main()
