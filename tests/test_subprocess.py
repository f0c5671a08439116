"""The real `tier` process: what it imports, and Ctrl-C in the middle of a stream."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from fakeprovider import Reply

pytestmark = pytest.mark.slow


def run_tier(args, env, **kwargs):
    return subprocess.run([sys.executable, "-X", "importtime", "-m", "tiercli", *args], env=env,
                          capture_output=True, text=True, timeout=60, **kwargs)


def imported_modules(stderr: str) -> set[str]:
    """Module names from `python -X importtime` output."""
    names = set()
    for line in stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    return names


@pytest.mark.parametrize("args", [
    ["--help"],
    ["config", "check"],
    ["config", "show"],
    ["log"],
    ["log", "--json"],
    ["classify", "--classifier", "local", "add a docstring to parse_args"],
    ["ask", "--dry-run", "-t", "bug_fix", "fix the crash"],
    ["report"],
])
def test_commands_that_call_no_model_never_import_litellm(args, tier_home):
    env = dict(os.environ)
    # a ledger with a row in it, so `log` and `report` do real work
    first = run_tier(["ask", "-t", "search", "where is main?"], env)
    assert first.returncode == 0, first.stderr[-2000:]
    result = run_tier(args, env)
    assert result.returncode == 0, result.stderr[-2000:]
    modules = imported_modules(result.stderr)
    assert "tiercli.cli" in modules  # the measurement works
    assert not any(m == "litellm" or m.startswith("litellm.") for m in modules)


def test_ctrl_c_mid_stream_records_an_interrupted_call(fake_provider, tmp_path, tier_home):
    config = tmp_path / "c.yaml"
    config.write_text(f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: openai/gpt-4o-mini, api_base: "{fake_provider.openai_base}", api_key: os.environ/OPENAI_API_KEY}}
router_settings: {{num_retries: 0}}
routing: {{tiers: [tier1], default_tier: tier1, classifier: static, task_types: {{}}, labels: {{}}}}
guardrails: {{compaction: {{tier: tier1}}}}
""")
    words = " ".join(f"w{i}" for i in range(200))
    fake_provider.set_default("gpt-4o-mini", Reply(text=words, chunk_delay_s=0.05))
    env = dict(os.environ, OPENAI_API_KEY="sk-test-0000000000000000", PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "ask", "-c", str(config), "tell me a long story"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0)
    # unbuffered: what is read here is exactly what communicate() will not see again (a buffered read
    # of 3 bytes pulled more into the buffer, which communicate() then lost on a loaded machine)
    first = b""
    while len(first) < 3:  # blocks until the stream has started
        piece = os.read(proc.stdout.fileno(), 3 - len(first))
        assert piece, "stdout closed before the answer started"
        first += piece
    assert first == b"w0 "
    time.sleep(0.3)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err.decode()[-2000:]
    assert b"Traceback" not in err
    conn = sqlite3.connect(tier_home / "ledger.db")
    conn.row_factory = sqlite3.Row
    [row] = [dict(r) for r in conn.execute("SELECT * FROM calls")]
    assert row["status"] == "interrupted"
    received = (first + out).decode()
    assert row["response_text"] and received.startswith(row["response_text"].rstrip())
    assert 0 < row["output_tokens"] < 200 and row["output_estimated"] == 1
