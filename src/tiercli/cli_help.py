"""How `tier` presents itself: examples under every command's help, value placeholders instead of
Python types, the valid tiers and task types, where the config and the ledger are, suggestions for
mistyped options, and shell completion for a named shell.

Typer's command and group classes are subclassed here (TierTyper makes every command a TierCommand),
so cli.py stays a list of commands. Everything that reads the config runs only while help is shown;
nothing here imports litellm, pydantic or SQLAlchemy at start-up.
"""

from __future__ import annotations

import difflib
from typing import Any

import typer
from typer import _click
from typer.core import TyperArgument, TyperCommand, TyperGroup, TyperOption

from tiercli.cli_coerce import lighten

# Shown under each command's help, one to three real lines each ("$ " added). Keyed by the command's
# path without the program name. A new command gets its examples here (tests/test_cli_help.py checks).
EXAMPLES: dict[str, tuple[str, ...]] = {
    "": (
        'tier ask "where is the retry policy configured?"',
        "tier report --since 7d",
        "tier --install-completion       # tab completion: bash, zsh, fish",
    ),
    "ask": (
        'tier ask "where is the retry policy configured?"',
        'git diff | tier ask -t code_review "review this diff"',
        'tier ask -m claude-haiku-4-5 --dry-run "summarise the README"',
    ),
    "classify": (
        'tier classify "rename the Order model to Purchase across all services"',
        "tier classify --batch tasks.jsonl > decisions.jsonl",
    ),
    "feedback": (
        'tier feedback 3f2a9c1e bad --note "missed the null case"',
    ),
    "replay": (
        "tier replay -c sample_configs/anthropic.yaml        # the ledger, dry",
        "tier replay --claude-code examples/claude-code      # logs, not imported",
        "tier replay -c sample_configs/anthropic.yaml --since 7d --csv",
    ),
    "serve": (
        "tier serve --port 4141",
        "ANTHROPIC_BASE_URL=http://127.0.0.1:4141 claude   # Claude Code via tier",
        "tier serve --json-log > requests.jsonl            # one JSON object per request",
    ),
    "doctor": ("tier doctor", "tier doctor --db postgresql://tier@db.internal/tier"),
    "users": ("tier users add alice --daily-usd 20", "tier users list"),
    "users add": ("tier users add alice --daily-usd 20 --monthly-usd 300",),
    "users list": ("tier users list", "tier users list --json"),
    "users disable": ("tier users disable alice",),
    "users enable": ("tier users enable alice",),
    "users rotate": ("tier users rotate alice    # prints the new token once",),
    "run": (
        "tier run --check 'pytest -x -q' -- claude -p 'make tests/test_parser.py pass'",
        "tier run --tiers tier1,tier3 --cap tier3=3.00 --timeout 15m -- aider --message 'fix it'",
        "tier run --start auto --cap 1.50 --check 'make test' -- claude -p 'fix the lexer'",
    ),
    "learn": (
        "tier learn            # what your overrides and feedback would change, nothing enabled",
        "tier learn --apply    # use the correction layer from now on",
        "tier learn --undo",
    ),
    "tune": (
        "tier tune --outcomes examples/outcomes/gsm8k_100.csv --map mistralai/Mixtral-8x7B-Instruct-v0.1=tier1,gpt-4-1106-preview=tier3",
        "tier tune --outcomes table.csv --map tier1=Qwen3-Max,tier2=gpt-5.4,tier3=claude-opus-4-6 --write run.yaml",
        "tier tune --ledger --since 30d --folds 3 --write run.yaml",
    ),
    "log": (
        "tier log -n 50",
        "tier log --json | python3 -m json.tool",
        "tier log --user alice --since 24h",
    ),
    "report": (
        "tier report --since 7d",
        "tier report --all --csv > report.csv",
        "tier report --by user --last 30d            # team mode: spend per person",
    ),
    "config": (
        "tier config path",
        "tier config check -c sample_configs/anthropic.yaml",
    ),
    "config path": ("tier config path", "TIER_CONFIG=sample_configs/openai.yaml tier config path"),
    "config show": ("tier config show", "tier config show --json -c sample_configs/mixed.yaml"),
    "config check": ("tier config check", "tier config check -c sample_configs/anthropic.yaml"),
    "import": ("tier import claude-code examples/claude-code",),
    "import claude-code": (
        "tier import claude-code                       # ~/.claude/projects etc.",
        "tier import claude-code examples/claude-code  # files or folders",
    ),
    "import codex": (
        "tier import codex                             # ~/.codex/sessions",
        "tier import codex ~/.codex/sessions/2026/07   # files or folders",
    ),
}

