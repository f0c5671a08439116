"""Real coding agents, installed from their registries, complete a multi-step tool-use task through
`tier serve` against the strict fake provider; every call is one settled ledger row with tokens and
cost, and `tier report --json` adds up. Run with `make test-agents` (see docs/AGENTS.md)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from agents_harness import CHEAP_TIERS, CLAUDE_ENV, COMPATIBLE_TIERS, DONE, Stack, agent_env, agents_dir, start_stack

pytestmark = [pytest.mark.agents,
              pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")]
AGENT_TIMEOUT = 300
CLIENT_KEY = "sk-ant-agent-client-key-0123456789"


def binary(*parts: str) -> Path:
    path = agents_dir().joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is not installed: run `make test-agents`")
    return path


@pytest.fixture(params=["compatible", "cheap"])
def stack(request, tmp_path):
    """compatible: every tier a model that takes the agent's request as sent; cheap: the tiers a user would
    pick (claude-haiku-4-5, gpt-5-mini), which only work because the gateway adapts each request."""
    s = start_stack(tmp_path / "stack", COMPATIBLE_TIERS if request.param == "compatible" else CHEAP_TIERS)
    s.variant = request.param
    yield s
    s.stop()
    s.fake.stop()


@pytest.fixture
def workdir(tmp_path) -> Path:
    work = tmp_path / "project"
    work.mkdir()
    (work / "marker_for_ls.txt").write_text("the agent's ls must show this file\n")
    return work


def run(cmd: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=AGENT_TIMEOUT,
                         stdin=subprocess.DEVNULL)
    print(f"$ {' '.join(cmd[:2])} ... -> {out.returncode}\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def assert_ledger_adds_up(stack: Stack) -> list[dict]:
    """Every upstream call is one settled row with tokens and a price; the report's totals are their sums."""
    upstream = stack.fake.requests
    assert upstream, "no call reached the provider"
    assert not [r for r in upstream if r.headers.get("x-api-key") == CLIENT_KEY
                or CLIENT_KEY in r.headers.get("authorization", "")], "the client's key went upstream"
    rows = stack.settled_rows(len(upstream))
    assert len(rows) == len(upstream), f"{len(rows)} rows for {len(upstream)} upstream calls"
    for row in rows:
        assert row["status"] == "ok", row
        assert row["input_tokens"] > 0 and row["output_tokens"] > 0, row
        assert row["cost_usd"] is not None and row["cost_usd"] > 0 and not row["unpriced"], row
    totals = stack.report()["totals"]
    assert totals["calls"] == len(rows)
    assert totals["input_tokens"] == sum(r["input_tokens"] for r in rows)
    assert totals["output_tokens"] == sum(r["output_tokens"] for r in rows)
    assert abs(totals["cost_usd"] - sum(r["cost_usd"] for r in rows)) < 1e-9
    assert totals["errors"] == totals["pending"] == totals["unpriced"] == 0
    return rows


def tool_results_seen(stack: Stack) -> str:
    """Every tool result the agent sent back, as text (proof the tool really ran)."""
    return "\n".join(json.dumps(r.body.get("messages"))[-4000:] for r in stack.fake.requests)


# -- Claude Code ----------------------------------------------------------------------------------------------


def claude_code(stack: Stack, workdir: Path, home: Path) -> subprocess.CompletedProcess:
    claude = binary("npm", "node_modules", ".bin", "claude")
    env = agent_env(home, ANTHROPIC_BASE_URL=stack.url, ANTHROPIC_API_KEY=CLIENT_KEY,
                    CLAUDE_CONFIG_DIR=str(home / ".claude"), **CLAUDE_ENV)
    return run([str(claude), "-p", "List the files in this directory with the Bash tool, then say you are done.",
                "--allowedTools", "Bash", "--output-format", "json", "--max-turns", "6"], workdir, env)


def test_claude_code_runs_a_tool_use_task_through_tier(stack, workdir, tmp_path):
    out = claude_code(stack, workdir, tmp_path / "home")
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["is_error"] is False and result["subtype"] == "success"
    assert DONE in result["result"] and result["num_turns"] >= 2
    assert "marker_for_ls.txt" in tool_results_seen(stack)  # Bash `ls` ran and its output went back
    rows = assert_ledger_adds_up(stack)
    assert len(rows) >= 2 and {r["source"] for r in rows} == {"serve"}
    if stack.variant == "cheap":  # haiku took them: the strict fake would have refused them unadapted
        assert "claude-haiku-4-5" in {r.model for r in stack.fake.requests}
    assert all(r["session"] for r in rows)  # Claude Code's session id


