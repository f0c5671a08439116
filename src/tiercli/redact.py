"""Masking secrets: API keys must never reach the ledger, logs or error text."""

from __future__ import annotations

import os
import re
from typing import Iterable

SECRET_PATTERNS = [
    re.compile(r"sk-(?:ant-(?:api\d\d-)?|proj-|or-v\d-|or-)?[A-Za-z0-9_\-]{16,}"),
    re.compile(r"AKIA[0-9A-Z]{16}"),
    re.compile(r"gh[pousr]_[A-Za-z0-9]{20,}"),
    re.compile(r"github_pat_[A-Za-z0-9_]{20,}"),
    re.compile(r"xox[abpr]-[A-Za-z0-9\-]{10,}"),
    re.compile(r"AIza[0-9A-Za-z_\-]{35}"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(?:-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S),
]
_BEARER = re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._\-]{16,}")
MASK = "<redacted>"


def redact(text: str) -> str:
    """Mask common secret shapes (sk-..., AKIA..., ghp_..., private-key blocks, bearer tokens)."""
    for pattern in SECRET_PATTERNS:
        text = pattern.sub(MASK, text)
    return _BEARER.sub(lambda m: m.group(1) + MASK, text)


def scrub(text: str, variables: Iterable[str] = ()) -> str:
    """redact(), and first replace the values of these environment variables by their names."""
    for var in variables:
        value = os.environ.get(var)
        if value and len(value) >= 6:
            text = text.replace(value, f"<{var}>")
    return redact(text)
