"""One routed call end to end: decide, record a pending row, call, settle the row.

The call's id is made and its row written (status `pending`) BEFORE the provider is asked, and the
same row is updated by id afterwards, so a crash or a retried write can never count a call twice.
Failed calls are settled as `error` with every failed attempt; Ctrl-C settles the partial call as
`interrupted`, its tokens counted locally and flagged as estimated.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import Any, Callable

from tiercli import classify as classify_pkg
from tiercli import compaction, guards, telemetry
from tiercli.config import LoadedConfig
from tiercli.errors import GuardrailRefusal, InputError
from tiercli.pricing import PriceBook, Usage
from tiercli.redact import redact
from tiercli.router import Classification, Decision, decide

DEFAULT_OUTPUT_ESTIMATE = 500  # tokens, for --dry-run when the ledger has no history for the tier


def _test_pause(point: str) -> None:
    """Crash tests only: with TIER_TEST_PAUSE_AT=<point> (pending | response) announce the point on
    stderr and sleep there, so a test can SIGKILL the process exactly at it (docs/RELIABILITY.md)."""
    if os.environ.get("TIER_TEST_PAUSE_AT") == point:
        sys.stderr.write(f"tier-test: paused at {point}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("TIER_TEST_PAUSE_S", "60")))


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
    history: bool = False  # carry the session's earlier turns (compacted past the threshold)
    force: bool = False  # go past the session's iteration limit


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


def build_messages(prompt: str, system: str | None, history: list[dict] | None = None) -> list[dict]:
    """Static first, dynamic last: the system prefix, then earlier turns, then this prompt. The
    prefix is byte-identical across calls, so a provider's prompt cache can serve it."""
    messages: list[dict] = []
    if system:
        messages.append({"role": "system", "content": system})
    messages.extend(history or ())
    messages.append({"role": "user", "content": prompt})
    return messages


def system_prompt(loaded: LoadedConfig, req: AskRequest, kind: str) -> str | None:
    """The config's static prefix, then --system-file, for main calls; other kinds bring their own."""
    parts = [loaded.config.caching.static_prefix] if kind == "main" else []
    parts.append(req.system)
    text = "\n\n".join(p for p in parts if p)
    return text or None


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
    messages = build_messages(req.prompt, system_prompt(loaded, req, "main"))  # what run() would send
    model, usage, cost, source = _offline_cost(loaded, decision.tier, messages, history_output or DEFAULT_OUTPUT_ESTIMATE)
    return AskResult(None, decision, usage=usage, cost_usd=cost, price_source=source, served_tier=decision.tier,
                     served_model=model, estimated=True)


def _offline_cost(loaded: LoadedConfig, tier: str, messages: list[dict], output_tokens: int):
    """(model, usage, cost, price source) of sending `messages` to `tier`'s primary deployment, the
    prompt counted offline with that model's tokenizer; cost None when the model has no price."""
    from tiercli import tokens

    d = loaded.config.deployments(tier)[0]
    model = d.model.removeprefix("offline/")
    usage = Usage(input_tokens=tokens.count_messages(messages, model), output_tokens=output_tokens)
    cost, source = PriceBook(loaded.config.prices).cost(d.model, usage, d.litellm_params)
    return model, usage, cost, source


