"""`tier tune`: the search (agrees with a brute force over every policy), the choice, k-fold
cross-validation that never scores a policy on the tasks it was chosen on, and the config snippet.
Figures on tests/data/replay/typed.csv are worked out by hand (table in tests/test_policies.py)."""

from __future__ import annotations

import csv
import io
import itertools
import json
import random
import subprocess
import sys

import pytest

from outcomeshelp import MAP3, TYPED, maps, ok_json, tier, write_config
from tiercli.config import load
from tiercli.errors import ConfigError
from tiercli.replay_outcomes import tune as tuning
from tiercli.replay_outcomes.commands import tune_table
from tiercli.replay_outcomes.simulate import Matrix, Spec, simulate
from tiercli.replay_outcomes.table import load_outcomes, table_from_rows

GSM8K_DIR = TYPED.parents[3].parent / "shared" / "data" / "routellm-gsm8k"


@pytest.fixture
def cfg(tmp_path):
    return write_config(tmp_path / "c.yaml")


def tune_json(cfg, *args):
    return ok_json("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--folds", "2", "--min-type-tasks", "1", *args)


def test_cheapest_policy_at_the_best_quality_by_hand(cfg):
    data = tune_json(cfg, "--cap-grid", "none", "--within", "0")
    # e fails on every tier: the best is 4/5. Easy tasks: from tier1 (a .01, b .02+.05) is the cheapest
    # way to solve both; hard: c needs big, d needs mid; [tier2, tier3] costs c .54 + d .06 + e .92.
    ch = data["chosen"]
    assert (ch["order"], ch["start"], ch["caps"]) == (["tier1", "tier2", "tier3"], {"hard": "tier2"}, {})
    tuned = ch["in_sample"]["tuned"]
    assert tuned["success_rate"] == pytest.approx(4 / 5) and tuned["cost_usd"] == pytest.approx(0.08 + 1.52)
    assert data["frontier"][-1]["value"] == pytest.approx(4 / 5) and data["frontier"][-1]["chosen"]
    assert data["search"]["settings"] == 15 and data["search"]["task_types"] == ["easy", "hard"]


def test_within_one_task_takes_the_cheapest_three_of_five(cfg):
    data = tune_json(cfg, "--cap-grid", "none", "--within", "0.2")
    # 3/5 at least: easy from tier1 through tier2 (.08, both), hard on tier2 alone (c .04, d .06 ok, e .02);
    # the shortest order with both as suffixes: tier1, tier2
    ch = data["chosen"]
    assert (ch["order"], ch["start"]) == (["tier1", "tier2"], {"hard": "tier2"})
    assert ch["in_sample"]["tuned"]["success_rate"] == pytest.approx(3 / 5)
    assert ch["in_sample"]["tuned"]["cost_usd"] == pytest.approx(0.20)


def test_a_cap_from_the_grid_cuts_the_hopeless_attempt(cfg):
    data = tune_json(cfg, "--cap-grid", "tier3=0.6,0.3", "--within", "0")
    # cap .60 on big keeps c (.50) and cuts e (.90 -> .60); .30 would lose c
    ch = data["chosen"]
    assert (ch["order"], ch["start"], ch["caps"]) == (["tier1", "tier2", "tier3"], {"hard": "tier2"}, {"tier3": 0.6})
    assert ch["in_sample"]["tuned"]["cost_usd"] == pytest.approx(0.08 + 0.54 + 0.06 + 0.62)
    assert data["search"]["cap_grid"] == {"tier1": [None], "tier2": [None], "tier3": [None, 0.6, 0.3]}
    assert any("approximation" in n for n in data["notes"])


def random_matrix(seed: int, n: int = 14) -> Matrix:
    rng = random.Random(seed)
    groups = [rng.choice(["x", "y", None]) for _ in range(n)]
    quality = [tuple(rng.choice([0.0, 1.0, 1.0, 0.5]) for _ in range(3)) for _ in range(n)]
    cost = [tuple(round(rng.uniform(0.01, 1.0) * (k + 1), 3) for k in range(3)) for _ in range(n)]
    return Matrix(["t1", "t2", "t3"], [f"task{i}" for i in range(n)], groups, quality, cost, 1.0)


def brute_force(m: Matrix, grid, objective: str):
    """Every (order, caps, start per type) policy judged task by task, then the Pareto filter."""
    points = []
    types = m.group_names()
    for order in (o for size in (1, 2, 3) for o in itertools.permutations(range(3), size)):
        for caps in itertools.product(*grid):
            for starts in itertools.product(range(len(order)), repeat=len(types)):
                start = tuple((g, order[s]) for g, s in zip(types, starts) if s)
                p = simulate(m, Spec("cascade", order, start, caps))
                value = p.successes if objective == "success" else p.quality_sum
                points.append((p.cost_usd, value))
    points.sort(key=lambda x: (x[0], -x[1]))
    front, best = [], -1.0
    for c, v in points:
        if v > best + 1e-9:
            front.append((round(c, 9), round(v, 9)))
            best = v
    return front


