"""`tier replay --outcomes`: loading outcome tables (long CSV/JSONL, wide) and judging the policies
config, always:<tier>, cascade and oracle. Every figure of the small tables is worked out by hand."""

from __future__ import annotations

import json

import pytest

from outcomeshelp import DATA, MAP3, ROOT, policies, tier, write_config
from tiercli import tokens
from tiercli.classify import run_local
from tiercli.config import load
from tiercli.errors import InputError, UsageError
from tiercli.replay_outcomes.evaluate import evaluate_outcomes
from tiercli.replay_outcomes.table import load_outcomes, parse_map

GSM8K = ROOT.parent / "shared" / "data" / "routellm-gsm8k" / "gsm8k_responses.csv"
MIXTRAL, GPT4 = "mistralai/Mixtral-8x7B-Instruct-v0.1", "gpt-4-1106-preview"


@pytest.fixture
def cfg(tmp_path):
    return write_config(tmp_path / "c.yaml")




def outcomes(cfg, *args):
    result = tier("replay", "-c", cfg, "--json", *args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    return data, policies(data)


def test_prompts_route_as_the_hand_computation_assumes():
    # tasks.jsonl: t1 docstring -> tier1, t2 bug_fix -> tier2, t3 architecture -> tier3,
    # t4 file_lookup -> tier1; t5 has no prompt -> default tier2
    prompts = {json.loads(line)["task_id"]: json.loads(line)["prompt"] for line in (DATA / "tasks.jsonl").open()}
    assert {t: run_local(p).task_type for t, p in prompts.items()} == {
        "t1": "docstring", "t2": "bug_fix", "t3": "architecture", "t4": "file_lookup"}


def test_three_tiers_every_policy_by_hand(cfg):
    data, p = outcomes(cfg, "--outcomes", DATA / "outcomes_long.csv", "--tasks", DATA / "tasks.jsonl", *sum((["--map", m] for m in MAP3), []))
    #        small(t1)   mid(t2)    big(t3)
    # t1     1 .01       1 .03      1 .10     config tier1
    # t2     0 .02       1 .05      1 .20     config tier2
    # t3     0 .01       0 .04      1 .15     config tier3
    # t4     0 .01       1 .02      1 .05     config tier1
    # t5     0 .03       0 .06      0 .30     config tier2 (no prompt: default)
    assert data["tasks"] == 5 and data["tasks_incomplete"] == 0 and data["pgr"] is None
    want = {
        # name: (quality, cost, {tier1, tier2, tier3} finishing shares)
        "config": (3 / 5, 0.01 + 0.05 + 0.15 + 0.01 + 0.06, (2 / 5, 2 / 5, 1 / 5)),
        "always:tier1": (1 / 5, 0.08, (1, 0, 0)),
        "always:tier2": (3 / 5, 0.20, (0, 1, 0)),
        "always:tier3": (4 / 5, 0.80, (0, 0, 1)),
        # t1 .01 | t2 .02+.05 | t3 .01+.04+.15 | t4 .01+.02 | t5 .03+.06+.30 (fails: top tier's quality)
        "cascade": (4 / 5, 0.01 + 0.07 + 0.20 + 0.03 + 0.39, (1 / 5, 2 / 5, 2 / 5)),
        # t1 small | t2 mid | t3 big | t4 mid (cheaper than big) | t5 none succeeds: cheapest, small
        "oracle": (4 / 5, 0.01 + 0.05 + 0.15 + 0.02 + 0.03, (2 / 5, 2 / 5, 1 / 5)),
    }
    assert [x["name"] for x in data["policies"]] == list(want)
    for name, (quality, cost, shares) in want.items():
        got = p[name]
        assert got["quality"] == pytest.approx(quality), name
        assert got["success_rate"] == pytest.approx(quality), name  # 0/1 quality: the resolved rate
        assert got["cost_usd"] == pytest.approx(cost), name
        assert got["cost_vs_top"] == pytest.approx(cost / 0.80), name
        assert [got["tier_shares"][t] for t in ("tier1", "tier2", "tier3")] == pytest.approx(list(shares)), name
    assert p["cascade"]["attempts"] == 1 + 2 + 3 + 2 + 3
    assert data["pricing"] == {"cost_usd": 15, "token_columns": 0, "counted": 0, "models": {}}
    assert data["decisions"]["no_prompt"] == 1 and data["decisions"]["classified"] == 4
    # before = always top tier, after = config; changed = tasks routed below the top, by |cost difference|
    assert data["before"]["policy"] == "always:tier3" and data["after"]["policy"] == "config"
    assert data["after"]["cost_usd"] == pytest.approx(0.28) and data["before"]["cost_usd"] == pytest.approx(0.80)
    assert data["after"]["tiers"]["tier1"] == {"tasks": 2, "share": 0.4}
    assert data["changed_tasks"] == 4
    assert [c["task_id"] for c in data["changed"]] == ["t5", "t2", "t1", "t4"]
    assert data["changed"][0]["diff_usd"] == pytest.approx(0.06 - 0.30)


def test_two_tiers_give_pgr_and_unmapped_tiers_go_up(cfg):
    data, p = outcomes(cfg, "--outcomes", DATA / "outcomes_long.csv", "--tasks", DATA / "tasks.jsonl",
                       "--map", "small=tier1", "--map", "big=tier3")
    # config: t1 small (1, .01); t2 tier2 -> big (1, .20); t3 big (1, .15); t4 small (0, .01);
    # t5 tier2 -> big (0, .30)
    assert data["remapped"] == 2 and data["tiers"] == ["tier1", "tier3"]
    assert p["config"]["quality"] == pytest.approx(3 / 5) and p["config"]["cost_usd"] == pytest.approx(0.67)
    q_weak, q_strong = 1 / 5, 4 / 5
    assert data["pgr"] == pytest.approx((3 / 5 - q_weak) / (q_strong - q_weak))  # 2/3
    assert p["config"]["pgr"] == data["pgr"]
    # cascade: t1 .01 | t2 .02+.20 | t3 .01+.15 | t4 .01+.05 | t5 .03+.30 (fails)
    assert p["cascade"]["quality"] == pytest.approx(4 / 5) and p["cascade"]["cost_usd"] == pytest.approx(0.78)
    assert p["cascade"]["pgr"] == pytest.approx(1.0)
    # oracle: t1 small .01, t2 big .20, t3 big .15, t4 big .05, t5 cheapest small .03
    assert p["oracle"]["quality"] == pytest.approx(4 / 5) and p["oracle"]["cost_usd"] == pytest.approx(0.44)
    assert p["oracle"]["tier_shares"] == pytest.approx({"tier1": 2 / 5, "tier3": 3 / 5})
    assert p["always:tier1"]["pgr"] == 0 and p["always:tier3"]["pgr"] == 1
    assert any("not mapped to a tier, ignored: mid" in n for n in data["notes"])


def test_graded_quality_and_success_threshold(cfg, tmp_path):
    table = tmp_path / "graded.jsonl"
    table.write_text(
        '{"task_id": "a", "model": "small", "quality": 0.75, "cost_usd": 0.01}\n'
        '{"task_id": "a", "model": "big", "quality": 0.95, "cost_usd": 0.1}\n'
        '\n'
        '{"task_id": "b", "model": "small", "quality": 0.85, "cost_usd": 0.01}\n'
        '{"task_id": "b", "model": "big", "quality": 0.9, "cost_usd": 0.1}\n'
    )
    args = ["--outcomes", table, "--map", "small=tier1", "--map", "big=tier3"]
    _, p = outcomes(cfg, *args, "--success-threshold", "0.8")
    # a: small fails (.75), big .95 for .11; b: small succeeds (.85) for .01
    assert p["cascade"]["quality"] == pytest.approx(0.9) and p["cascade"]["success_rate"] == 1
    assert p["cascade"]["cost_usd"] == pytest.approx(0.12)
    assert p["oracle"]["quality"] == pytest.approx(0.9) and p["oracle"]["cost_usd"] == pytest.approx(0.11)
    _, p = outcomes(cfg, *args)  # threshold 1: nothing succeeds
    assert p["cascade"]["quality"] == pytest.approx(0.925) and p["cascade"]["success_rate"] == 0
    assert p["cascade"]["cost_usd"] == pytest.approx(0.22)
    assert p["oracle"]["quality"] == pytest.approx(0.8) and p["oracle"]["cost_usd"] == pytest.approx(0.02)
    # no prompts at all: the config policy sends every task to the default tier2 -> next mapped, tier3
    assert p["config"]["tier_shares"] == {"tier1": 0.0, "tier3": 1.0}


def test_costs_from_token_columns_and_counted_text(cfg, tmp_path):
    table = tmp_path / "tokens.csv"
    table.write_text(
        "task_id,model,quality,input_tokens,output_tokens,response\n"
        "t1,small,1,1000,100,\n"
        "t1,big,1,1000,200,\n"
        't2,small,0,,,"no idea, sorry"\n'
        't2,big,1,,,"main() is defined in src/app/__main__.py, line 3."\n'
    )
    tasks = tmp_path / "tasks.csv"
    tasks.write_text("id,prompt\nt2,where is main defined?\n")
    data, p = outcomes(cfg, "--outcomes", table, "--tasks", tasks, "--map", "small=tier1", "--map", "big=tier3")
    haiku, gpt4o = "anthropic/claude-haiku-4-5", "openai/gpt-4o"
    msgs = [{"role": "user", "content": "where is main defined?"}]
    t2_small = (tokens.count_messages(msgs, haiku) * 1 + tokens.count("no idea, sorry", haiku) * 5) / 1e6
    t2_big = (tokens.count_messages(msgs, gpt4o) * 2
              + tokens.count("main() is defined in src/app/__main__.py, line 3.", gpt4o) * 8) / 1e6
    assert p["always:tier1"]["cost_usd"] == pytest.approx((1000 * 1 + 100 * 5) / 1e6 + t2_small)
    assert p["always:tier3"]["cost_usd"] == pytest.approx((1000 * 2 + 200 * 8) / 1e6 + t2_big)
    assert p["cascade"]["cost_usd"] == pytest.approx(1500 / 1e6 + t2_small + t2_big)
    assert data["pricing"] == {"cost_usd": 0, "token_columns": 2, "counted": 2,
                               "models": {"tier1": haiku, "tier3": gpt4o}}


def test_wide_form_equals_long_form(cfg):
    args = ["--tasks", DATA / "tasks.jsonl", *sum((["--map", m] for m in MAP3), [])]
    long_data, _ = outcomes(cfg, "--outcomes", DATA / "outcomes_long.csv", *args)
    wide_data, _ = outcomes(cfg, "--outcomes", DATA / "outcomes_wide.csv", *args)
    assert wide_data["table"]["form"] == "wide" and long_data["table"]["form"] == "long"
    assert wide_data["policies"] == long_data["policies"]
    jsonl_data, _ = outcomes(cfg, "--outcomes", DATA / "outcomes_long.jsonl", *args)
    assert jsonl_data["table"]["format"] == "jsonl" and jsonl_data["policies"] == long_data["policies"]


def test_incomplete_tasks_are_left_out_and_counted(cfg, tmp_path):
    table = tmp_path / "wide.csv"
    table.write_text("task_id,small,big,small_cost_usd,big_cost_usd\n1,1,1,0.01,0.1\n2,0,,0.01,\n")
    data, p = outcomes(cfg, "--outcomes", table, "--map", "small=tier1", "--map", "big=tier3")
    assert data["tasks"] == 1 and data["tasks_incomplete"] == 1
    assert p["oracle"]["cost_usd"] == pytest.approx(0.01)


def test_terminal_view(cfg):
    result = tier("replay", "-c", cfg, "--outcomes", DATA / "outcomes_long.csv", "--tasks", DATA / "tasks.jsonl",
                  "--map", "small=tier1", "--map", "big=tier3")
    assert result.exit_code == 0, result.output
    for needle in ("Policies", "config", "always:tier1", "cascade", "oracle", "PGR", "0.667", "from the table's cost_usd"):
        assert needle in result.stdout, needle


# -- bad input: one clear line and the right exit code ------------------------------------------------
@pytest.mark.parametrize("content, name, needle", [
    ("task_id,model,grade\n1,a,1\n", "t.csv", "missing column(s) quality"),
    ("model,quality\na,1\n", "t.csv", "missing column(s) task_id"),
    ("task_id,model,quality\n1,a,maybe\n", "t.csv", ":2: bad value"),
    ("task_id,model,quality\n1,a,1\n1,a,0\n", "t.csv", "second row for model 'a'"),
    ("task_id,model,quality\n1,,1\n", "t.csv", "empty model"),
    ('{"task_id": 1, "model": "a", "quality": 1}\n{"task_id": 2,\n', "t.jsonl", "t.jsonl:2: not JSON"),
    ("[1, 2]\n", "t.jsonl", "expected a JSON object"),
    ("prompt,a,difficulty\nx,1,easy\n", "t.csv", "column 'difficulty': bad value 'easy'"),
    ("prompt,a_response\nx,y\n", "t.csv", "no model quality columns"),
    ("", "t.csv", "is empty"),
    ("task_id,model,quality,cost_usd\n1,a,1,-3\n", "t.csv", "cost_usd must be a number >= 0"),
])
def test_malformed_tables_are_input_errors(cfg, tmp_path, content, name, needle):
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(InputError) as exc:
        load_outcomes(path)
    assert needle in str(exc.value)
    result = tier("replay", "-c", cfg, "--outcomes", path, "--map", "a=tier1")
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("tier: error: ") and len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("maps, needle", [
    ([], "--map MODEL=TIER is needed"),
    (["small"], "expected MODEL=TIER"),
    (["small=tier9"], "unknown tier 'tier9'"),
    (["nobody=tier1"], "the table has no model 'nobody'"),
    (["small=tier1", "big=tier1"], "tier 'tier1' has two models"),
    (["small=tier1", "small=tier2"], "mapped twice"),
    (["tier1=nobody"], "the table has no model 'nobody'"),
    (["tier9=small"], "unknown tier 'tier9'"),
    (["tier1=small,tier1=big"], "tier 'tier1' has two models"),
])
def test_bad_maps_are_usage_errors(cfg, maps, needle):
    table = load_outcomes(DATA / "outcomes_long.csv")
    with pytest.raises(UsageError) as exc:
        parse_map(maps, table, ["tier1", "tier2", "tier3"])
    assert needle in str(exc.value)
    result = tier("replay", "-c", cfg, "--outcomes", DATA / "outcomes_long.csv", *sum((["--map", m] for m in maps), []))
    assert result.exit_code == 2 and needle in result.stderr


def test_missing_files_and_missing_cost_inputs(cfg, tmp_path):
    result = tier("replay", "-c", cfg, "--outcomes", tmp_path / "nope.csv", "--map", "a=tier1")
    assert result.exit_code == 4 and "not found" in result.stderr
    result = tier("replay", "-c", cfg, "--outcomes", DATA / "outcomes_long.csv", "--tasks", tmp_path / "nope.jsonl",
                  "--map", "small=tier1")
    assert result.exit_code == 4 and "tasks file" in result.stderr
    table = tmp_path / "nocost.csv"
    table.write_text("task_id,model,quality\n1,a,1\n")
    result = tier("replay", "-c", cfg, "--outcomes", table, "--map", "a=tier1")
    assert result.exit_code == 4 and "no cost_usd, no input_tokens and no prompt" in result.stderr
    result = tier("replay", "-c", cfg, "--outcomes", table, "--map", "a=tier1", "--live")
    assert result.exit_code == 2


# -- the real RouteLLM GSM8K table -----------------------------------------------------------------
@pytest.mark.skipif(not GSM8K.exists(), reason="../shared/data/routellm-gsm8k is not here")
def test_gsm8k_wide_table_gives_plausible_figures():
    table = load_outcomes(GSM8K)
    assert table.form == "wide" and table.models == [MIXTRAL, GPT4] and len(table.task_ids) == 1319
    assert all(table.prompts[t] for t in table.task_ids)
    loaded = load(ROOT / "sample_configs" / "anthropic.yaml")
    mapping = parse_map([f"{MIXTRAL}=tier1", f"{GPT4}=tier3"], table, loaded.config.routing.tiers)
    result = evaluate_outcomes(loaded, table, mapping)
    weak, strong = result.policy("always:tier1"), result.policy("always:tier3")
    # counted independently: Mixtral right on 842, GPT-4 on 1130, both wrong on 94 of 1319
    assert weak.quality == pytest.approx(842 / 1319) and strong.quality == pytest.approx(1130 / 1319)
    for name in ("cascade", "oracle"):
        assert result.policy(name).quality == pytest.approx((1319 - 94) / 1319)
    assert result.policy("cascade").tier_shares()["tier1"] == pytest.approx(842 / 1319)
    assert result.pricing == {"cost_usd": 0, "token_columns": 0, "counted": 2 * 1319}
    # haiku at $1/$5 per Mtok against opus at $5/$25: the weak tier costs a fifth per token
    assert 0 < weak.cost_usd < strong.cost_usd
    oracle, cascade = result.policy("oracle"), result.policy("cascade")
    assert oracle.cost_usd <= cascade.cost_usd < strong.cost_usd + weak.cost_usd
    config = result.policy("config")
    assert weak.quality <= config.quality and config.pgr is not None
    assert config.pgr == pytest.approx((config.quality - weak.quality) / (strong.quality - weak.quality))
    assert sum(config.tier_shares().values()) == pytest.approx(1)
