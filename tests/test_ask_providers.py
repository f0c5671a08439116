"""`tier ask` through the real litellm client over real HTTP to the fake provider on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from fakeprovider import Reply, tier_config
from helpers import rows, tier

runner = CliRunner()
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdefSECRET"
OPENAI_KEY = "sk-test-openai-0123456789abcdefSECRET"


def anthropic_config(fake, tmp_path, *, opus="claude-opus-4-5", extra=""):
    models = ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", f"anthropic/{opus}"]
    return tier_config(fake, tmp_path / "anthropic.yaml", models, body="routing: {classifier: static}\n" + extra)


def openai_config(fake, tmp_path):
    models = ["openai/gpt-4o-mini", "openai/gpt-5-mini", "openai/gpt-5"]
    return tier_config(fake, tmp_path / "openai.yaml", models, key_var="OPENAI_API_KEY")


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)






@pytest.mark.parametrize("task_type, tier_name, model", [
    ("search", "tier1", "claude-haiku-4-5"),
    ("bug_fix", "tier2", "claude-sonnet-4-5"),
    ("architecture", "tier3", "claude-opus-4-5"),
])
def test_static_routing_reaches_each_tier(fake_provider, tmp_path, tier_home, keys, task_type, tier_name, model):
    fake_provider.set_default(model, Reply(text=f"answer from {model}"))
    result = tier("ask", "-c", anthropic_config(fake_provider, tmp_path), "-t", task_type, "do the thing")
    assert result.exit_code == 0, result.output
    assert result.stdout == f"answer from {model}\n"
    assert result.stderr.startswith(f"{tier_name} · anthropic/{model} · {task_type} (static) · $")
    assert [r.model for r in fake_provider.requests] == [model]
    [row] = rows(tier_home)
    assert (row["tier"], row["served_tier"], row["status"], row["fallback_count"]) == (tier_name, tier_name, "ok", 0)
    assert row["served_model"] == f"anthropic/{model}"
    assert row["response_text"] == f"answer from {model}"


def test_fallback_on_429_records_both_attempts(fake_provider, tmp_path, tier_home, keys):
    fake_provider.script("claude-haiku-4-5", Reply.rate_limited(retry_after=0))
    fake_provider.set_default("claude-sonnet-4-5", Reply(text="tier2 saved the day"))
    result = tier("ask", "-c", anthropic_config(fake_provider, tmp_path), "-t", "search", "find it")
    assert result.exit_code == 0, result.output
    assert result.stdout == "tier2 saved the day\n"
    assert result.stderr.startswith("tier1→tier2 · anthropic/claude-sonnet-4-5 · search (static)")
    assert [r.model for r in fake_provider.requests] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    [row] = rows(tier_home)
    assert row["tier"] == "tier1" and row["served_tier"] == "tier2"
    assert row["attempts"] == 2 and row["fallback_count"] == 1
    [failed] = json.loads(row["attempts_json"])
    assert failed["group"] == "tier1" and failed["error_class"] == "RateLimitError"


def test_anthropic_cost_with_cache_tokens_equals_hand_computation(fake_provider, tmp_path, tier_home, keys):
    reply = Reply(text="cached answer", input_tokens=1_000, cache_read_tokens=20_000, cache_write_tokens=3_000, output_tokens=400)
    fake_provider.set_default("claude-sonnet-4-5", reply)
    cfg = anthropic_config(fake_provider, tmp_path)
    # sonnet-4-5: $3 input, $0.30 cache read, $3.75 cache write, $15 output per Mtok
    expected = (1_000 * 3 + 20_000 * 0.30 + 3_000 * 3.75 + 400 * 15) / 1_000_000
    assert expected == pytest.approx(0.02625)
    for extra in ([], ["--json"]):  # streamed, then not streamed
        result = tier("ask", "-c", cfg, "-t", "feature", "add it", *extra)
        assert result.exit_code == 0, result.output
    streamed, whole = rows(tier_home)
    for row in (streamed, whole):
        assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (1_000, 20_000, 3_000, 400)
        assert row["cost_usd"] == pytest.approx(expected, abs=1e-12)
        assert row["price_source"] == "litellm" and row["output_estimated"] == 0
    assert json.loads(result.stdout)["cost_usd"] == pytest.approx(expected, abs=1e-12)
    assert fake_provider.requests[0].stream and not fake_provider.requests[1].stream


def test_openai_cost_with_cached_tokens_equals_hand_computation(fake_provider, tmp_path, tier_home, keys):
    fake_provider.set_default("gpt-5-mini", Reply(text="ok", prompt_tokens=10_000, cache_read_tokens=6_000, output_tokens=300))
    result = tier("ask", "-c", openai_config(fake_provider, tmp_path), "-t", "bug_fix", "fix")
    assert result.exit_code == 0, result.output
    [row] = rows(tier_home)
    # prompt_tokens includes the 6,000 cached: 4,000 uncached at $0.25, 6,000 at $0.025, 300 out at $2 per Mtok
    assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (4_000, 6_000, 0, 300)
    assert row["cost_usd"] == pytest.approx((4_000 * 0.25 + 6_000 * 0.025 + 300 * 2) / 1e6, abs=1e-12)


def test_unpriced_model_is_flagged_not_zero(fake_provider, tmp_path, tier_home, keys):
    fake_provider.set_default("claude-opus-4-1", Reply(text="expensive?"))
    cfg = anthropic_config(fake_provider, tmp_path, opus="claude-opus-4-1")
    result = tier("ask", "-c", cfg, "-t", "algorithm", "invent it")
    assert result.exit_code == 0, result.output
    assert result.stderr.rstrip().endswith("· unpriced")
    [row] = rows(tier_home)
    assert row["cost_usd"] is None and row["unpriced"] == 1 and row["price_source"] is None
    assert row["output_tokens"] > 0
    data = json.loads(tier("log", "--json", "-n", "1").stdout)[0]
    assert data["cost_usd"] is None and data["unpriced"] is True


def test_interrupted_stream_is_recorded(fake_provider, tmp_path, tier_home, keys):
    from tiercli import ask, config
    from tiercli.ledger import Ledger
    from tiercli.providers import Interrupted

    fake_provider.set_default("claude-sonnet-4-5", Reply(text="one two three four five six seven eight"))
    loaded = config.load(anthropic_config(fake_provider, tmp_path))
    seen = []

    def on_text(piece):  # the user presses Ctrl-C after the third chunk
        seen.append(piece)
        if len(seen) == 3:
            raise KeyboardInterrupt

    with Ledger(tier_home / "ledger.db") as ledger, pytest.raises(Interrupted):
        ask.run(loaded, ask.AskRequest(prompt="stream please", task_type="bug_fix"), ledger, on_text=on_text)
    [row] = rows(tier_home)
    assert row["status"] == "interrupted" and row["error_class"] == "KeyboardInterrupt"
    assert row["response_text"] == "".join(seen) == "one two three "
    assert row["output_estimated"] == 1 and row["output_tokens"] > 0 and row["cost_usd"] > 0


def assert_one_line(result, code, *fragments):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tier: error: "), result.stderr
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_provider_401_is_a_clear_error_and_an_error_row(fake_provider, tmp_path, tier_home, keys):
    cfg = anthropic_config(fake_provider, tmp_path)
    for model in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):
        fake_provider.set_default(model, Reply.error(401, f"invalid x-api-key {ANTHROPIC_KEY}"))
    result = tier("ask", "-c", cfg, "-t", "search", "x")
    assert_one_line(result, 6, "AuthenticationError", "check the API key")
    assert ANTHROPIC_KEY not in result.output
    [row] = rows(tier_home)
    assert row["status"] == "error" and row["error_class"] == "AuthenticationError"
    assert row["cost_usd"] == 0 and row["input_tokens"] == 0
    wal = tier_home / "ledger.db-wal"  # gone once the last connection checkpointed it
    raw = (tier_home / "ledger.db").read_bytes() + (wal.read_bytes() if wal.exists() else b"")
    assert ANTHROPIC_KEY.encode() not in raw


def test_context_window_overflow(fake_provider, tmp_path, tier_home, keys):
    cfg = anthropic_config(fake_provider, tmp_path)
    for model in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):
        fake_provider.set_default(model, Reply.context_window_exceeded(250_000))
    result = tier("ask", "-c", cfg, "-t", "architecture", "huge")
    assert_one_line(result, 6, "ContextWindowExceededError", "context window")
    assert rows(tier_home)[0]["status"] == "error"


def test_unset_key_is_named_and_nothing_is_sent(fake_provider, tmp_path, tier_home):
    result = tier("ask", "-c", anthropic_config(fake_provider, tmp_path), "-t", "search", "x")
    assert_one_line(result, 3, "ANTHROPIC_API_KEY is not set", "tier1")
    assert fake_provider.requests == []
    assert rows(tier_home) == []


def test_all_tiers_failing(fake_provider, tmp_path, tier_home, keys):
    fake_provider.set_default("*", Reply.error(500, "boom"))
    result = tier("ask", "-c", anthropic_config(fake_provider, tmp_path), "-t", "search", "x")
    assert_one_line(result, 6, "tier1 call failed")
    assert [r.model for r in fake_provider.requests] == ["claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"]
    [row] = rows(tier_home)
    assert row["status"] == "error"
    assert [a["group"] for a in json.loads(row["attempts_json"])] == ["tier1", "tier2", "tier3"]


def test_llm_classifier_row_is_linked_and_costs_add_up(fake_provider, tmp_path, tier_home, keys):
    fake_provider.set_default("claude-haiku-4-5", Reply(text="  high.", input_tokens=200, output_tokens=2))
    fake_provider.set_default("claude-opus-4-5", Reply(text="the design", input_tokens=50, output_tokens=100))
    result = tier("ask", "-c", anthropic_config(fake_provider, tmp_path), "--classifier", "llm", "how should we split the monolith?")
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("tier3 · anthropic/claude-opus-4-5 · high (llm)")
    classifier_row, main_row = rows(tier_home)
    assert classifier_row["kind"] == "classifier" and classifier_row["parent_id"] == main_row["id"]
    assert main_row["kind"] == "main" and main_row["label"] == "HIGH" and main_row["decision_source"] == "llm"
    classifier_request = fake_provider.requests_for("claude-haiku-4-5")[0].body
    assert classifier_request["temperature"] == 0 and classifier_request["max_tokens"] == 8
    assert classifier_row["cost_usd"] == pytest.approx((200 * 1 + 2 * 5) / 1e6)
    assert main_row["cost_usd"] == pytest.approx((50 * 5 + 100 * 25) / 1e6)


@pytest.mark.parametrize("answer", ["I'm not sure", ""])
def test_unparseable_classifier_answer_routes_to_default(fake_provider, tmp_path, tier_home, keys, answer):
    fake_provider.set_default("claude-haiku-4-5", Reply(text=answer or "?"))
    result = tier("ask", "-c", anthropic_config(fake_provider, tmp_path), "--classifier", "llm", "hmm")
    assert result.exit_code == 0, result.output
    classifier_row, main_row = rows(tier_home)
    assert main_row["tier"] == "tier2" and main_row["decision_source"] == "default"
    assert "not understood" in main_row["meta_json"]


def test_failed_classifier_call_routes_to_default(fake_provider, tmp_path, tier_home, keys):
    fake_provider.script("claude-haiku-4-5", Reply.error(500, "classifier down"))
    fake_provider.script("claude-sonnet-4-5", Reply.error(500, "also down for the classifier"), Reply(text="main answer"))
    fake_provider.script("claude-opus-4-5", Reply.error(500, "and this"))
    result = tier("ask", "-c", anthropic_config(fake_provider, tmp_path), "--classifier", "llm", "hmm")
    assert result.exit_code == 0, result.output
    assert result.stdout == "main answer\n"
    classifier_row, main_row = rows(tier_home)
    assert classifier_row["status"] == "error" and classifier_row["kind"] == "classifier"
    assert main_row["decision_source"] == "default" and main_row["tier"] == "tier2"
    assert "llm classifier call failed" in main_row["meta_json"]
