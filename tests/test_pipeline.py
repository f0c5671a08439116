"""The recorded-call pipeline (calls.py): every call settles exactly once, whatever happens.

Each test is one of issue 11's reproductions: an interrupt before the provider is reached, a budget
downgrade onto a tier whose key is unset, a cascade's llm-classifier link, a refusal's type and text.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from fakeprovider import Reply, tier_config
from tiercli import calls, guards
from tiercli.cli import app
from tiercli.errors import BudgetExceeded, ConfigError, IterationLimit
from tiercli.ledger import Ledger

runner = CliRunner()
KEY = "sk-ant-test-pipeline-0123456789"
CLAUDE = ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5", "anthropic/claude-opus-4-5"]


def rows(home):
    conn = sqlite3.connect(home / "ledger.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at, rowid")]
    finally:
        conn.close()


def spend(home) -> float:
    conn = sqlite3.connect(home / "ledger.db")
    try:
        return conn.execute("SELECT COALESCE(SUM(usd), 0) FROM spend_days").fetchone()[0]
    finally:
        conn.close()


def test_ctrl_c_before_the_provider_settles_the_row_and_releases_the_reservation(fake_provider, tmp_path, tier_home):
    """Ctrl-C after the pending row (e.g. while litellm loads) is a plain KeyboardInterrupt, not the
    provider's Interrupted: it used to leave the row pending with its reservation for good."""
    cfg = tier_config(fake_provider, tmp_path / "c.yaml", CLAUDE, fallbacks=False,
                      body="routing: {classifier: static}\nguardrails: {budget: {daily_usd: 0.25}}")
    env = {**os.environ, "TIER_HOME": str(tier_home), "ANTHROPIC_API_KEY": KEY, "TIER_TEST_PAUSE_AT": "pending",
           "TIER_TEST_PAUSE_S": "30"}
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "ask", "-c", cfg, "-t", "bug_fix", "fix it"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = proc.stderr.readline()
    assert "paused at pending" in line
    assert rows(tier_home)[0]["reserved_usd"] > 0  # the reservation is held while the call runs
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    [row] = rows(tier_home)
    assert row["status"] == "interrupted" and row["error_class"] == "KeyboardInterrupt"
    assert row["reserved_usd"] is None and row["owner_pid"] is None
    assert (row["input_tokens"], row["output_tokens"], row["cost_usd"]) == (0, 0, 0.0)  # nothing was sent
    assert spend(tier_home) == pytest.approx(0.0)
    assert fake_provider.requests == []


