"""`tier report`'s core, rendering and CSV on a ledger of known rows.

Every expected figure below is worked out by hand from the rows in LEDGER_ROWS and the per-Mtok
prices of litellm's map (read through PriceBook, no litellm import):
    claude-haiku-4-5   in $1    out $5    cache read $0.10  write 5m $1.25  write 1h $2
    claude-sonnet-4-5  in $3    out $15   cache read $0.30  write 5m $3.75  write 1h $6
    claude-opus-4-5    in $5    out $25   cache read $0.50  write 5m $6.25  write 1h $10
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import sqlite3

import pytest
import yaml
from rich.console import Console

from tiercli.config import validate
from tiercli.errors import UsageError
from tiercli.ledger import Ledger
from tiercli.ledger import queries as q
from tiercli.ledger.queries import grand_steps
from tiercli.pricing import PriceBook
from tiercli.render import CSV_HEADER, render_report, report_to_csv
from tiercli.report import (
    REPORT_INDEX_NAME,
    REPORT_INDEX_SQL,
    REPORT_KEYS,
    Where,
    build_report,
    grand_query,
    parse_window,
)

M = 1_000_000
T0 = dt.datetime(2026, 11, 2, tzinfo=dt.timezone.utc).timestamp()  # day 1, 00:00 UTC
DAY = 86_400.0
NOW = T0 + 10 * DAY

CONFIG_YAML = """
model_list:
  - model_name: tier1
    litellm_params: {model: claude-haiku-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: tier2
    litellm_params: {model: claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: tier3
    litellm_params: {model: claude-opus-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
"""

HAIKU, SONNET, OPUS = "claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"

# Costs by hand: tokens x $/Mtok
COST = {
    "r1": 1000 * 1 / M + 200 * 5 / M,  # 0.002
    "r2": 1000 * 1 / M + 200 * 5 / M,  # 0.002
    # 2000 in, 10000 read, 3000 5m writes + 1000 1h writes, 500 out on sonnet
    "r3": 2000 * 3 / M + 10000 * 0.3 / M + 3000 * 3.75 / M + 1000 * 6 / M + 500 * 15 / M,  # 0.03375
    "r4": 500 * 1 / M + 5 * 5 / M,  # 0.000525 (classifier)
    "r5": 8000 * 3 / M + 1000 * 15 / M,  # 0.039 (compaction)
    "r6": 1000 * 5 / M + 20000 * 0.5 / M + 1000 * 25 / M,  # 0.04 (override to opus)
    "r7": 1000 * 3 / M + 100 * 15 / M,  # 0.0045 (sent tier1, served by sonnet after a fallback)
    "r10": 1000 * 3 / M + 5000 * 0.3 / M + 400 * 15 / M,  # 0.0105
    "r11": 1000 * 3 / M + 400 * 15 / M,  # 0.009
    "r12": 400 * 1 / M + 100 * 5 / M,  # 0.0009
    "r13": 100 * 3 / M + 1000 * 0.3 / M + 50 * 15 / M,  # 0.00135 (import)
    "r15": 100 * 1 / M + 10 * 5 / M,  # 0.00015
    "r16": 100 * 3 / M,  # 0.0003 (interrupted)
    "r17": 1000 * 5 / M + 100 * 25 / M,  # 0.0075
}


def _row(id, at, **kw):
    row = {"id": id, "started_at": at, "status": "ok", "kind": "main", "decision_source": "local"}
    row.update(kw)
    if "cost_usd" not in row:
        row["cost_usd"] = COST.get(id)
    if "served_tier" not in row:
        row["served_tier"] = row.get("tier")
    return row


LEDGER_ROWS = [
    # day 1 (2026-11-02), config cfgA
    _row("r4", T0 + 95, session="s1", kind="classifier", decision_source=None, tier="tier1", served_model=HAIKU,
         input_tokens=500, output_tokens=5, prompt_hash="pc1", config_hash="cfgA"),
    _row("r1", T0 + 100, session="s1", task_type="bug_fix", tier="tier1", served_model=HAIKU,
         input_tokens=1000, output_tokens=200, prompt_hash="p1", config_hash="cfgA"),
    _row("r2", T0 + 400, session="s1", task_type="bug_fix", tier="tier1", served_model=HAIKU,  # r1 again: a retry
         input_tokens=1000, output_tokens=200, prompt_hash="p1", config_hash="cfgA"),
    _row("r3", T0 + 1000, session="s1", task_type="feature", tier="tier2", served_model=SONNET,
         input_tokens=2000, cache_read_tokens=10000, cache_write_tokens=4000, cache_write_1h_tokens=1000,
         output_tokens=500, prompt_hash="p2", config_hash="cfgA"),
    _row("r5", T0 + 2000, session="s1", kind="compaction", decision_source=None, tier="tier2", served_model=SONNET,
         input_tokens=8000, output_tokens=1000, prompt_hash="pc2", config_hash="cfgA"),
    _row("r6", T0 + 3000, session="s2", task_type="architecture", decision_source="override", decided_tier="tier2",
         tier="tier3", served_model=OPUS, input_tokens=1000, cache_read_tokens=20000, output_tokens=1000,
         prompt_hash="p3", config_hash="cfgA"),
    _row("r7", T0 + 3500, session="s2", task_type="bug_fix", tier="tier1", served_tier="tier2", served_model=SONNET,
         fallback_count=1, attempts=2, input_tokens=1000, output_tokens=100, prompt_hash="p4", config_hash="cfgA"),
    _row("r8", T0 + 4000, session="s2", task_type="search", tier="tier1", served_model=None, requested_model=HAIKU,
         status="error", error_class="RateLimitError", cost_usd=None, prompt_hash="p5", config_hash="cfgA"),
    _row("r9", T0 + 4100, session="s2", task_type="search", tier="tier1", served_model="local/mystery-model",
         input_tokens=300, output_tokens=30, cost_usd=None, unpriced=True, prompt_hash="p6", config_hash="cfgA"),
    # day 2 (2026-11-03), config cfgB
    _row("r10", T0 + DAY + 100, session="s3", task_type="feature", tier="tier2", served_model=SONNET,
         input_tokens=1000, cache_read_tokens=5000, output_tokens=400, prompt_hash="p7", config_hash="cfgB"),
    _row("r11", T0 + DAY + 800, session="s3", task_type="feature", tier="tier2", served_model=SONNET,  # 700 s later: no retry
         input_tokens=1000, output_tokens=400, prompt_hash="p7", config_hash="cfgB"),
    _row("r12", T0 + DAY + 1000, session="s3", task_type="file_lookup", tier="tier1", served_model=HAIKU,
         input_tokens=400, output_tokens=100, prompt_hash="p8", config_hash="cfgB"),
    _row("r13", T0 + DAY + 5000, session="s4", kind="import", source="claude-code", decision_source="import",
         tier=None, served_model=SONNET, input_tokens=100, cache_read_tokens=1000, output_tokens=50,
         prompt_hash="p12"),
    _row("r15", T0 + DAY + 6000, session="s4", task_type="docstring", decision_source="override",
         decided_tier="tier2", tier="tier1", served_model=HAIKU,  # forced DOWN: not an override signal
         input_tokens=100, output_tokens=10, prompt_hash="p9", config_hash="cfgB"),
    _row("r16", T0 + DAY + 7000, session="s4", task_type="bug_fix", tier="tier2", served_model=SONNET,
         status="interrupted", input_tokens=100, prompt_hash="p10", config_hash="cfgB"),
    # day 3 has no calls; day 4 (2026-11-05)
    _row("r17", T0 + 3 * DAY + 50, session="s5", task_type="bug_fix", tier="tier3", served_model=OPUS,
         input_tokens=1000, output_tokens=100, prompt_hash="p11", config_hash="cfgB"),
]
FEEDBACK = [("r3", "bad"), ("r3", "good"), ("r10", "bad"), ("r12", "good"), ("r6", "bad"), ("r4", "bad")]


@pytest.fixture
def config():
    return validate(yaml.safe_load(CONFIG_YAML), "test")


def _ledger(path, rows, feedback=()):
    ledger = Ledger(path)
    for row in rows:
        ledger.upsert_call(row)
    for call_id, verdict in feedback:
        ledger.add_feedback(call_id, verdict, None)
    return ledger


@pytest.fixture
def ledger(tmp_path):
    with _ledger(tmp_path / "ledger.db", LEDGER_ROWS, FEEDBACK) as led:
        yield led


def _report(ledger, config, **kw):
    kw.setdefault("since", None)
    kw.setdefault("until", None)
    kw.setdefault("session", None)
    return build_report(ledger, config, now=NOW, **kw)


def approx(x):
    return pytest.approx(x, abs=1e-9)


TOTAL_COST = 0.151475  # the sum of COST: every priced call


def test_prices_are_the_ones_the_hand_computations_use():
    book = PriceBook()
    for model, (i, o, r, w, w1) in {HAIKU: (1, 5, 0.1, 1.25, 2), SONNET: (3, 15, 0.3, 3.75, 6),
                                    OPUS: (5, 25, 0.5, 6.25, 10)}.items():
        p = book.lookup(model)
        assert [float(x * M) for x in (p.input, p.output, p.cache_read, p.cache_write, p.cache_write_1h)] == \
            pytest.approx([i, o, r, w, w1])
    assert sum(COST.values()) == approx(TOTAL_COST)


def test_report_is_pure_json_with_the_documented_keys(ledger, config):
    report = _report(ledger, config)
    assert tuple(report) == REPORT_KEYS
    assert json.loads(json.dumps(report)) == report


def test_window_and_totals(ledger, config):
    r = _report(ledger, config)
    w = r["window"]
    assert (w["since"], w["until"], w["session"], w["all"]) == (None, None, None, True)
    assert w["generated_at"] == NOW and w["retry_window_s"] == 600
    assert w["first_call_at"] == T0 + 95 and w["last_call_at"] == T0 + 3 * DAY + 50
    assert w["first_call_iso"] == "2026-11-02T00:01:35Z"
    t = r["totals"]
    assert t["calls"] == 16
    assert t["priced_calls"] == 14  # r8 (error) and r9 (unpriced) have no cost
    assert t["cost_usd"] == approx(TOTAL_COST)
    assert t["input_tokens"] == 1000 + 1000 + 2000 + 500 + 8000 + 1000 + 1000 + 300 + 1000 + 1000 + 400 + 100 + 100 + 100 + 1000 == 18500
    assert t["cache_read_tokens"] == 10000 + 20000 + 5000 + 1000 == 36000
    assert t["cache_write_tokens"] == 4000 and t["cache_write_1h_tokens"] == 1000
    assert t["output_tokens"] == 200 + 200 + 500 + 5 + 1000 + 1000 + 100 + 30 + 400 + 400 + 100 + 50 + 10 + 100 == 4095
    assert t["tokens"] == 18500 + 36000 + 4000 + 4095
    assert (t["errors"], t["interrupted"], t["pending"], t["unpriced"]) == (1, 1, 0, 1)
    assert t["by_kind"] == {
        "classifier": {"calls": 1, "cost_usd": approx(COST["r4"]), "unpriced_calls": 0},
        "compaction": {"calls": 1, "cost_usd": approx(COST["r5"]), "unpriced_calls": 0},
        "import": {"calls": 1, "cost_usd": approx(COST["r13"]), "unpriced_calls": 0},
        "main": {"calls": 13, "cost_usd": approx(TOTAL_COST - COST["r4"] - COST["r5"] - COST["r13"]), "unpriced_calls": 1},
    }


def test_tier_distribution_targets_and_warning(ledger, config):
    r = _report(ledger, config)
    tiers = {row["tier"]: row for row in r["tiers"]}
    assert [row["tier"] for row in r["tiers"]] == ["tier1", "tier2", "tier3", None]
    # tier1: r1 r2 r4(classifier) r7 r8 r9 r12 r15; routed (main) all but r4
    # routed: kind main and not an override; tier1 r1 r2 r7 r8 r9 r12 (r15 was forced: an override)
    assert tiers["tier1"] == {
        "tier": "tier1", "rank": 0, "calls": 8, "share_calls": approx(8 / 16), "routed_calls": 6,
        "share_routed": approx(6 / 11), "override_calls": 1,
        "tokens": 1200 + 1200 + 505 + 1100 + 0 + 330 + 500 + 110,
        "cost_usd": approx(COST["r1"] + COST["r2"] + COST["r4"] + COST["r7"] + COST["r12"] + COST["r15"]),
        "share_cost": approx(0.010075 / TOTAL_COST), "unpriced_calls": 1,
    }
    # tier2: r3 r5(compaction) r10 r11 r16
    assert tiers["tier2"] == {
        "tier": "tier2", "rank": 1, "calls": 5, "share_calls": approx(5 / 16), "routed_calls": 4,
        "share_routed": approx(4 / 11), "override_calls": 0, "tokens": 16500 + 9000 + 6400 + 1400 + 100,
        "cost_usd": approx(0.09255), "share_cost": approx(0.09255 / TOTAL_COST), "unpriced_calls": 0,
    }
    # tier3: r17 routed, r6 forced by an override
    assert tiers["tier3"] == {
        "tier": "tier3", "rank": 2, "calls": 2, "share_calls": approx(2 / 16), "routed_calls": 1,
        "share_routed": approx(1 / 11), "override_calls": 1, "tokens": 22000 + 1100, "cost_usd": approx(0.0475),
        "share_cost": approx(0.0475 / TOTAL_COST), "unpriced_calls": 0,
    }
    assert tiers[None] == {
        "tier": None, "rank": None, "calls": 1, "share_calls": approx(1 / 16), "routed_calls": 0,
        "share_routed": 0.0, "override_calls": 0, "tokens": 1150, "cost_usd": approx(COST["r13"]),
        "share_cost": approx(COST["r13"] / TOTAL_COST), "unpriced_calls": 0,
    }
    assert r["targets"] == {
        "basis": "routed calls (kind main; overrides apart)", "routed_calls": 11, "override_calls": 2,
        "tiers_1_2": ["tier1", "tier2"], "top_tier": "tier3",
        "tiers_1_2_share_target": 0.8, "top_tier_share_target": [0.10, 0.12], "top_tier_warning_above": 0.15,
        "top_tier_warning_min_calls": 50, "tiers_1_2_share": approx(10 / 11), "top_tier_share": approx(1 / 11),
    }
    assert not any("routed calls, above" in w for w in r["warnings"])


@pytest.mark.parametrize("routed, warned", [(49, False), (50, True)])
def test_top_tier_warning_needs_50_routed_calls_and_says_how_many(tmp_path, config, routed, warned):
    # a fifth of the routed calls on tier3 (20% > 15%), plus overrides to tier3 that do not count
    rows = [_row(f"t{i}", T0 + i, session="s", task_type="feature", tier="tier3" if i % 5 == 0 else "tier2",
                 served_model=SONNET, input_tokens=10, cost_usd=0.0001, prompt_hash=f"h{i}") for i in range(routed)]
    rows += [_row(f"o{i}", T0 + 500 + i, session="s", task_type="feature", decision_source="override",
                  decided_tier="tier2", tier="tier3", served_model=OPUS, cost_usd=0.0001, prompt_hash=f"o{i}")
             for i in range(30)]
    with _ledger(tmp_path / "l.db", rows) as led:
        r = _report(led, config)
    assert r["targets"]["routed_calls"] == routed and r["targets"]["override_calls"] == 30
    assert r["targets"]["top_tier_share"] == approx(-(-routed // 5) / routed)
    messages = [w for w in r["warnings"] if "routed calls, above" in w]
    if warned:
        assert messages == [f"tier3 took 20.0% of {routed} routed calls, above 15%: the classification needs "
                            "tightening (target 10%-12%)"]
    else:
        assert messages == []


def test_task_types_sorted_by_cost_with_tier_mix(ledger, config):
    r = _report(ledger, config)
    rows = r["task_types"]
    assert [row["task_type"] for row in rows] == [
        "feature", None, "architecture", "bug_fix", "file_lookup", "docstring", "search"]
    by = {row["task_type"]: row for row in rows}
    feature = COST["r3"] + COST["r10"] + COST["r11"]  # 0.05325
    assert by["feature"] == {
        "task_type": "feature", "calls": 3, "priced_calls": 3, "cost_usd": approx(feature),
        "mean_cost_usd": approx(feature / 3), "share_calls": approx(3 / 16), "share_cost": approx(feature / TOTAL_COST),
        "unpriced_calls": 0, "tier_mix": {"tier2": 3},
    }
    bug_fix = COST["r1"] + COST["r2"] + COST["r7"] + COST["r16"] + COST["r17"]  # 0.0163
    assert by["bug_fix"]["cost_usd"] == approx(bug_fix) and by["bug_fix"]["mean_cost_usd"] == approx(bug_fix / 5)
    assert by["bug_fix"]["tier_mix"] == {"tier1": 3, "tier2": 1, "tier3": 1}
    assert list(by["bug_fix"]["tier_mix"]) == ["tier1", "tier2", "tier3"]
    # classifier, compaction and the import carry no task type
    none = COST["r4"] + COST["r5"] + COST["r13"]
    assert by[None]["calls"] == 3 and by[None]["cost_usd"] == approx(none)
    assert by[None]["tier_mix"] == {"tier1": 1, "tier2": 1, "(none)": 1}
    assert by["architecture"]["cost_usd"] == approx(0.04) and by["architecture"]["tier_mix"] == {"tier3": 1}
    # both search calls lack a cost: $0 summed, no mean, one of them unpriced
    assert by["search"] == {
        "task_type": "search", "calls": 2, "priced_calls": 0, "cost_usd": 0.0, "mean_cost_usd": None,
        "share_calls": approx(2 / 16), "share_cost": 0.0, "unpriced_calls": 1, "tier_mix": {"tier1": 2},
    }
    assert sum(row["cost_usd"] for row in rows) == approx(TOTAL_COST)
    assert sum(row["calls"] for row in rows) == 16


def test_savings_reprice_every_priced_call_at_the_top_tier(ledger, config):
    s = _report(ledger, config)["savings"]
    # priced buckets: all tokens but r9's (unpriced: 300 in, 30 out) and r13's (imported: 100 in, 1000 read,
    # 50 out; tier did not route it, so nothing was saved on it); r8 has none
    top = ((18500 - 300 - 100) * 5 / M + 35000 * 0.5 / M + (4000 - 1000) * 6.25 / M + 1000 * 10 / M
           + (4095 - 30 - 50) * 25 / M)
    assert top == approx(0.237125)
    actual = TOTAL_COST - COST["r13"]
    assert s == {
        "basis": "calls tier routed (imported calls left out: tier did not route them)",
        "actual_usd": approx(actual), "top_tier": "tier3", "top_tier_model": OPUS,
        "top_tier_usd": approx(top), "saved_usd": approx(top - actual),
        "saved_pct": pytest.approx((top - actual) / top * 100), "imported_calls": 1,
        "imported_usd": approx(COST["r13"]), "classifier_usd": approx(COST["r4"]),
        "compaction_usd": approx(COST["r5"]), "priced_calls": 13, "calls_without_cost": 2,
        # r5 records no history_tokens (made before compaction kept them): nothing removed, its cost spent
        "compaction": {"calls": 1, "tokens_removed": 0, "cost_usd": approx(COST["r5"]),
                       "saved_usd": approx(-COST["r5"]), "unpriced_models": []},
    }


def test_caching_savings_per_model(ledger, config):
    c = _report(ledger, config)["caching"]
    # sonnet: r3 (10000 read, 3000 5m + 1000 1h writes), r10 (5000 read), r13 (1000 read)
    sonnet_read = 16000 * (3 - 0.3) / M  # 0.0432
    sonnet_premium = 3000 * (3.75 - 3) / M + 1000 * (6 - 3) / M  # 0.00525
    opus_read = 20000 * (5 - 0.5) / M  # 0.09 (r6)
    assert c["models"] == [
        {"model": SONNET, "cache_read_tokens": 16000, "cache_write_tokens": 4000, "cache_write_1h_tokens": 1000,
         "read_share": approx(16000 / (13200 + 16000 + 4000)), "read_saved_usd": approx(sonnet_read),
         "write_premium_usd": approx(sonnet_premium), "saved_usd": approx(sonnet_read - sonnet_premium), "priced": True},
        {"model": OPUS, "cache_read_tokens": 20000, "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
         "read_share": approx(20000 / 22000), "read_saved_usd": approx(opus_read), "write_premium_usd": 0.0,
         "saved_usd": approx(opus_read), "priced": True},
    ]
    assert (c["cache_read_tokens"], c["cache_write_tokens"], c["cache_write_1h_tokens"]) == (36000, 4000, 1000)
    assert c["read_share"] == approx(36000 / (18500 + 36000 + 4000))
    assert c["read_saved_usd"] == approx(sonnet_read + opus_read)
    assert c["write_premium_usd"] == approx(sonnet_premium)
    assert c["saved_usd"] == approx(0.12795)
    assert c["unpriced_models"] == []


def test_models_days_unpriced_and_errors(ledger, config):
    r = _report(ledger, config)
    models = [(m["model"], m["calls"], m["tokens"], m["cost_usd"], m["unpriced_calls"], m["priced"]) for m in r["models"]]
    assert models == [
        (SONNET, 7, 16500 + 9000 + 1100 + 6400 + 1400 + 1150 + 100, approx(0.0984), 0, True),
        (OPUS, 2, 23100, approx(0.0475), 0, True),
        (HAIKU, 5, 1200 + 1200 + 505 + 500 + 110, approx(0.005575), 0, True),
        ("local/mystery-model", 1, 330, 0.0, 1, False),
        (None, 1, 0, 0.0, 0, False),
    ]
    assert r["models"][0]["share_cost"] == approx(0.0984 / TOTAL_COST)
    assert r["models"][0]["cache_read_tokens"] == 16000 and r["models"][0]["input_tokens"] == 13200
    assert r["days"] == [
        {"day": "2026-11-02", "calls": 9, "tokens": 51835, "cost_usd": approx(0.121775), "unpriced_calls": 1},
        {"day": "2026-11-03", "calls": 6, "tokens": 9660, "cost_usd": approx(0.0222), "unpriced_calls": 0},
        {"day": "2026-11-04", "calls": 0, "tokens": 0, "cost_usd": 0.0, "unpriced_calls": 0},
        {"day": "2026-11-05", "calls": 1, "tokens": 1100, "cost_usd": approx(0.0075), "unpriced_calls": 0},
    ]
    assert r["unpriced"] == {"calls": 1, "models": [{"model": "local/mystery-model", "calls": 1}]}
    assert any("local/mystery-model" in w and "no known price" in w for w in r["warnings"])
    assert r["errors"] == {
        "calls": 2, "by_status": {"error": 1, "interrupted": 1},
        "classes": [{"status": "error", "error_class": "RateLimitError", "calls": 1},
                    {"status": "interrupted", "error_class": None, "calls": 1}],
    }


def test_quality_per_routed_tier_task_type_and_config(ledger, config):
    q = _report(ledger, config)["quality"]
    assert q["kinds"] == ["main", "import"] and q["retry_window_s"] == 600
    # 14 user-facing calls (the classifier r4 and compaction r5 are left out, and so is r4's feedback).
    # r6 (forced up from tier2) and r15 (forced down from tier2) count under tier2, the tier routing chose.
    assert q["tiers"] == [
        # r1 r2 r7 r8 r9 r12: r1 retried by r2 300 s later; r7 fell back; r12 good
        {"tier": "tier1", "calls": 6, "overrides": 0, "retries": 1, "escalations": 1, "feedback_bad": 0,
         "feedback_good": 1, "rate": approx(2 / 6)},
        # r3 r6 r10 r11 r15 r16: r6 override up; r3 bad then good (latest: good); r10 bad; r6 bad;
        # r10 -> r11 is the same prompt 700 s later: outside the 600 s window
        {"tier": "tier2", "calls": 6, "overrides": 1, "retries": 0, "escalations": 0, "feedback_bad": 2,
         "feedback_good": 1, "rate": approx(3 / 6)},
        {"tier": "tier3", "calls": 1, "overrides": 0, "retries": 0, "escalations": 0, "feedback_bad": 0,
         "feedback_good": 0, "rate": 0.0},
        {"tier": None, "calls": 1, "overrides": 0, "retries": 0, "escalations": 0, "feedback_bad": 0,
         "feedback_good": 0, "rate": 0.0},
    ]
    assert q["total"] == {"calls": 14, "overrides": 1, "retries": 1, "escalations": 1, "feedback_bad": 2,
                          "feedback_good": 2, "rate": approx(5 / 14)}
    tasks = {row["task_type"]: row for row in q["task_types"]}
    assert [row["task_type"] for row in q["task_types"]] == [
        "architecture", "bug_fix", "docstring", "feature", "file_lookup", "search", None]
    assert tasks["bug_fix"] == {"task_type": "bug_fix", "calls": 5, "overrides": 0, "retries": 1, "escalations": 1,
                                "feedback_bad": 0, "feedback_good": 0, "rate": approx(2 / 5)}
    assert tasks["architecture"]["rate"] == approx(2.0)  # one call: overridden AND bad feedback
    assert (tasks["feature"]["feedback_bad"], tasks["feature"]["feedback_good"], tasks["feature"]["rate"]) == (1, 1, approx(1 / 3))
    assert tasks["docstring"]["overrides"] == 0  # r15 was forced to a CHEAPER tier
    assert tasks[None]["calls"] == 1  # the import
    assert [(c["config_hash"], c["first_call_at"], c["calls"], c["rate"]) for c in q["configs"]] == [
        ("cfgA", T0 + 100, 7, approx(4 / 7)),  # r1 r2 r3 r6 r7 r8 r9: override, retry, escalation, r6 bad
        ("cfgB", T0 + DAY + 100, 6, approx(1 / 6)),  # r10 r11 r12 r15 r16 r17: r10 bad
    ]
    assert q["regressions"] == []  # nothing has 20 calls under both configs
    assert q["regression_rule"]["min_calls"] == 20 and q["regression_rule"]["min_increase"] == 0.05


def test_regression_flagged_when_rate_rises_under_the_newest_config(tmp_path, config):
    rows = []
    for i in range(4):  # cfgX: search clean, review 1 of 4 escalated, lookup 2 calls
        rows.append(_row(f"x{i}", T0 + i, session="a", task_type="search", tier="tier1", served_model=HAIKU,
                         input_tokens=10, cost_usd=1e-5, prompt_hash=f"x{i}", config_hash="cfgX"))
        rows.append(_row(f"xr{i}", T0 + 10 + i, session="a", task_type="code_review", tier="tier2",
                         served_model=SONNET, fallback_count=int(i == 0), input_tokens=10, cost_usd=3e-5,
                         prompt_hash=f"xr{i}", config_hash="cfgX"))
    for i in range(4):  # cfgY: search 2 of 4 escalated (+0.5), review 1 of 4 (+0), lookup only here
        rows.append(_row(f"y{i}", T0 + 100 + i, session="a", task_type="search", tier="tier1", served_model=HAIKU,
                         fallback_count=int(i < 2), input_tokens=10, cost_usd=1e-5, prompt_hash=f"y{i}",
                         config_hash="cfgY"))
        rows.append(_row(f"yr{i}", T0 + 110 + i, session="a", task_type="code_review", tier="tier2",
                         served_model=SONNET, fallback_count=int(i == 0), input_tokens=10, cost_usd=3e-5,
                         prompt_hash=f"yr{i}", config_hash="cfgY"))
        rows.append(_row(f"yl{i}", T0 + 120 + i, session="a", task_type="file_lookup", tier="tier1",
                         served_model=HAIKU, fallback_count=1, input_tokens=10, cost_usd=1e-5,
                         prompt_hash=f"yl{i}", config_hash="cfgY"))
    with _ledger(tmp_path / "l.db", rows) as led:
        r = _report(led, config, regression_min_calls=4)
        assert r["quality"]["regressions"] == [{
            "task_type": "search", "previous_config": "cfgX", "newest_config": "cfgY", "previous_calls": 4,
            "newest_calls": 4, "previous_rate": 0.0, "newest_rate": 0.5, "increase": 0.5,
        }]
        assert any(w.startswith("quality regression: search went from 0.0% to 50.0%") for w in r["warnings"])
        # with a higher bar on calls, nothing qualifies
        assert _report(led, config, regression_min_calls=5)["quality"]["regressions"] == []
        # with a higher bar on the increase, neither
        assert _report(led, config, regression_min_calls=4, regression_min_increase=0.6)["quality"]["regressions"] == []


def test_window_filters(ledger, config):
    day2 = _report(ledger, config, since=T0 + DAY)
    assert day2["totals"]["calls"] == 7  # r10 r11 r12 r13 r15 r16 r17
    assert day2["totals"]["cost_usd"] == approx(0.0222 + 0.0075)
    assert day2["window"]["since_iso"] == "2026-11-03T00:00:00Z" and not day2["window"]["all"]
    assert [d["day"] for d in day2["days"]] == ["2026-11-03", "2026-11-04", "2026-11-05"]

    day1 = _report(ledger, config, until=T0 + DAY)
    assert day1["totals"]["calls"] == 9 and day1["totals"]["cost_usd"] == approx(0.121775)
    assert day1["errors"]["calls"] == 1 and day1["unpriced"]["calls"] == 1
    assert [c["config_hash"] for c in day1["quality"]["configs"]] == ["cfgA"]

    # until is exclusive; the retry search still sees r2 (T0+400), past the window's end
    early = _report(ledger, config, until=T0 + 300)
    assert early["totals"]["calls"] == 2  # r4 and r1
    assert early["quality"]["total"]["retries"] == 1
    assert _report(ledger, config, until=T0 + 100)["totals"]["calls"] == 1  # r4 only: r1 starts AT until

    s1 = _report(ledger, config, session="s1")
    assert s1["totals"]["calls"] == 5  # r1 r2 r3 r4 r5
    assert s1["window"]["session"] == "s1"
    assert s1["totals"]["cost_usd"] == approx(COST["r1"] + COST["r2"] + COST["r3"] + COST["r4"] + COST["r5"])
    assert s1["quality"]["total"]["retries"] == 1
    assert _report(ledger, config, session="nope")["totals"]["calls"] == 0

    both = _report(ledger, config, since=T0 + DAY, until=T0 + 2 * DAY, session="s4")
    assert both["totals"]["calls"] == 3  # r13 r15 r16

    # a shorter retry window loses the r1 -> r2 retry (300 s apart); a longer one finds r10 -> r11 (700 s)
    assert _report(ledger, config, retry_window_s=299)["quality"]["total"]["retries"] == 0
    assert _report(ledger, config, retry_window_s=700)["quality"]["total"]["retries"] == 2


def test_bad_windows_are_usage_errors(ledger, config):
    with pytest.raises(UsageError, match="after --until"):
        _report(ledger, config, since=T0 + DAY, until=T0)
    with pytest.raises(UsageError):
        _report(ledger, config, retry_window_s=-1)


def test_narrow_and_wide_window_strategies_give_the_same_answer(ledger, config):
    # narrow: the window's range of ix_calls_started_at and a window function for retries;
    # wide: the calls of retry_candidates' pairs (schema 7), read through ix_calls_session_prompt
    for kw in ({}, {"since": T0 + 50}, {"until": T0 + 300}, {"since": T0 + 3000, "until": T0 + DAY + 900},
               {"session": "s1"}, {"session": "s2", "since": T0}):
        assert _report(ledger, config, _narrow_threshold=0, **kw) == _report(ledger, config, _narrow_threshold=10**9, **kw)


def test_report_index_gives_the_same_answer_and_a_streaming_plan(tmp_path, config):
    path = tmp_path / "ledger.db"
    with _ledger(path, LEDGER_ROWS, FEEDBACK) as led:
        before = [_report(led, config, **kw) for kw in ({}, {"since": T0 + DAY}, {"until": T0 + DAY})]
    raw = sqlite3.connect(path)
    raw.execute(REPORT_INDEX_SQL)
    raw.commit()
    for kw in ({}, {"since": T0 + DAY}, {"since": T0, "until": T0 + DAY}):
        where = Where(kw.get("since"), kw.get("until"), None)
        sql, params = grand_query(where, ["tier1", "tier2", "tier3"])
        plan = raw.execute("EXPLAIN QUERY PLAN " + sql, params).fetchall()
        (pass_id,) = [node for node, _parent, _, detail in plan if detail == "MATERIALIZE g"]
        under = {pass_id}
        for node, parent, _, _detail in plan:  # EXPLAIN lists parents before their children
            if parent in under:
                under.add(node)
        # and the statement SQLite runs (grand_steps' first: the same pass into a temp table)
        create, create_params = grand_steps(where)[0]
        step_plan = raw.execute("EXPLAIN QUERY PLAN " + create.split(" AS ", 1)[1], create_params).fetchall()
        for reads in ([detail for node, _parent, _, detail in plan if node in under and " calls " in f"{detail} "],
                      [detail for _node, _parent, _, detail in step_plan if " calls " in f"{detail} "]):
            # the pass over the calls streams through the covering index, with no sort of the calls
            # (the rollups after it sort only the pass's groups); calls before 1970 (grouped by the true
            # floor of their day, which the index's truncating CAST is not) are a range of the time index
            assert len(reads) == 2 and f"calls USING COVERING INDEX {REPORT_INDEX_NAME}" in reads[0], plan
            assert reads[1].startswith("SEARCH calls USING INDEX ix_calls_started_at (started_at"), plan
    raw.close()
    with Ledger(path) as led:
        after = [_report(led, config, **kw) for kw in ({}, {"since": T0 + DAY}, {"until": T0 + DAY})]
    assert after == before


def test_sqlites_steps_give_the_one_statements_rollups(ledger):
    """SQLite runs grand_query as grand_steps (no config needed) and counts the overrides with the
    tiers' order after: the same rows (`overrides` is the quality section's; the others are 0)."""
    overridden = 0
    for tiers in (["tier1", "tier2", "tier3"], ["tier3", "tier2", "tier1"], ["tier1", "tier1", "tier2"], []):
        for where in (Where(None, None, None), Where(T0 + DAY, None, None), Where(None, T0 + DAY, None),
                      Where(T0, T0 + 2 * DAY, "s1"), Where(None, None, None, user=q.NONE_USER)):
            conn = sqlite3.connect(ledger.path, isolation_level=None)
            conn.execute("BEGIN")
            expected = q.grand_rollups(conn, where, tiers)
            q.group_calls(conn, where)
            got = q.grouped_rollups(conn, tiers)
            conn.execute("ROLLBACK")
            conn.close()
            for section, rows in expected.items():
                if section != "quality":
                    for row in rows:
                        row["overrides"] = 0
            assert got == expected and sum(r["calls"] for r in got["kind"]) > 0, (tiers, where.params)
            overridden += sum(r["overrides"] for r in got["quality"])
    assert overridden > 0  # the ledger has overrides that count


def test_a_config_that_fails_while_the_ledger_is_read_is_one_line(tmp_path, ledger):
    """build_report starts the reads, then loads the config: its error is the command's, alone."""
    from helpers import tier
    from tiercli.errors import ConfigError

    def broken():
        raise ConfigError("c.yaml: routing.tiers is empty", "name at least one tier")

    with pytest.raises(ConfigError):
        build_report(ledger, broken, since=None, until=None, session=None, now=NOW)
    bad = tmp_path / "bad.yaml"
    bad.write_text("routing: {tiers: 7}\n")
    result = tier("report", "--all", "--db", ledger.path, "-c", bad)
    assert result.exit_code == ConfigError.exit_code, result.output
    assert result.stdout == "" and result.stderr.startswith("tier: error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr


def test_empty_ledger_and_empty_window(tmp_path, config, ledger):
    with Ledger(tmp_path / "empty.db") as empty:
        r = _report(empty, config)
    assert tuple(r) == REPORT_KEYS
    assert r["totals"]["calls"] == 0 and r["totals"]["cost_usd"] == 0.0
    assert r["tiers"][0] == {"tier": "tier1", "rank": 0, "calls": 0, "share_calls": 0.0, "routed_calls": 0,
                             "share_routed": 0.0, "override_calls": 0, "tokens": 0, "cost_usd": 0.0, "share_cost": 0.0, "unpriced_calls": 0}
    assert [t["tier"] for t in r["tiers"]] == ["tier1", "tier2", "tier3"]
    assert r["task_types"] == [] and r["days"] == [] and r["models"] == [] and r["warnings"] == []
    assert r["savings"]["top_tier_usd"] == 0.0 and r["savings"]["saved_pct"] is None
    assert r["targets"]["top_tier_share"] is None
    assert r["quality"]["total"]["rate"] is None
    assert r["window"]["first_call_at"] is None
    json.dumps(r)
    out = io.StringIO()
    render_report(r, Console(file=out, width=80, no_color=True))
    assert out.getvalue() == "no calls yet in this window\n"
    later = _report(ledger, config, since=NOW)
    assert later["totals"]["calls"] == 0
    assert list(csv.reader(io.StringIO(report_to_csv(later))))[0] == list(CSV_HEADER)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("48h", NOW - 48 * 3600),
        ("7d", NOW - 7 * DAY),
        ("90m", NOW - 90 * 60),
        ("2w", NOW - 14 * DAY),
        (" 1.5h ", NOW - 5400),
        ("0h", NOW),
        ("2026-11-01", dt.datetime(2026, 11, 1, tzinfo=dt.timezone.utc).timestamp()),
        ("2026-11-01T09:30:00Z", dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.timezone.utc).timestamp()),
        ("2026-11-01T09:30", dt.datetime(2026, 11, 1, 9, 30, tzinfo=dt.timezone.utc).timestamp()),
        ("2026-11-01 09:30:15", dt.datetime(2026, 11, 1, 9, 30, 15, tzinfo=dt.timezone.utc).timestamp()),
        ("2026-11-01T09:30:00+02:00", dt.datetime(2026, 11, 1, 7, 30, tzinfo=dt.timezone.utc).timestamp()),
    ],
)
def test_parse_window(text, expected):
    assert parse_window(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize(
    "text", ["", "  ", "48", "yesterday", "-3h", "3 parsecs", "2026-13-01", "2026-11-01T25:00", "h", "99999999999d"])
def test_parse_window_rejects_with_the_valid_forms(text):
    with pytest.raises(UsageError) as info:
        parse_window(text, now=NOW)
    assert "48h" in str(info.value) and "2026-11-01" in str(info.value)


@pytest.mark.parametrize("width", [80, 120])
def test_render_at_80_and_120_columns_without_colour(ledger, config, width, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    r = _report(ledger, config)
    out = io.StringIO()
    console = Console(file=out, width=width)
    assert console.no_color
    render_report(r, console)
    text = out.getvalue()
    assert "\x1b" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    for figure in (
        "16 calls", "$0.151",  # totals
        "1. Tier distribution", "tier1", "50.0%", "9.1%", "overrides",  # tiers, the routed top share, overrides
        "2. Cost per task type", "feature", "$0.053",  # feature's cost
        "3. Savings", "$0.237", "$0.087", "36.7%", "1 imported",  # top-tier cost, saved, percentage
        "4. Prompt caching", "$0.128",  # cache savings
        "5. Quality", "35.7%",  # 5/14
        "2026-11-02", "2026-11-05",  # days
        "local/mystery-model", "RateLimitError",
    ):
        assert figure in text, figure


def test_markup_and_control_characters_in_data_are_printed_not_interpreted(tmp_path, config):
    rows = [
        _row("m1", T0, session="[b]s[/b]", task_type="[red]x[/red]", tier="tier1", served_model="[i]m[/i]",
             input_tokens=10, cost_usd=None, unpriced=True, prompt_hash="q"),
        _row("m2", T0 + 1, task_type="bad\x1b[31mtype", tier="tier1", served_model=HAIKU, status="error",
             error_class="[link=http://example.invalid]E[/link]", input_tokens=10, cost_usd=1e-5),
    ]
    with _ledger(tmp_path / "l.db", rows) as led:
        for session in (None, "[b]s[/b]"):
            r = _report(led, config, session=session)
            for width in (80, 120):
                out = io.StringIO()
                render_report(r, Console(file=out, width=width, no_color=True))
                text = out.getvalue()
                assert "[red]x[/red]" in text
                assert "[i]m[/i]" in text
                if session:
                    assert "session [b]s[/b]" in text
                else:
                    assert "[link=http://example" in text  # cut to the column at 80
                    assert "\x1b" not in text and "bad\\x1b[31mtype" in text  # shown inert (fmt.inert)


def test_csv_is_long_format_and_parses(ledger, config):
    r = _report(ledger, config)
    rows = list(csv.reader(io.StringIO(report_to_csv(r))))
    assert rows[0] == list(CSV_HEADER) == ["section", "key", "metric", "value"]
    assert all(len(row) == 4 for row in rows)
    index = {(s, k, m): v for s, k, m, v in rows[1:]}
    assert len(index) == len(rows) - 1  # (section, key, metric) identifies a figure
    assert index[("totals", "", "calls")] == "16"
    assert float(index[("totals", "", "cost_usd")]) == approx(TOTAL_COST)
    assert index[("totals", "", "by_kind.classifier.calls")] == "1"
    assert index[("window", "", "since")] == "" and index[("window", "", "all")] == "true"
    assert index[("targets", "", "top_tier_share_target")] == "0.1;0.12"
    assert index[("tiers", "tier1", "calls")] == "8"
    assert index[("tiers", "(none)", "calls")] == "1"
    assert index[("task_types", "feature", "tier_mix.tier2")] == "3"
    assert index[("task_types", "(none)", "tier_mix.(none)")] == "1"
    assert float(index[("savings", "", "top_tier_usd")]) == approx(0.237125)
    assert float(index[("caching", "", "saved_usd")]) == approx(0.12795)
    assert index[("caching_models", OPUS, "cache_read_tokens")] == "20000"
    assert index[("quality", "", "total.retries")] == "1"
    assert index[("quality_tiers", "tier2", "overrides")] == "1"
    assert index[("quality_configs", "cfgA", "calls")] == "7"
    assert index[("days", "2026-11-04", "calls")] == "0"
    assert index[("models", "local/mystery-model", "priced")] == "false"
    assert index[("unpriced", "", "calls")] == "1"
    assert index[("unpriced_models", "local/mystery-model", "calls")] == "1"
    assert index[("errors", "", "by_status.interrupted")] == "1"
    assert index[("error_classes", "error/RateLimitError", "calls")] == "1"
    assert index[("error_classes", "interrupted/(none)", "calls")] == "1"
    assert index[("warnings", "1", "message")].startswith("1 call(s) have no known price")


def test_new_ledgers_carry_the_report_index(tmp_path):
    """The ledger's migrations should create REPORT_INDEX_SQL (db.py owns the schema)."""
    with Ledger(tmp_path / "fresh.db"):
        pass
    raw = sqlite3.connect(tmp_path / "fresh.db")
    row = raw.execute("SELECT sql FROM sqlite_master WHERE type = 'index' AND name = ?", (REPORT_INDEX_NAME,)).fetchone()
    raw.close()
    if row is None:
        pytest.skip(f"{REPORT_INDEX_NAME} is not created by the ledger migrations yet (tiercli.report.REPORT_INDEX_SQL)")

    def columns(sql):
        return " ".join(sql.split("(", 1)[1].rsplit(")", 1)[0].split())

    assert columns(row[0]) == columns(REPORT_INDEX_SQL)


def test_tier_run_attempts_are_summarised_not_counted_as_calls(tmp_path, config):
    """A `tier run` task: a failed tier1 attempt (2 calls) then a passing tier2 one (1 call). The
    attempt rows (kind run) summarise calls already counted: the totals hold the 3 calls only."""
    import json

    from tiercli.ledger import Ledger
    from tiercli.report import build_report

    rows = []
    for n, (tier, status, calls, cost) in enumerate((("tier1", "error", 2, 0.002), ("tier2", "ok", 1, 0.01)), start=1):
        session = f"run-t1-{n}"
        rows.append({"id": f"run{n}", "started_at": T0 + n * 100, "kind": "run", "source": "run", "session": session,
                     "task_id": "t1", "tier": tier, "status": status, "cost_usd": None,
                     "error_class": None if status == "ok" else "CheckFailed", "check_passed": status == "ok",
                     "meta_json": json.dumps({"run": {"calls": calls}})})
        for c in range(calls):
            rows.append({"id": f"c{n}{c}", "started_at": T0 + n * 100 + c + 1, "kind": "main", "source": "run",
                         "session": session, "task_id": "t1", "tier": tier, "served_tier": tier, "status": "ok",
                         "served_model": HAIKU, "input_tokens": 10, "output_tokens": 1, "cost_usd": cost / calls})
    with Ledger(tmp_path / "l.db") as ledger:
        for row in rows:
            ledger.upsert_call(row)
        data = build_report(ledger, config, since=None, until=None, session=None)
    assert data["totals"]["calls"] == 3
    assert data["totals"]["cost_usd"] == pytest.approx(0.012)
    runs = data["runs"]
    assert runs["tasks"]["tasks"] == 1 and runs["tasks"]["resolved"] == 1
    assert runs["tasks"]["cost_per_task_usd"] == pytest.approx(0.012)
    assert runs["by_start_tier"]["tier1"]["resolved_rate"] == 1.0
    assert runs["attempts_by_tier"]["tier1"]["outcomes"] == {"CheckFailed": 1}
