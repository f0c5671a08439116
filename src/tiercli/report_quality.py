"""The report's quality section: per routed tier, task type and config, and config regressions.

Inputs come from tiercli.ledger.queries: the grand pass's `quality` rollup (calls, escalations,
overrides per routed tier, task type and config), the latest feedback verdicts and the retried tasks.
The definitions are in report.py's docstring.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from tiercli.ledger.queries import QUALITY_KINDS

QUALITY_FIELDS = ("calls", "overrides", "retries", "escalations", "feedback_bad", "feedback_good")


def _new_quality() -> dict[str, int]:
    return dict.fromkeys(QUALITY_FIELDS, 0)


def _rate(q: dict[str, Any]) -> float | None:
    if not q["calls"]:
        return None
    return (q["overrides"] + q["retries"] + q["escalations"] + q["feedback_bad"]) / q["calls"]


def _none_last(value: Any) -> tuple[bool, str]:
    return (value is None, "" if value is None else str(value))


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def quality(rollup: list[dict[str, Any]], feedback: list[tuple], retries: list[tuple], tier_order: list[Any], *,
            retry_window_s: float, min_calls: int, min_increase: float) -> dict[str, Any]:
    """The `quality` section of the report (regressions included; the caller words the warnings)."""
    tier_pos = {t: i for i, t in enumerate(tier_order)}
    q_tier: dict[Any, dict[str, int]] = {}
    q_task: dict[Any, dict[str, int]] = {}
    q_task_cfg: dict[tuple[Any, Any], dict[str, int]] = {}
    q_cfg: dict[Any, dict[str, int]] = {}
    q_total = _new_quality()
    cfg_first: dict[str, float] = {}

    def bump(tier: Any, task: Any, cfg: Any, field: str, n: int) -> None:
        for table, key in ((q_tier, tier), (q_task, task), (q_task_cfg, (task, cfg)), (q_cfg, cfg)):
            table.setdefault(key, _new_quality())[field] += n
        q_total[field] += n

    for r in rollup:
        tier, task, cfg = r["k1"], r["k2"], r["k3"]
        for field in ("calls", "escalations", "overrides"):
            bump(tier, task, cfg, field, r[field])
        if cfg is not None:
            cfg_first[cfg] = min(cfg_first.get(cfg, r["first"]), r["first"])
    for tier, task, cfg, bad, good in feedback:
        bump(tier, task, cfg, "feedback_bad", bad or 0)
        bump(tier, task, cfg, "feedback_good", good or 0)
    for tier, task, cfg, n in retries:
        bump(tier, task, cfg, "retries", n)

    configs = [
        {"config_hash": cfg, "first_call_at": cfg_first[cfg], "first_call_iso": _iso(cfg_first[cfg]),
         **q_cfg[cfg], "rate": _rate(q_cfg[cfg])}
        for cfg in sorted(cfg_first, key=lambda c: (cfg_first[c], c))
    ]
    q_tier_order = [t for t in tier_order if t in q_tier] + sorted(
        (t for t in q_tier if t not in tier_pos), key=_none_last)
    regressions = []
    if len(configs) >= 2:
        prev_cfg, new_cfg = configs[-2]["config_hash"], configs[-1]["config_hash"]
        for task in sorted(q_task, key=_none_last):
            a, b = q_task_cfg.get((task, prev_cfg)), q_task_cfg.get((task, new_cfg))
            if not a or not b or a["calls"] < min_calls or b["calls"] < min_calls:
                continue
            rate_a, rate_b = _rate(a), _rate(b)
            if rate_a is None or rate_b is None:  # no calls: only when min_calls < 1
                continue
            if rate_b - rate_a >= min_increase - 1e-12:
                regressions.append({
                    "task_type": task, "previous_config": prev_cfg, "newest_config": new_cfg,
                    "previous_calls": a["calls"], "newest_calls": b["calls"],
                    "previous_rate": rate_a, "newest_rate": rate_b, "increase": rate_b - rate_a,
                })
    return {
        "kinds": list(QUALITY_KINDS),
        "retry_window_s": retry_window_s,
        "total": {**q_total, "rate": _rate(q_total)},
        "tiers": [{"tier": t, **q_tier[t], "rate": _rate(q_tier[t])} for t in q_tier_order],
        "task_types": [{"task_type": k, **q_task[k], "rate": _rate(q_task[k])}
                       for k in sorted(q_task, key=_none_last)],
        "configs": configs,
        "regression_rule": {
            "min_calls": min_calls,
            "min_increase": min_increase,
            "description": (
                "a task type is flagged when its rate under the newest config (the config_hash whose first "
                "call in the window is latest) exceeds its rate under the previous config by at least "
                f"{min_increase:g}, with at least {min_calls} calls under each"
            ),
        },
        "regressions": regressions,
    }