@pytest.mark.parametrize("seed, objective", [(1, "success"), (2, "success"), (3, "quality"), (4, "quality")])
def test_search_frontier_equals_brute_force(seed, objective):
    m = random_matrix(seed)
    grid = [[None, 0.5], [None], [None, 1.2, 2.0]]
    found = tuning.search(m, cap_grid=grid, objective=objective, min_type_tasks=1)
    assert [(round(p.cost, 9), round(p.value, 9)) for p in found.frontier] == brute_force(m, grid, objective)
    for p in found.frontier:  # each point is the policy it claims to be
        q = simulate(m, p.spec(m.tiers))
        assert q.cost_usd == pytest.approx(p.cost)
        assert (q.successes if objective == "success" else q.quality_sum) == pytest.approx(p.value)


def test_cross_validation_never_scores_on_training_tasks():
    m = random_matrix(7, n=40)
    seen: list[set[str]] = []

    def recording_search(sub: Matrix):
        seen.append(set(sub.task_ids))
        return tuning.search(sub, cap_grid=[[None], [None], [None, 1.0]])

    cv = tuning.cross_validate(m, 4, 0.0, recording_search)
    assert len(seen) == 4 and len(cv.folds) == 4
    tests = [set(m.task_ids[i] for i in f.test) for f in cv.folds]
    assert set().union(*tests) == set(m.task_ids) and sum(map(len, tests)) == len(m)  # each task held out once
    for fold, trained_on, held_out in zip(cv.folds, seen, tests):
        assert trained_on.isdisjoint(held_out)
        assert trained_on | held_out == set(m.task_ids)
        assert all(p.tasks == len(held_out) for p in fold.policies.values())
        for name in ("oracle", "always:t1", "always:t2", "always:t3", "cascade", "tuned"):
            assert name in fold.policies
    pooled = cv.pooled["oracle"]
    assert pooled.tasks == len(m) and pooled.successes == simulate(m, Spec("oracle")).successes
    # folds come from the task id alone: the same on every run, and the same for a task in any table
    assert [tuning.fold_of(t, 4) for t in m.task_ids] == [tuning.fold_of(t, 4) for t in m.task_ids]
    assert [f.test for f in tuning.cross_validate(m, 4, 0.0, recording_search).folds] == [f.test for f in cv.folds]


def test_held_out_figures_use_the_policy_chosen_on_the_other_folds():
    # two task types; in every fold the tuned policy's held-out figures are those of the policy chosen
    # on the other folds, simulated on the held-out tasks alone
    m = random_matrix(11, n=30)
    cv = tuning.cross_validate(m, 3, 0.05, lambda sub: tuning.search(sub, cap_grid=[[None]] * 3))
    for fold in cv.folds:
        again = tuning.search(m.subset(fold.train), cap_grid=[[None]] * 3).choose(0.05)
        assert again == fold.chosen
        expected = simulate(m.subset(fold.test), Spec("cascade", again.order, again.start, again.caps))
        assert fold.policies["tuned"].cost_usd == pytest.approx(expected.cost_usd)
        assert fold.policies["tuned"].successes == expected.successes


def test_cli_cross_validation_report(cfg):
    data = tune_json(cfg, "--cap-grid", "none")
    cv = data["cross_validation"]
    assert cv["folds"] == 2 and cv["tasks"] == 5
    assert sum(f["test_tasks"] for f in cv["per_fold"]) == 5
    assert all(f["train_tasks"] + f["test_tasks"] == 5 for f in cv["per_fold"])
    assert set(cv["policies"]) == {"tuned", "oracle", "always:tier1", "always:tier2", "always:tier3", "cascade"}
    # the baselines on the pooled held-out folds are their whole-table figures
    assert cv["policies"]["oracle"]["cost_usd"] == pytest.approx(0.63)
    assert cv["policies"]["always:tier3"]["cost_usd"] == pytest.approx(2.10)


def test_written_snippet_loads_and_replays_to_the_same_figures(cfg, tmp_path):
    out = tmp_path / "run.yaml"
    result = tier("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--folds", "2", "--cap-grid", "tier3=0.6",
                  "--within", "0", "--min-type-tasks", "1", "--write", out)
    assert result.exit_code == 0, result.output
    assert "wrote the chosen policy" in result.stdout
    merged = write_config(tmp_path / "merged.yaml", out.read_text())
    run = load(merged).config.run
    assert (run.tiers, run.caps, run.start) == (["tier1", "tier2", "tier3"], {"tier3": 0.6}, {"hard": "tier2"})
    replayed = ok_json("replay", "-c", merged, "--outcomes", TYPED, *maps(*MAP3), "--policy", "run")
    assert replayed["policies"][0]["cost_usd"] == pytest.approx(0.08 + 0.54 + 0.06 + 0.62)
    again = tier("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--folds", "2", "--write", out)
    assert again.exit_code == 2 and "exists" in again.stderr
    forced = tier("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--folds", "2", "--write", out, "--force")
    assert forced.exit_code == 0, forced.output


