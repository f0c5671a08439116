"""How an import's rows go into the SQLite ledger fast (Ledger.insert_new_calls), in one transaction.

- A column with the same plain value in every row of a batch (an import's kind, source, status, ...)
  is written into the INSERT as a literal: fewer parameters bound per row (~15% of the insert).
- Indexes: every row costs a B-tree insert in each of the calls table's ~12 indexes (~45 us a row at
  schema 6, 15-20 us without the secondary ones: benchmarks/import_write_cost.py). Into a ledger
  smaller than the import (a first import), the non-unique indexes are dropped, the rows inserted and
  the indexes created again from their own SQL text, all inside the import's transaction: SQLite
  builds an index from sorted keys far faster than it grows one a row at a time, and the schema after
  the commit is the one before (same names, same SQL). An interrupted import rolls the drop back with
  the rows. The unique indexes (id, external_id) stay: ON CONFLICT DO NOTHING needs them to skip
  rows already imported.
"""

from __future__ import annotations

import re
import sqlite3
from contextlib import contextmanager
from operator import itemgetter
from typing import Any, Iterator

# a batch this large, into a table with fewer rows (by its largest rowid), builds indexes afterwards
REBUILD_MIN_ROWS = 1_000

_PLAIN_TEXT = re.compile(r"[A-Za-z0-9_.:/-]{0,64}")


def _literal(value: Any) -> str | None:
    """`value` as an SQL literal when it is one that needs no escaping (NULL, a bool, an int, a short
    plain word); None otherwise (it stays a bound parameter)."""
    if value is None:
        return "NULL"
    if isinstance(value, (bool, int)):
        return str(int(value))
    if isinstance(value, str) and _PLAIN_TEXT.fullmatch(value):
        return f"'{value}'"
    return None


def insert_sql(keys: tuple[str, ...], batch: list[dict[str, Any]]) -> tuple[str, tuple[str, ...]]:
    """The INSERT for a batch, and the keys still bound per row. A column with the same plain value
    in every row of the batch is written as a literal (an import's kind, source, status, ...): SQLite
    binds ~30 parameters per row otherwise, ~15% of an import's insert time."""
    first = batch[0]
    values: list[str] = []
    bound: list[str] = []
    for k in keys:
        v = first[k]
        lit = _literal(v) if len(batch) > 1 else None
        if lit is not None:
            column = list(map(itemgetter(k), batch))
            if column.count(v) != len(column) or len(set(map(type, column))) != 1:  # 1 == True == 1.0
                lit = None
        if lit is not None:
            values.append(lit)
        else:
            values.append("?")
            bound.append(k)
    if not bound:  # executemany needs one parameter per row to insert the row at all
        values[0], bound = "?", [keys[0]]
    return (f"INSERT INTO calls ({', '.join(keys)}) VALUES ({', '.join(values)}) ON CONFLICT DO NOTHING",
            tuple(bound))


def _non_unique_indexes(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return [(name, sql) for name, sql in conn.execute(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'calls' AND sql IS NOT NULL "
        "AND sql NOT LIKE 'CREATE UNIQUE %' ORDER BY name")]


@contextmanager
def bulk_indexes(conn: sqlite3.Connection, rows: int) -> Iterator[bool]:
    """Inside a write transaction: drop the calls table's non-unique indexes for the block and create
    them again after it, when `rows` is at least REBUILD_MIN_ROWS and more than the table holds;
    yields whether it did. On an exception nothing is recreated: the caller's ROLLBACK restores them."""
    if rows < REBUILD_MIN_ROWS:
        yield False
        return
    largest = conn.execute("SELECT max(rowid) FROM calls").fetchone()[0] or 0  # O(log n), >= the count
    if largest >= rows:
        yield False
        return
    indexes = _non_unique_indexes(conn)
    for name, _ in indexes:
        conn.execute(f'DROP INDEX "{name}"')
    yield True
    for _, sql in indexes:
        conn.execute(sql)
