"""`tier tune`: search cascade policies on an outcome matrix, keep the Pareto frontier of quality
against cost, choose the cheapest policy within `within` of the best quality, and cross-validate.

The policy space (every point is a policy `tier run` can follow, and a config `run:` section):
- order: the tiers tried, in order (default: every sequence of distinct mapped tiers when there are at
  most four, e.g. tier1,tier2,tier3 or tier2,tier3 or tier3 alone, i.e. always:tier3; else cheapest
  first and its suffixes);
- caps: one cap (or none) per tier from a grid (default per tier: none, and the dearest and the
  90th-percentile cost of that tier's successful attempts on the tasks searched, rounded up);
- start: per task type, where in the order its tasks start (tasks without a type, types with fewer
  than `min_type_tasks` tasks in the search, and types not seen there start at the first tier of the
  order; at most MAX_TYPES types).

The objective is `success` (share of tasks with quality >= threshold; for 0/1 tables the resolved
rate) or `quality` (mean quality of the final attempt). Speed: for one caps choice, tasks are summed
per (task type, success pattern over the tiers), so a cascade's totals for a type cost a few
additions per pattern instead of a pass over the tasks; the per-type choices of one (order, caps)
combine into a frontier by Pareto-filtered sums (the types are independent given order and caps),
dropping a partial policy as soon as its best possible completion is no better than a policy
already found (exact: the frontier is the same, only found faster).
`simulate.simulate` is the task-by-task reference the search agrees with (tested).

Cross-validation: tasks go to k folds by a hash of their id (the same folds every run); for each
fold the policy is searched and chosen on the other folds only, then scored on the held-out fold,
next to the oracle and always:<tier> on the same held-out tasks. Held-out sums pool to one figure
per policy over the whole table (each task is held out exactly once).
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import math
import operator
from dataclasses import dataclass, field
from typing import Callable, Sequence

from tiercli.errors import UsageError
from tiercli.replay_outcomes.simulate import Matrix, Policy, Spec, describe, simulate

EPS = 1e-9
DEFAULT_QUANTILES = (1.0, 0.9)
DEFAULT_WITHIN = 0.01
DEFAULT_FOLDS = 5
DEFAULT_MIN_TYPE_TASKS = 10  # a type with fewer tasks shares the default start (too few to learn from)
MAX_TYPES = 32  # the per-type choices multiply: beyond this the search stops being a matter of seconds
OBJECTIVES = ("success", "quality")


@dataclass(frozen=True)
class Point:
    """One policy on the frontier: objective sum and cost sum over the tasks searched."""

    value: float
    cost: float
    order: tuple[int, ...]
    caps: tuple[float | None, ...]
    start: tuple[tuple[str, int], ...]  # task type -> start tier index (only those not at order[0])

    def spec(self, tiers: list[str]) -> Spec:
        s = Spec("cascade", self.order, self.start, self.caps)
        return Spec("cascade", self.order, self.start, self.caps, name=describe(s, tiers))


@dataclass
class Search:
    tasks: int
    frontier: list[Point]  # cost ascending, value strictly ascending
    settings: int  # (order, caps) pairs evaluated
    orders: list[tuple[int, ...]]
    cap_grid: list[list[float | None]]  # per tier index
    groups: list[str]  # task types with their own start tier
    rare_types: int = 0  # types with fewer than min_type_tasks tasks: they share the default start

    def best(self) -> Point:
        return self.frontier[-1]

    def choose(self, within: float) -> Point:
        """The cheapest frontier point whose mean value is within `within` of the best's."""
        floor = self.best().value - within * self.tasks - EPS
        return next(p for p in self.frontier if p.value >= floor)


