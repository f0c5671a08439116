"""Property-based tests (hypothesis): cost arithmetic, the ledger against an in-memory model, and the
report's duration parser. Example counts are modest so the file runs in a few seconds."""

from __future__ import annotations

import datetime as dt
import math
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tiercli import config
from tiercli.errors import TierError
from tiercli.pricing import PriceBook, Usage

ROOT = Path(__file__).resolve().parent.parent
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- cost -------------------------------------------------------------------------------------------------
def priced_models() -> list[tuple[str, str, PriceBook, dict]]:
    """(sample config, model, its price book, its litellm_params) for every priced deployment."""
    out = []
    for path in sorted((ROOT / "sample_configs").glob("*.yaml")):
        cfg = config.validate(config.parse_yaml(path.read_text(), str(path)), str(path))
        book = PriceBook(cfg.prices)
        for d in cfg.model_list:
            if book.lookup(d.model, d.litellm_params) is not None:
                out.append((path.name, d.model, book, d.litellm_params))
    return out


PRICED = priced_models()
BUCKETS = ("input", "cache_read", "cache_write_5m", "cache_write_1h", "output")
TOKENS = st.integers(min_value=0, max_value=50_000_000)


def usage_of(b: dict[str, int]) -> Usage:
    """Five disjoint buckets -> Usage (whose cache_write_tokens INCLUDES the 1h part)."""
    return Usage(input_tokens=b["input"], cache_read_tokens=b["cache_read"],
                 cache_write_tokens=b["cache_write_5m"] + b["cache_write_1h"], output_tokens=b["output"],
                 cache_write_1h_tokens=b["cache_write_1h"])


buckets = st.fixed_dictionaries({name: TOKENS for name in BUCKETS})
config_price = st.fixed_dictionaries(
    {"input": st.floats(0, 1000), "output": st.floats(0, 1000)},
    optional={"cache_read": st.floats(0, 1000), "cache_write": st.floats(0, 1000), "cache_write_1h": st.floats(0, 1000)},
)


def test_the_sample_configs_have_priced_models():
    assert len(PRICED) >= 15  # anthropic, openai, mixed, offline, openrouter (config), portkey (config)
    assert {"config", "litellm"} <= {book.lookup(m, p).source.split(":")[0] for _, m, book, p in PRICED}


@FAST
@given(which=st.sampled_from(range(len(PRICED))), b=buckets, grow=st.sampled_from(BUCKETS),
       by=st.integers(min_value=1, max_value=10_000_000))
def test_sample_config_costs_are_never_negative_and_never_fall_when_a_bucket_grows(which, b, grow, by):
    _, model, book, params = PRICED[which]
    cost, source = book.cost(model, usage_of(b), params)
    assert source is not None and cost is not None and math.isfinite(cost) and cost >= 0
    bigger, _ = book.cost(model, usage_of({**b, grow: b[grow] + by}), params)
    assert bigger >= cost


@FAST
@given(price=config_price, b=buckets, grow=st.sampled_from(BUCKETS), by=st.integers(min_value=1, max_value=10_000_000))
def test_config_priced_costs_are_never_negative_and_never_fall_when_a_bucket_grows(price, b, grow, by):
    book = PriceBook({"house-model": config.Price(**price)})
    cost, source = book.cost("house-model", usage_of(b))
    assert source == "config" and cost >= 0 and math.isfinite(cost)
    bigger, _ = book.cost("house-model", usage_of({**b, grow: b[grow] + by}))
    assert bigger >= cost


@FAST
@given(b=buckets)
def test_an_unpriced_model_is_none_never_zero(b):
    assert PriceBook({}).cost("no-such-model-anywhere", usage_of(b)) == (None, None)


# -- the ledger against an in-memory model ------------------------------------------------------------------
IDS = st.text(alphabet="ab12", min_size=1, max_size=4)
TEXT = st.one_of(st.none(), st.text(st.characters(blacklist_categories=("Cs",)), max_size=12))
STARTED = st.floats(min_value=0, max_value=4e9, allow_nan=False)
COST = st.one_of(st.none(), st.floats(min_value=0, max_value=1e4, allow_nan=False))
STATUS = st.sampled_from(["pending", "ok", "error", "interrupted"])
COLUMNS = ("id", "started_at", "status", "session", "cost_usd", "external_id", "prompt_text")


