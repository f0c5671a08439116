"""`tier replay --outcomes`: an outcome table -> a Matrix (priced, mapped to tiers) -> policies judged.

Costs: the table's cost; else input/output tokens (columns, or counted offline from the prompt and
the response text) priced at the config's primary model of the mapped tier. Tasks lacking an outcome
for a mapped model are left out of every policy (counted), so all policies see the same tasks.

The `config` policy is the config's classifier on each task's prompt (no prompt: the default tier),
served by its tier's table model (a tier with no table model: the next mapped tier above, else the
nearest below). The other policies are simulated by tiercli.replay_outcomes.simulate.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tiercli.errors import InputError, UsageError
from tiercli.replay_outcomes.parse import parse_policy
from tiercli.replay_outcomes.simulate import Matrix, Policy, Spec, simulate, simulate_fixed

if TYPE_CHECKING:
    from tiercli.config import Config, LoadedConfig
    from tiercli.replay_outcomes.table import OutcomeTable

NONE_KEY = "(none)"
DEFAULT_TOP = 10
DEFAULT_SUCCESS_THRESHOLD = 1.0
DEFAULT_POLICIES = ("config", "always", "cascade", "oracle")  # "always" expands to every mapped tier


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
class Priced:
    matrix: Matrix
    incomplete: int
    pricing: dict[str, int]  # how each (task, model) cost was found
    priced_with: dict[str, str]  # tier -> config model priced for it (when tokens were priced)
    zero_cost: int = 0  # outcomes whose cost is $0 (often a missing token record, not a free answer)


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
    pricing: dict[str, int]
    pricing_models: dict[str, str]
    decided: dict[str, int]
    remapped: int  # config decisions on an unmapped tier, served by the next mapped tier
    changed_tasks: int
    changed: list[TaskRoute]
    notes: list[str] = field(default_factory=list)
    config_decided: dict[str, int] = field(default_factory=dict)  # tier the config chose (before remapping)
    config_task_types: dict[str, int] = field(default_factory=dict)
    caps: dict[str, float] = field(default_factory=dict)
    start: dict[str, str] = field(default_factory=dict)
    groups: dict[str, int] = field(default_factory=dict)  # the table's task types -> tasks

    def policy(self, name: str) -> Policy:
        return next(p for p in self.policies if p.name == name)


def serving_tier(cfg: "Config", tier: str, mapped: list[str]) -> str:
    """A decided tier with no table model is served by the next mapped tier above it, else the nearest below."""
    if tier in mapped:
        return tier
    rank = cfg.tier_rank(tier)
    above = [t for t in mapped if cfg.tier_rank(t) > rank]
    return above[0] if above else mapped[-1]


def build_matrix(loaded: "LoadedConfig", table: "OutcomeTable", mapping: dict[str, str],
                 threshold: float = DEFAULT_SUCCESS_THRESHOLD) -> Priced:
    """The table's complete tasks, priced, as a Matrix over the mapped tiers (config order)."""
    from tiercli import tokens
    from tiercli.replay import Pricer

    cfg = loaded.config
    tiers = [t for t in cfg.routing.tiers if t in mapping.values()]
    model_of = {tier: model for model, tier in mapping.items()}
    pricer = Pricer(cfg)
    complete = [t for t in table.task_ids if all(m in table.outcomes[t] for m in mapping)]
    if not complete:
        raise InputError(f"no task in {table.source} has an outcome for every mapped model ({', '.join(mapping)})")
    pricing = {"cost_usd": 0, "token_columns": 0, "counted": 0}
    priced_with: dict[str, str] = {}
    qual: list[tuple[float, ...]] = []
    cost: list[tuple[float, ...]] = []
    for task in complete:
        prompt = table.prompts.get(task)
        q_row, c_row = [], []
        for tier in tiers:
            model = model_of[tier]
            o = table.outcomes[task][model]
            q_row.append(o.quality)
            if o.cost_usd is not None:
                c_row.append(o.cost_usd)
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
            c_row.append(price.cost(inp, 0, 0, 0, out))
            pricing["counted" if counted else "token_columns"] += 1
        qual.append(tuple(q_row))
        cost.append(tuple(c_row))
    matrix = Matrix(tiers, complete, [table.groups.get(t) for t in complete], qual, cost, threshold)
    zero = sum(1 for row in cost for c in row if c == 0)
    return Priced(matrix, len(table.task_ids) - len(complete), pricing, priced_with, zero)


