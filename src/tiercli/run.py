"""`tier run -- AGENT ARGS...`: one agent task as a verified, budget-capped cascade of attempts.

Each attempt runs the agent with every model call it makes pinned to one tier: an in-process
gateway (run_gateway.py) on 127.0.0.1 with a one-time token holds a `Pin` (serve/gateway.py) that
routes every request to the attempt's tier, records it in the attempt's session with the task's
id, and admits it under the attempt's cap (a guards.Cap on that session, through the same pipeline
and budget reservation as every call: calls.py). A call the cap cannot take gets the protocol's
budget error (HTTP 402); the attempt then ends as failed (the agent gets GRACE_S to exit by itself).

After the agent exits, `--check` decides (without one, the agent's exit status does). A failed
attempt (check failed, cap reached, wall-clock limit, or the agent failed) restores the git working
tree to where the task started (gitsnap.py) and the next tier runs the same command: nothing is
added to the agent's prompt. Ctrl-C stops the agent, restores the tree and records the task.

Recorded: every model call of the task is a row with `task_id` = the task's id and `session` = its
attempt's session; each attempt is one more row of kind 'run' (source 'run', tier, status ok |
error | interrupted, error_class CheckFailed | BudgetExceeded | Timeout | AgentFailed,
check_passed, latency_ms = the attempt's duration, cost_usd NULL so budgets and totals never count
it twice: the attempt's cost, call count and exit codes are in meta_json["run"]).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Callable

from tiercli import calls, gitsnap, guards, procinfo
from tiercli.config import LoadedConfig
from tiercli.errors import UsageError
from tiercli.redact import redact
from tiercli.router import Decision

if TYPE_CHECKING:
    from tiercli.ledger import Ledger

GRACE_S = 5.0  # after a refused call or a stop, the agent's time to exit before it is killed
OUTPUT_TAIL = 4_000
PROMPT_FLAGS = ("-p", "--print", "--prompt", "--message", "-m", "--msg")


@dataclass
class RunOptions:
    command: list[str]
    tiers: list[str]
    check: str | None = None
    start: str | None = None  # None: the first tier; "auto": the classifier; or a tier name
    task: str | None = None  # the task text (for --start auto and the ledger); else read off the command
    caps: dict[str, float] = field(default_factory=dict)  # per tier, dollars per attempt
    timeout_s: float | None = None
    check_timeout_s: float = 600
    allow_dirty: bool = False
    stdin_text: str | None = None  # fed to every attempt; None: /dev/null
    cwd: str = "."
    gateway_url: str | None = None  # a running `tier serve` instead of the in-process gateway
    gateway_token: str | None = None


@dataclass
class Attempt:
    id: str
    number: int
    tier: str
    session: str
    cap_usd: float | None
    started: float
    outcome: str = "running"  # passed | check_failed | cap_reached | timeout | agent_failed | interrupted
    agent_exit: int | None = None
    check_exit: int | None = None  # None: not run, or timed out (check_timed_out)
    check_timed_out: bool = False
    check_output: str = ""
    cost_usd: float | None = 0.0
    calls: int | None = 0
    unpriced_calls: int = 0
    refused: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    restored: bool = False

    @property
    def passed(self) -> bool:
        return self.outcome == "passed"


@dataclass
class RunResult:
    task_id: str
    attempts: list[Attempt]
    start_reasons: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return bool(self.attempts) and self.attempts[-1].passed

    @property
    def cost_usd(self) -> float | None:
        costs = [a.cost_usd for a in self.attempts]
        return None if any(c is None for c in costs) else sum(costs)  # type: ignore[arg-type]


# -- options ----------------------------------------------------------------------------------------
def parse_tiers(text: str | None, loaded: LoadedConfig) -> list[str]:
    """--tiers, else the config's run.tiers, else routing.tiers."""
    tiers = loaded.config.routing.tiers
    if not text:
        return loaded.config.run_tiers()
    chosen = [t.strip() for t in text.split(",") if t.strip()]
    unknown = [t for t in chosen if t not in tiers]
    if unknown or not chosen:
        raise UsageError(f"--tiers names {', '.join(unknown) or 'nothing'}", f"tiers in this config: {', '.join(tiers)}")
    if len(set(chosen)) != len(chosen):
        raise UsageError("--tiers lists a tier twice")
    return chosen


