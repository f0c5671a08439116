"""`tier replay --outcomes` policies beyond the defaults: cascades in any order and from any start
tier, start tier per task type, caps per tier, the config's run: section; column aliases; CSV.
Every figure of tests/data/replay/typed.csv is worked out by hand:

    task type   small(tier1)  mid(tier2)  big(tier3)      (resolved, cost_usd)
    a    easy   1 .01         1 .04       1 .10
    b    easy   0 .02         1 .05       1 .20
    c    hard   0 .01         0 .04       1 .50
    d    hard   0 .03         1 .06       0 .40
    e    hard   0 .01         0 .02       0 .90
"""

from __future__ import annotations

import csv
import io

import pytest

from outcomeshelp import DATA, MAP3, TYPED, maps, ok_json, policies, tier, write_config
from tiercli.config import load
from tiercli.replay_outcomes.evaluate import build_matrix
from tiercli.replay_outcomes.simulate import Spec, simulate
from tiercli.replay_outcomes.table import load_outcomes, parse_map, table_from_rows


@pytest.fixture
def cfg(tmp_path):
    return write_config(tmp_path / "c.yaml")


def judge(cfg, *args):
    data = ok_json("replay", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), *args)
    return data, policies(data)


def check(p, quality, cost, attempts=None, capped=0, shares=None):
    assert p["success_rate"] == pytest.approx(quality) and p["quality"] == pytest.approx(quality), p["name"]
    assert p["cost_usd"] == pytest.approx(cost), p["name"]
    assert p["capped_attempts"] == capped, p["name"]
    if attempts is not None:
        assert p["attempts"] == attempts, p["name"]
    if shares is not None:
        assert [p["tier_shares"][t] for t in ("tier1", "tier2", "tier3")] == pytest.approx(shares), p["name"]


def test_resolved_column_and_dimension_are_read(cfg):
    table = load_outcomes(TYPED)
    assert table.columns == {"quality": "resolved", "cost": "cost_usd", "task_type": "dimension"}
    assert table.groups == {"a": "easy", "b": "easy", "c": "hard", "d": "hard", "e": "hard"}
    data, _ = judge(cfg)
    assert data["task_types"] == {"hard": 3, "easy": 2}


def test_cascades_in_any_order_always_and_oracle(cfg):
    _, p = judge(cfg, "--policy", "always:tier1", "--policy", "always:tier2", "--policy", "always:tier3",
                 "--policy", "cascade", "--policy", "cascade:tier2,tier3", "--policy", "cascade:tier3,tier1",
                 "--policy", "oracle")
    assert list(p) == ["always:tier1", "always:tier2", "always:tier3", "cascade", "cascade:tier2,tier3",
                       "cascade:tier3,tier1", "oracle"]
    check(p["always:tier1"], 1 / 5, 0.08, 5, shares=(1, 0, 0))
    check(p["always:tier2"], 3 / 5, 0.04 + 0.05 + 0.04 + 0.06 + 0.02)
    check(p["always:tier3"], 3 / 5, 2.10)
    # a .01 | b .02+.05 | c .01+.04+.50 | d .03+.06 | e .01+.02+.90 (fails at the top)
    check(p["cascade"], 4 / 5, 0.01 + 0.07 + 0.55 + 0.09 + 0.93, 1 + 2 + 3 + 2 + 3, shares=(1 / 5, 2 / 5, 2 / 5))
    # a .04 | b .05 | c .04+.50 | d .06 | e .02+.90
    check(p["cascade:tier2,tier3"], 4 / 5, 0.04 + 0.05 + 0.54 + 0.06 + 0.92, 1 + 1 + 2 + 1 + 2, shares=(0, 3 / 5, 2 / 5))
    # big first, then small: a .10 | b .20 | c .50 | d .40+.03 (fails) | e .90+.01 (fails)
    check(p["cascade:tier3,tier1"], 3 / 5, 0.10 + 0.20 + 0.50 + 0.43 + 0.91, 1 + 1 + 1 + 2 + 2, shares=(2 / 5, 0, 3 / 5))
    # a small, b mid, c big, d mid, e: nothing succeeds, the cheapest (small .01)
    check(p["oracle"], 4 / 5, 0.01 + 0.05 + 0.50 + 0.06 + 0.01)


