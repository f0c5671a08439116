"""The ledger on PostgreSQL (team mode): the same public methods, schema and invariants as db.py.

Imported only for a `postgresql://` ledger URL (ledger.open_ledger), so local use never loads
psycopg. The hot path speaks psycopg 3 directly on one autocommit connection, each unit of work in
an explicit transaction; migrations run on a SQLAlchemy engine (`engine`).

- Migrations: the same numbered steps as SQLite, recorded in schema_migrations, run in one
  transaction holding pg_advisory_xact_lock(MIGRATION_LOCK), so gateways starting together migrate
  once; a newer schema is refused, and a database holding a `calls` table that is not ours too.
- Budgets: insert_pending takes pg_advisory_xact_lock per budget scope (the team, the user, the
  session; sorted, so two calls never wait on each other crosswise) before reading spend and writing
  the pending row: no two gateways pass the same check. spend_days / spend_user_days are kept by a
  plpgsql trigger in the same transaction as every change to calls.
- Recovery: pids are per host. A process with pending rows keeps a lease (host, pid, start time,
  expiry) renewed by a heartbeat thread that also settles other processes' orphans; a pending row is
  orphaned when its owner is on this host and gone, or elsewhere and its lease has expired.
- Connection loss: settlements (upsert_call, update_call) reconnect and retry for SETTLE_RETRY_S;
  they are idempotent by call id. Other writes fail with a LedgerError at once.
"""

from __future__ import annotations

import os
import re
import threading
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import psycopg
from psycopg.rows import dict_row

from tiercli.errors import LedgerError
from tiercli.ledger.db import MIGRATIONS, ORPHAN_AGE_S, SCHEMA_VERSION
from tiercli.ledger.pg_schema import SPEND, V1_INDEXES, V2, V3, V4, V5, V6, V7
from tiercli.ledger.users import UsersMixin
from tiercli.procinfo import HOST

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

MIGRATION_LOCK = 0x54494552  # "TIER"
BUDGET_LOCK_PREFIX = "tier.budget:"
SETTLE_RETRY_S = float(os.environ.get("TIER_PG_SETTLE_RETRY_S", "30"))
LEASE_S = float(os.environ.get("TIER_LEASE_S", "30"))  # a lease not renewed for this long has expired
BOOL_COLUMNS = frozenset({"output_estimated", "unpriced", "check_passed"})

def safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@/]*@", r"\1:***@", url)


def _libpq_url(url: str) -> str:
    return re.sub(r"^postgres(ql)?(\+psycopg)?://", "postgresql://", url)


