"""Read queries for importers and replay, on the ledger's plain sqlite3 connection (no SQLAlchemy).

Kept apart from db.py (connections, schema, migrations) so those stay small.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:
    from tiercli.ledger.db import Ledger

_CHUNK = 500  # keys per IN (...) query


def known_call_keys(ledger: "Ledger", rows: Iterable[dict[str, Any]]) -> tuple[set[str], set[str]]:
    """(ids, external ids) of `rows` already in the ledger, in one read transaction."""
    rows = list(rows)
    ids: set[str] = set()
    external: set[str] = set()
    with ledger._tx(immediate=False) as conn:
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            ids.update(r[0] for r in conn.execute(f"SELECT id FROM calls WHERE id IN ({marks})",
                                                  [r["id"] for r in chunk]))
            ext = [r["external_id"] for r in chunk]
            external.update(r[0] for r in conn.execute(
                f"SELECT external_id FROM calls WHERE external_id IN ({', '.join('?' * len(ext))})", ext))
    return ids, external
