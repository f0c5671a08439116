"""Outcome replay (`--outcomes`): routing policies judged on a table of per-model outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tiercli.errors import InputError
from tiercli.replay.base import DEFAULT_SUCCESS_THRESHOLD, DEFAULT_TOP, NONE_KEY, Decider, Pricer

if TYPE_CHECKING:
    from tiercli.config import Config, LoadedConfig
    from tiercli.outcomes import OutcomeTable

# -- outcome replay ------------------------------------------------------------------------------
@dataclass
class Policy:
    name: str
    tasks: int = 0
    quality_sum: float = 0.0
    successes: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    finished: dict[str, int] = field(default_factory=dict)  # tier -> tasks finishing there
    pgr: float | None = None
    cost_vs_top: float | None = None

    @property
    def quality(self) -> float | None:
        return self.quality_sum / self.tasks if self.tasks else None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.tasks if self.tasks else None

    def tier_shares(self) -> dict[str, float]:
        return {t: (n / self.tasks if self.tasks else 0.0) for t, n in self.finished.items()}


@dataclass
class TaskRoute:
    task_id: str
    task_type: str | None
    decided_tier: str
    served_tier: str  # a mapped tier (the decided one, or the next mapped one)
    top_tier: str
    top_cost_usd: float
    cost_usd: float
    top_quality: float
    quality: float

    @property
    def diff_usd(self) -> float:
        return self.cost_usd - self.top_cost_usd


@dataclass
class OutcomeReplay:
    config_source: str
    config_hash: str
    classifier: str
    table: dict[str, Any]
    mapping: dict[str, str]  # model -> tier
    tiers: list[str]  # mapped tiers, cheapest first
    threshold: float
    policies: list[Policy]
    tasks: int
    tasks_incomplete: int
    pricing: dict[str, int]  # how each (task, model) cost was found
    pricing_models: dict[str, str]  # tier -> model priced for it (when tokens were priced)
    decided: dict[str, int]
    remapped: int  # config decisions on an unmapped tier, served by the next mapped tier
    changed_tasks: int
    changed: list[TaskRoute]
    notes: list[str] = field(default_factory=list)
    config_decided: dict[str, int] = field(default_factory=dict)  # tier the config chose (before remapping)
    config_task_types: dict[str, int] = field(default_factory=dict)

    def policy(self, name: str) -> Policy:
        return next(p for p in self.policies if p.name == name)


def _serving_tier(cfg: "Config", tier: str, mapped: list[str]) -> str:
    """A decided tier with no table model is served by the next mapped tier above it, else the nearest below."""
    if tier in mapped:
        return tier
    rank = cfg.tier_rank(tier)
    above = [t for t in mapped if cfg.tier_rank(t) > rank]
    if above:
        return above[0]
    return mapped[-1]


def evaluate_outcomes(loaded: "LoadedConfig", table: "OutcomeTable", mapping: dict[str, str], *,
                      threshold: float = DEFAULT_SUCCESS_THRESHOLD, classifier: str | None = None,
                      top: int = DEFAULT_TOP) -> OutcomeReplay:
    """Judge the config's routing, each mapped tier alone, a cascade and the oracle on an outcome table.

    For each task (those with an outcome for every mapped model):
    - config: the decision for the task's prompt (as in dry replay; no prompt: default tier) -> its
      tier's table model (an unmapped tier: the next mapped tier above, else the nearest below).
    - always:<tier>: that tier's model.
    - cascade: mapped tiers cheapest first; stop at the first quality >= threshold; every attempt is
      paid; the quality is the last attempt's.
    - oracle: the cheapest (by that task's cost) model whose quality >= threshold, else the cheapest.
    A policy's quality is the mean quality over tasks (for 0/1 quality, the resolved rate); its cost
    the sum over tasks. Costs: the table's cost_usd; else tokens (input_tokens/output_tokens, or counted
    from the prompt and the response text) priced at the config's primary model of the mapped tier.
    """
    from tiercli import tokens

    cfg = loaded.config
    tiers = [t for t in cfg.routing.tiers if t in mapping.values()]
    model_of = {tier: model for model, tier in mapping.items()}
    decider = Decider(loaded, classifier)
    pricer = Pricer(cfg)
    complete = [t for t in table.task_ids if all(m in table.outcomes[t] for m in mapping)]
    incomplete = len(table.task_ids) - len(complete)
    if not complete:
        raise InputError(f"no task in {table.source} has an outcome for every mapped model ({', '.join(mapping)})")
    pricing = {"cost_usd": 0, "token_columns": 0, "counted": 0}
    priced_with: dict[str, str] = {}
    cost: dict[str, dict[str, float]] = {}
    qual: dict[str, dict[str, float]] = {}
    for task in complete:
        prompt = table.prompts.get(task)
        cost[task], qual[task] = {}, {}
        for tier in tiers:
            model = model_of[tier]
            o = table.outcomes[task][model]
            qual[task][tier] = o.quality
            if o.cost_usd is not None:
                cost[task][tier] = o.cost_usd
                pricing["cost_usd"] += 1
                continue
            cfg_model = cfg.primary_model(tier)
            price = pricer.price(cfg_model)
            if price is None:
                raise InputError(
                    f"task {task!r}, model {model!r}: no cost_usd in the table, and {tier}'s model {cfg_model} has no price",
                    "give cost_usd, or add the model under prices: in the config",
                )
            priced_with[tier] = cfg_model
            counted = False
            inp = o.input_tokens
            if inp is None:
                if prompt is None:
                    raise InputError(f"task {task!r}, model {model!r}: no cost_usd, no input_tokens and no prompt to count",
                                     "add a prompt column or --tasks, or cost_usd")
                inp = tokens.count_messages([{"role": "user", "content": prompt}], cfg_model)
                counted = True
            out = o.output_tokens
            if out is None:
                if o.response is None:
                    raise InputError(f"task {task!r}, model {model!r}: no cost_usd, no output_tokens and no response text to count",
                                     "add output_tokens, a response column, or cost_usd")
                out = tokens.count(o.response, cfg_model)
                counted = True
            cost[task][tier] = price.cost(inp, 0, 0, 0, out)
            pricing["counted" if counted else "token_columns"] += 1

    policies = [Policy("config")] + [Policy(f"always:{t}") for t in tiers] + [Policy("cascade"), Policy("oracle")]
    for p in policies:
        p.finished = dict.fromkeys(tiers, 0)
    by_name = {p.name: p for p in policies}
    top_tier = tiers[-1]
    decided = {"recorded": 0, "classified": 0, "no_prompt": 0, "static": 0}
    remapped = 0
    routes: list[tuple[float, int, TaskRoute]] = []
    changed_tasks = 0
    chose: dict[str, int] = dict.fromkeys(cfg.routing.tiers, 0)
    types: dict[str, int] = {}

    def finish(p: Policy, tier: str, q: float, c: float, attempts: int = 1) -> None:
        p.tasks += 1
        p.quality_sum += q
        p.successes += q >= threshold
        p.cost_usd += c
        p.attempts += attempts
        p.finished[tier] += 1

    for n, task in enumerate(complete):
        q, c = qual[task], cost[task]
        decision, how = decider.decide(None, table.prompts.get(task))
        decided[how] += 1
        served = _serving_tier(cfg, decision.tier, tiers)
        remapped += served != decision.tier
        chose[decision.tier] += 1
        key = decision.task_type or NONE_KEY
        types[key] = types.get(key, 0) + 1
        finish(by_name["config"], served, q[served], c[served])
        for t in tiers:
            finish(by_name[f"always:{t}"], t, q[t], c[t])
        paid = 0.0
        for i, t in enumerate(tiers):
            paid += c[t]
            if q[t] >= threshold or i == len(tiers) - 1:
                finish(by_name["cascade"], t, q[t], paid, i + 1)
                break
        ok = [t for t in tiers if q[t] >= threshold]
        pick = min(ok or tiers, key=lambda t: (c[t], tiers.index(t)))
        finish(by_name["oracle"], pick, q[pick], c[pick])
        if served != top_tier:
            changed_tasks += 1
            route = TaskRoute(task, decision.task_type, decision.tier, served, top_tier, c[top_tier], c[served],
                              q[top_tier], q[served])
            routes.append((-abs(route.diff_usd), n, route))

    top_policy = by_name[f"always:{top_tier}"]
    for p in policies:
        p.cost_vs_top = p.cost_usd / top_policy.cost_usd if top_policy.cost_usd else None
    if len(tiers) == 2:
        q_weak, q_strong = by_name[f"always:{tiers[0]}"].quality, top_policy.quality
        for p in policies:
            if q_strong is not None and q_weak is not None and q_strong != q_weak:
                p.pgr = (p.quality - q_weak) / (q_strong - q_weak)
    routes.sort(key=lambda item: (item[0], item[1]))
    notes = []
    if incomplete:
        notes.append(f"{incomplete} task(s) lack an outcome for a mapped model and were left out")
    if remapped:
        notes.append(f"{remapped} config decision(s) named a tier with no table model: served by the next mapped tier "
                     "above (else the nearest below)")
    if decided["no_prompt"]:
        notes.append(f"{decided['no_prompt']} task(s) have no prompt: the config policy sends them to the default tier")
    if decided["static"]:
        notes.append("the config's classifier is static: every task goes to the default tier (try --classifier local)")
    if decider.which in ("llm", "hybrid") and decided["classified"]:
        notes.append(f"the config's classifier is {decider.which}: prompts were classified with the local classifier")
    unmapped = [m for m in table.models if m not in mapping]
    if unmapped:
        notes.append(f"table model(s) not mapped to a tier, ignored: {', '.join(unmapped)}")
    return OutcomeReplay(
        loaded.source, loaded.hash, decider.which, table.describe(), dict(mapping), tiers, threshold, policies,
        len(complete), incomplete, pricing, priced_with, decided, remapped, changed_tasks,
        [r for _, _, r in routes[:max(top, 0)]], notes, chose,
        dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))),
    )
