"""One routed call end to end: decide, record a pending row, call, settle the row.

The call's id is made and its row written (status `pending`) BEFORE the provider is asked, and the
same row is updated by id afterwards, so a crash or a retried write can never count a call twice.
Failed calls are settled as `error` with every failed attempt; Ctrl-C settles the partial call as
`interrupted`, its tokens counted locally and flagged as estimated.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any, Callable

from tiercli import classify as classify_pkg
from tiercli.config import LoadedConfig
from tiercli.errors import InputError
from tiercli.pricing import PriceBook, Usage
from tiercli.redact import redact
from tiercli.router import Classification, Decision, decide

DEFAULT_OUTPUT_ESTIMATE = 500  # tokens, for --dry-run when the ledger has no history for the tier


@dataclass
class AskRequest:
    prompt: str
    task_type: str | None = None
    force_tier: str | None = None
    session: str | None = None
    classifier: str | None = None  # overrides routing.classifier
    system: str | None = None
    stream: bool = True
    max_tokens: int | None = None  # default: guardrails.max_output_tokens
    temperature: float | None = None


@dataclass
class AskResult:
    call_id: str | None
    decision: Decision
    text: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    price_source: str | None = None
    served_tier: str | None = None
    served_model: str | None = None
    attempts: list[dict] = field(default_factory=list)
    latency_ms: float | None = None
    estimated: bool = False  # a dry run: tokens counted offline, output estimated

    def as_json(self) -> dict[str, Any]:
        d = self.decision
        return {
            "call_id": self.call_id,
            "answer": None if self.estimated else self.text,
            "decision": {
                "tier": d.tier,
                "model": d.model,
                "source": d.source,
                "task_type": d.task_type,
                "label": d.label,
                "confidence": d.confidence,
                "classifier": d.classifier,
                "decided_tier": d.decided_tier,
                "reasons": list(d.reasons),
            },
            "served": {"tier": self.served_tier, "model": self.served_model, "failed_attempts": self.attempts},
            "usage": {
                "input_tokens": self.usage.input_tokens,
                "cache_read_tokens": self.usage.cache_read_tokens,
                "cache_write_tokens": self.usage.cache_write_tokens,
                "output_tokens": self.usage.output_tokens,
            },
            "cost_usd": self.cost_usd,
            "price_source": self.price_source,
            "unpriced": self.cost_usd is None,
            "estimated": self.estimated,
            "latency_ms": self.latency_ms,
        }


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def stored_text(text: str | None, policy: str) -> str | None:
    """Apply `ledger.store_prompts`: full, redacted (common secret shapes masked) or none."""
    if text is None or policy == "none":
        return None
    return redact(text) if policy == "redacted" else text


def build_messages(prompt: str, system: str | None) -> list[dict]:
    messages: list[dict] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.append({"role": "user", "content": prompt})
    return messages


def classify_for(loaded: LoadedConfig, req: AskRequest, ledger=None, call_id: str | None = None) -> Classification | None:
    """Run the configured classifier unless the caller named the task type (no ledger: a dry run)."""
    if req.task_type is not None:
        return None
    which = req.classifier or loaded.config.routing.classifier
    return classify_pkg.run(which, req.prompt, loaded, ledger=ledger, parent_id=call_id, session=req.session)


def classify_only(loaded: LoadedConfig, text: str, classifier: str | None, ledger=None) -> Decision:
    """`tier classify`: the decision alone. Only an llm/hybrid classifier with a ledger calls a model."""
    if not text.strip():
        raise InputError("the task is empty", "pass it as an argument or on stdin")
    req = AskRequest(prompt=text, classifier=classifier)
    return decide(loaded.config, classification=classify_for(loaded, req, ledger))


def estimate(loaded: LoadedConfig, req: AskRequest, decision: Decision, history_output: int | None) -> AskResult:
    """--dry-run: the decision and its cost with prompt tokens counted offline, output estimated."""
    from tiercli import tokens

    cfg = loaded.config
    d = cfg.deployments(decision.tier)[0]
    model = d.model.removeprefix("offline/")
    messages = build_messages(req.prompt, req.system)
    usage = Usage(input_tokens=tokens.count_messages(messages, model), output_tokens=history_output or DEFAULT_OUTPUT_ESTIMATE)
    cost, source = PriceBook(cfg.prices).cost(d.model, usage, d.litellm_params)
    return AskResult(None, decision, usage=usage, cost_usd=cost, price_source=source, served_tier=decision.tier,
                     served_model=model, estimated=True)


def run(
    loaded: LoadedConfig,
    req: AskRequest,
    ledger,
    *,
    on_text: Callable[[str], None] | None = None,
    decision: Decision | None = None,
    kind: str = "main",
    parent_id: str | None = None,
) -> AskResult:
    """Route and execute one call, recording it in `ledger`. Raises TierError subclasses."""
    from tiercli import providers

    cfg = loaded.config
    if not req.prompt.strip():
        raise InputError("the prompt is empty", "pass it as an argument or on stdin")
    call_id = uuid.uuid4().hex
    if decision is None:
        classification = classify_for(loaded, req, ledger, call_id)
        decision = decide(cfg, task_type=req.task_type, classification=classification, force_tier=req.force_tier)
    providers.check_keys(cfg, decision.tier)  # before anything is recorded or sent
    policy = cfg.ledger.store_prompts
    started = time.time()
    row: dict[str, Any] = {
        "id": call_id,
        "started_at": started,
        "session": req.session,
        "kind": kind,
        "source": "tier",
        "parent_id": parent_id,
        "task_type": decision.task_type,
        "label": decision.label,
        "decision_source": decision.source,
        "classifier": decision.classifier,
        "confidence": decision.confidence,
        "decided_tier": decision.decided_tier,
        "tier": decision.tier,
        "requested_model": decision.model,
        "status": "pending",
        "prompt_hash": prompt_hash(req.prompt),
        "prompt_text": stored_text(req.prompt, policy),
        "config_hash": loaded.hash,
        "meta_json": json.dumps({"reasons": list(decision.reasons)}, ensure_ascii=False),
    }
    ledger.upsert_call(row)
    messages = build_messages(req.prompt, req.system)
    prices = PriceBook(cfg.prices)
    try:
        result = providers.complete(
            cfg, loaded.hash, decision.tier, messages, call_id=call_id, stream=req.stream, on_text=on_text,
            max_tokens=req.max_tokens or cfg.guardrails.max_output_tokens, timeout=cfg.guardrails.timeout_s,
            temperature=req.temperature,
        )
    except providers.Interrupted as exc:
        from tiercli import tokens

        model = exc.served_model or decision.model
        usage = Usage(input_tokens=tokens.count_messages(messages, model), output_tokens=tokens.count(exc.partial_text, model))
        cost, source = prices.cost(model, usage)
        ledger.upsert_call({**row, **_usage_cols(usage), "status": "interrupted", "ended_at": time.time(),
                            "served_tier": exc.served_group, "served_model": model, "output_estimated": True,
                            "cost_usd": cost, "price_source": source, "unpriced": cost is None,
                            "latency_ms": (time.time() - started) * 1000,
                            "response_text": stored_text(exc.partial_text, policy),
                            "error_class": "KeyboardInterrupt"})
        raise
    except providers.CallFailed as exc:
        cost, source = prices.cost(decision.model, Usage())
        ledger.upsert_call({**row, "status": "error", "ended_at": time.time(), "error_class": exc.error_class,
                            "error_message": exc.message[:500], "attempts": len(exc.attempts),
                            "fallback_count": max(len(exc.attempts) - 1, 0),
                            "attempts_json": json.dumps([a.as_dict() for a in exc.attempts]),
                            "cost_usd": cost, "price_source": source, "unpriced": cost is None,
                            "latency_ms": (time.time() - started) * 1000,
                            "response_text": stored_text(exc.partial_text or None, policy)})
        raise
    ended = time.time()
    served = next((d for d in cfg.deployments(result.served_group) if d.model.removeprefix("offline/") == result.served_model), None)
    params = served.litellm_params if served else None
    cost, source = prices.cost(served.model if served else result.served_model, result.usage, params)
    fallbacks = sum(1 for a in result.attempts if a.group and a.group != result.served_group) if result.attempts else 0
    if result.served_group != decision.tier:
        fallbacks = max(fallbacks, 1)
    ledger.upsert_call({
        **row, **_usage_cols(result.usage),
        "status": "ok", "ended_at": ended, "served_tier": result.served_group, "served_model": result.served_model,
        "deployment_id": result.deployment_id, "attempts": len(result.attempts) + 1, "fallback_count": fallbacks,
        "attempts_json": json.dumps([a.as_dict() for a in result.attempts]) if result.attempts else None,
        "output_estimated": not result.usage_reported, "cost_usd": cost, "price_source": source,
        "unpriced": cost is None, "latency_ms": (ended - started) * 1000,
        "response_text": stored_text(result.text, policy),
    })
    return AskResult(call_id, decision, result.text, result.usage, cost, source, result.served_group,
                     result.served_model, [a.as_dict() for a in result.attempts], (ended - started) * 1000)


def _usage_cols(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
    }
