"""Parsing the policy options of `tier replay --outcomes` and `tier tune`; bad values are UsageErrors.

--policy  config | always:TIER | cascade | cascade:T1,T2,... | oracle | run (the config's run: section)
--cap     TIER=USD or USD (every tier); repeatable or comma-separated
--start   TYPE=TIER (the first tier of a cascade for tasks of that type); repeatable or comma-separated
--cap-grid  [TIER=]USD,USD,... (`none` for no cap); repeatable, one per tier
"""

from __future__ import annotations

import math

from tiercli.errors import UsageError

POLICY_HELP = "use config, always:TIER, cascade, cascade:TIER,TIER,..., oracle or run"


def _pieces(items: list[str] | None) -> list[str]:
    return [p.strip() for item in items or [] for p in item.split(",") if p.strip()]


def money(text: str, what: str) -> float:
    try:
        value = float(text.strip().removeprefix("$"))
    except ValueError:
        raise UsageError(f"{what}: {text!r} is not an amount in dollars", "e.g. 3.00") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"{what}: {text!r} must be a positive amount in dollars")
    return value


def parse_caps(items: list[str] | None, tiers: list[str]) -> dict[str, float]:
    """--cap tier3=3.00 / --cap 1.50 -> {tier: USD}; a bare amount caps every tier (a named one wins)."""
    every: float | None = None
    caps: dict[str, float] = {}
    for piece in _pieces(items):
        tier, sep, amount = piece.rpartition("=")
        if not sep:
            every = money(piece, "--cap")
            continue
        tier = tier.strip()
        if tier not in tiers:
            raise UsageError(f"--cap {piece!r}: unknown tier {tier!r}", f"the config's tiers: {', '.join(tiers)}")
        caps[tier] = money(amount, f"--cap {tier}")
    if every is not None:
        caps = {t: caps.get(t, every) for t in tiers}
    return caps


def parse_start(items: list[str] | None, tiers: list[str], groups: list[str] | None = None) -> dict[str, str]:
    """--start TYPE=TIER -> {task type: tier}. `groups`: the table's task types (None: not checked)."""
    start: dict[str, str] = {}
    for piece in _pieces(items):
        group, sep, tier = piece.rpartition("=")
        group, tier = group.strip(), tier.strip()
        if not sep or not group or not tier:
            raise UsageError(f"--start {piece!r}: expected TASK_TYPE=TIER")
        if tier not in tiers:
            raise UsageError(f"--start {piece!r}: unknown tier {tier!r}", f"the tiers: {', '.join(tiers)}")
        if groups is not None and group not in groups:
            shown = ", ".join(groups[:12]) + (" ..." if len(groups) > 12 else "")
            raise UsageError(f"--start {piece!r}: no task in the table has type {group!r}",
                             f"its task types: {shown}" if groups else "the table has no task-type column")
        start[group] = tier
    return start


def parse_policy(text: str, mapped: list[str]) -> tuple[str, list[str]]:
    """A --policy value -> (kind, tiers). kind: config | always | cascade | oracle | run."""
    kind, _, rest = text.strip().partition(":")
    kind = kind.strip().lower()
    names = [t.strip() for t in rest.split(",") if t.strip()]
    if kind in ("config", "oracle", "run"):
        if names:
            raise UsageError(f"--policy {text!r}: {kind} takes no tiers", POLICY_HELP)
        return kind, []
    if kind not in ("always", "cascade"):
        raise UsageError(f"--policy {text!r}: unknown policy", POLICY_HELP)
    for t in names:
        if t not in mapped:
            raise UsageError(f"--policy {text!r}: tier {t!r} has no table model",
                             f"mapped tiers: {', '.join(mapped)} (see --map)")
    if kind == "always":
        if len(names) != 1:
            raise UsageError(f"--policy {text!r}: always takes one tier, e.g. always:{mapped[-1]}")
        return kind, names
    if len(set(names)) != len(names):
        raise UsageError(f"--policy {text!r}: a tier appears twice in the cascade")
    return kind, names or list(mapped)


def parse_cap_grid(items: list[str] | None, tiers: list[str]) -> dict[str, list[float | None]] | None:
    """--cap-grid [TIER=]USD,USD,... -> {tier: [None, caps...]}; None when not given (use the default)."""
    if not items:
        return None
    grid: dict[str, list[float | None]] = {}
    for item in items:
        head, sep, rest = item.partition("=")
        named = sep and head.strip() in tiers
        values = rest if named else item
        if sep and not named:
            raise UsageError(f"--cap-grid {item!r}: unknown tier {head.strip()!r}", f"the tiers: {', '.join(tiers)}")
        caps: list[float | None] = [None]
        for v in values.split(","):
            v = v.strip()
            if not v or v.lower() == "none":
                continue
            c = money(v, "--cap-grid")
            if c not in caps:
                caps.append(c)
        for t in ([head.strip()] if named else tiers):
            grid[t] = caps
    return {t: grid.get(t, [None]) for t in tiers}
