"""The `tier` command: parse, call the core, render. No routing logic, no SQL, no litellm here.

Every command runs inside `_errors()`, the one place where a TierError becomes a single stderr
line and its exit code (see errors.py), so bad input never shows a traceback.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from typing import Optional

import typer

from tiercli.cli_common import (
    MAX_STDIN_BYTES,
    ConfigOpt,
    DbOpt,
    JsonOpt,
    _ledger_target,
    _load_config,
    _load_summary,
    _open_ledger,
    _prompt_from,
    _terminal_safe,
    app,
    config_app,
    guarded,
    import_app,
)
from tiercli.errors import EXIT_INTERRUPTED, InputError, TierError


# -- ask ---------------------------------------------------------------------------------------------
@app.command()
@guarded
def ask(
    prompt: Optional[str] = typer.Argument(None, help="The prompt. Piped stdin comes first, then this.", show_default=False),
    task_type: Optional[str] = typer.Option(None, "--task-type", "-t", metavar="TYPE", help="Route statically by task type."),
    tier: Optional[str] = typer.Option(None, "--tier", metavar="TIER", help="Force a tier (recorded as an override)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", metavar="NAME", help="A tier or a model of the config, routed to its tier as an override (like --tier). Models: {models}."),
    session: Optional[str] = typer.Option(None, "--session", "-s", help="Group calls into a session."),
    classifier: Optional[str] = typer.Option(None, "--classifier", help="static | local | llm | hybrid (overrides the config)."),
    system_file: Optional[Path] = typer.Option(None, "--system-file", help="A system prompt file (the static prefix, cached where the provider supports it)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the decision and estimated cost; call nothing, record nothing."),
    history: bool = typer.Option(False, "--history", help="Carry the --session's earlier turns (compacted past guardrails.compaction.threshold_tokens)."),
    check: Optional[str] = typer.Option(None, "--check", help="Verify the answer: pipe it to this shell command; a non-zero exit escalates to the next tier."),
    force: bool = typer.Option(False, "--force", help="Go past the session's iteration limit."),
    as_json: bool = JsonOpt,
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No decision line on stderr."),
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Route a prompt to the cheapest capable tier, stream the answer, record the call."""
    from tiercli import worker_client
    from tiercli.ask_command import AskOptions

    system = None
    if system_file is not None:
        from tiercli.paths import not_a_regular_file

        if why := not_a_regular_file(system_file):
            raise InputError(f"--system-file {system_file} {why}", "pass a regular file")
        try:
            with system_file.open("rb") as fh:  # bounded: it may be /dev/zero or a pipe
                raw = fh.read(MAX_STDIN_BYTES + 1)
            if len(raw) > MAX_STDIN_BYTES:
                raise InputError(f"--system-file {system_file} is larger than {MAX_STDIN_BYTES // (1024 * 1024)} MB")
            system = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read --system-file {system_file}: {getattr(exc, 'strerror', None) or exc}") from None
    opts = AskOptions(prompt=_prompt_from(prompt), task_type=task_type, tier=tier, model=model, session=session,
                      classifier=classifier, system=system, dry_run=dry_run, history=history, check=check, force=force,
                      as_json=as_json, quiet=quiet)
    # a warm worker answers without importing litellm here (worker_client.py); else run in-process
    worker = None if dry_run or check is not None else worker_client.Route.find(config, db)
    if worker is not None and worker.ask(opts, _write_out, _write_err, tty=sys.stdout.isatty()):
        return
    try:
        _ask_in_process(opts, config, db)
    except TierError as exc:
        if worker is not None and exc.exit_code not in (2, 3, 4):  # not a usage, config or input error
            worker.start_for_next_time()
        raise
    if worker is not None:
        worker.start_for_next_time()


def _write_out(text: str) -> None:
    sys.stdout.write(text)
    sys.stdout.flush()


def _write_err(text: str) -> None:
    sys.stderr.write(text)
    sys.stderr.flush()


