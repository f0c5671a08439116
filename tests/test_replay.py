"""`tier replay`: dry replay on a real SQLite ledger (figures worked out by hand), Claude Code logs
replayed without importing, live replay through the fake provider, and the CLI's edges."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from fakeprovider import Reply
from tiercli import replay as core
from tiercli import tokens
from tiercli.classify import run_local
from tiercli.cli import app
from tiercli.config import load
from tiercli.ledger import Ledger

runner = CliRunner()
ROOT = Path(__file__).resolve().parent.parent
CC_FIXTURE = ROOT / "tests" / "data" / "claude_code"
MTOK = 1_000_000

# Prices in the test config, dollars per Mtok. Cache reads default to 0.1x input, 5-minute writes
# to 1.25x, 1-hour writes to 2x (tiercli.pricing.PriceBook's rules for config prices).
HAIKU = dict(input=1, output=5, cache_read=0.1, cache_write=1.25, cache_write_1h=2)
SONNET = dict(input=3, output=15, cache_read=0.3, cache_write=3.75, cache_write_1h=6)
GPT4O = dict(input=2, output=8, cache_read=0.5, cache_write=2, cache_write_1h=2)

CONFIG = """
model_list:
  - model_name: tier1
    litellm_params: {model: anthropic/claude-haiku-4-5}
  - model_name: tier2
    litellm_params: {model: anthropic/claude-sonnet-4-5}
  - model_name: tier3
    litellm_params: {model: openai/gpt-4o}
routing: {tiers: [tier1, tier2, tier3], default_tier: tier2, classifier: local}
prices:
  claude-haiku-4-5: {input: 1, output: 5}
  claude-sonnet-4-5: {input: 3, output: 15}
  gpt-4o: {input: 2, output: 8, cache_read: 0.5, cache_write: 2, cache_write_1h: 2}
"""

RECOUNT_TEXT = "Refactor the architecture of the ingestion pipeline; für Überprüfung: naïve café résumé 12345678"
T0 = 1_700_000_000.0


def cost(p, inp=0, read=0, write=0, w1h=0, out=0):
    return (inp * p["input"] + read * p["cache_read"] + (write - w1h) * p["cache_write"]
            + w1h * p["cache_write_1h"] + out * p["output"]) / MTOK


def call(id, **kw):
    row = {"id": id, "started_at": T0 + len(id), "kind": "main", "source": "tier", "status": "ok", "session": "s1",
           "input_tokens": 0, "cache_read_tokens": 0, "cache_write_tokens": 0, "cache_write_1h_tokens": 0,
           "output_tokens": 0}
    row.update(kw)
    return row


def ledger_rows():
    """The recorded history; `old` = every call's cost as recorded."""
    return [
        # a: search on tier2 -> tier1 under the new config
        call("a", task_type="search", tier="tier2", served_model="anthropic/claude-sonnet-4-5",
             input_tokens=1000, output_tokens=200, cost_usd=cost(SONNET, 1000, out=200), prompt_text="where is main?"),
        # b: bug_fix stays on tier2 (same model): unchanged
        call("b", task_type="bug_fix", tier="tier2", served_model="anthropic/claude-sonnet-4-5", input_tokens=500,
             cache_read_tokens=10_000, cache_write_tokens=2000, output_tokens=300,
             cost_usd=cost(SONNET, 500, 10_000, 2000, 0, 300)),
        # c: an imported Claude Code call: no task type, classified from its request text; its old tier
        #    is inferred from the model (sonnet-4-5 without the date = tier2's model)
        call("c", kind="import", source="claude-code", served_model="claude-sonnet-4-5-20250929",
             requested_model="claude-sonnet-4-5-20250929", prompt_text="add a docstring to parse_args",
             input_tokens=10, cache_read_tokens=50_000, cache_write_tokens=5000, cache_write_1h_tokens=1000,
             output_tokens=800, cost_usd=0.05, session="cc-1"),
        # d: recorded on a model nobody can price: before is unpriced (named), after is priced
        call("d", task_type="feature", tier="tier2", served_model="acme/mystery-1", input_tokens=100,
             output_tokens=100, cost_usd=None, unpriced=True),
        # e: opus (anthropic tokenizer) -> gpt-4o (o200k): input recounted from the stored text
        call("e", task_type="architecture", tier="tier3", served_model="anthropic/claude-opus-4-5",
             input_tokens=2000, output_tokens=100, cost_usd=0.0125, prompt_text=RECOUNT_TEXT),
        # f: the same family change but no text: counts kept, and counted as not recounted
        call("f", task_type="algorithm", tier="tier3", served_model="anthropic/claude-opus-4-5",
             input_tokens=1000, output_tokens=50, cost_usd=0.00625),
        # g: neither task type nor prompt: default tier (tier2)
        call("g", tier="tier1", served_model="anthropic/claude-haiku-4-5", input_tokens=100, output_tokens=10,
             cost_usd=cost(HAIKU, 100, out=10)),
        # overhead, counted but not replayed
        call("h-classifier", kind="classifier", tier="tier1", served_model="anthropic/claude-haiku-4-5",
             input_tokens=50, output_tokens=2, cost_usd=0.00006),
        call("i-compaction", kind="compaction", tier="tier2", served_model="anthropic/claude-sonnet-4-5",
             input_tokens=5000, output_tokens=500, cost_usd=0.0225),
    ]


