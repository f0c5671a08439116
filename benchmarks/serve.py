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
3. CPU per request (--cpu-requests, 0 skips it): the gateway process's and the bare proxy's CPU time
   (every thread, from /proc) over the same sequential requests, same-protocol cases: what the
   gateway costs beyond the proxy, less sensitive to other work on a shared machine than latency.
Target: <= 5 ms p50 added. Prints figures only. Loopback only; every loop is bounded.
Anchors, measured in the same run: benchmarks/bare_proxy.py, a bare Starlette + httpx proxy on the same
stack (no routing, no ledger): passthrough targets are <= 1.5x its added latency and >= 0.8x its
requests/s (issue 17); claude-code-router 2.0 from npm (benchmarks/ccr_anchor.py, loopback only) for
Anthropic client -> OpenAI model: cross-protocol SSE <= +5 ms p50 added and >= 0.5x its requests/s.
Run: python benchmarks/serve.py [--requests 200] [--clients 1,8,32] [--seconds 4]
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
from ccr_anchor import CCR_VERSION, start_ccr  # noqa: E402
from harness import stop_all, wait_healthy  # noqa: E402

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


def start_gateway(fake: FakeProvider, tier: str, home: Path,
                  pythonpath: str | None = None) -> tuple[subprocess.Popen, str]:
    """`tier serve` for `tier` on a free port; `pythonpath`: the tiercli source tree to run ("" this
    interpreter's installed one, None whatever PYTHONPATH says now)."""
    cfg = home / f"{tier}.yaml"
    cfg.write_text(CONFIG.format(base=fake.base_url, tier=tier))
    port = free_port()
    env = {**os.environ, "TIER_HOME": str(home / tier), "ANTHROPIC_API_KEY": "sk-ant-bench", "OPENAI_API_KEY": "sk-bench",
           "LITELLM_OFFLINE_MODE": "true", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    if pythonpath is not None:
        env.pop("PYTHONPATH", None)
        if pythonpath:
            env["PYTHONPATH"] = pythonpath
    log = (home / f"{tier}.log").open("wb")  # a pipe nobody reads would fill and stall the gateway
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "serve", "--quiet", "--port", str(port), "-c", str(cfg)],
                            env=env, stdout=subprocess.DEVNULL, stderr=log)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            health = httpx.get(url + "/health", timeout=1)
            if health.status_code == 200 and health.json().get("litellm", "ready") == "ready":  # litellm loads after the bind
                return proc, url
        except httpx.HTTPError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"the gateway did not start: {(home / f'{tier}.log').read_text()[-2000:]}")


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


def start_bare_proxy(upstream: str) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "bare_proxy.py"), upstream, str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    if wait_healthy(proc, url, 30, 0.1):
        return proc, url
    proc.kill()
    raise SystemExit(f"the bare proxy did not start: {proc.stderr.read().decode()[-2000:]}")


def responses_body(model: str, stream: bool) -> dict:
    return {"model": model, "input": PROMPT, "stream": stream, "max_output_tokens": 256}


def record(name: str, value: float, unit: str, anchor: float | None = None, anchor_name: str | None = None,
           target: str | None = None, met: bool | None = None) -> None:
    """Into bench-out/results.json through the shared harness (README's performance table)."""
    from harness import load_average
    from harness import record as harness_record

    harness_record(f"serve: {name}", value, unit, anchor=anchor_name, anchor_value=anchor, target=target,
                   note=load_average())