class PgLedger(UsersMixin):
    """The ledger on PostgreSQL. Use as a context manager or call close()."""

    engine_name = "postgresql"

    def __init__(self, url: str, *, create: bool = True, recover: bool = True):
        self.url = _libpq_url(url)
        self.path = safe_url(self.url)  # what messages show (never the password)
        self.wal = False
        self._engine: Engine | None = None
        self._columns: tuple[str, ...] | None = None
        self._conn: psycopg.Connection[dict[str, Any]] | None = None
        self._lease: threading.Thread | None = None
        self._stop = threading.Event()
        try:
            self._conn = self._connect()
            version = self._version(self._conn)
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.path} has schema version {version}, newer than this tier knows ({SCHEMA_VERSION})",
                    "upgrade tiercli; the database was left untouched")
            if version < SCHEMA_VERSION:
                if version == 0 and not create:
                    raise LedgerError(f"no ledger at {self.path}", "run `tier ask` or `tier serve` first")
                self._migrate()
            self.recovered: list[str] = self.recover_orphans() if recover else []
        except psycopg.Error as exc:
            self.close()
            raise LedgerError(f"cannot open the ledger {self.path}: {str(exc).strip().splitlines()[0]}",
                              "check the URL, that PostgreSQL runs and accepts this user") from None
        except LedgerError:
            self.close()
            raise

    def __enter__(self) -> "PgLedger":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _connect(self) -> psycopg.Connection[dict[str, Any]]:
        return psycopg.connect(self.url, autocommit=True, row_factory=dict_row, connect_timeout=10,
                               application_name="tier")

    @staticmethod
    def _version(conn: psycopg.Connection[dict[str, Any]]) -> int:
        """The recorded schema version; 0 for an empty database. Refuses a database that is not ours."""
        tables = {r["tablename"] for r in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
        if "schema_migrations" not in tables:
            if "calls" in tables:
                raise LedgerError("this PostgreSQL database has a `calls` table that is not a tier ledger's; "
                                  "it was left untouched", "point --db or TIER_DB at another database")
            return 0
        return _one(conn.execute("SELECT COALESCE(MAX(version), 0) AS v FROM schema_migrations"))["v"]

    # -- migrations --------------------------------------------------------------------------------
    def _migrate(self) -> None:
        from sqlmodel import SQLModel

        from tiercli.ledger.models import Call, Feedback, Lease, Migration, User

        with self.engine.begin() as conn:
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK})")  # concurrent migrators wait
            tables = {r[0] for r in conn.exec_driver_sql(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}
            current = 0
            if "schema_migrations" in tables:
                current = conn.exec_driver_sql("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").scalar() or 0
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.path} has schema version {current}, newer than this tier knows ({SCHEMA_VERSION})",
                    "upgrade tiercli; the database was left untouched")
            steps = {1: V1_INDEXES, 2: V2, 3: V3, 4: V4, 5: V5, 6: V6, 7: V7}
            for version, description in MIGRATIONS:
                if version <= current:
                    continue
                if version == 1:
                    SQLModel.metadata.create_all(conn, tables=[Call.__table__, Feedback.__table__, Migration.__table__])  # type: ignore[attr-defined]  # sqlmodel does not declare __table__
                if version == 4:
                    SQLModel.metadata.create_all(conn, tables=[User.__table__, Lease.__table__])  # type: ignore[attr-defined]  # sqlmodel does not declare __table__
                for stmt in steps[version]:
                    conn.exec_driver_sql(stmt)
                conn.execute(Migration.__table__.insert().values(version=version, applied_at=time.time(),  # type: ignore[attr-defined]  # sqlmodel does not declare __table__
                                                                 description=description))

    # -- SQLAlchemy side (reports, imports) ----------------------------------------------------------
    @property
    def engine(self) -> "Engine":
        if self._engine is None:
            from sqlmodel import create_engine

            self._engine = create_engine("postgresql+psycopg://" + self.url.split("://", 1)[1], pool_pre_ping=True)
        return self._engine

    def close(self) -> None:
        self._stop.set()
        if self._lease is not None:
            self._lease.join(timeout=5)
            self._lease = None
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                if not conn.broken:
                    conn.execute("DELETE FROM ledger_leases WHERE owner_host = %s AND owner_pid = %s AND owner_started = %s",
                                 self._owner())
            except psycopg.Error:
                pass
            conn.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # -- psycopg side (hot path) -------------------------------------------------------------------
    def _q(self, sql: str) -> str:
        return sql.replace("?", "%s")

    def _live(self) -> psycopg.Connection[dict[str, Any]]:
        if self._conn is None or self._conn.closed or self._conn.broken:
            if self._conn is not None:
                self._conn.close()
            self._conn = self._connect()
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[psycopg.Connection[dict[str, Any]]]:
        try:
            conn = self._live()
            with conn.transaction():
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise LedgerError(f"ledger write failed: {str(exc).strip().splitlines()[0]}",
                              f"ledger at {self.path}") from None

    def _run(self, work: Callable[[psycopg.Connection[dict[str, Any]]], Any], *, retry: bool) -> Any:
        """`work` in one transaction; with retry, a lost connection is re-made and the work re-run
        until SETTLE_RETRY_S have passed (only for idempotent work)."""
        deadline = time.monotonic() + SETTLE_RETRY_S
        delay = 0.05
        while True:
            conn = None
            try:
                conn = self._live()
                with conn.transaction():
                    return work(conn)
            except psycopg.Error as exc:
                lost = isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)) or (
                    conn is not None and (conn.broken or conn.closed))
                if not lost:
                    raise
                if not retry or time.monotonic() >= deadline:
                    raise LedgerError(f"ledger write failed: {str(exc).strip().splitlines()[0]}",
                                      f"ledger at {self.path}") from None
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def _select(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        if "?" in sql and "%s" not in sql:  # a portable query written with SQLite's marks (replay.py)
            sql = sql.replace("%", "%%").replace("?", "%s")
        try:
            return list(self._live().execute(sql, list(params)).fetchall())
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise LedgerError(f"ledger read failed: {str(exc).strip().splitlines()[0]}",
                              f"ledger at {self.path}") from None

    @property
    def columns(self) -> tuple[str, ...]:
        if self._columns is None:
            self._columns = tuple(r["column_name"] for r in self._select(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema() "
                "AND table_name = 'calls' ORDER BY ordinal_position"))
        return self._columns

    def _check_columns(self, values: dict[str, Any]) -> list[str]:
        keys = list(values)
        unknown = set(keys) - set(self.columns)
        if unknown:
            raise ValueError(f"unknown call columns: {sorted(unknown)}")
        return keys

    @staticmethod
    def _value(key: str, value: Any) -> Any:
        if key in BOOL_COLUMNS and value is not None:
            return bool(value)
        if isinstance(value, str) and "\x00" in value:  # PostgreSQL text cannot hold NUL; SQLite can
            return value.replace("\x00", "\ufffd")
        return value

    def _insert_sql(self, keys: list[str], conflict: str) -> str:
        return f"INSERT INTO calls ({', '.join(keys)}) VALUES ({', '.join(['%s'] * len(keys))}) {conflict}"

    def upsert_call(self, values: dict[str, Any], update: Iterable[str] | None = None) -> None:
        """Insert or update a call by id; retried over a lost connection (idempotent by id). `update`:
        the columns to set when the row exists (default all given), as in the SQLite ledger."""
        keys = self._check_columns(values)
        if values.get("status") == "pending" and values.get("owner_pid") is not None:
            self._ensure_lease()
        wanted = None if update is None else set(update)
        chosen = keys if wanted is None else [k for k in keys if k in wanted]
        updates = ", ".join(f"{k} = EXCLUDED.{k}" for k in chosen if k != "id") or "id = EXCLUDED.id"
        sql = self._insert_sql(keys, f"ON CONFLICT (id) DO UPDATE SET {updates}")
        params = [self._value(k, values[k]) for k in keys]
        self._run(lambda conn: conn.execute(sql, params), retry=True)

    def update_call(self, call_id: str, **fields: Any) -> None:
        keys = self._check_columns(fields)
        sql = f"UPDATE calls SET {', '.join(f'{k} = %s' for k in keys)} WHERE id = %s"
        params = [*(self._value(k, fields[k]) for k in keys), call_id]
        self._run(lambda conn: conn.execute(sql, params), retry=True)

    def insert_new_calls(self, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        total = 0
        for values in rows:
            groups.setdefault(tuple(values), []).append(values)
            total += 1

        def work(conn: psycopg.Connection[dict[str, Any]]) -> int:
            added = 0
            with conn.cursor() as cur:
                for keys, batch in groups.items():
                    self._check_columns(dict.fromkeys(keys))
                    cur.executemany(self._insert_sql(list(keys), "ON CONFLICT DO NOTHING"),
                                    [[self._value(k, row[k]) for k in keys] for row in batch])
                    added += max(cur.rowcount, 0)
            return added

        added = self._run(work, retry=False)
        return added, total - added

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        rows = self._select("SELECT * FROM calls WHERE id = %s", [call_id])
        return rows[0] if rows else None

    def find_call(self, prefix: str) -> dict[str, Any] | None:
        exact = self.get_call(prefix)
        if exact:
            return exact
        rows = self._select("SELECT * FROM calls WHERE substr(id, 1, %s) = %s LIMIT 2", [len(prefix), prefix])
        return rows[0] if len(rows) == 1 else None

    def recent_calls(self, limit: int) -> list[dict[str, Any]]:
        return self._select('SELECT * FROM calls ORDER BY started_at DESC, id COLLATE "C" LIMIT %s', [limit])

    def session_calls(self, session: str, kinds: tuple[str, ...] = ("main",)) -> int:
        rows = self._select("SELECT COUNT(*) AS n FROM calls WHERE session = %s AND kind = ANY(%s) "
                            "AND status != 'refused'", [session, list(kinds)])
        return rows[0]["n"]

    def session_turns(self, session: str, after: float = 0.0) -> list[dict[str, Any]]:
        return self._select(
            "SELECT id, started_at, prompt_text, response_text FROM calls WHERE session = %s AND kind = 'main' "
            "AND status = 'ok' AND started_at > %s ORDER BY started_at, id COLLATE \"C\"", [session, after])

    def last_compaction(self, session: str) -> dict[str, Any] | None:
        rows = self._select(
            "SELECT id, started_at, response_text, meta_json FROM calls WHERE session = %s AND kind = 'compaction' "
            "AND status = 'ok' ORDER BY started_at DESC LIMIT 1", [session])
        return rows[0] if rows else None

    # -- budgets -----------------------------------------------------------------------------------
    @staticmethod
    def _first_overrun(conn: psycopg.Connection[dict[str, Any]], caps: list[Any], estimate_usd: float | None):
        for cap in caps:
            if cap.session:
                spent = _one(conn.execute(f"SELECT COALESCE(SUM({SPEND.format(r='calls')}), 0) AS s FROM calls "
                                          "WHERE session = %s", [cap.session]))["s"]
            elif getattr(cap, "user", None):
                spent = _one(conn.execute("SELECT COALESCE(SUM(usd), 0) AS s FROM spend_user_days WHERE user_id = %s "
                                          "AND day >= tier_day(%s)", [cap.user, cap.since]))["s"]
            else:
                spent = _one(conn.execute("SELECT COALESCE(SUM(usd), 0) AS s FROM spend_days WHERE day >= tier_day(%s)",
                                          [cap.since]))["s"]
            if estimate_usd is None or spent + estimate_usd > cap.limit_usd:
                return cap, spent
        return None

    def budget_overrun(self, caps: Iterable[Any], estimate_usd: float | None):
        caps = list(caps)
        return self._run(lambda conn: self._first_overrun(conn, caps, estimate_usd), retry=False)

    @staticmethod
    def _scopes(caps: list[Any]) -> list[str]:
        return sorted({BUDGET_LOCK_PREFIX + (f"session:{c.session}" if c.session else
                                             f"user:{c.user}" if getattr(c, "user", None) else "team") for c in caps})

    def insert_pending(self, row: dict[str, Any], caps: Iterable[Any] = (), estimate_usd: float | None = None):
        """The pending row and its reservation, in one transaction that first takes the advisory lock
        of every budget scope it checks: concurrent callers on any gateway queue there."""
        caps = list(caps)
        values = {**row, "reserved_usd": estimate_usd if caps else None}
        keys = self._check_columns(values)
        if values.get("owner_pid") is not None:
            self._ensure_lease()
        sql = self._insert_sql(keys, "")
        params = [self._value(k, values[k]) for k in keys]

        def work(conn: psycopg.Connection[dict[str, Any]]):
            for scope in self._scopes(caps):
                conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [scope])
            overrun = self._first_overrun(conn, caps, estimate_usd)
            if overrun is None:
                conn.execute(sql, params)
            return overrun

        return self._run(work, retry=False)

    # -- leases and recovery -----------------------------------------------------------------------
    def _owner(self) -> tuple[str, int, float]:
        from tiercli import procinfo

        return HOST, os.getpid(), procinfo.this_process_started() or 0.0

    def _ensure_lease(self) -> None:
        """Take this process's lease before its first pending row, and keep it renewed."""
        if self._lease is not None:
            return
        _renew(self._live(), self._owner())
        self._stop.clear()
        self._lease = threading.Thread(target=self._heartbeat, name="tier-ledger-lease", daemon=True)
        self._lease.start()

    def _heartbeat(self) -> None:
        """Renew the lease every LEASE_S / 3 on a connection of its own, and settle other processes'
        orphans (the reconciler of a long-running gateway)."""
        conn: psycopg.Connection[dict[str, Any]] | None = None
        while not self._stop.wait(LEASE_S / 3):
            try:
                if conn is None or conn.broken:
                    conn = self._connect()
                _renew(conn, self._owner())
                recover(conn, time.time())
            except psycopg.Error:
                conn = None  # the database is away: try again next beat
        if conn is not None:
            conn.close()

    def recover_orphans(self, now: float | None = None) -> list[str]:
        """Settle `interrupted` the pending rows whose owner is gone (see the module docstring)."""
        try:
            conn = self._live()
            return recover(conn, time.time() if now is None else now)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise LedgerError(f"ledger recovery failed: {str(exc).strip().splitlines()[0]}",
                              f"ledger at {self.path}") from None

    def add_feedback(self, call_id: str, verdict: str, note: str | None) -> None:
        self._run(lambda conn: conn.execute(
            "INSERT INTO feedback (call_id, created_at, verdict, note) VALUES (%s, %s, %s, %s)",
            [call_id, time.time(), verdict, note]), retry=False)

    def schema_version(self) -> int:
        return self._select("SELECT MAX(version) AS v FROM schema_migrations")[0]["v"] or 0


def _one(cursor: psycopg.Cursor[dict[str, Any]]) -> dict[str, Any]:
    """The row of an aggregate query, which always returns exactly one."""
    row = cursor.fetchone()
    assert row is not None
    return row


def _renew(conn: psycopg.Connection[dict[str, Any]], owner: tuple[str, int, float]) -> None:
    conn.execute("INSERT INTO ledger_leases (owner_host, owner_pid, owner_started, expires_at) VALUES (%s, %s, %s, %s) "
                 "ON CONFLICT (owner_host, owner_pid, owner_started) DO UPDATE SET expires_at = EXCLUDED.expires_at",
                 [*owner, time.time() + LEASE_S])


def recover(conn: psycopg.Connection[dict[str, Any]], now: float) -> list[str]:
    """Settle the orphaned pending rows: owner on this host and not alive, owner elsewhere with an
    expired (or no) lease, or no owner and older than ORPHAN_AGE_S. Each row is settled by exactly
    one process (`AND status = 'pending'`)."""
    from tiercli import procinfo

    rows = conn.execute("SELECT id, started_at, owner_host, owner_pid, owner_started FROM calls "
                        "WHERE status = 'pending'").fetchall()
    if not rows:
        return []
    leases = {(r["owner_host"], r["owner_pid"], r["owner_started"]): r["expires_at"]
              for r in conn.execute("SELECT * FROM ledger_leases").fetchall()}

    def gone(r: dict[str, Any]) -> bool:
        if r["owner_pid"] is None:
            return now - r["started_at"] > ORPHAN_AGE_S
        if r["owner_host"] in (None, HOST):
            return not procinfo.alive(r["owner_pid"], r["owner_started"])
        return leases.get((r["owner_host"], r["owner_pid"], r["owner_started"] or 0.0), 0.0) < now

    settled = []
    for r in filter(gone, rows):
        who = (f"pid {r['owner_pid']} on {r['owner_host'] or HOST}" if r["owner_pid"] is not None else "an older tier")
        with conn.transaction():
            cur = conn.execute(
                "UPDATE calls SET status = 'interrupted', error_class = 'ProcessGone', ended_at = %s, "
                "reserved_usd = NULL, owner_pid = NULL, owner_started = NULL, owner_host = NULL, cost_usd = NULL, "
                "error_message = %s WHERE id = %s AND status = 'pending'",
                [now, f"recovered: the process that made this call ({who}) ended before settling it; "
                      "its cost is unknown and its budget reservation was released", r["id"]])
        if cur.rowcount == 1:
            settled.append(r["id"])
    conn.execute("DELETE FROM ledger_leases WHERE expires_at < %s", [now - LEASE_S])
    return settled
