"""The config's own sections beyond routing: guardrails (budgets, compaction, cascade), caching,
`tier run`, telemetry, the ledger and the gateway. Validated by pydantic; re-exported by config.py."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Compaction(_Strict):
    threshold_tokens: int = Field(default=8000, ge=100)
    tier: str = "tier2"


class Budget(_Strict):
    daily_usd: float | None = Field(default=None, gt=0)
    monthly_usd: float | None = Field(default=None, gt=0)
    session_usd: float | None = Field(default=None, gt=0)
    on_exceed: Literal["refuse", "downgrade"] = "refuse"


class Cascade(_Strict):
    """Verified cascade by default for some task types: the answer is piped to `check`; a failing
    check escalates to the next tier (as `tier ask --check CMD` does)."""

    check: str | None = None
    task_types: list[str] = Field(default_factory=list)
    timeout_s: float = Field(default=600, gt=0, le=86_400)


class Guardrails(_Strict):
    max_iterations: int = Field(default=15, ge=1, le=100_000)
    max_output_tokens: int = Field(default=4096, ge=1, le=1_000_000)
    timeout_s: float = Field(default=120, gt=0, le=3600)
    compaction: Compaction = Field(default_factory=Compaction)
    budget: Budget = Field(default_factory=Budget)
    cascade: Cascade = Field(default_factory=Cascade)


MAX_PREFIX_BYTES = 4_000_000  # a static prefix is meant to be cached: a few hundred KB at most in practice


class Caching(_Strict):
    """Prompt caching: the static prefix goes first in every main call's system prompt, and
    Anthropic deployments get a cache_control marker on it (other providers cache by prefix
    themselves, or reject the marker)."""

    enabled: bool = True
    static_prefix: str | None = None  # text, or @path/to/file to read it from
    ttl: Literal["5m", "1h"] = "5m"

    @field_validator("static_prefix")
    @classmethod
    def _read_file(cls, value: str | None) -> str | None:
        if value and value.startswith("@"):
            from tiercli.paths import not_a_regular_file

            path = Path(value[1:]).expanduser()
            if why := not_a_regular_file(path):
                raise ValueError(f"static_prefix file {path} {why}")
            try:
                with path.open("rb") as fh:  # bounded: the path may be /dev/zero or a pipe
                    raw = fh.read(MAX_PREFIX_BYTES + 1)
                if len(raw) > MAX_PREFIX_BYTES:
                    raise ValueError(f"static_prefix file {path} is larger than {MAX_PREFIX_BYTES // 1_000_000} MB")
                return raw.decode("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                raise ValueError(f"cannot read static_prefix file {path}: {getattr(exc, 'strerror', None) or exc}") from None
        return value


DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|m|h)?\s*$")


def parse_duration(value: Any, what: str) -> float:
    """Seconds from 90, "90s", "15m" or "1h"; ValueError naming `what` otherwise."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = float(value)
    else:
        found = DURATION.match(str(value)) if isinstance(value, str) else None
        if found is None:
            raise ValueError(f"{what} must be a duration such as 900, 90s, 15m or 1h, not {value!r}")
        seconds = float(found.group(1)) * {"s": 1, "m": 60, "h": 3600}[found.group(2) or "s"]
    if not 0 < seconds <= 7 * 86_400:
        raise ValueError(f"{what} must be more than 0 and at most 7 days")
    return seconds


class Run(_Strict):
    """Whole agent tasks run as a verified cascade (`tier run`), and the policy `tier tune` writes:
    the tiers tried in order (empty: routing.tiers), a spending cap per attempt on a tier (USD;
    `cap_usd` for tiers without their own), the first tier per task type (a type not listed starts
    at the first of `tiers`), and wall-clock limits (seconds, or 90s / 15m / 1h). Task-type keys
    are free text: the classifier's task types for agent tasks, an outcome table's task-type column
    (e.g. CodeRouterBench's dimensions) for `tier replay --outcomes --policy run`."""

    tiers: list[str] = Field(default_factory=list)
    caps: dict[str, float] = Field(default_factory=dict)
    start: dict[str, str] = Field(default_factory=dict)
    cap_usd: float | None = Field(default=None, gt=0, le=1_000_000)
    timeout: float | None = None  # per attempt, the agent's wall clock; None: no limit
    check_timeout: float = 600

    @field_validator("caps")
    @classmethod
    def _positive(cls, value: dict[str, float]) -> dict[str, float]:
        for tier, cap in value.items():
            if not (0 < cap <= 1_000_000):  # also refuses nan and inf
                raise ValueError(f"caps.{tier} must be a positive amount in dollars (at most 1000000)")
        return value

    @field_validator("timeout", "check_timeout", mode="before")
    @classmethod
    def _duration(cls, value: Any, info) -> float | None:
        return None if value is None else parse_duration(value, info.field_name)


class Telemetry(_Strict):
    enabled: bool = False  # also switched on by the standard OTEL_* exporter variables


class LedgerSettings(_Strict):
    store_prompts: Literal["full", "redacted", "none"] = "full"
    url: str | None = None  # team mode: postgresql://user@host/db (or a SQLite path); --db and TIER_DB win


class Serve(_Strict):
    """`tier serve`, the local gateway: scenario rules (claude-code-router style), prompt-cache
    stickiness, key handling. A rule whose tier is unset is off (the small-model rule's tier defaults
    to the cheapest tier)."""

    small_model_pattern: str | None = "haiku"  # regex (case-insensitive) on the requested model name
    small_model_tier: str | None = None  # None: the cheapest tier
    long_context_tokens: int = Field(default=60_000, ge=1)
    long_context_tier: str | None = None
    thinking_tier: str | None = None
    web_search_tier: str | None = None
    sticky_ttl_s: float = Field(default=300, ge=0)  # keep a session's tier while its cache is warm; 0: off
    forward_client_key: bool = False  # send the client's own key upstream (same-protocol passthrough only)
    passthrough: bool = True  # same protocol, plain anthropic/openai deployments: forward without litellm
    max_iterations: int | None = Field(default=None, ge=1)  # per session; None: off (agents make many calls)
    # Browser defences (gateway_guard.py): extra names the gateway may be reached by (besides the bound
    # address, localhost, 127.0.0.1 and [::1]), and web origins allowed to call it (none by default).
    allowed_hosts: list[str] = Field(default_factory=list)
    allowed_origins: list[str] = Field(default_factory=list)

    @field_validator("small_model_pattern")
    @classmethod
    def _regex(cls, value: str | None) -> str | None:
        if value:
            try:
                re.compile(value)
            except re.error as exc:
                raise ValueError(f"small_model_pattern is not a valid regular expression: {exc}") from None
        return value or None

    def named_tiers(self) -> dict[str, str]:
        names = ("small_model_tier", "long_context_tier", "thinking_tier", "web_search_tier")
        return {n: getattr(self, n) for n in names if getattr(self, n)}


