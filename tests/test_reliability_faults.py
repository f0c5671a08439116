"""Provider faults through the fake server and the real litellm client: each gives its documented
behaviour (retry, fallback or one clear error line with exit code 6) and a ledger row with the
right status and error_class. The table in docs/RELIABILITY.md lists the same cases.
"""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from fakeprovider import Reply
from relhelp import BlackHole, assert_one_line_error, base_for, closed_port, models, read_rows, two_tier_config
from tiercli.cli import app

runner = CliRunner()
PROTOS = ["openai", "anthropic"]


@pytest.fixture(scope="module", autouse=True)
def _litellm_warm(fake_provider_server):
    """Import litellm and make one call per protocol before any timing is measured: the import
    alone is 3 s, and each protocol's first call loads its SDK (more on a busy machine)."""
    from tiercli import providers

    litellm = providers._quiet_litellm()
    for model, base in (("openai/warm", fake_provider_server.openai_base), ("anthropic/warm", fake_provider_server.anthropic_base)):
        litellm.completion(model=model, api_base=base, api_key="sk-warm-000000000000", max_retries=0,
                           messages=[{"role": "user", "content": "warm up"}])


@pytest.fixture(autouse=True)
def _keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-faults-000000000000")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-faults-000000000000")


def ask(cfg, *extra, prompt="find the retry policy"):
    started = time.monotonic()
    result = runner.invoke(app, ["ask", "-c", str(cfg), "-t", "search", *extra, prompt])
    return result, time.monotonic() - started


def only_row(tier_home):
    rows = read_rows(tier_home / "ledger.db")
    assert len(rows) == 1, rows
    return rows[0]


# -- 429 ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("proto", PROTOS)
def test_429_without_retry_or_fallback_is_one_clear_error(fake_provider, tmp_path, tier_home, proto):
    m1 = models(proto)[0]
    fake_provider.script(m1, Reply.rate_limited(retry_after=1))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto))
    result, elapsed = ask(cfg, "--json")
    assert_one_line_error(result, 6, "RateLimitError", "rate-limiting")
    row = only_row(tier_home)
    assert (row["status"], row["error_class"], row["served_tier"]) == ("error", "RateLimitError", None)
    assert row["cost_usd"] == 0 and row["input_tokens"] == 0  # nothing was served, nothing is charged
    assert len(fake_provider.requests) == 1


@pytest.mark.parametrize("proto", PROTOS)
def test_429_with_retry_after_is_retried_in_place_after_the_wait(fake_provider, tmp_path, tier_home, proto):
    m1 = models(proto)[0]
    fake_provider.script(m1, Reply.rate_limited(retry_after=1), Reply(text="after the wait"))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto), retries=1)
    result, _ = ask(cfg)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == "after the wait\n"
    first, second = fake_provider.requests
    assert first.model == second.model == m1
    assert second.ts - first.ts >= 0.95  # Retry-After: 1 was obeyed (litellm obeys 0 < Retry-After <= 60 s)
    row = only_row(tier_home)
    assert (row["status"], row["served_tier"], row["fallback_count"]) == ("ok", "tier1", 0)


@pytest.mark.parametrize("proto", PROTOS)
def test_429_with_a_fallback_is_served_by_the_next_tier(fake_provider, tmp_path, tier_home, proto):
    m1, m2, _ = models(proto)
    fake_provider.script(m1, Reply.rate_limited(retry_after=30))
    fake_provider.set_default(m2, Reply(text="from tier2"))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto), fallbacks=True)
    result, elapsed = ask(cfg)
    assert result.exit_code == 0, result.stderr
    assert elapsed < 10  # a fallback does not wait for the 30 s Retry-After
    row = only_row(tier_home)
    assert (row["status"], row["tier"], row["served_tier"], row["fallback_count"]) == ("ok", "tier1", "tier2", 1)
    assert [a["error_class"] for a in json.loads(row["attempts_json"])] == ["RateLimitError"]


