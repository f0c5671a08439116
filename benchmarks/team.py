"""Team mode: calls per second through N `tier serve` processes on one PostgreSQL ledger, against one
`tier serve` on a SQLite ledger, on this machine.

Setup: the fake provider (tests/fakeprovider.py, OpenAI JSON answers after --delay seconds) in this
process; a PostgreSQL server started like the test suite's (tests/pgserver.py: Debian's binaries,
initdb on a temp dir, 127.0.0.1 only, fsync off as in the tests); gateways as real `tier serve`
subprocesses; in the PostgreSQL runs each request carries a user's token (4 users with daily caps high
enough never to refuse), so the token check, the per-user and team budget reservation and the
settlement are all on the path. Clients: --concurrency asyncio httpx clients for --seconds, spread
round-robin over the gateways. Prints figures only; every loop is bounded.
Run: python benchmarks/team.py [--gateways 4] [--concurrency 32] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
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

import httpx  # noqa: E402
from harness import load_average, record, skip  # noqa: E402

from fakeprovider import FakeProvider, Reply  # noqa: E402
from pgserver import _bin_dir, free_port, start_server  # noqa: E402

CONFIG = """
model_list:
  - {{model_name: tier1, litellm_params: {{model: openai/gpt-5-mini, api_base: "{base}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
  - {{model_name: tier2, litellm_params: {{model: openai/gpt-5-mini, api_base: "{base}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
  - {{model_name: tier3, litellm_params: {{model: openai/gpt-5-mini, api_base: "{base}/v1", api_key: os.environ/OPENAI_API_KEY}}}}
router_settings: {{num_retries: 0}}
routing: {{classifier: static}}
guardrails: {{budget: {{daily_usd: 100000}}}}
"""


def start_gateways(n: int, config: Path, db: str, home: Path) -> list[tuple[subprocess.Popen, str]]:
    env = {**os.environ, "OPENAI_API_KEY": "sk-bench", "TIER_HOME": str(home)}
    out = []
    for _ in range(n):
        port = free_port()
        proc = subprocess.Popen([sys.executable, "-m", "tiercli", "serve", "--port", str(port), "--config",
                                 str(config), "--db", db], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        out.append((proc, f"http://127.0.0.1:{port}"))
    deadline = time.time() + 300
    for proc, url in out:
        while True:
            if proc.poll() is not None or time.time() > deadline:
                raise SystemExit(f"tier serve at {url} did not start")
            try:
                health = httpx.get(url + "/health", timeout=1)
                if health.status_code == 200 and health.json().get("litellm", "ready") == "ready":
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
    return out


async def load(urls: list[str], tokens: list[str | None], concurrency: int, seconds: float) -> tuple[int, int, float]:
    ok = failed = 0
    stop = time.monotonic() + seconds
    limits = httpx.Limits(max_connections=concurrency * 2)

    async def client(n: int, http: httpx.AsyncClient) -> None:
        nonlocal ok, failed
        i = 0
        while time.monotonic() < stop:
            token = tokens[n % len(tokens)]
            headers = {"authorization": f"Bearer {token}"} if token else {}
            url = urls[(n + i) % len(urls)]
            i += 1
            try:
                r = await http.post(url + "/v1/chat/completions", headers=headers, timeout=60, json={
                    "model": "tier1", "max_tokens": 200, "messages": [{"role": "user", "content": f"req {n}-{i}"}]})
                ok += r.status_code == 200
                failed += r.status_code != 200
            except httpx.HTTPError:
                failed += 1

    started = time.monotonic()
    async with httpx.AsyncClient(limits=limits, trust_env=False) as http:
        await asyncio.gather(*(client(n, http) for n in range(concurrency)))
    return ok, failed, time.monotonic() - started


def run(label: str, n: int, db: str, fake: FakeProvider, home: Path, tokens: list[str | None], args) -> float:
    config = home / "team.yaml"
    config.write_text(CONFIG.format(base=fake.base_url))
    gateways = start_gateways(n, config, db, home)
    try:
        asyncio.run(load([u for _, u in gateways], tokens, args.concurrency, 1.0))  # warm connections
        ok, failed, elapsed = asyncio.run(load([u for _, u in gateways], tokens, args.concurrency, args.seconds))
        print(f"{label:<34} {ok / elapsed:8.1f} calls/s  ({ok} ok, {failed} failed, {elapsed:.1f} s, "
              f"{args.concurrency} clients)")
        return ok / elapsed
    finally:
        for proc, _ in gateways:
            proc.terminate()
            proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gateways", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--delay", type=float, default=0.05, help="the fake provider's answer time")
    args = parser.parse_args()

    from tiercli import team
    from tiercli.ledger import open_ledger

    if _bin_dir() is None:
        skip("team: calls/s through gateways on PostgreSQL", "PostgreSQL server binaries not installed (make postgres-server)")
        return
    print(f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; provider answers in {args.delay * 1000:.0f} ms")
    with FakeProvider() as fake, tempfile.TemporaryDirectory(prefix="tier-bench-team-") as tmp:
        fake.set_default("*", Reply(text="ok " * 20, delay_s=args.delay))
        home = Path(tmp)
        sqlite_rate = run("1 gateway, SQLite", 1, str(home / "ledger.db"), fake, home, [None], args)
        server = start_server()
        try:
            url = server.create_database()
            tokens = []
            with open_ledger(url) as ledger:
                for name in ("ann", "bob", "cat", "dan"):
                    token = team.new_token()
                    ledger.add_user(name, team.token_hash(token), team.hint(token), 10_000.0, None)
                    tokens.append(token)
            note = f"{args.concurrency} clients; provider answers in {args.delay * 1000:.0f} ms; {load_average()}"
            for n, label in ((1, "1 gateway, PostgreSQL, users"), (args.gateways, f"{args.gateways} gateways, PostgreSQL, users")):
                rate = run(label, n, url, fake, home, tokens, args)
                record(f"team: calls/s through {label}", rate, "calls/s", anchor="1 gateway on SQLite, same run",
                       anchor_value=sqlite_rate, note=note)
        finally:
            server.stop("immediate")


if __name__ == "__main__":
    main()
