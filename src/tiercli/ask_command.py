"""The body of `tier ask` once its inputs are read: validate the options against the config, run the
pipeline (ask.run / ask.run_cascade), render the answer and the decision line.

Shared by the `tier` process (in-process) and the warm worker (worker.py), which hands it writers
that send the same text over its socket: what the user sees and what the ledger records are the
same either way, by construction. Output goes only through `out` (stdout) and `err` (stderr).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable

from tiercli.errors import InputError

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig

Writer = Callable[[str], None]


@dataclass
class AskOptions:
    """What the command line said, after the files and stdin were read (JSON-safe: sent to the worker)."""

    prompt: str
    task_type: str | None = None
    tier: str | None = None
    model: str | None = None
    session: str | None = None
    classifier: str | None = None
    system: str | None = None  # the --system-file's text
    dry_run: bool = False
    history: bool = False
    check: str | None = None
    force: bool = False
    as_json: bool = False
    quiet: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "AskOptions":
        names = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in names})


def money(value: float | None) -> str:
    from tiercli.fmt import usd

    return usd(value)


def decision_line(result) -> str:
    d = result.decision
    tier = d.tier if not result.served_tier or result.served_tier == d.tier else f"{d.tier}→{result.served_tier}"
    model = result.served_model or d.model
    cost = money(result.cost_usd)
    if result.estimated:
        u = result.usage
        return f"dry run · {tier} · {model} · {d.describe()} · est. {cost} ({u.prompt_tokens:,} tokens in + ~{u.output_tokens:,} out)"
    return f"{tier} · {model} · {d.describe()} · {cost}"


def resolve_tier(loaded: "LoadedConfig", opts: AskOptions) -> str | None:
    """Check --task-type, --tier, --model and --classifier against the config; the forced tier."""
    from tiercli.router import check_task_type, check_tier

    cfg = loaded.config
    tier = opts.tier
    if opts.task_type is not None:
        check_task_type(cfg, opts.task_type)
    if tier is not None:
        check_tier(cfg, tier)
    if opts.model is not None:
        from tiercli.errors import UsageError
        from tiercli.router import tier_for_model

        model_tier = tier_for_model(cfg, opts.model)
        if tier is not None and tier != model_tier:
            raise UsageError(f"--tier {tier} and --model {opts.model} (on {model_tier}) disagree", "give one of them")
        tier = model_tier
    if opts.classifier is not None and opts.classifier not in ("static", "local", "llm", "hybrid"):
        raise InputError(f"unknown --classifier {opts.classifier!r}", "use static, local, llm or hybrid")
    return tier


def uses_check(loaded: "LoadedConfig", opts: AskOptions) -> bool:
    """A --check (or the config's cascade check) runs a shell command in the user's directory."""
    return opts.check is not None or bool(loaded.config.guardrails.cascade.check)


def execute(loaded: "LoadedConfig", opts: AskOptions, ledger_target: "str | os.PathLike", *, out: Writer, err: Writer,
            tty: bool, terminal_safe: Callable[[str], str]) -> None:
    """Run one `tier ask` and render it. Raises TierError / KeyboardInterrupt like the pipeline."""
    from tiercli import ask as core
    from tiercli.router import decide

    cfg = loaded.config
    tier = resolve_tier(loaded, opts)
    req = core.AskRequest(prompt=opts.prompt, task_type=opts.task_type, force_tier=tier, session=opts.session,
                          classifier=opts.classifier, system=opts.system, stream=not opts.as_json,
                          history=opts.history, force=opts.force)
    if opts.dry_run:
        decision = decide(cfg, task_type=opts.task_type, classification=core.classify_for(loaded, req), force_tier=tier)
        result = core.estimate(loaded, req, decision, None)
        if opts.as_json:
            out(json.dumps(result.as_json(), indent=2) + "\n")
        elif not opts.quiet:
            err(decision_line(result) + "\n")
            for reason in decision.reasons:
                err(f"  · {reason}\n")
        return
    ledger = open_ledger(ledger_target, err)
    wrote = {"last": "\n"}

    def on_text(piece: str) -> None:
        out(terminal_safe(piece) if tty else piece)
        wrote["last"] = piece[-1:] or wrote["last"]

    def on_attempt(attempt, verdict) -> None:
        if opts.quiet or opts.as_json:
            return
        outcome = "check passed" if verdict.passed else (
            "check timed out" if verdict.exit_code is None else f"check failed (exit {verdict.exit_code})")
        err(f"{decision_line(attempt)} · {outcome}\n")

    verified = None
    try:
        if opts.check is not None or cfg.guardrails.cascade.check:
            result, verified = core.run_cascade(loaded, req, ledger, opts.check, on_attempt=on_attempt,
                                                on_text=None if opts.as_json else on_text)
            if verified is not None and not opts.as_json:
                on_text(result.text)
        else:
            result = core.run(loaded, req, ledger, on_text=None if opts.as_json else on_text)
    finally:
        if not opts.as_json and wrote["last"] != "\n":
            out("\n")
        ledger.close()
    if opts.as_json:
        data = result.as_json()
        if verified is not None:
            data["check"] = {"command": verified.command, "passed": verified.passed, "exit_code": verified.exit_code}
        out(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    elif not opts.quiet and verified is None:
        err(decision_line(result) + "\n")


def open_ledger(target: "str | os.PathLike", err: Writer, create: bool = True):
    """The ledger (a SQLite file, or a PostgreSQL URL in team mode); says so when it settled orphans."""
    from tiercli.ledger import open_ledger as open_target

    ledger = open_target(target, create=create)
    if ledger.recovered:
        err(f"tier: recovered {len(ledger.recovered)} call(s) left pending by a process that ended: "
            "settled as interrupted, cost unknown, reservations released (see `tier log`)\n")
    return ledger