def test_budget_downgrade_onto_a_tier_without_its_key_writes_nothing(fake_provider, tmp_path, tier_home, monkeypatch):
    """The key check is for the FINAL tier, after the downgrade, and before any row is written."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    monkeypatch.delenv("TIER_TEST_CHEAP_KEY", raising=False)
    path = tmp_path / "d.yaml"
    tier_config(fake_provider, path, CLAUDE, fallbacks=False,
                body="routing: {classifier: static}\n"
                     "guardrails: {max_output_tokens: 1000, budget: {daily_usd: 0.01, on_exceed: downgrade}}")
    text = path.read_text().replace("os.environ/ANTHROPIC_API_KEY", "os.environ/TIER_TEST_CHEAP_KEY", 1)
    path.write_text(text)  # tier1 (the downgrade target) needs a variable that is not set
    result = runner.invoke(app, ["ask", "-c", str(path), "-t", "bug_fix", "fix"])
    assert result.exit_code == 3, result.output
    assert "TIER_TEST_CHEAP_KEY is not set" in result.stderr and "Traceback" not in result.stderr
    assert rows(tier_home) == [] and spend(tier_home) == 0
    assert fake_provider.requests == []


def test_cascade_with_llm_classifier_links_to_the_first_attempt(fake_provider, tmp_path, tier_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    fake_provider.set_default("claude-haiku-4-5", Reply(text="LOW", input_tokens=50, output_tokens=1))
    fake_provider.set_default("claude-sonnet-4-5", Reply(text="fine", input_tokens=50, output_tokens=3))
    cfg = tier_config(fake_provider, tmp_path / "l.yaml", CLAUDE, fallbacks=False,
                      body="routing: {classifier: llm, labels: {LOW: tier2, MEDIUM: tier2, HIGH: tier2}}")
    result = runner.invoke(app, ["ask", "-c", cfg, "--check", "true", "where is main defined?"])
    assert result.exit_code == 0, result.output
    classifier_row, *attempts = rows(tier_home)
    assert classifier_row["kind"] == "classifier" and attempts
    assert classifier_row["parent_id"] == attempts[0]["id"]  # it named no row before
    assert all(r["status"] == "ok" and r["reserved_usd"] is None for r in rows(tier_home))


def test_refusals_are_types_with_the_cap_as_configured(tmp_path):
    overrun = guards.Overrun(guards.Cap("daily", 0.0005, since=0.0), 0.0004, 0.0002)
    refusal = guards.refuse_budget(overrun)
    assert isinstance(refusal, BudgetExceeded) and refusal.exit_code == 7
    assert "daily budget $0.0005 would be exceeded" in refusal.message  # "$0.00" before
    assert isinstance(guards.refuse_iterations("s", 3, 3), IterationLimit)


def _loaded(tmp_path, body: str):
    from tiercli import config

    path = tmp_path / "offline.yaml"
    default = "guardrails: {max_iterations: 15, compaction: {threshold_tokens: 8000, tier: tier2}}"
    text = config.embedded_default_text()
    assert default in text
    path.write_text(text.replace(default, body or default))
    return config.load(path)


def test_an_exception_inside_an_open_call_settles_it_as_error(tmp_path):
    """Whatever escapes between open and settlement (here a bug-like ValueError) settles the row."""
    from tiercli.router import decide

    loaded = _loaded(tmp_path, "guardrails: {budget: {daily_usd: 5}}")
    decision = decide(loaded.config, task_type="search")
    with Ledger(tmp_path / "l.db") as ledger:
        plan = calls.Plan(decision, "where?", [{"role": "user", "content": "where?"}], source="serve")
        with pytest.raises(ValueError):
            with calls.open_call(loaded, ledger, plan) as call:
                assert ledger.get_call(call.id)["status"] == "pending"
                raise ValueError("cannot build the upstream body")
        row = ledger.get_call(plan.call_id)
    assert row["status"] == "error" and row["error_class"] == "ValueError" and row["reserved_usd"] is None
    assert row["source"] == "serve"


def test_a_refused_call_is_recorded_with_its_source(tmp_path):
    from tiercli.router import decide

    loaded = _loaded(tmp_path, "guardrails: {max_iterations: 1}")
    decision = decide(loaded.config, task_type="search")
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.upsert_call({"id": "earlier", "started_at": time.time(), "session": "s", "kind": "main", "status": "ok"})
        plan = calls.Plan(decision, "again", [{"role": "user", "content": "again"}], session="s", source="serve",
                          iteration_limit=1)
        with pytest.raises(IterationLimit):
            calls.open_call(loaded, ledger, plan)
        row = ledger.get_call(plan.call_id)
    assert row["status"] == "refused" and row["source"] == "serve" and row["error_class"] == "IterationLimit"


def test_key_check_failure_writes_nothing(tmp_path):
    from tiercli.router import decide

    loaded = _loaded(tmp_path, "")
    decision = decide(loaded.config, task_type="search")

    def no_key(tier: str) -> None:
        raise ConfigError("environment variable X is not set")

    with Ledger(tmp_path / "l.db") as ledger:
        with pytest.raises(ConfigError):
            calls.open_call(loaded, ledger, calls.Plan(decision, "q", [], key_check=no_key))
        assert ledger.recent_calls(5) == []


def test_one_terminal_policy_shows_bidi_overrides_and_escapes_inert():
    from tiercli import fmt
    from tiercli.render import clean
    from tiercli.render_calls import inert

    hostile = "evil\u202etxt.exe\x1b[31m\u2066x"
    for shown in (fmt.inert(hostile), inert(hostile), clean(hostile)):
        assert "\u202e" not in shown and "\x1b" not in shown and "\u2066" not in shown
        assert "\\u202e" in shown and "\\x1b" in shown
    assert fmt.inert("line\nnext\ttab", keep_layout=True) == "line\nnext\ttab"


@pytest.mark.parametrize("value,shown", [(0.0005, "$0.0005"), (0.01, "$0.01"), (0.015, "$0.015"), (1.5, "$1.50"),
                                         (1234.5, "$1,234.50"), (0.0, "$0.00"), (None, "unpriced"),
                                         (0.000123, "$0.00012"), (-0.002, "-$0.002")])
def test_money_is_shown_without_hiding_small_amounts(value, shown):
    from tiercli import fmt

    assert fmt.usd(value) == shown


def test_a_key_echoed_across_the_cut_never_escapes_in_part(fake_provider, tmp_path, tier_home, monkeypatch):
    """The litellm path scrubs a provider's error message before cutting it to 300 characters."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    fake_provider.set_default("*", Reply.error(401, "x" * 285 + " key " + KEY + " was rejected"))
    cfg = tier_config(fake_provider, tmp_path / "k.yaml", CLAUDE, fallbacks=False)
    result = runner.invoke(app, ["ask", "-c", cfg, "-t", "search", "where?"])
    assert result.exit_code == 6
    [row] = rows(tier_home)
    for text in (result.stderr, row["error_message"] or "", row["attempts_json"] or ""):
        for piece in (KEY[:12], KEY[-12:], KEY[8:20]):
            assert piece not in text, text