def run(
    loaded: LoadedConfig,
    req: AskRequest,
    ledger,
    *,
    on_text: Callable[[str], None] | None = None,
    decision: Decision | None = None,
    kind: str = "main",
    parent_id: str | None = None,
    meta: dict[str, Any] | None = None,
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
    if kind == "main" and req.session and not req.force:
        made = ledger.session_calls(req.session)
        if made >= cfg.guardrails.max_iterations:
            refusal = guards.refuse_iterations(req.session, made, cfg.guardrails.max_iterations)
            record_refusal(loaded, ledger, req, decision, call_id, kind, parent_id, "IterationLimit", refusal)
            raise refusal
    providers.check_keys(cfg, decision.tier)  # before anything is recorded or sent
    system = system_prompt(loaded, req, kind)
    history = compaction.history_for(loaded, req, ledger, call_id, system) if req.history else None
    messages = build_messages(req.prompt, system, history)
    decision, estimate = check_budget(loaded, req, ledger, decision, messages, call_id, kind, parent_id)
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
        "meta_json": json.dumps({"reasons": list(decision.reasons), **(meta or {})}, ensure_ascii=False),
    }
    reservation = write_pending(loaded, req, ledger, decision, messages, row, estimate)
    if reservation is not None:  # a concurrent call took the budget between the check and now
        refusal = guards.refuse_budget(reservation)
        record_refusal(loaded, ledger, req, decision, call_id, kind, parent_id, "BudgetExceeded", refusal)
        raise refusal
    _test_pause("pending")
    prices = PriceBook(cfg.prices)
    traced = telemetry.enabled(cfg.telemetry.enabled)
    with telemetry.span(traced, "tier.route", {**telemetry.decision_attributes(decision), "tier.call_kind": kind}):
        pass
    try:
        with telemetry.span(traced, f"chat {decision.model}",
                            telemetry.call_attributes(decision.model, cfg.deployments(decision.tier)[0].provider())) as span:
            result = providers.complete(
                cfg, loaded.hash, decision.tier, messages, call_id=call_id, stream=req.stream, on_text=on_text,
                max_tokens=req.max_tokens or cfg.guardrails.max_output_tokens, timeout=cfg.guardrails.timeout_s,
                temperature=req.temperature,
            )
            span.set_attributes(telemetry.call_attributes(
                decision.model, cfg.deployments(decision.tier)[0].provider(), result.usage, result.served_model,
                prices.cost(result.served_model, result.usage)[0], result.served_group))
    except providers.Interrupted as exc:
        from tiercli import tokens

        model = exc.served_model or decision.model
        usage = Usage(input_tokens=tokens.count_messages(messages, model), output_tokens=tokens.count(exc.partial_text, model))
        cost, source = prices.cost(model, usage)
        ledger.upsert_call({**row, **_usage_cols(usage), "status": "interrupted", "ended_at": time.time(),
                            "reserved_usd": None,
                            "served_tier": exc.served_group, "served_model": model, "output_estimated": True,
                            "cost_usd": cost, "price_source": source, "unpriced": cost is None,
                            "latency_ms": (time.time() - started) * 1000,
                            "response_text": stored_text(exc.partial_text, policy),
                            "error_class": "KeyboardInterrupt"})
        raise
    except providers.CallFailed as exc:
        usage = Usage()
        if exc.partial_text:  # the answer had started (a cut stream, the deadline): the provider bills it
            from tiercli import tokens

            usage = Usage(input_tokens=tokens.count_messages(messages, decision.model),
                          output_tokens=tokens.count(exc.partial_text, decision.model))
        cost, source = prices.cost(decision.model, usage)
        ledger.upsert_call({**row, **_usage_cols(usage), "output_estimated": bool(exc.partial_text),
                            "status": "error", "ended_at": time.time(), "error_class": exc.error_class,
                            "reserved_usd": None,
                            "error_message": exc.message[:500], "attempts": len(exc.attempts),
                            "fallback_count": max(len(exc.attempts) - 1, 0),
                            "attempts_json": json.dumps([a.as_dict() for a in exc.attempts]),
                            "cost_usd": cost, "price_source": source, "unpriced": cost is None,
                            "latency_ms": (time.time() - started) * 1000,
                            "response_text": stored_text(exc.partial_text or None, policy)})
        raise
    _test_pause("response")
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
        "reserved_usd": None,
        "deployment_id": result.deployment_id, "attempts": len(result.attempts) + 1, "fallback_count": fallbacks,
        "attempts_json": json.dumps([a.as_dict() for a in result.attempts]) if result.attempts else None,
        "output_estimated": not result.usage_reported, "cost_usd": cost, "price_source": source,
        "unpriced": cost is None, "latency_ms": (ended - started) * 1000,
        "response_text": stored_text(result.text, policy),
    })
    return AskResult(call_id, decision, result.text, result.usage, cost, source, result.served_group,
                     result.served_model, [a.as_dict() for a in result.attempts], (ended - started) * 1000)