def test_snippet_with_hostile_task_types_still_loads(cfg, tmp_path):
    table = tmp_path / "t.csv"
    rows = ["task_id,task_type,model,quality,cost_usd"]
    for i, kind in enumerate(["x: {y}\n# z", "x: {y}\n# z", "[red]plain[/red]", "[red]plain[/red]"]):
        q1, q3 = (0, 1) if i < 2 else (1, 1)
        rows += [f'{i},"{kind}",small,{q1},0.01', f'{i},"{kind}",big,{q3},0.5']
    table.write_text("\n".join(rows) + "\n")
    out = tmp_path / "run.yaml"
    result = tier("tune", "-c", cfg, "--outcomes", table, "--map", "small=tier1,big=tier3", "--folds", "2",
                  "--cap-grid", "none", "--within", "0", "--min-type-tasks", "1", "--write", out)
    assert result.exit_code == 0, result.output
    run = load(write_config(tmp_path / "m.yaml", out.read_text())).config.run
    assert run.tiers[0] in ("tier1", "tier3") and all(t in ("tier1", "tier3") for t in run.start.values())
    # the small model solves the plain tasks: at the best quality they start on tier1, the others on tier3
    assert (run.tiers, run.start) == (["tier1", "tier3"], {"x: {y}\n# z": "tier3"})
    shown = tier("tune", "-c", cfg, "--outcomes", table, "--map", "small=tier1,big=tier3", "--folds", "2",
                 "--cap-grid", "none", "--within", "0", "--top", "50", "--min-type-tasks", "1")
    assert shown.exit_code == 0, shown.output
    text = shown.stdout.replace("\n", "")
    assert "x: {y}\\x0a# z=tier3" in text  # shown as text, the newline made visible, never a markup tag
    assert "\x1b" not in shown.stdout


def test_tune_never_imports_litellm(cfg):
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "tiercli", "tune", "-c", str(cfg), "--outcomes",
                           str(TYPED), *maps(*MAP3), "--folds", "2", "--json"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    modules = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines() if line.startswith("import time:")}
    assert "tiercli.replay_outcomes.tune" in modules
    assert not any(m == "litellm" or m.startswith("litellm.") for m in modules)


