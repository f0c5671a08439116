"""Per-model request rules for the fake provider: what the real APIs reject, so a test double that
accepts everything cannot hide a request the real provider would refuse with a 400.

Every rule comes from litellm's model map (the `model_prices_and_context_window_backup.json` that
ships with the installed litellm, read as JSON: litellm itself is not imported) or from the
providers' documented behaviour; the source is named at each rule. Models the map does not know
(the suite's `m-cheap`, `m-tier2`, ...) get no rules.

`violation(protocol, body, headers)` returns the `Reply` the real provider would answer, or None.
"""

from __future__ import annotations

import importlib.util
import json
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

CONTEXT_1M_BETA = re.compile(r"^context-1m-\d{4}-\d{2}-\d{2}$")
# Models documented with the 1M-context beta (context-1m-2025-08-07): Sonnet 4 and 4.5 (Anthropic's
# "Context windows" page; also vtcode's BETA_CONTEXT_1M "enable extended context for Sonnet 4/4.5").
# Models whose map entry has max_input_tokens >= 1M (Claude 4.6 and later) accept it as well.
CONTEXT_1M_MODELS = ("claude-sonnet-4-5", "claude-sonnet-4-2", "claude-sonnet-4-0", "claude-sonnet-4")
DEFAULT_ANTHROPIC_WINDOW = 200_000  # without the 1M beta every Claude model runs at 200k (same page)


@lru_cache(maxsize=1)
def model_map() -> dict[str, dict[str, Any]]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(list(spec.submodule_search_locations)[0]) / "model_prices_and_context_window_backup.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def model_info(protocol: str, model: str | None) -> dict[str, Any] | None:
    """The map entry for a model of this provider, or None (then no rule applies)."""
    if not model:
        return None
    provider = "anthropic" if protocol == "anthropic" else "openai"
    entry = model_map().get(model)
    if entry and entry.get("litellm_provider") == provider:
        return entry
    return None


def _prompt_tokens(body: dict[str, Any], model: str, window: int) -> int:
    """The prompt's size as the provider counts it, for the context-window check: the model family's
    real tokenizer (tiercli.tokens: tiktoken / Anthropic's, offline), run only when the text's UTF-8
    length (an upper bound on any BPE count) exceeds the window. Usage in answers keeps the fake's
    cheap `len // 4 + 1` (Reply.token_counts)."""
    from fakeprovider import _request_text

    tools = json.dumps(body.get("tools")) if body.get("tools") else ""
    text = _request_text(body) + tools
    if len(text.encode("utf-8", "replace")) <= window:
        return len(text) // 4 + 1
    from tiercli import tokens

    return tokens.count(text, model)


def _anthropic_400(message: str):
    from fakeprovider import Reply

    return Reply.error(400, message, type="invalid_request_error")


def _openai_400(message: str, param: str | None, code: str | None):
    from fakeprovider import Reply

    return Reply.error(400, message, type="invalid_request_error", code=code, error_param=param)


def anthropic_violation(body: dict[str, Any], headers: dict[str, str]):
    model = body.get("model")
    info = model_info("anthropic", model)
    if info is None:
        return None
    betas = [b.strip() for b in (headers.get("anthropic-beta") or "").split(",") if b.strip()]
    # max_tokens: map `max_output_tokens`. Real message, e.g. "max_tokens: 64001 > 64000, which is the
    # maximum allowed number of output tokens for claude-haiku-4-5-20251001".
    limit = info.get("max_output_tokens")
    max_tokens = body.get("max_tokens")
    if isinstance(limit, int) and isinstance(max_tokens, int) and max_tokens > limit:
        return _anthropic_400(f"max_tokens: {max_tokens} > {limit}, which is the maximum allowed number of "
                              f"output tokens for {model}")
    # thinking: map `supports_reasoning` (extended thinking at all), `supports_adaptive_thinking`
    # (type "adaptive", Claude 4.6+), `supports_legacy_thinking` (an adaptive model that still takes
    # type "enabled" + budget_tokens: the 4.6 family; litellm common_utils._supports_legacy_thinking:
    # "absent flag means the model rejects the legacy shape"). AWS Bedrock's adaptive-thinking page:
    # "Older models (Claude Sonnet 4.5, Claude Opus 4.5, etc.) do not support adaptive thinking".
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        kind = thinking.get("type")
        if not info.get("supports_reasoning"):
            return _anthropic_400(f"thinking: {model} does not support extended thinking")
        if kind == "adaptive" and not info.get("supports_adaptive_thinking"):
            return _anthropic_400(f"thinking.type: 'adaptive' is not supported for {model}; use 'enabled' with budget_tokens")
        if kind == "enabled" and info.get("supports_adaptive_thinking") and not info.get("supports_legacy_thinking"):
            return _anthropic_400(f"thinking.type: 'enabled' is not supported for {model}; use 'adaptive'")
        budget = thinking.get("budget_tokens")
        if kind == "enabled" and isinstance(budget, int) and isinstance(max_tokens, int) and budget >= max_tokens:
            return _anthropic_400("`max_tokens` must be greater than `thinking.budget_tokens`")
    # output_config (effort): map `supports_output_config` (Opus 4.5, Claude 4.6+; not Haiku/Sonnet 4.5).
    if body.get("output_config") is not None and not info.get("supports_output_config"):
        return _anthropic_400(f"output_config: Extra inputs are not permitted for {model}")
    # context_management: the compaction edit needs map `supports_anthropic_compaction` (litellm
    # common_utils.context_management_betas: compact_20260112 -> the compact beta).
    cm = body.get("context_management")
    if isinstance(cm, dict):
        kinds = {e.get("type") for e in cm.get("edits") or [] if isinstance(e, dict)}
        if any(str(k).startswith("compact_") for k in kinds) and not info.get("supports_anthropic_compaction"):
            return _anthropic_400(f"context_management.edits: compaction is not supported for {model}")
    # sampling params: map `supports_sampling_params: false` (Claude 4.7+): "the API rejects top_p,
    # top_k, and any temperature other than 1" (litellm common_utils._supports_sampling_params).
    if info.get("supports_sampling_params") is False:
        if body.get("temperature") not in (None, 1, 1.0):
            return _anthropic_400(f"`temperature` is deprecated for this model ({model})")
        for name in ("top_p", "top_k"):
            if body.get(name) is not None:
                return _anthropic_400(f"`{name}` is deprecated for this model ({model})")
    # the 1M-context beta: only where documented (above); the others answer 400.
    one_m = [b for b in betas if CONTEXT_1M_BETA.match(b)]
    window = int(info.get("max_input_tokens") or DEFAULT_ANTHROPIC_WINDOW)
    supports_1m = window >= 1_000_000 or any(model.startswith(m) for m in CONTEXT_1M_MODELS)
    if one_m and not supports_1m:
        return _anthropic_400(f"anthropic-beta: {one_m[0]} is not supported for {model}")
    # context window: 200k unless the 1M beta is on for a 1M-capable model.
    window = 1_000_000 if one_m and supports_1m else min(window, DEFAULT_ANTHROPIC_WINDOW)
    tokens = _prompt_tokens(body, model, window)
    if tokens > window:
        return _anthropic_400(f"prompt is too long: {tokens} tokens > {window} maximum")
    return None


