"""The ledger: SQLite file, migrations, writes and queries (the only owner of the database).

Importing this package is cheap: SQLModel and SQLAlchemy load only when a report, an import or a
migration needs them (see db.py).
"""

from tiercli.ledger.db import SCHEMA_VERSION, Ledger

__all__ = ["Ledger", "SCHEMA_VERSION"]
