"""`tier serve` from two (or more) source trees side by side: the gateway's added latency, its CPU per
request and its requests/s, paired against each other and against the anchors in the same run.

Why: on a shared, noisy machine two runs of benchmarks/serve.py minutes apart differ by more than
most changes do. Here every variant's gateways (one per upstream, as in serve.py), the bare proxy
(benchmarks/bare_proxy.py) and claude-code-router (benchmarks/ccr_anchor.py; skipped with a message
when it cannot be installed) run at once against one fake provider, and each sequential round
sends the same request to the fake provider directly, to every variant and to the anchor in turn
(the order rotating), so all see the same machine state. CPU per request is each process's CPU
time (every thread, from /proc) over those requests. Throughput: each variant and the anchor back
to back per concurrency. Prints figures only (nothing recorded); loopback only, every loop bounded.

    python benchmarks/serve_paired.py --variant base=/tmp/base/src --variant new= [--rounds 3]

A variant is NAME=SRC: the gateway runs with PYTHONPATH=SRC (a checkout's src folder; empty: the
tiercli this python imports). Run it with this tree's python (its fake provider and anchors).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
import serve as S  # noqa: E402  (benchmarks/serve.py: the gateway config, request bodies, timers)
from harness import stop_all  # noqa: E402

from fakeprovider import FakeProvider, Reply  # noqa: E402

PATH = {"openai": "/v1/chat/completions", "anthropic": "/v1/messages"}
CASES = [("anthropic", "tier1", False), ("anthropic", "tier1", True), ("openai", "tier2", False),
         ("openai", "tier2", True), ("anthropic", "tier2", False), ("anthropic", "tier2", True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", action="append", required=True, help="NAME=SRC (SRC empty: this python's tiercli)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=150, help="sequential requests per target, case and round")
    parser.add_argument("--seconds", type=float, default=3.0, help="per throughput run")
    args = parser.parse_args()
    variants = [v.split("=", 1) if "=" in v else (v, "") for v in args.variant]
    names = [name for name, _ in variants]
    with FakeProvider() as fake, tempfile.TemporaryDirectory(prefix="tier-bench-paired-") as tmp:
        fake.set_default("*", Reply(text=S.ANSWER))
        home = Path(tmp)
        procs: dict = {}
        urls: dict = {}
        try:
            for name, src in variants:
                (home / name).mkdir()
                for tier in ("tier1", "tier2"):
                    procs[(name, tier)], urls[(name, tier)] = S.start_gateway(fake, tier, home / name, pythonpath=src)
            procs["bare"], bare = S.start_bare_proxy(fake.base_url)
            started = S.start_ccr(fake.base_url, "gpt-5-mini", S.free_port(), home / "ccr-home")
            ccr = None
            if started is not None:
                procs["ccr"], ccr = started
            print(f"variants: {', '.join(f'{n}={s or sys.executable}' for n, s in variants)}; anchors: bare proxy, "
                  f"claude-code-router {S.CCR_VERSION if ccr else 'skipped'}; {args.requests} sequential requests per "
                  f"target, case and round (ms, p50 added over the direct request)", flush=True)
            with httpx.Client(timeout=30) as client:
                for r in range(args.rounds):
                    for protocol, tier, stream in CASES:
                        load = os.getloadavg()[0]
                        up = "anthropic" if tier == "tier1" else "openai"
                        same = protocol == up
                        direct = S.body(up, "m", stream)
                        via = S.body(protocol, "auto", stream)
                        targets = {"direct": (fake.base_url + PATH[up], direct)}
                        targets.update({n: (urls[(n, tier)] + PATH[protocol], via) for n in names})
                        pids = {n: procs[(n, tier)].pid for n in names}
                        if same:
                            targets["anchor"], pids["anchor"] = (bare + PATH[up], direct), procs["bare"].pid
                        elif ccr:
                            targets["anchor"], pids["anchor"] = (ccr + "/v1/messages", via), procs["ccr"].pid
                        for _ in range(20):
                            for url, payload in targets.values():
                                S.one(client, url, payload)
                        times: dict[str, list[float]] = {k: [] for k in targets}
                        cpu0 = {k: S.process_cpu_ms(pid) for k, pid in pids.items()}
                        for i in range(args.requests):
                            items = list(targets.items())
                            items = items[i % len(items):] + items[:i % len(items)]
                            for key, (url, payload) in items:
                                times[key].append(S.one(client, url, payload)[0])
                        cpu = {k: (S.process_cpu_ms(pid) - cpu0[k]) / args.requests for k, pid in pids.items()}
                        d50 = S.pct(times["direct"], .5)
                        added = {k: S.pct(v, .5) - d50 for k, v in times.items() if k != "direct"}
                        line = f"r{r} load {load:4.1f} {protocol + '->' + up + (' sse' if stream else ' json'):22} added"
                        line += "".join(f" {k} {v:6.2f}" for k, v in added.items())
                        if "anchor" in added and added["anchor"] > 0:
                            line += " | ratio" + "".join(f" {n} {added[n] / added['anchor']:5.2f}" for n in names)
                        print(line + " | cpu/req" + "".join(f" {k} {v:5.2f}" for k, v in cpu.items()), flush=True)
                    for protocol, tier in (("anthropic", "tier1"), ("openai", "tier2"), ("anthropic", "tier2")):
                        up = "anthropic" if tier == "tier1" else "openai"
                        via = S.body(protocol, "auto", True)
                        anchor = ((bare + PATH[up], S.body(up, "m", True)) if protocol == up
                                  else (ccr + "/v1/messages", via) if ccr else None)
                        for clients in (1, 8):
                            runs = [(n, (urls[(n, tier)] + PATH[protocol], via)) for n in names]
                            runs += [("anchor", anchor)] if anchor else []
                            rps = {k: asyncio.run(S.throughput(url, payload, clients, args.seconds, 4000))[0]
                                   for k, (url, payload) in runs}
                            line = f"r{r} req/s {protocol}->{up} sse {clients} clients:" + "".join(f" {k} {v:6.1f}" for k, v in rps.items())
                            if "anchor" in rps:
                                line += " | ratio" + "".join(f" {n} {rps[n] / rps['anchor']:4.2f}" for n in names)
                            print(line, flush=True)
        finally:
            stop_all(procs.values())


if __name__ == "__main__":
    main()
