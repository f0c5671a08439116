"""Shared by the outcome-table tests: a three-tier config and CLI helpers."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from helpers import tier

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "data" / "replay"
TYPED = DATA / "typed.csv"  # 5 tasks (a, b easy; c, d, e hard) x small/mid/big, `resolved` and `dimension`
MAP3 = ["small=tier1", "mid=tier2", "big=tier3"]

CONFIG = """
model_list:
  - model_name: tier1
    litellm_params: {model: anthropic/claude-haiku-4-5}
  - model_name: tier2
    litellm_params: {model: anthropic/claude-sonnet-4-5}
  - model_name: tier3
    litellm_params: {model: openai/gpt-4o}
routing: {tiers: [tier1, tier2, tier3], default_tier: tier2, classifier: local}
prices:
  claude-haiku-4-5: {input: 1, output: 5}
  claude-sonnet-4-5: {input: 3, output: 15}
  gpt-4o: {input: 2, output: 8}
"""

runner = CliRunner()


def write_config(path: Path, extra: str = "") -> Path:
    path.write_text(CONFIG + extra)
    return path




def ok_json(*args) -> dict:
    result = tier(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def policies(data: dict) -> dict[str, dict]:
    return {p["name"]: p for p in data["policies"]}


def maps(*items: str) -> list[str]:
    return [x for item in items for x in ("--map", item)]
