"""The few facts of a validated config that commands calling no model read (`tier import`, `tier
report`, a configured ledger.url), kept on disk so that such a command starts without pydantic or
yaml: importing the config models costs ~0.13 s of CPU in a fresh process, parsing and validating
the file a few ms more; reading this cache ~1 ms.

The cache is plain JSON under the user cache dir (TIER_HOME/cache when TIER_HOME is set), one file
per config source, written after a full validation (config.load) and used only when its key
matches: the config's source, the sha256 of its bytes (so an edit that keeps the size and the mtime
is seen), tier's version, and the sha256 of the code that validates a config (every config*.py,
this module included, and taxonomy.py) and of pydantic's version file. Anything else (no entry, another key, a
read or decode error, a damaged entry) is a full validation, so a bad config gives the same one
line and exit code as before: only valid configs are ever cached.

What is kept holds no secret: the deployments' names, models and numeric price keys (`*cost*`), the
tiers, the prices section, the ledger's url (not cached when it carries a password, in the URL's
user part or as a `password` parameter: such a config is validated on every run). `os.environ/VAR` references are never resolved here. A config whose
caching.static_prefix reads a file (`@path`) is not cached either (its validity depends on that file).
TIER_CONFIG_CACHE=0 switches the cache off (always validate).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tiercli import paths

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig

FORMAT = 1
EMBEDDED_SOURCE = "embedded:offline.yaml"
_HERE = Path(__file__).resolve().parent
# the code whose change can change what a config validates to: config*.py (a new config_*.py module
# included) and taxonomy.py (the default task tiers)
_CODE_GLOBS = ("config*.py", "taxonomy.py")
_MAX_BYTES = 1_000_000  # config_yaml.MAX_CONFIG_BYTES (not imported: it imports yaml)


@dataclass(frozen=True)
class Deployment:
    """A model_list entry as far as prices go: its group, model and numeric price keys."""

    model_name: str
    litellm_params: dict[str, Any]

    @property
    def model(self) -> str:
        return self.litellm_params["model"]


@dataclass(frozen=True)
class Routing:
    tiers: list[str]


@dataclass(frozen=True)
class LedgerSettings:
    url: str | None = None


@dataclass(frozen=True)
class Summary:
    """What `tier import` and the report read of a Config (the same attribute names)."""

    model_list: list[Deployment]
    routing: Routing
    prices: dict[str, dict[str, Any]] = field(default_factory=dict)
    ledger: LedgerSettings = field(default_factory=LedgerSettings)

    @property
    def top_tier(self) -> str:
        return self.routing.tiers[-1]

    def deployments(self, group: str) -> list[Deployment]:
        return [d for d in self.model_list if d.model_name == group]

    def primary_model(self, tier: str) -> str:
        return self.deployments(tier)[0].model


@dataclass(frozen=True)
class LoadedSummary:
    config: Summary
    source: str
    hash: str


# -- the key ---------------------------------------------------------------------------------------
_code_digest: str | None = None


def _code_hash() -> str:
    global _code_digest
    if _code_digest is None:
        import importlib.util

        from tiercli import __version__

        h = hashlib.sha256(f"{FORMAT}\0{__version__}\0".encode())
        for path in sorted(p for pattern in _CODE_GLOBS for p in _HERE.glob(pattern)):
            h.update(path.name.encode() + b"\0" + path.read_bytes())
        spec = importlib.util.find_spec("pydantic")
        if spec is not None and spec.origin:
            h.update(Path(spec.origin).with_name("version.py").read_bytes())
        _code_digest = h.hexdigest()
    return _code_digest


def _source_and_bytes(explicit: str | os.PathLike | None) -> tuple[str, bytes] | None:
    """(source, the config's bytes) when they read plainly; None sends the caller to config.load,
    which says what is wrong (missing, a directory, a pipe, too large, ...)."""
    path, _how = paths.config_file(explicit)
    try:
        if path is None:
            return EMBEDDED_SOURCE, (_HERE / "data" / "offline.yaml").read_bytes()
        if paths.not_a_regular_file(path) is not None:
            return None
        with path.open("rb") as fh:
            raw = fh.read(_MAX_BYTES + 1)
    except OSError:
        return None
    if len(raw) > _MAX_BYTES:
        return None
    return str(path), raw


def _key(source: str, raw: bytes) -> str:
    h = hashlib.sha256(_code_hash().encode())
    h.update(source.encode("utf-8", "surrogateescape") + b"\0")
    h.update(raw)
    return h.hexdigest()


def _entry_path(source: str) -> Path:
    name = hashlib.sha256(source.encode("utf-8", "surrogateescape")).hexdigest()[:24]
    return paths.cache_dir() / f"config-{name}.json"


# -- reading -----------------------------------------------------------------------------------------
def _summary(data: dict[str, Any]) -> LoadedSummary:
    cfg = Summary(
        model_list=[Deployment(d["model_name"], dict(d["litellm_params"])) for d in data["model_list"]],
        routing=Routing(list(data["tiers"])),
        prices={name: dict(p) for name, p in data["prices"].items()},
        ledger=LedgerSettings(data["ledger_url"]),
    )
    if not cfg.model_list or not cfg.routing.tiers or not all(isinstance(d.model, str) for d in cfg.model_list):
        raise ValueError("a damaged entry")
    return LoadedSummary(cfg, data["source"], data["hash"])


def _read(source: str, key: str) -> LoadedSummary | None:
    try:
        data = json.loads(_entry_path(source).read_bytes())
        if data.get("key") != key or data.get("source") != source:
            return None
        return _summary(data)
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return None


# -- writing -----------------------------------------------------------------------------------------
def _number(value: Any) -> bool:
    return value is None or (isinstance(value, (int, float)) and not isinstance(value, bool))


def _plain_data(loaded: LoadedConfig) -> dict[str, Any]:
    """What a Summary holds of a validated config, as plain data: the deployments' litellm_params
    reduced to the model and the price keys (`*cost*`), the only ones the report and import read."""
    cfg = loaded.config
    return {
        "model_list": [{"model_name": d.model_name,
                        "litellm_params": {"model": d.model, **{k: v for k, v in d.litellm_params.items() if "cost" in k}}}
                       for d in cfg.model_list],
        "tiers": list(cfg.routing.tiers),
        "prices": {name: p.model_dump() for name, p in cfg.prices.items()},
        "ledger_url": cfg.ledger.url,
        "source": loaded.source,
        "hash": loaded.hash,
    }


def _cacheable(data: dict[str, Any], parsed: Any) -> bool:
    """Whether the entry may go to disk (see the module doc: no secret, no outside file)."""
    from urllib.parse import urlsplit

    caching = parsed.get("caching") if isinstance(parsed, dict) else None
    prefix = caching.get("static_prefix") if isinstance(caching, dict) else None
    if isinstance(prefix, str) and prefix.startswith("@"):
        return False
    url = data["ledger_url"]
    if url is not None:
        try:
            if urlsplit(url).password is not None or "password" in url.lower():  # also ?password=...
                return False
        except ValueError:
            return False
    return all(_number(v) for d in data["model_list"] for k, v in d["litellm_params"].items() if k != "model")


def _write(source: str, key: str, data: dict[str, Any]) -> None:
    """Best effort, atomic (a temp file renamed over the entry), readable by the user only."""
    target = _entry_path(source)
    tmp = target.with_name(f"{target.name}.{os.getpid()}.tmp")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        body = json.dumps({"key": key, **data}, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, body)
        finally:
            os.close(fd)
        os.replace(tmp, target)
    except (OSError, ValueError, TypeError):
        try:
            tmp.unlink()
        except OSError:
            pass


def summarize(loaded: LoadedConfig) -> LoadedSummary:
    """The Summary of a loaded Config (the one the cache would hold)."""
    return _summary(_plain_data(loaded))


def load(explicit: str | os.PathLike | None = None) -> LoadedSummary:
    """The config's Summary: from the cache when its key matches, else validated (config.load, whose
    errors are the command's) and cached."""
    if os.environ.get("TIER_CONFIG_CACHE") == "0":
        from tiercli import config

        return summarize(config.load(explicit))
    found = _source_and_bytes(explicit)
    if found is not None:
        source, raw = found
        key = _key(source, raw)
        hit = _read(source, key)
        if hit is not None:
            return hit
    from tiercli import config

    loaded, parsed, raw_read = config.load_parsed(explicit)
    if found is not None and raw_read == found[1] and loaded.source == found[0]:
        data = _plain_data(loaded)
        if _cacheable(data, parsed):
            _write(found[0], _key(found[0], raw_read), data)
        return _summary(data)
    return summarize(loaded)
