"""The `tier` command: parse, call the core, render. No routing logic, no SQL, no litellm here.

Every command runs inside `_errors()`, the one place where a TierError becomes a single stderr
line and its exit code (see errors.py), so bad input never shows a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from tiercli import __version__
from tiercli.cli_help import TierTyper
from tiercli.errors import EXIT_INTERRUPTED, InputError, LedgerError, TierError

app = TierTyper(
    name="tier",
    help="Route each coding-agent LLM call to the cheapest model tier that can do it, and keep a ledger of what it cost.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
config_app = TierTyper(help="Show and check the configuration.", no_args_is_help=True)
import_app = TierTyper(help="Import other tools' session logs into the ledger.", no_args_is_help=True)
app.add_typer(config_app, name="config")
app.add_typer(import_app, name="import")

# No model takes more: 2M tokens (the largest context window) are ~8 MB of text. Bigger input was
# accepted and cost a minute and 6 GB of memory to count offline (50 MB), to be refused by the provider.
MAX_STDIN_BYTES = 8 * 1024 * 1024

ConfigOpt = typer.Option(None, "--config", "-c", metavar="FILE", help="Config file (else TIER_CONFIG, the user config, the embedded offline default).", show_default=False)
DbOpt = typer.Option(None, "--db", metavar="FILE|URL", help="Ledger file or postgresql:// URL (else TIER_DB, else the config's ledger.url, else TIER_HOME/ledger.db or the user data dir).", show_default=False)
JsonOpt = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")


def _fail(message: str, code: int) -> None:
    sys.stderr.write(f"tier: error: {message}\n")
    sys.stderr.flush()
    raise typer.Exit(code)


@contextmanager
def _errors() -> Iterator[None]:
    try:
        yield
    except TierError as exc:
        _fail(str(exc), exc.exit_code)
    except KeyboardInterrupt:
        sys.stderr.write("tier: interrupted\n")
        raise typer.Exit(EXIT_INTERRUPTED) from None
    except (typer.Exit, typer.Abort, SystemExit):
        raise
    except BrokenPipeError:
        # the reader went away (`tier log | head`): not an error worth a message
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - silence the interpreter's final flush
        except OSError:
            pass
        raise typer.Exit(0) from None
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, no traceback
        if isinstance(exc, UnicodeEncodeError) and "surrogates" in str(exc):
            # undecodable bytes from argv, the environment or a file name (Python keeps them as surrogates)
            _fail("an argument or path is not UTF-8 text (an option value, --session or a file name)", InputError.exit_code)
        if os.environ.get("TIER_DEBUG"):
            raise
        from tiercli.redact import redact

        _fail(f"internal error: {type(exc).__name__}: {redact(str(exc))[:300]} (set TIER_DEBUG=1 for a traceback, and please report it)", 1)


def guarded(fn):
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with _errors():
            return fn(*args, **kwargs)

    return wrapper


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tier {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", "-V", callback=_version, is_eager=True, help="Show the version and exit."),
) -> None:
    """tier: cheapest-capable-tier routing for coding-agent LLM calls."""


# -- helpers ---------------------------------------------------------------------------------------
def _load_config(path: Optional[Path]):
    from tiercli import config

    return config.load(path)


def _configured_ledger_url() -> str | None:
    """The config's ledger.url, read only when a config file exists (else there is none)."""
    from tiercli import paths

    if not (os.environ.get("TIER_CONFIG") or paths.user_config_file().exists()):
        return None
    return _load_config(None).config.ledger.url


def _ledger_target(db: Optional[Path], loaded=None):
    """--db, TIER_DB, the config's ledger.url (`loaded`: the command's config, else the default one)."""
    from tiercli import paths

    return paths.ledger_target(db, loaded.config.ledger.url if loaded is not None else _configured_ledger_url)


def _open_ledger(db: Optional[Path], create: bool = True, loaded=None):
    from tiercli.ledger import open_ledger

    ledger = open_ledger(_ledger_target(db, loaded), create=create)
    if ledger.recovered:
        sys.stderr.write(f"tier: recovered {len(ledger.recovered)} call(s) left pending by a process that ended: "
                         "settled as interrupted, cost unknown, reservations released (see `tier log`)\n")
    return ledger


