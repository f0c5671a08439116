"""YAML -> validated, typed config.

The file is a LiteLLM proxy config (`model_list`, `router_settings`) plus tiercli's own sections
(`routing`, `guardrails`, `caching`, `prices`, `ledger`, `serve`, `run`). Validation is pydantic; the
semantic checks that need the whole config (fallbacks naming unknown groups, unset key variables,
unpriced models) live in `problems()`, which `tier config check` prints in full and `load()` applies
the fatal ones of.

Where it comes from, first match wins: `--config`, `TIER_CONFIG`, the user config file, and else the
embedded offline default (no key, no network), so a fresh install works at once.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from types import UnionType
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from tiercli import paths
from tiercli.config_sections import (  # noqa: F401 (re-exported: config.Serve, config.parse_duration, ...)
    DURATION,
    MAX_PREFIX_BYTES,
    Budget,
    Caching,
    Cascade,
    Compaction,
    Guardrails,
    LedgerSettings,
    Run,
    Serve,
    Telemetry,
    _Strict,
    parse_duration,
)
from tiercli.config_yaml import MAX_CONFIG_BYTES, parse_yaml  # noqa: F401 (re-exported: config.parse_yaml)
from tiercli.errors import ConfigError
from tiercli.taxonomy import DEFAULT_LABEL_TIERS, DEFAULT_TASK_TIERS, LABELS, TASK_TYPES

# litellm 1.110.2 Router.__init__ keyword arguments (read off its signature). Passing anything else
# makes Router() raise TypeError deep inside a call, so we reject it up front with a clear message.
ROUTER_SETTINGS_KEYS = frozenset(
    """alerting_config allowed_fails allowed_fails_policy assistants_config auto_router_capability_limit
    background_health_check_model_groups cache_kwargs cache_responses caching_groups client_ttl
    content_policy_fallbacks context_window_fallbacks cooldown_time debug_level default_fallbacks
    default_litellm_params default_max_parallel_requests default_priority
    deployment_affinity_ttl_seconds disable_cooldowns enable_health_check_routing
    enable_mid_stream_fallback_continuation enable_pre_call_checks enable_tag_filtering
    enable_weighted_failover fallback_access_check fallback_budget_check
    fallback_on_unsupported_params fallbacks guardrail_list health_check_ignore_transient_errors
    health_check_staleness_threshold ignore_invalid_deployments max_fallbacks
    model_group_affinity_config model_group_alias model_group_retry_policy num_retries optional_pre_call_checks
    plugins polling_interval provider_budget_config redis_db redis_host redis_password redis_port
    redis_url retry_after retry_policy router_general_settings routing_groups routing_strategy
    routing_strategy_args search_tools session_affinity_repin_on_failover set_verbose stream_timeout
    tag_filtering_match_any tag_routing_prefix timeout""".split()
)

ENV_REF = re.compile(r"^os\.environ/([A-Za-z_][A-Za-z0-9_]*)$")
OFFLINE_PREFIX = "offline/"

# The variable litellm reads when a deployment names no api_key, by provider prefix.
PROVIDER_KEY_VARS = {
    "anthropic": "ANTHROPIC_API_KEY",
    "openai": "OPENAI_API_KEY",
    "openrouter": "OPENROUTER_API_KEY",
    "gemini": "GEMINI_API_KEY",
    "mistral": "MISTRAL_API_KEY",
    "groq": "GROQ_API_KEY",
    "deepseek": "DEEPSEEK_API_KEY",
}


class Deployment(BaseModel):
    """One `model_list` entry, exactly LiteLLM's shape (extra litellm keys are kept)."""

    model_config = ConfigDict(extra="allow")
    model_name: str
    litellm_params: dict[str, Any]
    model_info: dict[str, Any] = Field(default_factory=dict)

    @field_validator("litellm_params")
    @classmethod
    def _has_model(cls, value: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(value.get("model"), str) or not value["model"]:
            raise ValueError("litellm_params.model must name a model, e.g. claude-haiku-4-5")
        for key, ref in value.items():
            if isinstance(ref, str) and ref.startswith("os.environ/") and not ENV_REF.match(ref):
                raise ValueError(f"litellm_params.{key}: {ref[len('os.environ/'):]!r} is not an environment variable "
                                 "name (letters, digits and _, not starting with a digit), e.g. os.environ/OPENAI_API_KEY")
        for key, price in value.items():  # LiteLLM's per-deployment prices, in dollars per token
            if ("_cost_per_token" in key or "_token_cost" in key) and price is not None and (
                    isinstance(price, bool) or not isinstance(price, (int, float)) or not 0 <= price <= 1):
                raise ValueError(f"litellm_params.{key} must be dollars per token, a number from 0 to 1")
        return value

    @property
    def model(self) -> str:
        return self.litellm_params["model"]

    @property
    def is_offline(self) -> bool:
        return self.model.startswith(OFFLINE_PREFIX)

    def provider(self) -> str:
        """Provider prefix as litellm would infer it (best effort, no litellm import)."""
        model = self.model
        if "/" in model:
            return model.split("/", 1)[0]
        if model.startswith("claude"):
            return "anthropic"
        if model.startswith(("gpt-", "o1", "o3", "o4", "chatgpt")):
            return "openai"
        if model.startswith("gemini"):
            return "gemini"
        return "unknown"

    def key_variables(self) -> list[str]:
        """Environment variables this deployment needs set (none for offline ones)."""
        if self.is_offline:
            return []
        names = []
        for value in self.litellm_params.values():
            if isinstance(value, str) and (m := ENV_REF.match(value)):
                names.append(m.group(1))
        if "api_key" not in self.litellm_params:
            var = PROVIDER_KEY_VARS.get(self.provider())
            if var:
                names.append(var)
        return names


class Price(_Strict):
    """Dollars per million tokens."""

    input: float = Field(ge=0, le=1_000_000)  # the bound also refuses .inf (a cost must stay a number)
    output: float = Field(ge=0, le=1_000_000)
    cache_read: float | None = Field(default=None, ge=0, le=1_000_000)
    cache_write: float | None = Field(default=None, ge=0, le=1_000_000)
    cache_write_1h: float | None = Field(default=None, ge=0, le=1_000_000)


class Routing(_Strict):
    tiers: list[str] = Field(default_factory=lambda: ["tier1", "tier2", "tier3"], min_length=1)
    default_tier: str = "tier2"
    classifier: Literal["static", "local", "llm", "hybrid"] = "local"
    task_types: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_TASK_TIERS))
    labels: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_LABEL_TIERS))
    hybrid_threshold: float = Field(default=0.6, ge=0, le=1)
    classifier_tier: str | None = None  # defaults to the cheapest tier
    classifier_prompt: str | None = None
    classifier_max_tokens: int = Field(default=8, ge=1, le=256)

    @field_validator("labels")
    @classmethod
    def _known_labels(cls, value: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(value) - set(LABELS))
        if unknown:
            raise ValueError(f"unknown label(s) {', '.join(unknown)}; use {', '.join(LABELS)}")
        return value

    @field_validator("tiers")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("tiers must be unique")
        return value


