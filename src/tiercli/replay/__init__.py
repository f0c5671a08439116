"""`tier replay`: what recorded calls would have cost, and risked, under another config.

Pure core; tiercli.render_replay draws and shapes the results, cli.py parses options. Dry replay and
outcome replay never import litellm and never call a model; live replay goes through tiercli.ask.

Dry replay (the default), per recorded call of kind `main` or `import` (classifier, compaction and
replay calls are overhead or copies: they are counted, not replayed):
- Decision under the new config: the task type recorded on the call if it has one (mapped through
  routing.task_types, else through its label and routing.labels); else the config's classifier on the
  recorded prompt text (`prompt_text`; for imported agent calls that is the user request the call
  served). A `local`, `hybrid` or `llm` classifier is replayed with the local classifier (the llm one
  costs money; it is only used by a live replay with --llm-classifier); a `static` one routes an
  untyped call to routing.default_tier, as `tier ask` would. No prompt text: default tier, counted.
  A recorded `--tier` override is not replayed: the new config decides.
- Before: the call as recorded, its tier (for imported calls, which have none, the tier of the new
  config whose model is the one the call used, comparing bare names without a -YYYYMMDD date
  suffix; else no tier), model and cost (recorded cost; a call recorded unpriced is priced now if the
  config's prices know its model, else it stays unpriced).
- After: the new tier's primary model, re-priced from the recorded token buckets (uncached input,
  cache read, 5-minute and 1-hour cache writes, output). Output tokens are kept. When the tokenizer
  family changes (tiercli.tokens.family) and the prompt text is stored, every input bucket is scaled
  by count(text, new model) / count(text, old model), each rounded half up; without text the counts
  are kept and the calls counted as not recounted.
- Unpriced calls (either side) are counted and their models named; their cost is never taken as $0.
  `comparable` compares only the calls priced on both sides.
- Changed calls: a different tier or a different model (bare names); the top N by |after - before|.

Outcome replay (`--outcomes`): see the tiercli.replay_outcomes package.
"""

from __future__ import annotations

from tiercli.replay.base import (
    CLASSIFIERS,
    DEFAULT_TOP,
    NONE_KEY,
    REPLAYED_KINDS,
    Decider,
    FloatPrice,
    Pricer,
    Recounter,
    Selection,
    bare_model,
    select_claude_code,
    select_codex,
    select_ledger,
)
from tiercli.replay.dry import Bucket, CallReplay, DryReplay, RoutingSummary, Side, dry_replay, with_routing
from tiercli.replay.live import LiveItem, LivePlan, LiveResult, plan_live, run_live

__all__ = [
    "CLASSIFIERS", "DEFAULT_TOP", "NONE_KEY", "REPLAYED_KINDS", "Bucket", "CallReplay",
    "Decider", "DryReplay", "FloatPrice", "LiveItem", "LivePlan", "LiveResult", "Pricer",
    "Recounter", "RoutingSummary", "Selection", "Side", "bare_model", "dry_replay",
    "plan_live", "run_live", "select_claude_code", "select_codex", "select_ledger", "with_routing",
]
