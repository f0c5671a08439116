"""What the local classifier answers, and what its rules saw (shared by the rules and the learned model)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LocalClassification:
    task_type: str  # one of taxonomy.TASK_TYPES
    label: str  # "LOW" | "MEDIUM" | "HIGH"
    confidence: float  # 0..1; low when the evidence is weak or conflicting
    reasons: tuple[str, ...]  # short human-readable reasons


@dataclass(frozen=True)
class RuleAnalysis:
    """What the rules saw: their answer plus the evidence the learned model reads (classify/model.py)."""

    result: LocalClassification
    scores: dict[str, float]
    normed: tuple[tuple[str, float], ...]  # (normalised instruction segment, weight)
    evidence: tuple[tuple[float, str, str], ...]
    paste_lines: int
    fallback: bool  # no rule fired
