"""`tier` end to end on the embedded offline default, through Typer's CliRunner and a real ledger file."""

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from tiercli.cli import app

runner = CliRunner()


def tier(*args, input=None):
    return runner.invoke(app, list(args), input=input)


def rows(home):
    db = home / "ledger.db"
    if not db.exists():
        return []
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at")]


def test_version_and_help():
    assert tier("--version").stdout.strip() == "tier 0.1.0"
    result = tier("--help")
    assert result.exit_code == 0
    for command in ("ask", "log", "config"):
        assert command in result.stdout


def test_ask_static_routes_and_records(tier_home):
    result = tier("ask", "--task-type", "architecture", "design the plugin system")
    assert result.exit_code == 0, result.output
    assert "[offline placeholder: tier3 standing in for claude-opus-4-5]" in result.stdout
    assert result.stderr.startswith("tier3 · claude-opus-4-5 · architecture (static) · $")
    [row] = rows(tier_home)
    assert row["status"] == "ok" and row["tier"] == "tier3" and row["served_model"] == "claude-opus-4-5"
    assert row["decision_source"] == "static" and row["task_type"] == "architecture" and row["label"] == "HIGH"
    assert row["input_tokens"] > 0 and row["output_tokens"] > 0 and row["cost_usd"] > 0
    # price of what the offline tier stands in for: opus-4-5 $5 in / $25 out per Mtok
    assert row["cost_usd"] == pytest.approx((row["input_tokens"] * 5 + row["output_tokens"] * 25) / 1e6)
    assert row["prompt_text"] == "design the plugin system"
    assert row["config_hash"] and row["prompt_hash"]


@pytest.mark.parametrize("task_type, tier_name", [("search", "tier1"), ("bug_fix", "tier2"), ("algorithm", "tier3"), ("test_gen", "tier2")])
def test_default_taxonomy_map(tier_home, task_type, tier_name):
    result = tier("ask", "-t", task_type, "do it", "--json")
    assert result.exit_code == 0
    assert json.loads(result.stdout)["decision"]["tier"] == tier_name


def test_stdin_first_then_argument(tier_home):
    result = tier("ask", "-t", "bug_fix", "fix this", input="Traceback (most recent call last):\nValueError: x\n")
    assert result.exit_code == 0
    assert rows(tier_home)[0]["prompt_text"] == "Traceback (most recent call last):\nValueError: x\n\nfix this"


def test_stdin_alone(tier_home):
    assert tier("ask", "-t", "search", input="where is main defined?").exit_code == 0
    assert rows(tier_home)[0]["prompt_text"] == "where is main defined?"


def test_json_output(tier_home):
    result = tier("ask", "-t", "docstring", "write a docstring", "--session", "s1", "--json")
    data = json.loads(result.stdout)
    assert set(data) >= {"answer", "decision", "usage", "cost_usd", "call_id"}
    assert data["decision"]["tier"] == "tier1" and data["decision"]["source"] == "static"
    [row] = rows(tier_home)
    assert data["call_id"] == row["id"] and row["session"] == "s1"
    assert data["usage"]["output_tokens"] == row["output_tokens"]
    assert data["cost_usd"] == pytest.approx(row["cost_usd"])
    assert result.stderr == ""


def test_override_is_recorded(tier_home):
    result = tier("ask", "-t", "search", "--tier", "tier3", "find the config loader", "-q")
    assert result.exit_code == 0 and result.stderr == ""
    [row] = rows(tier_home)
    assert row["decision_source"] == "override" and row["tier"] == "tier3" and row["decided_tier"] == "tier1"


def test_dry_run_records_nothing(tier_home):
    result = tier("ask", "-t", "bug_fix", "--dry-run", "fix the parser")
    assert result.exit_code == 0
    assert result.stderr.startswith("dry run · tier2 · claude-sonnet-4-5 · bug_fix (static) · est. $")
    assert rows(tier_home) == []
    data = json.loads(tier("ask", "-t", "bug_fix", "--dry-run", "--json", "fix the parser").stdout)
    assert data["estimated"] is True and data["call_id"] is None and data["usage"]["input_tokens"] > 0
    # estimated cost = counted input + the default 500 output tokens at sonnet-4-5 prices
    assert data["cost_usd"] == pytest.approx((data["usage"]["input_tokens"] * 3 + 500 * 15) / 1e6)


def test_log_table_and_json(tier_home):
    assert "no calls yet" in tier("log").stdout
    assert json.loads(tier("log", "--json").stdout) == []
    tier("ask", "-t", "search", "one")
    tier("ask", "-t", "feature", "two", "--session", "s2")
    table = tier("log").stdout
    assert "tier1" in table and "tier2" in table and "claude-sonnet" in table  # 80 columns: model names may be cut
    data = json.loads(tier("log", "--json", "-n", "1").stdout)
    assert len(data) == 1
    required = {"id", "ts", "session", "kind", "task_type", "tier", "model", "status", "input_tokens",
                "cache_read_tokens", "cache_write_tokens", "output_tokens", "cost_usd"}
    assert required <= set(data[0])
    assert data[0]["session"] == "s2" and data[0]["task_type"] == "feature"