def _read_stdin() -> str:
    """stdin as text when something is piped in; '' for a terminal."""
    stream = sys.stdin
    if stream is None or stream.isatty():
        return ""
    buffer = getattr(stream, "buffer", None)
    raw = buffer.read(MAX_STDIN_BYTES + 1) if buffer is not None else stream.read(MAX_STDIN_BYTES + 1).encode()
    if len(raw) > MAX_STDIN_BYTES:
        raise InputError(f"stdin is larger than {MAX_STDIN_BYTES // (1024 * 1024)} MB", "send a smaller excerpt")
    if b"\x00" in raw:
        raise InputError("stdin looks binary (it contains NUL bytes)", "pipe text, e.g. a log or a source file")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"stdin is not UTF-8 text (bad byte at offset {exc.start})", "convert it with iconv, or pipe text") from None


def _prompt_from(argument: Optional[str]) -> str:
    if argument and not argument.isascii():
        try:
            argument.encode("utf-8")
        except UnicodeEncodeError as exc:  # argv bytes that are not UTF-8 arrive as lone surrogates
            raise InputError(f"the prompt argument is not UTF-8 text (bad byte at offset {exc.start})",
                             "convert it with iconv, or pipe it on stdin") from None
    piped = _read_stdin()
    parts = [p for p in (piped.strip("\n"), argument) if p and p.strip()]
    prompt = "\n\n".join(parts)
    if not prompt.strip():
        raise InputError("the prompt is empty", 'pass it as an argument (tier ask "...") or on stdin')
    return prompt


def _terminal_safe(text: str) -> str:
    """Show escape sequences and other control characters instead of letting a terminal run them."""
    from tiercli.render_calls import inert

    return inert(text, keep_layout=True)


def _money(value: float | None) -> str:
    from tiercli.fmt import usd

    return usd(value)


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

    loaded = _load_config(config)
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
    outcomes: Path = typer.Option(..., "--outcomes", help="An outcome table (CSV or JSONL, long or wide form).", show_default=False),
    mapping: Optional[list[str]] = typer.Option(None, "--map", help="TIER=MODEL or MODEL=TIER, which table model stands for which tier (repeatable, or comma-separated).", show_default=False),
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
    loaded = _load_config(config)
    data = commands.tune(loaded, outcomes, mapping=mapping, within=within, folds=folds, objective=objective,
                         threshold=success_threshold, orders=order, cap_grid=cap_grid, by=by, tasks=tasks,
                         min_type_tasks=min_type_tasks)
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