class Worker(_Strict):
    """The warm worker behind `tier ask` (worker.py): on by default; exits after idle_s without a
    request (TIER_WORKER_IDLE_S overrides). TIER_NO_WORKER=1 switches it off for one shell."""

    enabled: bool = True
    idle_s: float = Field(default=600, gt=0, le=86_400)


class Config(_Strict):
    model_list: list[Deployment] = Field(min_length=1)
    router_settings: dict[str, Any] = Field(default_factory=dict)
    routing: Routing = Field(default_factory=Routing)
    guardrails: Guardrails = Field(default_factory=Guardrails)
    caching: Caching = Field(default_factory=Caching)
    prices: dict[str, Price] = Field(default_factory=dict)
    ledger: LedgerSettings = Field(default_factory=LedgerSettings)
    telemetry: Telemetry = Field(default_factory=Telemetry)
    litellm_settings: dict[str, Any] = Field(default_factory=dict)  # accepted, for drop-in proxy files
    serve: Serve = Field(default_factory=Serve)
    run: Run = Field(default_factory=Run)
    worker: Worker = Field(default_factory=Worker)

    @field_validator("router_settings")
    @classmethod
    def _known_router_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        unknown = sorted(set(value) - ROUTER_SETTINGS_KEYS)
        if unknown:
            hints = [m for k in unknown for m in difflib.get_close_matches(k, sorted(ROUTER_SETTINGS_KEYS), n=1)]
            raise ValueError(
                f"unknown key(s) {', '.join(unknown)}; "
                + (f"did you mean {', '.join(hints)}? " if hints else "")
                + "litellm's Router accepts e.g. fallbacks, num_retries, timeout, retry_after, allowed_fails, cooldown_time"
            )
        return value

    @model_validator(mode="after")
    def _tiers_exist(self) -> "Config":
        groups = self.groups()
        missing = [t for t in self.routing.tiers if t not in groups]
        if missing:
            raise ValueError(
                f"routing.tiers names {', '.join(missing)}, which no model_list entry has as model_name"
                f" (model_list has: {', '.join(groups)})"
            )
        tiers = self.routing.tiers
        if self.routing.default_tier not in tiers:
            raise ValueError(f"routing.default_tier {self.routing.default_tier!r} is not in routing.tiers {tiers}")
        for task, tier in self.routing.task_types.items():
            if tier not in tiers:
                raise ValueError(f"routing.task_types.{task} -> {tier!r} is not in routing.tiers {tiers}")
        for label, tier in self.routing.labels.items():
            if tier not in tiers:
                raise ValueError(f"routing.labels.{label} -> {tier!r} is not in routing.tiers {tiers}")
        if self.routing.classifier_tier and self.routing.classifier_tier not in tiers:
            raise ValueError(f"routing.classifier_tier {self.routing.classifier_tier!r} is not in routing.tiers")
        if self.guardrails.compaction.tier not in tiers:
            raise ValueError(f"guardrails.compaction.tier {self.guardrails.compaction.tier!r} is not in routing.tiers")
        if len(tiers) > 1 and self.guardrails.compaction.tier == tiers[-1]:
            raise ValueError("guardrails.compaction.tier must not be the top tier (summaries are cheap work)")
        for problem in fallback_problems(self):
            raise ValueError(problem)
        for name, tier in self.serve.named_tiers().items():
            if tier not in tiers:
                raise ValueError(f"serve.{name} {tier!r} is not in routing.tiers {tiers}")
        run_tiers = self.run_tiers()
        if len(set(run_tiers)) != len(run_tiers) or any(t not in tiers for t in run_tiers):
            raise ValueError(f"run.tiers {self.run.tiers} must be distinct tiers of routing.tiers {tiers}")
        for tier in self.run.caps:
            if tier not in tiers:
                raise ValueError(f"run.caps.{tier}: {tier!r} is not in routing.tiers {tiers}")
        for task, tier in self.run.start.items():
            if tier not in run_tiers:
                raise ValueError(f"run.start.{task} -> {tier!r} is not in run.tiers {run_tiers}")
        return self

    # -- derived views -------------------------------------------------------------------------
    def groups(self) -> list[str]:
        seen: dict[str, None] = {}
        for d in self.model_list:
            seen.setdefault(d.model_name, None)
        return list(seen)

    def deployments(self, group: str) -> list[Deployment]:
        return [d for d in self.model_list if d.model_name == group]

    def primary_model(self, tier: str) -> str:
        return self.deployments(tier)[0].model

    def run_tiers(self) -> list[str]:
        """The tiers a `run` cascade tries, in order."""
        return list(self.run.tiers or self.routing.tiers)

    @property
    def top_tier(self) -> str:
        return self.routing.tiers[-1]

    @property
    def cheapest_tier(self) -> str:
        return self.routing.tiers[0]

    def tier_rank(self, tier: str) -> int:
        return self.routing.tiers.index(tier)

    def fallback_chain(self, tier: str) -> list[str]:
        """The groups litellm would try after `tier`, in order (fallbacks followed transitively)."""
        direct: dict[str, list[str]] = {}
        for entry in self.router_settings.get("fallbacks") or []:
            for src, dsts in entry.items():
                direct.setdefault(src, []).extend(dsts)
        chain: list[str] = []
        todo = list(direct.get(tier, []))
        while todo:
            nxt = todo.pop(0)
            if nxt != tier and nxt not in chain:
                chain.append(nxt)
                todo.extend(direct.get(nxt, []))
        return chain