@pytest.fixture
def setup(tmp_path):
    cfg = tmp_path / "new.yaml"
    cfg.write_text(CONFIG)
    db = tmp_path / "ledger.db"
    with Ledger(db) as ledger:
        for row in ledger_rows():
            ledger.upsert_call(row)
    return cfg, db


def tier(*args):
    return runner.invoke(app, [str(a) for a in args])


def expected():
    """Every call's before and after, by hand."""
    assert run_local("add a docstring to parse_args").task_type == "docstring"  # precondition: -> tier1
    ratio = tokens.count(RECOUNT_TEXT, "gpt-4o") / tokens.count(RECOUNT_TEXT, "claude-opus-4-5")
    assert ratio != 1  # precondition: the two tokenizers disagree on this text
    e_input = int(2000 * ratio + 0.5)
    return {
        #     before tier, before cost, after tier, after cost
        "a": ("tier2", cost(SONNET, 1000, out=200), "tier1", cost(HAIKU, 1000, out=200)),
        "b": ("tier2", cost(SONNET, 500, 10_000, 2000, 0, 300), "tier2", cost(SONNET, 500, 10_000, 2000, 0, 300)),
        # cache-aware: haiku's cache holds nothing of session cc-1, so the 50,000 tokens sonnet read are
        # written on haiku, at the 1-hour rate the session's recorded writes used
        "c": ("tier2", 0.05, "tier1", cost(HAIKU, 10, 0, 55_000, 51_000, 800)),
        "d": ("tier2", None, "tier2", cost(SONNET, 100, out=100)),
        "e": ("tier3", 0.0125, "tier3", cost(GPT4O, e_input, out=100)),
        "f": ("tier3", 0.00625, "tier3", cost(GPT4O, 1000, out=50)),
        "g": ("tier1", cost(HAIKU, 100, out=10), "tier2", cost(SONNET, 100, out=10)),
    }, e_input


