"""Guardrails through the fake provider: caching, budgets, iteration limits, compaction, cascade."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from fakeprovider import Reply, tier_config
from helpers import rows, tier

runner = CliRunner()
KEY = "sk-ant-test-guardrails-0123456789"
PREFIX = "You work on the tiercli repository. Style: small functions, type hints. " * 40


CLAUDE = ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", "anthropic/claude-opus-4-5"]


def config(fake, tmp_path, extra: str = "", openai_tier1: bool = False) -> str:
    models = (["openai/gpt-4o-mini"] if openai_tier1 else CLAUDE[:1]) + CLAUDE[1:]
    return tier_config(fake, tmp_path / "guard.yaml", models, fallbacks=False,
                       body="routing: {classifier: static}\n" + extra)


@pytest.fixture(autouse=True)
def key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)






# -- prompt caching ---------------------------------------------------------------------------------
def test_static_prefix_is_first_identical_and_marked_for_anthropic(fake_provider, tmp_path, tier_home):
    cfg = config(fake_provider, tmp_path, f"caching: {{static_prefix: {json.dumps(PREFIX)}}}")
    fake_provider.script("claude-sonnet-4-5",
                         Reply(text="first", input_tokens=30, cache_write_tokens=800, output_tokens=10),
                         Reply(text="second", input_tokens=30, cache_read_tokens=800, output_tokens=10))
    assert tier("ask", "-c", cfg, "-t", "bug_fix", "fix A").exit_code == 0
    assert tier("ask", "-c", cfg, "-t", "bug_fix", "fix B").exit_code == 0
    first, second = (r.body for r in fake_provider.requests_for("claude-sonnet-4-5"))
    assert first["system"] == second["system"]  # byte-identical static prefix
    [block] = second["system"]
    assert block["text"] == PREFIX and block["cache_control"] == {"type": "ephemeral"}
    assert second["messages"][-1]["content"] in ("fix B", [{"type": "text", "text": "fix B"}])
    write_row, read_row = rows(tier_home)
    # sonnet-4-5: input $3, cache write $3.75, cache read $0.30, output $15 per Mtok
    assert write_row["cache_write_tokens"] == 800 and write_row["cost_usd"] == pytest.approx((30 * 3 + 800 * 3.75 + 10 * 15) / 1e6)
    assert read_row["cache_read_tokens"] == 800 and read_row["cost_usd"] == pytest.approx((30 * 3 + 800 * 0.30 + 10 * 15) / 1e6)


def test_no_cache_marker_for_openai_deployments(fake_provider, tmp_path, tier_home):
    cfg = config(fake_provider, tmp_path, f"caching: {{static_prefix: {json.dumps(PREFIX)}}}", openai_tier1=True)
    assert tier("ask", "-c", cfg, "-t", "search", "where?").exit_code == 0
    [request] = fake_provider.requests_for("gpt-4o-mini")
    assert request.body["messages"][0] == {"role": "system", "content": PREFIX}
    assert "cache_control" not in json.dumps(request.body)


def test_one_hour_ttl(fake_provider, tmp_path, tier_home):
    cfg = config(fake_provider, tmp_path, f"caching: {{static_prefix: {json.dumps(PREFIX)}, ttl: 1h}}")
    fake_provider.set_default("claude-haiku-4-5", Reply(text="ok", input_tokens=10, cache_write_tokens=1000, output_tokens=1))
    assert tier("ask", "-c", cfg, "-t", "search", "x").exit_code == 0
    [block] = fake_provider.requests[0].body["system"]
    assert block["cache_control"] == {"type": "ephemeral", "ttl": "1h"}
    [row] = rows(tier_home)
    # haiku-4-5 1h writes at $2 per Mtok (2x input)
    assert row["cache_write_1h_tokens"] == 1000
    assert row["cost_usd"] == pytest.approx((10 * 1 + 1000 * 2 + 1 * 5) / 1e6)


# -- budgets ------------------------------------------------------------------------------------------
BUDGET = "guardrails: {{max_output_tokens: 1000, budget: {{daily_usd: {cap}, on_exceed: {mode}}}}}"


def test_cap_refuses_before_any_provider_request(fake_provider, tmp_path, tier_home):
    # sonnet may cost up to 1000 output tokens x $15/M = $0.015 > $0.01
    cfg = config(fake_provider, tmp_path, BUDGET.format(cap=0.01, mode="refuse"))
    result = tier("ask", "-c", cfg, "-t", "bug_fix", "fix")
    assert result.exit_code == 7
    assert result.stderr.startswith("tier: error: daily budget $0.01 would be exceeded")
    assert fake_provider.requests == []
    [row] = rows(tier_home)
    assert row["status"] == "refused" and row["error_class"] == "BudgetExceeded" and row["cost_usd"] == 0


def test_downgrade_picks_the_cheaper_tier(fake_provider, tmp_path, tier_home):
    # haiku: up to 1000 x $5/M = $0.005 fits under $0.01; sonnet's $0.015 does not
    cfg = config(fake_provider, tmp_path, BUDGET.format(cap=0.01, mode="downgrade"))
    result = tier("ask", "-c", cfg, "-t", "bug_fix", "fix", "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["decision"]["tier"] == "tier1"
    assert any("budget: downgraded tier2 -> tier1" in r for r in data["decision"]["reasons"])
    assert [r.model for r in fake_provider.requests] == ["claude-haiku-4-5"]
    [row] = rows(tier_home)
    assert row["status"] == "ok" and row["reserved_usd"] is None  # settled


def test_spend_accumulates_until_the_cap(fake_provider, tmp_path, tier_home):
    fake_provider.set_default("claude-haiku-4-5", Reply(text="ok", input_tokens=1000, output_tokens=800))
    cfg = config(fake_provider, tmp_path, BUDGET.format(cap=0.012, mode="refuse"))
    codes = [tier("ask", "-c", cfg, "-t", "search", "q").exit_code for _ in range(4)]
    # each call costs 1000 x $1/M + 800 x $5/M = $0.005 and may cost up to ~$0.005 + prompt: two fit
    assert codes == [0, 0, 7, 7]
    spent = sum(r["cost_usd"] for r in rows(tier_home))
    assert spent == pytest.approx(0.010)


def test_unpriced_model_is_refused_under_a_cap(fake_provider, tmp_path, tier_home):
    cfg = config(fake_provider, tmp_path, BUDGET.format(cap=100, mode="refuse")).replace("claude-opus-4-5", "claude-opus-4-1")
    path = tmp_path / "unpriced.yaml"
    path.write_text(cfg if "\n" in cfg else open(cfg).read().replace("claude-opus-4-5", "claude-opus-4-1"))
    result = tier("ask", "-c", path, "-t", "architecture", "design")
    assert result.exit_code == 7 and "no known price" in result.stderr
    assert fake_provider.requests == []


def test_concurrent_calls_under_a_cap_overspend_by_at_most_one_estimate(tier_home, tmp_path):
    """16 processes at once on the offline config (real prices, no network)."""
    from tiercli.config import embedded_default_text

    path = tmp_path / "capped.yaml"
    path.write_text(embedded_default_text().replace(
        "guardrails: {max_iterations: 15,", "guardrails: {max_output_tokens: 1000, budget: {daily_usd: 0.05}, max_iterations: 15,"))
    env = dict(os.environ, TIER_CONFIG=str(path))
    procs = [subprocess.Popen([sys.executable, "-m", "tiercli", "ask", "-t", "bug_fix", f"fix bug {i}"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for i in range(16)]
    codes = [p.wait(timeout=120) for p in procs]
    assert set(codes) <= {0, 7}, [p.stderr.read() for p in procs]
    all_rows = rows(tier_home)
    ok = [r for r in all_rows if r["status"] == "ok"]
    assert len(ok) == codes.count(0) and len(all_rows) == 16
    spent = sum(r["cost_usd"] for r in ok)
    one_estimate = (20 * 3 + 1000 * 15) / 1e6  # a short prompt plus the full output allowance on sonnet
    assert spent <= 0.05 + one_estimate
    assert all(r["reserved_usd"] is None for r in all_rows)


# -- iteration limit -------------------------------------------------------------------------------------
def test_iteration_limit_refuses_at_n_plus_one(fake_provider, tmp_path, tier_home):
    cfg = config(fake_provider, tmp_path, "guardrails: {max_iterations: 3}")
    codes = [tier("ask", "-c", cfg, "-t", "search", f"step {i}", "--session", "loop").exit_code for i in range(4)]
    assert codes == [0, 0, 0, 7]
    refused = tier("ask", "-c", cfg, "-t", "search", "step 5", "--session", "loop")
    assert refused.exit_code == 7 and "iteration limit is 3" in refused.stderr and "--force" in refused.stderr
    assert len(fake_provider.requests) == 3
    assert tier("ask", "-c", cfg, "-t", "search", "step 6", "--session", "loop", "--force").exit_code == 0
    assert tier("ask", "-c", cfg, "-t", "search", "other", "--session", "fresh").exit_code == 0
    statuses = [r["status"] for r in rows(tier_home)]
    assert statuses == ["ok", "ok", "ok", "refused", "refused", "ok", "ok"]


# -- compaction ----------------------------------------------------------------------------------------------
def test_compaction_fires_at_the_threshold_and_the_next_call_carries_the_summary(fake_provider, tmp_path, tier_home):
    cfg = config(fake_provider, tmp_path, "guardrails: {compaction: {threshold_tokens: 200, tier: tier2}}")
    long_answer = "Here is a long explanation about the parser module and its state machine. " * 6
    fake_provider.set_default("claude-haiku-4-5", Reply(text=long_answer))
    for i in range(3):
        assert tier("ask", "-c", cfg, "-t", "search", f"question {i}", "--session", "s", "--history").exit_code == 0
    fake_provider.set_default("claude-sonnet-4-5", Reply(text="SUMMARY: parser state machine discussed"))
    result = tier("ask", "-c", cfg, "-t", "search", "question 3", "--session", "s", "--history")
    assert result.exit_code == 0, result.output
    compaction_rows = [r for r in rows(tier_home) if r["kind"] == "compaction"]
    assert len(compaction_rows) == 1
    summary_row = compaction_rows[0]
    assert summary_row["tier"] == "tier2" and summary_row["cost_usd"] > 0
    main = [r for r in rows(tier_home) if r["kind"] == "main"][-1]
    assert summary_row["parent_id"] == main["id"]
    assert json.loads(summary_row["meta_json"])["history_tokens"] > 200
    last_request = fake_provider.requests_for("claude-haiku-4-5")[-1].body
    sent = json.dumps(last_request["messages"])
    assert "SUMMARY: parser state machine discussed" in sent and "question 0" not in sent
    # the second call before the threshold carried the first turn verbatim
    assert "question 0" in json.dumps(fake_provider.requests_for("claude-haiku-4-5")[1].body["messages"])
    # the report shows what compaction saved: removed history at the served call's input price, less its cost
    report = json.loads(tier("report", "-c", cfg, "--all", "--json").stdout)
    comp = report["savings"]["compaction"]
    removed = json.loads(summary_row["meta_json"])["history_tokens"] - summary_row["output_tokens"]
    assert comp["calls"] == 1 and comp["tokens_removed"] == removed
    assert comp["saved_usd"] == pytest.approx(removed * 1e-6 - summary_row["cost_usd"])  # haiku: $1 per Mtok input
    assert report["savings"]["compaction_usd"] == pytest.approx(summary_row["cost_usd"])


def test_history_needs_a_session(fake_provider, tmp_path, tier_home):
    result = tier("ask", "-c", config(fake_provider, tmp_path), "-t", "search", "x", "--history")
    assert result.exit_code == 4 and "--history needs --session" in result.stderr


def test_compaction_tier_cannot_be_the_top_tier(fake_provider, tmp_path, tier_home):
    result = tier("ask", "-c", config(fake_provider, tmp_path, "guardrails: {compaction: {tier: tier3}}"), "x")
    assert result.exit_code == 3 and "must not be the top tier" in result.stderr


# -- verified cascade ---------------------------------------------------------------------------------------
def test_failing_check_escalates_tier_by_tier_and_a_passing_one_stops(fake_provider, tmp_path, tier_home):
    fake_provider.set_default("claude-haiku-4-5", Reply(text="a wrong patch"))
    fake_provider.set_default("claude-sonnet-4-5", Reply(text="PATCH OK"))
    cfg = config(fake_provider, tmp_path)
    result = tier("ask", "-c", cfg, "-t", "search", "fix the test", "--check", "grep -q 'PATCH OK'")
    assert result.exit_code == 0, result.output
    assert result.stdout == "PATCH OK\n"
    assert "check failed (exit 1)" in result.stderr and "check passed" in result.stderr
    first, second = rows(tier_home)
    assert (first["tier"], first["check_passed"], first["parent_id"]) == ("tier1", 0, None)
    assert (second["tier"], second["check_passed"], second["parent_id"]) == ("tier2", 1, first["id"])
    assert second["decision_source"] == "cascade"
    escalated = fake_provider.requests_for("claude-sonnet-4-5")[0].body["messages"][-1]["content"]
    assert "a wrong patch" in json.dumps(escalated) and "failed verification" in json.dumps(escalated)
    assert fake_provider.requests_for("claude-opus-4-5") == []
    quality = json.loads(tier("report", "-c", cfg, "--all", "--json").stdout)["quality"]
    assert quality["total"]["escalations"] == 1  # the tier2 attempt after the failed check


def test_check_failing_everywhere(fake_provider, tmp_path, tier_home):
    result = tier("ask", "-c", config(fake_provider, tmp_path), "-t", "search", "x", "--check", "false")
    assert result.exit_code == 8 and "failed on every tier up to tier3" in result.stderr
    assert [r["check_passed"] for r in rows(tier_home)] == [0, 0, 0]


def test_config_makes_cascade_the_default_for_chosen_task_types(fake_provider, tmp_path, tier_home):
    fake_provider.set_default("claude-sonnet-4-5", Reply(text="nope"))
    fake_provider.set_default("claude-opus-4-5", Reply(text="GREEN"))
    cfg = config(fake_provider, tmp_path, "guardrails: {cascade: {check: \"grep -q GREEN\", task_types: [bug_fix]}}")
    assert tier("ask", "-c", cfg, "-t", "bug_fix", "fix").stdout == "GREEN\n"
    assert tier("ask", "-c", cfg, "-t", "feature", "add").exit_code == 0  # not a cascade type
    assert [r["check_passed"] for r in rows(tier_home)] == [0, 1, None]