# -- bad input: one line on stderr, a documented exit code, no traceback, an untouched ledger ----------
def assert_clean_failure(result, code, *fragments):
    assert result.exit_code == code, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("tier: error: ")
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_unknown_task_type_lists_valid_ones(tier_home):
    result = tier("ask", "-t", "poetry", "write a poem")
    assert_clean_failure(result, 2, "unknown --task-type 'poetry'", "file_lookup", "algorithm")
    assert rows(tier_home) == []


def test_unknown_tier(tier_home):
    assert_clean_failure(tier("ask", "--tier", "tier9", "x"), 2, "tier9", "tier1, tier2, tier3")


@pytest.mark.parametrize("args, stdin", [((), ""), (("   ",), ""), ((), "\n\n"), (("",), None)])
def test_empty_prompt(tier_home, args, stdin):
    assert_clean_failure(tier("ask", "-t", "search", *args, input=stdin), 4, "prompt is empty")
    assert rows(tier_home) == []


def test_binary_stdin(tier_home):
    assert_clean_failure(tier("ask", "-t", "search", "what is this", input=b"\x89PNG\r\n\x1a\n\x00\x00"), 4, "binary")


def test_invalid_utf8_stdin(tier_home):
    assert_clean_failure(tier("ask", "-t", "search", input=b"caf\xe9 au lait"), 4, "not UTF-8")


def test_missing_config(tier_home, tmp_path):
    assert_clean_failure(tier("ask", "--config", str(tmp_path / "none.yaml"), "x"), 3, "config file not found")
    assert not (tier_home / "ledger.db").exists()


def test_missing_config_from_env(tier_home, tmp_path, monkeypatch):
    monkeypatch.setenv("TIER_CONFIG", str(tmp_path / "gone.yaml"))
    assert_clean_failure(tier("ask", "x"), 3, "TIER_CONFIG")


