"""Replay's shared parts: selecting calls (ledger or agent logs), unit prices, re-deciding calls
without calling a model, and tokenizer recounts. See tiercli.replay for the whole picture."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Iterable

from tiercli.errors import UsageError
from tiercli.pricing import PriceBook, UnitPrice
from tiercli.router import Classification, Decision, decide
from tiercli.taxonomy import LABEL_OF_TASK_TYPE

if TYPE_CHECKING:
    from tiercli.config import Config, LoadedConfig
    from tiercli.ledger.db import Ledger


REPLAYED_KINDS = ("main", "import")
NONE_KEY = "(none)"
DEFAULT_TOP = 10
CLASSIFIERS = ("static", "local", "hybrid", "llm")
_DATE_SUFFIX = re.compile(r"-\d{8}$")

_COLUMNS = (
    "id", "started_at", "session", "kind", "source", "task_type", "decision_source", "tier", "requested_model",
    "served_model", "input_tokens", "cache_read_tokens", "cache_write_tokens", "cache_write_1h_tokens",
    "output_tokens", "cost_usd", "unpriced", "status", "prompt_text", "task_id", "meta_json",
)


def bare_model(model: str | None) -> str | None:
    """'anthropic/claude-sonnet-4-5-20250929' -> 'claude-sonnet-4-5' (route prefix and date dropped)."""
    if not model:
        return None
    return _DATE_SUFFIX.sub("", model.rsplit("/", 1)[-1]).lower()


# -- selecting calls -----------------------------------------------------------------------------
@dataclass
class Selection:
    source: str  # "ledger" | "claude-code"
    session: str | None = None
    since: float | None = None
    paths: list[str] = field(default_factory=list)
    location: str | None = None  # the ledger file
    skipped: dict[str, int] = field(default_factory=dict)  # kind -> calls not replayed
    parse: dict[str, int] | None = None  # claude-code parse stats


def select_ledger(ledger: "Ledger", *, session: str | None = None, since: float | None = None,
                  with_response: bool = False, user: str | None = None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Calls of kind main/import in the window (and of `user`), oldest first, and the other kinds' counts."""
    from tiercli.ledger.import_queries import replay_selection

    cols = [*_COLUMNS, *(["response_text"] if with_response else [])]
    rows, kinds = replay_selection(ledger, cols, REPLAYED_KINDS, session=session, since=since, user=user)
    skipped = {k: n for k, n in sorted(kinds.items()) if k not in REPLAYED_KINDS}
    return rows, skipped


def select_claude_code(paths: Iterable[str], prices: PriceBook, *, session: str | None = None,
                       since: float | None = None, progress=None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Claude Code logs parsed in memory (nothing written), filtered like the ledger."""
    from tiercli.importers import parse_claude_code

    return _select_parsed(parse_claude_code(list(paths), prices, progress), session, since)


def select_codex(paths: Iterable[str], prices: PriceBook, *, session: str | None = None,
                 since: float | None = None, progress=None) -> tuple[list[dict[str, Any]], dict[str, int]]:
    """Codex rollouts parsed in memory (nothing written), filtered like the ledger."""
    from tiercli.importers.codex import parse_codex

    return _select_parsed(parse_codex(list(paths), prices, progress), session, since)


def _select_parsed(parsed, session, since) -> tuple[list[dict[str, Any]], dict[str, int]]:
    rows, stats = parsed
    if session is not None:
        rows = [r for r in rows if r.get("session") == session]
    if since is not None:
        rows = [r for r in rows if (r.get("started_at") or 0) >= since]
    rows.sort(key=lambda r: (r.get("started_at") or 0, r["id"]))
    return rows, {"files": stats.files, "lines": stats.lines, "malformed": stats.malformed,
                  "duplicates": stats.duplicates, "synthetic_skipped": stats.synthetic_skipped, "tasks": stats.tasks}


# -- prices and decisions ------------------------------------------------------------------------
@dataclass(frozen=True)
class FloatPrice:
    """Dollars per token as floats (a replay sums many calls: plain arithmetic, looked up once)."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    cache_write_1h: float
    source: str

    @classmethod
    def of(cls, p: UnitPrice) -> "FloatPrice":
        return cls(float(p.input), float(p.output), float(p.cache_read), float(p.cache_write), float(p.cache_write_1h),
                   p.source)

    def numbers(self) -> tuple[float, ...]:
        return (self.input, self.output, self.cache_read, self.cache_write, self.cache_write_1h)

    def cost(self, inp: int, read: int, write: int, write_1h: int, out: int) -> float:
        return (self.input * inp + self.cache_read * read + self.cache_write * (write - write_1h)
                + self.cache_write_1h * write_1h + self.output * out)


class Pricer:
    """Unit prices per model, looked up once (config prices, deployment prices, litellm's map)."""

    def __init__(self, cfg: "Config"):
        self.book = PriceBook(cfg.prices)
        self.params: dict[str, dict[str, Any]] = {}
        for d in cfg.model_list:
            self.params.setdefault(d.model, d.litellm_params)
        self._cache: dict[str, FloatPrice | None] = {}

    def price(self, model: str | None) -> FloatPrice | None:
        if not model:
            return None
        if model not in self._cache:
            found = self.book.lookup(model, self.params.get(model))
            self._cache[model] = FloatPrice.of(found) if found is not None else None
        return self._cache[model]


class Decider:
    """Re-decides calls under a config without calling any model; one classification per distinct text."""

    def __init__(self, loaded: "LoadedConfig", classifier: str | None = None):
        self.cfg = loaded.config
        self.which = classifier or self.cfg.routing.classifier
        if self.which not in CLASSIFIERS:
            raise UsageError(f"unknown --classifier {self.which!r}", f"use {', '.join(CLASSIFIERS)}")
        self._by_text: dict[str, Decision] = {}
        self._by_type: dict[str, Decision] = {}
        self._default: Decision | None = None
        self.classified = 0  # distinct texts classified

    def default(self) -> Decision:
        if self._default is None:
            self._default = decide(self.cfg)
        return self._default

    def decide(self, task_type: str | None, text: str | None) -> tuple[Decision, str]:
        """(decision, how): how is recorded | classified | no_prompt | static."""
        if task_type:
            found = self._by_type.get(task_type)
            if found is None:
                if task_type in self.cfg.routing.task_types:  # as `tier ask -t` would: source static
                    found = decide(self.cfg, task_type=task_type)
                else:  # a type this config does not map: its label, else the default tier
                    c = Classification("recorded", task_type, LABEL_OF_TASK_TYPE.get(task_type), None,
                                       (f"task type {task_type} from the record, not in routing.task_types",))
                    found = decide(self.cfg, classification=c)
                self._by_type[task_type] = found
            return found, "recorded"
        if text is None or not text.strip():
            return self.default(), "no_prompt"
        if self.which == "static":
            return self.default(), "static"
        found = self._by_text.get(text)
        if found is None:
            from tiercli.classify import run_local

            found = self._by_text[text] = decide(self.cfg, classification=run_local(text))
            self.classified += 1
        return found, "classified"


class Recounter:
    """Input-token ratios between tokenizer families, one count per (text, family)."""

    def __init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}

    def count(self, text: str, model: str) -> int:
        from tiercli import tokens

        key = (text, tokens.family(model))
        n = self._counts.get(key)
        if n is None:
            n = self._counts[key] = tokens.count(text, model)
        return n

    def ratio(self, text: str, old_model: str, new_model: str) -> float:
        old = self.count(text, old_model)
        return self.count(text, new_model) / old if old else 1.0


def _scale(n: int, ratio: float) -> int:
    return int(math.floor(n * ratio + 0.5))