def parse_caps(values: list[str], loaded: LoadedConfig, tiers: list[str]) -> dict[str, float]:
    """Per-attempt caps by tier: the config's run.caps / run.cap_usd, then --cap USD (every tier),
    then --cap TIER=USD (that tier)."""
    run_cfg = loaded.config.run
    caps = {t: run_cfg.caps.get(t, run_cfg.cap_usd) for t in tiers}
    every: float | None = None
    named: dict[str, float] = {}
    for value in values:
        tier, _, amount = value.rpartition("=")
        try:
            usd_value = float(amount.strip().lstrip("$"))
        except ValueError:
            raise UsageError(f"--cap {value!r} is not a dollar amount", "use --cap 1.50 or --cap tier3=3.00") from None
        if not 0 < usd_value <= 1_000_000:
            raise UsageError(f"--cap {value!r} must be more than 0 dollars")
        if tier:
            if tier not in loaded.config.routing.tiers:
                raise UsageError(f"--cap names unknown tier {tier!r}", f"tiers: {', '.join(loaded.config.routing.tiers)}")
            named[tier] = usd_value
        else:
            every = usd_value
    if every is not None:
        caps = dict.fromkeys(tiers, every)
    caps.update({t: v for t, v in named.items() if t in caps})
    return {t: v for t, v in caps.items() if v is not None}


def task_text(opts: RunOptions) -> str | None:
    """--task, else the agent's prompt: the value of -p/--message/..., else its last plain argument,
    then piped stdin."""
    if opts.task:
        return opts.task
    args = opts.command[1:]
    text = None
    for i, arg in enumerate(args):
        if arg in PROMPT_FLAGS and i + 1 < len(args) and not args[i + 1].startswith("-"):
            text = args[i + 1]
        elif "=" in arg and arg.split("=", 1)[0] in PROMPT_FLAGS:
            text = arg.split("=", 1)[1]
    if text is None:
        plain = [a for a in args if not a.startswith("-")]
        text = plain[-1] if plain else None
    parts = [p for p in (text, opts.stdin_text) if p and p.strip()]
    return "\n\n".join(parts) or None


def check_command(command: list[str]) -> None:
    if not command:
        raise UsageError("no agent command", "put it after --, e.g. tier run --check 'pytest -q' -- claude -p 'fix it'")
    exe = command[0]
    found = shutil.which(exe) if os.sep not in exe else (exe if os.access(exe, os.X_OK) else None)
    if not found:
        raise UsageError(f"agent command not found: {exe!r}", "is it installed and on PATH?")


def first_tier(loaded: LoadedConfig, opts: RunOptions, ledger: "Ledger") -> tuple[int, Decision | None]:
    """Index in opts.tiers of the first attempt's tier, and the task's classification (recorded with
    every attempt, so the ledger's history can be tuned per task type).

    --start TIER: that tier. --start auto: `run.start` for the task's type, else the first listed
    tier at least as strong as the classifier's routing. No --start: `run.start` for the task's type,
    else the first tier. The classifier is the config's for --start auto, else the local one (no
    model call)."""
    from tiercli import ask

    cfg = loaded.config
    if opts.start and opts.start != "auto" and opts.start not in opts.tiers:
        raise UsageError(f"--start {opts.start!r} is not in --tiers {','.join(opts.tiers)}", "use auto or one of them")
    text = task_text(opts)
    if opts.start == "auto" and not text:
        raise UsageError("--start auto classifies the task, but there is no task text", "pass --task TEXT")
    which = cfg.routing.classifier if opts.start == "auto" and cfg.routing.classifier != "static" else "local"
    decision = ask.classify_only(loaded, text, which, ledger) if text and text.strip() else None
    if opts.start and opts.start != "auto":
        return opts.tiers.index(opts.start), decision
    mapped = cfg.run.start.get(decision.task_type) if decision and decision.task_type else None
    if decision is not None and mapped in opts.tiers:  # mapped comes from the decision's task type
        note = f"run.start.{decision.task_type} -> {mapped}"
        return opts.tiers.index(mapped), replace(decision, reasons=(*decision.reasons, note))
    if opts.start != "auto" or decision is None:
        return 0, decision
    rank = cfg.tier_rank(decision.tier)
    for i, tier in enumerate(opts.tiers):  # the first listed tier at least as strong as the classifier's
        if cfg.tier_rank(tier) >= rank:
            return i, decision
    return len(opts.tiers) - 1, decision