def test_cap_on_the_top_tier_fails_the_attempt_at_the_cap(cfg):
    data, p = judge(cfg, "--policy", "cascade", "--policy", "always:tier3", "--policy", "oracle", "--cap", "tier3=0.45")
    assert data["caps"] == {"tier3": 0.45}
    # c: big costs .50 > .45: failed, charged .45; e: .90 -> .45. a .01 | b .07 | c .01+.04+.45 | d .09 | e .01+.02+.45
    check(p["cascade"], 3 / 5, 0.01 + 0.07 + 0.50 + 0.09 + 0.48, capped=2)
    # a .10 ok | b .20 ok | c .45 cut | d .40 (under the cap, fails on its own) | e .45 cut
    check(p["always:tier3"], 2 / 5, 0.10 + 0.20 + 0.45 + 0.40 + 0.45, capped=2)
    check(p["oracle"], 4 / 5, 0.63)  # the oracle is the uncapped reference
    assert any("counts as failed at the cap's cost" in n and "approximation" in n for n in data["notes"])


def test_one_cap_for_every_tier(cfg):
    _, p = judge(cfg, "--policy", "cascade", "--cap", "0.045")
    # mid over .045: b (.05), d (.06); every big attempt is over: all cut to .045
    # a .01 | b .02+.045+.045 | c .01+.04+.045 | d .03+.045+.045 | e .01+.02+.045: only a succeeds
    check(p["cascade"], 1 / 5, 0.01 + 0.11 + 0.095 + 0.12 + 0.075, capped=2 + 1 + 2 + 1)


def test_start_tier_per_task_type(cfg):
    data, p = judge(cfg, "--policy", "cascade", "--start", "hard=tier2")
    assert data["start"] == {"hard": "tier2"}
    # easy from tier1: a .01, b .07; hard from tier2: c .04+.50, d .06, e .02+.90
    check(p["cascade"], 4 / 5, 0.01 + 0.07 + 0.54 + 0.06 + 0.92, 1 + 2 + 2 + 1 + 2, shares=(1 / 5, 2 / 5, 2 / 5))


def test_the_config_run_section_is_a_policy(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "run: {tiers: [tier1, tier2, tier3], caps: {tier3: 0.45}, start: {hard: tier2}}\n")
    data, p = judge(cfg, "--policy", "run", "--policy", "oracle")
    # a .01 | b .07 | c .04+.45 (cut) | d .06 | e .02+.45 (cut)
    check(p["run"], 3 / 5, 0.01 + 0.07 + 0.49 + 0.06 + 0.47, capped=2)
    assert any("cap" in n for n in data["notes"])
    # --cap on the command line wins over run.caps
    _, p = judge(cfg, "--policy", "run", "--cap", "tier3=1")
    check(p["run"], 4 / 5, 0.01 + 0.07 + 0.54 + 0.06 + 0.92)


def test_run_cap_usd_caps_every_tier_as_tier_run_does(tmp_path):
    with_cap_usd = write_config(tmp_path / "a.yaml", "run: {cap_usd: 0.45, caps: {tier1: 0.5}}\n")
    plain = write_config(tmp_path / "b.yaml", "run: {caps: {tier1: 0.5}}\n")
    _, a = judge(with_cap_usd, "--policy", "run")
    _, b = judge(plain, "--policy", "run", "--cap", "tier2=0.45", "--cap", "tier3=0.45")
    same = ("quality", "success_rate", "cost_usd", "capped_attempts", "attempts")
    assert {k: a["run"].get(k) for k in same} == {k: b["run"].get(k) for k in same}  # --cap also caps the top-tier reference
    assert a["run"]["capped_attempts"]


def test_map_tier_equals_model_with_commas(cfg):
    a = ok_json("replay", "-c", cfg, "--outcomes", TYPED, "--map", "tier1=small,tier2=mid,tier3=big")
    b = ok_json("replay", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3))
    assert a["map"] == b["map"] == {"small": "tier1", "mid": "tier2", "big": "tier3"}
    assert a["policies"] == b["policies"]


