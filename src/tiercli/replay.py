"""`tier replay`: what recorded calls would have cost, and risked, under another config.

Pure core; tiercli.render_replay draws and shapes the results, cli.py parses options. Dry replay and
outcome replay never import litellm and never call a model; live replay goes through tiercli.ask.

Dry replay (the default), per recorded call of kind `main` or `import` (classifier, compaction and
replay calls are overhead or copies: they are counted, not replayed):
- Decision under the new config: the task type recorded on the call if it has one (mapped through
  routing.task_types, else through its label and routing.labels); else the config's classifier on the
  recorded prompt text (`prompt_text`; for imported agent calls that is the user request the call
  served). A `local`, `hybrid` or `llm` classifier is replayed with the local classifier (the llm one
  costs money; it is only used by a live replay with --llm-classifier); a `static` one routes an
  untyped call to routing.default_tier, as `tier ask` would. No prompt text: default tier, counted.
  A recorded `--tier` override is not replayed: the new config decides.
- Before: the call as recorded, its tier (for imported calls, which have none, the tier of the new
  config whose model is the one the call used, comparing bare names without a -YYYYMMDD date
  suffix; else no tier), model and cost (recorded cost; a call recorded unpriced is priced now if the
  config's prices know its model, else it stays unpriced).
- After: the new tier's primary model, re-priced from the recorded token buckets (uncached input,
  cache read, 5-minute and 1-hour cache writes, output). Output tokens are kept. When the tokenizer
  family changes (tiercli.tokens.family) and the prompt text is stored, every input bucket is scaled
  by count(text, new model) / count(text, old model), each rounded half up; without text the counts
  are kept and the calls counted as not recounted.
- Unpriced calls (either side) are counted and their models named; their cost is never taken as $0.
  `comparable` compares only the calls priced on both sides.
- Changed calls: a different tier or a different model (bare names); the top N by |after - before|.

Outcome replay (`--outcomes`): see the tiercli.replay_outcomes package.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable

from tiercli.errors import InputError, UsageError
from tiercli.pricing import PriceBook, UnitPrice
from tiercli.router import Classification, Decision, decide
from tiercli.taxonomy import LABEL_OF_TASK_TYPE

if TYPE_CHECKING:
    from tiercli.config import Config, LoadedConfig
    from tiercli.ledger.db import Ledger

REPLAYED_KINDS = ("main", "import")
NONE_KEY = "(none)"
DEFAULT_TOP = 10
CLASSIFIERS = ("static", "local", "hybrid", "llm")
_DATE_SUFFIX = re.compile(r"-\d{8}$")

_COLUMNS = (
    "id", "started_at", "session", "kind", "source", "task_type", "decision_source", "tier", "requested_model",
    "served_model", "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
    "output_tokens", "cost_usd", "unpriced", "status", "prompt_text",
)


def bare_model(model: str | None) -> str | None:
    """'anthropic/claude-sonnet-4-5-20250929' -> 'claude-sonnet-4-5' (route prefix and date dropped)."""
    if not model:
        return None
    return _DATE_SUFFIX.sub("", model.rsplit("/", 1)[-1]).lower()


# -- selecting calls -----------------------------------------------------------------------------
@dataclass
class Selection:
    source: str  # "ledger" | "claude-code"
    session: str | None = None
    since: float | None = None
    paths: list[str] = field(default_factory=list)
    location: str | None = None  # the ledger file
    skipped: dict[str, int] = field(default_factory=dict)  # kind -> calls not replayed
    parse: dict[str, int] | None = None  # claude-code parse stats


def select_ledger(ledger: "Ledger", *, session: str | None = None, since: float | None = None,
                  with_response: bool = False) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Calls of kind main/import in the window, oldest first, and the other kinds' counts."""
    where, params = ["1=1"], []
    if session is not None:
        where.append("session = ?")
        params.append(session)
    if since is not None:
        where.append("started_at >= ?")
        params.append(since)
    cond = " AND ".join(where)
    kinds = {r["kind"]: r["n"] for r in ledger._select(f"SELECT kind, COUNT(*) AS n FROM calls WHERE {cond} GROUP BY kind", params)}
    skipped = {k: n for k, n in sorted(kinds.items()) if k not in REPLAYED_KINDS}
    cols = ", ".join(_COLUMNS) + (", response_text" if with_response else "")
    marks = ", ".join(f"'{k}'" for k in REPLAYED_KINDS)
    rows = ledger._select(f"SELECT {cols} FROM calls WHERE {cond} AND kind IN ({marks}) ORDER BY started_at, id", params)
    return rows, skipped