# -- the agent's environment -------------------------------------------------------------------------
def agent_env(base: dict[str, str], url: str, token: str | None, pin_model: str | None = None) -> dict[str, str]:
    """`base` with every common base-URL and key variable pointing at the gateway (docs/AGENTS.md)."""
    env = dict(base)
    env.pop("ANTHROPIC_AUTH_TOKEN", None)  # Claude Code would send it instead of the key
    key = token or "tier-run-no-token"
    env.update({
        "ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_BASE": url, "ANTHROPIC_API_KEY": key,
        "OPENAI_BASE_URL": f"{url}/v1", "OPENAI_API_BASE": f"{url}/v1", "OPENAI_API_KEY": key,
        "TIER_GATEWAY_URL": url,
    })
    if pin_model:  # a running `tier serve`: ask for the tier by name (agents that honour these)
        env.update({"ANTHROPIC_MODEL": pin_model, "ANTHROPIC_SMALL_FAST_MODEL": pin_model,
                    "ANTHROPIC_DEFAULT_HAIKU_MODEL": pin_model})
    loopback = "127.0.0.1,localhost,::1"
    for var in ("NO_PROXY", "no_proxy"):
        env[var] = f"{env[var]},{loopback}" if env.get(var) else loopback
    return env


# -- processes ----------------------------------------------------------------------------------------
def _stop_group(proc: subprocess.Popen, grace: float = GRACE_S) -> None:
    """SIGTERM the process group, SIGKILL what is left after `grace` (the agent's own children too)."""
    for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, grace)):
        try:
            os.killpg(proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            break
        try:
            proc.wait(timeout=wait)
        except subprocess.TimeoutExpired:
            continue
        try:  # the leader is gone; children may remain in its group
            os.killpg(proc.pid, 0)
        except (ProcessLookupError, PermissionError):
            break
    if proc.poll() is None:
        proc.wait()


def _feed(proc: subprocess.Popen, text: str | None) -> None:
    if proc.stdin is None:
        return

    def write() -> None:
        try:
            proc.stdin.write((text or "").encode("utf-8", "surrogateescape"))  # type: ignore[union-attr]
        except OSError:
            pass
        finally:
            try:
                proc.stdin.close()  # type: ignore[union-attr]
            except OSError:
                pass

    threading.Thread(target=write, daemon=True).start()


def run_check(command: str, cwd: str, timeout_s: float) -> tuple[int | None, str]:
    """(exit code, None on timeout; the tail of its output). Its own process group, killed whole."""
    proc = subprocess.Popen(command, shell=True, cwd=cwd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,  # noqa: S602
                            stderr=subprocess.STDOUT, process_group=0)
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _stop_group(proc, 2.0)
        out = (proc.stdout.read() if proc.stdout else b"") or b""
        return None, (out.decode("utf-8", "replace") + f"\n[check timed out after {timeout_s:g} s]")[-OUTPUT_TAIL:]
    except BaseException:
        _stop_group(proc, 2.0)
        raise
    return proc.returncode, out.decode("utf-8", "replace")[-OUTPUT_TAIL:]


# -- the task -----------------------------------------------------------------------------------------
class _Stop(KeyboardInterrupt):
    """SIGTERM while running: handled as Ctrl-C."""


def run_task(loaded: LoadedConfig, ledger: "Ledger", db_path: str, opts: RunOptions,
             on_event: Callable[[str, Attempt], None] | None = None) -> RunResult:
    """Run the attempts until one passes or every tier failed. Raises KeyboardInterrupt after
    recording the task and restoring the tree when interrupted."""
    from tiercli import run_gateway

    check_command(opts.command)
    snap = gitsnap.take(opts.cwd)
    if snap.dirty and not opts.allow_dirty:
        raise UsageError(f"the working tree has uncommitted changes ({len(snap.dirty)} path(s), e.g. "
                         f"{snap.dirty[0][3:]!r})", "commit or stash them first, or pass --allow-dirty "
                         "(they are then kept and put back after a failed attempt)")
    if opts.gateway_url and opts.caps:
        raise UsageError("per-attempt caps need the in-process gateway: a running tier serve cannot take them",
                         "drop --gateway, or the caps (--cap / run.caps in the config)")
    task_id = calls.new_id()
    start, start_decision = first_tier(loaded, opts, ledger)
    result = RunResult(task_id, [], start_decision.reasons if start_decision else ())
    text = task_text(opts) or " ".join(opts.command)
    gateway = None if opts.gateway_url else run_gateway.LocalGateway.start(loaded, db_path)
    previous_term = _on_sigterm()
    try:
        for number, tier in enumerate(opts.tiers[start:], start=1):
            attempt = Attempt(calls.new_id(), number, tier, f"run-{task_id[:12]}-{number}", opts.caps.get(tier),
                              time.time())
            result.attempts.append(attempt)
            try:
                _record(loaded, ledger, opts, result, attempt, start_decision, text, snap)
                if on_event:
                    on_event("start", attempt)
                _attempt(loaded, ledger, opts, result, attempt, start_decision, gateway)
                if not attempt.passed:
                    _quietly(gitsnap.restore, snap)
                    attempt.restored = True
            except KeyboardInterrupt:  # Ctrl-C, or SIGTERM (_Stop)
                attempt.outcome = "interrupted"
                _quietly(gitsnap.restore, snap)
                attempt.restored = True
                _finish(loaded, ledger, attempt, gateway)
                _record(loaded, ledger, opts, result, attempt, start_decision, text, snap)
                raise KeyboardInterrupt from None
            except BaseException:  # a bug or a git failure: still no half-done attempt in tree or ledger
                attempt.outcome = "error"
                _quietly(gitsnap.restore, snap)
                attempt.restored = True
                _finish(loaded, ledger, attempt, gateway)
                _record(loaded, ledger, opts, result, attempt, start_decision, text, snap)
                raise
            _finish(loaded, ledger, attempt, gateway)
            _record(loaded, ledger, opts, result, attempt, start_decision, text, snap)
            if on_event:
                on_event("end", attempt)
            if attempt.passed:
                break
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
        if gateway is not None:
            _quietly(gateway.stop)
    return result


def _on_sigterm():
    if threading.current_thread() is not threading.main_thread():
        return None

    def handler(signum, frame):  # noqa: ARG001
        raise _Stop()

    return signal.signal(signal.SIGTERM, handler)


def _quietly(fn: Callable, *args: Any) -> Any:
    """Run `fn` with Ctrl-C held off (a restore must not stop half way)."""
    if threading.current_thread() is not threading.main_thread():
        return fn(*args)
    old = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return fn(*args)
    finally:
        signal.signal(signal.SIGINT, old)


def pin_decision(loaded: LoadedConfig, tier: str, attempt: Attempt, task_id: str, start: Decision | None) -> Decision:
    reasons = (*(start.reasons if start and attempt.number == 1 else ()),
               f"tier run: task {task_id[:8]} attempt {attempt.number} pinned to {tier}")
    return Decision(tier=tier, model=loaded.config.primary_model(tier), source="run",
                    task_type=start.task_type if start else None, label=start.label if start else None,
                    confidence=start.confidence if start else None, classifier=start.classifier if start else None,
                    decided_tier=tier, reasons=reasons)


def _attempt(loaded: LoadedConfig, ledger: "Ledger", opts: RunOptions, result: RunResult, attempt: Attempt,
             start: Decision | None, gateway) -> None:
    from tiercli.serve.gateway import Pin

    pin = None
    if gateway is not None:
        caps = (guards.Cap("attempt", attempt.cap_usd, session=attempt.session),) if attempt.cap_usd else ()
        pin = Pin(pin_decision(loaded, attempt.tier, attempt, result.task_id, start), attempt.session, result.task_id, caps)
        env = agent_env(dict(os.environ), gateway.url, gateway.token)
    else:
        env = agent_env(dict(os.environ), opts.gateway_url or "", opts.gateway_token, pin_model=attempt.tier)
    env.update({"TIER_RUN_TASK_ID": result.task_id, "TIER_RUN_ATTEMPT": str(attempt.number), "TIER_RUN_TIER": attempt.tier})
    deadline = attempt.started + opts.timeout_s if opts.timeout_s else None
    if gateway is not None:
        gateway.set_pin(pin)
    proc = None
    try:
        proc = subprocess.Popen(opts.command, cwd=opts.cwd, env=env, process_group=0,
                                stdin=subprocess.PIPE if opts.stdin_text is not None else subprocess.DEVNULL)
        _feed(proc, opts.stdin_text)
        refused_at = None
        while True:
            try:
                attempt.agent_exit = proc.wait(timeout=0.1)
                break
            except subprocess.TimeoutExpired:
                pass
            now = time.time()
            if pin is not None and pin.refusals and refused_at is None:
                refused_at = now  # the cap refused a call: the agent has GRACE_S to give up by itself
            if refused_at is not None and now - refused_at > GRACE_S:
                break
            if deadline is not None and now > deadline:
                attempt.outcome = "timeout"
                break
    finally:
        if proc is not None:
            _quietly(_stop_group, proc)  # whatever the agent left running goes too, before any restore
        if gateway is not None:
            gateway.set_pin(None)
    if attempt.agent_exit is None:
        attempt.agent_exit = proc.returncode
    if pin is not None and pin.refusals:
        attempt.outcome, attempt.refused = "cap_reached", list(pin.refusals)
    if attempt.outcome != "running":
        return
    if opts.check:
        code, output = run_check(opts.check, opts.cwd, opts.check_timeout_s)
        attempt.check_exit, attempt.check_timed_out, attempt.check_output = code, code is None, output
        attempt.outcome = "passed" if code == 0 else "check_failed"
    else:
        attempt.outcome = "passed" if attempt.agent_exit == 0 else "agent_failed"


def _finish(loaded: LoadedConfig, ledger: "Ledger", attempt: Attempt, gateway) -> None:
    """The attempt's duration and totals, once the gateway settled its calls."""
    attempt.duration_s = time.time() - attempt.started
    if gateway is None:  # a running tier serve: its calls are not linked to the task
        attempt.cost_usd, attempt.calls = None, None
        return
    gateway.settle_session(attempt.session)
    totals = ledger.session_totals(attempt.session)
    attempt.calls, attempt.unpriced_calls = totals["calls"], totals["unpriced"]
    attempt.cost_usd = None if totals["unpriced"] else totals["cost_usd"]


ERROR_CLASS = {"check_failed": "CheckFailed", "cap_reached": "BudgetExceeded", "timeout": "Timeout",
               "agent_failed": "AgentFailed", "interrupted": "KeyboardInterrupt", "error": "RunError"}


def describe(attempt: Attempt) -> str:
    """The attempt's outcome in a few words."""
    if attempt.outcome == "passed":
        return "check passed" if attempt.check_exit is not None else "agent exited 0 (no --check)"
    if attempt.outcome == "check_failed":
        return "check timed out" if attempt.check_timed_out else f"check failed (exit {attempt.check_exit})"
    if attempt.outcome == "cap_reached":
        return f"budget reached, a call was refused: {attempt.refused[0] if attempt.refused else 'cap'}"
    if attempt.outcome == "timeout":
        return "wall-clock limit reached"
    if attempt.outcome == "agent_failed":
        return f"agent exited {attempt.agent_exit}"
    return attempt.outcome


def _record(loaded: LoadedConfig, ledger: "Ledger", opts: RunOptions, result: RunResult, attempt: Attempt,
            start: Decision | None, text: str, snap: gitsnap.Snapshot) -> None:
    """The attempt's row of kind 'run': pending (with its owner) while it runs, then settled."""
    cfg = loaded.config
    policy = cfg.ledger.store_prompts
    running = attempt.outcome == "running"
    status = "pending" if running else "ok" if attempt.passed else "interrupted" if attempt.outcome == "interrupted" else "error"
    first = result.attempts[0]
    meta = {"run": {
        "attempt": attempt.number, "tiers": opts.tiers, "outcome": attempt.outcome,
        "command": None if policy == "none" else [redact(a) for a in opts.command],
        "check": opts.check, "agent_exit": attempt.agent_exit, "check_exit": attempt.check_exit,
        "cost_usd": attempt.cost_usd, "calls": attempt.calls, "unpriced_calls": attempt.unpriced_calls,
        "cap_usd": attempt.cap_usd, "timeout_s": opts.timeout_s, "duration_s": round(attempt.duration_s, 3),
        "restored": attempt.restored, "refused": attempt.refused[:3], "snapshot": snap.describe(),
        "files_tree": snap.files_tree,
        "gateway": opts.gateway_url or "in-process", "allow_dirty": opts.allow_dirty,
    }}
    decision = pin_decision(loaded, attempt.tier, attempt, result.task_id, start)
    row = {
        "id": attempt.id, "started_at": attempt.started, "ended_at": None if running else attempt.started + attempt.duration_s,
        "session": attempt.session, "kind": "run", "source": "run", "task_id": result.task_id,
        "parent_id": None if attempt is first else first.id,
        "task_type": decision.task_type, "label": decision.label, "decision_source": "run",
        "classifier": decision.classifier, "confidence": decision.confidence, "decided_tier": attempt.tier,
        "tier": attempt.tier, "requested_model": decision.model, "status": status,
        "error_class": None if running or attempt.passed else ERROR_CLASS.get(attempt.outcome),
        "error_message": None if running or attempt.passed else describe(attempt)[:500],
        "attempts": 0, "cost_usd": None, "unpriced": False,
        "latency_ms": None if running else attempt.duration_s * 1000,
        "check_passed": None if attempt.check_exit is None and not attempt.check_timed_out else attempt.passed,
        "prompt_hash": calls.prompt_hash(text), "prompt_text": calls.stored_text(text, policy),
        "response_text": calls.stored_text(attempt.check_output or None, policy),
        "config_hash": loaded.hash, "meta_json": json.dumps(meta, ensure_ascii=False, default=str),
        "owner_pid": os.getpid() if running else None,
        "owner_started": procinfo.this_process_started() if running else None,
    }
    ledger.upsert_call(row)
