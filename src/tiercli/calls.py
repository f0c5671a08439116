"""THE pipeline for a recorded call: open, then exactly one settlement, whatever happens.

Every model call tier makes or relays (`tier ask`, the gateway, live replay, the llm classifier,
compaction, `tier run`) goes through here, so admission, the row, pricing and telemetry are written
once:

open_call()   the iteration limit, the budget (refuse, or downgrade to a cheaper tier), the key check
              for the FINAL tier, then the `pending` row with its reservation and its owner (pid and
              process start time), all before anything is sent. A refusal is itself a settled row
              (status `refused`). Nothing is written when the check of keys fails.
RecordedCall  settles that row exactly once: ok(), failed(), interrupted(). Used as a context
              manager it also settles on every other exit: a CallFailed as error, Ctrl-C (any
              KeyboardInterrupt, e.g. while litellm loads) as interrupted, any other exception as
              error. Settling releases the reservation (reserved_usd NULL) in the same write.
complete()    open, call providers.complete(), settle: the messages path of ask, the classifier,
              compaction and live replay.

A process that dies between open and settlement leaves its row pending with an owner; the next tier
process that opens the ledger settles it `interrupted` (Ledger.recover_orphans).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import time
import uuid
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable, Iterable

from tiercli import guards, procinfo, telemetry
from tiercli.errors import GuardrailRefusal, IterationLimit
from tiercli.pricing import PriceBook, Usage
from tiercli.redact import redact
from tiercli.router import Decision

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig
    from tiercli.ledger import LedgerLike
    from tiercli.providers import Attempt, CallFailed, Completion


def new_id() -> str:
    return uuid.uuid4().hex


def prompt_hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]


def stored_text(text: str | None, policy: str) -> str | None:
    """Apply `ledger.store_prompts`: full, redacted (common secret shapes masked) or none."""
    if text is None or policy == "none":
        return None
    text = text.encode("utf-8", "surrogatepass").decode("utf-8", "replace")  # a lone surrogate is not storable text
    return redact(text) if policy == "redacted" else text


def test_pause(point: str) -> None:
    """Crash tests only: with TIER_TEST_PAUSE_AT=<point> (pending | response) announce the point on
    stderr and sleep there, so a test can SIGKILL the process exactly at it (docs/RELIABILITY.md)."""
    if os.environ.get("TIER_TEST_PAUSE_AT") == point:
        sys.stderr.write(f"tier-test: paused at {point}\n")
        sys.stderr.flush()
        time.sleep(float(os.environ.get("TIER_TEST_PAUSE_S", "60")))


@dataclass
class Plan:
    """What a call will be, before it is admitted."""

    decision: Decision
    prompt: str  # the text the row hashes and stores (the instruction, not the whole conversation)
    messages: list[dict]  # what is sent: counted for the budget estimate and for a partial answer
    kind: str = "main"  # main | classifier | compaction | replay
    source: str = "tier"  # tier | serve | replay | run
    session: str | None = None
    parent_id: str | None = None
    task_id: str | None = None
    max_output_tokens: int | None = None  # the output allowance; default guardrails.max_output_tokens
    extra_input_text: str = ""  # billed input the messages do not show (tool definitions)
    answers: int = 1  # `n`: each answer is billed its own output
    iteration_limit: int | None = None  # None: not checked
    meta: dict[str, Any] = field(default_factory=dict)
    call_id: str = field(default_factory=new_id)
    key_check: Callable[[str], None] | None = None  # default: the tier's key variables must be set
    injects_cache: bool = True  # tier added the cache markers (so a 1h TTL setting prices the writes)
    extra_caps: tuple[guards.Cap, ...] = ()  # e.g. a `tier run` attempt's cap, a team member's caps
    user_id: str | None = None  # team mode: the user whose token made the call (recorded on the row)


def upper_bound_usd(loaded: "LoadedConfig", tier: str, plan: Plan) -> float | None:
    """What a call to `tier` can cost at most: the prompt (and tools) counted offline plus the full
    output allowance for every answer. None when the tier's model has no known price."""
    return offline_cost(loaded, tier, plan.messages, output_tokens(loaded, plan) * max(plan.answers, 1),
                        plan.extra_input_text)[2]