def test_dry_replay_figures_equal_hand_computation(setup):
    cfg, db = setup
    result = tier("replay", "-c", cfg, "--db", db, "--json", "--top", "3")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    want, e_input = expected()
    assert data["mode"] == "dry" and data["calls"] == 7
    assert data["skipped"] == {"classifier": 1, "compaction": 1}
    before, after = data["before"], data["after"]
    assert before["cost_usd"] == pytest.approx(sum(v[1] for v in want.values() if v[1] is not None), abs=1e-9)
    assert after["cost_usd"] == pytest.approx(sum(v[3] for v in want.values()), abs=1e-9)
    assert before["unpriced"] == {"calls": 1, "models": {"acme/mystery-1": 1}}
    assert after["unpriced"]["calls"] == 0
    for side, i_tier, i_cost in ((before, 0, 1), (after, 2, 3)):
        for name in ("tier1", "tier2", "tier3"):
            members = [v for v in want.values() if v[i_tier] == name]
            got = side["tiers"].get(name, {"calls": 0, "cost_usd": 0.0})
            assert got["calls"] == len(members), (name, side)
            assert got["cost_usd"] == pytest.approx(sum(v[i_cost] for v in members if v[i_cost] is not None), abs=1e-9)
    assert after["tiers"]["tier1"]["share"] == pytest.approx(2 / 7)
    # per task type (the type the replay used: recorded, or the classifier's for the imported call)
    assert after["task_types"]["docstring"]["cost_usd"] == pytest.approx(want["c"][3], abs=1e-12)
    assert before["task_types"]["docstring"]["cost_usd"] == pytest.approx(0.05)
    assert before["task_types"]["(none)"]["calls"] == 1  # g
    # comparable: the calls priced both ways (all but d)
    comp = data["comparable"]
    assert comp["calls"] == 6
    assert comp["before_usd"] == pytest.approx(sum(v[1] for k, v in want.items() if k != "d"), abs=1e-9)
    assert comp["saved_usd"] == pytest.approx(comp["before_usd"] - comp["after_usd"], abs=1e-9)
    assert data["decisions"] == {"recorded": 5, "classified": 1, "no_prompt": 1, "static": 0, "side_call": 0,
                                 "distinct_prompts_classified": 1}
    # without the cache simulation c would read its 50,000 tokens on haiku as sonnet did: the penalty
    warm_c = cost(HAIKU, 10, 50_000, 5000, 1000, 800)
    assert comp["after_warm_usd"] == pytest.approx(comp["after_usd"] - want["c"][3] + warm_c, abs=1e-12)
    assert data["cache"]["switch_penalty_usd"] == pytest.approx(want["c"][3] - warm_c, abs=1e-12)
    assert data["cache"]["penalty_calls"] == 1 and data["cache"]["reads_rewritten_tokens"] == 50_000
    # e is recounted; f (opus -> gpt-4o) and d (acme's cl100k guess -> sonnet) have no text: kept
    assert data["tokens"]["recounted_calls"] == 1 and data["tokens"]["not_recounted_calls"] == 2
    # changed: a (tier), c (tier), d (model), e and f (model), g (tier); b is not
    assert data["changed_calls"] == 6
    diffs = {k: abs(v[3] - v[1]) for k, v in want.items() if k != "b" and v[1] is not None}
    top3 = sorted(diffs, key=lambda k: -diffs[k])[:3]
    assert [c["id"] for c in data["changed"]] == top3
    by_id = {c["id"]: c for c in data["changed"]}
    if "e" in by_id:
        assert by_id["e"]["input_tokens_after"] == e_input and by_id["e"]["recounted"]


def test_dry_replay_core_keeps_recount_and_unpriced_details(setup):
    cfg, db = setup
    loaded = load(cfg)
    with Ledger(db) as ledger:
        rows, skipped = core.select_ledger(ledger)
    result = core.dry_replay(loaded, rows, core.Selection("ledger", skipped=skipped), top=100)
    want, e_input = expected()
    calls = {c.id: c for c in result.changed}
    assert set(calls) == {"a", "c", "d", "e", "f", "g"}
    for k, c in calls.items():
        assert (c.old_tier, c.new_tier) == (want[k][0], want[k][2])
        assert c.new_cost_usd == pytest.approx(want[k][3], abs=1e-12)
        assert c.old_cost_usd == (pytest.approx(want[k][1]) if want[k][1] is not None else None)
    assert calls["d"].diff_usd is None  # unpriced: never $0
    assert result.changed[-1].id == "d"  # calls without a difference sort last
    assert calls["e"].input_after == e_input and calls["f"].input_after == 1000
    assert any("not counted as $0: acme/mystery-1" in n for n in result.notes)
    assert any("no stored prompt text" in n for n in result.notes)


def test_unpriced_new_model_is_counted_and_named(setup, tmp_path):
    _, db = setup
    cfg = tmp_path / "unpriced.yaml"
    cfg.write_text(CONFIG.replace("anthropic/claude-haiku-4-5", "acme/cheap-unknown"))
    data = json.loads(tier("replay", "-c", cfg, "--db", db, "--json").stdout)
    want, _ = expected()
    to_tier1 = [k for k, v in want.items() if v[2] == "tier1"]
    assert data["after"]["unpriced"] == {"calls": len(to_tier1), "models": {"acme/cheap-unknown": len(to_tier1)}}
    assert data["after"]["tiers"]["tier1"] == {"calls": 2, "share": pytest.approx(2 / 7), "cost_usd": 0.0, "unpriced": 2}
    assert data["after"]["cost_usd"] == pytest.approx(sum(v[3] for v in want.values() if v[2] != "tier1"), abs=1e-9)
    assert data["comparable"]["calls"] == 7 - 2 - 1


