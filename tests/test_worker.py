"""The warm worker behind `tier ask` (worker.py, worker_client.py), through real `tier` processes.

conftest.py sets TIER_NO_WORKER=1 for every test; these tests turn it off. Each worker started here
(directly with the key the client computes, or by a client) is stopped at the end by its pid.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fakeprovider import Reply, tier_config

pytestmark = pytest.mark.slow

OPENAI_KEY = "sk-test-worker-0123456789abcdef"
WARM_TIMEOUT_S = 180  # importing litellm takes 3-15 s on a loaded machine
VOLATILE = {"id", "started_at", "ended_at", "latency_ms", "owner_pid", "owner_started", "parent_id"}


@pytest.fixture
def workers(tier_home):
    """Pids of the workers of this test's TIER_HOME; each is stopped (SIGTERM, then SIGKILL) at the end."""
    started: list[int] = []
    yield started
    for pid in set(started) | set(logged_pids(tier_home)):
        for sig in (signal.SIGTERM, signal.SIGKILL):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                break
            time.sleep(0.2)


def log_text(home: Path) -> str:
    try:
        return (home / "worker" / "worker.log").read_text()
    except FileNotFoundError:
        return ""


def logged_pids(home: Path) -> list[int]:
    return [int(p) for p in re.findall(r"tier worker (\d+): serving", log_text(home))]


def sockets(home: Path) -> list[Path]:
    """The workers' socket paths (under TIER_HOME, or a short private directory when that is too deep)."""
    return [Path(p) for p in re.findall(r": serving .* on (\S+\.sock),", log_text(home))]


def answered(home: Path) -> int:
    return log_text(home).count("answered a call")


def wait_for(predicate, timeout: float = WARM_TIMEOUT_S, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def env_for(**extra: str) -> dict[str, str]:
    env = dict(os.environ, OPENAI_API_KEY=OPENAI_KEY, TIER_WORKER_IDLE_S="300", PYTHONUNBUFFERED="1")
    env.pop("TIER_NO_WORKER", None)
    env.update(extra)
    return env


def config_file(fake, tmp_path: Path, body: str = "", name: str = "c.yaml") -> str:
    return tier_config(fake, tmp_path / name, ["openai/gpt-4o-mini"], key_var="OPENAI_API_KEY", body=(
        "routing: {classifier: static, tiers: [tier1], default_tier: tier1, task_types: {}, labels: {}}\n"
        "guardrails: {compaction: {tier: tier1}" + body + "}\n"))


def tier(args, env, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tiercli", *args], env=env, capture_output=True, text=True,
                          timeout=180, **kwargs)


def start_worker(config: str, env: dict[str, str], home: Path, workers: list[int], *,
                 alive: bool = True, warm: bool = True) -> subprocess.Popen:
    """The worker a `tier ask -c config` under `env` would talk to, started and warmed."""
    code = ("import sys; from tiercli import worker_client as w; r = w.Route.find(sys.argv[1], None); "
            "print(r.key, r.sock)")
    key, sock = subprocess.run([sys.executable, "-c", code, config], env=env, capture_output=True, text=True,
                               check=True).stdout.split()
    (home / "worker").mkdir(parents=True, exist_ok=True)
    log = open(home / "worker" / "worker.log", "ab")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "_worker", "--key", key, "--socket", sock,
                             "--config", config], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=log, start_new_session=True)
    log.close()
    workers.append(proc.pid)
    if not warm:  # listening, still importing litellm
        wait_for(lambda: f"tier worker {proc.pid}: serving" in log_text(home), what="the socket")
        return proc
    wait_for(lambda: f"tier worker {proc.pid}: warm in" in log_text(home) or proc.poll() is not None, what="warm-up")
    assert f"tier worker {proc.pid}: warm in" in log_text(home), log_text(home)
    if alive:
        assert proc.poll() is None, log_text(home)
    return proc


def rows(home: Path) -> list[dict]:
    conn = sqlite3.connect(home / "ledger.db")
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at")]
    finally:
        conn.close()


def stable(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in VOLATILE}


def imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


