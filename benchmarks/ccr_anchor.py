"""claude-code-router (npm @musistudio/claude-code-router, pinned) as the gateway benchmark's anchor for
Anthropic client -> OpenAI model: what a Claude Code user would run instead of `tier serve`.

Installed on first use into bench-out/npm-ccr (git-ignored); run as `ccr start` (its server in the
foreground) with HOME set to a fresh temporary folder holding only its config.json: one OpenAI-style
provider at the fake upstream, the `maxcompletiontokens` transformer (gpt-5 models take only
max_completion_tokens, as a user would configure it) and `streamoptions` (usage in the stream), no log
files. Its outbound traffic is switched off: a preloaded script (NODE_OPTIONS=--require) refuses every
socket that is not to loopback, so update checks or preset downloads cannot leave the machine.
A missing npm or a failed install skips the anchor with a message, never fakes it.

    from ccr_anchor import ensure_ccr, start_ccr
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from harness import OUT, npm_install, skip, wait_healthy

CCR_VERSION = "2.0.0"  # the version issue 17 measured
PREFIX = OUT / "npm-ccr"
CLI = PREFIX / "node_modules" / "@musistudio" / "claude-code-router" / "dist" / "cli.js"
LOOPBACK_ONLY = """// benchmark: refuse every connection that is not to loopback (no update checks, no downloads)
const net = require("net");
const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const first = Array.isArray(args[0]) ? args[0][0] : args[0];  // net.connect passes [options, callback]
  const o = first !== null && typeof first === "object" ? first : { port: first, host: Array.isArray(args[0]) ? undefined : args[1] };
  const host = o.host || "localhost";
  if (!o.path && !["127.0.0.1", "localhost", "::1"].includes(host)) {
    const err = new Error(`outbound connection to ${host} refused (benchmark: loopback only)`);
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};
"""


def ensure_ccr() -> Path | None:
    """claude-code-router's cli.js in bench-out/npm-ccr (installed on first use), or None with a message."""
    return npm_install("claude-code-router anchor", PREFIX, f"@musistudio/claude-code-router@{CCR_VERSION}", CLI,
                       needs_node=True)


def start_ccr(upstream: str, model: str, port: int, home: Path) -> tuple[subprocess.Popen, str] | None:
    """claude-code-router on 127.0.0.1:`port`, routing every request to `model` at the OpenAI-compatible
    `upstream` base URL; (process, url), or None with a message when it cannot be installed or started."""
    cli = ensure_ccr()
    if cli is None:
        return None
    folder = home / ".claude-code-router"
    folder.mkdir(parents=True, exist_ok=True)
    config = {"LOG": False, "PORT": port, "HOST": "127.0.0.1", "API_TIMEOUT_MS": 60000, "NON_INTERACTIVE_MODE": True,
              "Providers": [{"name": "fake", "api_base_url": upstream.rstrip("/") + "/v1/chat/completions",
                             "api_key": "sk-bench", "models": [model],
                             "transformer": {"use": ["maxcompletiontokens", "streamoptions"]}}],
              "Router": {"default": f"fake,{model}"}}
    (folder / "config.json").write_text(json.dumps(config))
    preload = home / "loopback-only.cjs"
    preload.write_text(LOOPBACK_ONLY)
    env = {**os.environ, "HOME": str(home), "NODE_OPTIONS": f"--require {preload}", "CI": "true"}
    log = (home / "ccr.log").open("wb")
    proc = subprocess.Popen(["node", str(cli), "start"], env=env, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    if wait_healthy(proc, url, 60, 0.2):
        return proc, url
    proc.kill()
    skip("claude-code-router anchor", f"it did not start: {(home / 'ccr.log').read_text(errors='replace')[-500:]}")
    return None