def output_tokens(loaded: "LoadedConfig", plan: Plan) -> int:
    return plan.max_output_tokens or loaded.config.guardrails.max_output_tokens


def offline_cost(loaded: "LoadedConfig", tier: str, messages: list[dict], output_tokens: int, extra_text: str = ""):
    """(model, usage, cost, price source) of sending `messages` to `tier`'s primary deployment, the
    prompt counted offline with that model's tokenizer; cost None when the model has no price."""
    from tiercli import tokens

    d = loaded.config.deployments(tier)[0]
    model = d.model.removeprefix("offline/")
    prompt = tokens.count_messages(messages, model) + (tokens.count(extra_text, model) if extra_text else 0)
    usage = Usage(input_tokens=prompt, output_tokens=output_tokens)
    cost, source = PriceBook(loaded.config.prices).cost(d.model, usage, d.litellm_params)
    return model, usage, cost, source


def usage_cols(usage: Usage) -> dict[str, int]:
    return {
        "input_tokens": usage.input_tokens,
        "cache_read_tokens": usage.cache_read_tokens,
        "cache_write_tokens": usage.cache_write_tokens,
        "cache_write_1h_tokens": usage.cache_write_1h_tokens,
        "output_tokens": usage.output_tokens,
    }


# -- open ------------------------------------------------------------------------------------------
def open_call(loaded: "LoadedConfig", ledger: "LedgerLike", plan: Plan) -> "RecordedCall":
    """Admit the call and write its pending row. Raises a GuardrailRefusal (recorded as a refused
    row), or the key check's ConfigError (nothing written)."""
    cfg = loaded.config
    decision = plan.decision
    if plan.iteration_limit is not None and plan.session:
        made = ledger.session_calls(plan.session)
        if made >= plan.iteration_limit:
            _refuse(loaded, ledger, plan, decision, guards.refuse_iterations(plan.session, made, plan.iteration_limit))
    now = time.time()
    caps = [*guards.caps_for(cfg, plan.session, now), *plan.extra_caps]
    estimate = None
    if caps:
        decision, estimate = _choose_within_budget(loaded, ledger, plan, caps)
    (plan.key_check or _default_key_check(loaded))(decision.tier)  # the final tier, before any row
    row = _pending_row(loaded, plan, decision, now)
    if caps:
        overrun = ledger.insert_pending(row, caps, estimate)
        if overrun is not None:  # a concurrent call took the budget between the check and now
            _refuse(loaded, ledger, plan, decision, guards.refuse_budget(guards.Overrun(overrun[0], overrun[1], estimate)))
    else:
        ledger.upsert_call(row)
    call = RecordedCall(loaded, ledger, plan, decision, row, estimate)
    telemetry.emit(call.traced, "tier.route", {**telemetry.decision_attributes(decision), "tier.call_kind": plan.kind},
                   now, now)
    return call


def _default_key_check(loaded: "LoadedConfig") -> Callable[[str], None]:
    from tiercli import providers

    return lambda tier: providers.check_keys(loaded.config, tier)


def _choose_within_budget(loaded: "LoadedConfig", ledger: "LedgerLike", plan: Plan,
                          caps: list[guards.Cap]) -> tuple[Decision, float | None]:
    """The decision's tier if its upper bound fits every cap; else, with on_exceed: downgrade, the
    first cheaper tier that fits; else a refusal. Read only: the binding reservation is made with
    the pending row, in one transaction with the spend query."""
    cfg = loaded.config
    decision = plan.decision
    tiers = cfg.routing.tiers
    candidates = [decision.tier]
    if cfg.guardrails.budget.on_exceed == "downgrade" and decision.tier in tiers:
        candidates += list(reversed(tiers[: tiers.index(decision.tier)]))
    first: guards.Overrun | None = None
    for tier in candidates:
        estimate = upper_bound_usd(loaded, tier, plan)
        overrun = ledger.budget_overrun(caps, estimate)
        if overrun is None:
            if tier == decision.tier:
                return decision, estimate
            assert first is not None
            note = f"budget: downgraded {decision.tier} -> {tier} ({first.message()})"
            return replace(decision, tier=tier, model=cfg.primary_model(tier), reasons=(*decision.reasons, note)), estimate
        first = first or guards.Overrun(overrun[0], overrun[1], estimate)
    assert first is not None
    _refuse(loaded, ledger, plan, decision, guards.refuse_budget(first))
    raise AssertionError("unreachable")


