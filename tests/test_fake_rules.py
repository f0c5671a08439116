"""The fake provider is strict per model (tests/fake_rules.py): what the real API refuses for a model
litellm's map knows is refused here too, in the provider's real error shape; unknown models and a
non-strict fake accept everything. Raw HTTP against the fake, and one case through litellm."""

from __future__ import annotations

import httpx
import pytest

from fake_rules import model_info
from fakeprovider import FakeProvider, Reply

pytestmark = pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")

USER = [{"role": "user", "content": "hello"}]


def anthropic(fake, body: dict, beta: str | None = None) -> httpx.Response:
    headers = {"x-api-key": "sk-fake", "anthropic-version": "2023-06-01"}
    if beta:
        headers["anthropic-beta"] = beta
    return httpx.post(fake.base_url + "/v1/messages", json={"messages": USER, **body}, headers=headers, timeout=10)


def openai(fake, body: dict) -> httpx.Response:
    return httpx.post(fake.openai_base + "/chat/completions", json={"messages": USER, **body},
                      headers={"authorization": "Bearer sk-fake"}, timeout=10)


def anthropic_400(resp: httpx.Response, words: str) -> None:
    assert resp.status_code == 400, resp.text
    body = resp.json()
    assert body["type"] == "error" and body["error"]["type"] == "invalid_request_error"
    assert words in body["error"]["message"]


def openai_400(resp: httpx.Response, param: str | None, code: str | None, words: str) -> None:
    assert resp.status_code == 400, resp.text
    err = resp.json()["error"]
    assert (err["type"], err["param"], err["code"]) == ("invalid_request_error", param, code)
    assert words in err["message"]


# -- Anthropic ---------------------------------------------------------------------------------------------
def test_max_tokens_above_the_models_output_limit(fake_provider):
    limit = model_info("anthropic", "claude-haiku-4-5")["max_output_tokens"]
    anthropic_400(anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": limit + 1}),
                  f"max_tokens: {limit + 1} > {limit}")
    ok = anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": limit})
    assert ok.status_code == 200


def test_adaptive_thinking_only_where_the_map_says(fake_provider):
    """Claude Code sends thinking: {type: adaptive} on every main call."""
    adaptive = {"thinking": {"type": "adaptive"}, "max_tokens": 1000}
    anthropic_400(anthropic(fake_provider, {"model": "claude-haiku-4-5", **adaptive}), "'adaptive' is not supported")
    anthropic_400(anthropic(fake_provider, {"model": "claude-sonnet-4-5", **adaptive}), "'adaptive' is not supported")
    assert anthropic(fake_provider, {"model": "claude-opus-4-8", **adaptive}).status_code == 200
    budget = {"thinking": {"type": "enabled", "budget_tokens": 1024}, "max_tokens": 2000}
    assert anthropic(fake_provider, {"model": "claude-haiku-4-5", **budget}).status_code == 200
    assert anthropic(fake_provider, {"model": "claude-sonnet-4-6", **budget}).status_code == 200  # legacy still allowed
    anthropic_400(anthropic(fake_provider, {"model": "claude-opus-4-8", **budget}), "'enabled' is not supported")
    anthropic_400(anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": 1000,
                                            "thinking": {"type": "enabled", "budget_tokens": 1024}}),
                  "greater than `thinking.budget_tokens`")


def test_output_config_and_compaction_where_unsupported(fake_provider):
    effort = {"output_config": {"effort": "high"}, "max_tokens": 100}
    anthropic_400(anthropic(fake_provider, {"model": "claude-haiku-4-5", **effort}), "output_config")
    assert anthropic(fake_provider, {"model": "claude-opus-4-5", **effort}).status_code == 200
    compact = {"context_management": {"edits": [{"type": "compact_20260112"}]}, "max_tokens": 100}
    anthropic_400(anthropic(fake_provider, {"model": "claude-sonnet-4-5", **compact}), "compaction")
    assert anthropic(fake_provider, {"model": "claude-opus-4-8", **compact}).status_code == 200
    clear = {"context_management": {"edits": [{"type": "clear_tool_uses_20250919"}]}, "max_tokens": 100}
    assert anthropic(fake_provider, {"model": "claude-sonnet-4-5", **clear}).status_code == 200


def test_sampling_params_on_models_that_removed_them(fake_provider):
    anthropic_400(anthropic(fake_provider, {"model": "claude-opus-4-8", "max_tokens": 10, "temperature": 0.2}),
                  "`temperature` is deprecated")
    assert anthropic(fake_provider, {"model": "claude-opus-4-8", "max_tokens": 10, "temperature": 1}).status_code == 200
    assert anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": 10, "temperature": 0.2}).status_code == 200


def test_the_1m_context_beta_only_on_models_that_have_it(fake_provider):
    beta = "context-1m-2025-08-07,interleaved-thinking-2025-05-14"
    anthropic_400(anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": 10}, beta),
                  "context-1m-2025-08-07 is not supported")
    assert anthropic(fake_provider, {"model": "claude-sonnet-4-5", "max_tokens": 10}, beta).status_code == 200
    assert anthropic(fake_provider, {"model": "claude-opus-4-8", "max_tokens": 10}, beta).status_code == 200


