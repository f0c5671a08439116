"""The ledger: SQLModel tables, engine set-up, migrations, writes and queries (the only DB owner)."""

from tiercli.ledger.db import Ledger
from tiercli.ledger.models import Call, SCHEMA_VERSION

__all__ = ["Ledger", "Call", "SCHEMA_VERSION"]
