"""The gateway's routing rules, as pure functions next to router.py.

After the classifier's decision: scenario rules (a requested model that names a tier, the agent's
small model, a long context, a web search, thinking), then prompt-cache stickiness: a session stays
on the tier whose cache is warm unless the decision must rise (a cheaper tier would save less than
the cache rebuild costs: see issue 13's cache-aware pricing for the finer rule).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from tiercli.config import Config
from tiercli.router import Decision


@dataclass(frozen=True)
class RequestFacts:
    """What the rules read off a request."""

    model: str  # what the client asked for
    session: str | None
    thinking: bool
    web_search: bool
    prompt_tokens: int  # estimated


def with_rule(cfg: Config, decision: Decision, tier: str, source: str, reason: str) -> Decision:
    return replace(decision, tier=tier, model=cfg.primary_model(tier), source=source,
                   decided_tier=decision.decided_tier or decision.tier, reasons=(*decision.reasons, reason))


def before_classifier(cfg: Config, facts: RequestFacts, small: re.Pattern[str] | None) -> tuple[Decision, str] | None:
    """A decision no classifier needs to see: the model names a tier (an override), or it is the
    agent's small model. (decision, rule name), else None."""
    if facts.model in cfg.routing.tiers:
        return Decision(tier=facts.model, model=cfg.primary_model(facts.model), source="override",
                        decided_tier=facts.model, reasons=(f"model {facts.model!r} names a tier",)), "override"
    if small is not None and small.search(facts.model):
        tier = cfg.serve.small_model_tier or cfg.cheapest_tier
        return Decision(tier=tier, model=cfg.primary_model(tier), source="scenario", decided_tier=tier,
                        reasons=(f"serve: requested model {facts.model!r} matches small_model_pattern -> {tier}",)), "small_model"
    return None


def after_classifier(cfg: Config, facts: RequestFacts, decision: Decision) -> tuple[Decision, str | None]:
    """The scenario rules that move a classified decision: long context, web search, thinking."""
    serve = cfg.serve
    if serve.long_context_tier and facts.prompt_tokens > serve.long_context_tokens:
        return with_rule(cfg, decision, serve.long_context_tier, "scenario",
                         f"serve: long context ~{facts.prompt_tokens:,} tokens > {serve.long_context_tokens:,} -> "
                         f"{serve.long_context_tier}"), "long_context"
    if serve.web_search_tier and facts.web_search:
        return with_rule(cfg, decision, serve.web_search_tier, "scenario",
                         f"serve: web search tool -> {serve.web_search_tier}"), "web_search"
    if serve.thinking_tier and facts.thinking:
        return with_rule(cfg, decision, serve.thinking_tier, "scenario",
                         f"serve: thinking requested -> {serve.thinking_tier}"), "thinking"
    return decision, None


def stick(cfg: Config, warm: tuple[str, float] | None, decision: Decision, now: float,
          meta: dict[str, Any], pays: Callable[[str, str], bool] | None = None) -> Decision:
    """Keep a session on the tier whose prompt cache is warm (`warm`: (tier, time of its last call)),
    unless the decision ranks above it (then the tier rises) or moving down pays: `pays(warm, new)`
    says whether the expected saving beats rebuilding the cache. Notes what happened in `meta`."""
    ttl = cfg.serve.sticky_ttl_s
    if not ttl or warm is None:
        return decision
    tier, last = warm
    age = now - last
    if age > ttl or tier not in cfg.routing.tiers:
        return decision
    info: dict[str, Any] = {"warm": True, "tier": tier, "decided": decision.tier, "age_s": round(age, 1)}
    meta["sticky"] = info
    if cfg.tier_rank(decision.tier) > cfg.tier_rank(tier):
        info["kept"] = False
        return replace(decision, reasons=(*decision.reasons, f"sticky: {decision.tier} ranks above the warm {tier}: the tier rises"))
    if decision.tier != tier and pays is not None and pays(tier, decision.tier):
        info["kept"] = False
        return replace(decision, reasons=(*decision.reasons, f"sticky: moving from the warm {tier} to {decision.tier} "
                                          "saves more than rebuilding the cache costs"))
    info["kept"] = True
    if decision.tier == tier:
        return decision
    return replace(decision, tier=tier, model=cfg.primary_model(tier), source="sticky",
                   decided_tier=decision.decided_tier or decision.tier,
                   reasons=(*decision.reasons, f"sticky: session cache warm on {tier} ({age:.0f} s since its last call): "
                            f"kept {tier} instead of {decision.tier}"))


class ContextTooLong(Exception):
    """No tier's window holds the prompt: answered as the protocol's context-overflow error."""

    def __init__(self, tokens: int, largest: int):
        super().__init__(f"prompt is too long: ~{tokens:,} tokens > {largest:,} maximum (the largest context window "
                         "of any tier)")
        self.tokens = tokens
        self.largest = largest


def fit_window(cfg: Config, decision: Decision, prompt_tokens: int, windows: dict[str, int | None]) -> Decision:
    """Keep the decision if its tier's window (of its primary deployment) holds the prompt; else the
    next tier up whose window does (then the cheapest below that does); else ContextTooLong. A window
    the model map does not know is taken to fit."""
    def fits(tier: str) -> bool:
        window = windows.get(tier)
        return window is None or prompt_tokens <= window

    if fits(decision.tier):
        return decision
    tiers = cfg.routing.tiers
    rank = tiers.index(decision.tier) if decision.tier in tiers else 0
    for tier in [*tiers[rank + 1:], *reversed(tiers[:rank])]:
        if fits(tier):
            return with_rule(cfg, decision, tier, "scenario",
                             f"context: ~{prompt_tokens:,} tokens do not fit {decision.tier}'s window "
                             f"({windows[decision.tier]:,}) -> {tier}")
    raise ContextTooLong(prompt_tokens, max(w for w in windows.values() if w))