def _ask_in_process(opts, config: Optional[Path], db: Optional[Path]) -> None:
    from tiercli import ask_command

    loaded = _load_config(config)
    ask_command.execute(loaded, opts, _ledger_target(db, loaded), out=_write_out, err=_write_err,
                        tty=sys.stdout.isatty(), terminal_safe=_terminal_safe)


# -- classify ----------------------------------------------------------------------------------------
def _decision_json(decision, item_id=None) -> dict:
    out = {} if item_id is None else {"id": item_id}
    out.update({
        "task_type": decision.task_type, "label": decision.label, "tier": decision.tier, "model": decision.model,
        "confidence": None if decision.confidence is None else round(decision.confidence, 4),
        "classifier": decision.classifier, "source": decision.source, "reasons": list(decision.reasons),
    })
    return out


@app.command()
@guarded
def classify(
    task: Optional[str] = typer.Argument(None, help="The task text (or stdin).", show_default=False),
    classifier: Optional[str] = typer.Option(None, "--classifier", help="local | llm | hybrid (overrides the config)."),
    batch: Optional[Path] = typer.Option(None, "--batch", help='JSONL file of {"id": ..., "task": ...}; one JSON result per line on stdout.'),
    as_json: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """The routing decision alone: task type, label, tier, model, confidence, reasons."""
    from tiercli import ask as core

    loaded = _load_config(config)
    which = classifier or loaded.config.routing.classifier
    if which not in ("local", "llm", "hybrid", "static"):
        raise InputError(f"unknown --classifier {which!r}", "use local, llm or hybrid")
    if which == "static":
        which = "local"  # static routing needs a task type; classifying a text is the local classifier's job
    ledger = _open_ledger(db, loaded=loaded) if which in ("llm", "hybrid") else None
    try:
        if batch is not None:
            _classify_batch(loaded, batch, which, ledger)
            return
        decision = core.classify_only(loaded, _prompt_from(task), which, ledger)
    finally:
        if ledger is not None:
            ledger.close()
    if as_json:
        typer.echo(json.dumps(_decision_json(decision), indent=2, ensure_ascii=False))
        return
    from tiercli import render_calls

    render_calls.print_decision(decision)


def _classify_batch(loaded, batch: Path, which: str, ledger) -> None:
    """One JSON object per input line; a line that cannot be read gets an error object, not an abort."""
    from tiercli import ask as core
    from tiercli.paths import not_a_regular_file

    if why := not_a_regular_file(batch):
        raise InputError(f"--batch {batch} {why}", "pass a JSONL file")
    try:
        handle = batch.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read --batch {batch}: {exc.strerror}") from None
    done = failed = asked = 0
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            item_id = None
            try:
                item = json.loads(raw.decode("utf-8"))
                if not isinstance(item, dict) or not isinstance(item.get("task"), str):
                    raise ValueError('expected an object {"id": ..., "task": "..."}')
                item_id = item.get("id")
                decision = core.classify_only(loaded, item["task"], which, ledger)
            except (ValueError, UnicodeDecodeError, InputError, RecursionError) as exc:
                failed += 1
                why = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)[:200]
                shown_id = item_id if isinstance(item_id, (str, int, float, type(None))) else str(item_id)[:80]
                typer.echo(json.dumps({"id": shown_id, "line": number, "error": why}))
                continue
            done += 1
            asked += decision.asked_llm
            typer.echo(json.dumps(_decision_json(decision, item_id), ensure_ascii=False))
    summary = f"classified {done} task(s) with {which}"
    if failed:
        summary += f", {failed} line(s) not understood"
    if which == "hybrid":
        summary += f", asked the llm classifier {asked} time(s)"
    sys.stderr.write(summary + "\n")


