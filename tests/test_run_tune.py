"""`tier tune --ledger`: the policy search on the ledger's own `tier run` history, recorded by real
`tier run` invocations (the CLI in a subprocess, its in-process gateway, the fake provider upstream,
the scripted agent tests/fake_agent.py, real checks, real git), not hand-written rows.

tier1 (claude-haiku-4-5) writes add() as a - b, tier2 (claude-sonnet-4-5) as a + b. A "hard" task's
check needs add(2, 3) == 5 (only tier2 passes); an "easy" one's add(2, 0) == 2 (both pass). A cascade
stops at tier1 on an easy task, so each easy task is run again with --start tier2: the same task text,
check and starting tree make it one task with both outcomes.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from fakeprovider import Reply, tier_config
from helpers import git, git_repo

HERE = Path(__file__).resolve().parent
AGENT = [sys.executable, str(HERE / "fake_agent.py")]
ORIGINAL = "def add(a, b):\n    raise NotImplementedError\n"
# python3 from PATH, no absolute path: the check command is part of a task's identity, the same on any machine
HARD = "python3 -c 'import calc, sys; sys.exit(0 if calc.add(2, 3) == 5 else 1)'"
EASY = "python3 -c 'import calc, sys; sys.exit(0 if calc.add(2, 0) == 2 else 1)'"


@pytest.fixture
def repo(tmp_path) -> Path:
    return git_repo(tmp_path / "repo", {"calc.py": ORIGINAL}, "start")


@pytest.fixture
def setup(fake_provider, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-run-tune-test-0123456789")
    config = tier_config(fake_provider, tmp_path / "tier.yaml", ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5",
                                                                  "anthropic/claude-opus-4-5"], fallbacks=False)
    fake_provider.set_default("claude-haiku-4-5", Reply(text="def add(a, b):\n    return a - b\n"))
    fake_provider.set_default("claude-sonnet-4-5", Reply(text="def add(a, b):\n    return a + b\n"))
    return {"config": config, "db": str(tmp_path / "ledger.db")}


def tier(setup, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tiercli", *args, "-c", setup["config"], "--db", setup["db"]]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)


def run_task(setup, repo: Path, name: str, check: str, *options: str) -> None:
    """One `tier run`, then the tree back to its start (the next run starts from the same files)."""
    cmd = [sys.executable, "-m", "tiercli", "run", "-c", setup["config"], "--db", setup["db"], "--tiers", "tier1,tier2",
           "--check", check, *options, "--", *AGENT, f"implement add in calc.py ({name})"]
    proc = subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert proc.returncode == 0, proc.stderr
    git(repo, "checkout", "-q", "--", ".")
    git(repo, "clean", "-qfd")


def attempt_costs(db: str) -> dict[tuple[str, str], float]:
    """(task text, tier) -> what that attempt's calls cost, summed from the ledger's call rows."""
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT r.prompt_text, r.tier, (SELECT SUM(c.cost_usd) FROM calls c WHERE c.session = r.session "
                            "AND c.kind != 'run') FROM calls r WHERE r.kind = 'run'").fetchall()
    finally:
        conn.close()
    return {(text, tier): cost for text, tier, cost in rows}


def test_tune_on_the_ledger_history_of_real_tier_runs(setup, repo, tmp_path):
    proc = tier(setup, "tune", "--ledger")
    assert proc.returncode == 4 and "no finished `tier run` task" in proc.stderr and proc.stderr.count("\n") == 1
    proc = tier(setup, "tune", "--ledger", "--outcomes", "x.csv")
    assert proc.returncode == 2 and "one source" in proc.stderr

    names = {"hard 1": HARD, "easy 1": EASY, "hard 2": HARD, "easy 2": EASY}
    for name, check in names.items():
        run_task(setup, repo, name, check)
        if name == "easy 1":  # hard 1 has both outcomes, easy 1 stopped at tier1: too few to cross-validate
            proc = tier(setup, "tune", "--ledger", "--json")
            assert proc.returncode == 4, proc.stderr
            assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr and not proc.stdout
            assert "too few tasks to cross-validate: 1 of the ledger's 2 tier run task(s)" in proc.stderr
            assert "(tier1, tier2)" in proc.stderr and "--start TIER" in proc.stderr
    for name, check in names.items():
        if check == EASY:  # the tier its cascade skipped
            run_task(setup, repo, name, check, "--start", "tier2")
    snippet = tmp_path / "run.yaml"
    proc = tier(setup, "tune", "--ledger", "--folds", "2", "--json", "--write", str(snippet))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["ledger"] == {"runs": 6, "tasks": 4, "complete_tasks": 4, "unknown_cost_tasks": 0,
                              "superseded_attempts": 0}
    assert data["tiers"] == ["tier1", "tier2"] and data["tasks"] == 4 and data["map"] == {"tier1": "tier1", "tier2": "tier2"}

    costs = attempt_costs(setup["db"])
    texts = {name: f"implement add in calc.py ({name})" for name in names}
    policies = data["chosen"]["in_sample"]
    assert policies["always:tier1"]["success_rate"] == 0.5  # the easy tasks only
    assert policies["always:tier2"]["success_rate"] == 1.0
    assert policies["always:tier2"]["cost_usd"] == pytest.approx(sum(costs[(t, "tier2")] for t in texts.values()))
    # the chosen policy resolves every task, tier1 first: tier1 on all four, tier2 on the hard two
    cascade = sum(costs[(t, "tier1")] for t in texts.values()) + sum(
        costs[(texts[n], "tier2")] for n, c in names.items() if c == HARD)
    assert data["chosen"]["policy"].startswith("cascade:tier1,tier2")
    assert policies["tuned"]["success_rate"] == 1.0
    assert policies["tuned"]["cost_usd"] == pytest.approx(cascade)
    assert cascade < policies["always:tier2"]["cost_usd"]
    assert data["cross_validation"]["folds"] == 2 and data["cross_validation"]["tasks"] == 4
    assert all(f["test_tasks"] for f in data["cross_validation"]["per_fold"])
    assert any(n.startswith("from the ledger: 6 tier run invocation(s), 4 task(s)") for n in data["notes"])
    assert any("cross-validated figures are rough" in n for n in data["notes"])
    assert "run:" in snippet.read_text() and data["written"] == str(snippet)

    # the human table says where the tasks came from; --since past them leaves nothing to tune
    text = tier(setup, "tune", "--ledger", "--folds", "2")
    assert text.returncode == 0 and "from the ledger: 6 tier run invocation(s)" in text.stdout.replace("\n", " ")
    later = tier(setup, "tune", "--ledger", "--since", "2999-01-01")
    assert later.returncode == 4 and "no finished `tier run` task" in later.stderr
