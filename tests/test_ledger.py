"""The ledger: a real SQLite file, WAL, migrations recorded, foreign and newer files refused untouched."""

import sqlite3
import time

import pytest

from tiercli.errors import LedgerError
from tiercli.ledger import SCHEMA_VERSION, Ledger
from tiercli.ledger.db import APPLICATION_ID, MIGRATIONS


def test_new_ledger_is_wal_versioned_and_marked(tmp_path):
    path = tmp_path / "sub" / "dir" / "ledger.db"
    with Ledger(path) as ledger:
        assert ledger.wal
        assert ledger.schema_version() == SCHEMA_VERSION == max(v for v, _ in MIGRATIONS)
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert raw.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    assert [v for v, in raw.execute("SELECT version FROM schema_migrations ORDER BY version")] == [v for v, _ in MIGRATIONS]
    assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION


def test_upsert_by_id_never_duplicates(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger:
        row = {"id": "abc", "started_at": time.time(), "status": "pending", "tier": "tier1"}
        ledger.upsert_call(row)
        ledger.upsert_call({**row, "status": "ok", "output_tokens": 7})
        ledger.upsert_call({**row, "status": "ok", "output_tokens": 7})
        calls = ledger.recent_calls(10)
    assert len(calls) == 1
    assert calls[0]["status"] == "ok" and calls[0]["output_tokens"] == 7


def test_unknown_column_is_a_bug_not_a_silent_drop(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger, pytest.raises(ValueError):
        ledger.upsert_call({"id": "x", "started_at": 1.0, "no_such_column": 1})


def test_reopening_does_not_migrate_twice(tmp_path):
    path = tmp_path / "l.db"
    Ledger(path).close()
    Ledger(path).close()
    raw = sqlite3.connect(path)
    assert raw.execute("SELECT COUNT(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_foreign_file_is_refused_and_untouched(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"my shopping list\n" * 10)
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="not a SQLite database"):
        Ledger(path)
    assert path.read_bytes() == before


def test_foreign_sqlite_database_is_refused_and_untouched(tmp_path):
    path = tmp_path / "other.db"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE photos (id INTEGER)")
    raw.commit()
    raw.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="another program"):
        Ledger(path)
    assert path.read_bytes() == before
    assert not (tmp_path / "other.db-wal").exists()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "l.db"
    Ledger(path).close()
    raw = sqlite3.connect(path)
    raw.execute("INSERT INTO schema_migrations VALUES (99, 0, 'from the future')")
    raw.commit()
    raw.close()
    with pytest.raises(LedgerError, match="schema version 99, newer"):
        Ledger(path)


def test_corrupt_ledger_is_refused(tmp_path):
    path = tmp_path / "l.db"
    with Ledger(path) as ledger:
        ledger.upsert_call({"id": "a", "started_at": 1.0})
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    path.write_bytes(bytes(data))
    with pytest.raises(LedgerError):
        Ledger(path)


def test_uncreatable_directory(tmp_path):
    # (as root every directory is writable, so make the parent a regular file instead)
    blocker = tmp_path / "afile"
    blocker.write_text("x")
    with pytest.raises(LedgerError, match="cannot create the ledger directory"):
        Ledger(blocker / "sub" / "l.db")


def test_directory_as_ledger_path(tmp_path):
    with pytest.raises(LedgerError, match="is a directory"):
        Ledger(tmp_path)


def test_find_call_by_prefix(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.upsert_call({"id": "abcdef01", "started_at": 1.0})
        ledger.upsert_call({"id": "abcdef02", "started_at": 2.0})
        assert ledger.find_call("abcdef01")["id"] == "abcdef01"
        assert ledger.find_call("abcdef") is None  # ambiguous
        assert ledger.find_call("zzz") is None


def test_schema_versions_agree():
    from tiercli.ledger import db, models

    assert db.SCHEMA_VERSION == models.SCHEMA_VERSION == max(v for v, _ in db.MIGRATIONS)


def test_the_ledger_api_and_a_bare_insert_write_the_same_defaults(tmp_path):
    """Column defaults live in the schema: a row the ledger writes and one a bare INSERT writes agree."""
    with Ledger(tmp_path / "l.db") as ledger:
        ledger.upsert_call({"id": "raw", "started_at": 1.0})
        other = sqlite3.connect(tmp_path / "l.db")
        with other:
            other.execute("INSERT INTO calls (id, started_at) VALUES ('sa', 2.0)")
        other.close()
        raw, sa = sorted(ledger.recent_calls(2), key=lambda r: r["id"])
    for key in ("kind", "source", "status", "attempts", "input_tokens", "unpriced", "output_estimated"):
        assert raw[key] == sa[key]
    assert (raw["kind"], raw["status"], raw["attempts"], raw["unpriced"]) == ("main", "pending", 1, 0)


def test_hot_path_does_not_load_sqlalchemy(tmp_path):
    import subprocess
    import sys

    Ledger(tmp_path / "l.db").close()  # created (and migrated) here
    code = ("import sys; from tiercli.ledger import Ledger; l = Ledger(sys.argv[1]); "
            "l.upsert_call({'id': 'x', 'started_at': 1.0}); l.recent_calls(5); l.close(); "
            "assert 'sqlalchemy' not in sys.modules, 'sqlalchemy loaded'")
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "l.db")], check=True)


