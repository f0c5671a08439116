"""Guardrails that stop the failure modes routing alone does not: runaway sessions and overspend.

Budgets are checked before the call against recorded spend plus this call's estimate, and the
estimate is reserved in the same BEGIN IMMEDIATE transaction that writes the call's pending row
(Ledger.insert_pending), so parallel `tier ask` processes cannot all pass the same check. The
estimate is an upper bound: the prompt counted offline plus the full output allowance
(`max_output_tokens`); settling the call replaces it with the real cost. A call that crashes keeps
its reservation until the next tier process finds its owner gone (Ledger.recover_orphans). Windows are UTC days: the day since 00:00 UTC, the month since the
1st; the ledger keeps per-day spend totals by trigger, so the check costs the same on any ledger size.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from tiercli.config import Config
from tiercli.errors import BudgetExceeded, IterationLimit
from tiercli.fmt import usd


@dataclass(frozen=True)
class Cap:
    name: str  # daily | monthly | session
    limit_usd: float
    since: float | None = None  # epoch seconds; None: all time (session caps)
    session: str | None = None
    user: str | None = None  # a team member's own cap (tier users); None: the whole ledger's (the team's)

    def describe(self) -> str:
        who = f"user {self.user}'s " if self.user else ""
        return f"{who}{self.name} budget {usd(self.limit_usd)}" + (f" (session {self.session})" if self.session else "")


def caps_for(cfg: Config, session: str | None, now: float) -> list[Cap]:
    budget = cfg.guardrails.budget
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    caps = []
    if budget.daily_usd is not None:
        caps.append(Cap("daily", budget.daily_usd, since=today.timestamp()))
    if budget.monthly_usd is not None:
        caps.append(Cap("monthly", budget.monthly_usd, since=today.replace(day=1).timestamp()))
    if budget.session_usd is not None and session:
        caps.append(Cap("session", budget.session_usd, session=session))
    return caps


def user_caps(user: dict, now: float) -> list[Cap]:
    """A team member's daily and monthly caps (users table), on top of the team's (caps_for)."""
    today = dt.datetime.fromtimestamp(now, dt.timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
    caps = []
    if user.get("daily_usd") is not None:
        caps.append(Cap("daily", float(user["daily_usd"]), since=today.timestamp(), user=user["id"]))
    if user.get("monthly_usd") is not None:
        caps.append(Cap("monthly", float(user["monthly_usd"]), since=today.replace(day=1).timestamp(), user=user["id"]))
    return caps


@dataclass(frozen=True)
class Overrun:
    cap: Cap
    spent_usd: float
    estimate_usd: float | None  # None: the model has no known price

    def message(self) -> str:
        if self.estimate_usd is None:
            return (f"{self.cap.describe()} is set and this call's model has no known price, so its cost "
                    "cannot be checked against it")
        left = max(self.cap.limit_usd - self.spent_usd, 0)
        return (f"{self.cap.describe()} would be exceeded: {usd(self.spent_usd)} spent or reserved, "
                f"this call may cost up to {usd(self.estimate_usd)}, {usd(left)} left")


def refuse_budget(overrun: Overrun) -> BudgetExceeded:
    return BudgetExceeded(overrun.message(), "raise the cap under guardrails.budget, use a cheaper --tier, "
                            "or set on_exceed: downgrade")


def refuse_iterations(session: str, count: int, limit: int) -> IterationLimit:
    return IterationLimit(
        f"session {session!r} has made {count} calls, the iteration limit is {limit}",
        "an agent looping? review it with `tier log`; pass --force to go on, or raise guardrails.max_iterations",
    )
