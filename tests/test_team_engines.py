"""The same commands on both engines give the same answers: `tier import claude-code`, `tier log` and
`tier replay` against a SQLite file and a PostgreSQL database holding the same calls."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiercli.cli import app
from tiercli.ledger import open_ledger

FIXTURES = Path(__file__).resolve().parent / "data" / "claude_code"
runner = CliRunner()
COMPARED = ("id", "started_at", "session", "kind", "source", "served_model", "input_tokens", "cache_read_tokens",
            "cache_write_tokens", "cache_write_1h_tokens", "output_tokens", "cost_usd", "unpriced", "status",
            "external_id", "prompt_text")


def tier(*args: str):
    import re

    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return re.sub(r" in \d+\.\d+ s\)", " in ? s)", result.stdout)  # the time an import took differs


@pytest.fixture
def both(tmp_path, pg_url):
    return {"sqlite": str(tmp_path / "l.db"), "postgresql": pg_url}


def test_import_log_and_replay_agree_on_both_engines(both):
    imported = {name: tier("import", "claude-code", str(FIXTURES), "--db", db) for name, db in both.items()}
    assert imported["sqlite"] == imported["postgresql"] and "added" in imported["sqlite"].lower()
    again = {name: tier("import", "claude-code", str(FIXTURES), "--db", db) for name, db in both.items()}
    assert again["sqlite"] == again["postgresql"]  # nothing added twice, on either

    rows = {}
    for name, db in both.items():
        with open_ledger(db) as ledger:
            rows[name] = [{k: (bool(r[k]) if k == "unpriced" else r[k]) for k in COMPARED}
                          for r in ledger.recent_calls(10_000)]
    assert rows["sqlite"] and rows["sqlite"] == rows["postgresql"]

    logs = {name: json.loads(tier("log", "-n", "50", "--json", "--db", db)) for name, db in both.items()}
    assert logs["sqlite"] == logs["postgresql"] and len(logs["sqlite"]) == len(rows["sqlite"][:50])

    replays = {name: json.loads(tier("replay", "--all", "--json", "--db", db)) for name, db in both.items()}
    for r in replays.values():
        r.pop("selection", None), r.pop("seconds", None)  # the ledger's location, the time taken
    assert replays["sqlite"] == replays["postgresql"]


def test_the_ledger_url_comes_from_db_then_tier_db_then_the_config(tmp_path, pg_url, monkeypatch):
    from tiercli import paths

    # typer's Path options collapse the URL's double slash; the target is the URL again
    assert paths.ledger_target(Path(pg_url)) == pg_url
    assert paths.ledger_target(None, lambda: pg_url) == pg_url
    assert paths.ledger_target("ledger.db", pg_url) == Path("ledger.db")
    with open_ledger(pg_url) as ledger:
        ledger.upsert_call({"id": "from-pg", "started_at": 1.0, "status": "ok"})
    config = tmp_path / "config.yaml"
    offline = (Path(__file__).resolve().parent.parent / "sample_configs" / "offline.yaml").read_text()
    config.write_text(offline.replace("ledger: {store_prompts: full}", f"ledger: {{store_prompts: full, url: '{pg_url}'}}"))
    monkeypatch.setenv("TIER_CONFIG", str(config))
    assert [r["id"] for r in json.loads(tier("log", "--json"))] == ["from-pg"]  # the config's ledger.url
    monkeypatch.setenv("TIER_DB", str(tmp_path / "local.db"))
    assert tier("log", "--json").strip() == "[]"  # TIER_DB wins over the config
    assert [r["id"] for r in json.loads(tier("log", "--json", "--db", pg_url))] == ["from-pg"]  # --db wins
