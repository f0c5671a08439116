"""Request adaptation: fit an agent's request to the deployment tier sends it to.

Claude Code asks for its own model with `thinking: {type: adaptive}`, `output_config.effort`,
`context_management`, `anthropic-beta` flags and `max_tokens: 64000`; tier may send that request to
haiku or to a GPT model, and a real provider rejects what the target does not support. What each
target supports comes from litellm's model map (max output, context window, reasoning support),
read offline; what the map does not know is kept when the target is the model the client asked
for, and dropped otherwise. Every change is listed, so the row's meta can say what was altered.

The output limit is clamped to `guardrails.max_output_tokens` and to the target's real maximum, so
the budget reservation (the prompt plus the full output allowance) is realistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

MIN_THINKING_BUDGET = 1024  # Anthropic's smallest budget_tokens
# beta flags that change no request field a target could reject (features every current Claude has)
SAFE_BETA_PREFIXES = ("prompt-caching-", "fine-grained-tool-streaming-", "token-efficient-tools-",
                      "extended-cache-ttl-")
THINKING_BETA_PREFIXES = ("interleaved-thinking-",)
LONG_CONTEXT_BETA_PREFIXES = ("context-1m-",)
ANTHROPIC_ONLY = ("thinking", "output_config", "context_management", "mcp_servers", "container")


@dataclass(frozen=True)
class ModelFacts:
    max_input: int | None
    max_output: int | None
    reasoning: bool | None  # None: the map does not say


@lru_cache(maxsize=512)
def facts(model: str) -> ModelFacts:
    """What litellm's model map knows of `model` (no litellm import). Cached: the map is read once
    per process and the gateway asks for the same few models on every request."""
    from tiercli.pricing import litellm_price_map, model_candidates

    table = litellm_price_map()
    for name in model_candidates(model.removeprefix("offline/")):
        entry = table.get(name)
        if entry:
            reasoning = entry.get("supports_reasoning")
            return ModelFacts(entry.get("max_input_tokens"), entry.get("max_output_tokens"),
                              None if reasoning is None else bool(reasoning))
    return ModelFacts(None, None, None)


def _bare(model: str) -> str:
    return model.split("/", 1)[-1]


def output_limit(requested: int | None, guardrail: int, target: ModelFacts) -> int:
    limit = min(requested or guardrail, guardrail)
    return min(limit, target.max_output) if target.max_output else limit


def _fit_thinking(thinking: Any, max_tokens: int, target: ModelFacts, same_model: bool,
                  changes: list[str]) -> Any:
    """The thinking block the target accepts, or None to drop it."""
    if not isinstance(thinking, dict) or thinking.get("type") in (None, "disabled"):
        return thinking
    if target.reasoning is False:
        changes.append("thinking dropped: the target model has no extended thinking")
        return None
    kind = thinking.get("type")
    if kind == "adaptive" and same_model:
        return thinking
    if kind not in ("enabled", "adaptive"):
        changes.append(f"thinking dropped: type {kind!r} is not one the target is known to take")
        return None
    budget = thinking.get("budget_tokens") if kind == "enabled" else max(MIN_THINKING_BUDGET, max_tokens // 2)
    budget = min(int(budget or MIN_THINKING_BUDGET), max_tokens - 1)
    if budget < MIN_THINKING_BUDGET:
        changes.append(f"thinking dropped: max_tokens {max_tokens} leaves no room for a {MIN_THINKING_BUDGET}-token budget")
        return None
    if kind == "adaptive":
        changes.append(f"thinking adaptive -> enabled with budget_tokens {budget}")
    elif budget != thinking.get("budget_tokens"):
        changes.append(f"thinking budget_tokens {thinking.get('budget_tokens')} -> {budget} (below max_tokens)")
    return {"type": "enabled", "budget_tokens": budget}


def anthropic_request(body: dict[str, Any], betas: str | None, requested_model: str, target_model: str,
                      guardrail: int) -> tuple[dict[str, Any], str | None, list[str]]:
    """An Anthropic Messages body and its anthropic-beta header, fitted to `target_model`."""
    target = facts(target_model)
    same = _bare(requested_model) == _bare(target_model)
    changes: list[str] = []
    out = dict(body)
    limit = output_limit(body.get("max_tokens"), guardrail, target)
    if body.get("max_tokens") != limit:
        changes.append(f"max_tokens {body.get('max_tokens')} -> {limit}")
    out["max_tokens"] = limit
    if "thinking" in out:
        thinking = _fit_thinking(out["thinking"], limit, target, same, changes)
        if thinking is None:
            out.pop("thinking")
        else:
            out["thinking"] = thinking
    for name in ("output_config", "context_management"):
        if name in out and not same:
            out.pop(name)
            changes.append(f"{name} dropped: set for {requested_model}, not known for {_bare(target_model)}")
    kept_betas = betas
    if betas:
        keep, dropped = [], []
        for flag in (f.strip() for f in betas.split(",") if f.strip()):
            if flag.startswith(SAFE_BETA_PREFIXES) or same:
                keep.append(flag)
            elif flag.startswith(THINKING_BETA_PREFIXES) and target.reasoning and "thinking" in out:
                keep.append(flag)
            elif flag.startswith(LONG_CONTEXT_BETA_PREFIXES) and (target.max_input or 0) >= 1_000_000:
                keep.append(flag)
            else:
                dropped.append(flag)
        if dropped:
            changes.append("anthropic-beta dropped: " + ", ".join(dropped))
        kept_betas = ",".join(keep) or None
    return out, kept_betas, changes


def openai_request(body: dict[str, Any], requested_model: str, target_model: str,
                   guardrail: int) -> tuple[dict[str, Any], list[str]]:
    """An OpenAI chat body fitted to `target_model`: one output-limit field, clamped (reasoning models
    take only max_completion_tokens), no Anthropic-only fields, temperature only where accepted."""
    target = facts(target_model)
    changes: list[str] = []
    out = dict(body)
    asked = out.pop("max_completion_tokens", None) or out.pop("max_tokens", None)
    limit = output_limit(asked, guardrail, target)
    if asked != limit:
        changes.append(f"max_tokens {asked} -> {limit}")
    out["max_completion_tokens" if target.reasoning else "max_tokens"] = limit
    for name in ANTHROPIC_ONLY:
        if name in out:
            out.pop(name)
            changes.append(f"{name} dropped: not an OpenAI parameter")
    if target.reasoning and out.get("temperature") not in (None, 1):
        changes.append(f"temperature {out.pop('temperature')} dropped: {_bare(target_model)} takes only the default")
    if not target.reasoning and "reasoning_effort" in out:
        changes.append(f"reasoning_effort dropped: {_bare(target_model)} is not a reasoning model")
        out.pop("reasoning_effort")
    return out, changes


def router_kwargs(kwargs: dict[str, Any], provider: str, requested_model: str, target_model: str,
                  guardrail: int) -> tuple[dict[str, Any], list[str]]:
    """litellm's (OpenAI-shaped) kwargs fitted to the target: litellm translates the shape, this
    decides which of the client's settings the target can take."""
    if provider == "anthropic":
        target = facts(target_model)
        changes: list[str] = []
        out = dict(kwargs)
        asked = out.pop("max_completion_tokens", None) or out.get("max_tokens")
        limit = output_limit(asked, guardrail, target)
        if asked != limit:
            changes.append(f"max_tokens {asked} -> {limit}")
        out["max_tokens"] = limit
        if "thinking" in out:
            thinking = _fit_thinking(out["thinking"], limit, target, _bare(requested_model) == _bare(target_model), changes)
            if thinking is None:
                out.pop("thinking")
            else:
                out["thinking"] = thinking
        return out, changes
    return openai_request(kwargs, requested_model, target_model, guardrail)