def test_yaml_error_names_line(tier_home, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model_list:\n  - model_name: tier1\n   litellm_params: {model: x}\n")
    assert_clean_failure(tier("ask", "-c", str(bad), "x"), 3, "line 3", "YAML error")


def test_unknown_router_setting(tier_home, tmp_path):
    from tiercli.config import embedded_default_text

    bad = tmp_path / "bad.yaml"
    bad.write_text(embedded_default_text().replace("num_retries: 0", "num_retries: 0\n  retries_please: 3"))
    assert_clean_failure(tier("ask", "-c", str(bad), "x"), 3, "retries_please")


def test_fallback_to_unknown_group(tier_home, tmp_path):
    from tiercli.config import embedded_default_text

    bad = tmp_path / "bad.yaml"
    bad.write_text(embedded_default_text().replace("{tier2: [tier3]}", "{tier2: [tier4]}"))
    assert_clean_failure(tier("ask", "-c", str(bad), "x"), 3, "unknown group 'tier4'")
    check = tier("config", "check", "-c", str(bad))
    assert check.exit_code == 3 and "tier4" in check.stderr


def test_foreign_ledger_is_refused_untouched(tier_home, tmp_path):
    foreign = tmp_path / "photos.db"
    conn = sqlite3.connect(foreign)
    conn.execute("CREATE TABLE albums (name TEXT)")
    conn.commit()
    conn.close()
    before = foreign.read_bytes()
    assert_clean_failure(tier("ask", "-t", "search", "x", "--db", str(foreign)), 5, "another program")
    assert foreign.read_bytes() == before
    assert_clean_failure(tier("log", "--db", str(foreign)), 5)


def test_config_commands(tier_home):
    assert "embedded:offline.yaml" in tier("config", "path").stdout
    show = tier("config", "show")
    assert show.exit_code == 0 and "offline/claude-haiku-4-5" in show.stdout
    check = tier("config", "check")
    assert check.exit_code == 0 and check.stdout.strip() == "embedded:offline.yaml: ok"


def test_config_check_reports_unset_key(tier_home, tmp_path):
    from pathlib import Path

    sample = Path(__file__).resolve().parent.parent / "sample_configs" / "anthropic.yaml"
    result = tier("config", "check", "-c", str(sample))
    assert result.exit_code == 3
    assert "ANTHROPIC_API_KEY is not set" in result.stderr


def test_config_show_hides_literal_keys(tier_home, tmp_path):
    from tiercli.config import embedded_default_text

    path = tmp_path / "c.yaml"
    path.write_text(embedded_default_text().replace("{model: offline/claude-haiku-4-5}", "{model: offline/claude-haiku-4-5, api_key: sk-literal-secret-123456}"))
    out = tier("config", "show", "-c", str(path)).stdout
    assert "sk-literal-secret" not in out and "<hidden>" in out


def test_escape_sequences_in_prompt_are_stored_verbatim(tier_home):
    prompt = "explain \x1b[31mred\x1b[0m and [bold]markup[/bold]"
    result = tier("ask", "-t", "search", prompt)
    assert result.exit_code == 0
    assert rows(tier_home)[0]["prompt_text"] == prompt


def test_orphaned_pending_rows_are_recovered_and_shown(tier_home):
    """A pending row whose writer is gone (a dead pid, or no owner and over an hour old) is settled
    interrupted, its reservation released, by the next tier command; a live owner's row stays."""
    import os
    import subprocess
    import sys
    import time

    from tiercli import procinfo
    from tiercli.ledger import Ledger

    tier("ask", "-t", "search", "fresh")
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    with Ledger(tier_home / "ledger.db") as ledger:
        ledger.upsert_call({"id": "deadbeef00", "started_at": time.time() - 7200, "status": "pending", "tier": "tier1",
                            "reserved_usd": 0.25})
        ledger.upsert_call({"id": "deadpid000", "started_at": time.time() - 5, "status": "pending", "tier": "tier1",
                            "reserved_usd": 0.25, "owner_pid": dead_pid, "owner_started": time.time() - 6})
        ledger.upsert_call({"id": "cafe000000", "started_at": time.time() - 5, "status": "pending", "tier": "tier1",
                            "owner_pid": os.getpid(), "owner_started": procinfo.this_process_started()})
    result = tier("log")
    assert "recovered 2 call(s)" in result.stderr
    table = result.stdout
    for call_id in ("deadbeef", "deadpid0"):
        line = next(line for line in table.splitlines() if line.startswith(call_id))
        assert "interrupted" in line
    alive = next(line for line in table.splitlines() if line.startswith("cafe0000"))
    assert "pending" in alive
    with Ledger(tier_home / "ledger.db") as ledger:
        rows = {r["id"]: r for r in ledger.recent_calls(10)}
        spent = ledger._select("SELECT SUM(usd) AS s FROM spend_days")[0]["s"]
        assert spent == pytest.approx(ledger._select("SELECT SUM(cost_usd) AS s FROM calls")[0]["s"])  # no reservation left
    for call_id in ("deadbeef00", "deadpid000"):
        row = rows[call_id]
        assert row["status"] == "interrupted" and row["error_class"] == "ProcessGone"
        assert row["reserved_usd"] is None and row["cost_usd"] is None and "recovered" in row["error_message"]
    assert rows["cafe000000"]["status"] == "pending"


def test_static_prefix_file_is_read_bounded(tier_home, tmp_path):
    from tiercli.config import embedded_default_text

    prefix = tmp_path / "background.md"
    prefix.write_text("Project background.\n")
    good = tmp_path / "good.yaml"
    good.write_text(embedded_default_text() + f"caching: {{static_prefix: '@{prefix}'}}\n")
    assert "Project background." in tier("config", "show", "-c", str(good)).stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text(embedded_default_text() + "caching: {static_prefix: '@/dev/zero'}\n")
    result = tier("ask", "-c", str(bad), "-t", "search", "x")
    assert result.exit_code == 3 and "is a device, not a file" in result.stderr
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * (4_000_001))
    bad.write_text(embedded_default_text() + f"caching: {{static_prefix: '@{big}'}}\n")
    result = tier("ask", "-c", str(bad), "-t", "search", "x")
    assert result.exit_code == 3 and "larger than 4 MB" in result.stderr


def test_dry_run_counts_the_static_prefix_it_would_send(tier_home, tmp_path):
    from tiercli.config import embedded_default_text

    path = tmp_path / "prefixed.yaml"
    path.write_text(embedded_default_text() + "caching: {static_prefix: '" + "Project background. " * 200 + "'}\n")
    plain = json.loads(tier("ask", "-t", "bug_fix", "--dry-run", "--json", "fix it").stdout)
    prefixed = json.loads(tier("ask", "-c", str(path), "-t", "bug_fix", "--dry-run", "--json", "fix it").stdout)
    assert prefixed["usage"]["input_tokens"] > plain["usage"]["input_tokens"] + 500


def test_classify_batch_counts_a_hostile_line_and_goes_on(tmp_path):
    batch = tmp_path / "b.jsonl"
    batch.write_text('{"id": 1, "task": "where is main defined?"}\n'
                     + "[" * 100_000 + "]" * 100_000 + "\n"
                     + '{"id": 10000000000000000000000000000000, "task": "grep for TODO"}\n'
                     + '{"id": 3, "task": "fix the failing login test"}\n')
    result = tier("classify", "--batch", str(batch))
    assert result.exit_code == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line.get("error") for line in lines] == [None, "nested too deeply", None, None]
    assert "classified 3 task(s)" in result.stderr and "1 line(s) not understood" in result.stderr
