"""Team mode's ledger on both engines: the same schema, migrations, spend triggers, budgets, users and
recovery on a SQLite file and on a real PostgreSQL server (tests/pgserver.py)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from tiercli import procinfo
from tiercli.errors import LedgerError
from tiercli.guards import Cap
from tiercli.ledger import SCHEMA_VERSION, open_ledger
from tiercli.ledger.db import MIGRATIONS


@pytest.fixture(params=["sqlite", "postgresql"])
def target(request, tmp_path):
    if request.param == "sqlite":
        return tmp_path / "ledger.db"
    return request.getfixturevalue("pg_url")


def _spend(ledger, table="spend_days"):
    return {tuple(v for k, v in r.items() if k != "usd"): r["usd"] for r in ledger._select(f"SELECT * FROM {table}")}


def test_migrations_are_recorded_once_on_both_engines(target):
    with open_ledger(target) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION == max(v for v, _ in MIGRATIONS)
    with open_ledger(target) as ledger:  # reopening migrates nothing
        rows = ledger._select("SELECT version, description FROM schema_migrations ORDER BY version")
    assert [(r["version"], r["description"]) for r in rows] == MIGRATIONS


def test_same_columns_on_both_engines(tmp_path, pg_url):
    with open_ledger(tmp_path / "l.db") as lite, open_ledger(pg_url) as pg:
        assert set(lite.columns) == set(pg.columns)
        assert {"user_id", "owner_host", "owner_pid", "task_id", "reserved_usd"} <= set(pg.columns)


def test_a_newer_schema_is_refused_and_left_untouched(pg_url):
    open_ledger(pg_url).close()
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("INSERT INTO schema_migrations (version, applied_at, description) VALUES (99, 0, 'future')")
    with pytest.raises(LedgerError, match="schema version 99, newer"):
        open_ledger(pg_url)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS) + 1


def test_a_database_of_another_program_is_refused(pg_url):
    import psycopg

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE calls (who text, phoned_at timestamp)")
    with pytest.raises(LedgerError, match="not a tier ledger"):
        open_ledger(pg_url)
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("SELECT to_regclass('schema_migrations')").fetchone()[0] is None


def test_concurrent_first_opens_migrate_once(pg_url):
    errors: list[BaseException] = []

    def open_close():
        try:
            open_ledger(pg_url).close()
        except BaseException as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=open_close) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with open_ledger(pg_url) as ledger:
        assert [r["version"] for r in ledger._select("SELECT version FROM schema_migrations ORDER BY version")] == [v for v, _ in MIGRATIONS]


def test_spend_per_day_and_per_user_follow_every_change(target):
    day = 86_400 * 20_000 + 5  # 2024-10-04
    with open_ledger(target) as ledger:
        ledger.upsert_call({"id": "a", "started_at": day, "reserved_usd": 0.3, "user_id": "ann"})
        ledger.upsert_call({"id": "b", "started_at": day + 60, "cost_usd": 0.2, "user_id": "bob"})
        ledger.upsert_call({"id": "c", "started_at": day + 90, "cost_usd": 0.05})  # no user: the team's only
        assert _spend(ledger)[("2024-10-04",)] == pytest.approx(0.55)
        assert _spend(ledger, "spend_user_days") == pytest.approx({("ann", "2024-10-04"): 0.3, ("bob", "2024-10-04"): 0.2})
        ledger.upsert_call({"id": "a", "started_at": day, "reserved_usd": None, "cost_usd": 0.1, "user_id": "ann"})
        ledger.update_call("b", user_id="ann")  # moved to another user
        assert _spend(ledger, "spend_user_days") == pytest.approx({("ann", "2024-10-04"): 0.3, ("bob", "2024-10-04"): 0.0})
        with ledger._tx() as conn:
            conn.execute("DELETE FROM calls WHERE id = 'b'")
        assert _spend(ledger)[("2024-10-04",)] == pytest.approx(0.15)
        assert _spend(ledger, "spend_user_days")[("ann", "2024-10-04")] == pytest.approx(0.1)


def test_user_caps_count_only_that_users_spend(target):
    now = time.time()
    since = now - 3600
    with open_ledger(target) as ledger:
        row = {"started_at": now, "status": "pending", "kind": "main"}
        caps_ann = [Cap("daily", 10.0, since=since), Cap("daily", 1.0, since=since, user="ann")]
        assert ledger.insert_pending({**row, "id": "1", "user_id": "ann"}, caps_ann, 0.6) is None
        over = ledger.insert_pending({**row, "id": "2", "user_id": "ann"}, caps_ann, 0.6)
        assert over is not None and over[0].user == "ann" and over[1] == pytest.approx(0.6)
        caps_bob = [Cap("daily", 10.0, since=since), Cap("daily", 1.0, since=since, user="bob")]
        assert ledger.insert_pending({**row, "id": "3", "user_id": "bob"}, caps_bob, 0.6) is None
        team = ledger.insert_pending({**row, "id": "4", "user_id": "bob"}, [Cap("daily", 1.5, since=since)], 0.6)
        assert team is not None and team[0].user is None and team[1] == pytest.approx(1.2)
        assert {r["id"] for r in ledger.recent_calls(10)} == {"1", "3"}


def test_parallel_reservations_never_pass_the_same_check(pg_url):
    """8 threads, each with its own connection (as 8 gateways): the cap admits exactly what fits."""
    cap = [Cap("daily", 1.0, since=time.time() - 60, user="ann")]
    admitted: list[str] = []
    lock = threading.Lock()

    def worker(n: int):
        with open_ledger(pg_url) as ledger:
            for i in range(10):
                call_id = f"{n}-{i}"
                if ledger.insert_pending({"id": call_id, "started_at": time.time(), "status": "pending",
                                          "user_id": "ann"}, cap, 0.03) is None:
                    with lock:
                        admitted.append(call_id)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(admitted) == 33  # floor(1.0 / 0.03): 80 tried
    with open_ledger(pg_url) as ledger:
        assert ledger._select("SELECT COUNT(*) AS n FROM calls")[0]["n"] == 33
        assert ledger._select("SELECT SUM(reserved_usd) AS s FROM calls")[0]["s"] <= 1.0


def test_users_are_stored_hashed_and_can_be_disabled_and_rotated(target):
    from tiercli import team

    token = team.new_token()
    with open_ledger(target) as ledger:
        ledger.add_user("ann", team.token_hash(token), team.hint(token), 2.0, None)
        with pytest.raises(LedgerError, match="already exists"):
            ledger.add_user("ann", team.token_hash("x"), "x", None, None)
        [user] = ledger.list_users()
        assert token not in str(user) and user["token_hash"] == team.token_hash(token)
        assert ledger.user_by_token_hash(team.token_hash(token))["id"] == "ann"
        assert ledger.set_user_disabled("ann", True) and ledger.count_users() == 0
        assert not ledger.set_user_disabled("nobody", True)
        new = team.new_token()
        assert ledger.rotate_user_token("ann", team.token_hash(new), team.hint(new))
        assert ledger.user_by_token_hash(team.token_hash(token)) is None
        assert ledger.user_by_token_hash(team.token_hash(new))["id"] == "ann"
        checks = team.doctor(ledger, SCHEMA_VERSION)
    assert [c.name for c in checks] == ["database", "schema", "users"]
    assert not checks[2].ok  # the only user is disabled


def test_recovery_uses_leases_across_hosts(pg_url):
    """A row owned on another host is settled only once that owner's lease has expired; one owned
    on this host by a dead process at once."""
    now = time.time()
    with open_ledger(pg_url) as ledger:
        base = {"started_at": now, "status": "pending", "reserved_usd": 0.5}
        ledger.upsert_call({**base, "id": "far-live", "owner_host": "far", "owner_pid": 7, "owner_started": 1.0})
        ledger.upsert_call({**base, "id": "far-dead", "owner_host": "far", "owner_pid": 8, "owner_started": 1.0})
        dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
        ledger.upsert_call({**base, "id": "here-dead", "owner_host": procinfo.HOST, "owner_pid": int(dead.stdout),
                            "owner_started": now - 5})
        with ledger._tx() as conn:
            conn.execute("INSERT INTO ledger_leases VALUES ('far', 7, 1.0, %s), ('far', 8, 1.0, %s)",
                         [now + 60, now - 1])
        assert sorted(ledger.recover_orphans()) == ["far-dead", "here-dead"]
        assert ledger.recover_orphans() == []  # settled once
        rows = {r["id"]: r for r in ledger.recent_calls(10)}
    assert rows["far-live"]["status"] == "pending"
    assert rows["far-dead"]["status"] == "interrupted" and rows["far-dead"]["reserved_usd"] is None
    assert "pid 8 on far" in rows["far-dead"]["error_message"] and rows["far-dead"]["cost_usd"] is None


def test_a_pending_row_takes_a_lease_that_close_gives_back(pg_url):
    with open_ledger(pg_url) as ledger:
        ledger.upsert_call({"id": "p", "started_at": time.time(), "status": "pending", "owner_pid": procinfo.os.getpid(),
                            "owner_started": procinfo.this_process_started(), "owner_host": procinfo.HOST})
        [lease] = ledger._select("SELECT * FROM ledger_leases")
        assert lease["owner_host"] == procinfo.HOST and lease["expires_at"] > time.time()
    with open_ledger(pg_url, recover=False) as ledger:
        assert ledger._select("SELECT * FROM ledger_leases") == []


def test_the_sqlite_path_imports_no_postgresql_package(tmp_path):
    open_ledger(tmp_path / "l.db").close()  # created (migrations load SQLModel); the hot path then does not
    code = ("import sys; from tiercli.ledger import open_ledger; l = open_ledger(sys.argv[1]); "
            "l.upsert_call({'id': 'x', 'started_at': 1.0}); l.recent_calls(5); l.close(); "
            "bad = [m for m in sys.modules if m.startswith(('psycopg', 'tiercli.ledger.pg', 'sqlalchemy'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.db")], check=True)


def test_an_unreachable_database_is_a_clear_ledger_error(pg_server):
    from pgserver import free_port

    url = f"postgresql://tier@127.0.0.1:{free_port()}/nothing"
    with pytest.raises(LedgerError, match="cannot open the ledger postgresql://tier@127.0.0.1"):
        open_ledger(url)


def test_spend_by_user_is_the_same_on_both_engines(tmp_path, pg_url):
    calls = [("1", "ann", "ok", 0.25), ("2", "ann", "ok", None), ("3", "bob", "ok", 0.5), ("4", "bob", "refused", 0.0),
             ("5", None, "ok", 0.125), ("6", "ann", "error", 0.0625)]
    out = []
    for target in (tmp_path / "l.db", pg_url):
        with open_ledger(target) as ledger:
            for i, (call_id, user, status, cost) in enumerate(calls):
                ledger.upsert_call({"id": call_id, "started_at": 1000.0 + i, "user_id": user, "status": status,
                                    "cost_usd": cost, "unpriced": cost is None})
            out.append(([dict(r) for r in ledger.spend_by_user()], [dict(r) for r in ledger.spend_by_user(since=1002.0)]))
    assert out[0] == out[1]
    assert out[0][0] == [
        {"user_id": "bob", "calls": 1, "refused": 1, "cost_usd": 0.5, "unpriced": 0},
        {"user_id": "ann", "calls": 3, "refused": 0, "cost_usd": 0.3125, "unpriced": 1},
        {"user_id": None, "calls": 1, "refused": 0, "cost_usd": 0.125, "unpriced": 0},
    ]
