"""Team mode in the ledger (schema 4): users, per-user figures, shared stickiness; the same SQL on
SQLite and PostgreSQL.

UsersMixin gives both Ledger classes the users table's reads and writes; each class supplies
`_tx()` (a write transaction whose connection has `execute`), `_select()` and `_q()` (its
placeholder style). Only a hash of a token is stored (tiercli/users.py says why sha256).
"""

from __future__ import annotations

import time
from typing import Any

from tiercli.errors import LedgerError

USER_COLUMNS = "id, token_hash, token_hint, daily_usd, monthly_usd, disabled, created_at, rotated_at"


class UsersMixin:
    def _q(self, sql: str) -> str:  # SQLite's `?`; PostgreSQL overrides
        return sql

    def add_user(self, name: str, token_hash: str, token_hint: str, daily_usd: float | None,
                 monthly_usd: float | None) -> None:
        with self._tx() as conn:  # type: ignore[attr-defined]
            exists = conn.execute(self._q("SELECT 1 FROM users WHERE id = ?"), [name]).fetchone()
            if exists:
                raise LedgerError(f"user {name!r} already exists",
                                  "pick another name, or `tier users rotate NAME` for a new token")
            conn.execute(self._q(f"INSERT INTO users ({USER_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"),
                         [name, token_hash, token_hint, daily_usd, monthly_usd, False, time.time(), None])

    def list_users(self) -> list[dict[str, Any]]:
        return self._select(f"SELECT {USER_COLUMNS} FROM users ORDER BY id")  # type: ignore[attr-defined]

    def get_user(self, name: str) -> dict[str, Any] | None:
        rows = self._select(self._q(f"SELECT {USER_COLUMNS} FROM users WHERE id = ?"), [name])  # type: ignore[attr-defined]
        return rows[0] if rows else None

    def user_by_token_hash(self, token_hash: str) -> dict[str, Any] | None:
        rows = self._select(self._q(f"SELECT {USER_COLUMNS} FROM users WHERE token_hash = ?"), [token_hash])  # type: ignore[attr-defined]
        return rows[0] if rows else None

    def count_users(self, enabled_only: bool = True) -> int:
        where = " WHERE disabled = ?" if enabled_only else ""
        rows = self._select(self._q(f"SELECT COUNT(*) AS n FROM users{where}"), [False] if enabled_only else [])  # type: ignore[attr-defined]
        return int(rows[0]["n"])

    def _update_user(self, name: str, **fields: Any) -> bool:
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self._tx() as conn:  # type: ignore[attr-defined]
            return conn.execute(self._q(f"UPDATE users SET {sets} WHERE id = ?"), [*fields.values(), name]).rowcount == 1

    def set_user_disabled(self, name: str, disabled: bool) -> bool:
        return self._update_user(name, disabled=disabled)

    def rotate_user_token(self, name: str, token_hash: str, token_hint: str) -> bool:
        return self._update_user(name, token_hash=token_hash, token_hint=token_hint, rotated_at=time.time())

    def set_user_budget(self, name: str, daily_usd: float | None, monthly_usd: float | None) -> bool:
        return self._update_user(name, daily_usd=daily_usd, monthly_usd=monthly_usd)

    def session_warm_tier(self, session: str) -> tuple[str, float] | None:
        """(tier, time) of the last answered gateway call of `session`, whichever gateway answered it:
        the prompt-cache stickiness that several gateways on one ledger share."""
        rows = self._select(self._q(  # type: ignore[attr-defined]
            "SELECT served_tier, tier, started_at, ended_at FROM calls WHERE session = ? AND kind = 'main' "
            "AND source = 'serve' AND status = 'ok' ORDER BY started_at DESC LIMIT 1"), [session])
        if not rows:
            return None
        r = rows[0]
        return r["served_tier"] or r["tier"], r["ended_at"] or r["started_at"]

    def spend_by_user(self, since: float | None = None, until: float | None = None) -> list[dict[str, Any]]:
        """Per user (None: calls without a user) in [since, until): calls made (refused ones apart),
        refused, settled cost of the priced ones, unpriced calls (cost unknown, never counted as $0).
        Portable SQL: the same figures on both engines (for `tier report --by user`)."""
        where, params = ["1=1"], []
        if since is not None:
            where.append("started_at >= ?")
            params.append(since)
        if until is not None:
            where.append("started_at < ?")
            params.append(until)
        sql = (
            "SELECT user_id, SUM(CASE WHEN status != 'refused' THEN 1 ELSE 0 END) AS calls, "
            "SUM(CASE WHEN status = 'refused' THEN 1 ELSE 0 END) AS refused, "
            "COALESCE(SUM(cost_usd), 0) AS cost_usd, "
            "SUM(CASE WHEN cost_usd IS NULL AND status NOT IN ('refused', 'pending') THEN 1 ELSE 0 END) AS unpriced "
            f"FROM calls WHERE {' AND '.join(where)} GROUP BY user_id ORDER BY cost_usd DESC, user_id")
        return self._select(self._q(sql), params)  # type: ignore[attr-defined]


# -- schema 4 on SQLite (pg.py has PostgreSQL's) ------------------------------------------------------
_SPEND = "COALESCE({r}.cost_usd, 0) + COALESCE({r}.reserved_usd, 0)"
_DAY = "date({r}.started_at, 'unixepoch')"
SQLITE_V4_COLUMNS = {"user_id": "VARCHAR", "owner_host": "VARCHAR"}
# Spend per user per UTC day, kept like spend_days (same transaction as the change to calls), so a
# user's budget check reads at most ~31 rows.
SQLITE_V4 = [
    "CREATE INDEX IF NOT EXISTS ix_calls_user_id ON calls (user_id)",
    "CREATE TABLE IF NOT EXISTS spend_user_days (user_id TEXT NOT NULL, day TEXT NOT NULL, "
    "usd FLOAT NOT NULL DEFAULT 0, PRIMARY KEY (user_id, day))",
    f"""CREATE TRIGGER IF NOT EXISTS calls_user_spend_insert AFTER INSERT ON calls WHEN NEW.user_id IS NOT NULL BEGIN
        INSERT INTO spend_user_days (user_id, day, usd) VALUES (NEW.user_id, {_DAY.format(r="NEW")}, {_SPEND.format(r="NEW")})
        ON CONFLICT(user_id, day) DO UPDATE SET usd = usd + excluded.usd; END""",
    f"""CREATE TRIGGER IF NOT EXISTS calls_user_spend_update
        AFTER UPDATE OF cost_usd, reserved_usd, started_at, user_id ON calls BEGIN
        UPDATE spend_user_days SET usd = usd - ({_SPEND.format(r="OLD")})
            WHERE user_id = OLD.user_id AND day = {_DAY.format(r="OLD")};
        INSERT INTO spend_user_days (user_id, day, usd)
            SELECT NEW.user_id, {_DAY.format(r="NEW")}, {_SPEND.format(r="NEW")} WHERE NEW.user_id IS NOT NULL
        ON CONFLICT(user_id, day) DO UPDATE SET usd = usd + excluded.usd; END""",
    f"""CREATE TRIGGER IF NOT EXISTS calls_user_spend_delete AFTER DELETE ON calls WHEN OLD.user_id IS NOT NULL BEGIN
        UPDATE spend_user_days SET usd = usd - ({_SPEND.format(r="OLD")})
            WHERE user_id = OLD.user_id AND day = {_DAY.format(r="OLD")}; END""",
]
