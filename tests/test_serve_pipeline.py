"""The gateway on the recorded-call pipeline: hostile bodies record nothing, shutdown drains, a
killed gateway's rows are recovered (issue 11's reproductions)."""

from __future__ import annotations

import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import httpx
import pytest

from fakeprovider import Reply
from test_serve import ANTHROPIC_KEY, OPENAI_KEY, Gateway, config_text

pytestmark = pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")
BUDGET = "guardrails: {budget: {daily_usd: 0.05}}\nserve: {sticky_ttl_s: 0}"


def all_rows(db) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at, rowid")]
    finally:
        conn.close()


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
    assert all_rows(budget_gw.db) == []
    assert fake_provider.requests == []
    ok = httpx.post(budget_gw.url + "/v1/chat/completions", json={"model": "tier2", "messages": MESSAGES})
    assert ok.status_code == 200, ok.text  # the cap is intact


def test_deeply_nested_json_is_a_400(budget_gw):
    payload = b'{"model": "tier2", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    resp = httpx.post(budget_gw.url + "/v1/chat/completions", content=payload, headers={"content-type": "application/json"})
    assert resp.status_code == 400 and "nested deeper" in resp.json()["error"]["message"]
    assert all_rows(budget_gw.db) == []


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
    rows = all_rows(g.db)
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
        assert {r["status"] for r in all_rows(db)} == {"pending"}
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
    rows = all_rows(db)
    assert [(r["status"], r["error_class"]) for r in rows] == [("interrupted", "ProcessGone")] * 3
    assert all(r["reserved_usd"] is None for r in rows)