def _pending_row(loaded: "LoadedConfig", plan: Plan, decision: Decision, now: float) -> dict[str, Any]:
    meta = {"reasons": list(decision.reasons), **plan.meta}
    return {
        "id": plan.call_id, "started_at": now, "session": plan.session, "kind": plan.kind, "source": plan.source,
        "parent_id": plan.parent_id, "task_id": plan.task_id, "task_type": decision.task_type, "label": decision.label,
        "decision_source": decision.source, "classifier": decision.classifier, "confidence": decision.confidence,
        "decided_tier": decision.decided_tier, "tier": decision.tier, "requested_model": decision.model,
        "status": "pending", "prompt_hash": prompt_hash(plan.prompt),
        "prompt_text": stored_text(plan.prompt or None, loaded.config.ledger.store_prompts),
        "config_hash": loaded.hash, "meta_json": json.dumps(meta, ensure_ascii=False, default=str),
        "owner_pid": os.getpid(), "owner_started": procinfo.this_process_started(), "owner_host": procinfo.HOST,
        "user_id": plan.user_id,
    }


def _refuse(loaded: "LoadedConfig", ledger: "LedgerLike", plan: Plan, decision: Decision, refusal: GuardrailRefusal):
    """A refused call is recorded (status refused, no cost) so it can be reviewed; then raised."""
    now = time.time()
    error_class = "IterationLimit" if isinstance(refusal, IterationLimit) else "BudgetExceeded"
    ledger.upsert_call({
        "id": plan.call_id, "started_at": now, "ended_at": now, "session": plan.session, "kind": plan.kind,
        "source": plan.source, "parent_id": plan.parent_id, "task_id": plan.task_id, "user_id": plan.user_id,
        "task_type": decision.task_type, "label": decision.label, "decision_source": decision.source,
        "decided_tier": decision.decided_tier, "tier": decision.tier, "requested_model": decision.model,
        "status": "refused", "error_class": error_class, "error_message": refusal.message[:500], "attempts": 0,
        "cost_usd": 0.0, "prompt_hash": prompt_hash(plan.prompt),
        "prompt_text": stored_text(plan.prompt or None, loaded.config.ledger.store_prompts), "config_hash": loaded.hash,
        "meta_json": json.dumps({"reasons": list(decision.reasons), **plan.meta}, ensure_ascii=False, default=str),
    })
    raise refusal