def default_cap_grid(m: Matrix, quantiles: Sequence[float] = DEFAULT_QUANTILES) -> list[list[float | None]]:
    """Per tier: no cap, and caps at quantiles of the costs of that tier's *successful* attempts (rounded
    up to 3 significant digits, so the attempt at the quantile still succeeds). A cap at the dearest
    success loses nothing and cuts every failure that cost more; lower ones trade successes for money."""
    grid: list[list[float | None]] = []
    for k in range(len(m.tiers)):
        costs = sorted(c[k] for q, c in zip(m.quality, m.cost) if q[k] >= m.threshold)
        caps: list[float | None] = [None]
        for q in quantiles:
            v = _ceil3(costs[min(len(costs) - 1, max(0, math.ceil(q * len(costs)) - 1))]) if costs else 0.0
            if v > 0 and v not in caps:
                caps.append(v)
        grid.append(caps)
    return grid


def _ceil3(x: float) -> float:
    """x rounded up to 3 significant digits (never below x)."""
    if x <= 0:
        return 0.0
    scale = 10 ** (2 - int(math.floor(math.log10(x))))
    up = math.ceil(x * scale - 1e-9) / scale
    return up if up >= x else math.ceil(x * scale) / scale


def default_orders(n: int) -> list[tuple[int, ...]]:
    """Every sequence of distinct tiers (up to four tiers), else cheapest first and its suffixes. A
    sequence is the whole cascade of tasks without a listed type; typed tasks may start further in."""
    if n > 4:
        return [tuple(range(i, n)) for i in reversed(range(n))]
    return [o for size in range(1, n + 1) for o in itertools.permutations(range(n), size)]  # simplest first: ties keep it


_BY_COST_THEN_VALUE = operator.itemgetter(0, 1)


def _pareto(points: list) -> list:
    """(cost, -value, payload) -> the non-dominated ones, cost ascending (ties: the first listed wins)."""
    points.sort(key=_BY_COST_THEN_VALUE)  # stable
    out, best = [], math.inf
    for p in points:
        if p[1] < best - EPS:
            out.append(p)
            best = p[1]
    return out


class _Staircase:
    """The frontier found so far, (cost, -value, payload) by cost; answers "is this weakly dominated?"
    by bisection. Points found earlier win ties, as in _pareto."""

    def __init__(self) -> None:
        self.points: list = []
        self.costs: list[float] = []

    def dominated(self, cost: float, neg_value: float) -> bool:
        i = bisect.bisect_right(self.costs, cost) - 1  # the best value at this cost or less
        return i >= 0 and self.points[i][1] <= neg_value + EPS

    def add(self, points: list) -> None:
        if points:
            self.points = _pareto(self.points + points)
            self.costs = [p[0] for p in self.points]


def _aggregate(gidx: list[int], ngroups: int, cols: list[tuple[list[int], list[float], list[float]]],
               ntiers: int) -> list[dict[int, list[float]]]:
    """Per group: success pattern -> [count, cost per tier..., value per tier...] under one caps choice."""
    keys = [g << ntiers for g in gidx]
    for bits, _, _ in cols:
        keys = [key | b for key, b in zip(keys, bits)]
    width = 1 + 2 * ntiers
    sums: dict[int, list[float]] = {}
    for key in keys:
        acc = sums.get(key)
        if acc is None:
            sums[key] = acc = [0.0] * width
        acc[0] += 1
    for k, (_, costs, values) in enumerate(cols):
        for key, c in zip(keys, costs):
            sums[key][1 + k] += c
        for key, v in zip(keys, values):
            sums[key][1 + ntiers + k] += v
    agg: list[dict[int, list[float]]] = [dict() for _ in range(ngroups)]
    mask = (1 << ntiers) - 1
    for key in sorted(sums):
        agg[key >> ntiers][key & mask] = sums[key]
    return agg


def _chain_total(pats: dict[int, list[float]], chain: tuple[int, ...], ntiers: int) -> tuple[float, float]:
    """(cost, -value) of a cascade over one group's patterns."""
    cost = value = 0.0
    last = len(chain) - 1
    for pat, acc in pats.items():
        for i, k in enumerate(chain):
            cost += acc[1 + k]
            if pat >> k & 1 or i == last:
                value += acc[1 + ntiers + k]
                break
    return cost, -value