def latency(fake: FakeProvider, gateways: dict[str, str], bare: str, ccr: str | None, n: int) -> None:
    direct_url = {"openai": fake.base_url + "/v1/chat/completions", "anthropic": fake.base_url + "/v1/messages"}
    path = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages", "responses": "/v1/responses"}
    upstream = {"tier1": "anthropic", "tier2": "openai"}
    cases = [  # (client protocol, gateway routing to tier)
        ("anthropic", "tier1"), ("openai", "tier2"),  # same protocol: passthrough
        ("openai", "tier1"), ("anthropic", "tier2"),  # cross protocol: litellm Router, translated passthrough
        ("responses", "tier2"),  # Responses API -> chat, passthrough to the OpenAI upstream
    ]
    print(f"added latency per request, {n} requests each after 30 warm-up, sequential, interleaved (ms)")
    print(f"{'client -> upstream':24} {'mode':4} {'path':11} {'direct p50':>10} {'gateway p50':>11} {'p99':>7} "
          f"{'added p50':>9} {'p99':>7} {'anchor added p50':>20} {'ratio':>6}")
    with httpx.Client(timeout=30) as client:
        for protocol, tier in cases:
            for stream in (False, True):
                up = upstream[tier]
                direct_payload = body(up, "m", stream)
                via_payload = responses_body("auto", stream) if protocol == "responses" else body(protocol, "auto", stream)
                via_url = gateways[tier] + path[protocol]
                same = protocol == up
                anchor_url = bare + path[up] if same else None
                if protocol == "anthropic" and up == "openai" and ccr:
                    anchor_url = ccr + "/v1/messages"  # claude-code-router, the same translation
                anchor_payload = direct_payload if same else via_payload
                for _ in range(30):
                    one(client, direct_url[up], direct_payload)
                    one(client, via_url, via_payload)
                    if anchor_url:
                        one(client, anchor_url, anchor_payload)
                direct, via, proxied = [], [], []
                for _ in range(n):
                    direct.append(one(client, direct_url[up], direct_payload)[0])
                    via.append(one(client, via_url, via_payload)[0])
                    if anchor_url:
                        proxied.append(one(client, anchor_url, anchor_payload)[0])
                d50, v50, v99, d99 = pct(direct, .5), pct(via, .5), pct(via, .99), pct(direct, .99)
                kind = ("passthrough" if same else "responses" if protocol == "responses"
                        else "translated" if protocol == "anthropic" else "litellm")
                added = v50 - d50
                bare_added = pct(proxied, .5) - d50 if proxied else None
                ratio = added / bare_added if bare_added and bare_added > 0 else None
                shown_bare = f"{bare_added:20.2f}" if bare_added is not None else f"{'':>20}"
                shown_ratio = f"{ratio:6.2f}" if ratio is not None else f"{'':>6}"
                print(f"{protocol + ' -> ' + up:24} {'sse' if stream else 'json':4} {kind:11} {d50:10.2f} "
                      f"{v50:11.2f} {v99:7.2f} {added:9.2f} {v99 - d99:7.2f} {shown_bare} {shown_ratio}")
                name = f"added latency p50, {protocol} -> {up} {'sse' if stream else 'json'} ({kind})"
                if same:
                    record(name, added, "ms", bare_added, "bare starlette+httpx proxy, added p50", "ratio <= 1.5")
                elif anchor_url:
                    record(name, added, "ms", bare_added, f"claude-code-router {CCR_VERSION}, added p50",
                           "value <= 5" if stream else None)
                else:
                    record(name, added, "ms", None, None)
                record(name.replace("p50", "p99"), v99 - d99, "ms")


