"""The gateway on the recorded-call pipeline: hostile bodies record nothing, shutdown drains, a
killed gateway's rows are recovered (issue 11's reproductions)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

import httpx
import pytest

from fakeprovider import Reply
from helpers import rows as ledger_rows
from test_serve import ANTHROPIC_KEY, OPENAI_KEY, Gateway, config_text

pytestmark = pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")
BUDGET = "guardrails: {budget: {daily_usd: 0.05}}\nserve: {sticky_ttl_s: 0}"


@pytest.fixture
def keys(tier_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


@pytest.fixture
def budget_gw(fake_provider, keys, tmp_path):
    path = tmp_path / "b.yaml"
    path.write_text(config_text(fake_provider, BUDGET))
    g = Gateway(path, tmp_path / "b.db")
    yield g
    g.stop()


MESSAGES = [{"role": "user", "content": "rename foo to bar in utils.py"}]
HOSTILE = [
    ("openai", {"model": "tier2", "messages": MESSAGES, "stream": True, "stream_options": "x"}, "stream_options"),
    ("openai", {"model": "tier2", "messages": MESSAGES, "tools": 5}, "tools"),
    ("openai", {"model": "tier2", "messages": [{"role": "assistant", "content": "", "tool_calls": "abc"}, *MESSAGES]},
     "tool_calls"),
    ("openai", {"model": "tier2", "messages": MESSAGES, "n": 0}, "n must be"),
    ("anthropic", {"model": "tier1", "max_tokens": 50, "messages": [
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t1", "content": "\ud800 broken"}]}]},
     "surrogate"),
    ("anthropic", {"model": "tier1", "max_tokens": "lots", "messages": MESSAGES}, "max_tokens"),
    ("anthropic", {"model": "tier1", "max_tokens": 50, "messages": ["not an object"]}, "messages[0]"),
]


@pytest.mark.parametrize("protocol,body,fragment", HOSTILE, ids=[h[2] for h in HOSTILE])
def test_a_malformed_request_is_a_4xx_in_its_protocol_and_records_nothing(budget_gw, fake_provider, protocol, body, fragment):
    path = "/v1/messages" if protocol == "anthropic" else "/v1/chat/completions"
    payload = json.dumps(body).encode()  # json keeps the lone surrogate as an escape, as a client would send it
    for _ in range(8):  # 8 of these reserved a whole daily cap before
        resp = httpx.post(budget_gw.url + path, content=payload, headers={"content-type": "application/json"})
        assert resp.status_code == 400, resp.text
        err = resp.json()
        if protocol == "anthropic":
            assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
            assert fragment in err["error"]["message"]
        else:
            assert err["error"]["type"] == "invalid_request_error" and fragment in err["error"]["message"]
    budget_gw.gw.flush()
    assert ledger_rows(budget_gw.db) == []
    assert fake_provider.requests == []
    ok = httpx.post(budget_gw.url + "/v1/chat/completions", json={"model": "tier2", "messages": MESSAGES})
    assert ok.status_code == 200, ok.text  # the cap is intact


def test_deeply_nested_json_is_a_400(budget_gw):
    payload = b'{"model": "tier2", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = httpx.post(budget_gw.url + "/v1/chat/completions", content=payload, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "nested deeper" in resp.json()["error"]["message"]
    assert ledger_rows(budget_gw.db) == []


def test_shutdown_drains_open_calls_so_none_stays_pending(fake_provider, keys, tmp_path):
    """Ctrl-C of `tier serve` under load dropped the ledger while settlements were queued."""
    path = tmp_path / "d.yaml"
    path.write_text(config_text(fake_provider, "serve: {sticky_ttl_s: 0}"))
    g = Gateway(path, tmp_path / "d.db")
    fake_provider.set_default("gpt-5-mini", Reply(text=" ".join(f"w{i}" for i in range(30)), chunk_delay_s=0.03))
    done: list[int] = []
    errors: list[Exception] = []
    started: set[int] = set()

    def client(i: int) -> None:
        try:
            with httpx.stream("POST", g.url + "/v1/chat/completions", timeout=30,
                              json={"model": "tier2", "stream": True, "messages": [{"role": "user", "content": f"q{i}"}]}) as r:
                for _ in r.iter_bytes():
                    started.add(i)
            done.append(i)
        except httpx.HTTPError as exc:
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    deadline = time.time() + 30
    while len(started) < 16 and time.time() < deadline and not errors:
        time.sleep(0.02)
    assert len(started) == 16, errors[:3]  # every stream is open and part-way
    g.stop()
    for t in threads:
        t.join(timeout=30)
    rows = ledger_rows(g.db)
    assert len(rows) == 16, errors[:3]
    assert [r for r in rows if r["status"] == "pending"] == []
    assert all(r["reserved_usd"] is None and r["owner_pid"] is None for r in rows)
    assert sum(r["status"] == "ok" for r in rows) >= len(done)  # every fully answered stream is settled ok


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_killed_gateways_pending_rows_are_recovered_by_the_next_tier_command(fake_provider, keys, tmp_path, tier_home):
    path = tmp_path / "k.yaml"
    path.write_text(config_text(fake_provider, "serve: {sticky_ttl_s: 0}"))
    fake_provider.set_default("gpt-5-mini", Reply(text=" ".join(f"w{i}" for i in range(400)), chunk_delay_s=0.05))
    port = _free_port()
    db = tmp_path / "k.db"
    env = {**os.environ, "TIER_HOME": str(tier_home)}
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "serve", "-c", str(path), "--db", str(db), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline and proc.poll() is None, proc.stderr.read().decode()[-2000:] if proc.poll() else "no start"
            time.sleep(0.1)
        streams = []
        for i in range(3):
            cm = httpx.stream("POST", f"http://127.0.0.1:{port}/v1/chat/completions", timeout=30,
                              json={"model": "tier2", "stream": True, "messages": [{"role": "user", "content": f"k{i}"}]})
            r = cm.__enter__()
            chunks = r.iter_bytes()
            next(chunks)  # the answer is streaming (the iterator is kept: dropping it closes the stream)
            streams.append((cm, chunks))
        assert {r["status"] for r in ledger_rows(db)} == {"pending"}
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
        for cm, _ in streams:
            try:
                cm.__exit__(None, None, None)
            except httpx.HTTPError:
                pass
    finally:
        if proc.poll() is None:
            proc.kill()
    log = subprocess.run([sys.executable, "-m", "tiercli", "log", "--db", str(db)], env=env, capture_output=True, text=True,
                         timeout=60)
    assert log.returncode == 0, log.stderr
    assert "recovered 3 call(s)" in log.stderr
    rows = ledger_rows(db)
    assert [(r["status"], r["error_class"]) for r in rows] == [("interrupted", "ProcessGone")] * 3
    assert all(r["reserved_usd"] is None for r in rows)


def test_one_console_record_per_request_and_json_404s(budget_gw, fake_provider):
    from tiercli.serve import console

    records: list[dict] = []
    budget_gw.gw.log = records.append
    try:
        ok = httpx.post(budget_gw.url + "/v1/chat/completions", headers={"user-agent": "aider/0.86"},
                        json={"model": "tier2", "messages": MESSAGES})
        bad = httpx.post(budget_gw.url + "/v1/chat/completions", json={"model": "tier2", "messages": MESSAGES, "tools": 5})
        lost = httpx.post(budget_gw.url + "/v1/responsez", json={})
        budget_gw.gw.flush()
    finally:
        budget_gw.gw.log = None
    assert ok.status_code == 200 and bad.status_code == 400
    assert lost.status_code == 404 and "POST /v1/chat/completions" in lost.json()["error"]["message"]
    by_status = {r["status"]: r for r in records}
    assert set(by_status) == {"ok", "rejected", "not_found"}
    done = by_status["ok"]
    assert (done["client"], done["endpoint"], done["tier"], done["requested_model"]) == ("aider", "/v1/chat/completions", "tier2", "tier2")
    assert done["cost_usd"] > 0 and done["input_tokens"] > 0 and done["session"].startswith("conv-")
    text = console.line(done)
    assert "aider" in text and "-> tier2" in text and " ok " in text and "$" in text
    assert "tools must be" in console.line(by_status["rejected"])


def test_every_client_gets_a_stable_session():
    from tiercli.serve.wire import session_of

    turn1 = {"messages": [{"role": "user", "content": "fix the login test"}]}
    turn2 = {"messages": [{"role": "user", "content": "fix the login test"}, {"role": "assistant", "content": "done"},
                          {"role": "user", "content": "now run it"}]}
    other = {"messages": [{"role": "user", "content": "something else"}]}
    assert session_of("openai", turn1, {}) == session_of("openai", turn2, {}) != session_of("openai", other, {})
    assert session_of("openai", turn1, {"x-session-id": "mine"}) == "mine"
    assert session_of("openai", {**turn1, "user": "u1"}, {}) == "u1"


CLAUDE_CODE_BETAS = "claude-code-20250219,context-1m-2025-08-07,interleaved-thinking-2025-05-14,fine-grained-tool-streaming-2025-05-14"


def test_a_claude_code_request_is_adapted_to_the_model_it_is_routed_to(budget_gw, fake_provider):
    """Claude Code's every-call fields, asked of its own model but routed to haiku (passthrough)."""
    body = {"model": "claude-opus-4-8", "max_tokens": 64000, "thinking": {"type": "adaptive"},
            "output_config": {"effort": "high"}, "context_management": {"edits": []},
            "messages": [{"role": "user", "content": "rename foo to bar in utils.py"}]}
    resp = httpx.post(budget_gw.url + "/v1/messages", json=body,
                      headers={"anthropic-version": "2023-06-01", "anthropic-beta": CLAUDE_CODE_BETAS})
    assert resp.status_code == 200, resp.text
    [sent] = fake_provider.requests_for("claude-haiku-4-5")
    assert sent.body["max_tokens"] == 4096  # guardrails.max_output_tokens, not 64000
    assert sent.body["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    assert "output_config" not in sent.body and "context_management" not in sent.body
    betas = sent.headers["anthropic-beta"].split(",")
    assert "context-1m-2025-08-07" not in betas and "claude-code-20250219" not in betas  # haiku: 200k window
    assert "interleaved-thinking-2025-05-14" in betas and "fine-grained-tool-streaming-2025-05-14" in betas
    [row] = ledger_rows(budget_gw.db)
    adapted = json.loads(row["meta_json"])["serve"]["adapted"]
    assert "max_tokens 64000 -> 4096" in adapted and any("adaptive -> enabled" in a for a in adapted)
    assert any("context-1m" in a for a in adapted)
    # the reservation was for 4096 output tokens, not 64000: a $0.05 cap is far from exhausted
    assert row["reserved_usd"] is None and row["cost_usd"] < 0.05


def test_an_openai_request_gets_one_clamped_output_limit_and_no_foreign_fields(budget_gw, fake_provider):
    body = {"model": "tier2", "temperature": 0.2, "n": 1,
            "messages": [{"role": "user", "content": "rename foo to bar in utils.py"}]}
    resp = httpx.post(budget_gw.url + "/v1/chat/completions", json=body)
    assert resp.status_code == 200, resp.text
    [sent] = fake_provider.requests_for("gpt-5-mini")
    assert sent.body["max_completion_tokens"] == 4096 and "max_tokens" not in sent.body  # none was sent before
    assert "temperature" not in sent.body  # gpt-5-mini takes only the default


def test_an_anthropic_request_routed_to_a_gpt_model_loses_its_thinking(budget_gw, fake_provider):
    body = {"model": "tier2", "max_tokens": 64000, "thinking": {"type": "enabled", "budget_tokens": 12000},
            "messages": [{"role": "user", "content": "rename foo to bar in utils.py"}]}
    resp = httpx.post(budget_gw.url + "/v1/messages", json=body, headers={"anthropic-version": "2023-06-01"})
    assert resp.status_code == 200, resp.text
    [sent] = fake_provider.requests_for("gpt-5-mini")
    assert "thinking" not in sent.body
    assert sent.body.get("max_completion_tokens", sent.body.get("max_tokens")) == 4096


@pytest.fixture
def plain_gw(fake_provider, keys, tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(config_text(fake_provider, "serve: {sticky_ttl_s: 0}"))
    g = Gateway(path, tmp_path / "p.db")
    yield g
    g.stop()


def test_an_over_long_prompt_goes_only_where_it_fits_or_gets_the_overflow_error(plain_gw, fake_provider):
    """tier1 (haiku) and tier3 (sonnet) hold 200k tokens, tier2 (gpt-5-mini) 272k."""
    long = "word " * 230_000  # ~230k tokens
    resp = httpx.post(plain_gw.url + "/v1/chat/completions", timeout=60,
                      json={"model": "auto", "messages": [{"role": "user", "content": "grep for TODO\n" + long}]})
    assert resp.status_code == 200, resp.text[:300]
    assert [r.model for r in fake_provider.requests] == ["gpt-5-mini"]
    [row] = ledger_rows(plain_gw.db)
    assert row["tier"] == "tier2" and json.loads(row["meta_json"])["serve"]["rule"] == "context_window"
    too_long = "word " * 300_000
    for protocol, path in (("openai", "/v1/chat/completions"), ("anthropic", "/v1/messages")):
        resp = httpx.post(plain_gw.url + path, timeout=60, headers={"anthropic-version": "2023-06-01"},
                          json={"model": "auto", "max_tokens": 100, "messages": [{"role": "user", "content": too_long}]})
        assert resp.status_code == 400
        if protocol == "openai":
            err = resp.json()["error"]
            assert err["code"] == "context_length_exceeded" and err["type"] == "invalid_request_error"
        else:
            err = resp.json()["error"]
            assert err["type"] == "invalid_request_error" and err["message"].startswith("prompt is too long")
    assert len(fake_provider.requests) == 1 and len(ledger_rows(plain_gw.db)) == 1  # nothing sent, nothing recorded


def test_a_budget_holds_under_concurrent_hostile_clients(fake_provider, keys, tmp_path):
    """32 clients sending 40 KB of tools, n: 4 and no max_tokens: the provider bills the tools, every
    answer and the whole output allowance; spend stays within the cap plus one estimate (it overran
    3.8x, 6.7x and 210x when tools, n and the output limit were not counted or not sent)."""
    from tiercli import tokens

    cap = 0.10
    path = tmp_path / "h.yaml"
    path.write_text(config_text(fake_provider, f"guardrails: {{budget: {{daily_usd: {cap}}}}}\nserve: {{sticky_ttl_s: 0}}"))
    g = Gateway(path, tmp_path / "h.db")
    tools = [{"type": "function", "function": {"name": f"tool_{i}", "description": "x" * 400,
                                               "parameters": {"type": "object", "properties": {}}}} for i in range(90)]
    messages = [{"role": "user", "content": "rename foo to bar in utils.py"}]
    billed_prompt = tokens.count_messages(messages, "gpt-5-mini") + tokens.count(json.dumps(tools, ensure_ascii=False), "gpt-5-mini")
    # the worst a provider may bill: the whole prompt, 4 answers of the full (clamped) output allowance
    fake_provider.set_default("gpt-5-mini", Reply(text="ok", prompt_tokens=billed_prompt, output_tokens=4 * 4096))
    statuses: list[int] = []

    def client() -> None:
        for _ in range(3):
            r = httpx.post(g.url + "/v1/chat/completions", timeout=60,
                           json={"model": "tier2", "messages": messages, "tools": tools, "n": 4})
            statuses.append(r.status_code)

    try:
        threads = [threading.Thread(target=client) for _ in range(32)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        g.gw.flush()
    finally:
        g.stop()
    rows = ledger_rows(g.db)
    spent = sum(r["cost_usd"] or 0 for r in rows if r["status"] == "ok")
    one_estimate = (billed_prompt * 0.25 + 4 * 4096 * 2.0) / 1e6  # gpt-5-mini: $0.25 in, $2 out per Mtok
    assert statuses.count(200) >= 1 and statuses.count(402) >= 1
    assert spent <= cap + one_estimate, (spent, cap, one_estimate)
    assert all(r.body["max_completion_tokens"] == 4096 and r.body["n"] == 4 for r in fake_provider.requests)
    assert [r for r in rows if r["status"] == "pending" or r["reserved_usd"] is not None] == []