def select_claude_code(paths: Iterable[str], prices: PriceBook, *, session: str | None = None,
                       since: float | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Claude Code logs parsed in memory (nothing written), filtered like the ledger."""
    from tiercli.importers import parse_claude_code

    rows, stats = parse_claude_code(list(paths), prices)
    if session is not None:
        rows = [r for r in rows if r.get("session") == session]
    if since is not None:
        rows = [r for r in rows if (r.get("started_at") or 0) >= since]
    rows.sort(key=lambda r: (r.get("started_at") or 0, r["id"]))
    return rows, {"files": stats.files, "lines": stats.lines, "malformed": stats.malformed,
                  "duplicates": stats.duplicates, "synthetic_skipped": stats.synthetic_skipped}


# -- prices and decisions ------------------------------------------------------------------------
@dataclass(frozen=True)
class FloatPrice:
    """Dollars per token as floats (a replay sums many calls: plain arithmetic, looked up once)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    source: str

    @classmethod
    def of(cls, p: UnitPrice) -> "FloatPrice":
        return cls(float(p.input), float(p.output), float(p.cache_read), float(p.cache_write), float(p.cache_write_1h),
                   p.source)

    def cost(self, inp: int, read: int, write: int, write_1h: int, out: int) -> float:
        return (self.input * inp + self.cache_read * read + self.cache_write * (write - write_1h)
                + self.cache_write_1h * write_1h + self.output * out)


class Pricer:
    """Unit prices per model, looked up once (config prices, deployment prices, litellm's map)."""

    def __init__(self, cfg: "Config"):
        self.book = PriceBook(cfg.prices)
        self.params = {}
        for d in cfg.model_list:
            self.params.setdefault(d.model, d.litellm_params)
        self._cache: dict[str, FloatPrice | None] = {}

    def price(self, model: str | None) -> FloatPrice | None:
        if not model:
            return None
        if model not in self._cache:
            found = self.book.lookup(model, self.params.get(model))
            self._cache[model] = FloatPrice.of(found) if found is not None else None
        return self._cache[model]


class Decider:
    """Re-decides calls under a config without calling any model; one classification per distinct text."""

    def __init__(self, loaded: "LoadedConfig", classifier: str | None = None):
        self.cfg = loaded.config
        self.which = classifier or self.cfg.routing.classifier
        if self.which not in CLASSIFIERS:
            raise UsageError(f"unknown --classifier {self.which!r}", f"use {', '.join(CLASSIFIERS)}")
        self._by_text: dict[str, Decision] = {}
        self._by_type: dict[str, Decision] = {}
        self._default: Decision | None = None
        self.classified = 0  # distinct texts classified

    def default(self) -> Decision:
        if self._default is None:
            self._default = decide(self.cfg)
        return self._default

    def decide(self, task_type: str | None, text: str | None) -> tuple[Decision, str]:
        """(decision, how): how is recorded | classified | no_prompt | static."""
        if task_type:
            found = self._by_type.get(task_type)
            if found is None:
                if task_type in self.cfg.routing.task_types:  # as `tier ask -t` would: source static
                    found = decide(self.cfg, task_type=task_type)
                else:  # a type this config does not map: its label, else the default tier
                    c = Classification("recorded", task_type, LABEL_OF_TASK_TYPE.get(task_type), None,
                                       (f"task type {task_type} from the record, not in routing.task_types",))
                    found = decide(self.cfg, classification=c)
                self._by_type[task_type] = found
            return found, "recorded"
        if text is None or not text.strip():
            return self.default(), "no_prompt"
        if self.which == "static":
            return self.default(), "static"
        found = self._by_text.get(text)
        if found is None:
            from tiercli.classify import run_local

            found = self._by_text[text] = decide(self.cfg, classification=run_local(text))
            self.classified += 1
        return found, "classified"


class Recounter:
    """Input-token ratios between tokenizer families, one count per (text, family)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}

    def count(self, text: str, model: str) -> int:
        from tiercli import tokens

        key = (text, tokens.family(model))
        n = self._counts.get(key)
        if n is None:
            n = self._counts[key] = tokens.count(text, model)
        return n

    def ratio(self, text: str, old_model: str, new_model: str) -> float:
        old = self.count(text, old_model)
        return self.count(text, new_model) / old if old else 1.0


def _scale(n: int, ratio: float) -> int:
    return int(math.floor(n * ratio + 0.5))


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
    how: str  # recorded | classified | no_prompt | static
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
    comparable_after_usd: float = 0.0
    decided: dict[str, int] = field(default_factory=lambda: {"recorded": 0, "classified": 0, "no_prompt": 0, "static": 0})
    distinct_prompts_classified: int = 0
    recounted_calls: int = 0
    not_recounted_calls: int = 0  # tokenizer family changed but no prompt text
    old_repriced_calls: int = 0  # recorded unpriced, priced now by the config's prices
    changed_calls: int = 0
    changed: list[CallReplay] = field(default_factory=list)  # top N
    calls: list[CallReplay] = field(default_factory=list)  # every call, only when asked (live)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0


def _tier_of_model(cfg: "Config") -> dict[str, str]:
    out: dict[str, str] = {}
    for tier in cfg.routing.tiers:
        for d in cfg.deployments(tier):
            out.setdefault(bare_model(d.model) or "", tier)
    return out


def dry_replay(loaded: "LoadedConfig", rows: list[dict[str, Any]], selection: Selection, *,
               classifier: str | None = None, top: int = DEFAULT_TOP, keep_calls: bool = False) -> DryReplay:
    """Re-decide and re-price `rows` (ledger-row dicts) under `loaded`. Calls nothing."""
    import time

    from tiercli import tokens

    t0 = time.perf_counter()
    cfg = loaded.config
    decider = Decider(loaded, classifier)
    pricer = Pricer(cfg)
    recounter = Recounter()
    result = DryReplay(loaded.source, loaded.hash, decider.which, selection)
    model_tier = _tier_of_model(cfg)
    tier_model = {t: cfg.primary_model(t) for t in cfg.routing.tiers}
    tier_price = {t: pricer.price(m) for t, m in tier_model.items()}
    before, after = result.before, result.after
    changed: list[tuple[float, int, tuple]] = []
    decided = result.decided

    bare_of: dict[str | None, str | None] = {}
    tier_bare = {t: bare_model(m) for t, m in tier_model.items()}
    tier_family = {t: tokens.family(m) for t, m in tier_model.items()}

    def old_identity(model: str | None) -> tuple[str | None, str | None]:
        """(bare name, tokenizer family) of a recorded model, computed once per model."""
        found = bare_of.get(model)
        if found is None:
            found = bare_of[model] = (bare_model(model), tokens.family(model) if model else None)
        return found

    def make_call(n: int, r: dict[str, Any], decision: Decision, how: str, old_tier: str | None, old_model: str | None,
                  old_cost: float | None, new_cost: float | None, input_after: int, recounted: bool) -> CallReplay:
        return CallReplay(
            r["id"], r.get("session"), r.get("started_at"), r.get("kind") or "main", r.get("source"),
            decision.task_type, how, old_tier, decision.tier, old_model, tier_model[decision.tier], old_cost, new_cost,
            (r.get("input_tokens") or 0) + (r.get("cache_read_tokens") or 0) + (r.get("cache_write_tokens") or 0),
            input_after, r.get("output_tokens") or 0, recounted, decision if keep_calls else None,
        )

    for n, r in enumerate(rows):
        text = r.get("prompt_text")
        decision, how = decider.decide(r.get("task_type"), text)
        decided[how] += 1
        new_tier = decision.tier
        old_model = r.get("served_model") or r.get("requested_model")
        old_bare, old_family = old_identity(old_model)
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
        if old_family is not None and old_family != tier_family[new_tier] and (inp or read or write):
            if text:
                ratio = recounter.ratio(text, old_model, tier_model[new_tier])
                n_inp, n_read, n_write, n_w1h = _scale(inp, ratio), _scale(read, ratio), _scale(write, ratio), _scale(w1h, ratio)
                n_w1h = min(n_w1h, n_write)
                recounted = True
                result.recounted_calls += 1
            else:
                result.not_recounted_calls += 1
        price = tier_price[new_tier]
        new_cost = price.cost(n_inp, n_read, n_write, n_w1h, out) if price is not None else None
        effective_type = decision.task_type
        before.add(old_tier, effective_type, old_model, old_cost)
        after.add(new_tier, effective_type, tier_model[new_tier], new_cost)
        if old_cost is not None and new_cost is not None:
            result.comparable_calls += 1
            result.comparable_before_usd += old_cost
            result.comparable_after_usd += new_cost
        is_changed = old_tier != new_tier or old_bare != tier_bare[new_tier]
        if keep_calls:
            result.calls.append(make_call(n, r, decision, how, old_tier, old_model, old_cost, new_cost,
                                          n_inp + n_read + n_write, recounted))
        if is_changed:
            result.changed_calls += 1
            key = -abs(new_cost - old_cost) if old_cost is not None and new_cost is not None else math.inf
            changed.append((key, n, (decision, how, old_tier, old_model, old_cost, new_cost, n_inp + n_read + n_write,
                                     recounted)))
    changed.sort(key=lambda item: (item[0], item[1]))
    result.changed = [make_call(n, rows[n], *payload) for _, n, payload in changed[:max(top, 0)]]
    result.distinct_prompts_classified = decider.classified
    if decider.which in ("llm", "hybrid") and decided["classified"]:
        result.notes.append(f"the config's classifier is {decider.which}: dry replay classified prompts with the local "
                            "classifier (the llm classifier costs money; use --live --llm-classifier)")
    if decided["static"]:
        result.notes.append(f"{decided['static']} call(s) without a recorded task type went to the default tier: the "
                            "config's classifier is static (try --classifier local)")
    if decided["no_prompt"]:
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
    for side, name in ((before, "before"), (after, "after")):
        if side.unpriced_calls:
            models = ", ".join(f"{m} ({k})" for m, k in sorted(side.unpriced_models.items()))
            result.notes.append(f"{name}: {side.unpriced_calls} unpriced call(s), not counted as $0: {models} "
                                "(add prices: to the config)")
    result.seconds = time.perf_counter() - t0
    return result


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
