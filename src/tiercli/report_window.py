"""Report windows: `--since 48h`, `--until 2026-11-01`, ISO times, in UTC or a given zone."""

from __future__ import annotations

import datetime as dt
import re
import time

from tiercli.errors import UsageError

DAY_S = 86_400


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(m|min|mins|h|hr|hrs|d|day|days|w|wk|wks)\s*$", re.I)
_UNIT_S = {"m": 60, "min": 60, "mins": 60, "h": 3600, "hr": 3600, "hrs": 3600,
           "d": DAY_S, "day": DAY_S, "days": DAY_S, "w": 7 * DAY_S, "wk": 7 * DAY_S, "wks": 7 * DAY_S}
WINDOW_FORMS = "a duration back from now (90m, 48h, 7d, 2w), a UTC date (2026-11-01) or an ISO time (2026-11-01T09:30:00Z)"


# -- windows -------------------------------------------------------------------------------------
def parse_window(text: str, now: float | None = None, tz: dt.tzinfo | None = None) -> float:
    """'48h' | '7d' | '90m' | '2w' (back from now) | '2026-11-01' | ISO datetime -> epoch seconds.

    Dates and datetimes without a zone are in `tz` (default UTC: the report's --timezone).
    """
    if not isinstance(text, str) or not text.strip():
        raise UsageError("empty time", f"use {WINDOW_FORMS}")
    now = time.time() if now is None else now
    m = _DURATION.match(text)
    if m:
        value = now - float(m.group(1)) * _UNIT_S[m.group(2).lower()]
        try:
            iso(value)
        except (OverflowError, OSError, ValueError):
            raise UsageError(f"the time {text!r} reaches too far back", f"use {WINDOW_FORMS}") from None
        return value
    raw = text.strip()
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw) or re.match(r"\d{4}-\d{2}-\d{2}[T ]\d", raw):
        try:
            when = dt.datetime.fromisoformat(raw[:-1] + "+00:00" if raw.endswith(("Z", "z")) else raw)
        except ValueError:
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=tz or dt.timezone.utc)
            return when.timestamp()
    raise UsageError(f"cannot read the time {text!r}", f"use {WINDOW_FORMS}")


def is_duration(text: str) -> bool:
    """'7d', '48h', '90m', '2w': a span back from now (as --last takes)."""
    return bool(_DURATION.match(text or ""))


def iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _day_iso(day: int) -> str:
    return (dt.date(1970, 1, 1) + dt.timedelta(days=day)).isoformat()


