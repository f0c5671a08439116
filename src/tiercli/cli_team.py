"""`tier users ...` and `tier doctor`: team mode's commands (parsing and rendering only; the ledger
does the SQL, team.py the tokens). Registered on the main app by cli.py."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from tiercli.cli_help import TierTyper
from tiercli.errors import UsageError

users_app = TierTyper(help="Team mode: the users of `tier serve`, their tokens and budgets.", no_args_is_help=True)


def register(app: typer.Typer, *, db_opt, json_opt, guarded, open_ledger) -> None:
    """Add the commands; cli.py hands over its shared options and helpers (no import back into cli)."""
    DbOpt, JsonOpt = db_opt, json_opt

    def _budget(value: Optional[float], flag: str) -> Optional[float]:
        if value is not None and value < 0:
            raise UsageError(f"{flag} must be 0 or more, got {value}")
        return value

    def _name(name: str) -> str:
        from tiercli import team

        if not team.valid_name(name):
            raise UsageError(f"user name {name!r} is not valid", "use 1-64 letters, digits, - _ . @")
        return name

    @users_app.command("add")
    @guarded
    def users_add(
        name: str = typer.Argument(..., help="The user's name (shown in reports)."),
        daily_usd: Optional[float] = typer.Option(None, "--daily-usd", help="The user's own daily budget (UTC day)."),
        monthly_usd: Optional[float] = typer.Option(None, "--monthly-usd", help="The user's own monthly budget."),
        db: Optional[Path] = DbOpt,
    ) -> None:
        """Add a user and print their token, once (only its hash is stored)."""
        from tiercli import team

        _name(name)
        token = team.new_token()
        ledger = open_ledger(db)
        try:
            ledger.add_user(name, team.token_hash(token), team.hint(token), _budget(daily_usd, "--daily-usd"),
                            _budget(monthly_usd, "--monthly-usd"))
        finally:
            ledger.close()
        sys.stderr.write(f"tier: user {name} added; their token (shown only now, keep it secret):\n")
        typer.echo(token)

    @users_app.command("list")
    @guarded
    def users_list(as_json: bool = JsonOpt, db: Optional[Path] = DbOpt) -> None:
        """The users, their budgets and whether they are enabled (never their tokens)."""
        ledger = open_ledger(db)
        try:
            users = ledger.list_users()
        finally:
            ledger.close()
        rows = [{"name": u["id"], "token": u["token_hint"], "daily_usd": u["daily_usd"], "monthly_usd": u["monthly_usd"],
                 "disabled": bool(u["disabled"]), "created_at": u["created_at"], "rotated_at": u["rotated_at"]}
                for u in users]
        if as_json:
            typer.echo(json.dumps(rows, indent=2))
            return
        if not rows:
            typer.echo("no users (add one: tier users add NAME)")
            return
        from tiercli.render_calls import inert

        for r in rows:
            budget = " ".join(f"{k.split('_')[0]} ${r[k]:.2f}" for k in ("daily_usd", "monthly_usd") if r[k] is not None)
            typer.echo(f"{inert(r['name']):<24} {r['token']:<16} {'disabled' if r['disabled'] else 'enabled ':<9} "
                       f"{budget or 'team budgets only'}")

    def _set(name: str, db: Optional[Path], disabled: bool) -> None:
        ledger = open_ledger(db)
        try:
            found = ledger.set_user_disabled(name, disabled)
        finally:
            ledger.close()
        if not found:
            raise UsageError(f"no user {name!r}", "see `tier users list`")
        typer.echo(f"user {name} {'disabled' if disabled else 'enabled'}")

    @users_app.command("disable")
    @guarded
    def users_disable(name: str = typer.Argument(...), db: Optional[Path] = DbOpt) -> None:
        """Refuse the user's token from now on (their calls stay in the ledger)."""
        _set(name, db, True)

    @users_app.command("enable")
    @guarded
    def users_enable(name: str = typer.Argument(...), db: Optional[Path] = DbOpt) -> None:
        """Accept a disabled user's token again."""
        _set(name, db, False)

    @users_app.command("rotate")
    @guarded
    def users_rotate(name: str = typer.Argument(...), db: Optional[Path] = DbOpt) -> None:
        """Give the user a new token (printed once); the old one stops working at once."""
        from tiercli import team

        token = team.new_token()
        ledger = open_ledger(db)
        try:
            found = ledger.rotate_user_token(name, team.token_hash(token), team.hint(token))
        finally:
            ledger.close()
        if not found:
            raise UsageError(f"no user {name!r}", "see `tier users list`")
        sys.stderr.write(f"tier: new token for {name} (shown only now; the old one no longer works):\n")
        typer.echo(token)

    @app.command("doctor")
    @guarded
    def doctor(as_json: bool = JsonOpt, db: Optional[Path] = DbOpt) -> None:
        """Check the ledger: the database answers, the schema version, the users' tokens."""
        from tiercli import team
        from tiercli.ledger import SCHEMA_VERSION

        ledger = open_ledger(db, create=False)
        try:
            checks = team.doctor(ledger, SCHEMA_VERSION)
        finally:
            ledger.close()
        if as_json:
            typer.echo(json.dumps([c.__dict__ for c in checks], indent=2))
        else:
            for c in checks:
                typer.echo(f"{'ok  ' if c.ok else 'FAIL'} {c.name:<9} {c.detail}")
        if not all(c.ok for c in checks):
            raise typer.Exit(5)

    app.add_typer(users_app, name="users")
