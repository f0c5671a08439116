"""Token buckets -> dollars, and whether a model really has a price.

Prices come from, in order: the config's `prices:` section, per-deployment `input_cost_per_token` /
`output_cost_per_token` in litellm_params (LiteLLM's own override), and litellm's bundled price map.
The map is read as JSON straight from litellm's package directory, without importing litellm (a 3 s
import), so `report`, `replay` and `--dry-run` stay fast. litellm's catch-all rules price some
unknown models at a silent $0; reading the map ourselves means an unknown model is None, never 0.

Costs are computed in Decimal and stored as float dollars (exact to far below a cent).
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

MTOK = Decimal(1_000_000)

# Prefixes that name a route, not a different model: the price is the bare model's.
_ROUTE_PREFIXES = ("offline/", "anthropic/", "openai/", "gemini/", "vertex_ai/", "text-completion-openai/")


@dataclass(frozen=True)
class Usage:
    """Non-overlapping token buckets. `cache_write_1h_tokens` is the part of cache_write at 1h TTL."""

    input_tokens: int = 0  # uncached input
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    output_tokens: int = 0
    cache_write_1h_tokens: int = 0

    @property
    def prompt_tokens(self) -> int:
        """OpenAI's view: every input token, cached or not."""
        return self.input_tokens + self.cache_read_tokens + self.cache_write_tokens

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.output_tokens


@dataclass(frozen=True)
class UnitPrice:
    """Dollars per token for each bucket, and where the figures came from."""

    input: Decimal
    output: Decimal
    cache_read: Decimal
    cache_write: Decimal
    cache_write_1h: Decimal
    source: str  # "config", "litellm", "litellm:<alias>", "deployment"
    # long-context rates: above N prompt tokens the whole request is billed at other rates
    # (e.g. Claude Sonnet 4 above 200k, GPT-5 family above 272k), highest threshold first
    long_context: tuple[tuple[int, "UnitPrice"], ...] = ()

    def for_prompt(self, prompt_tokens: int) -> "UnitPrice":
        for threshold, rates in self.long_context:
            if prompt_tokens > threshold:
                return rates
        return self

    def cost(self, usage: Usage) -> Decimal:
        return self.cost_of(usage.input_tokens, usage.cache_read_tokens, usage.cache_write_tokens,
                            usage.output_tokens, usage.cache_write_1h_tokens)

    def cost_of(self, input_tokens: int, cache_read: int, cache_write: int, output: int, cache_write_1h: int) -> Decimal:
        """cost(Usage(...)) without building the Usage (an import prices every row)."""
        if self.long_context:
            rates = self.for_prompt(input_tokens + cache_read + cache_write)
            if rates is not self:
                return rates.cost_of(input_tokens, cache_read, cache_write, output, cache_write_1h)
        return (
            self.input * input_tokens
            + self.cache_read * cache_read
            + self.cache_write * (cache_write - cache_write_1h)
            + self.cache_write_1h * cache_write_1h
            + self.output * output
        )


_LONG_CONTEXT_KEY = re.compile(r"^input_cost_per_token_above_(\d+)k_tokens$")


def litellm_package_dir() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])


@functools.lru_cache(maxsize=1)
def litellm_price_map() -> dict[str, dict[str, Any]]:
    root = litellm_package_dir()
    if root is None:
        return {}
    path = root / "model_prices_and_context_window_backup.json"
    try:
        raw = path.read_bytes()
    except OSError:
        return {}
    return decode_price_map(raw)


def decode_price_map(raw: bytes) -> dict[str, dict[str, Any]]:
    """The map's JSON as json.loads reads it, decoded by msgspec (3.5 MB: ~15 ms of CPU instead of
    ~60 ms, the same dict: tests/test_pricing.py compares them on the installed map). What msgspec
    refuses and json takes (NaN, lone surrogate escapes) goes to json.loads; an unreadable map is {}."""
    import msgspec

    try:
        return msgspec.json.decode(raw)
    except msgspec.MsgspecError:
        pass
    try:
        return json.loads(raw.decode("utf-8"))
    except ValueError:
        return {}


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(str(value))