class LedgerMachine(RuleBasedStateMachine):
    """Ledger (a real SQLite file) and a dict of rows must agree after any sequence of operations."""

    ids = Bundle("ids")

    def __init__(self):
        super().__init__()
        self.dir: str | None = None
        self.ledger = self._open()
        self.model: dict[str, dict] = {}

    def _open(self):
        from tiercli.ledger import Ledger

        self.dir = tempfile.mkdtemp(prefix="tier-stateful-")
        return Ledger(Path(self.dir) / "ledger.db")

    def _stored(self, value):
        """What the engine gives back for a value written (SQLite: the value itself)."""
        return value

    def teardown(self):
        self.ledger.close()
        if self.dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _view(self, row: dict | None) -> dict | None:
        return None if row is None else {k: row.get(k) for k in COLUMNS}

    @initialize()
    def start(self):
        assert self.ledger.recent_calls(10) == []

    @rule(target=ids, call_id=IDS, started=STARTED, status=STATUS, session=TEXT, cost=COST, prompt=TEXT)
    def upsert_new_or_existing(self, call_id, started, status, session, cost, prompt):
        values = {"id": call_id, "started_at": started, "status": status, "session": session, "cost_usd": cost,
                  "prompt_text": prompt}
        self.ledger.upsert_call(values)
        base = self.model.get(call_id, {"external_id": None})
        self.model[call_id] = {**base, **{k: self._stored(v) for k, v in values.items()}}
        return call_id

    @rule(call_id=ids, status=STATUS, cost=COST)
    def settle(self, call_id, status, cost):
        """A partial update by id (what settling a pending call does): other columns are kept."""
        row = self.model[call_id]
        self.ledger.upsert_call({"id": call_id, "started_at": row["started_at"], "status": status, "cost_usd": cost})
        row.update(status=status, cost_usd=cost)

    @rule(batch=st.lists(st.tuples(IDS, STARTED, st.one_of(st.none(), st.sampled_from(["x1", "x2", "x3"]))), max_size=6))
    def import_batch(self, batch):
        rows = [{"id": i, "started_at": s, "status": "ok", "external_id": e, "session": None, "cost_usd": None,
                 "prompt_text": None} for i, s, e in batch]
        added, skipped = self.ledger.insert_new_calls(rows)
        expect_added = 0
        taken_external = {r["external_id"] for r in self.model.values() if r["external_id"] is not None}
        for row in rows:
            if row["id"] in self.model or (row["external_id"] is not None and row["external_id"] in taken_external):
                continue
            self.model[row["id"]] = dict(row)
            if row["external_id"] is not None:
                taken_external.add(row["external_id"])
            expect_added += 1
        assert (added, skipped) == (expect_added, len(rows) - expect_added)

    @rule(call_id=st.one_of(ids, IDS))
    def get_call(self, call_id):
        assert self._view(self.ledger.get_call(call_id)) == self._view(self.model.get(call_id))

    @rule(prefix=st.text(alphabet="ab12", min_size=1, max_size=4))
    def find_call(self, prefix):
        if prefix in self.model:
            expected = self.model[prefix]
        else:
            matches = [i for i in self.model if i.startswith(prefix)]
            expected = self.model[matches[0]] if len(matches) == 1 else None
        assert self._view(self.ledger.find_call(prefix)) == self._view(expected)

    @rule(limit=st.integers(min_value=1, max_value=50))
    def recent_calls(self, limit):
        expected = sorted(self.model.values(), key=lambda r: (-r["started_at"], r["id"]))[:limit]
        assert [self._view(r) for r in self.ledger.recent_calls(limit)] == [self._view(r) for r in expected]

    @invariant()
    def no_duplicates(self):
        rows = self.ledger.recent_calls(10_000)
        assert len(rows) == len({r["id"] for r in rows}) == len(self.model)


LedgerMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=15, deadline=None,
                                           suppress_health_check=[HealthCheck.too_slow])
test_ledger_matches_an_in_memory_model = LedgerMachine.TestCase


class PgLedgerMachine(LedgerMachine):
    """The same machine on a real PostgreSQL server (one database, emptied before each example)."""

    url: str = ""

    def _open(self):
        from tiercli.ledger import open_ledger

        ledger = open_ledger(self.url)
        with ledger._tx() as conn:
            conn.execute("TRUNCATE calls, feedback, spend_days, spend_user_days")
        return ledger

    def _stored(self, value):
        # PostgreSQL text cannot hold NUL: the ledger stores U+FFFD in its place (ledger/pg.py)
        return value.replace("\x00", "\ufffd") if isinstance(value, str) else value


def test_ledger_matches_an_in_memory_model_on_postgresql(pg_url):
    PgLedgerMachine.url = pg_url
    run_state_machine_as_test(PgLedgerMachine, settings=settings(
        max_examples=40, stateful_step_count=15, deadline=None, suppress_health_check=[HealthCheck.too_slow]))


# -- the duration parser ------------------------------------------------------------------------------------
report = pytest.importorskip("tiercli.report", reason="tiercli.report is not there yet")
parse_window = getattr(report, "parse_window", None)
needs_parser = pytest.mark.skipif(parse_window is None, reason="tiercli.report.parse_window does not exist (yet)")
NOW = 1_800_000_000.0
UNITS = {"m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86_400, "day": 86_400, "days": 86_400, "w": 604_800}


@needs_parser
@FAST
@given(n=st.integers(min_value=0, max_value=100_000), unit=st.sampled_from(sorted(UNITS)),
       upper=st.booleans(), pad=st.sampled_from(["", " ", "  "]))
def test_durations_round_trip(n, unit, upper, pad):
    text = f"{pad}{n}{pad}{unit.upper() if upper else unit}{pad}"
    assert parse_window(text, now=NOW) == NOW - n * UNITS[unit]


@needs_parser
@FAST
@given(n=st.integers(min_value=0, max_value=10_000), tenths=st.integers(min_value=1, max_value=9))
def test_fractional_durations(n, tenths):
    assert parse_window(f"{n}.{tenths}h", now=NOW) == pytest.approx(NOW - (n + tenths / 10) * 3600)


@needs_parser
@FAST
@given(day=st.dates(min_value=dt.date(1970, 1, 2), max_value=dt.date(9999, 12, 30)))
def test_dates_are_utc_midnights(day):
    expected = dt.datetime(day.year, day.month, day.day, tzinfo=dt.timezone.utc).timestamp()
    assert parse_window(day.isoformat(), now=NOW) == expected


@needs_parser
@FAST
@given(when=st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(9999, 12, 30)).map(
    lambda d: d.replace(microsecond=0, tzinfo=dt.timezone.utc)), z=st.booleans())
def test_iso_times_round_trip(when, z):
    text = when.isoformat().replace("+00:00", "Z" if z else "+00:00")
    assert parse_window(text, now=NOW) == when.timestamp()


@needs_parser
@FAST
@given(text=st.text(max_size=30))
def test_anything_else_is_a_clear_error_never_a_crash(text):
    try:
        value = parse_window(text, now=NOW)
    except TierError as exc:
        assert exc.exit_code == 2 and "time" in exc.message
        return
    assert isinstance(value, float) and math.isfinite(value)  # it was a duration or a date after all
    assume(True)


@needs_parser
@pytest.mark.parametrize("garbage", ["", " ", "yesterday", "7", "d", "-3d", "3 days ago", "7dd", "2026-13-01",
                                     "2026-02-30", "2026-11-01T25:00", "1e3d", "∞d", "3d; rm -rf /", "now"])
def test_garbage_is_refused(garbage):
    with pytest.raises(TierError) as info:
        parse_window(garbage, now=NOW)
    assert info.value.exit_code == 2