# -- import ------------------------------------------------------------------------------------------
@import_app.command("claude-code")
@guarded
def import_claude_code(
    paths: Optional[list[Path]] = typer.Argument(None, help="Session files or folders (default: ~/.claude/projects, ~/.config/claude/projects, $CLAUDE_CONFIG_DIR/projects).", show_default=False),
    as_json: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Import Claude Code session logs as calls grouped in tasks (source claude-code). Importing twice adds nothing."""
    from tiercli.importers import import_claude_code as run_import

    _run_import(run_import, "Claude Code logs", paths, as_json, config, db)


@import_app.command("codex")
@guarded
def import_codex(
    paths: Optional[list[Path]] = typer.Argument(None, help="Rollout files or folders (default: $CODEX_HOME/sessions or ~/.codex/sessions).", show_default=False),
    as_json: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Import Codex CLI rollout files as calls grouped in tasks (source codex). Importing twice adds nothing."""
    from tiercli.importers.codex import import_codex as run_import

    _run_import(run_import, "Codex rollouts", paths, as_json, config, db)


def _run_import(run_import, label: str, paths, as_json: bool, config, db) -> None:
    from tiercli import render_import
    from tiercli.pricing import PriceBook

    loaded = _load_summary(config)
    ledger = _open_ledger(db, loaded=loaded)
    try:
        with render_import.progress_bar(f"importing {label}") as progress:
            result = run_import(paths or None, ledger, PriceBook(loaded.config.prices), progress=progress)
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(result.to_json(), indent=2))
        return
    for line in render_import.summary(result):
        typer.echo(line)
    if result.unpriced_calls:
        typer.echo(f"unpriced: {result.unpriced_calls} call(s) of {', '.join(result.unpriced_models)} "
                   "(add them under prices: in the config)", err=True)


# -- feedback ----------------------------------------------------------------------------------------
@app.command()
@guarded
def feedback(
    call_id: str = typer.Argument(..., help="The call's id (or a unique prefix, as `tier log` shows it)."),
    verdict: str = typer.Argument(..., help="good or bad."),
    note: Optional[str] = typer.Option(None, "--note", help="Why."),
    db: Optional[Path] = DbOpt,
) -> None:
    """Say whether a call's answer was good or bad (feeds the report's quality section)."""
    from tiercli.errors import UsageError

    if verdict not in ("good", "bad"):
        raise UsageError(f"verdict must be good or bad, not {verdict!r}")
    ledger = _open_ledger(db, create=False)
    try:
        call = ledger.find_call(call_id)
        if call is None:
            raise InputError(f"no call with id {call_id!r} (or the prefix is ambiguous)", "see `tier log`")
        ledger.add_feedback(call["id"], verdict, note)
    finally:
        ledger.close()
    typer.echo(f"recorded: {call['id'][:8]} {verdict}")


