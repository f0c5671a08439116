"""`tier report`'s agent-aware quality signals and its other views (sessions, tasks, --by, --timezone,
--last, the empty window, the onboarding answer for an imported history), on real ledger files
through the CLI. Expected figures are worked out by hand from the rows written here."""

from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml
from typer.testing import CliRunner

from tiercli.cli import app
from tiercli.config import validate
from tiercli.ledger import Ledger
from tiercli.report import build_report

runner = CliRunner()
M = 1_000_000
SONNET, HAIKU = "claude-sonnet-4-5", "claude-haiku-4-5"
T0 = dt.datetime(2026, 11, 2, 12, 0, tzinfo=dt.timezone.utc).timestamp()

CONFIG_YAML = """
model_list:
  - {model_name: tier1, litellm_params: {model: claude-haiku-4-5, api_key: os.environ/ANTHROPIC_API_KEY}}
  - {model_name: tier2, litellm_params: {model: claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY}}
  - {model_name: tier3, litellm_params: {model: claude-opus-4-5, api_key: os.environ/ANTHROPIC_API_KEY}}
routing: {classifier: local}
"""


def tier(*args):
    return runner.invoke(app, [str(a) for a in args])


def _row(id, at, **kw):
    row = {"id": id, "started_at": at, "ended_at": at + 1, "status": "ok", "kind": "main", "source": "serve",
           "decision_source": "local", "session": "s1", "tier": "tier2", "served_tier": "tier2",
           "served_model": SONNET, "task_type": "bug_fix", "config_hash": "cfgA",
           "input_tokens": 1000, "output_tokens": 100, "cost_usd": 1000 * 3 / M + 100 * 15 / M}
    row.update(kw)
    return row


def _write(path, rows):
    with Ledger(path) as ledger:
        for row in rows:
            ledger.upsert_call(row)
    return path


@pytest.fixture
def config_file(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG_YAML)
    return path


@pytest.fixture
def config():
    return validate(yaml.safe_load(CONFIG_YAML), "test")


def five_step_task(task_id="task-1", start=T0, session="s1", prompt_hash="fix-login"):
    """One successful agent task through the gateway: 5 steps, each carrying the instruction's hash."""
    return [_row(f"{task_id}-{i}", start + 20 * i, task_id=task_id, prompt_hash=prompt_hash, session=session)
            for i in range(5)]


# -- quality per task ----------------------------------------------------------------------------
def test_one_successful_five_step_task_has_no_retry_and_no_regression(tmp_path, config):
    with Ledger(_write(tmp_path / "l.db", five_step_task())) as ledger:
        r = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 3600)
    q = r["quality"]["total"]
    assert q["calls"] == 5
    assert q["retries"] == 0 and q["overrides"] == 0 and q["escalations"] == 0
    assert q["rate"] == 0.0
    assert r["quality"]["regressions"] == []


def test_the_same_instruction_as_a_new_task_after_the_first_ended_is_one_retry(tmp_path, config):
    rows = five_step_task("task-1") + five_step_task("task-2", start=T0 + 300)  # asked again 220 s after it ended
    rows += five_step_task("task-3", start=T0 + 5000, prompt_hash="other")  # another instruction: not a retry
    with Ledger(_write(tmp_path / "l.db", rows)) as ledger:
        r = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 9000)
        wide = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 9000, _narrow_threshold=0)
    assert r["quality"]["total"]["retries"] == 1  # counted once, on task-1
    assert r["quality"]["total"]["calls"] == 15
    assert wide["quality"] == r["quality"]  # the window-function and the repeated-hash searches agree


def test_a_retry_must_come_within_the_window_after_the_task_ended(tmp_path, config):
    rows = five_step_task("task-1") + five_step_task("task-2", start=T0 + 80 + 601)
    with Ledger(_write(tmp_path / "l.db", rows)) as ledger:
        late = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 9000)
        wider = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 9000, retry_window_s=700)
    assert late["quality"]["total"]["retries"] == 0  # 601 s after task-1's last step (T0 + 80)
    assert wider["quality"]["total"]["retries"] == 1