def search(m: Matrix, *, orders: list[tuple[int, ...]] | None = None,
           cap_grid: list[list[float | None]] | None = None, objective: str = "success",
           by_type: bool = True, min_type_tasks: int = DEFAULT_MIN_TYPE_TASKS) -> Search:
    """The frontier over orders x caps x start tier per task type (see the module docstring)."""
    n = len(m.tiers)
    orders = orders or default_orders(n)
    cap_grid = cap_grid or default_cap_grid(m)
    sizes: dict[str, int] = {}
    for g in (m.groups if by_type else ()):
        if g is not None:
            sizes[g] = sizes.get(g, 0) + 1
    groups = sorted(g for g, size in sizes.items() if size >= min_type_tasks)
    if len(groups) > MAX_TYPES:
        raise UsageError(f"{len(groups)} task types with at least {min_type_tasks} tasks each: the search takes at most "
                         f"{MAX_TYPES}", "choose a coarser --by column, raise --min-type-tasks, or --by none")
    gpos: dict[str | None, int] = {g: i for i, g in enumerate(groups)}
    gidx = [gpos.get(g, len(groups)) if by_type else 0 for g in m.groups]  # last slot: no type
    ngroups = len(groups) + 1
    thr = m.threshold
    # per tier and cap: success bit, capped cost and objective value of every task
    cols: list[list[tuple[list[int], list[float], list[float]]]] = []
    for k in range(n):
        per_cap = []
        for cap in cap_grid[k]:
            bits, costs, values = [], [], []
            for row_q, row_c in zip(m.quality, m.cost):
                q, c = row_q[k], row_c[k]
                if cap is not None and c > cap:
                    q, c = 0.0, cap
                ok = q >= thr
                bits.append((1 << k) if ok else 0)
                costs.append(c)
                values.append((1.0 if ok else 0.0) if objective == "success" else q)
            per_cap.append((bits, costs, values))
        cols.append(per_cap)
    chains = sorted({o[i:] for o in orders for i in range(len(o))})
    found = _Staircase()
    settings = 0
    for cap_choice in itertools.product(*(range(len(g)) for g in cap_grid)):
        caps = tuple(cap_grid[k][i] for k, i in enumerate(cap_choice))
        agg = _aggregate(gidx, ngroups, [cols[k][i] for k, i in enumerate(cap_choice)], n)
        active = [g for g in range(ngroups) if agg[g]]
        totals = {(g, ch): _chain_total(agg[g], ch, n) for g in active for ch in chains}
        for order in orders:
            if any(cap_choice[k] for k in range(n) if k not in order):
                continue  # a cap on a tier the order never tries changes nothing: judged once, uncapped
            settings += 1
            opts = [_pareto([(*totals[(g, order[s:])], s) for s in (range(len(order)) if g < len(groups) else (0,))])
                    for g in active]
            # the best the groups not yet added could still contribute: cheapest cost, best value
            rest_c, rest_v = [0.0] * (len(active) + 1), [0.0] * (len(active) + 1)
            for j in reversed(range(len(active))):
                rest_c[j] = rest_c[j + 1] + min(o[0] for o in opts[j])
                rest_v[j] = rest_v[j + 1] + min(o[1] for o in opts[j])
            frontier = [(0.0, 0.0, ())]
            for j, group in enumerate(active):
                frontier = _pareto([(fc + c, fv + v, fp + ((group, s),) if s else fp)
                                    for fc, fv, fp in frontier for c, v, s in opts[j]])
                # a partial policy whose best completion is no better than a policy already found is dropped
                frontier = [f for f in frontier if not found.dominated(f[0] + rest_c[j + 1], f[1] + rest_v[j + 1])]
                if not frontier:
                    break
            found.add([(c, v, (order, caps, p)) for c, v, p in frontier])
    points = [Point(-v, c, order, caps, tuple((groups[g], order[s]) for g, s in p))
              for c, v, (order, caps, p) in found.points]
    return Search(len(m), points, settings, list(orders), cap_grid, groups, len(sizes) - len(groups))


# -- cross-validation ----------------------------------------------------------------------------
def fold_of(task_id: str, k: int) -> int:
    return int.from_bytes(hashlib.sha256(task_id.encode("utf-8")).digest()[:8], "big") % k