def test_session_and_since_select(setup):
    cfg, db = setup
    data = json.loads(tier("replay", "-c", cfg, "--db", db, "--json", "--session", "cc-1").stdout)
    assert data["calls"] == 1 and data["changed"][0]["id"] == "c"
    # T0 = 2023-11-14T22:13:20Z; the one-letter calls start at T0 + 1 s, the two overhead rows at T0 + 12 s
    data = json.loads(tier("replay", "-c", cfg, "--db", db, "--json", "--since", "2023-11-14T22:13:20Z").stdout)
    assert data["calls"] == 7
    data = json.loads(tier("replay", "-c", cfg, "--db", db, "--json", "--since", "2023-11-14T22:13:22Z").stdout)
    assert data["calls"] == 0 and "only 1 classifier, 1 compaction call(s)" in data["message"]
    data = json.loads(tier("replay", "-c", cfg, "--db", db, "--json", "--since", "2030-01-01").stdout)
    assert data["calls"] == 0 and data["before"]["cost_usd"] == 0 and "no calls to replay" in data["message"]


def test_empty_selection_is_a_clear_message_and_exit_0(setup, tmp_path):
    cfg, db = setup
    result = tier("replay", "-c", cfg, "--db", db, "--session", "nope")
    assert result.exit_code == 0 and "no calls to replay" in result.stdout
    result = tier("replay", "-c", cfg, "--db", tmp_path / "none.db")
    assert result.exit_code == 0 and "no calls to replay" in result.stdout
    assert not (tmp_path / "none.db").exists()


def test_terminal_output_shows_costs_tiers_and_changed_calls(setup):
    cfg, db = setup
    result = tier("replay", "-c", cfg, "--db", db)
    assert result.exit_code == 0, result.output
    out = result.stdout
    for needle in ("before (as recorded)", "after, cache-aware", "Tiers", "Task types", "Changed calls: 6",
                   "acme/mystery-1", "not replayed: 1 classifier, 1 compaction"):
        assert needle in out, needle


@pytest.mark.parametrize("args, code, needle", [
    (["--llm-classifier"], 2, "needs --live"),
    (["--yes"], 2, "go with --live"),
    (["--classifier", "magic"], 2, "unknown --classifier"),
    (["--all", "--session", "s1"], 2, "--all"),
    (["--map", "a=tier1"], 2, "go with --outcomes"),
    (["--since", "yesterday-ish"], 2, "cannot read the time"),
    (["--claude-code", "/nonexistent/path/x"], 4, None),
])
def test_bad_options(setup, args, code, needle):
    cfg, db = setup
    result = tier("replay", "-c", cfg, "--db", db, *args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith("tier: error: ") and len(result.stderr.strip().splitlines()) == 1
    if needle:
        assert needle in result.stderr


def test_static_config_routes_untyped_calls_to_default_unless_classifier_local(setup, tmp_path):
    _, db = setup
    cfg = tmp_path / "static.yaml"
    cfg.write_text(CONFIG.replace("classifier: local", "classifier: static"))
    data = json.loads(tier("replay", "-c", cfg, "--db", db, "--json", "--top", "100").stdout)
    assert data["decisions"]["static"] == 1
    # c (imported, on tier2's model) stays on the default tier2: unchanged; only a goes to tier1
    assert "c" not in {c["id"] for c in data["changed"]} and data["after"]["tiers"]["tier1"]["calls"] == 1
    assert any("classifier is static" in n for n in data["notes"])
    data = json.loads(tier("replay", "-c", cfg, "--db", db, "--json", "--top", "100", "--classifier", "local").stdout)
    assert {c["id"]: c["new_tier"] for c in data["changed"]}["c"] == "tier1"


# -- Claude Code logs, replayed without importing ----------------------------------------------------
def test_claude_code_logs_replay_without_touching_the_ledger(tmp_path, tier_home):
    from tiercli.importers import parse_claude_code
    from tiercli.pricing import PriceBook

    cfg = ROOT / "sample_configs" / "anthropic.yaml"
    result = tier("replay", "-c", cfg, "--claude-code", CC_FIXTURE, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows, stats = parse_claude_code([CC_FIXTURE], PriceBook(load(cfg).config.prices))
    assert data["calls"] == len(rows) == stats.calls > 0
    assert data["before"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] or 0 for r in rows), abs=1e-9)
    assert data["selection"]["source"] == "claude-code"
    assert set(data["after"]["tiers"]) <= {"tier1", "tier2", "tier3"}
    assert not any(tier_home.rglob("*.db")) if tier_home.exists() else True