# -- log ---------------------------------------------------------------------------------------------
@app.command()
@guarded
def log(
    action: Optional[str] = typer.Argument(None, help="show: print one call whole (tier log show ID).", show_default=False),
    call_id: Optional[str] = typer.Argument(None, help="With show: the call's id or a unique prefix (as the table shows it).", show_default=False),
    n: int = typer.Option(20, "-n", "--limit", min=1, max=100_000, help="How many calls."),
    session: Optional[str] = typer.Option(None, "--session", "-s", help="Only this session.", show_default=False),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Only models whose name contains this.", show_default=False),
    tier: Optional[str] = typer.Option(None, "--tier", help="Only calls sent to (or answered by) this tier.", show_default=False),
    task_type: Optional[str] = typer.Option(None, "--task-type", "-t", help="Only this task type.", show_default=False),
    since: Optional[str] = typer.Option(None, "--since", help="From 48h, 7d, a UTC date or an ISO time.", show_default=False),
    until: Optional[str] = typer.Option(None, "--until", help="Before this time (same forms).", show_default=False),
    status: Optional[str] = typer.Option(None, "--status", help="ok | error | interrupted | pending | refused.", show_default=False),
    query: Optional[str] = typer.Option(None, "-q", "--query", help="Only calls whose stored prompt contains this text.", show_default=False),
    path: bool = typer.Option(False, "--path", help="Print the ledger's path and exit."),
    as_json: bool = JsonOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """The last calls in the ledger, newest first; filters combine.

    Examples: tier log -n 50 --tier tier3 · tier log --since 7d -q "login test" · tier log show 3f2a9c1e
    """
    from tiercli import paths
    from tiercli.errors import UsageError

    ledger_path = _ledger_target(db)
    if path:
        typer.echo(paths.display(ledger_path))
        return
    if action is not None and action != "show":
        raise UsageError(f"unknown log action {action!r}", "use `tier log` or `tier log show ID`")
    if action == "show" and not call_id:
        raise UsageError("tier log show needs a call id", "copy one from `tier log`")
    if action is None and call_id is not None:
        raise UsageError(f"unexpected argument {call_id!r}", "use `tier log show ID`")
    from tiercli.ledger.queries import LOG_STATUSES

    if status is not None and status not in LOG_STATUSES:
        raise UsageError(f"unknown --status {status!r}", f"use one of {', '.join(LOG_STATUSES)}")
    start = end = None
    if since is not None or until is not None:
        from tiercli.report import parse_window

        start = parse_window(since) if since else None
        end = parse_window(until) if until else None
    if not paths.is_url(ledger_path) and not Path(ledger_path).exists():
        if action == "show":
            raise InputError(f"no call with id {call_id!r}: the ledger is empty", f"ledger at {ledger_path}")
        typer.echo("[]" if as_json else "no calls yet (the ledger is empty)")
        return
    from tiercli import render_calls as render
    from tiercli.ledger import queries

    ledger = _open_ledger(db)
    try:
        if action == "show":
            call, feedback = queries.call_with_feedback(ledger, call_id)
            if call is None:
                raise InputError(f"no call with id {call_id!r} (or the prefix is ambiguous)", "see `tier log`")
        else:
            rows = queries.log_calls(ledger, limit=n, session=session, model=model, tier=tier, task_type=task_type,
                                     since=start, until=end, status=status, text=query)
    finally:
        ledger.close()
    if action == "show":
        if as_json:
            typer.echo(json.dumps(render.call_json(call, feedback), indent=2, ensure_ascii=False))
        else:
            render.print_call(call, feedback)
        return
    if as_json:
        typer.echo(json.dumps([render.log_row_json(r) for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        filtered = any(v is not None for v in (session, model, tier, task_type, since, until, status, query))
        typer.echo("no calls match these filters" if filtered else "no calls yet (the ledger is empty)")
        return
    render.print_log(rows)


# -- report ------------------------------------------------------------------------------------------
REPORT_DEFAULT_SINCE = "48h"


@app.command()
@guarded
def report(
    view: Optional[str] = typer.Argument(None, help="sessions (a session table) | tasks (agent tasks: steps, cost per task); default: the whole report.", show_default=False),
    since: Optional[str] = typer.Option(None, "--since", help=f"Window start: 48h, 7d, 90m, 2026-11-01 or an ISO time (default {REPORT_DEFAULT_SINCE}).", show_default=False),
    until: Optional[str] = typer.Option(None, "--until", help="Window end (same forms).", show_default=False),
    last: Optional[str] = typer.Option(None, "--last", help="The last 7d, 24h, 2w, ... (same as --since 7d).", show_default=False),
    all_calls: bool = typer.Option(False, "--all", help="The whole ledger."),
    session: Optional[str] = typer.Option(None, "--session", "-s", help="One session only."),
    by: Optional[str] = typer.Option(None, "--by", help="Usage per day | week | month | project | model | task | tier | session.", show_default=False),
    timezone: Optional[str] = typer.Option(None, "--timezone", "--tz", help="Days, weeks, months and dates in this zone (IANA name; default the machine's zone).", show_default=False),
    retry_window: float = typer.Option(600, "--retry-window", min=0, help="Seconds within which the same instruction again counts as a retry."),
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout (report: section,key,metric,value; views: one line per row)."),
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Tier distribution, cost per task type, savings, caching, quality signals, by day and model.

    Examples: tier report --all · tier report sessions --last 7d · tier report --by week --timezone Europe/Paris
    """
    import time

    from tiercli import report as core
    from tiercli import report_views as views
    from tiercli.errors import UsageError

    if view is not None and view not in ("sessions", "tasks"):
        raise UsageError(f"unknown report view {view!r}", "use `tier report`, `tier report sessions` or `tier report tasks`")
    if all_calls and (since or until or last):
        raise UsageError("--all is the whole ledger: drop it, or drop --since/--until/--last")
    if since and last:
        raise UsageError("--last and --since both set the window start: give one")
    if view is not None and by is not None:
        raise UsageError(f"`tier report {view}` has its own rows: drop --by")
    if as_json and as_csv:
        raise UsageError("--json and --csv: pick one")
    tz, tz_name = views.local_zone(timezone)
    now = time.time()
    label = None
    if last is not None:
        if not core.is_duration(last):
            raise UsageError(f"--last takes a duration such as 7d, 24h or 2w, not {last!r}")
        label = f"the last {last}"
    elif not all_calls and since is None and until is None:
        label = f"the last {REPORT_DEFAULT_SINCE} (the default window)"
    start_text = last or since or (None if all_calls or until else REPORT_DEFAULT_SINCE)
    start = core.parse_window(start_text, now, tz) if start_text else None
    end = core.parse_window(until, now, tz) if until else None
    if start is not None and end is not None and start > end:
        raise UsageError(f"--since ({core.iso(start)}) is after --until ({core.iso(end)})", "swap them")
    loaded = _load_config(config) if view is None and by is None else None
    ledger = _open_ledger(db, loaded=loaded)  # an empty ledger gives an empty report ("no calls yet"), not an error
    if getattr(ledger, "engine_name", "sqlite") != "sqlite":  # its queries are SQLite's (see ledger/queries.py)
        ledger.close()
        raise LedgerError("tier report does not read a PostgreSQL ledger yet",
                          "tier log and tier replay do; or report from a SQLite copy")
    try:
        where = core.Where(start, end, session)
        if view == "tasks":
            data = views.tasks_view(ledger, where)
        elif view == "sessions" or by is not None:
            data = views.usage_view(ledger, where, by or "session", tz, tz_name)
        else:
            data = core.build_report(ledger, loaded.config, since=start, until=end, session=session,
                                     retry_window_s=retry_window, now=now)
            data["window"]["timezone"] = tz_name
            if data["totals"]["calls"] and not views.is_utc(tz):
                data["days"] = views.local_days(ledger, where, tz)
            if data["totals"]["calls"] and views.is_imported_history(data):
                data["history"] = views.history(loaded, ledger, data, where, tz, tz_name)
        if view is not None or by is not None:
            data["window"] = {"since": start, "until": end, "since_iso": core.iso(start), "until_iso": core.iso(end),
                              "session": session, "all": start is None and end is None, "label": label}
        else:
            data["window"]["label"] = label
    finally:
        ledger.close()
    if as_json:
        typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    from tiercli import render_views

    if view is not None or by is not None:
        empty = not (data.get("rows") or data.get("tasks"))
        if empty:
            typer.echo(render_views.empty_window({"window": data["window"]}, label))
        elif as_csv:
            sys.stdout.write(render_views.view_to_csv(data))
        elif view == "tasks":
            render_views.print_tasks(data)
        else:
            render_views.print_usage(data)
        return
    if as_csv:
        from tiercli import render

        sys.stdout.write(render.report_to_csv(data))
    elif not data["totals"]["calls"]:
        typer.echo(render_views.empty_window(data, label))
    else:
        from rich.console import Console

        from tiercli import render

        console = Console()
        render.render_report(data, console)
        if data.get("history"):
            console.print()
            render_views.print_history(data["history"], console)


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
    for entry in data.get("model_list", []):
        params = entry.get("litellm_params", {})
        for key in ("api_key", "aws_secret_access_key", "aws_access_key_id"):
            if key in params and not str(params[key]).startswith("os.environ/"):
                params[key] = "<hidden>"
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("tier: interrupted\n")
        sys.exit(EXIT_INTERRUPTED)


if __name__ == "__main__":
    main()
