"""`tier serve` (the gateway) and `tier run` (one agent task, verified tier by tier)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Optional

import typer

from tiercli.cli_common import (
    ConfigOpt,
    DbOpt,
    _load_config,
    _money,
    _open_ledger,
    _read_stdin,
    app,
    guarded,
)


# -- serve -------------------------------------------------------------------------------------------
@app.command()
@guarded
def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind. Beyond loopback a --token or users (tier users add) are required."),
    port: int = typer.Option(4141, "--port", "-p", min=1, max=65535, help="Port to listen on."),
    token: Optional[str] = typer.Option(None, "--token", envvar="TIER_SERVE_TOKEN", help="Local token clients must send (Bearer, x-api-key or x-tier-token); required beyond loopback.", show_default=False),
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No line per request on the console."),
    json_log: bool = typer.Option(False, "--json-log", help="One JSON object per request on stdout, for machines."),
) -> None:
    """A local gateway: OpenAI- and Anthropic-compatible endpoints that route and record every call."""
    from tiercli import paths
    from tiercli import serve as gateway  # starlette, uvicorn (and litellm) load only here

    loaded = _load_config(config)
    db_path = paths.ledger_target(db, loaded.config.ledger.url)

    def ready(url: str) -> None:
        sys.stderr.write(f"tier serve: {url}  (config {loaded.source}, ledger {paths.display(db_path)})\n"
                         f"  Claude Code: ANTHROPIC_BASE_URL={url}   OpenAI clients: OPENAI_BASE_URL={url}/v1\n")
        sys.stderr.flush()

    from tiercli.serve import console

    team = False
    if not token and not gateway.is_loopback(host):  # beyond loopback without a token: the users' tokens
        ledger = _open_ledger(db_path)
        try:
            team = ledger.count_users() > 0
        finally:
            ledger.close()
    gateway.run(loaded, db_path, host=host, port=port, token=token, team=team, on_ready=ready,
                log=None if quiet and not json_log else console.printer(json_log))


# -- run ---------------------------------------------------------------------------------------------
@app.command(context_settings={"allow_interspersed_args": False, "ignore_unknown_options": True})
@guarded
def run(
    agent: Optional[list[str]] = typer.Argument(None, help="The agent command, after --: e.g. -- claude -p 'fix the failing test'.", show_default=False),
    tiers: Optional[str] = typer.Option(None, "--tiers", help="Tiers to try, in order (default: run.tiers, else routing.tiers), e.g. tier1,tier3."),
    start: Optional[str] = typer.Option(None, "--start", help="auto: the classifier picks the first tier from the task (run.start first); or a tier of --tiers."),
    task: Optional[str] = typer.Option(None, "--task", help="The task text (for --start auto and the ledger); default: read off the agent's arguments."),
    check: Optional[str] = typer.Option(None, "--check", help="Shell command run after the agent exits; exit 0 passes, else the tree is restored and the next tier runs."),
    cap: Optional[list[str]] = typer.Option(None, "--cap", help="Dollar cap per attempt: 1.50 (every tier) or tier3=3.00 (repeatable; default: run.caps).", show_default=False),
    timeout: Optional[str] = typer.Option(None, "--timeout", help="Wall-clock limit per attempt: 900, 90s, 15m, 1h (default: run.timeout)."),
    allow_dirty: bool = typer.Option(False, "--allow-dirty", help="Start with uncommitted changes: they are kept, and put back after a failed attempt."),
    gateway_url: Optional[str] = typer.Option(None, "--gateway", help="Use a running `tier serve` at this URL (no per-attempt caps; see docs/AGENTS.md)."),
    gateway_token: Optional[str] = typer.Option(None, "--gateway-token", envvar="TIER_SERVE_TOKEN", help="That gateway's token.", show_default=False),
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Run a coding agent on one task, cheapest tier first: check, restore the tree, escalate."""
    from tiercli import paths
    from tiercli import run as core
    from tiercli.config import parse_duration
    from tiercli.errors import CheckFailed, UsageError
    from tiercli.render_calls import inert

    loaded = _load_config(config)
    run_cfg = loaded.config.run
    chosen = core.parse_tiers(tiers, loaded)
    try:
        limit = parse_duration(timeout, "--timeout") if timeout else run_cfg.timeout
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    opts = core.RunOptions(command=list(agent or []), tiers=chosen, check=check, start=start, task=task,
                           caps=core.parse_caps(cap or [], loaded, chosen), timeout_s=limit,
                           check_timeout_s=run_cfg.check_timeout, allow_dirty=allow_dirty,
                           stdin_text=_read_stdin() or None, cwd=os.getcwd(),
                           gateway_url=gateway_url.rstrip("/") if gateway_url else None, gateway_token=gateway_token)
    if gateway_url and opts.caps and not cap:
        opts.caps = {}  # the config's caps cannot be enforced by a gateway tier does not run
        sys.stderr.write("tier run: --gateway: the config's run caps are not enforced (no per-attempt caps)\n")

    def on_event(what: str, attempt) -> None:
        cap_text = f" · cap {_money(attempt.cap_usd)}" if attempt.cap_usd else ""
        if what == "start":
            sys.stderr.write(f"tier run: attempt {attempt.number} · {attempt.tier} · "
                             f"{inert(loaded.config.primary_model(attempt.tier))}{cap_text}\n")
        else:
            calls = "?" if attempt.calls is None else attempt.calls
            restored = " · tree restored" if attempt.restored else ""
            sys.stderr.write(f"tier run: attempt {attempt.number} · {attempt.tier} · {core.describe(attempt)} · "
                             f"{_money(attempt.cost_usd) if attempt.calls is not None else 'cost not linked'} · "
                             f"{calls} call(s) · {attempt.duration_s:.1f} s{restored}\n")
            if attempt.outcome == "check_failed" and attempt.check_output.strip():
                tail = attempt.check_output.rstrip().splitlines()[-15:]
                sys.stderr.write("".join(f"  | {inert(line)}\n" for line in tail))
        sys.stderr.flush()

    ledger = _open_ledger(db)
    try:
        result = core.run_task(loaded, ledger, str(db or paths.default_db_path()), opts, on_event=on_event)
    except KeyboardInterrupt:
        sys.stderr.write("tier run: interrupted: the working tree is restored, the task is recorded (see `tier log`)\n")
        raise
    finally:
        ledger.close()
    total = _money(result.cost_usd) if all(a.calls is not None for a in result.attempts) else "cost not linked"
    if result.passed:
        last = result.attempts[-1]
        sys.stderr.write(f"tier run: resolved at {last.tier} (attempt {last.number}) · task {result.task_id[:8]} · "
                         f"{total} in all\n")
        return
    raise CheckFailed(f"task {result.task_id[:8]} failed on every tier ({', '.join(a.tier for a in result.attempts)}), "
                      f"{total} in all", "each attempt is a kind 'run' row in `tier log`; the tree is as it started")
