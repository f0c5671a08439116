"""Classifiers: static (task type -> tier), local (no LLM call), llm (shadow router), hybrid.

hybrid asks the local classifier first and the llm classifier only when the local confidence is
below `routing.hybrid_threshold`; when it does, the llm's label decides and the local task type is
kept only if its label agrees.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

from tiercli.router import Classification

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig

CLASSIFIERS = ("static", "local", "llm", "hybrid")


def run_local(text: str, *, learned: bool = True) -> Classification:
    """The local classifier; the user's correction layer (`tier learn`) wins where it has a near example."""
    from tiercli.classify import local

    result = local.classify(text)
    found = Classification("local", result.task_type, result.label, result.confidence, tuple(result.reasons))
    if learned:
        from tiercli.classify import learn

        return learn.correct(text, found) or found
    return found


def run(
    which: str,
    text: str,
    loaded: "LoadedConfig",
    *,
    ledger=None,
    parent_id: str | None = None,
    session: str | None = None,
) -> Classification | None:
    """Classify `text` with `which`. With no ledger (a dry run) no model is called: llm and hybrid
    fall back to the local classifier and say so in the reasons."""
    if which == "static":
        return None
    if which == "local":
        return run_local(text)
    from tiercli.classify import llm

    if which == "llm":
        from tiercli.classify import learn

        corrected = learn.correct(text, None)
        if corrected is not None:
            return dataclasses.replace(corrected, classifier="llm")
        if ledger is None:
            local = run_local(text)
            return Classification("local", local.task_type, local.label, local.confidence,
                                  ("dry run: llm classifier not called, local used", *local.reasons))
        return llm.classify(loaded, text, ledger, parent_id=parent_id, session=session)
    if which == "hybrid":
        local = run_local(text)
        threshold = loaded.config.routing.hybrid_threshold
        if local.confidence is not None and local.confidence >= threshold:
            return Classification("hybrid", local.task_type, local.label, local.confidence,
                                  (f"local confidence {local.confidence:.2f} >= {threshold:.2f}", *local.reasons))
        if ledger is None:
            return Classification("hybrid", local.task_type, local.label, local.confidence,
                                  ("dry run: local confidence low but llm classifier not called", *local.reasons))
        remote = llm.classify(loaded, text, ledger, parent_id=parent_id, session=session)
        lead = f"local confidence {local.confidence:.2f} < {threshold:.2f}: asked the llm classifier"
        if remote.failed:
            return Classification("hybrid", local.task_type, local.label, local.confidence,
                                  (lead, *remote.reasons, "kept the local answer", *local.reasons), asked_llm=True)
        task_type = local.task_type if remote.label == local.label else None
        return Classification("hybrid", task_type, remote.label, local.confidence,
                              (lead, *remote.reasons, *local.reasons), asked_llm=True)
    raise ValueError(f"unknown classifier {which!r}")