def test_a_v1_ledger_is_migrated_in_place(tmp_path):
    path = tmp_path / "old.db"
    with Ledger(path) as ledger:
        ledger.upsert_call({"id": "kept", "started_at": 1.0, "status": "ok", "cost_usd": 0.5})
    raw = sqlite3.connect(path)  # turn it back into what tier 0.1 with schema 1 wrote
    for trigger in ("calls_retry_insert", "calls_retry_update", "calls_retry_delete"):  # migration 7
        raw.execute(f"DROP TRIGGER {trigger}")
    raw.execute("DROP TABLE retry_candidates")
    for trigger in ("calls_user_spend_insert", "calls_user_spend_update", "calls_user_spend_delete"):
        raw.execute(f"DROP TRIGGER {trigger}")
    for table in ("spend_user_days", "users", "ledger_leases"):
        raw.execute(f"DROP TABLE {table}")
    raw.execute("DROP INDEX ix_calls_user_id")
    for index in ("ix_calls_run", "ix_calls_compaction"):  # migration 6
        raw.execute(f"DROP INDEX {index}")
    for column in ("user_id", "owner_host"):
        raw.execute(f"ALTER TABLE calls DROP COLUMN {column}")
    for trigger in ("calls_spend_insert", "calls_spend_update", "calls_spend_delete"):
        raw.execute(f"DROP TRIGGER {trigger}")
    raw.execute("DROP TABLE spend_days")
    raw.execute("ALTER TABLE calls DROP COLUMN reserved_usd")
    raw.execute("ALTER TABLE calls DROP COLUMN check_passed")
    raw.execute("DROP INDEX ix_calls_pending")
    for column in ("task_id", "owner_pid", "owner_started"):
        raw.execute(f"ALTER TABLE calls DROP COLUMN {column}")
    raw.execute("DELETE FROM schema_migrations WHERE version >= 2")
    raw.execute("PRAGMA user_version=1")
    raw.commit()
    raw.close()
    with Ledger(path) as ledger:
        assert ledger.schema_version() == SCHEMA_VERSION
        [row] = ledger.recent_calls(5)
        assert ledger._select("SELECT day, usd FROM spend_days") == [{"day": "1970-01-01", "usd": 0.5}]
    assert row["id"] == "kept" and row["cost_usd"] == 0.5 and row["reserved_usd"] is None
    assert row["task_id"] is None and row["owner_pid"] is None and row["user_id"] is None


def test_spend_days_follow_every_change(tmp_path):
    with Ledger(tmp_path / "l.db") as ledger:
        day = 86_400 * 20_000 + 5  # 2024-10-04
        ledger.upsert_call({"id": "a", "started_at": day, "reserved_usd": 0.3})
        ledger.upsert_call({"id": "b", "started_at": day + 60, "cost_usd": 0.2})
        assert ledger._select("SELECT usd FROM spend_days")[0]["usd"] == pytest.approx(0.5)
        ledger.upsert_call({"id": "a", "started_at": day, "reserved_usd": None, "cost_usd": 0.1})  # settled
        assert ledger._select("SELECT usd FROM spend_days")[0]["usd"] == pytest.approx(0.3)
        with ledger._tx() as conn:
            conn.execute("DELETE FROM calls WHERE id = 'b'")
        assert ledger._select("SELECT usd FROM spend_days")[0]["usd"] == pytest.approx(0.1)


@pytest.mark.parametrize("name", ["a#b.db", "a?mode=rw.db", "a%20b.db", "a b.db", "x#"])
def test_a_foreign_file_at_a_path_with_uri_characters_is_refused_untouched(tmp_path, name):
    """`#`, `?`, `%` and spaces used to be read as URI syntax: a path with `#` bypassed the check
    and migrated another program's database."""
    path = tmp_path / name
    other = sqlite3.connect(path)
    other.execute("CREATE TABLE theirs (x INTEGER)")
    other.execute("INSERT INTO theirs VALUES (1)")
    other.commit()
    other.close()
    before = path.read_bytes()
    with pytest.raises(LedgerError, match="another program"):
        Ledger(path)
    assert path.read_bytes() == before
    assert not any(p.name.startswith(name) and p != path for p in tmp_path.iterdir())  # no -wal/-shm left


@pytest.mark.parametrize("name", ["a#b.db", "a?c.db", "50%.db", "with space.db"])
def test_a_new_ledger_at_a_path_with_uri_characters_works(tmp_path, name):
    path = tmp_path / name
    with Ledger(path) as ledger:
        ledger.upsert_call({"id": "x", "started_at": 1.0, "status": "ok", "cost_usd": 0.5})
        other = sqlite3.connect(path)  # a second connection, by path, opens the same file
        assert other.execute("SELECT COUNT(*) FROM calls").fetchone()[0] == 1
        other.close()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [name]


def test_a_fifo_or_a_directory_as_the_ledger_is_a_clear_error(tmp_path):
    import os

    fifo = tmp_path / "pipe.db"
    os.mkfifo(fifo)
    with pytest.raises(LedgerError, match="named pipe"):
        Ledger(fifo)  # used to block for ever in open()
    with pytest.raises(LedgerError, match="directory"):
        Ledger(tmp_path)
    with pytest.raises(LedgerError, match="device"):
        Ledger("/dev/null")
