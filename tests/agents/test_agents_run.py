"""`tier run` with real Claude Code: a small git repository with a failing test, the strict fake provider
scripted per tier (tier1's model writes a wrong calc.py with Claude Code's Write tool, tier2's a right
one), the real `tier run` CLI with its in-process gateway and `--check "python -m pytest -q"`.

The first attempt fails the check, the tree is restored (Claude Code's Write of a new file would be
refused on attempt 2 if calc.py were still there: "read it first"), the second tier passes; the task
and its attempts are in `tier log` and `tier report --json`; every upstream call is one settled row.
Run with `make test-agents` (see docs/AGENTS.md).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from agents_harness import (
    CLAUDE_ENV,
    DONE,
    SERVER_KEYS,
    _anthropic_tools,
    _has_tool_result,
    _openai_tools,
    agents_dir,
    tier_env,
    write_config,
)

from fakeprovider import FakeProvider, RecordedRequest, Reply
from helpers import git, git_repo

pytestmark = [pytest.mark.agents,
              pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")]
RUN_TIMEOUT = 600
# tier1 must be adapted to (haiku refuses Claude Code's adaptive thinking and effort); tier2 takes it as sent
TIERS = ("anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-6", "anthropic/claude-opus-4-8")
MODEL_OF = {"tier1": "claude-haiku-4-5", "tier2": "claude-sonnet-4-6"}
WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"
TEST_CALC = "from calc import add\n\n\ndef test_add():\n    assert add(2, 3) == 5\n"
CHECK = shlex.join([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly"])
PROMPT = "The test in test_calc.py fails: create calc.py so that it passes."


def claude_binary() -> Path:
    path = agents_dir() / "npm" / "node_modules" / ".bin" / "claude"
    if not path.exists():
        pytest.skip(f"{path} is not installed: run `make test-agents`")
    return path


def writes_calc(repo: Path, content: str) -> Callable[[RecordedRequest], Reply]:
    """The model of one tier: Write calc.py with `content`, then (its tool result back) say it is done."""
    def reply(rec: RecordedRequest) -> Reply:
        if "Write" not in _anthropic_tools(rec.body):
            return Reply(text=f"Nothing to do. {DONE}")
        if not _has_tool_result(rec.body):
            return Reply(text="I will write calc.py.", tool_calls=[
                {"id": "toolu_tier_write", "name": "Write",
                 "arguments": {"file_path": str(repo / "calc.py"), "content": content}}])
        return Reply(text=f"calc.py is written. {DONE}")
    return reply


@pytest.fixture
def repo(tmp_path) -> Path:
    return git_repo(tmp_path / "repo", {"test_calc.py": TEST_CALC}, "a failing test")


@pytest.fixture
def fake(repo):
    provider = FakeProvider().start()  # strict: refuses what the real API refuses for each model
    provider.set_default("claude-haiku-4-5", writes_calc(repo, WRONG))
    provider.set_default("claude-sonnet-4-6", writes_calc(repo, RIGHT))
    yield provider
    provider.stop()


def tier(args: list[str], cwd: Path, home: Path, timeout: float = 120) -> subprocess.CompletedProcess:
    env = tier_env(home / "tier-home")
    env.update(HOME=str(home), CLAUDE_CONFIG_DIR=str(home / ".claude"), CODEX_HOME=str(home / ".codex"), **CLAUDE_ENV)
    out = subprocess.run([sys.executable, "-m", "tiercli", *args], cwd=cwd, env=env, capture_output=True, text=True,
                         timeout=timeout, stdin=subprocess.DEVNULL)
    print(f"$ tier {' '.join(args[:1])} ... -> {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


CLAUDE_CODE = ["--", "{bin}", "-p", PROMPT, "--permission-mode", "acceptEdits", "--output-format", "json", "--max-turns", "6"]


def tier_run(fake: FakeProvider, repo: Path, tmp_path: Path, *extra: str, tiers: tuple[str, ...] = TIERS,
             agent: list[str] | None = None) -> tuple[subprocess.CompletedProcess, Path, Path]:
    config = write_config(tmp_path / "tier.yaml", fake, tiers)  # type: ignore[arg-type]
    db = tmp_path / "ledger.db"
    command = agent or [a.format(bin=claude_binary()) for a in CLAUDE_CODE]
    out = tier(["run", "--config", str(config), "--db", str(db), "--tiers", "tier1,tier2", "--check", CHECK,
                "--timeout", "300", *extra, *command], repo, tmp_path / "home", timeout=RUN_TIMEOUT)
    return out, config, db


def ledger_json(db: Path, home: Path, *args: str) -> Any:
    out = tier([*args, "--json", "--db", str(db)], home, home)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def split(rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    return [r for r in rows if r["kind"] == "run"], [r for r in rows if r["kind"] != "run"]


def test_claude_code_first_tier_fails_the_check_tree_restored_second_tier_passes(fake, repo, tmp_path):
    out, config, db = tier_run(fake, repo, tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert (repo / "calc.py").read_text() == RIGHT
    assert "check failed (exit 1)" in out.stderr and "tree restored" in out.stderr
    assert "resolved at tier2 (attempt 2)" in out.stderr
    assert git(repo, "status", "--porcelain").splitlines() == ["?? calc.py"]

    # the provider saw each tier's model only, with the config's key (Claude Code had the one-time token)
    upstream = fake.requests
    assert {r.headers.get("x-api-key") for r in upstream} == {SERVER_KEYS["ANTHROPIC_API_KEY"]}
    results = [json.dumps(r.body.get("messages")) for r in upstream if _has_tool_result(r.body)]
    assert len(results) == 2 and all("calc.py" in text for text in results)  # each Write ran and came back

    rows = ledger_json(db, tmp_path / "home", "log", "--limit", "1000")
    runs, model_calls = split(rows)
    runs.sort(key=lambda r: r["ts"])
    assert [(r["tier"], r["status"], r["error_class"]) for r in runs] == [
        ("tier1", "error", "CheckFailed"), ("tier2", "ok", None)]
    assert runs[1]["parent_id"] == runs[0]["id"]  # one task: attempt 2 points at attempt 1
    assert len({r["session"].rsplit("-", 1)[0] for r in rows}) == 1  # run-<task id>-<attempt>
    # every upstream call is one settled row, priced, in its attempt's session and tier
    assert len(model_calls) == len(upstream) >= 4
    for row in model_calls:
        assert row["status"] == "ok" and row["cost_usd"] and row["cost_usd"] > 0 and not row["unpriced"], row
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0, row
    for run_row in runs:
        mine = [r for r in model_calls if r["session"] == run_row["session"]]
        assert mine and {r["tier"] for r in mine} == {run_row["tier"]}
        assert {r["model"].split("/")[-1] for r in mine} == {MODEL_OF[run_row["tier"]]}
    assert sorted(r.model for r in upstream) == sorted(MODEL_OF[r["tier"]] for r in model_calls)

    report = ledger_json(db, tmp_path / "home", "report", "--all", "--config", str(config))
    assert report["totals"]["calls"] == len(model_calls) and report["totals"]["errors"] == 0
    assert abs(report["totals"]["cost_usd"] - sum(r["cost_usd"] for r in model_calls)) < 1e-9
    tasks = report["runs"]["tasks"]
    assert tasks["tasks"] == tasks["resolved"] == 1
    assert tasks["cost_per_task_usd"] == pytest.approx(sum(r["cost_usd"] for r in model_calls))
    assert list(report["runs"]["by_start_tier"]) == ["tier1"] and list(report["runs"]["by_resolved_tier"]) == ["tier2"]
    assert report["runs"]["attempts_by_tier"]["tier1"]["outcomes"] == {"CheckFailed": 1}


def test_claude_code_cap_reached_the_call_is_refused_and_the_next_tier_passes(fake, repo, tmp_path):
    """tier1's cap ($0.001) is below what Claude Code's first call may cost (its ~4k output tokens
    reserved at haiku's price): that call gets HTTP 402, the attempt ends as failed at $0."""
    out, config, db = tier_run(fake, repo, tmp_path, "--cap", "tier1=0.001")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "budget reached, a call was refused: attempt budget $0.001" in out.stderr
    assert (repo / "calc.py").read_text() == RIGHT
    assert {r.model for r in fake.requests} == {"claude-sonnet-4-6"}  # nothing reached tier1's model

    rows = ledger_json(db, tmp_path / "home", "log", "--limit", "1000")
    runs, model_calls = split(rows)
    runs.sort(key=lambda r: r["ts"])
    assert [(r["tier"], r["status"], r["error_class"]) for r in runs] == [
        ("tier1", "error", "BudgetExceeded"), ("tier2", "ok", None)]
    refused = [r for r in model_calls if r["session"] == runs[0]["session"]]
    assert refused and {(r["status"], r["error_class"]) for r in refused} == {("refused", "BudgetExceeded")}
    assert not any(r["cost_usd"] for r in refused)
    settled = [r for r in model_calls if r["status"] != "refused"]
    assert len(settled) == len(fake.requests) and all(r["status"] == "ok" and r["cost_usd"] > 0 for r in settled)
    report = ledger_json(db, tmp_path / "home", "report", "--all", "--config", str(config))
    assert report["runs"]["attempts_by_tier"]["tier1"]["outcomes"] == {"BudgetExceeded": 1}
    assert report["runs"]["tasks"]["resolved"] == 1


# -- Codex -------------------------------------------------------------------------------------------------------
CODEX_TIERS = ("openai/gpt-4o-mini", "openai/gpt-5-mini", "anthropic/claude-opus-4-8")
CODEX_MODEL_OF = {"tier1": "gpt-4o-mini", "tier2": "gpt-5-mini"}
# Codex reads its provider from config.toml; the gateway's URL changes with every run, so it comes in
# through `sh -c` and `-c model_providers.tier.base_url=...` (docs/AGENTS.md, tier run)
CODEX_HOME_CONFIG = """model = "auto"
model_provider = "tier"
check_for_update_on_startup = false
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.tier]
name = "tier"
base_url = "http://127.0.0.1:9/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
"""
CODEX_SHELL = 'exec "$0" exec --skip-git-repo-check --json -c "model_providers.tier.base_url=\\"$OPENAI_BASE_URL\\"" "$1"'


def codex_writes_calc(content: str) -> Callable[[RecordedRequest], Reply]:
    """The model of one tier for Codex: a shell command writing calc.py, then (its output back) done."""
    def reply(rec: RecordedRequest) -> Reply:
        tools = _openai_tools(rec.body) + _anthropic_tools(rec.body)
        shell = next((t for t in tools if t in ("shell", "exec_command", "local_shell", "shell_command")), None)
        if shell is None:
            return Reply(text=f"Nothing to do. {DONE}")
        if _has_tool_result(rec.body):
            return Reply(text=f"calc.py is written. {DONE}")
        cmd = f"printf '%s' {shlex.quote(content)} > calc.py"
        args = {"cmd": cmd} if shell == "exec_command" else {"command": ["sh", "-c", cmd]} if shell == "shell" else {"command": cmd}
        return Reply(text="", tool_calls=[{"id": "call_tier_write", "name": shell, "arguments": args}])
    return reply


def test_codex_first_tier_fails_the_check_tree_restored_second_tier_passes(repo, tmp_path):
    codex = agents_dir() / "npm" / "node_modules" / ".bin" / "codex"
    if not codex.exists():
        pytest.skip(f"{codex} is not installed: run `make test-agents`")
    (tmp_path / "home" / ".codex").mkdir(parents=True)
    (tmp_path / "home" / ".codex" / "config.toml").write_text(CODEX_HOME_CONFIG)
    fake = FakeProvider().start()
    try:
        fake.set_default("gpt-4o-mini", codex_writes_calc(WRONG))
        fake.set_default("gpt-5-mini", codex_writes_calc(RIGHT))
        out, config, db = tier_run(fake, repo, tmp_path, tiers=CODEX_TIERS,
                                   agent=["--", "sh", "-c", CODEX_SHELL, str(codex), PROMPT])
        upstream = list(fake.requests)
    finally:
        fake.stop()
    assert out.returncode == 0, out.stderr[-3000:]
    assert (repo / "calc.py").read_text() == RIGHT
    assert "check failed (exit 1)" in out.stderr and "resolved at tier2 (attempt 2)" in out.stderr
    assert {r.headers.get("authorization") for r in upstream} == {"Bearer " + SERVER_KEYS["OPENAI_API_KEY"]}
    rows = ledger_json(db, tmp_path / "home", "log", "--limit", "1000")
    runs, model_calls = split(rows)
    runs.sort(key=lambda r: r["ts"])
    assert [(r["tier"], r["status"], r["error_class"]) for r in runs] == [
        ("tier1", "error", "CheckFailed"), ("tier2", "ok", None)]
    assert len(model_calls) == len(upstream) >= 4
    assert all(r["status"] == "ok" and r["cost_usd"] and r["cost_usd"] > 0 for r in model_calls), model_calls
    for run_row in runs:
        mine = [r for r in model_calls if r["session"] == run_row["session"]]
        assert mine and {r["model"].split("/")[-1] for r in mine} == {CODEX_MODEL_OF[run_row["tier"]]}
    report = ledger_json(db, tmp_path / "home", "report", "--all", "--config", str(config))
    assert report["runs"]["tasks"]["resolved"] == 1 and report["totals"]["calls"] == len(model_calls)
