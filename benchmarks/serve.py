"""`tier serve`: the latency the gateway adds per request, and requests per second on this machine.

Setup: the fake provider (tests/fakeprovider.py, OpenAI + Anthropic, JSON + SSE) in this process; the
gateway as a real `tier serve` subprocess on 127.0.0.1 with a fresh ledger on local disk; the client is
httpx in this process, one request at a time.

1. Added latency: for each case, p50/p99 of a request sent straight to the fake provider versus the
   same request through the gateway (model "auto": the local classifier, the routing, the pending row
   and the settled row all included), interleaved so both see the same machine state. Cases: same
   protocol (passthrough) and cross protocol (through litellm's Router), JSON and streaming.
2. Throughput: a bounded concurrent loop (--concurrency clients, --seconds, at most --max-requests)
   against the gateway, JSON and streaming, requests per second.
Target: <= 5 ms p50 added. Prints figures only. Loopback only; every loop is bounded.
Run: python benchmarks/serve.py [--requests 300] [--concurrency 16] [--seconds 5]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import httpx  # noqa: E402

from fakeprovider import FakeProvider, Reply  # noqa: E402

CONFIG = """
model_list:
  - model_name: tier1
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{base}", api_key: os.environ/ANTHROPIC_API_KEY}}
  - model_name: tier2
    litellm_params: {{model: openai/gpt-5-mini, api_base: "{base}/v1", api_key: os.environ/OPENAI_API_KEY}}
  - model_name: tier3
    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{base}", api_key: os.environ/ANTHROPIC_API_KEY}}
