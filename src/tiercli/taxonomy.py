"""The task taxonomy shared by static routing, the classifiers and the reports.

Eleven task types, each with a difficulty label (LOW / MEDIUM / HIGH) and a default tier; the default
tier of every type is the tier of its label (LOW tier1, MEDIUM tier2, HIGH tier3).

`test_gen` (issue 15): the taxonomy table says "tier 1-2, depends on novelty" and the label is MEDIUM,
but the sample configs used to send it to tier1. Deciding by novelty would need the classifier to tell
"tests for a known pattern" from "a new test design", which prompts rarely say and the blind corpus's
labeller could not tell either (they labelled every test_gen MEDIUM). So the label decides: test_gen
routes to tier2 by default, like the other MEDIUM types. A user whose tests are routine can map
`test_gen: tier1` in routing.task_types (the routing playbook's "refine after a week" step).
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
    "test_gen": "tier2",
    "bug_fix": "tier2",
    "feature": "tier2",
    "code_review": "tier2",
    "architecture": "tier3",
    "cross_refactor": "tier3",
    "algorithm": "tier3",
}

DEFAULT_LABEL_TIERS: dict[str, str] = {"LOW": "tier1", "MEDIUM": "tier2", "HIGH": "tier3"}