# -- 500 and connection reset --------------------------------------------------------------------------
@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("fault", ["500", "reset"])
def test_server_error_and_reset_fail_cleanly_or_fall_back(fake_provider, tmp_path, tier_home, proto, fault):
    m1, m2, _ = models(proto)
    reply = Reply.error(500) if fault == "500" else Reply(reset=True)
    fake_provider.set_default(m1, reply)
    fake_provider.set_default(m2, Reply(text="from tier2"))
    base = base_for(fake_provider, proto)
    alone = two_tier_config(tmp_path / "alone.yaml", proto, base)
    result, _ = ask(alone, "--json")
    assert_one_line_error(result, 6, "tier1 call failed", "InternalServerError")
    with_fallback = two_tier_config(tmp_path / "fb.yaml", proto, base, fallbacks=True)
    result, _ = ask(with_fallback)
    assert result.exit_code == 0 and result.stdout == "from tier2\n", result.stderr
    failed, served = read_rows(tier_home / "ledger.db")
    assert (failed["status"], failed["error_class"]) == ("error", "InternalServerError")
    assert (served["status"], served["served_tier"], served["fallback_count"]) == ("ok", "tier2", 1)


@pytest.mark.parametrize("proto", PROTOS)
def test_500_is_retried_when_num_retries_is_set(fake_provider, tmp_path, tier_home, proto):
    m1 = models(proto)[0]
    fake_provider.script(m1, Reply.error(500), Reply(text="second try"))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto), retries=1)
    result, _ = ask(cfg)
    assert result.exit_code == 0 and result.stdout == "second try\n", result.stderr
    assert len(fake_provider.requests_for(m1)) == 2
    assert only_row(tier_home)["status"] == "ok"


# -- connect and read timeouts ------------------------------------------------------------------------
@pytest.mark.parametrize("proto", PROTOS)
def test_connection_refused_is_one_clear_error_or_falls_back(fake_provider, tmp_path, tier_home, proto):
    base = f"http://127.0.0.1:{closed_port()}" + ("/v1" if proto == "openai" else "")
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base, timeout_s=2)
    result, elapsed = ask(cfg, "--json")
    line = assert_one_line_error(result, 6, "tier1 call failed")
    assert "Connection" in line or "connect" in line.lower()
    assert elapsed < 5  # refused at once (upper bounds are loose: the suite may share a busy machine)
    fb = two_tier_config(tmp_path / "fb.yaml", proto, base, timeout_s=2, fallbacks=True, base2=base_for(fake_provider, proto))
    result, _ = ask(fb)
    assert result.exit_code == 0 and result.stdout == "fake answer\n", result.stderr
    failed, served = read_rows(tier_home / "ledger.db")
    assert failed["status"] == "error" and failed["error_class"] in ("InternalServerError", "APIConnectionError")
    assert (served["status"], served["served_tier"], served["fallback_count"]) == ("ok", "tier2", 1)


@pytest.mark.parametrize("proto", PROTOS)
def test_connect_timeout_gives_up_after_timeout_s_or_falls_back(fake_provider, tmp_path, tier_home, proto):
    hole = BlackHole()
    try:
        base = f"http://127.0.0.1:{hole.port}" + ("/v1" if proto == "openai" else "")
        cfg = two_tier_config(tmp_path / "c.yaml", proto, base, timeout_s=0.5)
        result, elapsed = ask(cfg, "--json")
        fb = two_tier_config(tmp_path / "fb.yaml", proto, base, timeout_s=0.5, fallbacks=True,
                             base2=base_for(fake_provider, proto))
        served_result, _ = ask(fb)
    finally:
        hole.close()
    assert_one_line_error(result, 6, "Timeout", "timeout_s")
    assert 0.45 <= elapsed < 10  # not the OS's minutes-long SYN retries
    assert served_result.exit_code == 0 and served_result.stdout == "fake answer\n", served_result.stderr
    failed, served = read_rows(tier_home / "ledger.db")
    assert (failed["status"], failed["error_class"]) == ("error", "Timeout")
    assert (served["status"], served["served_tier"]) == ("ok", "tier2")


@pytest.mark.parametrize("proto", PROTOS)
def test_read_timeout_fails_or_falls_back(fake_provider, tmp_path, tier_home, proto):
    m1, m2, _ = models(proto)
    fake_provider.set_default(m1, Reply(delay_s=6))
    base = base_for(fake_provider, proto)
    result, elapsed = ask(two_tier_config(tmp_path / "a.yaml", proto, base, timeout_s=0.5))
    assert_one_line_error(result, 6, "Timeout")
    assert 0.45 <= elapsed < 5  # not the 6 s the server sleeps
    result, elapsed = ask(two_tier_config(tmp_path / "b.yaml", proto, base, timeout_s=0.5, fallbacks=True))
    assert result.exit_code == 0 and result.stdout == "fake answer\n", result.stderr
    assert elapsed < 10
    failed, served = read_rows(tier_home / "ledger.db")
    assert (failed["status"], failed["error_class"]) == ("error", "Timeout")
    assert (served["status"], served["served_tier"]) == ("ok", "tier2")


