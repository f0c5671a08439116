"""Replay by task, cache-aware: hand-computed sessions (warm and cold caches, 5-minute and 1-hour
TTLs, switches back and forth), side calls, and with_routing() for the report."""

from __future__ import annotations

import json

import pytest

from tiercli.config import load
from tiercli.replay import Selection, dry_replay, with_routing
from tiercli.replay.cache import PromptCaches

MTOK = 1_000_000
HAIKU = dict(input=1, output=5, cache_read=0.1, cache_write=1.25, cache_write_1h=2)
SONNET = dict(input=3, output=15, cache_read=0.3, cache_write=3.75, cache_write_1h=6)
OPUS = dict(input=5, output=25, cache_read=0.5, cache_write=6.25, cache_write_1h=10)
CONFIG = """
model_list:
  - model_name: tier1
    litellm_params: {model: anthropic/claude-haiku-4-5}
  - model_name: tier2
    litellm_params: {model: anthropic/claude-sonnet-4-5}
  - model_name: tier3
    litellm_params: {model: anthropic/claude-opus-4-5}
routing: {tiers: [tier1, tier2, tier3], default_tier: tier2, classifier: local}
prices:
  claude-haiku-4-5: {input: 1, output: 5}
  claude-sonnet-4-5: {input: 3, output: 15}
  claude-opus-4-5: {input: 5, output: 25}
"""
T0 = 1_800_000_000.0


def cost(p, inp=0, read=0, write=0, w1h=0, out=0):
    return (inp * p["input"] + read * p["cache_read"] + (write - w1h) * p["cache_write"]
            + w1h * p["cache_write_1h"] + out * p["output"]) / MTOK