def openai_violation(body: dict[str, Any], headers: dict[str, str]):
    model = body.get("model")
    info = model_info("openai", model)
    if info is None:
        return None
    # Unknown fields are refused ("Unrecognized request argument supplied: thinking"): Anthropic-only
    # request fields that a cross-protocol gateway might leave in.
    for name in ("thinking", "output_config", "context_management"):
        if name in body:
            return _openai_400(f"Unrecognized request argument supplied: {name}", None, None)
    reasoning = bool(info.get("supports_reasoning"))
    # Reasoning models (map `supports_reasoning`: o-series, gpt-5 family) take max_completion_tokens only
    # (OpenAI's documented 400, code unsupported_parameter; litellm gpt_reasoning_transformation maps it).
    if reasoning and "max_tokens" in body:
        return _openai_400("Unsupported parameter: 'max_tokens' is not supported with this model. "
                           "Use 'max_completion_tokens' instead.", "max_tokens", "unsupported_parameter")
    # temperature: reasoning models accept only the default 1, unless reasoning_effort is "none" on a
    # model whose map entry has supports_none_reasoning_effort (litellm gpt_reasoning_transformation).
    temperature = body.get("temperature")
    if reasoning and temperature not in (None, 1, 1.0):
        if not (info.get("supports_none_reasoning_effort") and body.get("reasoning_effort") == "none"):
            return _openai_400(f"Unsupported value: 'temperature' does not support {temperature} with this model. "
                               "Only the default (1) value is supported.", "temperature", "unsupported_value")
    # reasoning_effort on a model without reasoning; "minimal"/"none" only where the map allows them.
    effort = body.get("reasoning_effort")
    if effort is not None:
        if not reasoning:
            return _openai_400("Unrecognized request argument supplied: reasoning_effort", None, None)
        if effort == "none" and info.get("supports_none_reasoning_effort") is False:
            return _openai_400("Unsupported value: 'reasoning_effort' does not support 'none' with this model.",
                               "reasoning_effort", "unsupported_value")
        if effort == "minimal" and info.get("supports_minimal_reasoning_effort") is False:
            return _openai_400("Unsupported value: 'reasoning_effort' does not support 'minimal' with this model.",
                               "reasoning_effort", "unsupported_value")
    # output limit: map `max_output_tokens`.
    limit = info.get("max_output_tokens")
    asked = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(limit, int) and isinstance(asked, int) and asked > limit:
        param = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
        return _openai_400(f"max_tokens is too large: {asked}. This model supports at most {limit} completion "
                           f"tokens, whereas you provided {asked}.", param, "invalid_value")
    # context window: map `max_input_tokens`, the documented context_length_exceeded shape.
    window = info.get("max_input_tokens")
    tokens = _prompt_tokens(body, model, window) if isinstance(window, int) else 0
    if isinstance(window, int) and tokens > window:
        from fakeprovider import Reply

        return Reply(text="", status=400, error_code="context_length_exceeded", error_type="invalid_request_error",
                     context_tokens=tokens, error_message=(
                         f"This model's maximum context length is {window} tokens. However, your messages resulted "
                         f"in {tokens} tokens. Please reduce the length of the messages."))
    return None


def violation(protocol: str, body: dict[str, Any], headers: dict[str, str]):
    """The error Reply the real provider would give this request for its model, or None."""
    return anthropic_violation(body, headers) if protocol == "anthropic" else openai_violation(body, headers)
