"""decide(): which tier a request goes to. Pure, given the classifier's result.

Order of precedence: an explicit `--task-type` (static map), else the classifier's task type if the
config maps it, else the classifier's label through `routing.labels`, else `routing.default_tier`.
`--tier` overrides whatever was decided; the decided tier is kept so overrides can be counted as a
quality signal in the report.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from tiercli.errors import UsageError
from tiercli.taxonomy import LABEL_OF_TASK_TYPE

if TYPE_CHECKING:
    from tiercli.config import Config


@dataclass(frozen=True)
class Classification:
    """What a classifier said about a task."""

    classifier: str  # local | llm | hybrid
    task_type: str | None
    label: str | None
    confidence: float | None
    reasons: tuple[str, ...] = ()
    asked_llm: bool = False  # hybrid: whether the llm classifier was consulted
    failed: bool = False  # the classifier could not decide (unparseable answer, failed call)


@dataclass(frozen=True)
class Decision:
    tier: str
    model: str
    source: str  # static | override | default | local | llm | hybrid
    task_type: str | None = None
    label: str | None = None
    confidence: float | None = None
    classifier: str | None = None
    decided_tier: str | None = None  # before an override
    reasons: tuple[str, ...] = field(default_factory=tuple)
    asked_llm: bool = False  # hybrid consulted the llm classifier

    def describe(self) -> str:
        what = self.task_type or (self.label.lower() if self.label else "untyped")
        return f"{what} ({self.source})"


def check_task_type(cfg: Config, task_type: str) -> None:
    if task_type not in cfg.routing.task_types:
        valid = ", ".join(cfg.routing.task_types)
        raise UsageError(f"unknown --task-type {task_type!r}", f"valid task types: {valid}")


def check_tier(cfg: Config, tier: str) -> None:
    if tier not in cfg.routing.tiers:
        raise UsageError(f"unknown --tier {tier!r}", f"tiers in this config: {', '.join(cfg.routing.tiers)}")


def tier_for_model(cfg: Config, name: str) -> str:
    """`tier ask -m NAME` (llm's option): a tier name, or the model of a tier's deployment (with or
    without its provider prefix, e.g. `claude-haiku-4-5` for `anthropic/claude-haiku-4-5`) -> that tier.

    A model that several tiers deploy is ambiguous (the user names the tier instead)."""
    tiers = cfg.routing.tiers
    if name in tiers:
        return name
    owners: dict[str, None] = {}
    for tier in tiers:
        for deployment in cfg.deployments(tier):
            model = deployment.model
            if name in (model, model.split("/", 1)[-1]):
                owners.setdefault(tier, None)
    if len(owners) == 1:
        return next(iter(owners))
    if owners:
        raise UsageError(f"--model {name!r} is deployed by {', '.join(owners)}", "name the tier instead: --tier TIER")
    models = list(dict.fromkeys(d.model.split("/", 1)[-1] for t in tiers for d in cfg.deployments(t)))
    import difflib

    close = difflib.get_close_matches(name, [*tiers, *models], n=1, cutoff=0.6)
    hint = f"did you mean {close[0]!r}? " if close else ""
    raise UsageError(f"unknown --model {name!r}",
                     f"{hint}use a tier ({', '.join(tiers)}) or a model of the config ({', '.join(models)})")


def decide(
    cfg: Config,
    *,
    task_type: str | None = None,
    classification: Classification | None = None,
    force_tier: str | None = None,
) -> Decision:
    routing = cfg.routing
    reasons: list[str] = []
    label = confidence = classifier = None
    if task_type is not None:
        check_task_type(cfg, task_type)
        tier, source = routing.task_types[task_type], "static"
        label = LABEL_OF_TASK_TYPE.get(task_type)
        reasons.append(f"--task-type {task_type} -> {tier}")
    elif classification is not None and not classification.failed:
        task_type, label = classification.task_type, classification.label
        confidence, classifier = classification.confidence, classification.classifier
        source = classification.classifier
        reasons.extend(classification.reasons)
        if task_type and task_type in routing.task_types:
            tier = routing.task_types[task_type]
            reasons.append(f"task type {task_type} -> {tier}")
        elif label and label in routing.labels:
            tier = routing.labels[label]
            reasons.append(f"label {label} -> {tier}")
        else:
            tier, source = routing.default_tier, "default"
            reasons.append(f"classifier gave nothing routable -> default {tier}")
    else:
        tier, source = routing.default_tier, "default"
        if classification is not None:
            classifier = classification.classifier
            reasons.extend(classification.reasons)
            reasons.append(f"{classification.classifier} classifier failed -> default tier {tier}")
        else:
            reasons.append(f"no task type -> default tier {tier}")
    decided = tier
    if force_tier is not None:
        check_tier(cfg, force_tier)
        reasons.append(f"--tier {force_tier} overrides {decided}")
        tier, source = force_tier, "override"
    return Decision(
        tier=tier,
        model=cfg.primary_model(tier),
        source=source,
        task_type=task_type,
        label=label,
        confidence=confidence,
        classifier=classifier,
        decided_tier=decided,
        reasons=tuple(reasons),
        asked_llm=bool(classification and classification.asked_llm),
    )
