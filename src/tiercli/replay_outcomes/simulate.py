"""Policies on an outcome matrix: what a routing policy would have resolved and spent, task by task.

A Matrix holds, per task and mapped tier (cheapest first), the recorded quality and cost, and the
task's type (its group) when the table has one. Policies:

- always:<tier>: one attempt on that tier.
- cascade (order, start): try the tiers of `order` in turn, from the task type's start tier (else
  the first of `order`), stop at the first success (quality >= threshold), pay every attempt; the
  task's quality is the last attempt's. It assumes a perfect verifier (the tests say pass or fail).
- oracle: per task the cheapest tier that succeeds, else the cheapest; one attempt. Knows the answer
  in advance, so no policy beats it; caps do not apply to it (it is the uncapped reference).
- a fixed tier per task (the config's classifier, decided in tiercli.replay_outcomes.evaluate).

Caps (USD per attempt, per tier): an attempt whose recorded cost is above its tier's cap counts as
failed (quality 0) at the cap's cost. This is an approximation: tables hold each attempt's final
cost only, so we cannot know whether the attempt would have succeeded had it been cut at the cap
(we assume not), nor what a cut attempt really costs (we charge the cap).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

Caps = tuple  # per tier index: float | None


@dataclass
class Matrix:
    tiers: list[str]
    task_ids: list[str]
    groups: list[str | None]
    quality: list[tuple[float, ...]]  # per task, per tier index
    cost: list[tuple[float, ...]]
    threshold: float = 1.0

    def __len__(self) -> int:
        return len(self.task_ids)

    def subset(self, indexes: Sequence[int]) -> "Matrix":
        return Matrix(list(self.tiers), [self.task_ids[i] for i in indexes], [self.groups[i] for i in indexes],
                      [self.quality[i] for i in indexes], [self.cost[i] for i in indexes], self.threshold)

    def group_names(self) -> list[str]:
        return sorted({g for g in self.groups if g is not None})

    def index(self, tier: str) -> int:
        return self.tiers.index(tier)


@dataclass
class Policy:
    """One policy's totals over the tasks it was judged on."""

    name: str
    tasks: int = 0
    quality_sum: float = 0.0
    successes: int = 0
    cost_usd: float = 0.0
    attempts: int = 0
    capped: int = 0  # attempts cut by a cap
    finished: dict[str, int] = field(default_factory=dict)  # tier -> tasks finishing there
    pgr: float | None = None
    cost_vs_top: float | None = None
    spec: "Spec | None" = None

    @property
    def quality(self) -> float | None:
        return self.quality_sum / self.tasks if self.tasks else None

    @property
    def success_rate(self) -> float | None:
        return self.successes / self.tasks if self.tasks else None

    def tier_shares(self) -> dict[str, float]:
        return {t: (n / self.tasks if self.tasks else 0.0) for t, n in self.finished.items()}

    def finish(self, tier: str, q: float, c: float, ok: bool, attempts: int = 1, capped: int = 0) -> None:
        self.tasks += 1
        self.quality_sum += q
        self.successes += ok
        self.cost_usd += c
        self.attempts += attempts
        self.capped += capped
        self.finished[tier] = self.finished.get(tier, 0) + 1


@dataclass(frozen=True)
class Spec:
    """A simulated policy. kind: always | cascade | oracle. `order` holds tier indexes (always: one);
    `start` maps a task type to its first tier index (cascade only); `caps` is per tier index."""

    kind: str
    order: tuple[int, ...] = ()
    start: tuple[tuple[str, int], ...] = ()
    caps: tuple[float | None, ...] = ()
    name: str = ""

    def start_of(self) -> dict[str, int]:
        return dict(self.start)


def attempt(m: Matrix, task: int, tier: int, caps: Caps) -> tuple[float, float, bool, bool]:
    """(quality, cost, succeeded, capped) of one attempt under the caps."""
    q, c = m.quality[task][tier], m.cost[task][tier]
    cap = caps[tier] if caps else None
    if cap is not None and c > cap:
        return 0.0, cap, False, True
    return q, c, q >= m.threshold, False


def chain_for(spec: Spec, group: str | None, start: dict[str, int] | None = None) -> tuple[int, ...]:
    """The tiers a cascade tries for a task of this type: `order` from the type's start tier."""
    start = spec.start_of() if start is None else start
    first = start.get(group) if group is not None else None
    if first is None:
        return spec.order
    return spec.order[spec.order.index(first):]


def simulate(m: Matrix, spec: Spec, indexes: Sequence[int] | None = None) -> Policy:
    """Judge one policy task by task (the reference evaluation; tune's search must agree with it)."""
    p = Policy(spec.name or spec.kind, spec=spec)
    p.finished = dict.fromkeys(m.tiers, 0)
    todo = range(len(m)) if indexes is None else indexes
    if spec.kind == "oracle":
        n = len(m.tiers)
        for t in todo:
            q, c = m.quality[t], m.cost[t]
            ok = [k for k in range(n) if q[k] >= m.threshold]
            pick = min(ok or range(n), key=lambda k: (c[k], k))
            p.finish(m.tiers[pick], q[pick], c[pick], q[pick] >= m.threshold)
        return p
    start = spec.start_of()
    for t in todo:
        chain = chain_for(spec, m.groups[t], start) if spec.kind == "cascade" else spec.order
        paid, capped = 0.0, 0
        for i, k in enumerate(chain):
            quality, cost, passed, cut = attempt(m, t, k, spec.caps)
            paid += cost
            capped += cut
            if passed or i == len(chain) - 1:
                p.finish(m.tiers[k], quality, paid, passed, i + 1, capped)
                break
    return p


def simulate_fixed(m: Matrix, name: str, tier_of_task: Sequence[int], caps: Caps = ()) -> Policy:
    """One attempt per task on a tier chosen per task (the config's classifier)."""
    p = Policy(name)
    p.finished = dict.fromkeys(m.tiers, 0)
    for t, k in enumerate(tier_of_task):
        q, c, ok, cut = attempt(m, t, k, caps)
        p.finish(m.tiers[k], q, c, ok, 1, cut)
    return p


def describe(spec: Spec, tiers: list[str]) -> str:
    """A short, stable name: `cascade:tier1,tier2,tier3 start{bug_fixing=tier2} cap{tier3=$0.05}`."""
    if spec.kind == "oracle":
        base = "oracle"
    elif spec.kind == "always":
        base = f"always:{tiers[spec.order[0]]}"
    else:
        base = "cascade:" + ",".join(tiers[k] for k in spec.order)
    parts = [base]
    if spec.start:
        parts.append("start{" + ",".join(f"{g}={tiers[k]}" for g, k in spec.start) + "}")
    caps = [(tiers[k], c) for k, c in enumerate(spec.caps) if c is not None] if spec.kind != "oracle" else []
    if caps:
        parts.append("cap{" + ",".join(f"{t}=${c:g}" for t, c in caps) + "}")
    return " ".join(parts)
