"""Outcome tables and the policies judged on them: `tier replay --outcomes` and `tier tune`.

- table: reading outcome tables (long/wide, CSV/JSONL, common column names) and --map.
- simulate: the Matrix (quality and cost per task and tier) and the policies (always, cascade with
  start tier per task type and per-tier caps, oracle), judged task by task.
- evaluate: a table priced and mapped to tiers; the policies of `tier replay --outcomes`.
- tune: the search over start tiers, cascade orders and caps, its Pareto frontier, and k-fold
  cross-validation of the chosen policy; snippet: that policy as a config `run:` section.
- render / render_tune: JSON, CSV and Rich output.
No model is called and litellm is never imported here.
"""