def test_frontier_csv_and_terminal_view(cfg):
    result = tier("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--folds", "2", "--csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and sum(r["chosen"] == "1" for r in rows) == 1
    costs = [float(r["cost_usd"]) for r in rows]
    values = [float(r["value"]) for r in rows]
    assert costs == sorted(costs) and values == sorted(values) and len(set(values)) == len(values)
    shown = tier("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--folds", "2")
    assert shown.exit_code == 0, shown.output
    for needle in ("Pareto frontier", "chosen", "Held-out", "oracle", "always:tier3", "tuned"):
        assert needle in shown.stdout, needle


def test_ledger_rows_tune_like_the_file(tmp_path):
    loaded = load(write_config(tmp_path / "c.yaml"))
    table = load_outcomes(TYPED)
    tier_of = {"small": "tier1", "mid": "tier2", "big": "tier3"}
    rows = [(t, table.groups[t], tier_of[m], o.quality, o.cost_usd) for t in table.task_ids
            for m, o in table.outcomes[t].items()]
    a = tune_table(loaded, table, mapping=MAP3, folds=2, cap_grid=["none"], min_type_tasks=1)
    b = tune_table(loaded, table_from_rows(rows), mapping=["tier1=tier1,tier2=tier2,tier3=tier3"], folds=2,
                   cap_grid=["none"], min_type_tasks=1)
    assert a["search"]["task_types"] == ["easy", "hard"]
    assert a["frontier"] == b["frontier"] and a["cross_validation"] == b["cross_validation"]


@pytest.mark.parametrize("args, code, needle", [
    (["--folds", "9"], 2, "the table has only 5 complete task(s)"),
    (["--objective", "speed"], 2, "unknown --objective"),
    (["--within", "2"], 2, "--within"),
    (["--order", "tier1,tier9"], 2, "tier 'tier9' has no table model"),
    (["--cap-grid", "tier9=1"], 2, "unknown tier"),
    (["--cap-grid", "0"], 2, "positive amount"),
    (["--by", "colour"], 4, "no column 'colour'"),
    (["--force"], 2, "--force goes with --write"),
])
def test_bad_tune_options(cfg, args, code, needle):
    result = tier("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), *args)
    assert result.exit_code == code, result.output
    assert needle in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_tune_without_task_types_and_by_none(cfg):
    data = tune_json(cfg, "--by", "none", "--cap-grid", "none", "--within", "0")
    assert data["search"]["task_types"] == [] and data["chosen"]["start"] == {}
    # one chain for all; the cheapest with 4/5: tier2, tier3 ($1.61; the plain cascade costs $1.65)
    assert data["chosen"]["in_sample"]["tuned"]["cost_usd"] == pytest.approx(0.04 + 0.05 + 0.54 + 0.06 + 0.92)
    assert data["chosen"]["order"][-2:] == ["tier2", "tier3"]


@pytest.mark.parametrize("run, needle", [
    ("run: {tiers: [tier1, tier9]}", "run.tiers"),
    ("run: {tiers: [tier1, tier1]}", "run.tiers"),
    ("run: {caps: {tier3: -1}}", "caps.tier3 must be a positive amount"),
    ("run: {caps: {tier7: 1}}", "run.caps.tier7"),
    ("run: {tiers: [tier2, tier3], start: {x: tier1}}", "run.start.x"),
    ("run: {budget: 3}", "unknown key"),
])
def test_run_section_is_validated(tmp_path, run, needle):
    with pytest.raises(ConfigError) as exc:
        load(write_config(tmp_path / "c.yaml", run + "\n"))
    assert needle in str(exc.value)


@pytest.mark.skipif(not (GSM8K_DIR / "gsm8k_responses.csv").exists(), reason="../shared/data/routellm-gsm8k is not here")
def test_gsm8k_still_tunes_as_a_second_check(tmp_path):
    loaded = load(write_config(tmp_path / "c.yaml"))
    table = load_outcomes(GSM8K_DIR / "gsm8k_responses.csv")
    mixtral, gpt4 = table.models
    data = tune_table(loaded, table, mapping=[f"tier1={mixtral}", f"tier3={gpt4}"], folds=3, cap_grid=["none"])
    cv = data["cross_validation"]["policies"]
    assert data["tasks"] == 1319 and cv["oracle"]["tasks"] == 1319
    # nothing beats the oracle's success rate; the tuned cascade gets within --within of it on held-out tasks
    assert cv["tuned"]["success_rate"] <= cv["oracle"]["success_rate"]
    assert cv["tuned"]["success_rate"] >= cv["oracle"]["success_rate"] - 0.01 - 0.02
    assert cv["tuned"]["cost_usd"] >= cv["oracle"]["cost_usd"]
    json.dumps(data)  # serialisable as printed by --json


def test_run_section_changes_the_config_hash_only_when_set(tmp_path):
    plain = load(write_config(tmp_path / "a.yaml")).hash
    assert load(write_config(tmp_path / "b.yaml", "run: {}\n")).hash == plain  # ledgers keep grouping by config
    assert load(write_config(tmp_path / "c.yaml", "run: {caps: {tier3: 3}}\n")).hash != plain


def test_default_cap_grid_keeps_the_dearest_success():
    m = random_matrix(5, n=30)
    grid = tuning.default_cap_grid(m)
    for k, caps in enumerate(grid):
        assert caps[0] is None and len(caps) == len(set(caps))
        wins = [c[k] for q, c in zip(m.quality, m.cost) if q[k] >= m.threshold]
        assert caps[1] >= max(wins) and caps[1] < max(wins) * 1.01  # rounded up, 3 significant digits
        uncapped = simulate(m, Spec("always", (k,)))
        at_max = simulate(m, Spec("always", (k,), caps=tuple(caps[1] if j == k else None for j in range(3))))
        assert at_max.successes == uncapped.successes and at_max.cost_usd <= uncapped.cost_usd


def test_rare_task_types_share_the_default_start_and_too_many_are_refused(cfg, tmp_path):
    data = ok_json("tune", "-c", cfg, "--outcomes", TYPED, *maps(*MAP3), "--folds", "2", "--cap-grid", "none",
                   "--within", "0", "--min-type-tasks", "3")
    # easy has 2 tasks: no start of its own; hard (3 tasks) keeps one
    assert data["search"]["task_types"] == ["hard"] and data["search"]["rare_types"] == 1
    assert set(data["chosen"]["start"]) <= {"hard"}
    assert any("1 task type(s) with fewer than 3 tasks share the default start" in n for n in data["notes"])
    table = tmp_path / "many.csv"
    table.write_text("task_id,task_type,model,quality,cost_usd\n" + "".join(
        f"{i},type{i},small,{i % 2},0.01\n{i},type{i},big,1,0.1\n" for i in range(40)))
    result = tier("tune", "-c", cfg, "--outcomes", table, "--map", "small=tier1,big=tier3", "--min-type-tasks", "1")
    assert result.exit_code == 2 and "40 task types" in result.stderr and "at most 32" in result.stderr