def upper_bound_usd(loaded: LoadedConfig, tier: str, messages: list[dict], req: AskRequest) -> float | None:
    """What a call to `tier` can cost at most: the prompt counted offline plus the full output
    allowance. None when the tier's model has no known price."""
    return _offline_cost(loaded, tier, messages, req.max_tokens or loaded.config.guardrails.max_output_tokens)[2]


def check_budget(loaded, req, ledger, decision: Decision, messages, call_id, kind,
                 parent_id) -> tuple[Decision, float | None]:
    """Check the budget caps before anything is sent; downgrade to a cheaper tier when configured.
    Returns the decision and its upper-bound estimate (None when no cap applies).

    This is the early check that picks the tier; the binding reservation is made when the pending
    row is written (`write_pending`), in one transaction with the spend query."""
    cfg = loaded.config
    caps = guards.caps_for(cfg, req.session, time.time())
    if not caps:
        return decision, None
    tiers = cfg.routing.tiers
    candidates = [decision.tier]
    if cfg.guardrails.budget.on_exceed == "downgrade":
        candidates += list(reversed(tiers[: tiers.index(decision.tier)]))
    first_overrun = None
    for tier in candidates:
        estimate = upper_bound_usd(loaded, tier, messages, req)
        overrun = ledger.budget_overrun(caps, estimate)
        if overrun is None:
            if tier == decision.tier:
                return decision, estimate
            note = f"budget: downgraded {decision.tier} -> {tier} ({first_overrun.message()})"
            return replace(decision, tier=tier, model=cfg.primary_model(tier), reasons=(*decision.reasons, note)), estimate
        cap, spent = overrun
        first_overrun = first_overrun or guards.Overrun(cap, spent, estimate)
    refusal = guards.refuse_budget(first_overrun)
    record_refusal(loaded, ledger, req, decision, call_id, kind, parent_id, "BudgetExceeded", refusal)
    raise refusal


def write_pending(loaded, req, ledger, decision: Decision, messages, row,
                  estimate: float | None = None) -> "guards.Overrun | None":
    """Write the call's pending row, reserving its estimate under any budget cap (atomically)."""
    caps = guards.caps_for(loaded.config, req.session, time.time())
    if not caps:
        ledger.upsert_call(row)
        return None
    if estimate is None:
        estimate = upper_bound_usd(loaded, decision.tier, messages, req)
    overrun = ledger.insert_pending(row, caps, estimate)
    return None if overrun is None else guards.Overrun(overrun[0], overrun[1], estimate)


def record_refusal(loaded, ledger, req, decision: Decision, call_id, kind, parent_id, error_class: str,
                    refusal: GuardrailRefusal) -> None:
    """A refused call is recorded (status refused, no cost) so it can be reviewed."""
    now = time.time()
    ledger.upsert_call({
        "id": call_id, "started_at": now, "ended_at": now, "session": req.session, "kind": kind,
        "parent_id": parent_id, "task_type": decision.task_type, "label": decision.label,
        "decision_source": decision.source, "decided_tier": decision.decided_tier, "tier": decision.tier,
        "requested_model": decision.model, "status": "refused", "error_class": error_class,
        "error_message": refusal.message[:500], "attempts": 0, "cost_usd": 0.0,
        "prompt_hash": prompt_hash(req.prompt), "prompt_text": stored_text(req.prompt, loaded.config.ledger.store_prompts),
        "config_hash": loaded.hash,
    })