def test_rows_without_a_task_id_are_each_their_own_task(tmp_path, config):
    rows = [_row("a", T0, prompt_hash="p"), _row("b", T0 + 60, prompt_hash="p"), _row("c", T0 + 120, prompt_hash="p")]
    with Ledger(_write(tmp_path / "l.db", rows)) as ledger:
        r = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 3600)
    assert r["quality"]["total"]["retries"] == 2  # a then b, b then c


def test_overrides_are_apart_from_the_routed_share(tmp_path, config):
    rows = five_step_task() + [_row("o1", T0 + 500, decision_source="override", decided_tier="tier2", tier="tier3",
                                    served_tier="tier3", prompt_hash="forced")]
    with Ledger(_write(tmp_path / "l.db", rows)) as ledger:
        r = build_report(ledger, config, since=None, until=None, session=None, now=T0 + 3600)
    assert r["targets"]["routed_calls"] == 5 and r["targets"]["override_calls"] == 1
    assert r["targets"]["top_tier_share"] == 0.0
    assert r["quality"]["total"]["overrides"] == 1  # still a quality signal: routing was overruled


# -- the per-task view ---------------------------------------------------------------------------
def test_tasks_view_counts_steps_and_cost_per_task(tmp_path):
    t2 = five_step_task("t2", start=T0 + 900, prompt_hash="q")[:3]
    t2[1].update(fallback_count=1, served_tier="tier3")  # one step fell back: the task escalated, once
    t2[2].update(fallback_count=1, served_tier="tier3")
    db = _write(tmp_path / "l.db", five_step_task("t1") + t2
                + [_row("solo", T0 + 2000, task_type="search", tier="tier1", served_tier="tier1", served_model=HAIKU,
                        input_tokens=100, output_tokens=10, cost_usd=100 * 1 / M + 10 * 5 / M)])
    result = tier("report", "tasks", "--all", "--json", "--db", db)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    step = 1000 * 3 / M + 100 * 15 / M
    assert (data["tasks"], data["steps"], data["with_task_id"], data["max_steps"]) == (3, 9, 2, 5)
    assert data["steps_per_task"] == pytest.approx(3.0)
    assert (data["escalated_tasks"], data["overridden_tasks"]) == (1, 0)
    groups = {(g["task_type"], g["tier"]): g for g in data["by_type_and_tier"]}
    assert groups[("bug_fix", "tier2")]["tasks"] == 2 and groups[("bug_fix", "tier2")]["steps"] == 8
    assert groups[("bug_fix", "tier2")]["cost_per_task_usd"] == pytest.approx(8 * step / 2)
    assert groups[("search", "tier1")]["steps"] == 1
    text = tier("report", "tasks", "--all", "--db", db).stdout
    assert "3 tasks · 9 steps" in text and "bug_fix" in text


# -- sessions, periods, dimensions, time zones -----------------------------------------------------
def _views_ledger(tmp_path):
    late = dt.datetime(2026, 11, 2, 23, 30, tzinfo=dt.timezone.utc).timestamp()  # 00:30 on 11-03 in Paris
    meta = json.dumps({"cwd": "/home/me/shop"})
    return _write(tmp_path / "l.db", [
        _row("a", late - 3600, session="s1", meta_json=meta),
        _row("b", late, session="s1", meta_json=meta),
        _row("c", late + 86_400 * 8, session="s2", served_model=HAIKU, tier="tier1", cost_usd=0.001),
    ])


def test_by_day_follows_the_time_zone(tmp_path):
    db = _views_ledger(tmp_path)
    utc = json.loads(tier("report", "--by", "day", "--all", "--timezone", "UTC", "--json", "--db", db).stdout)
    paris = json.loads(tier("report", "--by", "day", "--all", "--timezone", "Europe/Paris", "--json", "--db", db).stdout)
    assert utc["timezone"] == "UTC" and paris["timezone"] == "Europe/Paris"
    assert [(r["key"], r["calls"]) for r in utc["rows"]] == [("2026-11-02", 2), ("2026-11-10", 1)]
    assert [(r["key"], r["calls"]) for r in paris["rows"]] == [("2026-11-02", 1), ("2026-11-03", 1), ("2026-11-11", 1)]
    weeks = json.loads(tier("report", "--by", "week", "--all", "--tz", "UTC", "--json", "--db", db).stdout)
    assert [(r["key"], r["calls"]) for r in weeks["rows"]] == [("2026-11-02", 2), ("2026-11-09", 1)]  # Mondays
    months = json.loads(tier("report", "--by", "month", "--all", "--tz", "UTC", "--json", "--db", db).stdout)
    assert [(r["key"], r["calls"]) for r in months["rows"]] == [("2026-11", 3)]
    assert months["totals"]["cost_usd"] == pytest.approx(2 * (3000 + 1500) / M + 0.001)