def zero_cost_note(priced: Priced) -> list[str]:
    if not priced.zero_cost:
        return []
    return [f"{priced.zero_cost:,} outcome(s) of the mapped models cost $0 in the table (often a missing token "
            "record rather than a free answer): counted as $0"]


def policy_specs(policies: list[str] | None, cfg: "Config", tiers: list[str], caps: dict[str, float],
                 start: dict[str, str]) -> list[tuple[str, Spec | None]]:
    """--policy values (default: config, always:<each tier>, cascade, oracle) -> (name, Spec); config is None.
    Caps apply to every policy but the oracle; --start to every cascade (and run)."""
    cap_vec = tuple(caps.get(t) for t in tiers)
    out: list[tuple[str, Spec | None]] = []
    for text in policies or DEFAULT_POLICIES:
        if text == "always" and not policies:
            out += [(f"always:{t}", Spec("always", (tiers.index(t),), caps=cap_vec, name=f"always:{t}")) for t in tiers]
            continue
        kind, names = parse_policy(text, tiers)
        if kind == "config":
            out.append(("config", None))
        elif kind == "oracle":
            out.append(("oracle", Spec("oracle", name="oracle")))
        elif kind == "always":
            out.append((f"always:{names[0]}", Spec("always", (tiers.index(names[0]),), caps=cap_vec, name=f"always:{names[0]}")))
        elif kind == "cascade":
            out.append((_cascade_name(text, names, tiers), _cascade(names, tiers, start, cap_vec, text)))
        else:  # run: the config's run section, --cap and --start on top
            run_tiers = [t for t in (cfg.run.tiers or cfg.routing.tiers) if t in tiers]
            if not run_tiers:
                raise UsageError("--policy run: none of the config's run.tiers has a table model", "see --map")
            every = dict.fromkeys(run_tiers, cfg.run.cap_usd) if cfg.run.cap_usd else {}  # as tier run reads it
            merged_caps = {**every, **cfg.run.caps, **caps}
            merged_start = {g: t for g, t in {**cfg.run.start, **start}.items() if t in run_tiers}
            spec = _cascade(run_tiers, tiers, merged_start, tuple(merged_caps.get(t) for t in tiers), text)
            out.append(("run", spec))
    names_seen = [n for n, _ in out]
    dupes = sorted({n for n in names_seen if names_seen.count(n) > 1})
    if dupes:
        raise UsageError(f"--policy {dupes[0]} is given twice")
    return out


def _cascade_name(text: str, names: list[str], tiers: list[str]) -> str:
    return "cascade" if ":" not in text and names == tiers else "cascade:" + ",".join(names)


def _cascade(names: list[str], tiers: list[str], start: dict[str, str], cap_vec: tuple, text: str) -> Spec:
    for group, tier in start.items():
        if tier not in names:
            raise UsageError(f"--start {group}={tier}: {tier} is not in the cascade {','.join(names)} (--policy {text})")
    order = tuple(tiers.index(t) for t in names)
    return Spec("cascade", order, tuple(sorted((g, tiers.index(t)) for g, t in start.items())), cap_vec,
                name=_cascade_name(text, names, tiers))


