"""Classifiers: static (task type -> tier), local (no LLM call), llm (shadow router), hybrid."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tiercli.router import Classification

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig

CLASSIFIERS = ("static", "local", "llm", "hybrid")


def run_local(text: str) -> Classification:
    from tiercli.classify import local

    result = local.classify(text)
    return Classification("local", result.task_type, result.label, result.confidence, tuple(result.reasons))


def run(which: str, text: str, loaded: "LoadedConfig") -> Classification:
    if which == "local":
        return run_local(text)
    raise NotImplementedError(which)