def test_default_time_zone_is_the_machines_and_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    db = _views_ledger(tmp_path)
    data = json.loads(tier("report", "--by", "day", "--all", "--json", "--db", db).stdout)
    assert data["timezone"] == "America/New_York"
    assert [r["key"] for r in data["rows"]][0] == "2026-11-02"  # 17:30 and 18:30 local
    assert "times in America/New_York" in tier("report", "sessions", "--all", "--db", db).stdout
    bad = tier("report", "--by", "day", "--all", "--timezone", "Mars/Olympus", "--db", db)
    assert bad.exit_code == 2 and "unknown time zone" in bad.output


def test_sessions_and_projects(tmp_path):
    db = _views_ledger(tmp_path)
    data = json.loads(tier("report", "sessions", "--all", "--json", "--db", db).stdout)
    assert data["view"] == "sessions"
    assert [(r["key"], r["calls"], r["project"]) for r in data["rows"]] == [("s2", 1, None), ("s1", 2, "/home/me/shop")]
    assert data["rows"][1]["models"] == [SONNET]
    projects = json.loads(tier("report", "--by", "project", "--all", "--json", "--db", db).stdout)
    assert {r["key"]: r["calls"] for r in projects["rows"]} == {"/home/me/shop": 2, None: 1}
    models = json.loads(tier("report", "--by", "model", "--all", "--json", "--db", db).stdout)
    assert [r["key"] for r in models["rows"]] == [SONNET, HAIKU]
    csv_text = tier("report", "sessions", "--all", "--csv", "--db", db).stdout
    assert csv_text.splitlines()[0].startswith("key,calls,")


