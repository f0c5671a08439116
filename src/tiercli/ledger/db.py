"""The only module that opens the ledger database.

SQLite in WAL mode; every write transaction starts with BEGIN IMMEDIATE (a deferred transaction
that reads then writes gets SQLITE_BUSY at once under WAL, whatever the timeout), busy_timeout 30 s,
synchronous=FULL (a money ledger keeps its last commits on power loss). Reads use plain BEGIN.

A file that is not ours is the user's data: we refuse it with a clear message and never delete,
recreate or migrate it. Ours is marked by PRAGMA application_id; its schema version is in
`schema_migrations` (and user_version), and a newer version than this code knows is refused too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator

from sqlalchemy import event, func, select, text
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import OperationalError, DatabaseError
from sqlmodel import SQLModel, create_engine

from tiercli.errors import LedgerError
from tiercli.ledger.models import SCHEMA_VERSION, Call, Feedback, Migration

APPLICATION_ID = 0x54494552  # "TIER"
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000

_EXTRA_INDEXES_V1 = [
    "CREATE INDEX IF NOT EXISTS ix_calls_started_tier ON calls (started_at, tier)",
    "CREATE INDEX IF NOT EXISTS ix_calls_started_task ON calls (started_at, task_type)",
    "CREATE INDEX IF NOT EXISTS ix_calls_session_prompt ON calls (session, prompt_hash)",
]

MIGRATIONS: list[tuple[int, str]] = [(1, "calls, feedback and schema_migrations tables")]

CALL_COLUMNS = [c.name for c in Call.__table__.columns]


def _check_file(path: Path) -> bool:
    """True when the file exists and already holds data. Refuses foreign and unreadable files."""
    try:
        with path.open("rb") as fh:
            header = fh.read(16)
    except (FileNotFoundError, NotADirectoryError):
        return False
    except IsADirectoryError:
        raise LedgerError(f"ledger path {path} is a directory", "set TIER_DB or --db to a file path") from None
    except PermissionError:
        raise LedgerError(f"cannot read the ledger {path}: permission denied", "check the file's owner and mode") from None
    if not header:
        return False
    if header != SQLITE_HEADER:
        raise LedgerError(
            f"{path} is not a SQLite database, so it is not a tier ledger; it was left untouched",
            "point TIER_DB or --db at another file",
        )
    return True


class Ledger:
    """Open (and create or migrate) a ledger. Use as a context manager or call close()."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True):
        self.path = Path(path).expanduser()
        existed = _check_file(self.path)
        if not existed and not create:
            raise LedgerError(f"no ledger at {self.path}", "run `tier ask` first, or set TIER_DB")
        if not existed:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise LedgerError(
                    f"cannot create the ledger directory {self.path.parent}: {exc.strerror}",
                    "set TIER_HOME or TIER_DB to a writable place",
                ) from None
            if not os.access(self.path.parent, os.W_OK):
                raise LedgerError(
                    f"the ledger directory {self.path.parent} is not writable",
                    "set TIER_HOME or TIER_DB to a writable place",
                )
        if existed:
            self._refuse_foreign()
        self.engine = self._make_engine()
        try:
            self._prepare()
        except (OperationalError, DatabaseError) as exc:
            self.engine.dispose()
            raise LedgerError(f"cannot open the ledger {self.path}: {_short(exc)}") from None

    # -- engine --------------------------------------------------------------------------------
    def _make_engine(self) -> Engine:
        engine = create_engine(
            f"sqlite:///{self.path}",
            connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "isolation_level": None},
        )

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn: sqlite3.Connection, _record: Any) -> None:
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves
            cur = dbapi_conn.cursor()
            cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=FULL")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn: Connection) -> None:
            if conn.get_execution_options().get("tier_readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine

    def _prepare(self) -> None:
        with self.engine.connect() as conn:
            mode = conn.exec_driver_sql("PRAGMA journal_mode").scalar()
            conn.rollback()
        # network filesystems and some mounts cannot do WAL; we then work with a rollback journal
        self.wal = str(mode).lower() == "wal"
        self._migrate()

    def _refuse_foreign(self) -> None:
        """Look at an existing file read-only, before anything (even WAL mode) is written to it."""
        try:
            raw = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000)
            try:
                app_id = raw.execute("PRAGMA application_id").fetchone()[0]
                tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            finally:
                raw.close()
        except sqlite3.DatabaseError as exc:
            raise LedgerError(f"the ledger {self.path} is damaged or unreadable ({exc}); it was left untouched",
                              "restore it from a backup, or point TIER_DB or --db at another file") from None
        if app_id != APPLICATION_ID and tables:
            raise LedgerError(
                f"{self.path} is a SQLite database of another program, not a tier ledger; it was left untouched",
                "point TIER_DB or --db at another file",
            )

    def _migrate(self) -> None:
        with self.engine.begin() as conn:  # BEGIN IMMEDIATE: concurrent first runs serialise here
            tables = {r[0] for r in conn.exec_driver_sql("SELECT name FROM sqlite_master WHERE type='table'")}
            current = 0
            if "schema_migrations" in tables:
                current = conn.exec_driver_sql("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").scalar() or 0
            if current > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.path} has schema version {current}, newer than this tier knows ({SCHEMA_VERSION})",
                    "upgrade tiercli; the file was left untouched",
                )
            for version, description in MIGRATIONS:
                if version <= current:
                    continue
                if version == 1:
                    SQLModel.metadata.create_all(conn, tables=[Call.__table__, Feedback.__table__, Migration.__table__])
                    for stmt in _EXTRA_INDEXES_V1:
                        conn.exec_driver_sql(stmt)
                    conn.exec_driver_sql(f"PRAGMA application_id={APPLICATION_ID}")
                conn.execute(
                    Migration.__table__.insert().values(version=version, applied_at=time.time(), description=description)
                )
                conn.exec_driver_sql(f"PRAGMA user_version={version}")

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transactions --------------------------------------------------------------------------
    @contextmanager
    def write(self) -> Iterator[Connection]:
        try:
            with self.engine.begin() as conn:
                yield conn
        except OperationalError as exc:
            raise LedgerError(f"ledger write failed: {_short(exc)}", f"ledger at {self.path}") from None

    @contextmanager
    def read(self) -> Iterator[Connection]:
        try:
            with self.engine.connect().execution_options(tier_readonly=True) as conn:
                with conn.begin():
                    yield conn
        except OperationalError as exc:
            raise LedgerError(f"ledger read failed: {_short(exc)}", f"ledger at {self.path}") from None

    # -- calls ---------------------------------------------------------------------------------
    def upsert_call(self, values: dict[str, Any], conn: Connection | None = None) -> None:
        """Insert or update a call by id, so retrying a write can never count a call twice."""
        unknown = set(values) - set(CALL_COLUMNS)
        if unknown:
            raise ValueError(f"unknown call columns: {sorted(unknown)}")
        stmt = sqlite_insert(Call.__table__).values(**values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["id"], set_={k: stmt.excluded[k] for k in values if k != "id"}
        )
        if conn is not None:
            conn.execute(stmt)
            return
        with self.write() as c:
            c.execute(stmt)

    def insert_new_calls(self, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Insert rows whose id and external_id are new; (added, skipped). One transaction.

        Rows are grouped by their key set and sent as executemany batches (10x faster than one
        statement per row for a 50 MB import)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        total = 0
        for values in rows:
            groups.setdefault(tuple(sorted(values)), []).append(values)
            total += 1
        added = 0
        with self.write() as conn:
            for batch in groups.values():
                result = conn.execute(sqlite_insert(Call.__table__).on_conflict_do_nothing(), batch)
                added += max(result.rowcount, 0)
        return added, total - added

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        with self.read() as conn:
            row = conn.execute(Call.__table__.select().where(Call.__table__.c.id == call_id)).mappings().first()
            return dict(row) if row else None

    def find_call(self, prefix: str) -> dict[str, Any] | None:
        """A call by full id or a unique id prefix (as `tier log` shows them)."""
        with self.read() as conn:
            rows = conn.execute(
                text("SELECT * FROM calls WHERE id = :p OR id LIKE :like LIMIT 2"),
                {"p": prefix, "like": prefix.replace("%", "").replace("_", "\\_") + "%"},
            ).mappings().all()
        exact = [r for r in rows if r["id"] == prefix]
        if exact:
            return dict(exact[0])
        return dict(rows[0]) if len(rows) == 1 else None

    def recent_calls(self, limit: int) -> list[dict[str, Any]]:
        with self.read() as conn:
            rows = conn.execute(
                Call.__table__.select().order_by(Call.__table__.c.started_at.desc(), Call.__table__.c.id).limit(limit)
            ).mappings().all()
        return [dict(r) for r in rows]

    def session_calls(self, session: str, kinds: tuple[str, ...] = ("main",)) -> int:
        calls = Call.__table__.c
        stmt = select(func.count()).where(calls.session == session, calls.kind.in_(kinds))
        with self.read() as conn:
            return conn.execute(stmt).scalar_one()

    def add_feedback(self, call_id: str, verdict: str, note: str | None) -> None:
        with self.write() as conn:
            conn.execute(
                Feedback.__table__.insert().values(call_id=call_id, created_at=time.time(), verdict=verdict, note=note)
            )

    def schema_version(self) -> int:
        with self.read() as conn:
            return conn.exec_driver_sql("SELECT MAX(version) FROM schema_migrations").scalar() or 0


def _short(exc: Exception) -> str:
    orig = getattr(exc, "orig", None)
    return str(orig or exc).splitlines()[0]


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