def _from_map_entry(entry: Mapping[str, Any], source: str, model: str = "") -> UnitPrice | None:
    inp, out = _dec(entry.get("input_cost_per_token")), _dec(entry.get("output_cost_per_token"))
    if inp is None or out is None:
        return None
    # Where the map is silent a bucket costs the plain input price (no discount assumed); Claude's
    # 1h cache writes cost 2x input (Anthropic's published rule).
    read = _dec(entry.get("cache_read_input_token_cost"))
    write = _dec(entry.get("cache_creation_input_token_cost"))
    write_1h = _dec(entry.get("cache_creation_input_token_cost_above_1hr"))
    if write_1h is None:
        write_1h = inp * 2 if "claude" in model else (write if write is not None else inp)
    base = UnitPrice(
        input=inp,
        output=out,
        cache_read=read if read is not None else inp,
        cache_write=write if write is not None else inp,
        cache_write_1h=write_1h,
        source=source,
    )
    tiers = []
    for key, value in entry.items():
        found = _LONG_CONTEXT_KEY.match(key)
        if not found or value is None:
            continue
        n = int(found.group(1)) * 1000
        above = f"above_{found.group(1)}k_tokens"
        l_inp = Decimal(str(value))
        scale = l_inp / inp if inp else Decimal(1)
        tiers.append((n, UnitPrice(
            input=l_inp,
            output=_dec(entry.get(f"output_cost_per_token_{above}")) or base.output,
            cache_read=_dec(entry.get(f"cache_read_input_token_cost_{above}")) or base.cache_read * scale,
            cache_write=_dec(entry.get(f"cache_creation_input_token_cost_{above}")) or base.cache_write * scale,
            cache_write_1h=base.cache_write_1h * scale,  # the map has no 1h long-context rate: same ratio
            source=f"{source} (above {n // 1000}k)",
        )))
    if tiers:
        base = replace(base, long_context=tuple(sorted(tiers, reverse=True)))
    return base


def model_candidates(model: str) -> list[str]:
    """Names to try in the price map for `model`, most specific first."""
    names = [model]
    bare = model
    for prefix in _ROUTE_PREFIXES:
        if bare.startswith(prefix):
            bare = bare[len(prefix):]
    if bare != model:
        names.append(bare)
    return names


def _alias_candidates(bare: str) -> list[str]:
    """Other names the same Anthropic model is priced under in litellm's map (Bedrock ids)."""
    if bare.startswith("claude-"):
        return [f"anthropic.{bare}-v1:0", f"anthropic.{bare}-v2:0", f"us.anthropic.{bare}-v1:0"]
    return []


class PriceBook:
    """Looks up unit prices; config prices win over litellm's map."""

    def __init__(self, config_prices: Mapping[str, Any] | None = None):
        self._config: dict[str, UnitPrice] = {}
        for name, p in (config_prices or {}).items():
            get = p.get if isinstance(p, dict) else (lambda k, _p=p: getattr(_p, k))
            inp, out = Decimal(str(get("input"))) / MTOK, Decimal(str(get("output"))) / MTOK
            read = get("cache_read")
            write = get("cache_write")
            write_1h = get("cache_write_1h")
            read_d = Decimal(str(read)) / MTOK if read is not None else inp * Decimal("0.1")
            write_d = Decimal(str(write)) / MTOK if write is not None else inp * Decimal("1.25")
            write_1h_d = Decimal(str(write_1h)) / MTOK if write_1h is not None else inp * 2
            self._config[name] = UnitPrice(inp, out, read_d, write_d, write_1h_d, "config")

    def lookup(self, model: str, litellm_params: Mapping[str, Any] | None = None) -> UnitPrice | None:
        for name in model_candidates(model):
            if name in self._config:
                return self._config[name]
        if litellm_params and litellm_params.get("input_cost_per_token") is not None:
            found = _from_map_entry(litellm_params, "deployment", model)
            if found:
                return found
        table = litellm_price_map()
        candidates = model_candidates(model)
        for name in candidates:
            entry = table.get(name)
            if entry and entry.get("mode", "chat") in ("chat", "completion", "responses"):
                found = _from_map_entry(entry, "litellm", model)
                if found:
                    return found
        for alias in _alias_candidates(candidates[-1]):
            entry = table.get(alias)
            if entry:
                found = _from_map_entry(entry, f"litellm:{alias}", model)
                if found:
                    return found
        return None

    def cost(self, model: str, usage: Usage, litellm_params: Mapping[str, Any] | None = None) -> tuple[float | None, str | None]:
        """(dollars, price source), or (None, None) when the model has no known price."""
        price = self.lookup(model, litellm_params)
        if price is None:
            return None, None
        return float(price.cost(usage)), price.source


def context_window(model: str) -> int | None:
    table = litellm_price_map()
    for name in model_candidates(model):
        entry = table.get(name)
        if entry and entry.get("max_input_tokens"):
            return int(entry["max_input_tokens"])
    return None
