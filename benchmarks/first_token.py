"""Time to the first output byte: `tier ask` (warm worker) against simonw's `llm`, same fake server.

Both stream the same 62-word answer from the fake provider (tests/fakeprovider.py, OpenAI protocol
on 127.0.0.1). `llm` is installed from PyPI into a git-ignored venv (bench-out/venv-llm) and pointed
at the fake server through its OpenAI plugin (extra-openai-models.yaml in LLM_USER_PATH); it keeps
its own SQLite log, as tier keeps its ledger. Each run is a fresh process, as in a shell loop; the
clock stops at the first byte on stdout and at the process's exit. Runs alternate between the two.

tier's first call starts the worker (it runs in-process, as before); the measured calls find it
warm. `--no-worker` measures in-process `tier ask` instead (TIER_NO_WORKER=1), for comparison.
Target: p50 first byte, tier / llm <= 1.2. Prints p50/p90 and the ratios; appends them to
bench-out/results.json when that file exists (a JSON list).
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

from fakeprovider import FakeProvider, Reply  # noqa: E402

OUT = ROOT / "bench-out"
LLM_VENV = OUT / "venv-llm"
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


def llm_binary() -> Path | None:
    """bench-out/venv-llm/bin/llm, installed on first use; None (with the reason printed) if it cannot be."""
    binary = LLM_VENV / "bin" / "llm"
    if binary.exists():
        return binary
    print(f"installing llm from PyPI into {LLM_VENV} (once) ...", flush=True)
    try:
        subprocess.run([sys.executable, "-m", "venv", str(LLM_VENV)], check=True, capture_output=True, timeout=300)
        subprocess.run([str(LLM_VENV / "bin" / "pip"), "install", "-q", "llm"], check=True, capture_output=True,
                       timeout=900)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as exc:
        detail = getattr(exc, "stderr", b"") or b""
        print(f"skipped: llm could not be installed ({type(exc).__name__}: "
              f"{detail.decode(errors='replace').strip()[-300:] or exc})")
        return None
    return binary if binary.exists() else None


def llm_home(base: str, tmp: Path) -> Path:
    home = tmp / "llm-home"
    home.mkdir()
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
    binary = llm_binary()
    if binary is None:
        return
    with FakeProvider() as fake, tempfile.TemporaryDirectory() as tmpdir:
        tmp = Path(tmpdir)
        fake.set_default("gpt-4o-mini", Reply(text=ANSWER))
        config = tmp / "tier.yaml"
        config.write_text(CONFIG.format(base=fake.openai_base))
        home = tmp / "tier-home"
        env = dict(os.environ, TIER_HOME=str(home), OPENAI_API_KEY=KEY, LLM_USER_PATH=str(llm_home(fake.openai_base, tmp)))
        env.pop("TIER_NO_WORKER", None)
        if args.no_worker:
            env["TIER_NO_WORKER"] = "1"
        tier = [sys.executable, "-m", "tiercli", "ask", "-q", "-c", str(config), PROMPT]
        llm = [str(binary), "-m", "fake-mini", PROMPT]
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
    version = subprocess.run([str(binary), "--version"], capture_output=True, text=True).stdout.strip()
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
    results = OUT / "results.json"
    if results.exists():
        try:
            data = json.loads(results.read_text())
        except ValueError:
            data = None
        if isinstance(data, list):
            data.append({"benchmark": "first_token", "mode": mode, "runs": args.runs, "when": time.time(),
                         **{k: round(v, 1) for k, v in result.items()}, "ratio_first_p50": round(ratio, 3)})
            results.write_text(json.dumps(data, indent=2) + "\n")
            print(f"  appended to {results}")


if __name__ == "__main__":
    main()
