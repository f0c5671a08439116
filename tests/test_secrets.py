"""Planted API keys never leave the environment (or the config file that holds one).

Recognisable fake keys are planted in ANTHROPIC_API_KEY, OPENAI_API_KEY and as a literal api_key in
the config; then successes, a 401 whose error body echoes the key, a fallback past such a 401, a
cut stream, --json, `tier log`, `tier config show`/`check` (and `tier report --json` when the command
exists) are driven, in-process and in a real subprocess. Every byte of the ledger (the database,
its -wal and -shm, kept alive by an open reader), stdout, stderr and every other file the runs left
is scanned for the planted strings: 0 hits. With `ledger.store_prompts: redacted` prompt AND
response text matching sk-..., AKIA..., ghp_... and private-key blocks is masked before storage;
with `none` neither is stored.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakeprovider import Reply
from relhelp import read_rows
from tiercli.cli import app

runner = CliRunner()

ANTHROPIC = "sk-ant-api03-PLANTEDKEYanthropic0123456789abcdefXYZ"
OPENAI = "sk-proj-PLANTEDKEYopenai0123456789abcdefXYZ"
LITERAL = "lit-PLANTEDKEYliteral-9f8e7d6c5b4a39281706"  # no known key shape: only scrubbing by value catches it
PLANTED = (ANTHROPIC, OPENAI, LITERAL, "PLANTEDKEY")


def config_text(fake, store: str = "full") -> str:
    return f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{fake.anthropic_base}", api_key: os.environ/ANTHROPIC_API_KEY}}
  - model_name: tier2
    litellm_params: {{model: openai/gpt-5-mini, api_base: "{fake.openai_base}", api_key: os.environ/OPENAI_API_KEY}}
  - model_name: tier3
    litellm_params: {{model: openai/gpt-5, api_base: "{fake.openai_base}", api_key: "{LITERAL}"}}
router_settings:
  fallbacks: [{{tier1: [tier2]}}]
  num_retries: 0
routing: {{tiers: [tier1, tier2, tier3], default_tier: tier2, classifier: static,
          task_types: {{search: tier1, bug_fix: tier2, architecture: tier3}}, labels: {{}}}}
guardrails: {{compaction: {{tier: tier1}}}}
ledger: {{store_prompts: {store}}}
"""


@pytest.fixture
def planted(monkeypatch, tmp_path, fake_provider, tier_home):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config_text(fake_provider))
    os.chmod(cfg, 0o600)
    return cfg


def hits(blob: bytes | str) -> list[str]:
    data = blob.encode("utf-8", "surrogatepass") if isinstance(blob, str) else blob
    return [p for p in PLANTED if p.encode() in data]


def scan_files(root: Path, skip: set[Path]) -> dict[str, list[str]]:
    found = {}
    for path in root.rglob("*"):
        if path.is_file() and path not in skip:
            h = hits(path.read_bytes())
            if h:
                found[str(path)] = h
    return found


def test_planted_keys_appear_nowhere(planted, fake_provider, tmp_path, tier_home):
    cfg = str(planted)
    db = tier_home / "ledger.db"
    outputs: list[str] = []

    def tier(*args, input=None):
        result = runner.invoke(app, [str(a) for a in args], input=input)
        outputs.extend([result.stdout, result.stderr])
        return result

    assert tier("ask", "-c", cfg, "-t", "search", "warm up").exit_code == 0  # creates the ledger
    reader = sqlite3.connect(db)  # an open reader keeps the -wal and -shm files alive for the scan
    reader.execute("SELECT COUNT(*) FROM calls").fetchone()
    try:
        # successes, streamed and --json, on every deployment (env keys and the literal one)
        for task, extra in (("search", []), ("bug_fix", ["--json"]), ("architecture", []), ("architecture", ["--json"])):
            assert tier("ask", "-c", cfg, "-t", task, *extra, "find the parser").exit_code == 0
        # a 401 echoing the key, with a fallback that serves
        fake_provider.script("claude-haiku-4-5", Reply.error(401, f"invalid x-api-key {ANTHROPIC}"))
        r = tier("ask", "-c", cfg, "-t", "search", "--json", "fallback please")
        assert r.exit_code == 0, r.stderr
        # a 401 echoing the key with nowhere to fall back: the error line and the error row
        fake_provider.script("gpt-5-mini", Reply.error(401, f"Incorrect API key provided: {OPENAI}."))
        r = tier("ask", "-c", cfg, "-t", "bug_fix", "fail please")
        assert r.exit_code == 6 and r.stderr.startswith("tier: error:"), r.stderr
        fake_provider.script("gpt-5", Reply.error(401, f"Incorrect API key provided: {LITERAL}"))
        assert tier("ask", "-c", cfg, "-t", "architecture", "--json", "fail too").exit_code == 6
        fake_provider.script("gpt-5", Reply.error(400, f"bad request for key {LITERAL} / {OPENAI}"))
        assert tier("ask", "-c", cfg, "-t", "architecture", "and again").exit_code == 6
        # a stream cut half-way (its partial text is kept)
        fake_provider.script("gpt-5-mini", Reply(text="partial answer here and more", cut_stream_after=2))
        assert tier("ask", "-c", cfg, "-t", "bug_fix", "cut please").exit_code == 6
        # the read side
        for args in (["log"], ["log", "--json", "-n", "100"], ["config", "show", "-c", cfg],
                     ["config", "show", "--json", "-c", cfg], ["config", "check", "-c", cfg]):
            assert tier(*args).exit_code == 0, (args, outputs[-1])
        report = tier("report", "--json")
        assert report.exit_code == 0, report.stderr

        side_files = [Path(f"{db}-wal"), Path(f"{db}-shm")]
        assert all(p.exists() for p in side_files)
        for path in (db, *side_files):
            assert hits(path.read_bytes()) == [], path
    finally:
        reader.close()

    rows = read_rows(db)
    assert len(rows) == 10
    statuses = sorted(r["status"] for r in rows)
    assert statuses == ["error"] * 4 + ["ok"] * 6
    assert any("x-api-key" in (r["attempts_json"] or "") for r in rows)  # the echo was recorded, masked
    assert [o for o in outputs if hits(o)] == []
    assert scan_files(tmp_path, skip={planted}) == {}
    assert "<hidden>" in "".join(outputs)  # config show hid the literal key


