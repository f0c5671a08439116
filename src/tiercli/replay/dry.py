"""Dry replay: re-decide and re-price recorded calls under a config, task by task, cache-aware.

- Tasks: calls with a task id (agent imports, the gateway) are routed as a unit: the task is decided
  once (its recorded task type, else its instruction classified) and every step goes to the task's
  tier. A side call (task_rule side_call in the call's meta) goes to the cheapest tier. Calls
  without a task id are decided one by one.
- Money, two ways: `after_warm` re-prices the recorded buckets as if the new model's cache were as
  warm as the old one's (the old method); `after` simulates each stream's prompt cache per model in
  time order (tiercli.replay.cache) and pays cache writes for the prefix the new model does not hold.
  The difference is the switch penalty, reported as its own figure. Calls without a session are
  priced warm (nothing to simulate).
- Changed: a call changes when its tier changes or its priced model does (another model, or the same
  name at another price); a dated id of the same model at the same price is a rename, counted apart.
"""

from __future__ import annotations

import math
import re
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

from tiercli.replay.base import NONE_KEY, Decider, Pricer, Recounter, Selection, _scale, bare_model
from tiercli.replay.cache import PromptCaches
from tiercli.router import Decision

if TYPE_CHECKING:
    from tiercli.config import Config, LoadedConfig

# -- dry replay ----------------------------------------------------------------------------------
@dataclass
class Bucket:
    calls: int = 0
    cost_usd: float = 0.0  # priced calls only
    unpriced: int = 0


@dataclass
class Side:
    calls: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = 0
    unpriced_models: dict[str, int] = field(default_factory=dict)
    tiers: dict[str, Bucket] = field(default_factory=dict)
    task_types: dict[str, Bucket] = field(default_factory=dict)
    models: dict[str, Bucket] = field(default_factory=dict)

    def add(self, tier: str | None, task_type: str | None, model: str | None, cost: float | None) -> None:
        self.calls += 1
        for table, key in ((self.tiers, tier), (self.task_types, task_type), (self.models, model)):
            b = table.get(key or NONE_KEY)
            if b is None:
                b = table[key or NONE_KEY] = Bucket()
            b.calls += 1
            if cost is None:
                b.unpriced += 1
            else:
                b.cost_usd += cost
        if cost is None:
            self.unpriced_calls += 1
            name = model or NONE_KEY
            self.unpriced_models[name] = self.unpriced_models.get(name, 0) + 1
        else:
            self.cost_usd += cost


@dataclass
class CallReplay:
    """One call, before and after (kept for the changed list and for live replay)."""

    id: str
    session: str | None
    started_at: float | None
    kind: str
    source: str | None
    task_type: str | None
    how: str  # recorded | classified | no_prompt | static | side_call
    old_tier: str | None
    new_tier: str
    old_model: str | None
    new_model: str
    old_cost_usd: float | None
    new_cost_usd: float | None
    input_before: int
    input_after: int
    output_tokens: int
    recounted: bool
    decision: Decision | None = None
    task_id: str | None = None
    rule: str | None = None  # the agent rule that put the call in its task (imported calls)
    penalty_usd: float = 0.0  # the cache rebuild this call pays on its new model

    @property
    def diff_usd(self) -> float | None:
        if self.old_cost_usd is None or self.new_cost_usd is None:
            return None
        return self.new_cost_usd - self.old_cost_usd


@dataclass
class DryReplay:
    config_source: str
    config_hash: str
    classifier: str  # the classifier the config (or --classifier) names
    selection: Selection
    before: Side = field(default_factory=Side)
    after: Side = field(default_factory=Side)
    comparable_calls: int = 0
    comparable_before_usd: float = 0.0
    comparable_after_usd: float = 0.0  # cache-aware
    comparable_after_warm_usd: float = 0.0  # as if every new model's cache were warm
    switch_penalty_usd: float = 0.0  # comparable_after - comparable_after_warm
    penalty_calls: int = 0  # calls that rebuild a cache on their new model
    penalty_tokens: int = 0  # recorded cache reads that become writes
    decided: dict[str, int] = field(default_factory=lambda: {
        "recorded": 0, "classified": 0, "no_prompt": 0, "static": 0, "side_call": 0})
    tasks: int = 0  # calls with a task id, grouped
    task_decided: dict[str, int] = field(default_factory=dict)  # tasks by how they were decided
    rules: dict[str, int] = field(default_factory=dict)  # calls by agent rule ("(none)": no task)
    distinct_prompts_classified: int = 0
    recounted_calls: int = 0
    not_recounted_calls: int = 0  # tokenizer family changed but no prompt text
    old_repriced_calls: int = 0  # recorded unpriced, priced now by the config's prices
    changed_calls: int = 0
    renamed_calls: int = 0  # another model id, same model and price (e.g. a dated id)
    top_tier: str = ""
    changed: list[CallReplay] = field(default_factory=list)  # top N
    calls: list[CallReplay] = field(default_factory=list)  # every call, only when asked (live)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def top_tier_share(self) -> float | None:
        b = self.after.tiers.get(self.top_tier)
        return (b.calls / self.after.calls) if b is not None and self.after.calls else (0.0 if self.after.calls else None)


