"""Several `tier serve` processes on one PostgreSQL ledger, users' tokens and budgets, crashes.

Real everything: `python -m tiercli serve` subprocesses on 127.0.0.1, the fake provider upstream over
HTTP (an OpenAI tier, passthrough), a PostgreSQL server from tests/pgserver.py, httpx clients in
threads. Each request carries a unique marker in its prompt, so "exactly once" is checked per request.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

from fakeprovider import Reply
from pgserver import free_port
from tiercli import team
from tiercli.ledger import open_ledger
from tiercli.pricing import PriceBook, Usage

pytestmark = pytest.mark.slow
OPENAI_KEY = "sk-openai-config-0123456789abcdefSECRET"
MAX_TOKENS = 1000
OUTPUT_TOKENS = 800  # what each answer bills: most of the reservation, so the caps bind on real spend


def config_text(fake, extra: str = "", classifier: str = "static") -> str:
    deployment = f'{{model: openai/gpt-5-mini, api_base: "{fake.openai_base}", api_key: os.environ/OPENAI_API_KEY}}'
    return f"""
model_list:
  - {{model_name: tier1, litellm_params: {deployment}}}
  - {{model_name: tier2, litellm_params: {deployment}}}
  - {{model_name: tier3, litellm_params: {deployment}}}
