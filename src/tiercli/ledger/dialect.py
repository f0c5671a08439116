"""What the report's SQL does differently on SQLite and PostgreSQL (ledger/queries.py's docstring
says why each differs), and PgRead: a PostgreSQL connection read like a sqlite3 one. Imports no
PostgreSQL code: PgRead is handed the ledger's own psycopg connection."""

from __future__ import annotations

import re
from typing import Any

_NAMED = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


def is_sqlite(ledger: Any) -> bool:
    return getattr(ledger, "engine_name", "sqlite") == "sqlite"


class Dialect:
    """The few pieces of report SQL the two engines cannot share (see the module docstring)."""

    def __init__(self, pg: bool):
        self.pg = pg

    def floor_div(self, divisor: int) -> str:
        """floor(started_at / divisor) as an integer, right for times before 1970 too."""
        if self.pg:  # PostgreSQL's CAST(double AS bigint) rounds to nearest
            return f"CAST(FLOOR(started_at / {divisor}) AS BIGINT)"
        trunc = f"CAST(started_at / {divisor}.0 AS INTEGER)"  # SQLite: CAST truncates toward zero
        return f"({trunc} - ({trunc} > started_at / {divisor}.0))"

    def key(self, expr: str) -> str:
        """A rollup key: PostgreSQL's UNION ALL column needs one type (text, read back per section)."""
        return f"CAST({expr} AS TEXT)" if self.pg else expr

    def text(self, expr: str) -> str:
        """Text compared byte by byte (MIN/MAX/ORDER BY) as SQLite does."""
        return f'({expr}) COLLATE "C"' if self.pg else expr

    def json_field(self, column: str, field: str, numeric: bool = False) -> str:
        if not self.pg:
            return f"json_extract({column}, '$.{field}')"
        value = f"(CAST({column} AS jsonb) ->> '{field}')"
        return f"CAST({value} AS DOUBLE PRECISION)" if numeric else value

    def json_valid(self, column: str) -> str:
        """PostgreSQL 15 has no validity test: tier writes meta_json as a JSON object or not at all."""
        return f"{column} LIKE '{{%}}'" if self.pg else f"json_valid({column})"

    def indexed_by(self, index: str) -> str:
        return "" if self.pg else f"INDEXED BY {index}"


SQLITE, POSTGRESQL = Dialect(False), Dialect(True)


def dialect(conn: Any) -> Dialect:
    return POSTGRESQL if isinstance(conn, PgRead) else SQLITE


class PgRead:
    """A PostgreSQL ledger's connection inside one read-only transaction, read like a sqlite3
    connection: execute(sql, {named} or [positional ?]) -> a cursor of tuples."""

    def __init__(self, conn: Any):
        self._conn = conn

    def execute(self, sql: str, params: dict[str, Any] | list[Any] | tuple = ()) -> Any:
        from psycopg.rows import tuple_row

        if isinstance(params, dict):
            values = [params[n] for n in _NAMED.findall(sql)]
            sql = _NAMED.sub("%s", sql.replace("%", "%%"))
        else:
            values = list(params)
            sql = sql.replace("%", "%%").replace("?", "%s")
        cur = self._conn.cursor(row_factory=tuple_row)
        cur.execute(sql, values)
        return cur
