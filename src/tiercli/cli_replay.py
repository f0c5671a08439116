"""`tier replay` and `tier tune`: what recorded calls or outcome tables say another policy would do."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from tiercli.cli_common import (
    ConfigOpt,
    DbOpt,
    JsonOpt,
    _ledger_target,
    _load_config,
    _money,
    _open_ledger,
    _terminal_safe,
    app,
    guarded,
)


# -- replay ------------------------------------------------------------------------------------------
@app.command()
@guarded
def replay(
    session: Optional[str] = typer.Option(None, "--session", "-s", help="Replay one session's calls."),
    since: Optional[str] = typer.Option(None, "--since", help="Replay calls since 48h, 7d, a UTC date or an ISO time."),
    all_calls: bool = typer.Option(False, "--all", help="Every call in the ledger (the default without --session/--since)."),
    claude_code: Optional[list[Path]] = typer.Option(None, "--claude-code", help="Replay Claude Code logs (files or folders) as they are, without importing them.", show_default=False),
    codex: Optional[list[Path]] = typer.Option(None, "--codex", help="Replay Codex rollout files (files or folders) as they are, without importing them.", show_default=False),
    outcomes: Optional[Path] = typer.Option(None, "--outcomes", help="An outcome table (CSV or JSONL, long or wide form): judge routing policies on it.", show_default=False),
    tasks: Optional[Path] = typer.Option(None, "--tasks", help="With --outcomes: prompts per task_id (CSV or JSONL).", show_default=False),
    mapping: Optional[list[str]] = typer.Option(None, "--map", help="With --outcomes: MODEL=TIER or TIER=MODEL, which table model stands for which tier (repeatable, or comma-separated).", show_default=False),
    success_threshold: float = typer.Option(1.0, "--success-threshold", help="With --outcomes: an answer succeeds when quality >= this (cascade, oracle)."),
    policy: Optional[list[str]] = typer.Option(None, "--policy", help="With --outcomes: config, always:TIER, cascade, cascade:TIER,TIER,..., oracle or run (repeatable; default: config, always:<each>, cascade, oracle).", show_default=False),
    cap: Optional[list[str]] = typer.Option(None, "--cap", help="With --outcomes: TIER=USD (or USD for every tier) per attempt; an attempt costing more counts as failed at the cap.", show_default=False),
    start: Optional[list[str]] = typer.Option(None, "--start", help="With --outcomes: TASK_TYPE=TIER, where a cascade starts for tasks of that type (repeatable).", show_default=False),
    by: Optional[str] = typer.Option(None, "--by", help="With --outcomes: the table's task-type column (default: task_type, dimension or category; `classifier`: the local classifier on each prompt; `none`).", show_default=False),
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout: a dry replay as section,key,metric,value rows (like tier report --csv); with --outcomes one row per policy."),
    classifier: Optional[str] = typer.Option(None, "--classifier", help="static | local: overrides the config's classifier for calls without a recorded task type."),
    llm_classifier: bool = typer.Option(False, "--llm-classifier", help="With --live: let the config's llm or hybrid classifier run (it calls a model)."),
    top: int = typer.Option(10, "--top", min=0, max=100_000, help="How many changed calls to list."),
    live: bool = typer.Option(False, "--live", help="Re-execute the prompts under the config: calls models, costs money, records kind=replay rows."),
    yes: bool = typer.Option(False, "--yes", "-y", help="With --live: no confirmation question."),
    max_cost: Optional[float] = typer.Option(None, "--max-cost", min=0, help="With --live: refuse when the estimate is above this many dollars; stop before a call would cross it.", show_default=False),
    as_json: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """What recorded calls would cost under a config (dry: calls nothing), or outcome tables judged per policy."""
    from tiercli import render_replay as render
    from tiercli import replay as core
    from tiercli.errors import GuardrailRefusal, UsageError

    loaded = _load_config(config)
    cfg = loaded.config
    if classifier is not None and classifier not in core.CLASSIFIERS:
        raise UsageError(f"unknown --classifier {classifier!r}", "use static or local")
    if llm_classifier and not live:
        raise UsageError("--llm-classifier calls a model for every prompt, so it needs --live",
                         "a dry replay classifies with the local classifier")
    if llm_classifier and (classifier or cfg.routing.classifier) not in ("llm", "hybrid"):
        raise UsageError("--llm-classifier needs a config (or --classifier) whose classifier is llm or hybrid")
    if not live and (yes or max_cost is not None):
        raise UsageError("--yes and --max-cost go with --live")
    if outcomes is not None:
        from tiercli.replay_outcomes import commands
        from tiercli.replay_outcomes import render as outcomes_render

        if live or claude_code or codex or session or since or all_calls:
            raise UsageError("--outcomes judges a table: it takes no --live, --claude-code, --codex, --session, --since or --all")
        if as_json and as_csv:
            raise UsageError("--json and --csv: choose one")
        data = commands.replay_outcomes(loaded, outcomes, tasks=tasks, mapping=mapping, threshold=success_threshold,
                                        classifier=classifier, top=top, policies=policy, caps=cap, start=start, by=by)
        if as_json:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        elif as_csv:
            sys.stdout.write(outcomes_render.outcomes_csv(data))
        else:
            outcomes_render.print_outcomes(data)
        return
    if tasks is not None or mapping or policy or cap or start or by:
        raise UsageError("--tasks, --map, --policy, --cap, --start and --by go with --outcomes")
    if all_calls and (session or since):
        raise UsageError("--all replays everything: drop it, or drop --session/--since")
    since_ts = None
    if since is not None:
        from tiercli.report import parse_window

        since_ts = parse_window(since)
    if as_csv and (as_json or live):
        raise UsageError("--csv is for a dry replay, without --json or --live")
    if claude_code and codex:
        raise UsageError("replay --claude-code or --codex logs, not both at once", "import both, then replay the ledger")
    ledger = None
    try:
        logs = claude_code or codex
        if logs:
            if live:
                raise UsageError("--live re-executes ledger calls", "import the logs first: tier import claude-code PATH")
            from tiercli import render_import
            from tiercli.pricing import PriceBook

            select = core.select_claude_code if claude_code else core.select_codex
            source = "claude-code" if claude_code else "codex"
            with render_import.progress_bar(f"reading {source} logs") as progress:
                rows, stats = select([str(p) for p in logs], PriceBook(cfg.prices), session=session, since=since_ts,
                                     progress=progress)
            selection = core.Selection(source, session, since_ts, [str(p) for p in logs], parse=stats)
        else:
            from tiercli import paths

            path = _ledger_target(db, loaded)
            selection = core.Selection("ledger", session, since_ts, location=paths.display(path))
            rows = []
            if paths.is_url(path) or Path(path).exists():
                ledger = _open_ledger(db, create=False, loaded=loaded)
                rows, selection.skipped = core.select_ledger(ledger, session=session, since=since_ts, with_response=live)
        if not rows:
            what = "the Claude Code logs" if claude_code else "the Codex logs" if codex else f"the ledger {selection.location}"
            skipped = ", ".join(f"{n} {k}" for k, n in selection.skipped.items())
            message = f"no calls to replay: {what} has no main or imported calls in this selection" + (
                f" (only {skipped} call(s))" if skipped else "")
            if as_json:
                typer.echo(json.dumps(render.empty_json("live" if live else "dry", message, selection), indent=2))
            else:
                typer.echo(message)
            return
        from tiercli.render_import import call_progress

        with call_progress("replaying") as progress:
            dry = core.dry_replay(loaded, rows, selection, classifier=classifier, top=top, keep_calls=live,
                                  progress=progress)
        if not live:
            data = render.dry_json(dry, cfg.routing.tiers)
            if as_json:
                typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            elif as_csv:
                typer.echo(render.to_csv(data), nl=False)
            else:
                render.print_dry(data)
            return
        plan = core.plan_live(loaded, rows, dry)
        if not plan.items:
            message = f"nothing to re-execute: none of the {len(rows)} selected call(s) has its prompt text stored"
            if as_json:
                typer.echo(json.dumps(render.empty_json("live", message, selection), indent=2))
            else:
                typer.echo(message)
            return
        if max_cost is not None:
            if plan.unpriced_estimates:
                raise GuardrailRefusal(f"{plan.unpriced_estimates} call(s) cannot be estimated (unpriced model), so "
                                       "--max-cost cannot be kept", "add the model under prices: in the config")
            if plan.estimate_usd > max_cost:
                raise GuardrailRefusal(
                    f"the dry estimate {_money(plan.estimate_usd)} for {len(plan.items)} call(s) is above --max-cost {_money(max_cost)}",
                    "raise --max-cost or narrow the selection (--session, --since)")
        from rich.console import Console

        render.print_live_plan(plan, max_cost, Console(stderr=True, highlight=False))
        if not yes:
            if sys.stdin is None or not sys.stdin.isatty():
                raise UsageError("--live asks for confirmation on a terminal", "pass --yes to go ahead without asking")
            if not typer.confirm("Re-execute them now?", default=False, err=True):
                typer.echo("cancelled: nothing was sent", err=True)
                return
        if ledger is None:
            ledger = _open_ledger(db, loaded=loaded)
        result = core.run_live(loaded, plan, ledger, max_cost=max_cost, llm_classifier=llm_classifier)
    finally:
        if ledger is not None:
            ledger.close()
    data = render.live_json(result, dry, cfg.routing.tiers, max_cost)
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    else:
        render.print_live(data)


# -- tune --------------------------------------------------------------------------------------------
@app.command()
@guarded
def tune(
    outcomes: Optional[Path] = typer.Option(None, "--outcomes", help="An outcome table (CSV or JSONL, long or wide form).", show_default=False),
    from_ledger: bool = typer.Option(False, "--ledger", help="Instead of --outcomes: the ledger's own `tier run` tasks (see --db, --since)."),
    since: Optional[str] = typer.Option(None, "--since", help="With --ledger: tasks started since 48h, 7d, a UTC date or an ISO time.", show_default=False),
    db: Optional[Path] = DbOpt,
    mapping: Optional[list[str]] = typer.Option(None, "--map", help="TIER=MODEL or MODEL=TIER, which table model stands for which tier (repeatable, or comma-separated; --ledger: every tier it holds).", show_default=False),
    within: float = typer.Option(0.01, "--within", help="Choose the cheapest policy whose quality is within this of the best (0.01 = one point)."),
    folds: int = typer.Option(5, "--folds", min=2, max=100, help="k of the k-fold cross-validation (folds by a hash of the task id)."),
    objective: str = typer.Option("success", "--objective", help="success (share of tasks with quality >= threshold) or quality (mean quality)."),
    success_threshold: float = typer.Option(1.0, "--success-threshold", help="An answer succeeds when quality >= this."),
    order: Optional[list[str]] = typer.Option(None, "--order", help="TIER,TIER,...: a cascade order to search (repeatable; default: every order of the mapped tiers).", show_default=False),
    cap_grid: Optional[list[str]] = typer.Option(None, "--cap-grid", help="[TIER=]USD,USD,...: caps to search (repeatable, `none` for no cap; default: none, and each tier's dearest and 90th-percentile successful attempt).", show_default=False),
    by: Optional[str] = typer.Option(None, "--by", help="The task-type column to start tiers by (default: task_type, dimension or category; `classifier`: the local classifier on each prompt; `none`: one start for all).", show_default=False),
    tasks: Optional[Path] = typer.Option(None, "--tasks", help="Prompts per task_id (CSV or JSONL), for --by classifier.", show_default=False),
    min_type_tasks: int = typer.Option(10, "--min-type-tasks", min=1, help="A task type with fewer tasks gets no start tier of its own."),
    write: Optional[Path] = typer.Option(None, "--write", help="Write the chosen policy as a config `run:` section (YAML) to this file.", show_default=False),
    force: bool = typer.Option(False, "--force", help="With --write: replace an existing file."),
    top: int = typer.Option(15, "--top", min=2, max=10_000, help="How many frontier policies to show."),
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="The frontier as CSV on stdout."),
    config: Optional[Path] = ConfigOpt,
) -> None:
    """Search cascade policies (order, caps, start tier per task type) on an outcome table: Pareto frontier, chosen policy, cross-validated."""
    from tiercli.errors import UsageError
    from tiercli.replay_outcomes import commands, render_tune

    if as_json and as_csv:
        raise UsageError("--json and --csv: choose one")
    if force and write is None:
        raise UsageError("--force goes with --write")
    if (outcomes is None) == (not from_ledger):
        raise UsageError("tier tune needs one source: --outcomes TABLE or --ledger (the ledger's tier run tasks)")
    if not from_ledger and (since or db):
        raise UsageError("--since and --db go with --ledger")
    if from_ledger and (by or tasks):
        raise UsageError("--by and --tasks go with --outcomes: --ledger tasks are typed by the classifier tier run used")
    loaded = _load_config(config)
    if outcomes is not None:
        data = commands.tune(loaded, outcomes, mapping=mapping, within=within, folds=folds, objective=objective,
                             threshold=success_threshold, orders=order, cap_grid=cap_grid, by=by, tasks=tasks,
                             min_type_tasks=min_type_tasks)
    else:
        from tiercli import run_outcomes
        from tiercli.report import parse_window

        ledger = _open_ledger(db, loaded=loaded)
        try:
            if not hasattr(ledger, "run_attempts"):
                raise UsageError("--ledger reads tier run tasks from a SQLite ledger", "pass --db LEDGER.db")
            attempts = ledger.run_attempts(parse_window(since) if since else None)
        finally:
            ledger.close()
        data = run_outcomes.tune_ledger(loaded, attempts, mapping=mapping, within=within, folds=folds,
                                        objective=objective, threshold=success_threshold, orders=order,
                                        cap_grid=cap_grid, min_type_tasks=min_type_tasks)
    if write is not None:
        render_tune.write_snippet(write, data["snippet"], force)
        data["written"] = str(write)
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
    elif as_csv:
        sys.stdout.write(render_tune.tune_csv(data))
    else:
        render_tune.print_tune(data, top)
        if write is not None:
            typer.echo(f"wrote the chosen policy to {_terminal_safe(str(write))} (a run: section: merge it into your config)")
