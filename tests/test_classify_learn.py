"""`tier learn`: the correction layer from --tier overrides and feedback, on a real ledger.

The ledger is filled through the real `tier ask` pipeline (embedded offline default: no network),
then overrides and a bad verdict are planted. Stated tolerance: the layer changes the planted
prompts' decisions, and at most 5% of the other prompts (near-duplicate instructions may match).
"""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from tiercli.classify import corpus, learn
from tiercli.cli import app

runner = CliRunner()
TIERS = ("tier1", "tier2", "tier3")
TOLERANCE = 0.05


def tier(*args, input=None):
    result = runner.invoke(app, list(args), input=input)
    return result


def calls(home) -> list[dict]:
    conn = sqlite3.connect(home / "ledger.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls WHERE kind = 'main' ORDER BY started_at, id")]
    finally:
        conn.close()


def classify_tier(text: str) -> str:
    result = tier("classify", "--json", text)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)["tier"]


def prompts(n: int) -> list[str]:
    """Short, distinct tasks of every type from the rules author's eval corpus (deterministic pick)."""
    short = [it.text for it in corpus.old("eval") if len(it.text) < 240 and "\n" not in it.text]
    step = max(1, len(short) // n)
    return short[::step][:n]


@pytest.fixture
def planted(tier_home):
    texts = prompts(36)
    for text in texts:
        assert tier("ask", "-q", text).exit_code == 0
    first = {r["prompt_text"]: r for r in calls(tier_home)}
    # overrides: the same instruction asked again with --tier, away from what routing decided
    overridden = {}
    for text in texts[1:5]:
        decided = first[text]["tier"]
        forced = "tier3" if decided != "tier3" else "tier1"
        result = tier("ask", "-q", "--tier", forced, text)
        assert result.exit_code == 0, result.output
        overridden[text] = forced
    # a bad verdict on a call that ran below the top tier: one tier up
    bad_text = next(t for t in texts[5:] if first[t]["tier"] != "tier3")
    bad_id = first[bad_text]["id"]
    assert tier("feedback", bad_id, "bad").exit_code == 0
    overridden[bad_text] = TIERS[TIERS.index(first[bad_text]["tier"]) + 1]
    # a good verdict confirms the tier it ran on: no change
    good_text = texts[-1]
    assert tier("feedback", first[good_text]["id"], "good").exit_code == 0
    return texts, overridden, {t: first[t]["tier"] for t in texts}


def test_learn_changes_the_planted_decisions_and_the_replay_matches_classify(tier_home, planted):
    texts, overridden, recorded = planted
    before = {t: classify_tier(t) for t in texts}

    shown = tier("learn", "--json")
    assert shown.exit_code == 0, shown.output
    plan = json.loads(shown.stdout)
    assert plan["applied"] is False and not (tier_home / "learned.json").exists()
    assert plan["counts"]["overrides"] == 4 and plan["counts"]["feedback_bad"] == 1
    assert plan["counts"]["feedback_good"] == 1 and plan["examples"] == 6
    rows = plan["calls"]
    assert len(rows) == len(calls(tier_home))  # every main call is replayed
    by_id = {r["id"]: r for r in calls(tier_home)}
    after = {}
    for r in rows:
        text = by_id[r["id"]]["prompt_text"]
        assert r["before"] == before[text], "the replay's 'before' is what `tier classify` says without the layer"
        after[text] = r["after"]
    # the planted decisions change to the user's tier ...
    for text, want in overridden.items():
        assert after[text] == want, text
    assert after[texts[-1]] == before[texts[-1]]  # the good verdict changed nothing
    # ... and the others stay, within the stated tolerance
    others = [t for t in texts if t not in overridden]
    moved = [t for t in others if after[t] != before[t]]
    assert len(moved) <= TOLERANCE * len(others), moved
    # nothing enabled yet: classify still says what it said
    assert {t: classify_tier(t) for t in texts} == before

    applied = tier("learn", "--apply")
    assert applied.exit_code == 0, applied.output
    assert "enabled:" in applied.stdout and (tier_home / "learned.json").exists()
    # the replay shown is what `tier classify` now says, call for call
    assert {t: classify_tier(t) for t in texts} == after
    layer_text = (tier_home / "learned.json").read_text()
    assert all(t not in layer_text for t in texts), "the layer keeps hashed vectors, never the prompt text"

    undone = tier("learn", "--undo")
    assert undone.exit_code == 0 and "removed" in undone.stdout
    assert not (tier_home / "learned.json").exists()
    assert {t: classify_tier(t) for t in texts} == before
    assert "no learned layer" in tier("learn", "--undo").stdout


def test_undo_restores_the_previous_layer(tier_home, planted):
    texts, overridden, _ = planted
    assert tier("learn", "--apply").exit_code == 0
    first_layer = (tier_home / "learned.json").read_bytes()
    text = next(t for t in texts if t not in overridden)
    assert tier("ask", "-q", "--tier", "tier3" if classify_tier(text) != "tier3" else "tier1", text).exit_code == 0
    assert tier("learn", "--apply").exit_code == 0
    assert (tier_home / "learned.json").read_bytes() != first_layer
    assert "restored" in tier("learn", "--undo").stdout
    assert (tier_home / "learned.json").read_bytes() == first_layer


def test_a_near_duplicate_instruction_follows_the_correction_a_different_one_does_not(tier_home):
    text = "add a dark mode toggle to the settings page"
    assert tier("ask", "-q", text).exit_code == 0
    assert tier("ask", "-q", "--tier", "tier3", text).exit_code == 0
    assert tier("learn", "--apply").exit_code == 0
    assert classify_tier("Add a dark-mode toggle to the settings page, please") == "tier3"
    assert classify_tier("where is the retry config defined?") == "tier1"
    # pasted material is not the instruction: the same ask with a traceback under it still matches
    assert classify_tier("add a dark mode toggle to the settings page\n\nTraceback (most recent call last):\n"
                         '  File "/app/x.py", line 3, in f\nKeyError: 1') == "tier3"


def test_learn_without_prompts_or_with_nothing_to_learn(tier_home):
    assert tier("ask", "-q", "where is the retry config defined?").exit_code == 0
    result = tier("learn")
    assert result.exit_code == 0
    assert "examples: 0" in result.stdout and "0 would change" in result.stdout


def test_learn_needs_a_ledger(tier_home):
    result = tier("learn")
    assert result.exit_code != 0 and "no ledger" in result.stderr and "Traceback" not in result.output


def test_apply_and_undo_together_is_a_usage_error(tier_home):
    result = tier("learn", "--apply", "--undo")
    assert result.exit_code != 0 and "--apply and --undo" in result.stderr


def test_a_damaged_layer_does_not_break_routing(tier_home):
    tier_home.mkdir(parents=True, exist_ok=True)
    (tier_home / "learned.json").write_text("{not json")
    assert classify_tier("where is the retry config defined?") == "tier1"


def test_bad_feedback_at_the_top_tier_and_unstored_prompts_are_skipped(tier_home):
    from tiercli import config

    cfg = config.load(None).config
    rows = [
        {"id": "a", "started_at": 1.0, "prompt_text": "design the plugin system", "prompt_hash": "h1",
         "decision_source": "local", "tier": "tier3", "task_type": "architecture", "feedback": "bad"},
        {"id": "b", "started_at": 2.0, "prompt_text": None, "prompt_hash": "h2", "decision_source": "override",
         "tier": "tier1", "task_type": None, "feedback": None},
        {"id": "c", "started_at": 3.0, "prompt_text": "fix the flaky test", "prompt_hash": "h3",
         "decision_source": "override", "tier": "tier3", "task_type": "bug_fix", "feedback": None},
        {"id": "d", "started_at": 4.0, "prompt_text": "fix the flaky test", "prompt_hash": "h3",
         "decision_source": "override", "tier": "tier1", "task_type": "bug_fix", "feedback": None},
    ]
    got = learn.collect(cfg, rows)
    assert got.counts["bad_at_top_tier"] == 1 and got.counts["no_prompt"] == 1 and got.counts["superseded"] == 1
    [example] = got.examples
    assert (example.call_id, example.tier, example.label) == ("d", "tier1", "LOW")  # the latest event wins


def test_an_unwritable_place_for_the_layer_is_a_one_line_error(tier_home, tmp_path, monkeypatch):
    assert tier("ask", "-q", "--tier", "tier3", "add a dark mode toggle").exit_code == 0
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a directory")
    monkeypatch.setenv("TIER_HOME", str(blocker / "home"))
    result = tier("learn", "--apply", "--db", str(tier_home / "ledger.db"))
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert result.stderr.count("\n") == 1 and "cannot write the learned layer" in result.stderr


def test_tier_classify_with_a_layer_does_not_import_litellm(tier_home):
    import os
    import subprocess
    import sys

    assert tier("ask", "-q", "--tier", "tier3", "add a dark mode toggle").exit_code == 0
    assert tier("learn", "--apply").exit_code == 0
    code = ("import sys\nfrom tiercli.cli import app\n"
            "try:\n    app(['classify', '--json', 'add a dark mode toggle'])\nexcept SystemExit as e:\n"
            "    assert not e.code, e.code\n"
            "assert 'litellm' not in sys.modules, 'litellm was imported'\n")
    proc = subprocess.run([sys.executable, "-c", code], env={**os.environ}, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tier"] == "tier3"
