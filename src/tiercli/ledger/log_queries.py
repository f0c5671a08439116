"""The SQL of `tier log` (both engines, through queries.fetch)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tiercli.ledger.queries import Where, fetch

if TYPE_CHECKING:
    from tiercli.ledger.db import Ledger

# -- tier log --------------------------------------------------------------------------------------
LOG_STATUSES = ("ok", "error", "interrupted", "pending", "refused")


def _like(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally (ESCAPE '\\')."""
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def log_calls(ledger: "Ledger", *, limit: int, session: str | None = None, model: str | None = None,
              tier: str | None = None, task_type: str | None = None, since: float | None = None,
              until: float | None = None, status: str | None = None, text: str | None = None,
              user: str | None = None) -> list[dict[str, Any]]:
    """The newest calls matching every filter given, newest first (read off ix_calls_started_at).

    session and user: exact (user "(none)": calls made without one); model: part of the served or
    requested model name; tier: the tier it was sent
    to or the one that answered; text: part of the stored prompt (case-insensitive for ASCII)."""
    where = Where(since, until, session, user=user)
    extra: list[str] = []
    params = dict(where.params)
    if model is not None:
        extra.append("(served_model LIKE :l_model ESCAPE '\\' OR requested_model LIKE :l_model ESCAPE '\\')")
        params["l_model"] = _like(model)
    if tier is not None:
        extra.append("(tier = :l_tier OR served_tier = :l_tier)")
        params["l_tier"] = tier
    if task_type is not None:
        extra.append("task_type = :l_task")
        params["l_task"] = task_type
    if status is not None:
        extra.append("status = :l_status")
        params["l_status"] = status
    if text is not None:
        extra.append("prompt_text LIKE :l_text ESCAPE '\\'")
        params["l_text"] = _like(text)
    params["l_limit"] = limit
    sql = f"SELECT * FROM calls {where.sql(*extra)} ORDER BY started_at DESC, id LIMIT :l_limit"
    return fetch(ledger, sql, params)


def call_with_feedback(ledger: "Ledger", call_id: str) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """A call by full id or unique prefix, its linked calls (classifier, compaction, replays: the
    rows whose parent it is) and its feedback. (None, []) when no single call matches."""
    call = ledger.find_call(call_id)
    if call is None:
        return None, []
    linked = fetch(ledger, "SELECT id, kind, tier, served_model, status, cost_usd, unpriced FROM calls "
                           "WHERE parent_id = ? ORDER BY started_at, id", [call["id"]])
    feedback = fetch(ledger, "SELECT created_at, verdict, note FROM feedback WHERE call_id = ? ORDER BY id", [call["id"]])
    call["linked"] = linked
    return call, feedback