COMPLETION_FLAGS = ("--show-completion", "--install-completion")
COMPLETION_SHELLS = ("bash", "zsh", "fish", "powershell", "pwsh")


def command_key(ctx: _click.Context) -> str:
    """'config check' for `tier config check` (whatever the program is called)."""
    return " ".join(ctx.command_path.split()[1:])


def examples_text(key: str) -> str | None:
    from rich.markup import escape

    lines = EXAMPLES.get(key)
    if not lines:
        return None
    return "[bold]Examples[/bold]\n" + "\n".join(escape(f"$ {line}") for line in lines)


# -- value placeholders instead of Python types --------------------------------------------------
def _value_metavar(param: TyperOption) -> str:
    """TEXT / INTEGER / NUMBER / PATH / a|b|c: what to type, in click's words."""
    desc = param.type_descriptor
    if desc.is_choice and desc.choices:
        return "|".join(str(getattr(c, "value", c)) for c in desc.choices)
    if desc.is_path:
        return "PATH"
    inner = desc.annotation
    origin_args = getattr(inner, "__args__", None)
    if origin_args and getattr(inner, "__origin__", None) is list:
        inner = origin_args[0]
    if inner is int:
        return "INTEGER"
    if inner is float:
        return "NUMBER"
    return "TEXT"


def _no_type(ctx: Any = None) -> None:
    return None


def tidy_params(params: list[_click.Parameter]) -> list[_click.Parameter]:
    """Give every parameter a placeholder (idempotent): flags none, values TEXT/PATH/..., arguments
    their upper-case name; Typer would show `<bool>`, `<list[Path]>`, `{call_id}`."""
    for param in params:
        if getattr(param, "_tier_tidy", False):
            continue
        param._tier_tidy = True  # type: ignore[attr-defined]
        if isinstance(param, TyperArgument):
            if param.metavar is None:
                param.metavar = param.name.upper()
            param.display_type_rich = _no_type  # type: ignore[method-assign]  # the name says it
        elif isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag or param.count else _value_metavar(param)
        if isinstance(param, TyperOption) and param.name == "show_completion":
            param.help = "Print the completion script for your shell (or name one: --show-completion zsh)."
        elif isinstance(param, TyperOption) and param.name == "install_completion":
            param.help = "Install tab completion for your shell (bash, zsh, fish; or name one: --install-completion fish)."
    return params


def _argument_usage(param: TyperArgument) -> str:
    name = param.metavar or param.name.upper()
    if param.nargs != 1:
        name += "..."
    return name if param.required else f"[{name}]"


# -- valid values, read from the config only while help is shown -------------------------------
def config_values() -> dict[str, Any]:
    """Tiers, task types and models of the config that applies (the defaults if it cannot be read)."""
    from tiercli.taxonomy import DEFAULT_TASK_TIERS, TASK_TYPES

    try:
        from tiercli import config

        loaded = config.load(None)
        cfg = loaded.config
        models: dict[str, str] = {}
        for tier in cfg.routing.tiers:
            for d in cfg.deployments(tier):
                models.setdefault(d.model.split("/", 1)[-1], tier)
        return {"source": loaded.source, "tiers": list(cfg.routing.tiers),
                "task_types": list(cfg.routing.task_types), "models": models}
    except Exception:  # noqa: BLE001 - help must show even with a broken config (`tier config check` says why)
        return {"source": "the defaults (the config could not be read)", "tiers": sorted(set(DEFAULT_TASK_TIERS.values())),
                "task_types": list(TASK_TYPES), "models": {}}


def _list_values(command: _click.Command) -> None:
    """Append the valid values to --tier, --task-type and a help text holding {models}."""
    for param in command.params:
        if not isinstance(param, TyperOption):
            continue
        base = getattr(param, "_tier_help", None)
        if base is None:
            base = param._tier_help = param.help or ""  # type: ignore[attr-defined]
        if "--tier" in param.opts and "{tiers}" not in base:
            base += " Tiers: {tiers}."
        elif "--task-type" in param.opts and "{task_types}" not in base:
            base += " One of: {task_types}."
        if not any(k in base for k in ("{tiers}", "{task_types}", "{models}")):
            continue
        from rich.markup import escape

        values = config_values()
        models = ", ".join(f"{m} ({t})" for m, t in values["models"].items()) or "see tier config show"
        param.help = (base.replace("{tiers}", escape(", ".join(values["tiers"]) + f" (from {values['source']})"))
                      .replace("{task_types}", escape(", ".join(values["task_types"])))
                      .replace("{models}", escape(models)))