@dataclass
class Fold:
    index: int
    train: list[int]
    test: list[int]
    chosen: Point | None = None
    policies: dict[str, Policy] = field(default_factory=dict)  # name -> scored on the held-out tasks


@dataclass
class CrossValidation:
    k: int
    folds: list[Fold]
    pooled: dict[str, Policy]  # name -> held-out sums over all folds


def baselines(m: Matrix) -> list[Spec]:
    n = len(m.tiers)
    specs = [Spec("oracle", name="oracle")]
    specs += [Spec("always", (k,), name=f"always:{m.tiers[k]}") for k in range(n)]
    specs.append(Spec("cascade", tuple(range(n)), name="cascade"))
    return specs


def cross_validate(m: Matrix, k: int, within: float, run_search: Callable[[Matrix], Search]) -> CrossValidation:
    """Choose on k-1 folds, score on the held-out one, k times; baselines on the same held-out tasks."""
    if k < 2:
        raise UsageError("--folds must be at least 2")
    if len(m) < k:
        raise UsageError(f"--folds {k}: the table has only {len(m)} complete task(s)", "use fewer folds")
    fold_ids = [fold_of(t, k) for t in m.task_ids]
    folds: list[Fold] = []
    pooled: dict[str, Policy] = {}
    for f in range(k):
        test = [i for i, x in enumerate(fold_ids) if x == f]
        train = [i for i, x in enumerate(fold_ids) if x != f]
        fold = Fold(f, train, test)
        folds.append(fold)
        if not test or not train:
            continue
        fold.chosen = run_search(m.subset(train)).choose(within)
        held_out = m.subset(test)
        specs = [Spec("cascade", fold.chosen.order, fold.chosen.start, fold.chosen.caps, name="tuned"), *baselines(m)]
        for spec in specs:
            p = simulate(held_out, spec)
            fold.policies[spec.name] = p
            total = pooled.setdefault(spec.name, Policy(spec.name, finished=dict.fromkeys(m.tiers, 0)))
            for attr in ("tasks", "quality_sum", "successes", "cost_usd", "attempts", "capped"):
                setattr(total, attr, getattr(total, attr) + getattr(p, attr))
            for t, c in p.finished.items():
                total.finished[t] += c
    return CrossValidation(k, folds, pooled)


# -- the whole `tier tune` -----------------------------------------------------------------------
@dataclass
class TuneResult:
    matrix: Matrix
    search: Search
    chosen: Point
    in_sample: dict[str, Policy]  # tuned (the chosen policy) and the baselines on every task
    cv: CrossValidation
    objective: str
    within: float
    seconds: float = 0.0


def tune(m: Matrix, *, within: float = DEFAULT_WITHIN, folds: int = DEFAULT_FOLDS, objective: str = "success",
         orders: list[tuple[int, ...]] | None = None, cap_grid: dict[str, list[float | None]] | None = None,
         by_type: bool = True, min_type_tasks: int = DEFAULT_MIN_TYPE_TASKS) -> TuneResult:
    """Search on every task (the policy to write), then k-fold cross-validate the same procedure."""
    import time

    if objective not in OBJECTIVES:
        raise UsageError(f"unknown --objective {objective!r}", f"use {' or '.join(OBJECTIVES)}")
    if not (0 <= within <= 1):
        raise UsageError("--within is a share of quality between 0 and 1, e.g. 0.01 for one point")
    t0 = time.perf_counter()
    grid = [cap_grid[t] for t in m.tiers] if cap_grid else None

    def run_search(sub: Matrix) -> Search:
        return search(sub, orders=orders, cap_grid=grid, objective=objective, by_type=by_type,
                      min_type_tasks=min_type_tasks)

    full = run_search(m)
    chosen = full.choose(within)
    in_sample = {"tuned": simulate(m, chosen.spec(m.tiers))}
    for spec in baselines(m):
        in_sample[spec.name] = simulate(m, spec)
    cv = cross_validate(m, folds, within, run_search)
    return TuneResult(m, full, chosen, in_sample, cv, objective, within, time.perf_counter() - t0)
