"""Costs equal hand computations from the four token buckets; unknown prices are None, never 0."""

from decimal import Decimal

import pytest

from tiercli.pricing import PriceBook, Usage


def test_anthropic_buckets_hand_computed():
    # claude-sonnet-4-5: $3 in, $15 out, $0.30 cache read, $3.75 cache write (5m), $6 (1h) per Mtok
    usage = Usage(input_tokens=1_200, cache_read_tokens=40_000, cache_write_tokens=10_000, output_tokens=800)
    cost, source = PriceBook().cost("claude-sonnet-4-5", usage)
    expected = (1_200 * 3 + 40_000 * 0.30 + 10_000 * 3.75 + 800 * 15) / 1_000_000
    assert cost == pytest.approx(expected, abs=1e-12)
    assert cost == pytest.approx(0.0651, abs=1e-12)
    assert source == "litellm"


def test_one_hour_cache_writes_cost_twice_input():
    usage = Usage(cache_write_tokens=1_000_000, cache_write_1h_tokens=400_000)
    cost, _ = PriceBook().cost("claude-haiku-4-5", usage)
    # 600k at $1.25 (5m) + 400k at $2 (1h = 2x $1 input)
    assert cost == pytest.approx(0.75 + 0.80, abs=1e-12)


def test_openai_cached_tokens_hand_computed():
    # gpt-5-mini: $0.25 in, $2 out, $0.025 cached read per Mtok
    usage = Usage(input_tokens=3_000, cache_read_tokens=7_000, output_tokens=500)
    cost, _ = PriceBook().cost("openai/gpt-5-mini", usage)
    assert cost == pytest.approx((3_000 * 0.25 + 7_000 * 0.025 + 500 * 2) / 1e6, abs=1e-12)


@pytest.mark.parametrize("model", ["claude-haiku-3-5", "claude-opus-4-1", "openrouter/anthropic/claude-sonnet-4.5", "my-local-model"])
def test_unknown_models_are_unpriced_not_zero(model):
    assert PriceBook().lookup(model) is None
    assert PriceBook().cost(model, Usage(input_tokens=10, output_tokens=10)) == (None, None)


def test_config_prices_win_and_fill_cache_rates():
    book = PriceBook({"claude-opus-4-1": {"input": 15, "output": 75}, "claude-sonnet-4-5": {"input": 1, "output": 2}})
    opus = book.lookup("anthropic/claude-opus-4-1")
    assert opus.source == "config"
    assert opus.cache_read == Decimal("15") / 1_000_000 * Decimal("0.1")
    assert opus.cache_write == Decimal("15") / 1_000_000 * Decimal("1.25")
    assert book.lookup("claude-sonnet-4-5").input == Decimal(1) / 1_000_000


def test_deployment_prices_and_aliases():
    params = {"model": "openai/house-model", "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6}
    assert PriceBook().lookup("openai/house-model", params).source == "deployment"
    # imported Claude Code logs name claude-sonnet-4-20250514, priced in litellm's map only as a Bedrock id
    alias = PriceBook().lookup("claude-sonnet-4-20250514")
    assert alias is not None and alias.input == Decimal("0.000003")
    assert alias.cache_write_1h == Decimal("0.000006")


def test_offline_models_cost_what_they_stand_in_for():
    usage = Usage(input_tokens=1000, output_tokens=100)
    assert PriceBook().cost("offline/claude-opus-4-5", usage) == PriceBook().cost("claude-opus-4-5", usage)


def test_long_context_requests_are_billed_at_the_long_context_rates():
    # claude-sonnet-4 (priced via its Bedrock id): $3/$15 per Mtok, $6/$22.50 above 200k prompt tokens,
    # cache read $0.30 -> $0.60, cache write $3.75 -> $7.50
    book = PriceBook()
    short = Usage(input_tokens=150_000, output_tokens=1_000)
    long = Usage(input_tokens=150_000, cache_read_tokens=60_000, cache_write_tokens=10_000, output_tokens=1_000)
    assert book.cost("claude-sonnet-4-20250514", short)[0] == pytest.approx((150_000 * 3 + 1_000 * 15) / 1e6)
    assert book.cost("claude-sonnet-4-20250514", long)[0] == pytest.approx(
        (150_000 * 6 + 60_000 * 0.6 + 10_000 * 7.5 + 1_000 * 22.5) / 1e6)
    # exactly at the threshold is still the base rate
    edge = Usage(input_tokens=200_000, output_tokens=0)
    assert book.cost("claude-sonnet-4-20250514", edge)[0] == pytest.approx(200_000 * 3 / 1e6)


def test_the_price_map_decodes_to_what_json_loads_gives():
    """pricing decodes litellm's 3.5 MB map with msgspec: the same dict, floats included, as json."""
    import json

    from tiercli.pricing import decode_price_map, litellm_package_dir, litellm_price_map

    raw = (litellm_package_dir() / "model_prices_and_context_window_backup.json").read_bytes()
    expected = json.loads(raw.decode("utf-8"))
    assert litellm_price_map() == expected
    assert json.dumps(litellm_price_map(), sort_keys=True) == json.dumps(expected, sort_keys=True)  # exact floats
    assert decode_price_map(b'{"m": {"input_cost_per_token": NaN}, "t": "\\ud83d"}')["t"] == "\ud83d"  # json's reading
    assert decode_price_map(b"{not json") == {} and decode_price_map(b"\xff\xfe") == {}


def test_cost_of_is_cost_of_a_usage():
    """UnitPrice.cost_of (the import's per-row pricing) gives cost(Usage(...)) exactly, long context included."""
    import random

    book = PriceBook({"cfg-model": {"input": 3, "output": 15}})
    prices = [book.lookup(m) for m in ("claude-sonnet-4-20250514", "gemini-2.5-pro", "claude-haiku-4-5", "cfg-model")]
    assert any(p.long_context for p in prices)
    rng = random.Random(7)
    for _ in range(2000):
        w = rng.choice([0, rng.randrange(0, 400_000)])
        tokens = (rng.randrange(0, 300_000), rng.choice([0, rng.randrange(0, 300_000)]), w,
                  rng.randrange(0, 70_000), rng.randrange(0, w + 1))
        for p in prices:
            expected = p.cost(Usage(tokens[0], tokens[1], tokens[2], tokens[3], tokens[4]))
            got = p.cost_of(*tokens)
            assert got == expected and str(got) == str(expected)
