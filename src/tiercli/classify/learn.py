"""The user's correction layer (`tier learn`): overrides and feedback from the ledger become labels.

    tier learn            build the layer from the ledger, show what it would change (a dry replay)
    tier learn --apply    ... and enable it (write TIER_HOME/learned.json; the previous one is kept)
    tier learn --undo     go back to the previous layer (or to none)

Labels, per main call with a recorded prompt (the latest event per prompt wins):
- a `--tier` override (decision_source 'override'): the user's tier is the right one for that text;
- `tier feedback ... bad`: the tier it ran on was too weak: one tier up (nothing at the top tier);
- `tier feedback ... good`: the tier it ran on was right (a confirmation: it also shields the
  instruction from a neighbour's correction).

Lookup: nearest recorded instruction. Each example keeps a hashed, unit-length vector of its prompt
(words, bigrams, character 4-grams; features.similarity_vector), never the text; a new prompt takes
the tier of the most similar example when the cosine is >= `threshold` (0.8 by default: a re-asked
instruction with a different file name or a typo matches, a different task does not). The target
tier is stored as the label (routing.labels) and task type the config routed it with at learn time:
re-run `tier learn --apply` after changing the routing config.

Dry replay: every main call's recorded prompt is classified by the local classifier without and with
the layer (no model is called), and the routing decisions are compared.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiercli.classify import features
from tiercli.taxonomy import LABEL_OF_TASK_TYPE

if TYPE_CHECKING:
    from tiercli.config import Config, LoadedConfig
    from tiercli.router import Classification

FILE_NAME = "learned.json"
FORMAT = 1
DEFAULT_THRESHOLD = 0.8
CONFIDENCE = 0.99  # the user said so: above any hybrid threshold, so no llm is asked


def instruction_vector(text: str) -> dict[int, float]:
    """The similarity vector of a prompt's instruction (local.instruction: pasted logs and code left out,
    so two different asks about the same traceback stay apart)."""
    from tiercli.classify import local

    return features.similarity_vector(local.instruction(text))


def layer_path() -> Path:
    from tiercli import paths

    return paths.data_dir() / FILE_NAME


def previous_path(path: Path) -> Path:
    return path.with_name(path.name + ".prev")


@dataclass
class Example:
    call_id: str
    started_at: float
    why: str  # override | feedback-bad | feedback-good
    tier: str
    task_type: str | None
    label: str | None
    vector: dict[int, float]

    def to_json(self) -> dict[str, Any]:
        keys = sorted(self.vector)
        return {"call_id": self.call_id, "started_at": self.started_at, "why": self.why, "tier": self.tier,
                "task_type": self.task_type, "label": self.label,
                "buckets": keys, "weights": [round(self.vector[k], 5) for k in keys]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Example":
        return cls(d["call_id"], d["started_at"], d["why"], d["tier"], d.get("task_type"), d.get("label"),
                   dict(zip(d["buckets"], d["weights"])))


@dataclass
class Layer:
    examples: list[Example]
    threshold: float = DEFAULT_THRESHOLD
    created_at: float = field(default_factory=time.time)
    ledger: str | None = None
    _index: dict[int, list[tuple[int, float]]] | None = None

    def to_json(self) -> dict[str, Any]:
        return {"format": FORMAT, "created_at": self.created_at, "threshold": self.threshold, "ledger": self.ledger,
                "examples": [e.to_json() for e in self.examples]}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> "Layer":
        if d.get("format") != FORMAT:
            raise ValueError(f"unknown learned-layer format {d.get('format')!r}")
        return cls([Example.from_json(e) for e in d["examples"]], float(d["threshold"]), d["created_at"], d.get("ledger"))

    def nearest(self, text: str) -> tuple[Example, float] | None:
        """The most similar example at or above the threshold (ties: the latest), else None."""
        if not self.examples:
            return None
        if self._index is None:
            index: dict[int, list[tuple[int, float]]] = {}
            for i, e in enumerate(self.examples):
                for b, w in e.vector.items():
                    index.setdefault(b, []).append((i, w))
            self._index = index
        dots: dict[int, float] = {}
        for b, w in instruction_vector(text).items():
            for i, v in self._index.get(b, ()):
                dots[i] = dots.get(i, 0.0) + w * v
        if not dots:
            return None
        i = max(dots, key=lambda j: (round(dots[j], 9), self.examples[j].started_at, j))
        sim = dots[i]
        return (self.examples[i], sim) if sim >= self.threshold - 1e-9 else None


# -- building -----------------------------------------------------------------------------------------
@dataclass
class Collected:
    examples: list[Example]
    counts: dict[str, int]  # overrides, feedback_bad, feedback_good, no_prompt, top_tier_bad, unroutable, ...
    calls: list[dict[str, Any]]  # the main calls (for the replay)


def routing_of(cfg: "Config", tier: str) -> tuple[str | None, str | None] | None:
    """(task type, label) that route to `tier` under this config, preferring an untyped label route."""
    label = next((lab for lab, t in cfg.routing.labels.items() if t == tier), None)
    if label is not None:
        return None, label
    task_type = next((tt for tt, t in cfg.routing.task_types.items() if t == tier), None)
    if task_type is not None:
        return task_type, LABEL_OF_TASK_TYPE.get(task_type)
    return None


def collect(cfg: "Config", calls: list[dict[str, Any]]) -> Collected:
    """Examples from the main calls (oldest first), the latest event per prompt winning."""
    tiers = list(cfg.routing.tiers)
    counts = {"main_calls": len(calls), "overrides": 0, "feedback_bad": 0, "feedback_good": 0, "no_prompt": 0,
              "bad_at_top_tier": 0, "unknown_tier": 0, "superseded": 0}
    latest: dict[str, Example] = {}
    for row in calls:
        overridden = row.get("decision_source") == "override"
        verdict = row.get("feedback")
        if not overridden and verdict not in ("good", "bad"):
            continue
        text = row.get("prompt_text")
        if not text or not text.strip():
            counts["no_prompt"] += 1
            continue
        tier = row.get("tier")
        if tier not in tiers:
            counts["unknown_tier"] += 1
            continue
        why = "override"
        if verdict == "bad":
            pos = tiers.index(tier)
            if pos + 1 >= len(tiers):
                counts["bad_at_top_tier"] += 1
                continue
            tier, why = tiers[pos + 1], "feedback-bad"
        elif verdict == "good" and not overridden:
            why = "feedback-good"
        counts[{"override": "overrides", "feedback-bad": "feedback_bad", "feedback-good": "feedback_good"}[why]] += 1
        recorded = row.get("task_type")
        if recorded and cfg.routing.task_types.get(recorded) == tier:
            route: tuple[str | None, str | None] | None = (recorded, LABEL_OF_TASK_TYPE.get(recorded))  # the recorded type already routes there
        else:
            route = routing_of(cfg, tier)
        if route is None:
            counts["unknown_tier"] += 1
            continue
        key = row.get("prompt_hash") or text
        if key in latest:
            counts["superseded"] += 1
        latest[key] = Example(row["id"], float(row.get("started_at") or 0.0), why, tier, route[0], route[1],
                              instruction_vector(text))
    examples = sorted(latest.values(), key=lambda e: (e.started_at, e.call_id))
    return Collected(examples, counts, calls)


def classification_for(hit: tuple[Example, float], base: "Classification | None") -> "Classification":
    from tiercli.router import Classification

    ex, sim = hit
    reason = f"learned: {ex.why} on call {ex.call_id[:8]} (similarity {sim:.2f}) -> {ex.tier}"
    classifier = base.classifier if base is not None else "local"
    return Classification(classifier, ex.task_type, ex.label, CONFIDENCE, (reason,))


# -- the active layer -----------------------------------------------------------------------------------
_CACHE: dict[str, tuple[tuple[int, int], Layer]] = {}


def active(path: Path | None = None) -> Layer | None:
    """The enabled layer (read again when the file changes); None when there is none or it is unreadable."""
    path = path or layer_path()
    try:
        st = os.stat(path)
    except OSError:
        return None
    stamp = (st.st_mtime_ns, st.st_size)
    cached = _CACHE.get(str(path))
    if cached and cached[0] == stamp:
        return cached[1]
    try:
        layer = Layer.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None  # a damaged layer must not break routing; `tier learn` reports it
    _CACHE[str(path)] = (stamp, layer)
    return layer


def correct(text: str, base: "Classification | None", layer: Layer | None = None) -> "Classification | None":
    """The learned classification when the text is near a recorded correction, else None."""
    layer = layer if layer is not None else active()
    if layer is None:
        return None
    hit = layer.nearest(text)
    return classification_for(hit, base) if hit else None


def save(layer: Layer, path: Path | None = None) -> Path:
    """Write the layer atomically; the file it replaces becomes the .prev (what --undo restores)."""
    from tiercli.errors import TierError

    path = path or layer_path()
    tmp = path.with_name(path.name + ".tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(layer.to_json(), separators=(",", ":")), encoding="utf-8")
        prev = previous_path(path)
        if path.exists():
            os.replace(path, prev)
        elif prev.exists():
            prev.unlink()  # the state before this apply was "no layer": --undo removes it
        os.replace(tmp, path)
    except OSError as exc:
        raise TierError(f"cannot write the learned layer {path}: {exc.strerror}",
                        "set TIER_HOME to a writable place") from None
    return path


def undo(path: Path | None = None) -> str:
    """Restore the previous layer, or remove the layer when there was none before. Returns what was done."""
    from tiercli.errors import TierError

    path = path or layer_path()
    prev = previous_path(path)
    try:
        if prev.exists():
            os.replace(prev, path)
            return "restored"
        if path.exists():
            path.unlink()
            return "removed"
    except OSError as exc:
        raise TierError(f"cannot change the learned layer {path}: {exc.strerror}",
                        "set TIER_HOME to a writable place") from None
    return "nothing"


# -- the dry replay -------------------------------------------------------------------------------------
@dataclass
class ReplayRow:
    call_id: str
    recorded_tier: str | None
    before: str
    after: str
    similarity: float | None
    example_call: str | None
    why: str | None
    prompt: str


@dataclass
class Replay:
    rows: list[ReplayRow]
    skipped_no_prompt: int

    @property
    def changed(self) -> list[ReplayRow]:
        return [r for r in self.rows if r.before != r.after]

    def pairs(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for r in self.changed:
            key = f"{r.before}->{r.after}"
            out[key] = out.get(key, 0) + 1
        return dict(sorted(out.items()))


def replay(loaded: "LoadedConfig", calls: list[dict[str, Any]], layer: Layer) -> Replay:
    """Each main call's prompt routed by the local classifier without and with the layer (no model call)."""
    from tiercli.classify import local
    from tiercli.router import Classification, decide

    def run_local(text: str, learned: bool = False) -> "Classification":  # the classifier without the layer
        result = local.classify(text)
        return Classification("local", result.task_type, result.label, result.confidence, tuple(result.reasons))

    cfg = loaded.config
    rows, skipped = [], 0
    cache: dict[str, ReplayRow] = {}
    for call in calls:
        text = call.get("prompt_text")
        if not text or not text.strip():
            skipped += 1
            continue
        done = cache.get(text)
        if done is None:
            base = run_local(text, learned=False)
            before = decide(cfg, classification=base).tier
            hit = layer.nearest(text)
            after = decide(cfg, classification=classification_for(hit, base)).tier if hit else before
            done = ReplayRow("", None, before, after, round(hit[1], 3) if hit else None,
                             hit[0].call_id if hit else None, hit[0].why if hit else None, text)
            cache[text] = done
        rows.append(ReplayRow(call["id"], call.get("tier"), done.before, done.after, done.similarity,
                              done.example_call, done.why, text))
    return Replay(rows, skipped)


