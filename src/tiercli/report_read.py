"""The reads behind `tier report` (report.py arranges what they return): the one grouped pass and the
small queries next to it, on either engine.

SQLite: the pass and the side queries (last call, feedback, compactions, retries) run at once on two
read connections (queries.Beside: SQLite releases the GIL while it steps a statement), started
before the config is loaded (Reading: the pass is two statements, the first needs no config). PostgreSQL:
the same, each side in its own REPEATABLE READ READ ONLY snapshot on its own connection (_PgBeside:
two server backends work at once; on 1M calls the retries take most of the grouped pass's time).
"""

from __future__ import annotations

import queue
import threading
from typing import Any

from tiercli.ledger import queries as q
from tiercli.ledger import view_queries

ROUTED_KIND = "main"
# Retries in a window of up to this many calls, or 1/8 of the ledger, are found by a window function
# over the window's calls (read through their range of ix_calls_started_at); in a wider one, among
# the calls of retry_candidates' pairs (migration 7: the pairs two tasks share, kept by triggers).
# Measured on 100k- and 1M-call ledgers, the crossover lies between 1/10 and 1/5 of the ledger.
_NARROW_MIN_CALLS = 5_000
_NARROW_FRACTION = 8


def _side(conn: Any, where: q.Where, retry_window_s: float, narrow_threshold: int | None, done: dict) -> None:
    """Last call, feedback, compactions (off a partial index: nothing to read when there are none)
    and retries (only while `done` has no 'skip_retries')."""
    done["last_call"] = q.last_call(conn, where)
    done["feedback"] = q.feedback(conn, where)
    done["compactions"] = q.compactions(conn, where)
    if done.get("skip_retries"):
        return
    threshold = narrow_threshold
    if threshold is None:
        threshold = max(_NARROW_MIN_CALLS, q.ledger_size(conn) // _NARROW_FRACTION)
    narrow = not q.window_exceeds(conn, where, threshold)
    done["retries"] = q.task_retries(conn, where, retry_window_s, narrow=narrow)


class _PgBeside:
    """`work(conn, done)` on a second connection of a PostgreSQL ledger, in a thread, in its own
    read-only snapshot; result() waits and re-raises its error (a lost server as a LedgerError)."""

    def __init__(self, ledger, work):
        self.done: dict[str, Any] = {}
        self._error: BaseException | None = None
        self._path = ledger.path
        self._thread = threading.Thread(target=self._run, args=(ledger, work), name="tier-report-beside", daemon=True)
        self._thread.start()

    def _run(self, ledger, work) -> None:
        try:
            conn = ledger._connect()
            try:
                with conn.transaction():
                    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    work(q.PgRead(conn), self.done)
            finally:
                conn.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc

    def result(self) -> dict[str, Any]:
        self._thread.join()
        if self._error is not None:
            import psycopg

            from tiercli.errors import LedgerError

            if isinstance(self._error, (psycopg.OperationalError, psycopg.InterfaceError)):
                raise LedgerError(f"ledger read failed: {str(self._error).strip().splitlines()[0]}",
                                  f"ledger at {self._path}")
            raise self._error
        return self.done


def _has_routed(roll: dict[str, list[dict[str, Any]]]) -> bool:
    return any(r["k1"] == ROUTED_KIND for r in roll["kind"])


class Reading:
    """SQLite: the report's reads, started as soon as the ledger and the window are known, before the
    config is loaded (its validation is ~0.15 s of a fresh process that the reads need not wait for):
    on one read connection the calls grouped and rolled up into temp tables (queries.grand_steps),
    then, once `order(tiers)` gives the tiers' order, read back (queries.grouped_rollups); on a second
    one the side queries. Each runs in a thread (queries.Beside). `cancel()` stops both (a config that
    fails to load)."""

    def __init__(self, ledger, where: q.Where, retry_window_s: float, narrow_threshold: int | None):
        self.where = where
        self._tiers: queue.SimpleQueue[list[str] | None] = queue.SimpleQueue()
        self.side = q.Beside(ledger, lambda conn, done: _side(conn, where, retry_window_s, narrow_threshold, done))
        self.grand = q.Beside(ledger, self._grand)

    def _grand(self, conn: Any, done: dict) -> None:
        q.group_calls(conn, self.where)
        tiers = self._tiers.get()  # None: cancelled
        if tiers is not None:
            done["roll"] = q.grouped_rollups(conn, tiers)

    def order(self, tiers: list[str]) -> None:
        """The tiers in order: the rollups go on once the grouping is done (then wait in roll())."""
        self._tiers.put(tiers)

    def roll(self) -> dict[str, list[dict[str, Any]]]:
        self.grand.result()
        return self.grand.done["roll"]

    def cancel(self) -> None:
        self._tiers.put(None)
        self.grand.cancel()
        self.side.cancel()


def begin(ledger, where: q.Where, retry_window_s: float, *, narrow_threshold: int | None = None) -> Reading | None:
    """Start a SQLite ledger's report reads (Reading); None for PostgreSQL (read_report reads it)."""
    return Reading(ledger, where, retry_window_s, narrow_threshold) if q.is_sqlite(ledger) else None


def read_report(ledger, where: q.Where, tiers: list[str], retry_window_s: float, *, narrow_threshold: int | None,
                meanwhile=None, reading: Reading | None = None) -> dict[str, Any]:
    """{roll, last_call, feedback, retries, compactions, ledger_calls}; `meanwhile()` runs while
    SQLite's reads do (the price map loads then). `reading`: the reads begin() started (SQLite)."""
    if not q.is_sqlite(ledger):
        pg_side = _PgBeside(ledger, lambda conn, done: _side(conn, where, retry_window_s, narrow_threshold, done))
        try:
            if meanwhile is not None:
                meanwhile()
            with q.snapshot(ledger) as conn:
                roll = q.grand_rollups(conn, where, tiers)
                empty = not any(r["calls"] for r in roll["kind"])
                ledger_calls = q.count_calls(conn) if empty else None
        finally:
            got = pg_side.result()
        got.update(roll=roll, ledger_calls=ledger_calls)
        if not _has_routed(roll):  # as on SQLite: no routed calls, no retries
            got["retries"] = []
        return got

    if reading is None:
        reading = Reading(ledger, where, retry_window_s, narrow_threshold)
    side = reading.side
    try:
        if meanwhile is not None:
            meanwhile()
        # only now: a thread's fetch of each row waits for the GIL, which meanwhile() holds (json.loads
        # of the price map holds it 25 ms at a time; rows came at one per 5 ms switch interval)
        reading.order(tiers)
        roll = reading.roll()
    except BaseException:
        reading.cancel()
        raise
    total_calls = sum(r["calls"] for r in roll["kind"])
    if total_calls and _has_routed(roll):
        side.result()
    else:  # no routed calls, so no retries to look for (an imported history repeats its prompts a lot)
        side.cancel()
    got = dict(side.done)
    got.update(roll=roll, ledger_calls=None)
    if total_calls and "compactions" not in got:  # cancelled before it got there
        with q.snapshot(ledger) as conn:
            got.update(last_call=q.last_call(conn, where), feedback=q.feedback(conn, where),
                       compactions=q.compactions(conn, where))
    if not total_calls:
        with q.snapshot(ledger) as conn:
            got["ledger_calls"] = q.count_calls(conn)
    return got


def runs(ledger, since: float | None, until: float | None, user: str | None = None) -> dict[str, Any] | None:
    """`tier run`'s tasks in the window (and of `user`: the attempt rows' user), run_outcomes.summarize;
    None when there are none."""
    with q.snapshot(ledger) as conn:
        rows = view_queries.run_attempts(conn, since, until, user)
    if not rows:
        return None
    from tiercli import run_outcomes

    return run_outcomes.summarize(rows)