# -- the dry CLI never imports litellm ----------------------------------------------------------------
def _imported(stderr: str) -> set[str]:
    return {line.rsplit("|", 1)[1].strip() for line in stderr.splitlines() if line.startswith("import time:") and "|" in line}


@pytest.mark.slow
def test_dry_replay_never_imports_litellm(setup, tmp_path):
    cfg, db = setup
    table = tmp_path / "t.csv"
    table.write_text("task_id,model,quality,cost_usd\n1,a,1,0.1\n1,b,0,0.01\n")
    env = dict(os.environ)
    for args in (["replay", "-c", cfg, "--db", db],
                 ["replay", "-c", cfg, "--claude-code", CC_FIXTURE, "--json"],
                 ["replay", "-c", cfg, "--outcomes", table, "--map", "a=tier3", "--map", "b=tier1"]):
        proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tiercli", *map(str, args)], env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-2000:]
        modules = _imported(proc.stderr)
        assert "tiercli.replay" in modules
        assert not any(m == "litellm" or m.startswith("litellm.") for m in modules), args


# -- live replay through the fake provider -------------------------------------------------------------
def live_config(fake, tmp_path):
    path = tmp_path / "live.yaml"
    path.write_text(f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_base: "{fake.anthropic_base}", api_key: os.environ/ANTHROPIC_API_KEY}}
  - model_name: tier2
    litellm_params: {{model: anthropic/claude-sonnet-4-5, api_base: "{fake.anthropic_base}", api_key: os.environ/ANTHROPIC_API_KEY}}
  - model_name: tier3
    litellm_params: {{model: anthropic/claude-opus-4-5, api_base: "{fake.anthropic_base}", api_key: os.environ/ANTHROPIC_API_KEY}}