def evaluate_outcomes(loaded: "LoadedConfig", table: "OutcomeTable", mapping: dict[str, str], *,
                      threshold: float = DEFAULT_SUCCESS_THRESHOLD, classifier: str | None = None,
                      top: int = DEFAULT_TOP, policies: list[str] | None = None,
                      caps: dict[str, float] | None = None, start: dict[str, str] | None = None) -> OutcomeReplay:
    """Judge the policies on an outcome table. A policy's quality is the mean quality over tasks (for
    0/1 quality, the resolved rate); its cost the sum over tasks."""
    from tiercli.replay import Decider

    cfg = loaded.config
    caps, start = dict(caps or {}), dict(start or {})
    priced = build_matrix(loaded, table, mapping, threshold)
    m = priced.matrix
    tiers = m.tiers
    specs = policy_specs(policies, cfg, tiers, caps, start)
    decider = Decider(loaded, classifier)
    decided = {"recorded": 0, "classified": 0, "no_prompt": 0, "static": 0}
    chose: dict[str, int] = dict.fromkeys(cfg.routing.tiers, 0)
    types: dict[str, int] = {}
    served: list[int] = []
    decisions = []
    remapped = 0
    if any(spec is None for _, spec in specs):
        for task in m.task_ids:
            decision, how = decider.decide(None, table.prompts.get(task))
            decided[how] += 1
            tier = serving_tier(cfg, decision.tier, tiers)
            remapped += tier != decision.tier
            chose[decision.tier] += 1
            key = decision.task_type or NONE_KEY
            types[key] = types.get(key, 0) + 1
            served.append(tiers.index(tier))
            decisions.append(decision)
    cap_vec = tuple(caps.get(t) for t in tiers)
    results = [simulate_fixed(m, "config", served, cap_vec) if spec is None else simulate(m, spec)
               for name, spec in specs]
    for (name, _), p in zip(specs, results):
        p.name = name
    by_name = {p.name: p for p in results}
    top_tier = tiers[-1]
    top_policy = by_name.get(f"always:{top_tier}") or simulate(m, Spec("always", (len(tiers) - 1,), caps=cap_vec))
    for p in results:
        p.cost_vs_top = p.cost_usd / top_policy.cost_usd if top_policy.cost_usd else None
    if len(tiers) == 2:
        weak = by_name.get(f"always:{tiers[0]}") or simulate(m, Spec("always", (0,), caps=cap_vec))
        q_weak, q_strong = weak.quality, top_policy.quality
        for p in results:
            if p.quality is not None and q_strong is not None and q_weak is not None and q_strong != q_weak:
                p.pgr = (p.quality - q_weak) / (q_strong - q_weak)
    routes: list[tuple[float, int, TaskRoute]] = []
    changed_tasks = 0
    top_k = len(tiers) - 1
    for n, k in enumerate(served):
        if k != top_k:
            changed_tasks += 1
            d = decisions[n]
            route = TaskRoute(m.task_ids[n], d.task_type, d.tier, tiers[k], top_tier, m.cost[n][top_k], m.cost[n][k],
                              m.quality[n][top_k], m.quality[n][k])
            routes.append((-abs(route.diff_usd), n, route))
    routes.sort(key=lambda item: (item[0], item[1]))
    groups: dict[str, int] = {}
    for g in m.groups:
        if g is not None:
            groups[g] = groups.get(g, 0) + 1
    notes = _notes(priced, table, mapping, decided, remapped, decider.which, caps, results, start, groups)
    return OutcomeReplay(
        loaded.source, loaded.hash, decider.which, table.describe(), dict(mapping), tiers, threshold, results,
        len(m), priced.incomplete, priced.pricing, priced.priced_with, decided, remapped, changed_tasks,
        [r for _, _, r in routes[:max(top, 0)]], notes, chose,
        dict(sorted(types.items(), key=lambda kv: (-kv[1], kv[0]))), caps, start,
        dict(sorted(groups.items(), key=lambda kv: (-kv[1], kv[0]))),
    )


def _notes(priced: Priced, table, mapping, decided, remapped, which, caps, results, start, groups) -> list[str]:
    notes = []
    if priced.incomplete:
        notes.append(f"{priced.incomplete} task(s) lack an outcome for a mapped model and were left out")
    notes += zero_cost_note(priced)
    if remapped:
        notes.append(f"{remapped} config decision(s) named a tier with no table model: served by the next mapped tier "
                     "above (else the nearest below)")
    if decided["no_prompt"]:
        notes.append(f"{decided['no_prompt']} task(s) have no prompt: the config policy sends them to the default tier")
    if decided["static"]:
        notes.append("the config's classifier is static: every task goes to the default tier (try --classifier local)")
    if which in ("llm", "hybrid") and decided["classified"]:
        notes.append(f"the config's classifier is {which}: prompts were classified with the local classifier")
    unmapped = [m for m in table.models if m not in mapping]
    if unmapped:
        notes.append(f"table model(s) not mapped to a tier, ignored: {', '.join(unmapped)}")
    run = next((p for p in results if p.name == "run"), None)
    if caps or (run is not None and run.spec is not None and any(c is not None for c in run.spec.caps)):
        cut = sum(p.capped for p in results)
        notes.append(f"caps: an attempt whose recorded cost is above its tier's cap counts as failed at the cap's cost "
                     f"({cut:,} attempt(s) cut over all policies; the oracle is uncapped). This is an approximation: "
                     "the table holds each attempt's final cost only, not what it had spent when it reached the cap")
    if start and not groups:
        notes.append("--start given but the table has no task-type column: every task starts at the cascade's first tier")
    if run is not None and run.spec is not None:
        absent = sorted(g for g, _ in run.spec.start if g not in groups)
        if absent:
            notes.append(f"run.start names task type(s) no task here has: {', '.join(absent)}")
    return notes