def _tier_of_model(cfg: "Config") -> dict[str, str]:
    out: dict[str, str] = {}
    for tier in cfg.routing.tiers:
        for d in cfg.deployments(tier):
            out.setdefault(bare_model(d.model) or "", tier)
    return out


_RULE = re.compile(r'"task_rule":\s*"([a-z_]+)"')


def _rule(r: dict[str, Any]) -> str | None:
    """The agent rule in a call's meta (a substring search: no JSON decoding per call)."""
    meta = r.get("meta_json")
    if not meta or '"task_rule"' not in meta:
        return None
    m = _RULE.search(meta)
    return m.group(1) if m else None


def _side_decision(cfg: "Config") -> Decision:
    tier = cfg.routing.tiers[0]
    return Decision(tier=tier, model=cfg.primary_model(tier), source="agent", decided_tier=tier,
                    reasons=("side call (title/topic, quota check, small model without tools) -> cheapest tier",))


def _task_decisions(rows: list[dict[str, Any]], rules: list[str | None], decider: Decider, cfg: "Config",
                    counts: dict[str, int]) -> dict[str, tuple[Decision, str]]:
    """One decision per task: a side call's task -> cheapest tier; else its recorded task type or its
    instruction (the first of its rows that has one)."""
    facts: dict[str, list[Any]] = {}
    for r, rule in zip(rows, rules):
        tid = r.get("task_id")
        if not tid:
            continue
        f = facts.get(tid)
        if f is None:
            f = facts[tid] = [None, None, False]
        if f[0] is None and r.get("task_type"):
            f[0] = r["task_type"]
        if f[1] is None and r.get("prompt_text"):
            f[1] = r["prompt_text"]
        f[2] = f[2] or rule == "side_call"
    out: dict[str, tuple[Decision, str]] = {}
    side = None
    for tid, (task_type, text, is_side) in facts.items():
        if is_side:
            side = side or _side_decision(cfg)
            out[tid] = (side, "side_call")
        else:
            out[tid] = decider.decide(task_type, text)
        how = out[tid][1]
        counts[how] = counts.get(how, 0) + 1
    return out