def process_cpu_ms(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), in ms."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def cpu_per_request(fake: FakeProvider, procs: dict[str, subprocess.Popen], gateways: dict[str, str], bare: str,
                    n: int) -> None:
    """CPU ms per request in the gateway process and in the bare proxy (every thread, from /proc), over
    the same sequential requests: less sensitive to other work on the machine than wall-clock latency."""
    if not Path(f"/proc/{os.getpid()}/stat").exists():
        print("CPU per request: skipped (needs Linux /proc)")
        return
    path = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
    print(f"CPU per request, {n} sequential requests each after 30 warm-up, best of 3 rounds (ms)")
    with httpx.Client(timeout=30) as client:
        for protocol, tier in (("anthropic", "tier1"), ("openai", "tier2")):
            for stream in (False, True):
                best: dict[str, float] = {}
                for who, url, pid, model in (("gateway", gateways[tier], procs[tier].pid, "auto"),
                                             ("bare", bare, procs["bare"].pid, "m")):
                    payload = body(protocol, model, stream)
                    for _ in range(30):
                        one(client, url + path[protocol], payload)
                    for _ in range(3):
                        before = process_cpu_ms(pid)
                        for _ in range(n):
                            one(client, url + path[protocol], payload)
                        best[who] = min(best.get(who, float("inf")), (process_cpu_ms(pid) - before) / n)
                label = f"{protocol} -> {protocol} {'sse' if stream else 'json'} (passthrough)"
                print(f"  {label:40} gateway {best['gateway']:5.2f}  bare proxy {best['bare']:5.2f}  "
                      f"extra {best['gateway'] - best['bare']:5.2f}")
                record(f"CPU per request, {label}", best["gateway"], "ms", best["bare"], "bare starlette+httpx proxy, CPU per request")


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
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--clients", default="1,8,32")
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--max-requests", type=int, default=4000)
    parser.add_argument("--cpu-requests", type=int, default=200, help="requests per round of the CPU part (0: skip it)")
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    with FakeProvider() as fake, tempfile.TemporaryDirectory(prefix="tier-bench-serve-") as tmp:
        fake.set_default("*", Reply(text=ANSWER))
        home = Path(tmp)
        procs = {}
        try:
            urls = {}
            for tier in ("tier1", "tier2"):  # every request routes to this tier: one gateway per upstream
                procs[tier], urls[tier] = start_gateway(fake, tier, home)
            procs["bare"], bare = start_bare_proxy(fake.base_url)
            ccr = None
            started = start_ccr(fake.base_url, "gpt-5-mini", free_port(), home / "ccr-home")
            if started is not None:
                procs["ccr"], ccr = started
            load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
            print(f"machine: {os.cpu_count()} cores, load average {load} (other work on the machine inflates the figures); "
                  f"gateway: `tier serve` subprocess (uvicorn, one worker); anchor: benchmarks/bare_proxy.py (same server "
                  f"stack, no routing, no ledger), claude-code-router {CCR_VERSION if ccr else 'skipped'}; fake provider and client: this process; answer {len(ANSWER.split())} words "
                  f"({len(ANSWER.split()) + 3} SSE events)")
            latency(fake, urls, bare, ccr, args.requests)
            print()
            if args.cpu_requests:
                cpu_per_request(fake, procs, urls, bare, args.cpu_requests)
                print()
            print(f"throughput: requests/s at {args.clients} concurrent clients, {args.seconds:g} s each "
                  f"(at most {args.max_requests} requests), model auto")
            cases = (("anthropic -> anthropic (passthrough)", urls["tier1"] + "/v1/messages", body("anthropic", "auto", True),
                      bare + "/v1/messages", body("anthropic", "m", True)),
                     ("openai -> openai (passthrough)", urls["tier2"] + "/v1/chat/completions", body("openai", "auto", True),
                      bare + "/v1/chat/completions", body("openai", "m", True)),
                     ("anthropic -> openai (translated)", urls["tier2"] + "/v1/messages", body("anthropic", "auto", True),
                      ccr + "/v1/messages" if ccr else None, body("anthropic", "auto", True)),
                     ("openai -> anthropic (litellm)", urls["tier1"] + "/v1/chat/completions", body("openai", "auto", True), None, None),
                     ("responses -> openai", urls["tier2"] + "/v1/responses", responses_body("auto", True), None, None))
            for label, url, payload, anchor_url, anchor_payload in cases:
                for n in clients:
                    rps, failed, p50 = asyncio.run(throughput(url, payload, n, args.seconds, args.max_requests))
                    line = f"  {label:38} sse {n:3d} clients  {rps:7.1f} req/s  p50 {p50:6.1f} ms"
                    anchor = None
                    is_ccr = "/v1/messages" in (anchor_url or "") and "openai" in label
                    anchor_name = f"claude-code-router {CCR_VERSION} req/s" if is_ccr else "bare proxy req/s"
                    if anchor_url:
                        anchor, _, _ = asyncio.run(throughput(anchor_url, anchor_payload, n, args.seconds, args.max_requests))
                        line += f"   {anchor_name.removesuffix(' req/s')} {anchor:7.1f} req/s  ratio {rps / anchor:4.2f}"
                    print(line + (f"  ({failed} failed)" if failed else ""))
                    target = ("ratio >= 0.5" if is_ccr else "ratio >= 0.8") if anchor else None
                    record(f"requests/s, {label} sse, {n} clients", rps, "req/s", anchor,
                           anchor_name if anchor else None, target)
        finally:
            stop_all(procs.values())
    print("\nfigures recorded in bench-out/results.json (scripts/bench_readme.py puts them in the README)")


if __name__ == "__main__":
    main()