def fallback_problems(cfg: Config) -> list[str]:
    groups = set(cfg.groups())
    problems = []
    for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        entries = cfg.router_settings.get(key)
        if entries is None:
            continue
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            problems.append(f"router_settings.{key} must be a list of {{group: [group, ...]}} maps")
            continue
        for entry in entries:
            for src, dsts in entry.items():
                if not isinstance(dsts, list):
                    problems.append(f"router_settings.{key}: {src} must map to a list of groups")
                    continue
                for name in [src, *dsts]:
                    if name not in groups:
                        problems.append(
                            f"router_settings.{key} names unknown group {name!r}"
                            f" (model_list has: {', '.join(sorted(groups))})"
                        )
    return problems


@dataclass(frozen=True)
class LoadedConfig:
    config: Config
    source: str  # a path, or "embedded:offline.yaml"
    hash: str  # sha256 of the canonical config, recorded on every call


def _keys_at(loc: tuple) -> list[str] | None:
    """The keys the config accepts at `loc` (the path of an unknown key, the key excluded), or None."""
    node: Any = Config
    for part in loc:
        while get_origin(node) in (Union, UnionType):  # X | None: the model inside
            node = next((a for a in get_args(node) if a is not type(None)), None)
        if isinstance(node, type) and issubclass(node, BaseModel):
            field = node.model_fields.get(str(part))
            if field is None:
                return None
            node = field.annotation
        elif get_origin(node) in (dict, list):
            node = get_args(node)[-1]  # a dict's value type, a list's item type; `part` is the key/index
        else:
            return None
    while get_origin(node) in (Union, UnionType):
        node = next((a for a in get_args(node) if a is not type(None)), None)
    if isinstance(node, type) and issubclass(node, BaseModel):
        return list(node.model_fields)
    return None


