"""`tier replay` output: user text escaped, numbers never cut at 60 columns, --csv, renames apart."""

from __future__ import annotations

import csv
import io
import json
import re

from rich.console import Console
from typer.testing import CliRunner

from test_replay_tasks import CONFIG, row
from tiercli import render_replay
from tiercli.cli import app
from tiercli.config import load
from tiercli.ledger import Ledger
from tiercli.replay import Selection, dry_replay

runner = CliRunner()


def _ledger(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG)
    db = tmp_path / "l.db"
    rows = [row(1, 0, "A", "docstring", write=4000, rule="new_task"), row(2, 30, "A", "docstring", read=4000, write=500),
            row(3, 120, "B", "architecture", read=5000, write=800, rule="new_task"),
            row(4, 130, "[bold]x[/bold]", "feature", read=100, rule="new_task", session="[red]s[/red]")]
    with Ledger(db) as led:
        for r in rows:
            led.upsert_call(r)
    return cfg, db


def test_config_hash_and_user_text_are_not_markup(tmp_path):
    cfg, _ = _ledger(tmp_path)
    loaded = load(cfg)
    rows = [row(1, 0, "A", "[bold]docstring[/bold]", write=10), row(2, 5, "A", None, read=10)]
    data = render_replay.dry_json(dry_replay(loaded, rows, Selection("ledger", location="[red]x.db[/red]")), ["tier1"])
    data["config"]["hash"] = "daf808de"  # starts with letters: Rich would read [daf808de] as a tag
    con = Console(record=True, width=100, color_system=None)
    render_replay.print_dry(data, con)
    out = con.export_text()
    assert "[daf808de]" in out and "[red]x.db[/red]" in out and "[bold]docstring[/bold]" in out


def test_sixty_columns_cut_no_number(tmp_path, monkeypatch):
    cfg, db = _ledger(tmp_path)
    monkeypatch.setenv("COLUMNS", "60")
    js = runner.invoke(app, ["replay", "-c", str(cfg), "--db", str(db), "--json"])
    assert js.exit_code == 0, js.output
    data = json.loads(js.stdout)
    text = runner.invoke(app, ["replay", "-c", str(cfg), "--db", str(db)])
    assert text.exit_code == 0, text.output
    assert "…" not in text.stdout
    assert max(len(line) for line in text.stdout.splitlines()) <= 60
    for value in (data["before"]["cost_usd"], data["after"]["cost_usd"], data["cache"]["switch_penalty_usd"]):
        assert render_replay.money(value) in text.stdout
    for c in data["changed"]:
        assert render_replay._signed(c["diff_usd"]) in text.stdout


def test_csv_has_the_json_figures(tmp_path):
    cfg, db = _ledger(tmp_path)
    data = json.loads(runner.invoke(app, ["replay", "-c", str(cfg), "--db", str(db), "--json"]).stdout)
    res = runner.invoke(app, ["replay", "-c", str(cfg), "--db", str(db), "--csv"])
    assert res.exit_code == 0, res.output
    table = list(csv.reader(io.StringIO(res.stdout)))
    assert table[0] == ["section", "key", "metric", "value"]
    got = {(s, k, m): v for s, k, m, v in table[1:]}
    assert float(got[("after", "", "cost_usd")]) == data["after"]["cost_usd"]
    assert float(got[("cache", "", "switch_penalty_usd")]) == data["cache"]["switch_penalty_usd"]
    assert int(got[("tasks", "", "tasks")]) == 3
    bad = runner.invoke(app, ["replay", "-c", str(cfg), "--db", str(db), "--csv", "--json"])
    assert bad.exit_code != 0


def test_renames_are_counted_apart(tmp_path):
    cfg, _ = _ledger(tmp_path)
    rows = [row(1, 0, "B", "architecture", read=3000, write=800)]  # opus-4-5-20251101 -> opus-4-5, same price
    r = dry_replay(load(cfg), rows, Selection("rows"))
    data = render_replay.dry_json(r, ["tier1", "tier2", "tier3"])
    assert data["changed_calls"] == 0 and data["renamed_calls"] == 1
    con = Console(record=True, width=100, color_system=None)
    render_replay.print_dry(data, con)
    out = con.export_text()
    assert "no call changes tier or priced model" in out and re.search(r"1 call\(s\) only change the model's name", out)