router_settings: {{num_retries: 0}}
routing: {{classifier: local, default_tier: {tier}, task_types: {{reformat: {tier}, bug_fix: {tier}}}, labels: {{LOW: {tier}, MEDIUM: {tier}, HIGH: {tier}}}}}
serve: {{small_model_pattern: null}}
"""
PROMPT = "fix the failing test in tests/test_parser.py: the tokenizer drops the last line"
ANSWER = "The tokenizer stops one line early because the loop bound is off by one; use <= instead of <. " * 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_gateway(fake: FakeProvider, tier: str, home: Path) -> tuple[subprocess.Popen, str]:
    cfg = home / f"{tier}.yaml"
    cfg.write_text(CONFIG.format(base=fake.base_url, tier=tier))
    port = free_port()
    env = {**os.environ, "TIER_HOME": str(home / tier), "ANTHROPIC_API_KEY": "sk-ant-bench", "OPENAI_API_KEY": "sk-bench",
           "LITELLM_OFFLINE_MODE": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "serve", "--port", str(port), "-c", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the gateway did not start: {proc.stderr.read().decode()[-2000:]}")


def body(protocol: str, model: str, stream: bool) -> dict:
    b = {"model": model, "messages": [{"role": "user", "content": PROMPT}], "stream": stream, "max_tokens": 256}
    return b


def one(client: httpx.Client, url: str, payload: dict) -> tuple[float, float]:
    """(ms to the whole answer, ms to its first byte)."""
    start = time.perf_counter()
    first = None
    if payload["stream"]:
        with client.stream("POST", url, json=payload) as resp:
            for _ in resp.iter_bytes():
                first = first or time.perf_counter()
            status = resp.status_code
    else:
        resp = client.post(url, json=payload)
        status = resp.status_code
    end = time.perf_counter()
    if status != 200:
        raise SystemExit(f"{url}: HTTP {status}")
    return (end - start) * 1000, ((first or end) - start) * 1000


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def latency(fake: FakeProvider, gateways: dict[str, str], n: int) -> None:
    direct_url = {"openai": fake.base_url + "/v1/chat/completions", "anthropic": fake.base_url + "/v1/messages"}
    path = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
    upstream = {"tier1": "anthropic", "tier2": "openai"}
    cases = [  # (client protocol, gateway routing to tier)
        ("anthropic", "tier1"), ("openai", "tier2"),  # same protocol: passthrough
        ("openai", "tier1"), ("anthropic", "tier2"),  # cross protocol: litellm Router
    ]
    print(f"added latency per request, {n} requests each after 30 warm-up, sequential (ms)")
    print(f"{'client -> upstream':24} {'mode':4} {'path':11} {'direct p50':>10} {'p99':>7} {'gateway p50':>11} {'p99':>7} "
          f"{'added p50':>9} {'p99':>7} {'1st byte added p50':>18}")
    with httpx.Client(timeout=30) as client:
        for protocol, tier in cases:
            for stream in (False, True):
                up = upstream[tier]
                direct_payload = body(up, "m", stream)
                via_payload = body(protocol, "auto", stream)
                via_url = gateways[tier] + path[protocol]
                for _ in range(30):
                    one(client, direct_url[up], direct_payload)
                    one(client, via_url, via_payload)
                direct, via, direct_first, via_first = [], [], [], []
                for _ in range(n):
                    total, first = one(client, direct_url[up], direct_payload)
                    direct.append(total)
                    direct_first.append(first)
                    total, first = one(client, via_url, via_payload)
                    via.append(total)
                    via_first.append(first)
                d50, d99, v50, v99 = pct(direct, .5), pct(direct, .99), pct(via, .5), pct(via, .99)
                kind = "passthrough" if protocol == up else "litellm"
                first = f"{pct(via_first, .5) - pct(direct_first, .5):18.2f}" if stream else f"{'':>18}"
                print(f"{protocol + ' -> ' + up:24} {'sse' if stream else 'json':4} {kind:11} {d50:10.2f} {d99:7.2f} "
                      f"{v50:11.2f} {v99:7.2f} {v50 - d50:9.2f} {v99 - d99:7.2f} {first}")


async def throughput(url: str, payload: dict, concurrency: int, seconds: float, max_requests: int) -> tuple[float, int, float]:
    done = 0
    failed = 0
    stop_at = time.perf_counter() + seconds
    latencies: list[float] = []

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal done, failed
        while time.perf_counter() < stop_at and done + failed < max_requests:
            start = time.perf_counter()
            try:
                if payload["stream"]:
                    async with client.stream("POST", url, json=payload) as resp:
                        async for _ in resp.aiter_bytes():
                            pass
                        ok = resp.status_code == 200
                else:
                    ok = (await client.post(url, json=payload)).status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                done += 1
                latencies.append((time.perf_counter() - start) * 1000)
            else:
                failed += 1

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        began = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - began
    return done / elapsed, failed, statistics.median(latencies) if latencies else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--max-requests", type=int, default=5000)
    args = parser.parse_args()
    with FakeProvider() as fake, tempfile.TemporaryDirectory(prefix="tier-bench-serve-") as tmp:
        fake.set_default("*", Reply(text=ANSWER))
        home = Path(tmp)
        procs = {}
        try:
            urls = {}
            for tier in ("tier1", "tier2"):  # every request routes to this tier: one gateway per upstream
                procs[tier], urls[tier] = start_gateway(fake, tier, home)
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"machine: {os.cpu_count()} cores, load average {load} (other work on the machine inflates the figures); gateway: `tier serve` subprocess (uvicorn, one worker); "
                  f"fake provider and client: this process; answer {len(ANSWER.split())} words "
                  f"({len(ANSWER.split()) + 3} SSE events)")
            latency(fake, urls, args.requests)
            print()
            print(f"throughput through the gateway: {args.concurrency} concurrent clients, {args.seconds:g} s "
                  f"(at most {args.max_requests} requests), model auto")
            for label, tier, protocol, path in (("anthropic -> anthropic (passthrough)", "tier1", "anthropic", "/v1/messages"),
                                                ("openai -> openai (passthrough)", "tier2", "openai", "/v1/chat/completions"),
                                                ("openai -> anthropic (litellm)", "tier1", "openai", "/v1/chat/completions")):
                for stream in (False, True):
                    rps, failed, p50 = asyncio.run(throughput(urls[tier] + path, body(protocol, "auto", stream),
                                                              args.concurrency, args.seconds, args.max_requests))
                    print(f"  {label:38} {'sse ' if stream else 'json'}  {rps:7.1f} req/s  p50 {p50:6.1f} ms"
                          + (f"  ({failed} failed)" if failed else ""))
            direct_rps, _, direct_p50 = asyncio.run(throughput(fake.base_url + "/v1/messages", body("anthropic", "m", False),
                                                               args.concurrency, args.seconds, args.max_requests))
            print(f"  {'the fake provider alone (reference)':38} json  {direct_rps:7.1f} req/s  p50 {direct_p50:6.1f} ms")
        finally:
            for proc in procs.values():
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()


if __name__ == "__main__":
    main()