def _usage_cols(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
    }


# -- verified cascade ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class CheckResult:
    command: str
    exit_code: int | None  # None: timed out
    output: str  # the tail of stdout+stderr

    @property
    def passed(self) -> bool:
        return self.exit_code == 0


CHECK_OUTPUT_TAIL = 4_000


def run_check(command: str, answer: str, timeout_s: float) -> CheckResult:
    """Pipe the answer to the user's check command (a shell command line, run as the user)."""
    import subprocess

    try:
        proc = subprocess.run(command, shell=True, input=answer, capture_output=True, text=True,  # noqa: S602
                              timeout=timeout_s, errors="replace")
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or "") + (exc.stderr or "") if isinstance(exc.stdout, str) else ""
        return CheckResult(command, None, (out + f"\n[check timed out after {timeout_s:g} s]")[-CHECK_OUTPUT_TAIL:])
    return CheckResult(command, proc.returncode, (proc.stdout + proc.stderr)[-CHECK_OUTPUT_TAIL:])


def escalation_prompt(original: str, answer: str, check: CheckResult) -> str:
    status = "timed out" if check.exit_code is None else f"exited with {check.exit_code}"
    return (f"{original}\n\n---\nA previous answer to this task failed verification: `{check.command}` {status}.\n"
            f"Check output (tail):\n{check.output.strip() or '(none)'}\n\nThe previous answer was:\n{answer}\n---\n"
            "Give a corrected, complete answer.")


def cascade_check(loaded: LoadedConfig, req: AskRequest, decision: Decision) -> str | None:
    """The check command for this call: --check, else the config's default for its task type."""
    cascade = loaded.config.guardrails.cascade
    if cascade.check and decision.task_type in cascade.task_types:
        return cascade.check
    return None


def run_cascade(
    loaded: LoadedConfig,
    req: AskRequest,
    ledger,
    check_command: str | None,
    *,
    decision: Decision | None = None,
    on_attempt: Callable[[AskResult, CheckResult], None] | None = None,
    on_text: Callable[[str], None] | None = None,
) -> tuple[AskResult, CheckResult | None]:
    """Answer, verify with the check command, escalate tier by tier while it fails.

    Every attempt is its own ledger row (the later ones linked to the first by parent_id, with
    decision source `cascade`) carrying its check result in `check_passed`. Without a check
    command this is a plain run()."""
    from tiercli.errors import CheckFailed

    cfg = loaded.config
    call_id = uuid.uuid4().hex
    if decision is None:
        classification = classify_for(loaded, req, ledger, call_id)
        decision = decide(cfg, task_type=req.task_type, classification=classification, force_tier=req.force_tier)
    command = check_command or cascade_check(loaded, req, decision)
    if command is None:
        return run(loaded, req, ledger, decision=decision, on_text=on_text), None
    tiers = cfg.routing.tiers
    first_id: str | None = None
    prompt = req.prompt
    current = decision
    for tier in tiers[tiers.index(decision.tier):]:
        if tier != decision.tier:
            current = replace(decision, tier=tier, model=cfg.primary_model(tier), source="cascade",
                              reasons=(*decision.reasons, f"--check failed on the tier below: escalated to {tier}"))
        attempt_req = replace(req, prompt=prompt, stream=False, force=req.force or first_id is not None)
        result = run(loaded, attempt_req, ledger, decision=current, parent_id=first_id, meta={"check": command})
        check = run_check(command, result.text, cfg.guardrails.cascade.timeout_s)
        ledger.update_call(result.call_id, check_passed=check.passed)
        if on_attempt:
            on_attempt(result, check)
        if check.passed:
            return result, check
        first_id = first_id or result.call_id
        prompt = escalation_prompt(req.prompt, result.text, check)
    raise CheckFailed(f"the check `{command}` failed on every tier up to {tiers[-1]}",
                      "the last answer and every attempt are in `tier log`")
