"""The task taxonomy shared by static routing, the classifiers and the reports.

Eleven task types, each with a difficulty label (LOW / MEDIUM / HIGH) and a default tier. The label
of `test_gen` is MEDIUM (the shadow-router prompt's view) while its default tier is tier1 (tests for
known patterns are cheap); the static map is about cost, the label about difficulty.
"""

from __future__ import annotations

LABELS: tuple[str, ...] = ("LOW", "MEDIUM", "HIGH")

TASK_TYPES: tuple[str, ...] = (
    "file_lookup",
    "search",
    "docstring",
    "reformat",
    "test_gen",
    "bug_fix",
    "feature",
    "code_review",
    "architecture",
    "cross_refactor",
    "algorithm",
)

LABEL_OF_TASK_TYPE: dict[str, str] = {
    "file_lookup": "LOW",
    "search": "LOW",
    "docstring": "LOW",
    "reformat": "LOW",
    "test_gen": "MEDIUM",
    "bug_fix": "MEDIUM",
    "feature": "MEDIUM",
    "code_review": "MEDIUM",
    "architecture": "HIGH",
    "cross_refactor": "HIGH",
    "algorithm": "HIGH",
}

DEFAULT_TASK_TIERS: dict[str, str] = {
    "file_lookup": "tier1",
    "search": "tier1",
    "docstring": "tier1",
    "reformat": "tier1",
    "test_gen": "tier1",
    "bug_fix": "tier2",
    "feature": "tier2",
    "code_review": "tier2",
    "architecture": "tier3",
    "cross_refactor": "tier3",
    "algorithm": "tier3",
}

DEFAULT_LABEL_TIERS: dict[str, str] = {"LOW": "tier1", "MEDIUM": "tier2", "HIGH": "tier3"}
