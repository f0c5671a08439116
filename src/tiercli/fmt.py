"""One formatting module: money, percentages, durations and terminal-safe text.

Money is never rounded to a figure that hides it: a positive amount below a cent keeps two
significant digits ($0.0005 stays $0.0005, not $0.00), and an unknown amount is a word, never $0.
"""

from __future__ import annotations

import math
from decimal import Decimal

# C0 controls, DEL, C1 controls (U+009B is a CSI too), and the bidirectional formatting characters
# that make a terminal show text in another order than it is stored (Trojan Source: U+202A-U+202E,
# U+2066-U+2069, and the marks U+200E, U+200F, U+061C).
_BIDI = [0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_CONTROL = {c: f"\\x{c:02x}" for c in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]}
_CONTROL.update({c: f"\\u{c:04x}" for c in _BIDI})
_CONTROL_KEEP_LAYOUT = {c: v for c, v in _CONTROL.items() if c not in (0x09, 0x0A, 0x0D)}


def inert(value: object, keep_layout: bool = False) -> str:
    """Control and bidi-override characters shown as escapes instead of reaching the terminal;
    `keep_layout` leaves tab, newline and carriage return alone (for answer text)."""
    return str(value).translate(_CONTROL_KEEP_LAYOUT if keep_layout else _CONTROL)


def usd(value: float | Decimal | None, *, unknown: str = "unpriced") -> str:
    """Dollars for people: cents from $1 up; below, up to four decimals or two significant digits,
    whichever shows more, without trailing zeros (a cap of $0.0005 reads $0.0005)."""
    if value is None:
        return unknown
    v = float(value)
    if v == 0:
        return "$0.00"
    sign = "-" if v < 0 else ""
    a = abs(v)
    if a >= 1:
        return f"{sign}${a:,.2f}"
    digits = max(4, 1 - math.floor(math.log10(a)))  # at least two significant digits
    whole, _, frac = f"{a:.{digits}f}".partition(".")
    frac = frac.rstrip("0").ljust(2, "0")  # $0.01 stays $0.01, $0.0150 reads $0.015
    return f"{sign}${whole}.{frac}"


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{value * 100:.{digits}f}%"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