router_settings: {{num_retries: 0}}
routing: {{classifier: {classifier}}}
{extra}
"""


class ServeProcess:
    """`tier serve` in a subprocess, ready once /health answers."""

    def __init__(self, config: Path, db: str, env: dict[str, str]):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = config.parent / f"serve-{self.port}.log"
        self.last_error: Exception | None = None
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tiercli", "serve", "--port", str(self.port), "--config", str(config), "--db", db],
            env=env, stdout=subprocess.DEVNULL, stderr=self.log.open("w"))

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            assert self.proc.poll() is None, f"tier serve exited: {self.log.read_text()[-2000:]}"
            try:
                health = httpx.get(self.url + "/health", timeout=1)
                if health.status_code == 200 and health.json().get("litellm") == "ready":  # bound at once, litellm after
                    return
            except httpx.HTTPError as exc:
                self.last_error = exc
            time.sleep(0.2)
        raise AssertionError(f"tier serve did not start ({self.last_error!r}): {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


@pytest.fixture
def cluster(pg_url, fake_provider, tmp_path):
    """start(n, extra_config) -> n gateways on one fresh PostgreSQL ledger; stopped afterwards."""
    started: list[ServeProcess] = []
    env = {**os.environ, "OPENAI_API_KEY": OPENAI_KEY, "TIER_HOME": str(tmp_path / "home"), "TIER_LEASE_S": "3",
           "TIER_PG_SETTLE_RETRY_S": "60"}

    def start(n: int, extra: str = "", classifier: str = "static") -> list[ServeProcess]:
        config = tmp_path / "team.yaml"
        config.write_text(config_text(fake_provider, extra, classifier))
        gateways = [ServeProcess(config, pg_url, env) for _ in range(n)]
        started.extend(gateways)
        for g in gateways:
            g.wait_ready()
        return gateways

    yield start
    for g in started:
        g.stop()


def add_users(url: str, budgets: dict[str, float | None]) -> dict[str, str]:
    tokens = {}
    with open_ledger(url) as ledger:
        for name, daily in budgets.items():
            tokens[name] = team.new_token()
            ledger.add_user(name, team.token_hash(tokens[name]), team.hint(tokens[name]), daily, None)
    return tokens


def ask(url: str, token: str, marker: str, timeout: float = 60) -> httpx.Response:
    return httpx.post(url + "/v1/chat/completions", timeout=timeout, headers={"authorization": f"Bearer {token}"},
                      json={"model": "tier1", "max_tokens": MAX_TOKENS, "messages": [{"role": "user", "content": marker}]})


def rows_by_marker(url: str, timeout: float = 20) -> tuple[list[dict], Counter]:
    """The calls, once none is pending (a gateway may settle just after the last byte)."""
    deadline = time.time() + timeout
    while True:
        with open_ledger(url) as ledger:  # opening also recovers orphans
            rows = ledger._select("SELECT * FROM calls")
        if all(r["status"] != "pending" for r in rows) or time.time() > deadline:
            return rows, Counter(r["prompt_text"] for r in rows)
        time.sleep(0.2)


def run_clients(gateways, tokens: dict[str, str], clients: int, per_client: int,
                results: dict[str, tuple[str, int, str]], stop: threading.Event | None = None) -> None:
    users = sorted(tokens)

    def client(n: int) -> None:
        user = users[n % len(users)]
        for i in range(per_client):
            if stop is not None and stop.is_set():
                return
            marker = f"req-{n}-{i} from {user}"
            gw = gateways[(n + i) % len(gateways)]
            try:
                status = ask(gw.url, tokens[user], marker).status_code
            except httpx.HTTPError as exc:
                status = -1 if not isinstance(exc, httpx.ReadTimeout) else -2
            results[marker] = (user, status, gw.url)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def test_four_gateways_sixteen_clients_every_call_once_and_users_within_their_caps(cluster, pg_url, fake_provider):
    fake_provider.set_default("*", Reply(text="answer", output_tokens=OUTPUT_TOKENS, delay_s=0.02))
    caps = {"ann": 0.01, "bob": 0.01, "cat": 0.03, "dan": None}
    tokens = add_users(pg_url, caps)
    gateways = cluster(4)
    results: dict[str, tuple[str, int, str]] = {}
    run_clients(gateways, tokens, clients=16, per_client=6, results=results)

    rows, seen = rows_by_marker(pg_url)
    assert len(results) == 96 and set(seen) == set(results)
    assert max(seen.values()) == 1  # every call exactly once
    by_marker = {r["prompt_text"]: r for r in rows}
    statuses = Counter(status for _, status, _ in results.values())
    assert set(statuses) <= {200, 402}, statuses
    for marker, (user, status, _) in results.items():
        row = by_marker[marker]
        assert row["user_id"] == user
        assert row["status"] == ("ok" if status == 200 else "refused")
    assert all(r["status"] != "pending" and r["reserved_usd"] is None for r in rows)  # reservations released
    with open_ledger(pg_url) as ledger:
        spent = {r["user_id"]: r["usd"] for r in ledger._select(
            "SELECT user_id, SUM(cost_usd) AS usd FROM calls WHERE status = 'ok' GROUP BY user_id")}
    # one call's reservation: its prompt (a few tokens) and the full output allowance, at the model's price
    one_estimate, _ = PriceBook({}).cost("openai/gpt-5-mini", Usage(input_tokens=100, output_tokens=MAX_TOKENS))
    for user, cap in caps.items():
        if cap is not None:
            assert spent[user] <= cap + 4 * one_estimate, (user, spent[user], cap)
    # the small caps bound ann and bob; dan (no cap of his own) was never refused
    refused = Counter(user for user, status, _ in results.values() if status == 402)
    assert refused["ann"] > 0 and refused["bob"] > 0 and refused["dan"] == 0
    assert len({gw for _, _, gw in results.values()}) == 4


def test_tokens_disabled_rotated_and_beyond_budget_get_the_protocols_errors(cluster, pg_url, fake_provider):
    tokens = add_users(pg_url, {"ann": None, "bob": 0.0})
    [gw] = cluster(1)
    assert ask(gw.url, tokens["ann"], "hello").status_code == 200
    nobody = ask(gw.url, "tier_not-a-real-token", "hello")
    assert nobody.status_code == 401 and "wrong" in nobody.json()["error"]["message"]
    over = ask(gw.url, tokens["bob"], "hello")
    assert over.status_code == 402 and "user bob's daily budget" in over.json()["error"]["message"]
    anthropic_over = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": tokens["bob"]}, json={
        "model": "tier1", "max_tokens": 100, "messages": [{"role": "user", "content": "x"}]})
    assert anthropic_over.status_code == 402 and anthropic_over.json()["type"] == "error"

    cli = [sys.executable, "-m", "tiercli", "users"]
    subprocess.run([*cli, "disable", "ann", "--db", pg_url], check=True, capture_output=True)
    disabled = ask(gw.url, tokens["ann"], "hello")
    assert disabled.status_code == 401 and "user ann is disabled" in disabled.json()["error"]["message"]
    subprocess.run([*cli, "enable", "ann", "--db", pg_url], check=True, capture_output=True)
    out = subprocess.run([*cli, "rotate", "ann", "--db", pg_url], check=True, capture_output=True, text=True)
    new_token = out.stdout.strip()
    assert new_token.startswith("tier_") and new_token != tokens["ann"]
    assert ask(gw.url, tokens["ann"], "hello").status_code == 401  # the old token stopped at once
    assert ask(gw.url, new_token, "hello").status_code == 200
    # the user's token was never forwarded upstream as a provider key, nor stored
    assert all(r.headers.get("authorization") == f"Bearer {OPENAI_KEY}" for r in fake_provider.requests)
    rows, _ = rows_by_marker(pg_url)
    assert tokens["ann"] not in json.dumps(rows, default=str) and new_token not in json.dumps(rows, default=str)


def test_kill_9_of_a_gateway_mid_load_loses_no_answered_call_and_duplicates_none(cluster, pg_url, fake_provider):
    fake_provider.set_default("*", Reply(text="answer", delay_s=0.5))
    tokens = add_users(pg_url, {"ann": None, "bob": None})
    gateways = cluster(2)
    results: dict[str, tuple[str, int, str]] = {}
    load = threading.Thread(target=run_clients, args=(gateways, tokens, 8, 8, results))
    load.start()
    victim = gateways[0]
    deadline = time.time() + 60  # kill it while it holds calls in flight (pending rows it owns)
    while time.time() < deadline:
        with open_ledger(pg_url, recover=False) as ledger:
            if ledger._select("SELECT COUNT(*) AS n FROM calls WHERE status = 'pending' AND owner_pid = %s",
                              [victim.proc.pid])[0]["n"] >= 2:
                break
        time.sleep(0.05)
    victim.proc.send_signal(signal.SIGKILL)
    victim.proc.wait()
    load.join()

    deadline = time.time() + 15  # the survivor's reconciler settles the victim's orphans (lease beat: 1 s)
    while True:
        with open_ledger(pg_url, recover=False) as ledger:
            pending = ledger._select("SELECT COUNT(*) AS n FROM calls WHERE status = 'pending'")[0]["n"]
        if pending == 0 or time.time() > deadline:
            break
        time.sleep(0.5)
    assert pending == 0
    rows, seen = rows_by_marker(pg_url)
    assert max(seen.values()) == 1  # 0 duplicates
    by_marker = {r["prompt_text"]: r for r in rows}
    answered = [m for m, (_, status, _) in results.items() if status == 200]
    assert answered and all(by_marker[m]["status"] == "ok" for m in answered)  # 0 lost answered calls
    cut = [m for m, (_, status, url) in results.items() if status < 0]
    assert cut and all(results[m][2] == victim.url for m in cut)
    interrupted = [r for r in rows if r["status"] == "interrupted"]
    assert interrupted and all(r["error_class"] == "ProcessGone" and r["reserved_usd"] is None for r in interrupted)
    assert {r["prompt_text"] for r in interrupted} <= set(cut)


def test_kill_9_of_the_database_mid_load_settles_every_answered_call(cluster, pg_url, pg_server, fake_provider):
    """The postmaster is SIGKILLed and restarted while calls are in flight: settlements retry, new
    calls during the outage get a clear 503, and afterwards nothing is pending or lost."""
    fake_provider.set_default("*", Reply(text="answer", delay_s=0.5))
    tokens = add_users(pg_url, {"ann": None})
    gateways = cluster(2)
    results: dict[str, tuple[str, int, str]] = {}
    load = threading.Thread(target=run_clients, args=(gateways, tokens, 6, 6, results))
    load.start()
    time.sleep(1.5)
    pg_server.kill9()
    time.sleep(1.0)
    pg_server.start()
    load.join()

    rows, seen = rows_by_marker(pg_url)
    assert max(seen.values()) == 1
    by_marker = {r["prompt_text"]: r for r in rows}
    statuses = Counter(status for _, status, _ in results.values())
    print("statuses during the database kill:", dict(statuses), "rows:", Counter(r["status"] for r in rows))
    assert statuses[200] > 0 and set(statuses) <= {200, 503}, statuses
    for marker, (_, status, _) in results.items():
        if status == 200:
            assert by_marker[marker]["status"] == "ok"  # answered, so settled
        else:  # refused during the outage: never sent upstream
            assert marker not in by_marker or by_marker[marker]["status"] != "ok"
    assert all(r["status"] != "pending" for r in rows)


def test_a_database_outage_is_503_for_new_calls_then_service_resumes(cluster, pg_url, pg_server, fake_provider):
    tokens = add_users(pg_url, {"ann": None})
    [gw] = cluster(1)
    assert ask(gw.url, tokens["ann"], "before").status_code == 200
    pg_server.stop("immediate")
    try:
        down = ask(gw.url, tokens["ann"], "during")
        assert down.status_code == 503 and "ledger" in down.json()["error"]["message"]
        down = httpx.post(gw.url + "/v1/messages", headers={"x-api-key": tokens["ann"]}, json={
            "model": "tier1", "max_tokens": 10, "messages": [{"role": "user", "content": "during"}]})
        assert down.status_code == 503 and down.json()["type"] == "error"
    finally:
        pg_server.start()
    assert ask(gw.url, tokens["ann"], "after").status_code == 200  # reconnected
    rows, seen = rows_by_marker(pg_url)
    assert seen == Counter({"before": 1, "after": 1})
    assert [(r["prompt_text"], r["status"], r["error_class"]) for r in rows if r["status"] != "ok"] == [], gw.log.read_text()[-3000:]
    assert fake_provider.requests and all("during" not in json.dumps(r.body) for r in fake_provider.requests)


def test_a_sessions_warm_tier_is_shared_by_the_gateways(cluster, pg_url, fake_provider):
    """Prompt-cache stickiness lives in the ledger: a session answered on tier3 by one gateway stays on
    tier3 on another one (the local classifier alone would pick tier1)."""
    tokens = add_users(pg_url, {"ann": None})
    first, second = cluster(2, classifier="local")

    def ask_auto(gw, text: str, session: str) -> None:
        r = httpx.post(gw.url + "/v1/chat/completions", timeout=60, headers={
            "authorization": f"Bearer {tokens['ann']}", "x-session-id": session},
            json={"model": "auto", "messages": [{"role": "user", "content": text}]})
        assert r.status_code == 200, r.text

    ask_auto(first, "design the architecture for a distributed job scheduler with sharding and failover", "s-warm")
    rows_by_marker(pg_url)  # settled
    ask_auto(second, "rename the variable foo to bar in utils.py", "s-warm")
    ask_auto(second, "rename the variable foo to bar in utils.py", "s-other")
    rows, _ = rows_by_marker(pg_url)
    by_session = sorted(rows, key=lambda r: r["started_at"])
    assert [(r["session"], r["tier"], r["decision_source"]) for r in by_session] == [
        ("s-warm", "tier3", "local"), ("s-warm", "tier3", "sticky"), ("s-other", "tier1", "local")]
    assert by_session[1]["decided_tier"] == "tier1"
