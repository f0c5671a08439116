"""What every `tier` command module shares: the app and its groups, the common options, the one
place a TierError becomes a stderr line and an exit code (`_errors`), and the small helpers
(config, ledger, stdin). cli.py imports the command modules in help order."""


from __future__ import annotations

import functools
import os
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, Optional

import typer

from tiercli import __version__
from tiercli.cli_help import TierTyper
from tiercli.errors import EXIT_INTERRUPTED, InputError, TierError

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


def _load_summary(path: Optional[Path]):
    """What `tier import` and the report read of the config (prices, tiers, ledger.url), from the
    validated-config cache when it matches (config_cache.py: no pydantic, no yaml), else validated."""
    from tiercli import config_cache

    return config_cache.load(path)


def _configured_ledger_url() -> str | None:
    """The config's ledger.url, read only when a config file exists (else there is none)."""
    from tiercli import paths

    if not (os.environ.get("TIER_CONFIG") or paths.user_config_file().exists()):
        return None
    return _load_summary(None).config.ledger.url


def _ledger_target(db: str | Path | None, loaded=None):
    """--db, TIER_DB, the config's ledger.url (`loaded`: the command's config, or a function that loads
    it, called only when neither --db nor TIER_DB is given; else the default config)."""
    from tiercli import paths

    if loaded is None:
        return paths.ledger_target(db, _configured_ledger_url)
    if callable(loaded):
        return paths.ledger_target(db, lambda: loaded().config.ledger.url)
    return paths.ledger_target(db, loaded.config.ledger.url)


def _open_ledger(db: str | Path | None, create: bool = True, loaded=None):
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



