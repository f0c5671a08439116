"""`tier log` and `tier report`: reading the ledger."""

from __future__ import annotations

import functools
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
    _load_summary,
    _open_ledger,
    app,
    guarded,
)
from tiercli.errors import InputError

UserOpt = typer.Option(None, "--user", "-u", help="Only this team member's calls (tier users); (none): calls made without a user.", show_default=False)


def _import_renderer() -> None:
    """The report's renderer (rich: 30-60 ms), imported while SQLite reads the ledger."""
    import rich.console  # noqa: F401

    from tiercli import render, render_views  # noqa: F401


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
    user: Optional[str] = UserOpt,
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
    from tiercli.ledger.log_queries import LOG_STATUSES

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
    from tiercli.ledger import log_queries as queries

    ledger = _open_ledger(db)
    try:
        if action == "show":
            assert call_id is not None  # checked above: show needs an id
            call, feedback = queries.call_with_feedback(ledger, call_id)
        else:
            rows = queries.log_calls(ledger, limit=n, session=session, model=model, tier=tier, task_type=task_type,
                                     since=start, until=end, status=status, text=query, user=user)
    finally:
        ledger.close()
    if action == "show":
        if call is None:
            raise InputError(f"no call with id {call_id!r} (or the prefix is ambiguous)", "see `tier log`")
        if as_json:
            typer.echo(json.dumps(render.call_json(call, feedback), indent=2, ensure_ascii=False))
        else:
            render.print_call(call, feedback)
        return
    if as_json:
        typer.echo(json.dumps([render.log_row_json(r) for r in rows], indent=2, ensure_ascii=False))
        return
    if not rows:
        filtered = any(v is not None for v in (session, model, tier, task_type, since, until, status, query, user))
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
    user: Optional[str] = UserOpt,
    by: Optional[str] = typer.Option(None, "--by", help="Usage per day | week | month | project | model | task | tier | session | user.", show_default=False),
    timezone: Optional[str] = typer.Option(None, "--timezone", "--tz", help="Days, weeks, months and dates in this zone (IANA name; default the machine's zone).", show_default=False),
    retry_window: float = typer.Option(600, "--retry-window", min=0, help="Seconds within which the same instruction again counts as a retry."),
    as_json: bool = JsonOpt,
    as_csv: bool = typer.Option(False, "--csv", help="CSV on stdout (report: section,key,metric,value; views: one line per row)."),
    config: Optional[Path] = ConfigOpt,
    db: Optional[Path] = DbOpt,
) -> None:
    """Tier distribution, cost per task type, savings, caching, quality signals, by day and model.

    Examples: tier report --all · tier report sessions --last 7d · tier report --by user --last 30d
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
    # the whole report loads its config while the ledger is read (build_report), unless the ledger's
    # place is the config's ledger.url (no --db, no TIER_DB): then first
    loaded = functools.cache(lambda: _load_summary(config)) if view is None and by is None else None
    ledger = _open_ledger(db, loaded=loaded)  # an empty ledger gives an empty report ("no calls yet"), not an error
    try:
        where = core.Where(start, end, session, user=user)
        if view == "tasks":
            data = views.tasks_view(ledger, where)
        elif view == "sessions" or by is not None:
            data = views.usage_view(ledger, where, by or "session", tz, tz_name)
        else:
            assert loaded is not None  # loaded when there is no view and no --by
            data = core.build_report(ledger, lambda: loaded().config, since=start, until=end, session=session, user=user,
                                     retry_window_s=retry_window, now=now, meanwhile=None if as_json else _import_renderer)
            data["window"]["timezone"] = tz_name
            if data["totals"]["calls"] and not views.is_utc(tz):
                data["days"] = views.local_days(ledger, where, tz)
            if data["totals"]["calls"] and views.is_imported_history(data):
                data["history"] = views.history(_load_config(config), ledger, data, where, tz, tz_name)
        if view is not None or by is not None:
            data["window"] = {"since": start, "until": end, "since_iso": core.iso(start), "until_iso": core.iso(end),
                              "session": session, "user": user, "all": start is None and end is None,
                              "label": label}
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