# -- one pipeline -----------------------------------------------------------------------------------
def test_rows_and_output_are_the_same_through_the_worker_and_in_process(fake_provider, tmp_path, tier_home, workers):
    fake_provider.set_default("gpt-4o-mini", Reply(text="the answer is in retry.py", cache_read_tokens=3))
    config = config_file(fake_provider, tmp_path)
    args = ["ask", "-c", config, "-s", "s1", "where is the retry policy?"]
    local = tier(args, env_for(TIER_NO_WORKER="1"))
    assert local.returncode == 0, local.stderr
    start_worker(config, env_for(), tier_home, workers)
    remote = tier(args, env_for())
    assert remote.returncode == 0, remote.stderr
    assert answered(tier_home) == 1  # the worker served the second call
    assert (remote.stdout, remote.stderr) == (local.stdout, local.stderr)
    first, second = rows(tier_home)
    assert stable(first) == stable(second)
    assert second["status"] == "ok" and second["owner_pid"] is None and second["cost_usd"] > 0
    # --json too: the same document apart from the call's id and latency
    as_json = [json.loads(tier([*args, "--json"], env).stdout) for env in (env_for(TIER_NO_WORKER="1"), env_for())]
    for doc in as_json:
        doc.pop("call_id"), doc.pop("latency_ms")
    assert as_json[0] == as_json[1] and answered(tier_home) == 2