@pytest.fixture
def loaded(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(CONFIG)
    return load(path)


def row(n, at, task, task_type, *, read=0, write=0, w1h=0, inp=10, out=100, rule="tool_step", session="s",
        model="claude-opus-4-5-20251101"):
    return {"id": f"c{n}", "started_at": T0 + at, "session": session, "kind": "import", "source": "claude-code",
            "task_id": task, "task_type": task_type, "served_model": model, "input_tokens": inp,
            "cache_read_tokens": read, "cache_write_tokens": write, "cache_write_1h_tokens": w1h, "output_tokens": out,
            "cost_usd": cost(OPUS, inp, read, write, w1h, out), "prompt_text": None,
            "meta_json": json.dumps({"task_rule": rule})}


def test_cache_simulator_warm_cold_and_both_ttls():
    c = PromptCaches()
    # stays on its recorded model: read as recorded, even with no history in the window
    assert c.call("s", "opus", 0, 1000, 200, 0, "opus") == (1000, 200, 0)
    # moved to sonnet: cold, the 1,200 tokens opus read are written (5-minute TTL recorded)
    assert c.call("s", "sonnet", 10, 1200, 100, 0, "opus") == (0, 1300, 0)
    # sonnet again 299 s later: warm for the 1,300-token prefix it now holds; 100 more are written
    assert c.call("s", "sonnet", 309, 1400, 50, 0, "opus") == (1300, 150, 0)
    # 301 s after that: the 5-minute cache expired
    assert c.call("s", "sonnet", 610, 1450, 0, 0, "opus") == (0, 1450, 0)
    # back on opus: opus lost the writes moved to sonnet, so its cache is simulated too (held 1,200 at
    # t=0, expired by t=700): everything is written again
    assert c.call("s", "opus", 700, 1450, 0, 0, "opus") == (0, 1450, 0)
    # 1-hour TTL: a stream whose recorded writes are 1-hour keeps the moved cache for an hour, and the
    # rewritten reads are 1-hour writes
    h = PromptCaches()
    assert h.call("t", "haiku", 0, 5000, 1000, 1000, "opus") == (0, 6000, 6000)
    assert h.call("t", "haiku", 3000, 6000, 0, 0, "opus") == (6000, 0, 0)  # 50 min later: warm
    assert h.call("t", "haiku", 6601, 6000, 0, 0, "opus") == (0, 6000, 6000)  # 60 min 1 s later: cold


def test_tasks_route_as_a_unit_and_pay_the_switch(loaded):
    # task A: a docstring task (tier1 = haiku), three steps; task B: architecture (tier3 = opus, as recorded)
    rows = [
        row(1, 0, "A", "docstring", read=0, write=4000, rule="new_task"),
        row(2, 30, "A", "docstring", read=4000, write=500),
        row(3, 60, "A", "docstring", read=4500, write=500),
        row(4, 120, "B", "architecture", read=5000, write=800, rule="new_task"),
        row(5, 200, "B", "architecture", read=5800, write=300),
    ]
    r = dry_replay(loaded, rows, Selection("rows"), top=10)
    assert r.tasks == 2 and r.task_decided == {"recorded": 2}
    assert [b for b in ("tier1", "tier3") if r.after.tiers[b].calls] == ["tier1", "tier3"]
    assert r.after.tiers["tier1"].calls == 3 and r.after.tiers["tier3"].calls == 2  # every step on its task's tier
    # by hand: A on haiku pays its recorded pattern (haiku's own cache builds exactly like opus's did)
    a = cost(HAIKU, 10, 0, 4000, 0, 100) + cost(HAIKU, 10, 4000, 500, 0, 100) + cost(HAIKU, 10, 4500, 500, 0, 100)
    # B goes back to opus, whose cache lost A's writes: c4's 5,000 read is written (opus held nothing
    # simulated: c1 was recorded on opus but replayed on haiku); c5 then reads the 5,800 c4 left
    b = cost(OPUS, 10, 0, 5800, 0, 100) + cost(OPUS, 10, 5800, 300, 0, 100)
    warm = a + cost(OPUS, 10, 5000, 800, 0, 100) + cost(OPUS, 10, 5800, 300, 0, 100)
    assert r.comparable_after_usd == pytest.approx(a + b, abs=1e-12)
    assert r.comparable_after_warm_usd == pytest.approx(warm, abs=1e-12)
    assert r.switch_penalty_usd == pytest.approx(a + b - warm, abs=1e-12)
    assert r.penalty_calls == 1 and r.penalty_tokens == 5000
    assert r.rules == {"new_task": 2, "tool_step": 3}
    assert r.top_tier_share == pytest.approx(2 / 5)


def test_everything_kept_on_the_recorded_model_costs_what_it_cost(loaded):
    rows = [row(1, 0, "B", "architecture", read=3000, write=800), row(2, 500, "B", "architecture", read=3800, write=0)]
    r = dry_replay(loaded, rows, Selection("rows"))
    assert r.switch_penalty_usd == 0 and r.penalty_calls == 0
    assert r.comparable_after_usd == pytest.approx(r.comparable_before_usd, abs=1e-15)
    # a dated id of the same model at the same price is a rename, not a change
    assert r.changed_calls == 0 and r.renamed_calls == 2


def test_side_calls_go_to_the_cheapest_tier_with_their_own_cache(loaded):
    rows = [row(1, 0, "B", "architecture", read=3000, write=800, rule="new_task"),
            row(2, 5, "S", None, read=0, write=0, rule="side_call"),
            row(3, 10, "B", "architecture", read=3800, write=100)]
    r = dry_replay(loaded, rows, Selection("rows"))
    assert r.task_decided == {"recorded": 1, "side_call": 1}
    assert r.after.tiers["tier1"].calls == 1 and r.decided["side_call"] == 1
    assert r.switch_penalty_usd == 0  # the side call does not touch the main conversation's cache


def test_with_routing_summary_for_the_report(loaded):
    rows = [row(3, 60, "A", "docstring", read=4500, write=500), row(1, 0, "A", "docstring", write=4000, rule="new_task"),
            row(2, 30, "A", "docstring", read=4000, write=500)]
    s = with_routing(loaded, rows)  # any order: sorted by time inside
    assert (s.calls, s.tasks, s.comparable_calls) == (3, 1, 3)
    assert s.tiers == {"tier1": 3} and s.top_tier == "tier3" and s.top_tier_share == 0
    assert s.before_usd == pytest.approx(sum(r["cost_usd"] for r in rows))
    assert s.after_usd == pytest.approx(cost(HAIKU, 10, 0, 4000, 0, 100) + cost(HAIKU, 10, 4000, 500, 0, 100)
                                        + cost(HAIKU, 10, 4500, 500, 0, 100))
    assert s.switch_penalty_usd == 0 and s.saved_usd == pytest.approx(s.before_usd - s.after_usd)


def test_switch_pays_only_when_the_saving_beats_the_rebuild(loaded):
    from tiercli.replay import Pricer
    from tiercli.replay.cache import switch_pays

    pricer = Pricer(loaded.config)
    opus, haiku = pricer.price("claude-opus-4-5"), pricer.price("claude-haiku-4-5")
    step = (10, 20_000, 500, 0, 200)  # a typical tool step: mostly cached prefix
    per_step = cost(OPUS, *step[:4], out=200) - cost(HAIKU, *step[:4], out=200)
    rebuild = 20_000 * (HAIKU["cache_write"] - HAIKU["cache_read"]) / MTOK
    pays, saving, cost_ = switch_pays(20_000, 1, step, opus, haiku)
    assert saving == pytest.approx(per_step) and cost_ == pytest.approx(rebuild)
    assert pays == (per_step > rebuild)
    assert switch_pays(20_000, 50, step, opus, haiku)[0]  # a long task left: the rebuild pays off
    assert not switch_pays(20_000, 0, step, opus, haiku)[0]  # the task is ending: stay
    assert not switch_pays(20_000, 10, step, haiku, opus)[0]  # moving up never saves
