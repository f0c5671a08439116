"""`tier report` gives the same figures on SQLite and PostgreSQL for the same calls: the whole report
(--json), its views (--by user/day/..., sessions, tasks), windows, the --user filter, and `tier log
--user`. The calls are written through the ledger API (upsert_call, add_feedback) into a SQLite file
and a database on the real PostgreSQL server of tests/pgserver.py; nothing is mocked."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiercli.cli import app
from tiercli.ledger import open_ledger

runner = CliRunner()
DAY = 86_400
T0 = 1_790_000_000 - 1_790_000_000 % DAY  # a UTC midnight
MODELS = {"tier1": "claude-haiku-4-5", "tier2": "claude-sonnet-4-5", "tier3": "claude-opus-4-5"}
USERS = ["alice", "bob", None]
OLD = -40 * 365 * DAY - 3600.5  # in 1930, an hour and a half second before a midnight
TASKS = ["bug_fix", "feature", "search", "architecture", None]


def _calls(n: int = 400, seed: int = 5) -> list[dict]:
    """Varied calls: every kind, users and none, overrides, fallbacks, cascades, errors, unpriced
    and pending ones, tasks of several steps, retried prompts, projects, compactions with their
    history, and times on both sides of UTC midnights, before 1970 and at its first second."""
    rnd = random.Random(seed)
    times = [T0 + d * DAY + s for d in range(-3, 4) for s in (-0.001, 0.0, 0.001)]  # next to midnights
    times += [-1.5 * DAY, -DAY, -0.25, 0.0, 0.5, 86_399.999, OLD]  # 1969, 1970, 1930
    rows = []
    for i in range(n):
        at = times[i] if i < len(times) else T0 + rnd.uniform(-3 * DAY, 3 * DAY)
        session = f"s{rnd.randint(0, 12)}"
        kind = rnd.choices(["main", "classifier", "compaction", "import"], [70, 12, 6, 12])[0]
        tier = None if kind == "import" else rnd.choice(list(MODELS))
        status = rnd.choices(["ok", "error", "interrupted", "pending", "refused"], [85, 6, 3, 2, 4])[0]
        unpriced = status == "ok" and rnd.random() < 0.05
        model = "local/mystery" if unpriced else MODELS[tier or rnd.choice(list(MODELS))]
        decision = {"import": "import", "main": rnd.choices(["local", "override", "cascade", "sticky"], [80, 8, 6, 6])[0]}
        tokens = {"input_tokens": rnd.randint(0, 5000), "cache_read_tokens": rnd.choice([0, rnd.randint(0, 60_000)]),
                  "cache_write_tokens": 0, "cache_write_1h_tokens": 0, "output_tokens": rnd.randint(0, 3000)}
        if rnd.random() < 0.3:
            tokens["cache_write_tokens"] = rnd.randint(4, 8000)
            tokens["cache_write_1h_tokens"] = tokens["cache_write_tokens"] // rnd.choice([1, 4, 10**9])
        cost = None if unpriced or status in ("pending", "refused") else round(rnd.uniform(0, 0.2), rnd.randint(3, 12))
        task_id = f"t{i // 3}" if kind == "main" and rnd.random() < 0.5 else None
        prompt = f"p{rnd.randint(0, 60)}" if kind == "main" else f"x{i}"
        meta = {"project": f"/work/proj{i % 3}"} if rnd.random() < 0.3 else {"cwd": f"/home/u/repo{i % 2}"}
        if kind == "compaction":
            meta["history_tokens"] = rnd.randint(5_000, 90_000)
        rows.append({
            "id": f"c{i:05d}", "started_at": at, "ended_at": at + 1, "session": session, "kind": kind,
            "source": "claude-code" if kind == "import" else "tier", "status": status,
            "task_type": rnd.choice(TASKS) if kind != "classifier" else None,
            "decision_source": decision.get(kind), "tier": tier, "served_tier": tier,
            "decided_tier": rnd.choice(list(MODELS)) if decision.get(kind) == "override" else None,
            "requested_model": model, "served_model": model if status == "ok" else None,
            "fallback_count": 1 if rnd.random() < 0.05 else 0, "unpriced": unpriced, "cost_usd": cost,
            "error_class": rnd.choice(["RateLimitError", "APIConnectionError"]) if status == "error" else None,
            "prompt_hash": prompt, "task_id": task_id, "config_hash": "cfgA" if at < T0 else "cfgB",
            "user_id": rnd.choice(USERS), "meta_json": json.dumps(meta),
            "parent_id": f"c{i - 1:05d}" if kind == "compaction" and i else None,
            **tokens,
        })
    asked = [r for r in rows if r["kind"] == "main" and r["status"] == "ok"][:40:2]
    for n, r in enumerate(asked):  # the same instruction again a little later: retries
        rows.append({**r, "id": f"again{n:03d}", "started_at": r["started_at"] + 90 + n, "task_id": None})
    return rows


@pytest.fixture(scope="module")
def calls():
    return _calls()


@pytest.fixture
def both(tmp_path, pg_url, calls):
    targets = {"sqlite": str(tmp_path / "l.db"), "postgresql": pg_url}
    rnd = random.Random(9)
    verdicts = [(r["id"], rnd.choice(["good", "bad"])) for r in calls if r["kind"] == "main"][::4]
    for target in targets.values():
        with open_ledger(target, recover=False) as ledger:
            for row in calls:
                ledger.upsert_call(row)
            for call_id, verdict in verdicts:
                ledger.add_feedback(call_id, verdict, None)
    config = tmp_path / "config.yaml"
    config.write_text((Path(__file__).resolve().parent.parent / "sample_configs" / "offline.yaml").read_text())
    return targets, str(config)


def _tier_json(*args: str):
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    if isinstance(data, dict) and isinstance(data.get("window"), dict):
        data["window"].pop("generated_at", None), data["window"].pop("generated_at_iso", None)
    return data


def _same(a, b, path="") -> None:
    """Equal, floats to 1e-9 relative (both engines sum doubles, in their own order)."""
    if isinstance(a, float) or isinstance(b, float):
        assert isinstance(a, (int, float)) and isinstance(b, (int, float)), (path, a, b)
        assert a == pytest.approx(b, rel=1e-9, abs=1e-12), (path, a, b)
    elif isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), (path, a, b)
        for k in a:
            _same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list):
        assert isinstance(b, list) and len(a) == len(b), (path, a, b)
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{path}[{i}]")
    else:
        assert a == b, (path, a, b)


def _cents(x) -> Decimal:
    return Decimal(str(x)).quantize(Decimal("0.01"))


def test_the_report_is_the_same_on_sqlite_and_postgresql(both, calls):
    targets, config = both
    for window in (["--all"], ["--since", _iso(T0 - DAY), "--until", _iso(T0 + DAY)], ["--all", "--user", "alice"],
                   ["--all", "--user", "(none)"], ["--all", "--session", "s3"], ["--all", "--retry-window", "100000"]):
        got = {e: _tier_json("report", *window, "--json", "--timezone", "UTC", "-c", config, "--db", db)
               for e, db in targets.items()}
        sqlite, pg = got["sqlite"], got["postgresql"]
        _same(sqlite, pg, " ".join(window))
        user = window[window.index("--user") + 1] if "--user" in window else None
        mine = [r for r in calls if r["kind"] != "run" and (user is None or r["user_id"] == (None if user == "(none)" else user))
                and ("--session" not in window or r["session"] == "s3")
                and ("--since" not in window or T0 - DAY <= r["started_at"] < T0 + DAY)]
        # exact: the cost to the cent, every count and token bucket, as summed here from the calls
        cost = sum((Decimal(str(r["cost_usd"])) for r in mine if r["cost_usd"] is not None), Decimal(0))
        for data in (sqlite, pg):
            assert _cents(data["totals"]["cost_usd"]) == _cents(cost)
            assert data["totals"]["calls"] == len(mine) > 0
            assert data["totals"]["tokens"] == sum(r["input_tokens"] + r["cache_read_tokens"] + r["cache_write_tokens"]
                                                   + r["output_tokens"] for r in mine)
        if window == ["--all"]:
            days = {d["day"]: d["calls"] for d in pg["days"] if d["calls"]}
            # floor, not truncation: a call at -0.25 s is on 1969-12-31, one at 86399.999 s on 1970-01-01
            assert days["1969-12-31"] >= 2 and days["1970-01-01"] >= 3 and days[_iso(OLD)[:10]] == 1
            assert pg["quality"]["total"]["retries"] > 0 and pg["quality"]["total"]["feedback_bad"] > 0
            assert pg["quality"]["total"]["overrides"] > 0 and pg["quality"]["total"]["escalations"] > 0
            assert pg["savings"]["compaction"]["calls"] > 0 and pg["caching"]["sticky_calls"] > 0


def _iso(ts: float) -> str:
    import datetime as dt

    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat().replace("+00:00", "Z")


@pytest.mark.parametrize("view", [["--by", "user"], ["--by", "day"], ["--by", "week", "--timezone", "America/New_York"],
                                  ["--by", "project"], ["--by", "model"], ["sessions"], ["tasks"],
                                  ["--by", "tier", "--user", "bob"]])
def test_the_views_are_the_same_on_sqlite_and_postgresql(both, calls, view):
    targets, config = both
    got = {e: _tier_json("report", *view, "--all", "--json", "-c", config, "--db", db) for e, db in targets.items()}
    _same(got["sqlite"], got["postgresql"], " ".join(view))
    if view == ["--by", "user"]:
        rows = {r["key"]: r for r in got["postgresql"]["rows"]}
        assert set(rows) == {"alice", "bob", "(none)"}
        for user, row in rows.items():
            mine = [r for r in calls if r["user_id"] == (None if user == "(none)" else user)]
            assert row["calls"] == len(mine)
            assert _cents(row["cost_usd"]) == _cents(sum(Decimal(str(r["cost_usd"])) for r in mine if r["cost_usd"] is not None))
            assert row["output_tokens"] == sum(r["output_tokens"] for r in mine)


def test_log_user_filter_is_the_same_on_both_engines(both, calls):
    targets, _config = both
    for user in ("alice", "(none)"):
        got = {e: _tier_json("log", "-n", "1000", "--user", user, "--json", "--db", db) for e, db in targets.items()}
        assert got["sqlite"] == got["postgresql"]
        wanted = None if user == "(none)" else user
        assert sorted(r["id"] for r in got["sqlite"]) == sorted(r["id"] for r in calls if r["user_id"] == wanted)


def test_an_empty_window_is_the_same_on_both_engines(both):
    targets, config = both
    args = ("report", "--since", _iso(T0 + 30 * DAY), "--json", "-c", config)
    got = {e: _tier_json(*args, "--db", db) for e, db in targets.items()}
    _same(got["sqlite"], got["postgresql"])
    assert got["postgresql"]["totals"]["calls"] == 0 and got["postgresql"]["window"]["ledger_calls"] > 0


def test_both_retry_searches_agree_on_both_engines(both):
    """The window-function search (narrow windows) and the repeated-prompt-hash one (wide windows)."""
    import yaml

    from tiercli.config import validate
    from tiercli.report import build_report

    targets, config = both
    cfg = validate(yaml.safe_load(Path(config).read_text()), "test")
    quality = {}
    for engine, db in targets.items():
        with open_ledger(db, recover=False) as ledger:
            for threshold in (0, 10**9):
                data = build_report(ledger, cfg, since=None, until=None, session=None, now=T0, _narrow_threshold=threshold)
                quality[engine, threshold] = data["quality"]
    assert quality["sqlite", 0]["total"]["retries"] > 0
    for key, value in quality.items():
        _same(value, quality["sqlite", 0], str(key))
