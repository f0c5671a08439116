"""Live replay (`--live`): re-execute recorded prompts under a config through tiercli.ask."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable

from tiercli.replay.dry import CallReplay, DryReplay

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig
    from tiercli.ledger.db import Ledger

# -- live replay ---------------------------------------------------------------------------------
@dataclass
class LiveItem:
    call: CallReplay
    prompt: str
    task_type: str | None
    old_answer: str | None
    estimate_usd: float | None
    new_id: str | None = None
    new_tier: str | None = None
    new_model: str | None = None
    new_cost_usd: float | None = None
    new_answer: str | None = None
    status: str = "planned"  # planned | ok | error | not_run
    error: str | None = None


@dataclass
class LivePlan:
    items: list[LiveItem]
    no_prompt: int  # calls without prompt text: cannot be re-executed
    estimate_usd: float  # priced estimates only
    unpriced_estimates: int

    @property
    def old_cost_usd(self) -> float:
        return sum(i.call.old_cost_usd or 0.0 for i in self.items)


@dataclass
class LiveResult:
    plan: LivePlan
    spent_usd: float = 0.0
    executed: int = 0
    failed: int = 0
    stopped: str | None = None  # why the run stopped early


def plan_live(loaded: "LoadedConfig", rows: list[dict[str, Any]], dry: DryReplay) -> LivePlan:
    """Estimates for re-executing each call: the prompt's tokens counted for the new model, the
    recorded output tokens (else ask's default), priced at the new tier's model."""
    from tiercli import ask

    by_id = {r["id"]: r for r in rows}
    items: list[LiveItem] = []
    no_prompt = 0
    total = 0.0
    unpriced = 0
    for call in dry.calls:
        row = by_id[call.id]
        text = row.get("prompt_text")
        if not text or not text.strip():
            no_prompt += 1
            continue
        req = ask.AskRequest(prompt=text)
        assert call.decision is not None, "plan_live needs dry_replay(..., keep_calls=True)"
        est = ask.estimate(loaded, req, call.decision, row.get("output_tokens") or None)
        if est.cost_usd is None:
            unpriced += 1
        else:
            total += est.cost_usd
        task_type = row.get("task_type")
        items.append(LiveItem(call, text, task_type, row.get("response_text"), est.cost_usd))
    return LivePlan(items, no_prompt, total, unpriced)


def run_live(loaded: "LoadedConfig", plan: LivePlan, ledger: "Ledger", *, max_cost: float | None = None,
             llm_classifier: bool = False, on_item: Callable[[LiveItem], None] | None = None) -> LiveResult:
    """Re-execute each planned call through tiercli.ask.run (kind replay, parent_id the original).

    Before each call: stop when spent + that call's estimate would exceed max_cost. A provider
    failure is recorded (ask.run settles the row as error) and the run goes on."""
    from tiercli import ask, providers
    from tiercli.errors import GuardrailRefusal, ProviderError

    cfg = loaded.config
    for tier in sorted({i.call.new_tier for i in plan.items}):
        providers.check_keys(cfg, tier)  # a missing key stops everything before any call
    result = LiveResult(plan)
    for n, item in enumerate(plan.items):
        if max_cost is not None:
            if item.estimate_usd is None:
                result.stopped = f"call {item.call.id[:8]} has no cost estimate (unpriced model) and --max-cost is set"
            elif result.spent_usd + item.estimate_usd > max_cost:
                result.stopped = (f"the next call's estimate ${item.estimate_usd:.4f} would take the total "
                                  f"${result.spent_usd:.4f} past --max-cost ${max_cost:.4f}")
            if result.stopped:
                for rest in plan.items[n:]:
                    rest.status = "not_run"
                break
        task_type = item.task_type if item.task_type in cfg.routing.task_types else None
        if llm_classifier:
            req = ask.AskRequest(prompt=item.prompt, task_type=task_type, session=item.call.session, stream=False)
            decision = None
        else:
            req = ask.AskRequest(prompt=item.prompt, session=item.call.session, stream=False)
            decision = item.call.decision
        try:
            res = ask.run(loaded, req, ledger, decision=decision, kind="replay", parent_id=item.call.id)
        except GuardrailRefusal as exc:  # a budget: stop here, keep what was done
            result.stopped = f"refused by a guardrail: {exc}"
            for rest in plan.items[n:]:
                rest.status = "not_run"
            break
        except ProviderError as exc:
            item.status, item.error = "error", str(exc)[:200]
            result.failed += 1
            if on_item:
                on_item(item)
            continue
        item.status = "ok"
        item.new_id, item.new_tier = res.call_id, res.served_tier or res.decision.tier
        item.new_model = res.served_model or res.decision.model
        item.new_cost_usd, item.new_answer = res.cost_usd, res.text
        result.executed += 1
        if res.cost_usd is not None:
            result.spent_usd += res.cost_usd
        if on_item:
            on_item(item)
    return result
