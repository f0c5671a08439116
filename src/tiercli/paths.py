"""Where tier keeps its files. Resolved lazily, so tests and users can set the variables any time.

TIER_HOME, when set, is the root for everything (config.yaml and ledger.db inside it);
otherwise the platform's user config and data dirs (platformdirs). TIER_CONFIG and TIER_DB point
at one file each and win over both.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

APP_NAME = "tier"


def home() -> Path | None:
    value = os.environ.get("TIER_HOME")
    return Path(value).expanduser() if value else None


def config_dir() -> Path:
    root = home()
    if root is not None:
        return root
    import platformdirs

    return Path(platformdirs.user_config_dir(APP_NAME, appauthor=False))


def data_dir() -> Path:
    root = home()
    if root is not None:
        return root
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def cache_dir() -> Path:
    """Files tier can rebuild (config_cache.py): TIER_HOME/cache, else the user cache dir."""
    root = home()
    if root is not None:
        return root / "cache"
    import platformdirs

    return Path(platformdirs.user_cache_dir(APP_NAME, appauthor=False))


def user_config_file() -> Path:
    return config_dir() / "config.yaml"


def config_file(explicit: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Which config applies: (path, or None for the embedded default; how it was chosen).

    Here rather than in config.py so that `tier --help` can say it without importing pydantic.
    """
    if explicit:
        return Path(explicit).expanduser(), "--config"
    env = os.environ.get("TIER_CONFIG")
    if env:
        return Path(env).expanduser(), "TIER_CONFIG"
    user = user_config_file()
    if user.exists():
        return user, "user config"
    return None, "embedded default"


def ledger_target(db: "str | os.PathLike | None" = None, config_url=None) -> "str | Path":
    """Where the ledger is: --db, else TIER_DB, else the config's ledger.url (`config_url`: the value or
    a function that reads it, called only when needed), else the default file. A PostgreSQL URL stays a
    string (team mode); anything else is a SQLite file path."""
    value = str(db) if db is not None else os.environ.get("TIER_DB")
    if not value and config_url is not None:
        value = config_url() if callable(config_url) else config_url
    if not value:
        return data_dir() / "ledger.db"
    # a URL that went through pathlib (typer's Path options) lost one slash: postgresql:/user@host/db
    url = re.sub(r"^(postgres(?:ql)?(?:\+psycopg)?):/(?!/)", r"\1://", value)
    if url.split("://", 1)[0] in ("postgresql", "postgres", "postgresql+psycopg"):
        return url
    return Path(value).expanduser()


def display(target: "str | os.PathLike") -> str:
    """A ledger target for messages: a URL without its password."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", str(target))


def is_url(target: object) -> bool:
    return isinstance(target, str) and "://" in target


def default_db_path() -> Path:
    value = os.environ.get("TIER_DB")
    if value:
        return Path(value).expanduser()
    return data_dir() / "ledger.db"


def not_a_regular_file(path: Path) -> str | None:
    """Why `path` cannot be read as a file (a directory, a named pipe, a device, a socket), or None
    (a regular file, or nothing there). Checked before opening: opening a FIFO with no writer blocks
    for ever, and /dev/zero never ends."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        return f"cannot be read ({exc.strerror})"
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "is a directory"
    if stat.S_ISFIFO(mode):
        return "is a named pipe (FIFO), not a file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "is a device, not a file"
    if stat.S_ISSOCK(mode):
        return "is a socket, not a file"
    return "is not a regular file"
