"""`tier run` end to end: the real CLI in a subprocess, its in-process gateway, the fake provider
upstream (real HTTP, real litellm), a scripted agent (tests/fake_agent.py) that calls the base URL
it is given and edits a file, a real check command, and real git in a temporary repository.

tier1 = claude-haiku-4-5 answers a wrong add(); tier2 = claude-sonnet-4-5 answers a right one; the
check imports calc.py and tests add(2, 3) == 5.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakeprovider import Reply, tier_config
from helpers import git, git_repo, rows

HERE = Path(__file__).resolve().parent
AGENT = [sys.executable, str(HERE / "fake_agent.py")]
PROVIDER_KEY = "sk-ant-run-test-0123456789SECRET"
WRONG = "def add(a, b):\n    return a - b\n"
RIGHT = "def add(a, b):\n    return a + b\n"
ORIGINAL = "def add(a, b):\n    raise NotImplementedError\n"
CHECK = shlex.join([sys.executable, "-c", "import calc, sys; sys.exit(0 if calc.add(2, 3) == 5 else 1)"])
TASK = "implement add in calc.py"


@pytest.fixture
def repo(tmp_path) -> Path:
    return git_repo(tmp_path / "repo", {"calc.py": ORIGINAL}, "start")


@pytest.fixture
def setup(fake_provider, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", PROVIDER_KEY)
    config = tier_config(fake_provider, tmp_path / "tier.yaml", ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5",
                                                                  "anthropic/claude-opus-4-5"], fallbacks=False)
    fake_provider.set_default("claude-haiku-4-5", Reply(text=WRONG))
    fake_provider.set_default("claude-sonnet-4-5", Reply(text=RIGHT))
    fake_provider.set_default("claude-opus-4-5", Reply(text=RIGHT))
    return {"config": config, "db": str(tmp_path / "ledger.db"), "fake": fake_provider}


def tier_run(setup, repo: Path, *args: str, agent: list[str], **kw) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "tiercli", "run", "-c", setup["config"], "--db", setup["db"], *args, "--", *agent]
    return subprocess.run(cmd, cwd=repo, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, **kw)


def run_meta(row: dict) -> dict:
    return json.loads(row["meta_json"])["run"]


def test_first_tier_fails_the_check_tree_restored_second_tier_passes(setup, repo):
    proc = tier_run(setup, repo, "--tiers", "tier1,tier2", "--check", CHECK,
                    agent=[*AGENT, TASK, "--max-tokens", "100,120"])
    assert proc.returncode == 0, proc.stderr
    assert (repo / "calc.py").read_text() == RIGHT
    # agent.log is new in each attempt: attempt 1's lines went with the restore
    assert (repo / "agent.log").read_text() == "call 1\ncall 2\n"
    assert "check failed (exit 1)" in proc.stderr and "resolved at tier2 (attempt 2)" in proc.stderr

    all_rows = rows(setup["db"])
    runs = [r for r in all_rows if r["kind"] == "run"]
    model_calls = [r for r in all_rows if r["kind"] != "run"]
    assert [(r["tier"], r["status"], r["check_passed"], r["error_class"]) for r in runs] == [
        ("tier1", "error", 0, "CheckFailed"), ("tier2", "ok", 1, None)]
    task_id = runs[0]["task_id"]
    assert task_id and {r["task_id"] for r in all_rows} == {task_id}
    assert runs[1]["parent_id"] == runs[0]["id"]
    # every call of an attempt went to its tier, in its session, whatever model the agent asked for
    for run_row, model in zip(runs, ["claude-haiku-4-5", "claude-sonnet-4-5"]):
        mine = [r for r in model_calls if r["session"] == run_row["session"]]
        assert [(r["tier"], r["served_model"].split("/")[-1], r["status"], r["decision_source"], r["source"])
                for r in mine] == [(run_row["tier"], model, "ok", "run", "run")] * 2
        assert json.loads(mine[0]["meta_json"])["serve"]["requested_model"] == "claude-opus-4-8"
        meta = run_meta(run_row)
        assert meta["calls"] == 2 and meta["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in mine))
        assert meta["cost_usd"] > 0 and run_row["cost_usd"] is None  # never counted twice
    assert run_meta(runs[0])["restored"] is True and run_meta(runs[1])["restored"] is False
    assert run_meta(runs[0])["check_exit"] == 1 and run_meta(runs[0])["agent_exit"] == 0
    # the provider saw the config's key; the agent only ever had the one-time token
    assert {r.headers["x-api-key"] for r in setup["fake"].requests} == {PROVIDER_KEY}
    assert PROVIDER_KEY not in json.dumps(all_rows)
    assert git(repo, "status", "--porcelain").splitlines() == [" M calc.py", "?? agent.log"]

    # what tier report gets: one task, resolved on tier2 after tier1 failed, its cost all four calls'
    from tiercli.ledger import Ledger
    from tiercli.run_outcomes import summarize

    ledger = Ledger(setup["db"])
    try:
        summary = summarize(ledger.run_attempts())
    finally:
        ledger.close()
    task_cost = sum(r["cost_usd"] for r in model_calls)
    assert summary["tasks"]["tasks"] == summary["tasks"]["resolved"] == 1
    assert summary["tasks"]["cost_per_task_usd"] == pytest.approx(task_cost)
    assert list(summary["by_start_tier"]) == ["tier1"] and list(summary["by_resolved_tier"]) == ["tier2"]
    assert summary["attempts_by_tier"]["tier1"]["outcomes"] == {"CheckFailed": 1}
    assert summary["attempts_by_tier"]["tier2"]["pass_rate"] == 1.0
    # tier report shows the same task; --user narrows it like every other section (a local run has no user)
    def report_runs(*extra: str):
        out = subprocess.run([sys.executable, "-m", "tiercli", "report", "--all", "--json", "-c", setup["config"],
                              "--db", setup["db"], *extra], capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)["runs"]

    assert report_runs()["tasks"] == report_runs("--user", "(none)")["tasks"] == summary["tasks"]
    assert report_runs("--user", "alice") is None
    # and what tier tune reads: one outcome per attempt, the task typed by the local classifier
    from tiercli.replay_outcomes.table import table_from_rows
    from tiercli.run_outcomes import outcome_rows

    ledger = Ledger(setup["db"])
    try:
        outcomes = outcome_rows(ledger.run_attempts())
    finally:
        ledger.close()
    assert [(t, tier, q) for t, _, tier, q, _ in outcomes] == [(task_id, "tier1", 0.0), (task_id, "tier2", 1.0)]
    assert outcomes[0][1] == runs[0]["task_type"] is not None
    table = table_from_rows(outcomes)
    assert table.task_ids == [task_id] and table.models == ["tier1", "tier2"]

    log = subprocess.run([sys.executable, "-m", "tiercli", "log", "--db", setup["db"], "--json"],
                         capture_output=True, text=True, check=True)
    kinds = [r["kind"] for r in json.loads(log.stdout)]
    assert kinds.count("run") == 2 and kinds.count("main") == 4


def test_cap_reached_mid_attempt_the_next_call_gets_402_and_the_attempt_fails(setup, repo):
    # the 2nd call asks for 64,000 output tokens (as Claude Code does), sent clamped to
    # guardrails.max_output_tokens (4,096): an upper bound of ~$0.02 on haiku, over the $0.01 cap; the
    # first (100 tokens, ~$0.0005) fits. An OpenAI client in front of Anthropic tiers: the pin holds
    # on the translated (litellm) path too.
    proc = tier_run(setup, repo, "--tiers", "tier1,tier2", "--check", CHECK, "--cap", "tier1=0.01",
                    agent=[*AGENT, TASK, "--protocol", "openai", "--max-tokens", "100,64000"])
    assert proc.returncode == 0, proc.stderr
    assert "call 2 failed: HTTP 402" in proc.stderr and "budget_exceeded" in proc.stderr
    assert "budget reached, a call was refused: attempt budget $0.01" in proc.stderr
    all_rows = rows(setup["db"])
    runs = [r for r in all_rows if r["kind"] == "run"]
    assert [(r["tier"], r["status"], r["error_class"], r["check_passed"]) for r in runs] == [
        ("tier1", "error", "BudgetExceeded", None), ("tier2", "ok", None, 1)]
    first = [r for r in all_rows if r["session"] == runs[0]["session"] and r["kind"] != "run"]
    assert [(r["status"], r["error_class"]) for r in first] == [("ok", None), ("refused", "BudgetExceeded")]
    assert "attempt budget $0.01" in first[1]["error_message"]
    meta = run_meta(runs[0])
    assert meta["outcome"] == "cap_reached" and meta["check_exit"] is None and meta["agent_exit"] == 1
    assert meta["cost_usd"] == pytest.approx(first[0]["cost_usd"]) and meta["cost_usd"] <= meta["cap_usd"]
    assert (repo / "calc.py").read_text() == RIGHT  # tier2's answer, on a restored tree
    assert (repo / "agent.log").read_text() == "call 1\ncall 2\n"


def test_dirty_tree_is_refused_and_allow_dirty_keeps_the_changes(setup, repo):
    (repo / "calc.py").write_text(ORIGINAL + "# mine\n")
    (repo / "notes.txt").write_text("untracked, mine\n")
    before = git(repo, "status", "--porcelain")
    proc = tier_run(setup, repo, "--check", CHECK, agent=[*AGENT, TASK])
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "uncommitted changes" in proc.stderr and "--allow-dirty" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert git(repo, "status", "--porcelain") == before and not setup["fake"].requests
    assert not Path(setup["db"]).exists() or not rows(setup["db"])

    # --allow-dirty: every tier fails (tier1 only), the user's changes are exactly as they were
    proc = tier_run(setup, repo, "--allow-dirty", "--tiers", "tier1", "--check", CHECK, agent=[*AGENT, TASK])
    assert proc.returncode == 8, proc.stderr
    assert "failed on every tier (tier1)" in proc.stderr
    assert git(repo, "status", "--porcelain") == before
    assert (repo / "calc.py").read_text() == ORIGINAL + "# mine\n" and not (repo / "agent.log").exists()


def test_ctrl_c_leaves_the_tree_restored_and_the_task_recorded(setup, repo, tmp_path):
    marker = tmp_path / "agent.pid"
    cmd = [sys.executable, "-m", "tiercli", "run", "-c", setup["config"], "--db", setup["db"], "--check", CHECK,
           "--", *AGENT, TASK, "--hang", str(marker)]
    proc = subprocess.Popen(cmd, cwd=repo, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 60
        while not (marker.exists() and marker.read_text()):
            assert proc.poll() is None and time.time() < deadline, proc.communicate()
            time.sleep(0.05)
        agent_pid = int(marker.read_text())
        assert (repo / "calc.py").read_text() == WRONG  # the agent's edit, mid-attempt
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    assert git(repo, "status", "--porcelain") == "" and (repo / "calc.py").read_text() == ORIGINAL
    with pytest.raises(ProcessLookupError):
        os.kill(agent_pid, 0)  # the agent was stopped too
    all_rows = rows(setup["db"])
    runs = [r for r in all_rows if r["kind"] == "run"]
    assert [(r["tier"], r["status"], r["error_class"]) for r in runs] == [("tier1", "interrupted", "KeyboardInterrupt")]
    assert run_meta(runs[0])["restored"] is True and runs[0]["owner_pid"] is None
    calls = [r for r in all_rows if r["kind"] != "run"]
    assert [(r["status"], r["task_id"]) for r in calls] == [("ok", runs[0]["task_id"])]
    assert run_meta(runs[0])["cost_usd"] == pytest.approx(calls[0]["cost_usd"])


def test_timeout_ends_the_attempt_and_stops_the_agent(setup, repo, tmp_path):
    # no --check: the agent's exit status decides; tier1's agent hangs past --timeout. It speaks the
    # Responses API (as Codex does): pinned like the other protocols
    marker = tmp_path / "hang.pid"
    proc = tier_run(setup, repo, "--tiers", "tier1", "--timeout", "3s",
                    agent=[*AGENT, TASK, "--protocol", "responses", "--hang", str(marker)])
    assert proc.returncode == 8, proc.stderr
    assert "wall-clock limit reached" in proc.stderr
    runs = [r for r in rows(setup["db"]) if r["kind"] == "run"]
    assert [(r["status"], r["error_class"], r["check_passed"]) for r in runs] == [("error", "Timeout", None)]
    assert run_meta(runs[0])["duration_s"] >= 3
    assert (repo / "agent.log").exists() is False and (repo / "calc.py").read_text() == ORIGINAL  # restored
    calls = [r for r in rows(setup["db"]) if r["kind"] != "run"]
    assert [(r["tier"], r["status"], r["session"]) for r in calls] == [("tier1", "ok", runs[0]["session"])]
    assert marker.read_text()  # written after the Responses answer came back
    assert [r.model for r in setup["fake"].requests] == ["claude-haiku-4-5"]
    assert git(repo, "status", "--porcelain") == ""
    with pytest.raises(ProcessLookupError):
        os.kill(int(marker.read_text()), 0)


def test_running_tier_serve_pins_by_model_name_and_refuses_caps(setup, repo, tmp_path):
    """--gateway URL: the agent is pointed at a running gateway; the tier is asked for by name."""
    import socket
    import threading

    import uvicorn

    from tiercli import config as cfgmod
    from tiercli.serve import create_app

    app = create_app(cfgmod.load(setup["config"]), tmp_path / "serve.db", token="serve-token-123")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        while not server.started:
            time.sleep(0.01)
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        proc = tier_run(setup, repo, "--gateway", url, "--cap", "1", agent=[*AGENT, TASK])
        assert proc.returncode == 2 and "per-attempt caps need the in-process gateway" in proc.stderr
        proc = tier_run(setup, repo, "--gateway", url, "--check", CHECK, agent=[*AGENT, TASK],
                        env={**os.environ, "TIER_SERVE_TOKEN": "serve-token-123"})
        assert proc.returncode == 0, proc.stderr
        assert "resolved at tier2 (attempt 2)" in proc.stderr and "cost not linked" in proc.stderr
    finally:
        server.should_exit = True
        thread.join(timeout=10)
    assert [r.model for r in setup["fake"].requests] == ["claude-haiku-4-5", "claude-sonnet-4-5"]
    runs = [r for r in rows(setup["db"]) if r["kind"] == "run"]
    assert [(r["tier"], r["status"]) for r in runs] == [("tier1", "error"), ("tier2", "ok")]
    assert run_meta(runs[0])["cost_usd"] is None  # the running gateway's calls are not linked to the task
    from tiercli.ledger import Ledger
    from tiercli.run_outcomes import summarize

    ledger = Ledger(setup["db"])
    try:
        summary = summarize(ledger.run_attempts())
    finally:
        ledger.close()
    assert summary["tasks"]["resolved"] == 1 and summary["tasks"]["unknown_cost"] == 1
    assert summary["tasks"]["cost_per_task_usd"] is None  # unknown, never $0


# -- options, without an agent -----------------------------------------------------------------------
def test_options(setup, tmp_path):
    from tiercli import config as cfgmod
    from tiercli import run as core
    from tiercli.errors import UsageError

    loaded = cfgmod.load(setup["config"])
    assert core.parse_tiers(None, loaded) == ["tier1", "tier2", "tier3"]
    assert core.parse_tiers("tier3, tier1", loaded) == ["tier3", "tier1"]
    for bad in ("tier9", "tier1,tier1", ","):
        with pytest.raises(UsageError):
            core.parse_tiers(bad, loaded)
    tiers = ["tier1", "tier2", "tier3"]
    assert core.parse_caps([], loaded, tiers) == {}
    assert core.parse_caps(["1.50"], loaded, tiers) == {"tier1": 1.5, "tier2": 1.5, "tier3": 1.5}
    # a tier's own cap wins over the all-tier one, in either order
    assert core.parse_caps(["tier3=3", "0.5"], loaded, tiers) == {"tier1": 0.5, "tier2": 0.5, "tier3": 3.0}
    for bad in ("abc", "0", "-1", "tier9=1", "tier1=nan"):
        with pytest.raises(UsageError):
            core.parse_caps([bad], loaded, tiers)
    path = Path(setup["config"])
    path.write_text(path.read_text() + "run: {caps: {tier3: 2.5}, cap_usd: 0.75, timeout: 15m}\n")
    loaded = cfgmod.load(path)
    assert loaded.config.run.timeout == 900
    assert core.parse_caps([], loaded, tiers) == {"tier1": 0.75, "tier2": 0.75, "tier3": 2.5}
    assert core.parse_caps(["tier1=0.1"], loaded, tiers) == {"tier1": 0.1, "tier2": 0.75, "tier3": 2.5}
    for bad_run in ("{caps: {tier9: 1}}", "{timeout: 15x}", "{caps: {tier1: 0}}", "{cap: 1}"):
        path.write_text(path.read_text().rsplit("run:", 1)[0] + f"run: {bad_run}\n")
        with pytest.raises(cfgmod.ConfigError):
            cfgmod.load(path)

    opts = core.RunOptions(command=["claude", "-p", "fix the test", "--model", "x"], tiers=tiers)
    assert core.task_text(opts) == "fix the test"
    assert core.task_text(core.RunOptions(command=["aider", "--message=do it", "--yes"], tiers=tiers)) == "do it"
    assert core.task_text(core.RunOptions(command=["codex", "exec", "refactor x"], tiers=tiers)) == "refactor x"
    assert core.task_text(core.RunOptions(command=["x"], tiers=tiers, task="given", stdin_text="more")) == "given"

    env = core.agent_env({"ANTHROPIC_AUTH_TOKEN": "real", "ANTHROPIC_API_KEY": "real", "NO_PROXY": "corp"},
                         "http://127.0.0.1:5", "tok")
    assert "ANTHROPIC_AUTH_TOKEN" not in env and env["ANTHROPIC_API_KEY"] == env["OPENAI_API_KEY"] == "tok"
    assert env["ANTHROPIC_BASE_URL"] == "http://127.0.0.1:5" and env["OPENAI_BASE_URL"] == "http://127.0.0.1:5/v1"
    assert env["OPENAI_API_BASE"] == env["OPENAI_BASE_URL"] and env["NO_PROXY"].startswith("corp,127.0.0.1")


def test_start_auto_classifies_the_task_text(setup, tmp_path):
    from tiercli import config as cfgmod
    from tiercli import run as core
    from tiercli.errors import UsageError
    from tiercli.ledger import Ledger

    loaded = cfgmod.load(setup["config"])
    ledger = Ledger(tmp_path / "l.db")
    try:
        def start(tiers, *command, task=None):
            opts = core.RunOptions(command=["agent", *command], tiers=tiers, start="auto", task=task)
            i, decision = core.first_tier(loaded, opts, ledger)
            return tiers[i], decision.tier

        assert start(["tier1", "tier2", "tier3"], "-p", "rename the variable foo to bar in utils.py") == ("tier1", "tier1")
        hard = "design the architecture for a distributed job scheduler with sharding and failover"
        assert start(["tier1", "tier2", "tier3"], task=hard) == ("tier3", "tier3")
        assert start(["tier1", "tier2"], task=hard) == ("tier2", "tier3")  # the strongest listed
        with pytest.raises(UsageError):
            core.first_tier(loaded, core.RunOptions(command=["agent"], tiers=["tier1"], start="auto"), ledger)
        # no --start: the first tier, unless run.start maps the task's type (what tier tune writes)
        easy = core.RunOptions(command=["agent", "-p", "rename the variable foo to bar in utils.py"],
                               tiers=["tier1", "tier2", "tier3"])
        i, decision = core.first_tier(loaded, easy, ledger)
        assert i == 0 and decision.task_type  # classified (locally) all the same, for the record
        path = Path(setup["config"])
        path.write_text(path.read_text() + f"run: {{start: {{{decision.task_type}: tier2}}}}\n")
        i, decision = core.first_tier(cfgmod.load(path), easy, ledger)
        assert i == 1 and decision.reasons[-1] == f"run.start.{decision.task_type} -> tier2"
    finally:
        ledger.close()


def test_gateway_pin_hook(setup, tmp_path):
    """The Gateway hook alone: a pinned request is recorded in the attempt's session with the task
    id, under the attempt's cap; one routed by a pin that has since changed is refused unrecorded."""
    import asyncio

    from tiercli import config as cfgmod
    from tiercli import guards
    from tiercli.errors import BudgetExceeded
    from tiercli.run import Attempt, pin_decision
    from tiercli.serve.gateway import Gateway, Pin
    from tiercli.serve.wire import read_incoming

    loaded = cfgmod.load(setup["config"])
    gw = Gateway(loaded, tmp_path / "g.db")
    body = {"model": "claude-opus-4-8", "max_tokens": 50, "messages": [{"role": "user", "content": "hi"}],
            "metadata": {"user_id": "user_x_session_agent-s1"}}
    inc = read_incoming("anthropic", body, {}, None)

    def pin(n: int) -> Pin:
        attempt = Attempt(f"a{n}", n, "tier2", f"run-t-{n}", 0.5, time.time())
        return Pin(pin_decision(loaded, "tier2", attempt, "task-1", None), attempt.session, "task-1",
                   (guards.Cap("attempt", 0.5, session=attempt.session),))

    async def scenario():
        await gw.startup()
        try:
            gw.pin = pin(1)
            decision, meta, sticky = await gw.route(inc, "c1")
            assert (decision.tier, decision.source, sticky) == ("tier2", "run", False)
            call = await gw._on_db(gw._admit, inc, decision, "c1", meta)
            assert call.plan.extra_caps == gw.pin.caps
            await gw._on_db(call.interrupted, "")
            gw.open_calls.pop("c1")
            stale, meta, _ = await gw.route(inc, "c2")
            gw.pin = pin(2)  # the attempt ended and the next began before this request was admitted
            with pytest.raises(BudgetExceeded):
                await gw._on_db(gw._admit, inc, stale, "c2", meta)
        finally:
            await gw.shutdown()

    asyncio.run(scenario())
    recorded = rows(str(tmp_path / "g.db"))
    assert [(r["id"], r["session"], r["task_id"], r["source"], r["tier"], r["decision_source"]) for r in recorded] == [
        ("c1", "run-t-1", "task-1", "run", "tier2", "run")]
    serve_meta = json.loads(recorded[0]["meta_json"])["serve"]
    assert serve_meta["agent_session"] == "agent-s1" and serve_meta["agent_task_id"] != "task-1"  # agent.py's, kept apart
    assert recorded[0]["reserved_usd"] is None  # settled: the reservation under the cap released