router_settings: {{num_retries: 0}}
routing: {{classifier: local}}
""")
    return path


def live_ledger(db):
    rows = [  # oldest first: search, arch, fix, noprompt
        call("orig-search", started_at=T0 + 0, task_type="search", tier="tier2", served_model="anthropic/claude-sonnet-4-5",
             prompt_text="where is the retry policy configured?", response_text="It is in config/retry.py, line 12.",
             input_tokens=40, output_tokens=20, cost_usd=cost(SONNET, 40, out=20)),
        call("orig-arch", started_at=T0 + 1, task_type="architecture", tier="tier2", served_model="anthropic/claude-sonnet-4-5",
             prompt_text="design the plugin architecture", response_text="Plugins register through entry points.",
             input_tokens=30, output_tokens=50, cost_usd=cost(SONNET, 30, out=50)),
        call("orig-fix", started_at=T0 + 2, task_type="bug_fix", tier="tier2", served_model="anthropic/claude-sonnet-4-5",
             prompt_text="fix the off-by-one in paginate()", response_text="Use range(0, n, size).",
             input_tokens=30, output_tokens=30, cost_usd=cost(SONNET, 30, out=30)),
        call("orig-noprompt", started_at=T0 + 3, task_type="search", tier="tier2", served_model="anthropic/claude-sonnet-4-5",
             input_tokens=30, output_tokens=30, cost_usd=cost(SONNET, 30, out=30)),
    ]
    with Ledger(db) as ledger:
        for r in rows:
            ledger.upsert_call(r)


def db_rows(db):
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at, id")]
    finally:
        conn.close()


@pytest.fixture
def anthropic_key(monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789abcdef")


def test_live_replay_records_linked_rows_side_by_side(fake_provider, tmp_path, anthropic_key):
    db = tmp_path / "ledger.db"
    live_ledger(db)
    cfg = live_config(fake_provider, tmp_path)
    for model in ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5"):
        fake_provider.set_default(model, Reply(text=f"replayed by {model}", output_tokens=7))
    result = tier("replay", "--live", "--yes", "-c", cfg, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["mode"] == "live" and data["executed"] == 3 and data["no_prompt"] == 1 and data["failed"] == 0
    assert sorted(r.model for r in fake_provider.requests) == ["claude-haiku-4-5", "claude-opus-4-5", "claude-sonnet-4-5"]
    replays = [r for r in db_rows(db) if r["kind"] == "replay"]
    assert sorted(r["parent_id"] for r in replays) == ["orig-arch", "orig-fix", "orig-search"]
    by_parent = {r["parent_id"]: r for r in replays}
    assert by_parent["orig-search"]["tier"] == "tier1" and by_parent["orig-arch"]["tier"] == "tier3"
    assert all(r["status"] == "ok" and r["output_tokens"] == 7 for r in replays)
    calls = {c["id"]: c for c in data["calls"]}
    s = calls["orig-search"]
    assert (s["old_tier"], s["new_tier"]) == ("tier2", "tier1")
    assert s["old_answer"] == "It is in config/retry.py, line 12."
    assert s["new_answer"] == "replayed by claude-haiku-4-5"
    assert s["new_cost_usd"] == pytest.approx(by_parent["orig-search"]["cost_usd"])
    assert data["after"]["cost_usd"] == pytest.approx(sum(r["cost_usd"] for r in replays))
    assert data["before"]["cost_usd"] == pytest.approx(sum(calls[k]["old_cost_usd"] for k in by_parent))
    assert {c["id"] for c in data["changed"]} == {"orig-search", "orig-arch"}
    # the terminal view: old and new side by side
    fake_provider.reset()
    text = tier("replay", "--live", "--yes", "-c", cfg, "--db", db, "--session", "s1").stdout
    assert "Old and new, side by side" in text and "It is in config/retry.py" in text


def test_live_replay_refuses_above_max_cost_before_calling(fake_provider, tmp_path, anthropic_key):
    db = tmp_path / "ledger.db"
    live_ledger(db)
    cfg = live_config(fake_provider, tmp_path)
    result = tier("replay", "--live", "--yes", "--max-cost", "0.0000001", "-c", cfg, "--db", db)
    assert result.exit_code == 7, result.output
    assert "above --max-cost" in result.stderr
    assert fake_provider.requests == []
    assert not [r for r in db_rows(db) if r["kind"] == "replay"]


def test_live_replay_stops_when_the_running_total_would_cross_max_cost(fake_provider, tmp_path, anthropic_key):
    db = tmp_path / "ledger.db"
    live_ledger(db)
    cfg = live_config(fake_provider, tmp_path)
    # the first call answers far longer than its estimate: 1M output tokens on haiku = $5
    fake_provider.set_default("claude-haiku-4-5", Reply(text="long", output_tokens=1_000_000))
    fake_provider.set_default("*", Reply(text="short", output_tokens=5))
    result = tier("replay", "--live", "--yes", "--max-cost", "1", "-c", cfg, "--db", db, "--json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    order = [c["id"] for c in data["calls"]]
    assert order[0] == "orig-search"  # oldest first: the expensive one runs first
    assert data["executed"] == 1 and data["not_run"] == 2
    assert "past --max-cost" in data["stopped"]
    assert len(fake_provider.requests) == 1
    assert data["spent_usd"] == pytest.approx(5.0, rel=0.01)


def test_live_needs_yes_off_a_terminal_and_refuses_claude_code(fake_provider, tmp_path, anthropic_key):
    db = tmp_path / "ledger.db"
    live_ledger(db)
    cfg = live_config(fake_provider, tmp_path)
    result = tier("replay", "--live", "-c", cfg, "--db", db)
    assert result.exit_code == 2 and "--yes" in result.stderr
    result = tier("replay", "--live", "--yes", "-c", cfg, "--claude-code", CC_FIXTURE)
    assert result.exit_code == 2 and "import the logs first" in result.stderr
    assert fake_provider.requests == []


def test_recorded_task_types_the_config_does_not_map_go_by_label_then_default(tmp_path):
    path = tmp_path / "narrow.yaml"
    path.write_text(CONFIG.replace("classifier: local}", "classifier: local, task_types: {bug_fix: tier3}}"))
    decider = core.Decider(load(path))
    assert decider.decide("bug_fix", None)[0].tier == "tier3"  # mapped: as `tier ask -t bug_fix`
    assert decider.decide("bug_fix", None)[0].source == "static"
    assert decider.decide("search", None)[0].tier == "tier1"  # unmapped: label LOW -> routing.labels
    decision, how = decider.decide("made_up_type", "whatever text")
    assert (decision.tier, how) == ("tier2", "recorded")  # no label either: the default tier