# -- settle ----------------------------------------------------------------------------------------
class RecordedCall:
    """An admitted call whose pending row is written; settle it exactly once."""

    def __init__(self, loaded: "LoadedConfig", ledger: "LedgerLike", plan: Plan, decision: Decision,
                 row: dict[str, Any], estimate: float | None):
        self.loaded, self.ledger, self.plan = loaded, ledger, plan
        self.decision, self.row, self.estimate = decision, row, estimate
        self.id: str = row["id"]
        self.started: float = row["started_at"]
        self.status: str | None = None  # set once settled
        self.settled_row: dict[str, Any] | None = None
        self.cost_usd: float | None = None
        self.price_source: str | None = None
        self.usage = Usage()
        self.traced = telemetry.enabled(loaded.config.telemetry.enabled)
        self._prices = PriceBook(loaded.config.prices)

    @property
    def settled(self) -> bool:
        return self.status is not None

    def __enter__(self) -> "RecordedCall":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if self.settled:
            return
        from tiercli.providers import CallFailed, Interrupted

        if exc is None:
            self.failed_with("NotSettled", "the call ended without an answer")
        elif isinstance(exc, Interrupted):
            self.interrupted(exc.partial_text, served_group=exc.served_group, served_model=exc.served_model)
        elif isinstance(exc, KeyboardInterrupt):
            self.interrupted("")
        elif isinstance(exc, CallFailed):
            self.failed(exc)
        else:
            from tiercli.providers import scrub

            self.failed_with(type(exc).__name__, scrub(str(exc) or type(exc).__name__, self.loaded.config))

    # pricing and usage, in one place ------------------------------------------------------------
    def _deployment(self, group: str | None, model: str | None):
        cfg = self.loaded.config
        if not model:
            return None
        bare = model.removeprefix("offline/")
        for g in [group or self.decision.tier, *cfg.routing.tiers]:
            if g not in {d.model_name for d in cfg.model_list}:
                continue
            for d in cfg.deployments(g):
                if d.model.removeprefix("offline/") == bare:
                    return d
        return None

    def _price(self, group: str | None, model: str | None, usage: Usage) -> tuple[float | None, str | None, Usage]:
        d = self._deployment(group, model)
        caching = self.loaded.config.caching
        if (self.plan.injects_cache and caching.enabled and caching.ttl == "1h" and d is not None
                and d.provider() == "anthropic" and usage.cache_write_tokens and not usage.cache_write_1h_tokens):
            # tier asked Anthropic for 1-hour cache entries: every cache write is a 1h write (2x input)
            usage = replace(usage, cache_write_1h_tokens=usage.cache_write_tokens)
        cost, source = self._prices.cost(d.model if d else (model or self.decision.model), usage,
                                         d.litellm_params if d else None)
        return cost, source, usage

    def counted_usage(self, text: str, model: str | None) -> Usage:
        """Tokens counted locally (the provider reported none): the prompt sent and the text received."""
        from tiercli import tokens

        name = (model or self.decision.model).removeprefix("offline/")
        prompt = tokens.count_messages(self.plan.messages, name)
        if self.plan.extra_input_text:
            prompt += tokens.count(self.plan.extra_input_text, name)
        return Usage(input_tokens=prompt, output_tokens=tokens.count(text, name) if text else 0)

    def _write(self, status: str, values: dict[str, Any], usage: Usage, group: str | None, model: str | None,
               error: BaseException | None = None) -> None:
        ended = time.time()
        cost, source, usage = self._price(group, model, usage)
        self.cost_usd, self.price_source, self.usage = cost, source, usage
        self.settled_row = {  # what was written, for whoever reports the call (the gateway's console)
            **self.row, **usage_cols(usage), **values, "status": status, "ended_at": ended, "reserved_usd": None,
            "cost_usd": cost, "price_source": source, "unpriced": cost is None,
            "latency_ms": (ended - self.started) * 1000, "owner_pid": None, "owner_started": None, "owner_host": None,
        }
        pending = self.row  # as written at open: only what changed since is set on the existing row
        self.ledger.upsert_call(self.settled_row, update=[k for k, v in self.settled_row.items()
                                                          if k not in pending or pending[k] != v])
        self.status = status
        d = self._deployment(group or self.decision.tier, self.decision.model)
        provider = d.provider() if d else (self.decision.model.split("/", 1)[0] if "/" in self.decision.model else "unknown")
        telemetry.emit(self.traced, f"chat {self.decision.model}",
                       telemetry.call_attributes(self.decision.model, provider, usage, model, cost, group),
                       self.started, ended, error)

    def ok(self, *, text: str, served_group: str, served_model: str, usage: Usage | None,
           deployment_id: str | None = None, attempts: Iterable["Attempt"] = (), meta: dict[str, Any] | None = None) -> None:
        """The answer arrived. `usage` None: the provider reported none, so it is counted locally."""
        attempts = list(attempts)
        reported = usage is not None
        if usage is None:
            usage = self.counted_usage(text, served_model)
        fallbacks = sum(1 for a in attempts if a.group and a.group != served_group)
        if served_group != self.decision.tier:
            fallbacks = max(fallbacks, 1)
        values: dict[str, Any] = {
            "served_tier": served_group, "served_model": served_model, "deployment_id": deployment_id,
            "attempts": len(attempts) + 1, "fallback_count": fallbacks,
            "attempts_json": json.dumps([a.as_dict() for a in attempts]) if attempts else None,
            "output_estimated": not reported,
            "response_text": stored_text(text, self.loaded.config.ledger.store_prompts),
        }
        if meta:
            values["meta_json"] = json.dumps({**json.loads(self.row["meta_json"]), **meta}, ensure_ascii=False, default=str)
        self._write("ok", values, usage, served_group, served_model)

    def failed(self, exc: "CallFailed", *, usage: Usage | None = None, served_group: str | None = None,
               served_model: str | None = None) -> None:
        """Every deployment failed, or the answer broke off. A started answer is billed: its tokens
        (reported, or counted locally) are priced."""
        model = served_model or self.decision.model
        estimated = False
        if usage is None:
            usage = Usage()
            if exc.partial_text:
                usage, estimated = self.counted_usage(exc.partial_text, model), True
        self._write("error", {
            "served_tier": served_group, "served_model": served_model, "output_estimated": estimated,
            "error_class": exc.error_class, "error_message": exc.message[:500], "attempts": len(exc.attempts),
            "fallback_count": max(len(exc.attempts) - 1, 0),
            "attempts_json": json.dumps([a.as_dict() for a in exc.attempts]),
            "response_text": stored_text(exc.partial_text or None, self.loaded.config.ledger.store_prompts),
        }, usage, served_group, model, exc)

    def failed_with(self, error_class: str, message: str) -> None:
        """A failure that is not the provider's (a request that could not be built, a bug)."""
        from tiercli.providers import CallFailed

        self.failed(CallFailed(message, None, error_class=error_class, attempts=[]))

    def interrupted(self, partial_text: str, *, served_group: str | None = None, served_model: str | None = None,
                    usage: Usage | None = None, error_class: str = "KeyboardInterrupt") -> None:
        """Ctrl-C, or the client hung up: the partial answer, its tokens counted locally unless the
        provider had already reported them. Nothing sent yet (e.g. Ctrl-C while litellm loads): no tokens."""
        model = served_model or self.decision.model
        estimated = usage is None
        if usage is None:
            usage = self.counted_usage(partial_text, model) if partial_text or served_model else Usage()
        self._write("interrupted", {
            "served_tier": served_group, "served_model": served_model, "output_estimated": estimated,
            "response_text": stored_text(partial_text or None, self.loaded.config.ledger.store_prompts),
            "error_class": error_class,
        }, usage, served_group, model)