@dataclass
class Plan:
    layer: Layer
    collected: Collected
    replay: Replay

    def to_json(self) -> dict[str, Any]:
        return {
            "examples": len(self.layer.examples), "threshold": self.layer.threshold, "counts": self.collected.counts,
            "replayed_calls": len(self.replay.rows), "changed": len(self.replay.changed),
            "changes": self.replay.pairs(),
            "calls": [{"id": r.call_id, "recorded_tier": r.recorded_tier, "before": r.before, "after": r.after,
                       "similarity": r.similarity, "example_call": r.example_call, "why": r.why}
                      for r in self.replay.rows],
        }


def plan(loaded: "LoadedConfig", ledger, threshold: float = DEFAULT_THRESHOLD) -> Plan:
    calls = ledger.calls_for_learning()
    collected = collect(loaded.config, calls)
    layer = Layer(collected.examples, threshold, ledger=str(getattr(ledger, "path", "")) or None)
    return Plan(layer, collected, replay(loaded, calls, layer))


def summary_lines(p: Plan, *, show: int = 20) -> list[str]:
    """Plain-text report of a plan (terminal-safe: prompts pass through render_calls.inert)."""
    from tiercli.render_calls import inert

    c = p.collected.counts
    lines = [f"examples: {len(p.layer.examples)} ({c['overrides']} override(s), {c['feedback_bad']} bad and "
             f"{c['feedback_good']} good feedback verdict(s)); similarity threshold {p.layer.threshold:.2f}"]
    skipped = {k: c[k] for k in ("no_prompt", "bad_at_top_tier", "unknown_tier", "superseded") if c[k]}
    if skipped:
        lines.append("skipped: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in skipped.items()))
    rp = p.replay
    pairs = ", ".join(f"{k} {v}" for k, v in rp.pairs().items()) or "none"
    lines.append(f"dry replay of {len(rp.rows)} main call(s) with a prompt: {len(rp.changed)} would change ({pairs})")
    if rp.skipped_no_prompt:
        lines.append(f"  ({rp.skipped_no_prompt} main call(s) have no recorded prompt and cannot be replayed)")
    for r in rp.changed[:show]:
        excerpt = " ".join(r.prompt.split())
        excerpt = excerpt if len(excerpt) <= 60 else excerpt[:57] + "..."
        lines.append(f"  {r.call_id[:8]}  {r.before} -> {r.after}  ({r.why} {str(r.example_call)[:8]}, "
                     f"similarity {r.similarity:.2f})  {inert(excerpt)}")
    if len(rp.changed) > show:
        lines.append(f"  ... and {len(rp.changed) - show} more (--json lists every call)")
    return lines