def dry_replay(loaded: "LoadedConfig", rows: list[dict[str, Any]], selection: Selection, *,
               classifier: str | None = None, top: int = 10, keep_calls: bool = False,
               progress: Callable[[int, int], None] | None = None) -> DryReplay:
    """Re-decide and re-price `rows` (ledger-row dicts, oldest first) under `loaded`. Calls nothing."""
    from tiercli import tokens

    t0 = time.perf_counter()
    cfg = loaded.config
    decider = Decider(loaded, classifier)
    pricer = Pricer(cfg)
    recounter = Recounter()
    caches = PromptCaches()
    result = DryReplay(loaded.source, loaded.hash, decider.which, selection, top_tier=cfg.routing.tiers[-1])
    model_tier = _tier_of_model(cfg)
    tier_model = {t: cfg.primary_model(t) for t in cfg.routing.tiers}
    tier_price = {t: pricer.price(m) for t, m in tier_model.items()}
    before, after = result.before, result.after
    changed: list[tuple[float, int, tuple]] = []
    decided = result.decided
    rules = [_rule(r) for r in rows]
    by_task = _task_decisions(rows, rules, decider, cfg, result.task_decided)
    result.tasks = len(by_task)
    streams = {r.get("task_id") for r, rule in zip(rows, rules) if rule in ("subagent", "side_call")}

    bare_of: dict[str | None, tuple] = {}
    tier_bare = {t: bare_model(m) for t, m in tier_model.items()}
    tier_family = {t: tokens.family(m) for t, m in tier_model.items()}

    def old_identity(model: str | None) -> tuple:
        """(bare name, tokenizer family, price numbers) of a recorded model, computed once per model."""
        found = bare_of.get(model)
        if found is None:
            p = pricer.price(model)
            found = bare_of[model] = (bare_model(model), tokens.family(model) if model else None,
                                      p.numbers() if p is not None else None)
        return found

    tier_numbers = {t: (p.numbers() if p is not None else None) for t, p in tier_price.items()}

    def make_call(n: int, r: dict[str, Any], decision: Decision, how: str, old_tier: str | None, old_model: str | None,
                  old_cost: float | None, new_cost: float | None, input_after: int, recounted: bool,
                  penalty: float) -> CallReplay:
        return CallReplay(
            r["id"], r.get("session"), r.get("started_at"), r.get("kind") or "main", r.get("source"),
            decision.task_type, how, old_tier, decision.tier, old_model, tier_model[decision.tier], old_cost, new_cost,
            (r.get("input_tokens") or 0) + (r.get("cache_read_tokens") or 0) + (r.get("cache_write_tokens") or 0),
            input_after, r.get("output_tokens") or 0, recounted, decision if keep_calls else None,
            r.get("task_id"), rules[n], penalty,
        )

    total = len(rows)
    for n, r in enumerate(rows):
        if progress is not None and n % 5000 == 0:
            progress(n, total)
        tid = r.get("task_id")
        rule = rules[n]
        result.rules[rule or NONE_KEY] = result.rules.get(rule or NONE_KEY, 0) + 1
        if tid and tid in by_task:
            decision, how = by_task[tid]
        else:
            decision, how = decider.decide(r.get("task_type"), r.get("prompt_text"))
        decided[how] = decided.get(how, 0) + 1
        new_tier = decision.tier
        old_model = r.get("served_model") or r.get("requested_model")
        old_bare, old_family, old_numbers = old_identity(old_model)
        old_tier = r.get("tier") or model_tier.get(old_bare or "")
        inp = r.get("input_tokens") or 0
        read = r.get("cache_read_tokens") or 0
        write = r.get("cache_write_tokens") or 0
        w1h = r.get("cache_write_1h_tokens") or 0
        out = r.get("output_tokens") or 0
        old_cost = r.get("cost_usd")
        if old_cost is None and old_model:
            p = pricer.price(old_model)
            if p is not None:
                old_cost = p.cost(inp, read, write, w1h, out)
                result.old_repriced_calls += 1
        recounted = False
        n_inp, n_read, n_write, n_w1h = inp, read, write, w1h
        text = r.get("prompt_text")
        if old_family is not None and old_family != tier_family[new_tier] and (inp or read or write):
            if text:
                assert old_model is not None  # old_family is known only for a named model
                ratio = recounter.ratio(text, old_model, tier_model[new_tier])
                n_inp, n_read, n_write, n_w1h = _scale(inp, ratio), _scale(read, ratio), _scale(write, ratio), _scale(w1h, ratio)
                n_w1h = min(n_w1h, n_write)
                recounted = True
                result.recounted_calls += 1
            else:
                result.not_recounted_calls += 1
        price = tier_price[new_tier]
        warm_cost = price.cost(n_inp, n_read, n_write, n_w1h, out) if price is not None else None
        new_cost, penalty = warm_cost, 0.0
        session = r.get("session")
        if session is not None:
            stream = (session, tid if tid in streams else None)
            c_read, c_write, c_w1h = caches.call(stream, tier_bare[new_tier], r.get("started_at") or 0.0,
                                                 n_read, n_write, n_w1h, old_bare)
            if c_read != n_read:
                result.penalty_calls += 1
                result.penalty_tokens += n_read - c_read
                if price is not None and warm_cost is not None:
                    new_cost = price.cost(n_inp, c_read, c_write, c_w1h, out)
                    penalty = new_cost - warm_cost
        effective_type = decision.task_type
        before.add(old_tier, effective_type, old_model, old_cost)
        after.add(new_tier, effective_type, tier_model[new_tier], new_cost)
        if old_cost is not None and new_cost is not None and warm_cost is not None:
            result.comparable_calls += 1
            result.comparable_before_usd += old_cost
            result.comparable_after_usd += new_cost
            result.comparable_after_warm_usd += warm_cost
            result.switch_penalty_usd += penalty
        is_changed = old_tier != new_tier or old_bare != tier_bare[new_tier] or old_numbers != tier_numbers[new_tier]
        if not is_changed and old_model != tier_model[new_tier]:
            result.renamed_calls += 1
        if keep_calls:
            result.calls.append(make_call(n, r, decision, how, old_tier, old_model, old_cost, new_cost,
                                          n_inp + n_read + n_write, recounted, penalty))
        if is_changed:
            result.changed_calls += 1
            key = -abs(new_cost - old_cost) if old_cost is not None and new_cost is not None else math.inf
            changed.append((key, n, (decision, how, old_tier, old_model, old_cost, new_cost, n_inp + n_read + n_write,
                                     recounted, penalty)))
    changed.sort(key=lambda item: (item[0], item[1]))
    result.changed = [make_call(n, rows[n], *payload) for _, n, payload in changed[:max(top, 0)]]
    result.distinct_prompts_classified = decider.classified
    _notes(result, decider, cfg)
    result.seconds = time.perf_counter() - t0
    return result