def files_text() -> str:
    """Where the config and the ledger are: paths only (no pydantic, no SQLAlchemy)."""
    from rich.markup import escape

    from tiercli import paths

    config_path, how = paths.config_file(None)
    where = f"{config_path} ({how})" if config_path else "embedded offline default (no TIER_CONFIG, no user config at " \
        f"{paths.user_config_file()})"
    return (f"[bold]Files[/bold]\nconfig: {escape(where)}   ·   `tier config path`\n"
            f"ledger: {escape(str(paths.default_db_path()))}   (TIER_DB, TIER_HOME or --db)")


# -- suggestions for a mistyped option ----------------------------------------------------------
def closest_option(typed: str, params: list[_click.Parameter]) -> str | None:
    """The option of THIS command the user most likely meant, or None.

    click compares with difflib over every name at a 0.6 cutoff, so `--model` got `--help` and
    `--csv` got `--yes`. Here: an unambiguous abbreviation first (`--dry` -> `--dry-run`), then a
    close spelling of the bare name (`--sesion` -> `--session`, `--jsn` -> `--json`); `--help` only
    for something spelled like it."""
    word = typed.lstrip("-").lower()
    if not word:
        return None
    names = [o for p in params if isinstance(p, TyperOption) and not p.hidden
             for o in (*p.opts, *p.secondary_opts) if o.startswith("--")]
    if len(word) >= 2:
        prefixed = [n for n in names if n[2:].startswith(word)]
        if len(prefixed) == 1:
            return prefixed[0]
    scored = sorted(((difflib.SequenceMatcher(None, word, n[2:]).ratio(), n) for n in names), reverse=True)
    if scored and scored[0][0] >= 0.75 and (len(scored) == 1 or scored[0][0] > scored[1][0]):
        return scored[0][1]
    return None


def _suggest(exc: _click.exceptions.NoSuchOption, ctx: _click.Context) -> None:
    exc.possibilities = None
    if exc.option_name.startswith("--"):
        best = closest_option(exc.option_name, ctx.command.get_params(ctx))
        if best:
            exc.message = f"{exc.message}. Did you mean {best}?"


# -- completion for a named shell ---------------------------------------------------------------
def _completion_for(ctx: _click.Context, flag: str, shell: str) -> None:
    """`tier --show-completion zsh`: Typer's own flags only detect the running shell."""
    from typer._completion_shared import get_completion_script, install

    prog = ctx.find_root().info_name or "tier"
    var = "_{}_COMPLETE".format(prog.replace("-", "_").upper())
    if flag == "--show-completion":
        typer.echo(get_completion_script(prog_name=prog, complete_var=var, shell=shell))
    else:
        done, path = install(shell=shell, prog_name=prog, complete_var=var)
        typer.echo(f"{done} completion installed in {path} (it takes effect in a new shell)")
    raise typer.Exit(0)


# -- the classes ---------------------------------------------------------------------------------
class TierCommand(TyperCommand):
    def get_params(self, ctx):
        return tidy_params(super().get_params(ctx))

    def parse_args(self, ctx, args):
        lighten(self.get_params(ctx))
        try:
            return super().parse_args(ctx, args)
        except _click.exceptions.NoSuchOption as exc:
            _suggest(exc, ctx)
            raise

    def collect_usage_pieces(self, ctx):
        pieces = [self.options_metavar] if self.options_metavar else []
        for param in self.get_params(ctx):
            if isinstance(param, TyperArgument):
                pieces.append(_argument_usage(param))
            else:
                pieces.extend(param.get_usage_pieces(ctx))
        return pieces

    def format_help(self, ctx, formatter):
        _list_values(self)
        if self.epilog is None:
            self.epilog = examples_text(command_key(ctx))
        return super().format_help(ctx, formatter)


class TierGroup(TyperGroup):
    def get_params(self, ctx):
        return tidy_params(super().get_params(ctx))

    def parse_args(self, ctx, args):
        if ctx.parent is None and len(args) >= 2 and args[0] in COMPLETION_FLAGS and args[1] in COMPLETION_SHELLS:
            _completion_for(ctx, args[0], args[1])
        lighten(self.get_params(ctx))
        try:
            return super().parse_args(ctx, args)
        except _click.exceptions.NoSuchOption as exc:
            _suggest(exc, ctx)
            raise

    def format_help(self, ctx, formatter):
        key = command_key(ctx)
        parts = [examples_text(key)]
        if ctx.parent is None:
            parts.append(files_text())
        self.epilog = "\n\n".join(p for p in parts if p) or None
        return super().format_help(ctx, formatter)


class TierTyper(typer.Typer):
    """A Typer whose groups are TierGroups and whose commands are TierCommands."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("cls", TierGroup)
        super().__init__(*args, **kwargs)

    def command(self, *args: Any, **kwargs: Any):
        kwargs.setdefault("cls", TierCommand)
        return super().command(*args, **kwargs)