def did_you_mean(word: str, choices: list[str] | frozenset[str]) -> str:
    """' (did you mean X?)' for the closest choice, else ' (valid: a, b, c)' for a short list, else ''."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    if close:
        return f" (did you mean {close[0]!r}?)"
    if len(choices) <= 12:
        return f" (valid: {', '.join(choices)})"
    return ""


def _format_validation(exc: ValidationError) -> list[str]:
    out = []
    for err in exc.errors():
        loc = ".".join(str(p) for p in err["loc"]) or "config"
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            keys = _keys_at(err["loc"][:-1])
            msg = "unknown key" + (did_you_mean(str(err["loc"][-1]), keys) if keys else "")
        out.append(f"{loc}: {msg}")
    return out


def validate(data: Any, source: str) -> Config:
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the config must be a YAML mapping with model_list at the top")
    try:
        return Config.model_validate(data)
    except ValidationError as exc:
        lines = _format_validation(exc)
        more = f" (and {len(lines) - 1} more: run `tier config check`)" if len(lines) > 1 else ""
        raise ConfigError(f"{source}: {lines[0]}{more}") from None


def config_hash(cfg: Config) -> str:
    data = cfg.model_dump(mode="json")
    if data.get("run") == Run().model_dump(mode="json"):
        del data["run"]  # a config without a run: section keeps the hash it had before the section existed
    data.pop("worker", None)  # how `tier ask` reaches the pipeline changes no answer
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def embedded_default_text() -> str:
    return resources.files("tiercli.data").joinpath("offline.yaml").read_text(encoding="utf-8")


def locate(explicit: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """Which config applies: (path or None for the embedded default, how it was chosen)."""
    return paths.config_file(explicit)


def read_text(path: Path, how: str) -> str:
    from tiercli.paths import not_a_regular_file

    if why := not_a_regular_file(path):
        raise ConfigError(f"config path {path} {why} (from {how})", "point --config or TIER_CONFIG at a YAML file")
    try:
        with path.open("rb") as fh:  # bounded: the path may be /dev/zero or a pipe
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(
            f"config file not found: {path} (from {how})",
            "check the path, or unset it to use the embedded offline default",
        ) from None
    except IsADirectoryError:
        raise ConfigError(f"config path is a directory: {path} (from {how})") from None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(f"{path}: config is larger than 1 MB", "is this the right file?")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"config {path} is not UTF-8 text") from None


def load(explicit: str | os.PathLike | None = None) -> LoadedConfig:
    return load_parsed(explicit)[0]


def load_parsed(explicit: str | os.PathLike | None = None) -> tuple[LoadedConfig, Any, bytes]:
    """load(), with the YAML as parsed and the bytes read (config_cache.py keys on them)."""
    path, how = locate(explicit)
    if path is None:
        text, source = embedded_default_text(), "embedded:offline.yaml"
    else:
        text, source = read_text(path, how), str(path)
    data = parse_yaml(text, source)
    cfg = validate(data, source)
    return LoadedConfig(cfg, source, config_hash(cfg)), data, text.encode("utf-8")


def problems(explicit: str | os.PathLike | None = None) -> tuple[str, list[str], list[str]]:
    """Every problem `tier config check` reports: (source, errors, warnings).

    Errors make the config unusable (or make calls fail); warnings are worth a look.
    """
    from tiercli import pricing

    path, how = locate(explicit)
    if path is None:
        text, source = embedded_default_text(), "embedded:offline.yaml"
    else:
        try:
            text, source = read_text(path, how), str(path)
        except ConfigError as exc:
            return str(path), [str(exc)], []
    try:
        data = parse_yaml(text, source)
    except ConfigError as exc:
        return source, [str(exc)], []
    if not isinstance(data, dict):
        return source, ["the config must be a YAML mapping with model_list at the top"], []
    try:
        cfg = Config.model_validate(data)
    except ValidationError as exc:
        errors = _format_validation(exc)
        # fallbacks are checked in the model validator, which stops at the first; list them all
        try:
            groups = {d["model_name"] for d in data.get("model_list") or [] if isinstance(d, dict)}
            rs = data.get("router_settings") or {}
            for entry in rs.get("fallbacks") or []:
                for src, dsts in entry.items():
                    for name in [src, *(dsts or [])]:
                        msg = f"router_settings.fallbacks names unknown group {name!r}"
                        if name not in groups and not any(msg in e for e in errors):
                            errors.append(f"{msg} (model_list has: {', '.join(sorted(groups))})")
        except (AttributeError, TypeError):
            pass
        return source, errors, []
    errors = []
    warnings: list[str] = []
    for var in sorted({v for d in cfg.model_list for v in d.key_variables()}):
        if not os.environ.get(var):
            users = sorted({d.model_name for d in cfg.model_list if var in d.key_variables()})
            errors.append(f"environment variable {var} is not set (needed by {', '.join(users)})")
    prices = pricing.PriceBook(cfg.prices)
    for d in cfg.model_list:
        if prices.lookup(d.model, d.litellm_params) is None:
            errors.append(
                f"model {d.model} ({d.model_name}) has no known price: add it under prices: "
                "{input, output, cache_read, cache_write} in dollars per million tokens"
            )
    for task in cfg.routing.task_types:
        if task not in TASK_TYPES:
            warnings.append(f"routing.task_types.{task} is not in the built-in taxonomy (allowed, custom)")
    return source, errors, warnings