def _notes(result: DryReplay, decider: Decider, cfg: "Config") -> None:
    decided = result.decided
    if decider.which in ("llm", "hybrid") and decided.get("classified"):
        result.notes.append(f"the config's classifier is {decider.which}: dry replay classified prompts with the local "
                            "classifier (the llm classifier costs money; use --live --llm-classifier)")
    if decided.get("static"):
        result.notes.append(f"{decided['static']} call(s) without a recorded task type went to the default tier: the "
                            "config's classifier is static (try --classifier local)")
    if decided.get("no_prompt"):
        result.notes.append(f"{decided['no_prompt']} call(s) had neither a task type nor prompt text: routed to the "
                            f"default tier {cfg.routing.default_tier}")
    if result.not_recounted_calls:
        result.notes.append(f"{result.not_recounted_calls} call(s) change tokenizer family but have no stored prompt "
                            "text: their input token counts were kept as recorded")
    if result.recounted_calls:
        result.notes.append(f"{result.recounted_calls} call(s) change tokenizer family: input tokens scaled by the "
                            "ratio of the prompt text's token counts (new/old)")
    if result.old_repriced_calls:
        result.notes.append(f"{result.old_repriced_calls} call(s) recorded unpriced were priced with today's prices "
                            "for their 'before' cost")
    if result.renamed_calls:
        result.notes.append(f"{result.renamed_calls} call(s) only change the model's name (e.g. a dated id of the same "
                            "model at the same price): not counted as changed")
    for side, name in ((result.before, "before"), (result.after, "after")):
        if side.unpriced_calls:
            models = ", ".join(f"{m} ({k})" for m, k in sorted(side.unpriced_models.items()))
            result.notes.append(f"{name}: {side.unpriced_calls} unpriced call(s), not counted as $0: {models} "
                                "(add prices: to the config)")


@dataclass
class RoutingSummary:
    """What routing would have done to these calls (for the report's "with routing" section)."""

    calls: int
    tasks: int
    comparable_calls: int  # priced before and after; the money figures cover these
    before_usd: float
    after_usd: float  # cache-aware
    after_warm_usd: float  # without the cache penalty
    switch_penalty_usd: float
    top_tier: str
    top_tier_share: float | None
    tiers: dict[str, int]  # calls per tier after routing
    rules: dict[str, int]  # calls per agent rule
    unpriced_before: int
    unpriced_after: int
    notes: list[str]

    @property
    def saved_usd(self) -> float:
        return self.before_usd - self.after_usd


def with_routing(loaded: "LoadedConfig", rows: list[dict[str, Any]], classifier: str | None = None) -> RoutingSummary:
    """Cache-aware re-pricing of `rows` (ledger rows or imported calls, any order) under `loaded`."""
    rows = sorted(rows, key=lambda r: (r.get("started_at") or 0.0, r.get("id") or ""))
    r = dry_replay(loaded, rows, Selection("rows"), classifier=classifier, top=0)
    return RoutingSummary(
        r.after.calls, r.tasks, r.comparable_calls, r.comparable_before_usd, r.comparable_after_usd,
        r.comparable_after_warm_usd, r.switch_penalty_usd, r.top_tier, r.top_tier_share,
        {t: b.calls for t, b in r.after.tiers.items()}, dict(r.rules), r.before.unpriced_calls,
        r.after.unpriced_calls, list(r.notes),
    )