def test_planted_keys_in_a_real_process(planted, fake_provider, tmp_path, tier_home):
    """The same through `python -m tiercli`: litellm's own loggers and banners write to the real
    stderr/stdout here, not to the test runner's capture."""
    fake_provider.script("claude-haiku-4-5", Reply.error(401, f"invalid x-api-key {ANTHROPIC}"))
    fake_provider.script("gpt-5-mini", Reply.error(401, f"Incorrect API key provided: {OPENAI}."))
    env = dict(os.environ, LITELLM_LOG="DEBUG")  # even with litellm's debug logging asked for
    proc = subprocess.run([sys.executable, "-m", "tiercli", "ask", "-c", str(planted), "-t", "search", "both fail"],
                          env=env, capture_output=True, timeout=120)
    assert proc.returncode == 6, proc.stderr.decode()[-2000:]
    assert proc.stderr.decode().startswith("tier: error:") and proc.stderr.decode().count("\n") == 1
    assert hits(proc.stdout) == [] and hits(proc.stderr) == []
    assert scan_files(tmp_path, skip={planted}) == {}
    [row] = read_rows(tier_home / "ledger.db")
    assert row["status"] == "error" and row["error_class"] == "AuthenticationError"


SECRETS = {
    "anthropic": "sk-ant-api03-" + "A1b2C3d4" * 8,
    "openai": "sk-proj-" + "Z9y8X7w6" * 6,
    "aws": "AKIA" + "QWERTYUIOP123456",
    "github": "ghp_" + "abcdEFGH1234" * 3,
    "private key": "-----BEGIN RSA PRIVATE KEY-----\nMIIEpAIBAAKCAQEA0vx7\nq8Zt9Lw==\n-----END RSA PRIVATE KEY-----",
}


def secret_prompt() -> str:
    return "fix the bug: the deploy script leaks these\n" + "\n".join(f"{k}: {v}" for k, v in SECRETS.items())


@pytest.mark.parametrize("store", ["redacted", "none"])
def test_store_prompts_masks_or_drops_prompt_and_response(store, fake_provider, tmp_path, tier_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI)
    cfg = tmp_path / "config.yaml"
    cfg.write_text(config_text(fake_provider, store))
    answer = "rotate them now: " + " ".join(SECRETS.values())
    fake_provider.set_default("gpt-5-mini", Reply(text=answer))
    for extra in ([], ["--json"]):
        r = runner.invoke(app, ["ask", "-c", str(cfg), "-t", "bug_fix", *extra], input=secret_prompt())
        assert r.exit_code == 0, r.stderr
    fake_provider.script("gpt-5-mini", Reply(text=answer, cut_stream_after=6))  # a partial answer, kept on error
    assert runner.invoke(app, ["ask", "-c", str(cfg), "-t", "bug_fix"], input=secret_prompt()).exit_code == 6
    rows = read_rows(tier_home / "ledger.db")
    assert len(rows) == 3
    for row in rows:
        if store == "none":
            assert row["prompt_text"] is None and row["response_text"] is None
        else:
            assert row["prompt_text"].startswith("fix the bug: the deploy script leaks these")
            assert row["prompt_text"].count("<redacted>") == len(SECRETS)
            assert row["response_text"].startswith("rotate them now: <redacted>")
    blob = b"".join(p.read_bytes() for p in tier_home.iterdir() if p.is_file())
    leaked = [name for name, value in SECRETS.items() if value.encode() in blob]
    leaked += ["private key body"] if b"MIIEpAIBAAKCAQEA0vx7" in blob else []
    assert leaked == []
