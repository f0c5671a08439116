"""The stack every agent test runs on: the strict fake provider (in this process), scripted to drive a
multi-step tool-use task, and a real `tier serve` subprocess in front of it with its own ledger.

Every agent's own outbound traffic is off: its telemetry/update/reporting switches, an isolated home
(HOME, CLAUDE_CONFIG_DIR, CODEX_HOME), and HTTP(S)_PROXY/ALL_PROXY pointing at a closed local port
(127.0.0.1:9) with NO_PROXY for loopback, so anything that still tries to leave fails at once.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from fakeprovider import FakeProvider, RecordedRequest, Reply

ROOT = Path(__file__).resolve().parents[2]
DONE = "TIER-AGENT-TASK-DONE"
# Models every tier is served as. Claude Code 2.1.x sends, on every main call, thinking {type: adaptive},
# output_config.effort, context_management, max_tokens 128000 and betas such as effort-2025-11-24; the
# strict fake accepts those only from models that support them (claude-sonnet-4-6 / claude-opus-4-8).
# aider sends temperature 0, which OpenAI's reasoning models refuse: gpt-4o-mini takes it.
COMPATIBLE_TIERS = ("anthropic/claude-sonnet-4-6", "openai/gpt-4o-mini", "anthropic/claude-opus-4-8")
# The tiers a user would configure (cheap haiku, gpt-5-mini): they work only through the gateway's request
# adaptation (providers/adapt.py) to the model each call is routed to.
CHEAP_TIERS = ("anthropic/claude-haiku-4-5", "openai/gpt-5-mini", "anthropic/claude-opus-4-8")
SERVER_KEYS = {"ANTHROPIC_API_KEY": "sk-ant-tier-config-key-0123456789", "OPENAI_API_KEY": "sk-tier-config-key-0123456789"}
CLOSED = "http://127.0.0.1:9"  # the discard port: nothing listens, every proxied connection is refused
NO_NETWORK = {"HTTP_PROXY": CLOSED, "HTTPS_PROXY": CLOSED, "ALL_PROXY": CLOSED, "http_proxy": CLOSED,
              "https_proxy": CLOSED, "all_proxy": CLOSED, "NO_PROXY": "127.0.0.1,localhost,::1",
              "no_proxy": "127.0.0.1,localhost,::1"}

# Claude Code's own traffic off: telemetry, updates, error reports, feedback, background model calls
CLAUDE_ENV = {
    "DISABLE_TELEMETRY": "1", "DISABLE_AUTOUPDATER": "1", "DISABLE_ERROR_REPORTING": "1", "DISABLE_BUG_COMMAND": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "DISABLE_NON_ESSENTIAL_MODEL_CALLS": "1",
    "CLAUDE_CODE_DISABLE_FEEDBACK_SURVEY": "1", "CLAUDE_CODE_IDE_SKIP_AUTO_INSTALL": "1", "DISABLE_COST_WARNINGS": "1",
}

def agents_dir() -> Path:
    """Where scripts/test_agents.sh installed the agents (.agents/ in the checkout, git-ignored)."""
    return Path(os.environ.get("TIER_AGENTS_DIR") or ROOT / ".agents")


# -- the scripted model ------------------------------------------------------------------------------------
def _has_tool_result(body: dict[str, Any]) -> bool:
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        if m.get("role") == "tool":
            return True
        content = m.get("content")
        if isinstance(content, list) and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in content):
            return True
    return False


def _anthropic_tools(body: dict[str, Any]) -> list[str]:
    return [t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]


def _openai_tools(body: dict[str, Any]) -> list[str]:
    return [(t.get("function") or {}).get("name") or t.get("name") for t in body.get("tools") or [] if isinstance(t, dict)]


def scripted(rec: RecordedRequest) -> Reply:
    """Step 1: call the agent's shell tool to list the directory; step 2 (a tool result is in the
    conversation): answer with DONE. aider has no tools: it gets a buggy file first and, once its test
    command has failed and it sent the failure back, the fixed file. Decided by what the request
    carries, not by its wire protocol: tier may route any agent to an Anthropic or an OpenAI tier."""
    body = rec.body
    tools = _anthropic_tools(body) + _openai_tools(body)
    if "Bash" in tools:  # Claude Code (to an Anthropic tier: the passthrough keeps its tool names)
        if not _has_tool_result(body):
            return Reply(text="I will list the files.", tool_calls=[
                {"id": "toolu_tier_ls", "name": "Bash", "arguments": {"command": "ls", "description": "List the files"}}])
        return Reply(text=f"The directory holds the listed files. {DONE}")
    shell = next((t for t in tools if t in ("shell", "exec_command", "local_shell", "shell_command")), None)
    if shell:  # Codex
        if not _has_tool_result(body):
            args = {"cmd": "ls"} if shell == "exec_command" else {"command": ["ls"]} if shell == "shell" else {"command": "ls"}
            return Reply(text="", tool_calls=[{"id": "call_tier_ls", "name": shell, "arguments": args}])
        return Reply(text=f"The directory holds the listed files. {DONE}")
    if tools:
        return Reply(text=f"Nothing to do. {DONE}")
    # aider (whole-file edit format): buggy first, fixed after the test failure is reported back
    answered = any(isinstance(m, dict) and m.get("role") == "assistant" and "helo" in json.dumps(m.get("content"))
                   for m in body.get("messages") or [])
    word = "hello" if answered else "helo"
    return Reply(text=f"Here is the file.\n\nhello.py\n```python\nprint(\"{word}\")\n```\n")


# -- tier serve ---------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(path: Path, fake: FakeProvider, tiers: tuple[str, str, str]) -> Path:
    lines = ["model_list:"]
    for i, model in enumerate(tiers, start=1):
        proto = model.split("/", 1)[0]
        base = fake.anthropic_base if proto == "anthropic" else fake.openai_base
        var = "ANTHROPIC_API_KEY" if proto == "anthropic" else "OPENAI_API_KEY"
        lines += [f"  - model_name: tier{i}",
                  f'    litellm_params: {{model: {model}, api_base: "{base}", api_key: os.environ/{var}}}']
    lines += ["router_settings: {num_retries: 0}", "routing: {classifier: local}"]
    path.write_text("\n".join(lines) + "\n")
    return path


@dataclass
class Stack:
    fake: FakeProvider
    url: str
    db: Path
    config: Path
    home: Path
    proc: subprocess.Popen
    log: Path
    variant: str = "compatible"

    def rows(self) -> list[dict[str, Any]]:
        conn = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at, rowid")]
        finally:
            conn.close()

    def settled_rows(self, n: int, timeout: float = 15.0) -> list[dict[str, Any]]:
        """The ledger once it holds n rows and none is pending (settling runs after the answer)."""
        deadline = time.time() + timeout
        while True:
            rows = self.rows()
            if len(rows) >= n and all(r["status"] != "pending" for r in rows):
                return rows
            if time.time() > deadline:
                return rows
            time.sleep(0.1)

    def report(self) -> dict[str, Any]:
        out = subprocess.run([sys.executable, "-m", "tiercli", "report", "--all", "--json", "--db", str(self.db),
                              "--config", str(self.config)], capture_output=True, text=True, timeout=120,
                             env=tier_env(self.home))
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)


def tier_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") and k not in ("TIER_CONFIG", "TIER_DB")}
    env.update(SERVER_KEYS, TIER_HOME=str(home), NO_COLOR="1", LITELLM_LOCAL_MODEL_COST_MAP="True",
               LITELLM_OFFLINE_MODE="true", **NO_NETWORK)
    return env


def start_stack(root: Path, tiers: tuple[str, str, str] = COMPATIBLE_TIERS) -> Stack:
    fake = FakeProvider().start()  # strict by default
    fake.set_default("*", scripted)
    home = root / "tier-home"
    home.mkdir(parents=True, exist_ok=True)
    config = write_config(root / "tier.yaml", fake, tiers)
    db = root / "ledger.db"
    port = _free_port()
    log = root / "serve.log"
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "serve", "--port", str(port), "--config", str(config),
                             "--db", str(db)], stdout=log.open("w"), stderr=subprocess.STDOUT, env=tier_env(home))
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while True:
        if proc.poll() is not None:
            fake.stop()
            raise RuntimeError(f"tier serve exited: {log.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if time.time() > deadline:
            proc.kill()
            fake.stop()
            raise RuntimeError("tier serve did not answer /health within 120 s")
        time.sleep(0.2)
    return Stack(fake, url, db, config, home, proc, log)


def agent_env(home: Path, **extra: str) -> dict[str, str]:
    """A minimal environment: no inherited keys or settings, an isolated home, no outbound traffic."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "LANG": "C.UTF-8", "TERM": "dumb",
           "NO_COLOR": "1", **NO_NETWORK}
    env.update(extra)
    return env