@pytest.mark.parametrize("columns", [60, 80, 120])
def test_views_fit_the_terminal_and_never_cut_a_number(tmp_path, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    db = _write(tmp_path / "l.db", [
        _row(f"r{i}", T0 + i, session=f"session-{'abc'[i]}{'x' * 30}", input_tokens=123_456_789, output_tokens=9_876_543,
             cache_read_tokens=1_234_567_890, cost_usd=12345.678) for i in range(3)])
    for args in (("sessions",), ("--by", "day"), ("--by", "model"), ("tasks",)):
        out = tier("report", *args, "--all", "--db", db).stdout
        lines = out.splitlines()
        assert lines and max(len(line) for line in lines) <= columns, (args, out)
        assert "$12,346" in out or "$37,037" in out, (args, out)
        assert not any(ch.isdigit() and nxt == "…" for line in lines for ch, nxt in zip(line, line[1:])), out


# -- windows -------------------------------------------------------------------------------------
def test_last_and_window_rules(tmp_path, config_file):
    import time

    now = time.time()
    db = _write(tmp_path / "l.db", [_row("old", now - 10 * 86_400), _row("new", now - 3 * 86_400)])
    last = json.loads(tier("report", "--last", "7d", "--json", "-c", config_file, "--db", db).stdout)
    assert last["totals"]["calls"] == 1 and last["window"]["label"] == "the last 7d"
    refused = tier("report", "--all", "--since", "7d", "-c", config_file, "--db", db)
    assert refused.exit_code == 2
    assert refused.output.strip() == ("tier: error: --all is the whole ledger: drop it, or drop "
                                      "--since/--until/--last")
    assert tier("report", "--last", "2026-11-01", "-c", config_file, "--db", db).exit_code == 2
    empty = tier("report", "-c", config_file, "--db", db)
    assert empty.exit_code == 0
    assert empty.stdout.strip() == ("no calls in the last 48h (the default window); the ledger holds 2 call(s): "
                                    "try --all (or a wider --since / --last)")
    data = json.loads(tier("report", "--json", "-c", config_file, "--db", db).stdout)
    assert data["totals"]["calls"] == 0 and data["window"]["ledger_calls"] == 2
    fresh = tier("report", "-c", config_file, "--db", tmp_path / "new.db")
    assert "the ledger is empty" in fresh.stdout


# -- the onboarding answer -------------------------------------------------------------------------
def test_an_imported_history_shows_as_run_and_with_routing_and_claims_no_saving(tmp_path, config_file):
    rows = [_row(f"i{i}", T0 + 60 * i, kind="import", source="claude-code", decision_source="import", tier=None,
                 served_tier=None, task_type=None, session="cc-1" if i < 3 else "cc-2",
                 prompt_text="list the files in src/" if i % 2 else "design a new storage layer for the service",
                 prompt_hash=f"h{i % 2}", meta_json=json.dumps({"cwd": "/home/me/app"})) for i in range(4)]
    db = _write(tmp_path / "l.db", rows)
    data = json.loads(tier("report", "--all", "--json", "-c", config_file, "--db", db).stdout)
    assert data["savings"]["saved_usd"] is None and data["savings"]["imported_calls"] == 4
    h = data["history"]
    assert h["calls"] == 4
    assert h["as_run"]["cost_usd"] == pytest.approx(4 * (3000 + 1500) / M)
    assert [s["session"] for s in h["as_run"]["sessions"]] == ["cc-2", "cc-1"]
    assert h["as_run"]["sessions"][0]["project"] == "/home/me/app"
    assert sum(t["calls"] for t in h["as_run"]["task_types"]) == 4
    routed = h["with_routing"]
    assert sum(routed["tiers"].values()) == 4 and routed["top_tier"] == "tier3"
    assert routed["top_tier_share"] == routed["tiers"]["tier3"] / 4
    assert "saved" not in json.dumps(routed)
    text = tier("report", "--all", "-c", config_file, "--db", db).stdout
    assert "Your history as it ran" in text and "With routing" in text and "estimate" in text
    assert "saved $" not in text.split("Your history")[0].split("Prompt caching")[0]
    assert "1. Tier distribution" not in text  # tier routed none of it


def test_the_imported_history_of_one_user(tmp_path, config_file):
    """--user narrows the history's "as run" and its "with routing" replay to that user's calls."""
    rows = [_row(f"i{i}", T0 + 60 * i, kind="import", source="claude-code", decision_source="import", tier=None,
                 served_tier=None, task_type=None, session=f"cc-{i}", prompt_text="list the files in src/",
                 prompt_hash="h", user_id="alice" if i < 3 else None) for i in range(5)]
    db = _write(tmp_path / "l.db", rows)
    for user, calls in (("alice", 3), ("(none)", 2)):
        h = json.loads(tier("report", "--all", "--json", "--user", user, "-c", config_file, "--db", db).stdout)["history"]
        assert h["calls"] == calls and sum(h["with_routing"]["tiers"].values()) == calls, user
        assert sum(t["calls"] for t in h["as_run"]["task_types"]) == calls


@pytest.mark.parametrize("name", ["rel.db", "with space.db"])
def test_report_reads_a_relative_or_oddly_named_ledger(tmp_path, monkeypatch, config_file, name):
    monkeypatch.chdir(tmp_path)
    _write(tmp_path / name, five_step_task() + five_step_task("task-2", start=T0 + 300))
    result = tier("report", "--all", "--json", "-c", config_file, "--db", name)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["totals"]["calls"] == 10 and data["quality"]["total"]["retries"] == 1  # the second connection's part


def test_report_and_log_read_without_sqlalchemy_or_litellm(tmp_path, config_file):
    import subprocess
    import sys

    db = _write(tmp_path / "l.db", five_step_task())  # an existing ledger: nothing to migrate
    script = (
        "import sys\n"
        "from tiercli.cli import main\n"
        "for argv in (['report', '--all', '--json'], ['report', 'sessions', '--all'], ['log', '-n', '3']):\n"
        f"    sys.argv = ['tier', *argv, '--db', {str(db)!r}] + (['-c', {str(config_file)!r}] if argv[0] == 'report' else [])\n"
        "    try:\n"
        "        main()\n"
        "    except SystemExit as exc:\n"
        "        assert not exc.code, exc.code\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('sqlalchemy', 'sqlmodel', 'litellm'))\n"
        "print('LOADED', loaded, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "LOADED []" in proc.stderr, proc.stderr