def test_aliases_score_in_tok_out_tok_priced_by_the_config(cfg, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("task_id,model,score,in_tok,out_tok\n1,small,1,1000,100\n1,big,0.5,2000,300\n")
    data = ok_json("replay", "-c", cfg, "--outcomes", table, "--map", "small=tier1,big=tier3", "--policy", "always:tier3",
                   "--policy", "always:tier1")
    p = policies(data)
    assert data["table"]["columns"] == {"quality": "score", "input_tokens": "in_tok", "output_tokens": "out_tok"}
    assert p["always:tier1"]["cost_usd"] == pytest.approx((1000 * 1 + 100 * 5) / 1e6)  # haiku $1/$5
    assert p["always:tier3"]["cost_usd"] == pytest.approx((2000 * 2 + 300 * 8) / 1e6)  # gpt-4o $2/$8
    assert p["always:tier3"]["quality"] == 0.5 and p["always:tier3"]["success_rate"] == 0


@pytest.mark.parametrize("header", ["quality", "resolved", "score", "success", "correct"])
def test_every_quality_alias_in_long_and_wide_form(cfg, tmp_path, header):
    long = tmp_path / "long.jsonl"
    long.write_text(f'{{"task_id": "x", "model": "small", "{header}": true, "cost": 0.5}}\n'
                    f'{{"task_id": "x", "model": "big", "{header}": false, "cost": 2}}\n')
    p = policies(ok_json("replay", "-c", cfg, "--outcomes", long, "--map", "small=tier1,big=tier3"))
    check(p["cascade"], 1, 0.5)
    wide = tmp_path / "wide.csv"
    wide.write_text("task_id,category,small,big,small_cost,big_in_tok,big_out_tok\nx,easy,1,0,0.5,1000,0\n")
    data = ok_json("replay", "-c", cfg, "--outcomes", wide, "--map", "small=tier1,big=tier3")
    assert data["table"]["models"] == ["small", "big"] and data["task_types"] == {"easy": 1}
    assert policies(data)["always:tier3"]["cost_usd"] == pytest.approx(1000 * 2 / 1e6)


def test_simulation_agrees_with_the_cli_and_ledger_rows_plug_in(tmp_path):
    loaded = load(write_config(tmp_path / "c.yaml"))
    table = load_outcomes(TYPED)
    rows = [(t, table.groups[t], {"small": "tier1", "mid": "tier2", "big": "tier3"}[m], o.quality, o.cost_usd)
            for t in table.task_ids for m, o in table.outcomes[t].items()]
    from_rows = table_from_rows(rows)
    assert from_rows.groups == table.groups and from_rows.models == ["tier1", "tier2", "tier3"]
    a = build_matrix(loaded, table, parse_map(MAP3, table, ["tier1", "tier2", "tier3"])).matrix
    b = build_matrix(loaded, from_rows, parse_map(["tier1=tier1,tier2=tier2,tier3=tier3"], from_rows,
                                                    ["tier1", "tier2", "tier3"])).matrix
    assert (a.task_ids, a.groups, a.quality, a.cost) == (b.task_ids, b.groups, b.quality, b.cost)
    spec = Spec("cascade", (1, 2), (("easy", 2),), (None, None, 0.45))
    p = simulate(b, spec)
    # easy from tier3: a .10, b .20; hard from tier2: c .04+.45 cut, d .06, e .02+.45 cut
    assert p.successes == 3 and p.cost_usd == pytest.approx(0.10 + 0.20 + 0.49 + 0.06 + 0.47) and p.capped == 2


def test_csv_output_has_a_row_per_policy(cfg):
    result = tier("replay", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--csv", "--cap", "tier3=0.45")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert [r["policy"] for r in rows] == ["config", "always:tier1", "always:tier2", "always:tier3", "cascade", "oracle"]
    by = {r["policy"]: r for r in rows}
    assert float(by["cascade"]["cost_usd"]) == pytest.approx(1.15) and by["cascade"]["capped_attempts"] == "2"
    assert float(by["oracle"]["share_tier1"]) == pytest.approx(2 / 5)


def test_terminal_output_escapes_table_text(cfg, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("task_id,task_type,model,quality,cost_usd\n1,[red]x[/red],[b]small[/b],1,0.1\n"
                     "1,[red]x[/red],big,1,0.2\n")
    result = tier("replay", "-c", cfg, "--outcomes", table, "--map", "[b]small[/b]=tier1", "--map", "big=tier3",
                  "--start", "[red]x[/red]=tier3", "--cap", "tier3=0.15", "--policy", "cascade")
    assert result.exit_code == 0, result.output
    assert "[b]small[/b] = tier1" in result.stdout and "[red]x[/red] -> tier3" in result.stdout
    assert "caps per attempt: tier3 $0.15" in result.stdout and "approximation" in result.stdout


@pytest.mark.parametrize("args, code, needle", [
    (["--policy", "sometimes"], 2, "unknown policy"),
    (["--policy", "always"], 2, "always takes one tier"),
    (["--policy", "cascade:tier1,tier9"], 2, "tier 'tier9' has no table model"),
    (["--policy", "cascade:tier1,tier1"], 2, "appears twice"),
    (["--policy", "oracle", "--policy", "oracle"], 2, "given twice"),
    (["--cap", "tier3=-1"], 2, "must be a positive amount"),
    (["--cap", "tier3=lots"], 2, "not an amount in dollars"),
    (["--cap", "tier7=1"], 2, "unknown tier 'tier7'"),
    (["--start", "hard"], 2, "expected TASK_TYPE=TIER"),
    (["--start", "medium=tier2"], 2, "no task in the table has type 'medium'"),
    (["--policy", "cascade:tier2,tier3", "--start", "hard=tier1"], 2, "tier1 is not in the cascade tier2,tier3"),
    (["--by", "nothing"], 4, "no column 'nothing'"),
    (["--csv", "--json"], 2, "choose one"),
])
def test_bad_policy_options(cfg, args, code, needle):
    result = tier("replay", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), *args)
    assert result.exit_code == code, result.output
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_policy_options_need_outcomes(cfg):
    result = tier("replay", "-c", cfg, "--cap", "1")
    assert result.exit_code == 2 and "go with --outcomes" in result.stderr


def test_two_task_types_for_one_task_is_an_input_error(cfg, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("task_id,dimension,model,resolved,cost_usd\n1,a,small,1,0.1\n1,b,big,1,0.2\n")
    result = tier("replay", "-c", cfg, "--outcomes", table, "--map", "small=tier1,big=tier3")
    assert result.exit_code == 4 and "two task types" in result.stderr


def test_task_types_from_the_classifier(cfg):
    # tests/data/replay/tasks.jsonl: t1 docstring, t2 bug_fix, t3 architecture, t4 file_lookup; t5 no prompt
    data = ok_json("replay", "-c", cfg, "--outcomes", DATA / "outcomes_long.csv", "--tasks", DATA / "tasks.jsonl",
                   *maps(*MAP3), "--by", "classifier", "--start", "architecture=tier3", "--policy", "cascade")
    assert data["task_types"] == {"architecture": 1, "bug_fix": 1, "docstring": 1, "file_lookup": 1}
    # t3 (architecture) starts on big: .15 instead of .01+.04+.15; t1 .01 | t2 .02+.05 | t4 .01+.02 | t5 .03+.06+.30
    check(policies(data)["cascade"], 4 / 5, 0.01 + 0.07 + 0.15 + 0.03 + 0.39)
    result = tier("replay", "-c", cfg, "--outcomes", DATA / "outcomes_long.csv", *maps(*MAP3), "--by", "classifier")
    assert result.exit_code == 2 and "--by classifier needs prompts" in result.stderr


def test_run_start_types_missing_from_the_table_are_noted(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", "run: {start: {refactor: tier2, hard: tier2}}\n")
    data, p = judge(cfg, "--policy", "run")
    check(p["run"], 4 / 5, 0.01 + 0.07 + 0.54 + 0.06 + 0.92)
    assert any("run.start names task type(s) no task here has: refactor" in n for n in data["notes"])


def test_zero_costs_are_counted_and_noted(cfg, tmp_path):
    table = tmp_path / "t.csv"
    table.write_text("task_id,model,resolved,cost_usd\n1,small,0,0\n1,big,1,0.5\n2,small,1,0.01\n2,big,1,0\n")
    data = ok_json("replay", "-c", cfg, "--outcomes", table, "--map", "small=tier1,big=tier3", "--policy", "cascade")
    check(policies(data)["cascade"], 1, 0 + 0.5 + 0.01)
    assert any(n.startswith("2 outcome(s) of the mapped models cost $0") for n in data["notes"])
