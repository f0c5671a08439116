"""`tier ask`: classify, decide, carry the history, then the recorded-call pipeline (calls.py).

Everything about recording (the pending row before the call, exactly one settlement, budgets,
pricing, telemetry) lives in calls.py; this module only decides what to send.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from tiercli import calls, compaction
from tiercli import classify as classify_pkg
from tiercli.config import LoadedConfig
from tiercli.errors import InputError
from tiercli.pricing import Usage
from tiercli.router import Classification, Decision, decide

if TYPE_CHECKING:
    from tiercli.ledger import Ledger

DEFAULT_OUTPUT_ESTIMATE = 500  # tokens, for --dry-run when the ledger has no history for the tier
prompt_hash = calls.prompt_hash  # kept for callers of the first round's API


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


def classify_for(loaded: LoadedConfig, req: AskRequest, ledger: "Ledger | None" = None,
                 call_id: str | None = None) -> Classification | None:
    """Run the configured classifier unless the caller named the task type (no ledger: a dry run).
    An llm classifier's call is recorded with parent_id `call_id`: the id the main call will have."""
    if req.task_type is not None:
        return None
    which = req.classifier or loaded.config.routing.classifier
    return classify_pkg.run(which, req.prompt, loaded, ledger=ledger, parent_id=call_id, session=req.session)


def decide_for(loaded: LoadedConfig, req: AskRequest, ledger: "Ledger | None", call_id: str | None) -> Decision:
    classification = classify_for(loaded, req, ledger, call_id)
    return decide(loaded.config, task_type=req.task_type, classification=classification, force_tier=req.force_tier)


def classify_only(loaded: LoadedConfig, text: str, classifier: str | None, ledger: "Ledger | None" = None) -> Decision:
    """`tier classify`: the decision alone. Only an llm/hybrid classifier with a ledger calls a model."""
    if not text.strip():
        raise InputError("the task is empty", "pass it as an argument or on stdin")
    req = AskRequest(prompt=text, classifier=classifier)
    return decide(loaded.config, classification=classify_for(loaded, req, ledger))


def estimate(loaded: LoadedConfig, req: AskRequest, decision: Decision, history_output: int | None) -> AskResult:
    """--dry-run: the decision and its cost with prompt tokens counted offline, output estimated."""
    messages = build_messages(req.prompt, system_prompt(loaded, req, "main"))  # what run() would send
    model, usage, cost, source = calls.offline_cost(loaded, decision.tier, messages,
                                                    history_output or DEFAULT_OUTPUT_ESTIMATE)
    return AskResult(None, decision, usage=usage, cost_usd=cost, price_source=source, served_tier=decision.tier,
                     served_model=model, estimated=True)


def run(
    loaded: LoadedConfig,
    req: AskRequest,
    ledger: "Ledger",
    *,
    on_text: Callable[[str], None] | None = None,
    decision: Decision | None = None,
    kind: str = "main",
    source: str = "tier",
    parent_id: str | None = None,
    call_id: str | None = None,
    meta: dict[str, Any] | None = None,
) -> AskResult:
    """Route and execute one call, recording it in `ledger`. Raises TierError subclasses."""
    cfg = loaded.config
    if not req.prompt.strip():
        raise InputError("the prompt is empty", "pass it as an argument or on stdin")
    call_id = call_id or calls.new_id()
    if decision is None:
        decision = decide_for(loaded, req, ledger, call_id)
    limit = None if (req.force or kind != "main") else cfg.guardrails.max_iterations
    system = system_prompt(loaded, req, kind)
    history = None
    if req.history and not (limit is not None and req.session and ledger.session_calls(req.session) >= limit):
        history = compaction.history_for(loaded, ledger, req.session, call_id)  # the refusal needs no history
    plan = calls.Plan(decision=decision, prompt=req.prompt, messages=build_messages(req.prompt, system, history),
                      kind=kind, source=source, session=req.session, parent_id=parent_id, call_id=call_id,
                      max_output_tokens=req.max_tokens, iteration_limit=limit, meta=dict(meta or {}))
    answer = calls.complete(loaded, ledger, plan, stream=req.stream, on_text=on_text, temperature=req.temperature)
    done = answer.completion
    return AskResult(answer.call_id, answer.decision, done.text, answer.usage, answer.cost_usd, answer.price_source,
                     done.served_group, done.served_model, [a.as_dict() for a in done.attempts], answer.latency_ms)


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
    call_id = calls.new_id()  # the first attempt's id: an llm classifier's row points at it
    if decision is None:
        decision = decide_for(loaded, req, ledger, call_id)
    command = check_command or cascade_check(loaded, req, decision)
    if command is None:
        return run(loaded, req, ledger, decision=decision, on_text=on_text, call_id=call_id), None
    tiers = cfg.routing.tiers
    first_id: str | None = None
    prompt = req.prompt
    current = decision
    for tier in tiers[tiers.index(decision.tier):]:
        if tier != decision.tier:
            current = replace(decision, tier=tier, model=cfg.primary_model(tier), source="cascade",
                              reasons=(*decision.reasons, f"--check failed on the tier below: escalated to {tier}"))
        attempt_req = replace(req, prompt=prompt, stream=False, force=req.force or first_id is not None)
        result = run(loaded, attempt_req, ledger, decision=current, parent_id=first_id, meta={"check": command},
                     call_id=call_id if first_id is None else None)
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