# -- learn -------------------------------------------------------------------------------------------
@app.command()
@guarded
def learn(
    apply: bool = typer.Option(False, "--apply", help="Enable the layer (write it to the tier home dir)."),
    undo: bool = typer.Option(False, "--undo", help="Go back to the layer before the last --apply (or to none)."),
    threshold: float = typer.Option(0.8, "--threshold", min=0.3, max=1.0, help="Similarity a prompt needs to a corrected one."),
    show: int = typer.Option(20, "--show", min=0, help="Changed calls listed in the replay."),
    as_json: bool = JsonOpt,
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Learn from your --tier overrides and feedback: show the dry replay, then --apply (or --undo)."""
    from tiercli.classify import learn as core
    from tiercli.errors import UsageError

    if apply and undo:
        raise UsageError("--apply and --undo together", "use one of them")
    if undo:
        done = core.undo()
        typer.echo({"restored": f"restored the previous learned layer ({core.layer_path()})",
                    "removed": f"removed the learned layer ({core.layer_path()}); routing is the classifier's alone",
                    "nothing": "no learned layer to undo"}[done])
        return
    loaded = _load_config(config)
    ledger = _open_ledger(db, create=False)
    try:
        plan = core.plan(loaded, ledger, threshold)
    finally:
        ledger.close()
    path = core.save(plan.layer) if apply else None
    if as_json:
        typer.echo(json.dumps({**plan.to_json(), "applied": bool(path), "path": str(path) if path else None}, indent=2))
        return
    for line in core.summary_lines(plan, show=show):
        typer.echo(line)
    typer.echo(f"enabled: {path} (undo with `tier learn --undo`)" if path else "not enabled: run `tier learn --apply`")


# the other commands, registered on `app` in help order when their modules load
for _module in ("cli_replay", "cli_agents", "cli_reports"):  # replay, tune; serve, run; log, report
    importlib.import_module(f"tiercli.{_module}")


# -- config ------------------------------------------------------------------------------------------
@config_app.command("path")
@guarded
def config_path(config: Optional[Path] = ConfigOpt) -> None:
    """Which config file applies, and why."""
    from tiercli import config as cfgmod

    path, how = cfgmod.locate(config)
    typer.echo(f"{path if path else 'embedded:offline.yaml'}  ({how})")


@config_app.command("show")
@guarded
def config_show(config: Optional[Path] = ConfigOpt, as_json: bool = JsonOpt) -> None:
    """The effective config, defaults filled in (literal API keys hidden)."""
    import yaml

    loaded = _load_config(config)
    data = loaded.config.model_dump(mode="json", exclude_none=True)
    from tiercli.secrets_scrub import hide_params

    for entry in data.get("model_list", []):
        entry["litellm_params"] = hide_params(entry.get("litellm_params", {}))
    if as_json:
        typer.echo(json.dumps({"source": loaded.source, "hash": loaded.hash, "config": data}, indent=2))
        return
    typer.echo(f"# source: {loaded.source}  (hash {loaded.hash})")
    typer.echo(yaml.safe_dump(data, sort_keys=False, width=100).rstrip())


@config_app.command("check")
@guarded
def config_check(config: Optional[Path] = ConfigOpt) -> None:
    """List every problem in the config; exit 0 only when there is none."""
    from tiercli import config as cfgmod

    source, errors, warnings = cfgmod.problems(config)
    for e in errors:
        typer.echo(f"error: {e}", err=True)
    for w in warnings:
        typer.echo(f"warning: {w}", err=True)
    if errors:
        typer.echo(f"{source}: {len(errors)} problem(s)", err=True)
        raise typer.Exit(3)
    typer.echo(f"{source}: ok" + (f" ({len(warnings)} warning(s))" if warnings else ""))


@app.command("_worker", hidden=True)
def _worker(
    key: str = typer.Option(..., "--key"),
    socket_path: str = typer.Option(..., "--socket"),
    config: Optional[str] = typer.Option(None, "--config"),
) -> None:
    """Internal: the warm worker `tier ask` starts by itself (worker.py)."""
    from tiercli import worker

    raise typer.Exit(worker.main(key, socket_path, config))


def _register_team() -> None:
    from tiercli import cli_team  # `tier users`, `tier doctor`

    cli_team.register(app, db_opt=DbOpt, json_opt=JsonOpt, guarded=guarded, open_ledger=_open_ledger)


_register_team()


def _only_the_command(argv: list[str]) -> tuple[list, list] | None:
    """Keep only the command named in argv[1] registered (its group, for `config`/`import`/`users`),
    and return what was there to restore; None when nothing was changed. typer builds the click
    object of every registered command on each start (~15 ms of CPU for 15 commands, 1.7 ms for
    one); a process runs only one. Not for `tier`, `tier --help`, an option first, a name that is not
    a command (click's own error), or shell completion (which lists every command)."""
    import typer.main

    if len(argv) < 2 or argv[1].startswith("-") or any(k.endswith("_COMPLETE") for k in os.environ):
        return None
    name = argv[1]
    commands = [c for c in app.registered_commands
                if (c.name or (c.callback and typer.main.get_command_name(c.callback.__name__))) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if len(commands) + len(groups) != 1:
        return None
    saved = (list(app.registered_commands), list(app.registered_groups))
    app.registered_commands[:] = commands
    app.registered_groups[:] = groups
    return saved


def main() -> None:
    saved = _only_the_command(sys.argv)
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("tier: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)
    finally:
        if saved is not None:
            app.registered_commands[:], app.registered_groups[:] = saved


if __name__ == "__main__":
    main()
