"""The reads behind `tier report` (report.py arranges what they return): the one grouped pass and the
small queries next to it, on either engine.

SQLite: the pass and the side queries (last call, feedback, compactions, retries) run at once on two
read connections (queries.Beside: SQLite releases the GIL while it steps a statement). PostgreSQL: the same queries one after another in one
REPEATABLE READ snapshot (the server does the work; a second connection would buy a second
snapshot, not speed).
"""

from __future__ import annotations

from typing import Any

from tiercli.ledger import queries as q
from tiercli.ledger import view_queries

ROUTED_KIND = "main"
# Retries in a window of up to this many calls, or 1/8 of the ledger, are found by a window function
# over the window's calls (read through their range of ix_calls_started_at); in a wider one, among
# the repeated prompt hashes read off ix_calls_prompt_hash (a pass over that index, no sort).
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


def _has_routed(roll: dict[str, list[dict[str, Any]]]) -> bool:
    return any(r["k1"] == ROUTED_KIND for r in roll["kind"])


def read_report(ledger, where: q.Where, tiers: list[str], retry_window_s: float, *, narrow_threshold: int | None,
                meanwhile=None) -> dict[str, Any]:
    """{roll, last_call, feedback, retries, compactions, ledger_calls}; `meanwhile()` runs while
    SQLite's reads do (the price map loads then)."""
    if not q.is_sqlite(ledger):
        if meanwhile is not None:
            meanwhile()
        with q.snapshot(ledger) as conn:
            roll = q.grand_rollups(conn, where, tiers)
            got: dict[str, Any] = {"roll": roll, "skip_retries": not _has_routed(roll)}
            _side(conn, where, retry_window_s, narrow_threshold, got)
            got["ledger_calls"] = None if any(r["calls"] for r in roll["kind"]) else q.count_calls(conn)
        return got

    side = q.Beside(ledger, lambda conn, done: _side(conn, where, retry_window_s, narrow_threshold, done))
    grand = q.Beside(ledger, lambda conn, done: done.update(roll=q.grand_rollups(conn, where, tiers)))
    try:
        if meanwhile is not None:
            meanwhile()
        grand.result()
        roll = grand.done["roll"]
    except BaseException:
        grand.cancel()
        side.cancel()
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


def runs(ledger, since: float | None, until: float | None) -> dict[str, Any] | None:
    """`tier run`'s tasks in the window (run_outcomes.summarize), None when there are none."""
    with q.snapshot(ledger) as conn:
        rows = view_queries.run_attempts(conn, since, until)
    if not rows:
        return None
    from tiercli import run_outcomes

    return run_outcomes.summarize(rows)