def test_the_client_imports_no_litellm_no_sqlalchemy_no_config_when_a_worker_answers(fake_provider, tmp_path, tier_home,
                                                                                   workers):
    fake_provider.set_default("gpt-4o-mini", Reply(text="warm answer"))
    config = config_file(fake_provider, tmp_path)
    start_worker(config, env_for(), tier_home, workers)
    result = subprocess.run([sys.executable, "-X", "importtime", "-m", "tiercli", "ask", "-c", config, "hi"],
                            env=env_for(), capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout == "warm answer\n" and answered(tier_home) == 1
    modules = imported(result.stderr)
    assert "tiercli.worker_client" in modules  # the measurement works
    for heavy in ("litellm", "sqlalchemy", "tiercli.ledger", "tiercli.config", "tiercli.calls"):
        assert heavy not in modules, heavy  # (pydantic is typer's: every command loads it)


def test_errors_are_the_same_through_the_worker(fake_provider, tmp_path, tier_home, workers):
    """A budget refusal (exit 7) and a missing key of another tier (exit 3): same line, same code."""
    fake_provider.set_default("gpt-4o-mini", Reply(text="ok"))
    config = tmp_path / "two.yaml"
    config.write_text(f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{fake_provider.openai_base}", api_key: os.environ/OPENAI_API_KEY}}
  - model_name: tier2
    litellm_params: {{model: openai/gpt-5-mini, api_base: "{fake_provider.openai_base}", api_key: os.environ/UNSET_TIER2_KEY}}
router_settings: {{num_retries: 0}}
routing: {{classifier: static, tiers: [tier1, tier2], default_tier: tier1, task_types: {{}}, labels: {{}}}}
guardrails: {{compaction: {{tier: tier1}}, budget: {{session_usd: 0.0000001}}}}
""")
    config = str(config)
    start_worker(config, env_for(), tier_home, workers)
    cases = [["ask", "-c", config, "-s", "budgeted", "a question"],  # refused: the session cap
             ["ask", "-c", config, "--tier", "tier2", "a question"]]  # tier2's key variable is unset
    for args in cases:
        local = tier(args, env_for(TIER_NO_WORKER="1"))
        before = answered(tier_home)
        remote = tier(args, env_for())
        assert answered(tier_home) == before + 1
        assert (remote.returncode, remote.stdout, remote.stderr) == (local.returncode, local.stdout, local.stderr)
    assert [r["status"] for r in rows(tier_home)] == ["refused", "refused"]  # the key check writes nothing
    assert tier(cases[0], env_for()).returncode == 7 and tier(cases[1], env_for()).returncode == 3


# -- lifecycle -------------------------------------------------------------------------------------
def test_first_call_runs_in_process_and_starts_a_worker_and_a_config_change_starts_another(
        fake_provider, tmp_path, tier_home, workers):
    fake_provider.set_default("gpt-4o-mini", Reply(text="fine"))
    config = config_file(fake_provider, tmp_path)
    env = env_for()
    first = tier(["ask", "-c", config, "one"], env)
    assert first.returncode == 0 and first.stdout == "fine\n", first.stderr
    wait_for(lambda: "warm in" in log_text(tier_home), what="the worker the first call started")
    directory = tier_home / "worker"
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    [sock] = sockets(tier_home)
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700
    assert stat.S_ISSOCK(sock.stat().st_mode) and stat.S_IMODE(sock.stat().st_mode) == 0o600
    assert OPENAI_KEY not in log_text(tier_home) and OPENAI_KEY not in sock.name
    assert tier(["ask", "-c", config, "two"], env).returncode == 0 and answered(tier_home) == 1
    # a changed config (a price here) is another key: in-process now, a second worker for next time
    Path(config).write_text(Path(config).read_text() + "prices: {openai/gpt-4o-mini: {input: 1, output: 2}}\n")
    third = tier(["ask", "-c", config, "three"], env)
    assert third.returncode == 0 and answered(tier_home) == 1
    wait_for(lambda: log_text(tier_home).count("warm in") == 2, what="the second worker")
    assert len(set(logged_pids(tier_home))) == 2 and len({p for p in sockets(tier_home) if p.exists()}) == 2
    assert tier(["ask", "-c", config, "four"], env).returncode == 0 and answered(tier_home) == 2
    config_hashes = {r["config_hash"] for r in rows(tier_home)}
    assert len(config_hashes) == 2  # the new worker loaded the new config


def test_idle_worker_exits_and_removes_its_socket(fake_provider, tmp_path, tier_home, workers):
    config = config_file(fake_provider, tmp_path)
    proc = start_worker(config, env_for(TIER_WORKER_IDLE_S="1"), tier_home, workers, alive=False)
    assert proc.wait(timeout=60) == 0
    log = log_text(tier_home)
    assert log.index("warm in") < log.index("idle for 1 s: exiting")  # the idle clock starts once warm
    [sock] = sockets(tier_home)
    assert not sock.exists()


def test_tier_no_worker_runs_in_process_and_starts_nothing(fake_provider, tmp_path, tier_home, workers):
    fake_provider.set_default("gpt-4o-mini", Reply(text="local"))
    config = config_file(fake_provider, tmp_path)
    assert tier(["ask", "-c", config, "one"], env_for(TIER_NO_WORKER="1")).returncode == 0
    time.sleep(1)
    assert not (tier_home / "worker").exists()
    # with a worker up, TIER_NO_WORKER=1 still runs in-process; the config switch keeps it from starting
    start_worker(config, env_for(), tier_home, workers)
    assert tier(["ask", "-c", config, "two"], env_for(TIER_NO_WORKER="1")).returncode == 0
    assert answered(tier_home) == 0
    off = config_file(fake_provider, tmp_path, name="off.yaml")
    Path(off).write_text(Path(off).read_text() + "worker: {enabled: false}\n")
    assert tier(["ask", "-c", off, "three"], env_for()).returncode == 0
    wait_for(lambda: "worker.enabled is false" in log_text(tier_home), timeout=60, what="the disabled worker")
    assert tier(["ask", "-c", off, "four"], env_for()).returncode == 0
    time.sleep(1)
    assert log_text(tier_home).count("worker.enabled is false") == 1  # not started again
    assert len(rows(tier_home)) == 4 and answered(tier_home) == 0


# -- interruptions ---------------------------------------------------------------------------------
def test_ctrl_c_mid_stream_through_the_worker_settles_the_call_interrupted(fake_provider, tmp_path, tier_home,
                                                                           workers):
    words = " ".join(f"w{i}" for i in range(200))
    fake_provider.set_default("gpt-4o-mini", Reply(text=words, chunk_delay_s=0.05))
    config = config_file(fake_provider, tmp_path)
    worker = start_worker(config, env_for(), tier_home, workers)
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "ask", "-c", config, "tell me a long story"],
                            env=env_for(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    first = b""
    while len(first) < 3:
        piece = os.read(proc.stdout.fileno(), 3 - len(first))
        assert piece, "stdout closed before the answer started"
        first += piece
    assert first == b"w0 "
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert err.decode() == "tier: interrupted\n"
    wait_for(lambda: answered(tier_home) == 1, timeout=60, what="the worker to settle the call")
    [row] = rows(tier_home)
    assert row["status"] == "interrupted" and row["error_class"] == "KeyboardInterrupt"
    # what the user saw is the start of what was recorded: the worker also records the pieces that
    # were on their way to the client when it went (the provider sent them; they are billed)
    received = (first + out).decode()
    assert row["response_text"].startswith(received.rstrip()) and len(received.split()) >= 1
    assert 0 < row["output_tokens"] < 200 and row["output_estimated"] == 1
    assert worker.poll() is None  # the worker lives on and serves the next call
    fake_provider.set_default("gpt-4o-mini", Reply(text="short"))
    assert tier(["ask", "-c", config, "again"], env_for()).stdout == "short\n" and answered(tier_home) == 2


def test_a_worker_killed_mid_call_gives_one_line_and_the_row_is_recovered(fake_provider, tmp_path, tier_home,
                                                                          workers):
    fake_provider.set_default("gpt-4o-mini", Reply(text="streamed before the pause"))
    config = config_file(fake_provider, tmp_path)
    env = env_for(TIER_TEST_PAUSE_AT="response", TIER_TEST_PAUSE_S="120")
    worker = start_worker(config, env, tier_home, workers)
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "ask", "-c", config, "a question"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: "tier-test: paused at response" in log_text(tier_home), timeout=120, what="the pause")
    assert [r["status"] for r in rows(tier_home)] == ["pending"]
    worker.kill()
    worker.wait(timeout=30)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1 and out == "streamed before the pause\n"
    assert err.startswith("tier: error: the tier worker ended during the call") and err.count("\n") == 1, err
    assert "Traceback" not in err
    [row] = rows(tier_home)
    assert row["status"] == "interrupted" and row["error_class"] == "ProcessGone" and row["reserved_usd"] is None


# -- keying (no worker needed) ----------------------------------------------------------------------
def test_the_key_follows_the_config_its_prefix_file_and_the_key_values_never_showing_them(
        fake_provider, tmp_path, tier_home, monkeypatch):
    from tiercli import worker_client

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TIER_NO_WORKER")
    (tmp_path / "prefix.md").write_text("You are terse.")
    config = config_file(fake_provider, tmp_path, body="")
    Path(config).write_text(Path(config).read_text() + 'caching: {static_prefix: "@prefix.md"}\n')
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)

    def key() -> str:
        route = worker_client.Route.find(config, None)
        assert route is not None and route.cwd == tmp_path  # a relative @file: loaded from here
        assert OPENAI_KEY not in str(route.sock) and OPENAI_KEY not in route.key
        return route.key

    first = key()
    assert key() == first  # stable
    (tmp_path / "prefix.md").write_text("You are verbose.")
    second = key()
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY + "x")
    third = key()
    Path(config).write_text(Path(config).read_text() + "# a comment\n")
    fourth = key()
    assert len({first, second, third, fourth}) == 4
    assert not (tier_home / "worker" / "salt").read_bytes().startswith(OPENAI_KEY.encode())
    monkeypatch.setenv("TIER_NO_WORKER", "1")
    assert worker_client.Route.find(config, None) is None


def test_concurrent_calls_each_get_their_own_answer_and_row(fake_provider, tmp_path, tier_home, workers):
    fake_provider.set_default("gpt-4o-mini", Reply(text="one answer for each — ✓ é", chunk_delay_s=0.02))
    config = config_file(fake_provider, tmp_path)
    start_worker(config, env_for(), tier_home, workers)
    procs = [subprocess.Popen([sys.executable, "-m", "tiercli", "ask", "-c", config, "-s", f"s{i}", f"question {i}"],
                              env=env_for(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(4)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert all(out == "one answer for each — ✓ é\n" for out, _ in outputs)
    assert answered(tier_home) == 4
    found = rows(tier_home)
    assert sorted(r["session"] for r in found) == ["s0", "s1", "s2", "s3"]
    assert {r["status"] for r in found} == {"ok"} and all(r["prompt_text"] == f"question {r['session'][1:]}" for r in found)


def test_a_call_that_arrives_during_the_warm_up_waits_for_it(fake_provider, tmp_path, tier_home, workers):
    fake_provider.set_default("gpt-4o-mini", Reply(text="after the warm-up"))
    config = config_file(fake_provider, tmp_path)
    start_worker(config, env_for(), tier_home, workers, warm=False)
    result = tier(["ask", "-c", config, "early"], env_for())
    assert (result.returncode, result.stdout) == (0, "after the warm-up\n"), result.stderr
    assert answered(tier_home) == 1
    log = log_text(tier_home)
    assert log.index("warm in") < log.index("answered a call")