# -- aider -------------------------------------------------------------------------------------------------------
AIDER_FLAGS = ["--yes-always", "--no-git", "--no-gitignore", "--no-check-update", "--analytics-disable",
               "--no-show-release-notes", "--no-show-model-warnings", "--no-pretty", "--no-stream",
               "--edit-format", "whole", "--map-tokens", "0", "--no-auto-lint", "--no-detect-urls", "--no-fancy-input"]


def test_aider_edits_tests_and_fixes_through_tier(stack, workdir, tmp_path):
    """aider has no tool calls: the multi-step loop is its own. The first answer writes a buggy file,
    aider runs the test command, sends the failure back, and the second answer fixes it."""
    aider = binary("venv", "bin", "aider")
    # aider downloads litellm's price map on start unless its 24-hour cache is fresh: seed the cache
    cache = tmp_path / "home" / ".aider" / "caches"
    cache.mkdir(parents=True)
    (cache / "model_prices_and_context_window.json").write_text(json.dumps({"openai/auto": {
        "max_input_tokens": 128000, "max_output_tokens": 16384, "litellm_provider": "openai", "mode": "chat"}}))
    env = agent_env(tmp_path / "home", OPENAI_API_BASE=stack.url + "/v1", OPENAI_API_KEY=CLIENT_KEY,
                    LITELLM_LOCAL_MODEL_COST_MAP="True", AIDER_ANALYTICS="false")
    model = "openai/auto" if stack.variant == "compatible" else "openai/tier2"  # cheap: gpt-5-mini, no temperature 0
    out = run([str(aider), "--model", model, *AIDER_FLAGS, "--auto-test", "--test-cmd",
               "python3 hello.py | grep -qx hello", "--message", "Create hello.py that prints hello."], workdir, env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert (workdir / "hello.py").read_text().strip() == 'print("hello")'
    requests = stack.fake.requests
    assert len(requests) >= 2, "aider did not send the failing test back"
    assert "helo" in json.dumps(requests[-1].body)  # the fix was asked for with the buggy answer in view
    assert_ledger_adds_up(stack)
    if stack.variant == "cheap":  # gpt-5-mini refuses aider's temperature 0 unless the gateway drops it
        assert {r.model for r in requests} == {"gpt-5-mini"}


# -- Codex ---------------------------------------------------------------------------------------------------
CODEX_CONFIG = """model = "auto"
model_provider = "tier"
check_for_update_on_startup = false
approval_policy = "never"
sandbox_mode = "danger-full-access"

[model_providers.tier]
name = "tier"
base_url = "{base}"
env_key = "TIER_CLIENT_KEY"
wire_api = "responses"

[analytics]
enabled = false

[feedback]
enabled = false

[otel]
exporter = "none"
"""


def test_codex_runs_a_tool_use_task_through_tier(stack, workdir, tmp_path):
    codex = binary("npm", "node_modules", ".bin", "codex")
    home = tmp_path / "home"
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True)
    (codex_home / "config.toml").write_text(CODEX_CONFIG.format(base=stack.url + "/v1"))
    env = agent_env(home, CODEX_HOME=str(codex_home), TIER_CLIENT_KEY=CLIENT_KEY)
    out = run([str(codex), "exec", "--skip-git-repo-check", "--json",
               "List the files in this directory with the shell tool, then say you are done."], workdir, env)
    assert out.returncode == 0, out.stderr[-2000:]
    events = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    assert any(e.get("type") == "turn.completed" for e in events)
    commands = [e["item"] for e in events if e.get("type") == "item.completed" and e["item"].get("type") == "command_execution"]
    assert commands and commands[0]["exit_code"] == 0 and "marker_for_ls.txt" in commands[0]["aggregated_output"]
    assert any(DONE in (e["item"].get("text") or "") for e in events if e.get("type") == "item.completed")
    assert "marker_for_ls.txt" in tool_results_seen(stack)  # the command's output went back to the model
    rows = assert_ledger_adds_up(stack)
    assert len(rows) >= 2
