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
    for start in range(0, len(rows), _CHUNK):  # on either engine (PgLedger._select takes the same ? marks)
        chunk = rows[start:start + _CHUNK]
        marks = ", ".join("?" * len(chunk))
        ids.update(r["id"] for r in ledger._select(f"SELECT id FROM calls WHERE id IN ({marks})", [r["id"] for r in chunk]))
        ext = [r["external_id"] for r in chunk]
        external.update(r["external_id"] for r in ledger._select(
            f"SELECT external_id FROM calls WHERE external_id IN ({', '.join('?' * len(ext))})", ext))
    return ids, external