def test_a_prompt_over_the_window_is_prompt_is_too_long(fake_provider):
    big = [{"role": "user", "content": "word " * 230_000}]  # ~230k tokens (Anthropic's tokenizer)
    resp = httpx.post(fake_provider.base_url + "/v1/messages", timeout=30,
                      json={"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": big},
                      headers={"x-api-key": "k", "anthropic-version": "2023-06-01"})
    anthropic_400(resp, "prompt is too long: ")
    assert "> 200000 maximum" in resp.json()["error"]["message"]
    resp = httpx.post(fake_provider.base_url + "/v1/messages", timeout=30,
                      json={"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": big},
                      headers={"x-api-key": "k", "anthropic-version": "2023-06-01", "anthropic-beta": "context-1m-2025-08-07"})
    assert resp.status_code == 200


def test_overloaded_is_529_overloaded_error(fake_provider):
    fake_provider.script("claude-haiku-4-5", Reply.overloaded())
    resp = anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": 10})
    assert resp.status_code == 529 and resp.json()["error"]["type"] == "overloaded_error"


# -- OpenAI ------------------------------------------------------------------------------------------------
def test_reasoning_models_want_max_completion_tokens(fake_provider):
    openai_400(openai(fake_provider, {"model": "gpt-5-mini", "max_tokens": 100}), "max_tokens", "unsupported_parameter",
               "Use 'max_completion_tokens' instead")
    assert openai(fake_provider, {"model": "gpt-5-mini", "max_completion_tokens": 100}).status_code == 200
    assert openai(fake_provider, {"model": "gpt-4o-mini", "max_tokens": 100}).status_code == 200


def test_openai_output_limit_temperature_and_anthropic_fields(fake_provider):
    limit = model_info("openai", "gpt-4o-mini")["max_output_tokens"]
    openai_400(openai(fake_provider, {"model": "gpt-4o-mini", "max_tokens": limit + 1}), "max_tokens", "invalid_value",
               f"at most {limit} completion tokens")
    openai_400(openai(fake_provider, {"model": "gpt-5", "temperature": 0.2}), "temperature", "unsupported_value",
               "Only the default (1) value is supported")
    assert openai(fake_provider, {"model": "gpt-5", "temperature": 1}).status_code == 200
    assert openai(fake_provider, {"model": "gpt-4o-mini", "temperature": 0.2}).status_code == 200
    openai_400(openai(fake_provider, {"model": "gpt-5-mini", "thinking": {"type": "adaptive"}}), None, None,
               "Unrecognized request argument supplied: thinking")
    openai_400(openai(fake_provider, {"model": "gpt-4o-mini", "reasoning_effort": "low"}), None, None, "reasoning_effort")


def test_openai_context_length_exceeded(fake_provider):
    big = [{"role": "user", "content": "word " * 140_000}]  # ~140k tokens (o200k_base) > gpt-4o-mini's 128k
    resp = httpx.post(fake_provider.openai_base + "/chat/completions", json={"model": "gpt-4o-mini", "messages": big},
                      headers={"authorization": "Bearer k"}, timeout=30)
    openai_400(resp, "messages", "context_length_exceeded", "maximum context length is 128000 tokens")


def test_through_litellm_the_strict_400_is_a_bad_request(fake_provider):
    import litellm

    with pytest.raises(litellm.BadRequestError) as info:
        litellm.completion(model="anthropic/claude-haiku-4-5", api_base=fake_provider.anthropic_base, api_key="sk-fake",
                           messages=USER, max_tokens=100_000, num_retries=0, max_retries=0)
    assert "max_tokens: 100000 > 64000" in str(info.value)


def test_unknown_models_and_a_lenient_fake_accept_everything(fake_provider):
    wild = {"max_tokens": 10**9, "thinking": {"type": "adaptive"}, "temperature": 0.1}
    assert anthropic(fake_provider, {"model": "m-cheap", **wild}).status_code == 200
    with FakeProvider(strict=False) as lenient:
        assert anthropic(lenient, {"model": "claude-haiku-4-5", **wild}).status_code == 200
        assert openai(lenient, {"model": "gpt-5-mini", "max_tokens": 5, "temperature": 0}).status_code == 200


def test_a_refused_request_leaves_the_script_queued(fake_provider):
    fake_provider.script("claude-haiku-4-5", Reply(text="scripted"))
    assert anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": 10**6}).status_code == 400
    assert fake_provider.pending("claude-haiku-4-5") == 1
    assert anthropic(fake_provider, {"model": "claude-haiku-4-5", "max_tokens": 10}).json()["content"][0]["text"] == "scripted"


def test_the_window_is_counted_with_the_models_tokenizer(fake_provider):
    """230k times `word ` is ~230k tokens for o200k_base, inside gpt-5-mini's 272k window, although the
    fake's billing estimate (4 characters a token) would make it ~287k: the real tokenizer decides."""
    fits = [{"role": "user", "content": "word " * 230_000}]
    resp = httpx.post(fake_provider.openai_base + "/chat/completions", timeout=60,
                      json={"model": "gpt-5-mini", "messages": fits}, headers={"authorization": "Bearer k"})
    assert resp.status_code == 200, resp.text[:300]
