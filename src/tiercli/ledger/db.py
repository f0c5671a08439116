"""The only module that opens the ledger database.

SQLite in WAL mode; every write transaction starts with BEGIN IMMEDIATE (a deferred transaction
that reads then writes gets SQLITE_BUSY at once under WAL, whatever the timeout), busy_timeout 30 s,
synchronous=FULL (a money ledger keeps its last commits on power loss). Reads use plain BEGIN.

Everything (writes, reports, imports, migrations) speaks sqlite3 directly, so no SQLite command
pays SQLAlchemy's and SQLModel's import (~0.3 s); the schema is plain DDL (sqlite_schema.py, checked
against the SQLModel tables in models.py by a test). Column defaults live in the schema.

A file that is not ours is the user's data: we refuse it with a clear message and never delete,
recreate or migrate it. Ours is marked by PRAGMA application_id; its schema version is in
`schema_migrations` (mirrored in user_version), and a newer version than this code knows is
refused too.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from contextlib import contextmanager
from operator import itemgetter
from pathlib import Path
from typing import Any, Iterable, Iterator

from tiercli.errors import LedgerError
from tiercli.ledger.bulk_insert import bulk_indexes, insert_sql
from tiercli.ledger.migrations import (  # noqa: F401 (re-exported: the report's index and day)
    _SPEND,
    APPLICATION_ID,
    REPORT_DAY,
    REPORT_GROUP_COLUMNS,
    REPORT_INDEX_NAME,
    REPORT_INDEX_SQL,
    add_bulk_spend,
    apply_sqlite_step,
    migrate_sqlite,
)
from tiercli.ledger.users import UsersMixin

SCHEMA_VERSION = 7
SQLITE_HEADER = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS = 30_000
ORPHAN_AGE_S = 3600  # a pending row with no owner (tier before schema 3): no call lasts an hour

MIGRATIONS: list[tuple[int, str]] = [
    (1, "calls, feedback and schema_migrations tables"),
    (2, "calls.reserved_usd, calls.check_passed, spend_days kept by triggers (budgets), report index"),
    (3, "calls.task_id (agent tasks), calls.owner_pid/owner_started (recovery of a dead process's pending rows)"),
    (4, "team mode: users table, calls.user_id, calls.owner_host, spend_user_days kept by triggers, ledger_leases"),
    (5, "indexes that earn their keep (six dropped); imported calls' spend added per day by the import"),
    (6, "report: partial indexes over `tier run` attempts and compaction calls"),
    (7, "retry_candidates kept by triggers (the report's retries search); ix_calls_prompt_hash and "
        "ix_calls_task_id dropped; parent_id, user_id and external_id indexes partial (IS NOT NULL)"),
]
# page cache while an import writes (SQLite's default is 2 MiB): the indexes' pages stay in memory
# (85 -> 74 us a row at 50 MB of logs)
IMPORT_CACHE_KIB = 65_536
def _check_file(path: Path) -> bool:
    """True when the file exists and already holds data. Refuses foreign and unreadable files, and
    anything that is not a regular file (a FIFO would block the open for ever)."""
    from tiercli.paths import not_a_regular_file

    if why := not_a_regular_file(path):
        raise LedgerError(f"ledger path {path} {why}", "set TIER_DB or --db to a file path")
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


def _configure(conn: sqlite3.Connection) -> None:
    conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys=ON")
    _set_wal(conn)
    conn.execute("PRAGMA synchronous=FULL")


def _set_wal(conn: sqlite3.Connection) -> None:
    """PRAGMA journal_mode=WAL, retried while "database is locked". Processes switching a new file to
    WAL at the same moment deadlock in SQLite's lock upgrade, and SQLite answers one of them at once,
    without waiting busy_timeout: concurrent first runs of `tier ask` failed with exit 5 (4 of 120
    opens in tests/test_reliability_concurrency.py). Once the file is in WAL mode this never waits."""
    deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
    delay = 0.002
    while True:
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.05)


class Ledger(UsersMixin):
    """Open (and create or migrate) a ledger. Use as a context manager or call close()."""

    def __init__(self, path: str | os.PathLike, *, create: bool = True, recover: bool = True):
        self.path = Path(path).expanduser()
        existed = _check_file(self.path)
        if not existed and not create:
            raise LedgerError(f"no ledger at {self.path}", "run `tier ask` first, or set TIER_DB")
        if existed:
            self._refuse_foreign()
        else:
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
        self._columns: tuple[str, ...] | None = None
        try:
            self._raw: sqlite3.Connection | None = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
            self._raw.row_factory = sqlite3.Row
            _configure(self._raw)
            self.wal = str(self._raw.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal"
            version = self._raw.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise LedgerError(
                    f"the ledger {self.path} has schema version {version}, newer than this tier knows ({SCHEMA_VERSION})",
                    "upgrade tiercli; the file was left untouched",
                )
            if version < SCHEMA_VERSION:
                self._migrate()
            self.recovered: list[str] = self.recover_orphans() if recover else []
        except sqlite3.DatabaseError as exc:
            self.close()
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from None
        except LedgerError:
            self.close()
            raise

    def _refuse_foreign(self) -> None:
        """Look at an existing file read-only, before anything (even WAL mode) is written to it."""
        try:
            raw = sqlite3.connect(f"{_file_uri(self.path)}?mode=ro", uri=True, timeout=BUSY_TIMEOUT_MS / 1000,
                                  isolation_level=None)
            try:
                # one read transaction, one snapshot: a concurrent first run committing its schema between
                # two reads made a new ledger look foreign (tables, but no application_id yet)
                raw.execute("BEGIN")
                app_id = raw.execute("PRAGMA application_id").fetchone()[0]
                tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
                version = max([0, *[r[0] for r in raw.execute("SELECT version FROM schema_migrations")]]) \
                    if "schema_migrations" in tables else 0
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
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} has schema version {version}, newer than this tier knows ({SCHEMA_VERSION})",
                "upgrade tiercli; the file was left untouched",
            )

    def _migrate(self) -> None:
        with self._tx() as conn:  # BEGIN IMMEDIATE: concurrent first runs serialise here and migrate once
            migrate_sqlite(conn, SCHEMA_VERSION, MIGRATIONS, self.path)
        self._columns = None

    def close(self) -> None:
        raw = getattr(self, "_raw", None)
        if raw is not None:
            raw.close()
            self._raw = None

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sqlite3 side (hot path) ---------------------------------------------------------------
    def set_synchronous(self, level: str) -> None:
        """PRAGMA synchronous for this connection: FULL (the default) or NORMAL (`tier serve`; WAL commits
        durable across a process crash but not a power loss, see docs/RELIABILITY.md)."""
        if level.upper() not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={level}: FULL or NORMAL")
        self._connection().execute(f"PRAGMA synchronous={level.upper()}")

    def _connection(self) -> sqlite3.Connection:
        if self._raw is None:
            raise LedgerError(f"the ledger {self.path} is closed")
        return self._raw

    @contextmanager
    def _tx(self, immediate: bool = True) -> Iterator[sqlite3.Connection]:
        conn = self._connection()
        try:
            conn.execute("BEGIN IMMEDIATE" if immediate else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            raise LedgerError(f"ledger {'write' if immediate else 'read'} failed: {exc}", f"ledger at {self.path}") from None

    @property
    def columns(self) -> tuple[str, ...]:
        if self._columns is None:
            self._columns = tuple(r["name"] for r in self._connection().execute("PRAGMA table_info(calls)"))
        return self._columns

    def _check_columns(self, values: dict[str, Any]) -> list[str]:
        keys = list(values)
        unknown = set(keys) - set(self.columns)
        if unknown:
            raise ValueError(f"unknown call columns: {sorted(unknown)}")
        return keys

    def upsert_call(self, values: dict[str, Any], update: Iterable[str] | None = None) -> None:
        """Insert or update a call by id, so retrying a write can never count a call twice. `update`:
        the columns to set when the row exists (default all given): a settlement names only what
        changed since its pending row, and SQLite then rewrites only the indexes over those columns
        (every column named costs its indexes' updates, changed or not: 0.07 ms per call on a quiet
        machine, 0.3-0.4 ms under load)."""
        keys = self._check_columns(values)
        wanted = None if update is None else set(update)
        chosen = keys if wanted is None else [k for k in keys if k in wanted]
        updates = ", ".join(f"{k}=excluded.{k}" for k in chosen if k != "id") or "id=excluded.id"
        sql = (f"INSERT INTO calls ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))}) "
               f"ON CONFLICT(id) DO UPDATE SET {updates}")
        with self._tx() as conn:
            conn.execute(sql, [values[k] for k in keys])

    def update_call(self, call_id: str, **fields: Any) -> None:
        """Change some columns of an existing call (e.g. a --check result)."""
        keys = self._check_columns(fields)
        with self._tx() as conn:
            conn.execute(f"UPDATE calls SET {', '.join(f'{k} = ?' for k in keys)} WHERE id = ?",
                         [*(fields[k] for k in keys), call_id])

    def insert_new_calls(self, rows: Iterable[dict[str, Any]]) -> tuple[int, int]:
        """Insert rows whose id and external_id are new; (added, skipped). One transaction,
        rows grouped by their key set and sent as executemany batches (ledger.bulk_insert: constant
        values as literals; into a ledger smaller than the import, the non-unique indexes are built
        after the rows, in the same transaction)."""
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
        total = 0
        for values in rows:
            groups.setdefault(tuple(values), []).append(values)
            total += 1
        added = 0
        raw = self._connection()
        cache = raw.execute("PRAGMA cache_size").fetchone()[0]
        raw.execute(f"PRAGMA cache_size=-{IMPORT_CACHE_KIB}")
        try:
            with self._tx() as conn, bulk_indexes(conn, total):
                for keys, batch in groups.items():
                    self._check_columns(dict.fromkeys(keys))
                    sql, bound = insert_sql(keys, batch)
                    # rowcount, not total_changes: the spend_days triggers' writes must not count
                    n = conn.executemany(sql, map(itemgetter(*bound), batch) if len(bound) > 1 else ([row[k] for k in bound] for row in batch)).rowcount
                    added += n
                    imported = [row for row in batch if row.get("kind") == "import"]
                    if imported:  # the insert trigger leaves these out (migration 5)
                        add_bulk_spend(conn, imported, all_inserted=n == len(batch))
        finally:
            raw.execute(f"PRAGMA cache_size={cache}")
        return added, total - added

    def _select(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        with self._tx(immediate=False) as conn:
            return [dict(r) for r in conn.execute(sql, list(params))]

    def get_call(self, call_id: str) -> dict[str, Any] | None:
        rows = self._select("SELECT * FROM calls WHERE id = ?", [call_id])
        return rows[0] if rows else None

    def find_call(self, prefix: str) -> dict[str, Any] | None:
        """A call by full id or a unique id prefix (as `tier log` shows them)."""
        exact = self.get_call(prefix)
        if exact:
            return exact
        rows = self._select("SELECT * FROM calls WHERE substr(id, 1, ?) = ? LIMIT 2", [len(prefix), prefix])
        return rows[0] if len(rows) == 1 else None

    def recent_calls(self, limit: int) -> list[dict[str, Any]]:
        return self._select("SELECT * FROM calls ORDER BY started_at DESC, id LIMIT ?", [limit])

    def session_calls(self, session: str, kinds: tuple[str, ...] = ("main",)) -> int:
        """Calls made in a session (refused ones are not calls)."""
        marks = ", ".join("?" * len(kinds))
        rows = self._select(
            # unary + keeps SQLite on the session index (kind and status match most rows)
            f"SELECT COUNT(*) AS n FROM calls WHERE session = ? AND +kind IN ({marks}) AND +status != 'refused'",
            [session, *kinds],
        )
        return rows[0]["n"]

    def session_turns(self, session: str, after: float = 0.0) -> list[dict[str, Any]]:
        """A session's answered main calls after `after`, oldest first (for --history)."""
        return self._select(
            "SELECT id, started_at, prompt_text, response_text FROM calls WHERE session = ? AND kind = 'main' "
            "AND status = 'ok' AND started_at > ? ORDER BY started_at, id", [session, after])

    def calls_for_learning(self) -> list[dict[str, Any]]:
        """Main calls with their prompt, routing and latest `tier feedback` verdict, oldest first (tier learn)."""
        return self._select(
            "SELECT c.id, c.started_at, c.prompt_text, c.prompt_hash, c.decision_source, c.decided_tier, c.tier, "
            "c.task_type, c.label, f.verdict AS feedback FROM calls AS c LEFT JOIN feedback AS f ON f.id = "
            "(SELECT MAX(id) FROM feedback WHERE call_id = c.id) WHERE c.kind = 'main' ORDER BY c.started_at, c.id")

    def last_compaction(self, session: str) -> dict[str, Any] | None:
        rows = self._select(
            "SELECT id, started_at, response_text, meta_json FROM calls WHERE session = ? AND kind = 'compaction' "
            "AND status = 'ok' ORDER BY started_at DESC LIMIT 1", [session])
        return rows[0] if rows else None

    def session_totals(self, session: str) -> dict[str, Any]:
        """A session's model calls (kind 'run' rows left out): settled and pending `calls` (refused
        ones apart), priced `cost_usd`, `unpriced` calls (cost unknown) and budget `refused` calls."""
        rows = self._select(
            "SELECT SUM(status != 'refused') AS calls, SUM(status = 'refused') AS refused, "
            "SUM(cost_usd) AS cost_usd, SUM(status != 'refused' AND cost_usd IS NULL) AS unpriced "
            "FROM calls WHERE session = ? AND kind != 'run'", [session])
        r = rows[0]
        return {"calls": r["calls"] or 0, "refused": r["refused"] or 0, "cost_usd": r["cost_usd"] or 0.0,
                "unpriced": r["unpriced"] or 0}

    def run_attempts(self, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        """`tier run` attempts (kind 'run' rows) started in [since, until), by task then start, each
        with its calls' priced `calls_cost_usd`, `calls` (refused ones apart) and `unpriced_calls`."""
        calls_of = "FROM calls c WHERE c.session = r.session AND c.kind != 'run' AND c.status != 'refused'"
        return self._select(
            "SELECT r.id, r.task_id, r.started_at, r.session, r.tier, r.status, r.error_class, r.check_passed, "
            "r.latency_ms, r.task_type, r.parent_id, r.meta_json, r.prompt_hash, "
            f"(SELECT SUM(c.cost_usd) {calls_of}) AS calls_cost_usd, (SELECT COUNT(*) {calls_of}) AS calls, "
            f"(SELECT COUNT(*) {calls_of} AND c.cost_usd IS NULL) AS unpriced_calls "
            "FROM calls r WHERE r.kind = 'run' AND r.started_at >= ? AND r.started_at < ? "
            "ORDER BY r.task_id, r.started_at, r.id",
            [since if since is not None else float("-inf"), until if until is not None else float("inf")])

    # -- budgets ---------------------------------------------------------------------------------
    @staticmethod
    def _first_overrun(conn: sqlite3.Connection, caps: list[Any], estimate_usd: float | None):
        for cap in caps:
            if cap.session:
                spent = conn.execute(
                    f"SELECT COALESCE(SUM({_SPEND.format(r='calls')}), 0) FROM calls WHERE session = ?", [cap.session]
                ).fetchone()[0]
            elif getattr(cap, "user", None):  # a team member's own budget (schema 4)
                spent = conn.execute(
                    "SELECT COALESCE(SUM(usd), 0) FROM spend_user_days WHERE user_id = ? AND day >= date(?, 'unixepoch')",
                    [cap.user, cap.since]).fetchone()[0]
            else:  # day-aligned windows (UTC), read from the trigger-kept daily totals
                spent = conn.execute(
                    "SELECT COALESCE(SUM(usd), 0) FROM spend_days WHERE day >= date(?, 'unixepoch')", [cap.since]
                ).fetchone()[0]
            if estimate_usd is None or spent + estimate_usd > cap.limit_usd:
                return cap, spent
        return None

    def budget_overrun(self, caps: Iterable[Any], estimate_usd: float | None):
        """(cap, spent) for the first cap that `estimate_usd` would overrun, else None. Read only.

        Each cap has limit_usd and either `since` (epoch) or `session`; spend is settled cost plus
        open reservations. An unknown estimate (None) overruns every cap."""
        with self._tx(immediate=False) as conn:
            return self._first_overrun(conn, list(caps), estimate_usd)

    def insert_pending(self, row: dict[str, Any], caps: Iterable[Any] = (), estimate_usd: float | None = None):
        """Write a call's pending row reserving `estimate_usd`, in one BEGIN IMMEDIATE transaction
        with the spend check, so concurrent callers cannot all pass the same check. Returns
        (cap, spent) and writes nothing when a cap would be overrun; None when written."""
        caps = list(caps)
        values = {**row, "reserved_usd": estimate_usd if caps else None}
        keys = self._check_columns(values)
        sql = f"INSERT INTO calls ({', '.join(keys)}) VALUES ({', '.join('?' * len(keys))})"
        with self._tx() as conn:
            overrun = self._first_overrun(conn, caps, estimate_usd)
            if overrun is not None:
                return overrun
            conn.execute(sql, [values[k] for k in keys])
        return None

    # -- recovery ----------------------------------------------------------------------------------
    def recover_orphans(self, now: float | None = None) -> list[str]:
        """Settle `interrupted` the pending rows whose process is gone, releasing their reservations.

        A row's owner is the pid and start time of the process that wrote it; a row without one
        (written by tier before schema 3) is taken as orphaned once older than ORPHAN_AGE_S. The
        cost of such a call is unknown (NULL, never $0): it may or may not have been billed."""
        from tiercli import procinfo

        now = time.time() if now is None else now
        rows = self._select("SELECT id, started_at, owner_pid, owner_started FROM calls WHERE status = 'pending'")
        gone = [r for r in rows
                if (r["owner_pid"] is None and now - r["started_at"] > ORPHAN_AGE_S)
                or (r["owner_pid"] is not None and not procinfo.alive(r["owner_pid"], r["owner_started"]))]
        if not gone:
            return []
        with self._tx() as conn:
            for r in gone:
                who = f"pid {r['owner_pid']}" if r["owner_pid"] is not None else "an older tier"
                conn.execute(
                    "UPDATE calls SET status = 'interrupted', error_class = 'ProcessGone', ended_at = ?, "
                    "reserved_usd = NULL, owner_pid = NULL, owner_started = NULL, owner_host = NULL, cost_usd = NULL, "
                    "error_message = ? WHERE id = ? AND status = 'pending'",
                    [now, f"recovered: the process that made this call ({who}) ended before settling it; "
                          "its cost is unknown and its budget reservation was released", r["id"]])
        return [r["id"] for r in gone]

    def add_feedback(self, call_id: str, verdict: str, note: str | None) -> None:
        with self._tx() as conn:
            conn.execute("INSERT INTO feedback (call_id, created_at, verdict, note) VALUES (?, ?, ?, ?)",
                         [call_id, time.time(), verdict, note])

    def schema_version(self) -> int:
        return self._select("SELECT MAX(version) AS v FROM schema_migrations")[0]["v"] or 0


def _file_uri(path: Path) -> str:
    """A `file:` URI for SQLite with every special character quoted: unquoted, a `#` starts a
    fragment and a `?` the parameters, so the check would read another file than the one opened."""
    from urllib.parse import quote

    return "file:" + quote(str(path.absolute()), safe="/")


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