# -- the total deadline ---------------------------------------------------------------------------------
@pytest.mark.parametrize("proto", PROTOS)
def test_a_trickling_stream_is_cut_at_the_total_deadline(fake_provider, tmp_path, tier_home, proto):
    """Every chunk arrives well within the read timeout, so only a wall-clock cap stops it: 300 words
    at 0.2 s would take a minute; guardrails.timeout_s = 0.8 ends it after ~0.8 s."""
    m1 = models(proto)[0]
    fake_provider.set_default(m1, Reply(text=" ".join(f"w{i}" for i in range(300)), chunk_delay_s=0.2))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto), timeout_s=0.8)
    result, elapsed = ask(cfg)
    assert_one_line_error(result, 6, "DeadlineExceeded", "guardrails.timeout_s (0.8 s)")
    assert 0.75 <= elapsed < 10  # ~0.8 s + one chunk interval; the whole answer would take 60 s
    assert result.stdout.startswith("w0 w1")  # what arrived was shown...
    row = only_row(tier_home)
    assert (row["status"], row["error_class"]) == ("error", "DeadlineExceeded")
    assert row["response_text"] and result.stdout.startswith(row["response_text"])  # ...and kept
    assert json.loads(row["attempts_json"])[0]["error_class"] == "DeadlineExceeded"
    # the provider bills what it streamed: counted locally, flagged as estimated (it used to be $0)
    assert row["output_tokens"] > 0 and row["input_tokens"] > 0 and row["output_estimated"] == 1
    assert row["cost_usd"] > 0


# -- malformed answers and cut streams ----------------------------------------------------------------
@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("stream", [True, False])
def test_malformed_json_is_one_clear_error(fake_provider, tmp_path, tier_home, proto, stream):
    fake_provider.set_default(models(proto)[0], Reply(malformed=True))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto))
    result, _ = ask(cfg, *([] if stream else ["--json"]))
    assert_one_line_error(result, 6, "tier1 call failed")
    row = only_row(tier_home)
    assert row["status"] == "error" and row["error_class"] in ("APIConnectionError", "InternalServerError")


@pytest.mark.parametrize("proto", PROTOS)
def test_malformed_stream_falls_back_and_the_row_names_the_tier_that_served(fake_provider, tmp_path, tier_home, proto):
    """Regression: litellm falls back inside the stream wrapper; the row used to name tier1 (and
    price the answer at tier1's model) although tier2 answered."""
    m1, m2, _ = models(proto)
    fake_provider.set_default(m1, Reply(malformed=True, text="x y z"))
    fake_provider.set_default(m2, Reply(text="tier2 answered", output_tokens=2))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto), fallbacks=True)
    result, _ = ask(cfg)
    assert result.exit_code == 0 and result.stdout == "tier2 answered\n", result.stderr
    assert result.stderr.startswith("tier1→tier2 · ")
    row = only_row(tier_home)
    assert (row["status"], row["served_tier"], row["served_model"]) == ("ok", "tier2", f"{proto}/{m2}")
    assert row["fallback_count"] == 1


@pytest.mark.parametrize("proto", PROTOS)
def test_a_stream_cut_half_way_keeps_the_partial_answer_and_fails_clearly(fake_provider, tmp_path, tier_home, proto):
    """Text already shown is never silently re-asked of another tier (it would be shown twice)."""
    m1, m2, _ = models(proto)
    fake_provider.set_default(m1, Reply(text="one two three four five six", cut_stream_after=3))
    cfg = two_tier_config(tmp_path / "c.yaml", proto, base_for(fake_provider, proto), fallbacks=True)
    result, _ = ask(cfg)
    assert_one_line_error(result, 6, "tier1 call failed", "APIConnectionError")
    assert result.stdout == "one two three \n"
    assert fake_provider.requests_for(m2) == []
    row = only_row(tier_home)
    assert (row["status"], row["error_class"], row["response_text"]) == ("error", "APIConnectionError", "one two three ")
    assert row["output_tokens"] > 0 and row["output_estimated"] == 1 and row["cost_usd"] > 0


def test_error_lines_do_not_repeat_the_exception_name(fake_provider, tmp_path, tier_home):
    fake_provider.set_default("gpt-4o-mini", Reply.error(500))
    cfg = two_tier_config(tmp_path / "c.yaml", "openai", base_for(fake_provider, "openai"))
    result, _ = ask(cfg)
    line = assert_one_line_error(result, 6)
    assert line.count("InternalServerError") == 1, line
