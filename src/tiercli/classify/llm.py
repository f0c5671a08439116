"""The shadow router: a cheap tier classifies the task LOW / MEDIUM / HIGH before dispatch.

The classifier call is an ordinary ledger row of kind `classifier`, linked (parent_id) to the call
it served, so its cost shows in the report. An unparseable answer or a failed call returns a
failed Classification, and routing falls back to the default tier (recorded with the reason).
Long prompts are cut to their head and tail before classification: the instruction is usually at
one end, and the classifier must stay cheap.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from tiercli.router import Classification, Decision

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig

DEFAULT_PROMPT = """You route a coding agent's requests to models. Classify the task by the capability it needs:
LOW: file lookup, search queries, docstring generation, reformatting.
MEDIUM: bug fixing, feature implementation, test generation, code review.
HIGH: architecture decisions, cross-codebase refactoring, novel algorithm design.
Answer with one word: LOW, MEDIUM or HIGH."""

HEAD_CHARS = 2_000
TAIL_CHARS = 2_000

_WORD = re.compile(r"[A-Za-z]+")
_SYNONYMS = {"LOW": "LOW", "MEDIUM": "MEDIUM", "MED": "MEDIUM", "MID": "MEDIUM", "MODERATE": "MEDIUM", "HIGH": "HIGH"}


def parse_label(answer: str) -> str | None:
    """The first LOW/MEDIUM/HIGH word in the answer, whatever its case or punctuation; else None."""
    for word in _WORD.findall(answer or ""):
        label = _SYNONYMS.get(word.upper())
        if label:
            return label
    return None


def excerpt(text: str) -> str:
    if len(text) <= HEAD_CHARS + TAIL_CHARS + 100:
        return text
    cut = len(text) - HEAD_CHARS - TAIL_CHARS
    return f"{text[:HEAD_CHARS]}\n[... {cut} characters omitted ...]\n{text[-TAIL_CHARS:]}"


def classify(loaded: "LoadedConfig", text: str, ledger, *, parent_id: str | None, session: str | None) -> Classification:
    """Ask the classifier tier; record its call; never raise for a provider failure."""
    from tiercli import calls
    from tiercli.errors import ProviderError

    cfg = loaded.config
    tier = cfg.routing.classifier_tier or cfg.cheapest_tier
    decision = Decision(tier=tier, model=cfg.primary_model(tier), source="classifier", decided_tier=tier,
                        reasons=("shadow-router classification",))
    shown_text = excerpt(text)
    plan = calls.Plan(decision=decision, prompt=shown_text, kind="classifier", session=session, parent_id=parent_id,
                      messages=[{"role": "system", "content": cfg.routing.classifier_prompt or DEFAULT_PROMPT},
                                {"role": "user", "content": shown_text}],
                      max_output_tokens=cfg.routing.classifier_max_tokens)
    try:
        answer = calls.complete(loaded, ledger, plan, temperature=0)
    except ProviderError as exc:
        return Classification("llm", None, None, None, (f"llm classifier call failed: {exc.message}",), failed=True)
    label = parse_label(answer.completion.text)
    if label is None:
        shown = answer.completion.text.strip().replace("\n", " ")[:60]
        return Classification("llm", None, None, None, (f"llm classifier answer not understood: {shown!r}",), failed=True)
    return Classification("llm", None, label, None, (f"llm classifier ({answer.completion.served_model}) said {label}",))
