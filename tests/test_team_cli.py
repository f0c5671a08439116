"""`tier users` and `tier doctor` end to end (CliRunner, a real ledger file), and the gateway's user
tokens on a SQLite ledger (the embedded offline config, Starlette's TestClient)."""

from __future__ import annotations

import json
import sqlite3

import pytest
from typer.testing import CliRunner

from tiercli.cli import app
from tiercli.ledger import SCHEMA_VERSION

runner = CliRunner()


def tier(*args: str):
    return runner.invoke(app, list(args))


@pytest.fixture
def db(tmp_path):
    return str(tmp_path / "team.db")


def test_users_add_list_disable_rotate(db):
    added = tier("users", "add", "ann", "--daily-usd", "2.5", "--db", db)
    assert added.exit_code == 0, added.output
    token = added.stdout.strip().splitlines()[-1]
    assert token.startswith("tier_") and len(token) > 40
    listed = json.loads(tier("users", "list", "--json", "--db", db).stdout)
    assert listed == [{"name": "ann", "token": token[:10] + "...", "daily_usd": 2.5, "monthly_usd": None,
                       "disabled": False, "created_at": listed[0]["created_at"], "rotated_at": None}]
    assert token not in open(db, "rb").read().decode("latin-1")  # only the hash is stored

    again = tier("users", "add", "ann", "--db", db)
    assert again.exit_code == 5 and "user 'ann' already exists" in again.output
    bad = tier("users", "add", "no spaces please", "--db", db)
    assert bad.exit_code == 2 and "not valid" in bad.output
    negative = tier("users", "add", "bob", "--daily-usd", "-1", "--db", db)
    assert negative.exit_code == 2 and "--daily-usd must be 0 or more" in negative.output

    assert tier("users", "disable", "ann", "--db", db).exit_code == 0
    assert json.loads(tier("users", "list", "--json", "--db", db).stdout)[0]["disabled"] is True
    missing = tier("users", "disable", "nobody", "--db", db)
    assert missing.exit_code == 2 and "no user 'nobody'" in missing.output

    rotated = tier("users", "rotate", "ann", "--db", db)
    new = rotated.stdout.strip().splitlines()[-1]
    assert rotated.exit_code == 0 and new.startswith("tier_") and new != token
    assert json.loads(tier("users", "list", "--json", "--db", db).stdout)[0]["rotated_at"] is not None


def test_doctor_checks_database_schema_and_tokens(db):
    assert tier("doctor", "--db", db).exit_code == 5  # no ledger yet: a clear error, nothing created
    tier("users", "add", "ann", "--db", db)
    ok = tier("doctor", "--db", db)
    assert ok.exit_code == 0, ok.output
    assert f"schema version {SCHEMA_VERSION}" in ok.stdout and "1 user(s), 1 enabled" in ok.stdout
    raw = sqlite3.connect(db)
    raw.execute("UPDATE users SET token_hash = 'plaintext-token'")
    raw.commit()
    raw.close()
    broken = tier("doctor", "--json", "--db", db)
    assert broken.exit_code == 5
    assert [c["ok"] for c in json.loads(broken.stdout)] == [True, True, False]


def test_the_gateway_checks_user_tokens_and_records_the_user(tmp_path, db):
    from starlette.testclient import TestClient

    from tiercli import config
    from tiercli.serve import create_app

    token = tier("users", "add", "ann", "--db", db).stdout.strip().splitlines()[-1]
    tier("users", "add", "bob", "--daily-usd", "0", "--db", db)
    body = {"model": "tier1", "max_tokens": 50, "messages": [{"role": "user", "content": "hello"}]}
    app = create_app(config.load(None), db)
    with TestClient(app, base_url="http://127.0.0.1:4141") as client:  # TestClient's own Host, testserver, is refused
        assert client.get("/health").status_code == 200
        denied = client.post("/v1/chat/completions", json=body)
        assert denied.status_code == 401 and "missing, wrong or rotated token" in denied.json()["error"]["message"]
        assert client.post("/v1/chat/completions", json=body, headers={"authorization": f"Bearer {token}"}).status_code == 200
        assert client.post("/v1/messages", json=body, headers={"x-api-key": token}).status_code == 200
        app.state.gateway.flush()
    raw = sqlite3.connect(db)
    assert [r[0] for r in raw.execute("SELECT user_id FROM calls ORDER BY started_at")] == ["ann", "ann"]