# -- the messages path -----------------------------------------------------------------------------
@dataclass
class Answer:
    call_id: str
    decision: Decision
    completion: "Completion"
    cost_usd: float | None
    price_source: str | None
    usage: Usage
    latency_ms: float


def complete(loaded: "LoadedConfig", ledger: "LedgerLike", plan: Plan, *, stream: bool = False,
             on_text: Callable[[str], None] | None = None, temperature: float | None = None) -> Answer:
    """Open the call, send its messages through providers.complete(), settle. Raises the provider's
    CallFailed / Interrupted after the row is settled."""
    from tiercli import providers

    cfg = loaded.config
    with open_call(loaded, ledger, plan) as call:
        test_pause("pending")
        result = providers.complete(
            cfg, loaded.hash, call.decision.tier, plan.messages, call_id=call.id, stream=stream, on_text=on_text,
            max_tokens=output_tokens(loaded, plan), timeout=cfg.guardrails.timeout_s, temperature=temperature,
        )
        test_pause("response")
        call.ok(text=result.text, served_group=result.served_group, served_model=result.served_model,
                usage=result.usage if result.usage_reported else None, deployment_id=result.deployment_id,
                attempts=result.attempts)
    return Answer(call.id, call.decision, result, call.cost_usd, call.price_source, call.usage,
                  (time.time() - call.started) * 1000)
