"""Team mode: users' tokens, and the checks of `tier doctor`.

A token is `tier_` + 32 random bytes (secrets.token_urlsafe), shown once by `tier users add` /
`rotate`; the ledger keeps only its SHA-256. A slow password hash (scrypt) buys nothing here: it
protects guessable secrets, and a 256-bit random token cannot be guessed from its hash, while the
gateway hashes the presented token on every request (sha256: microseconds; scrypt: ~50 ms each).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from typing import Any

TOKEN_PREFIX = "tier_"
HINT_CHARS = 10  # `tier_` and 5 characters: enough to tell tokens apart in a list, useless to an attacker


def new_token() -> str:
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def hint(token: str) -> str:
    return token[:HINT_CHARS] + "..."


def valid_name(name: str) -> bool:
    return 0 < len(name) <= 64 and all(c.isalnum() or c in "-_.@" for c in name)


@dataclass
class Check:
    name: str
    ok: bool
    detail: str


def doctor(ledger: Any, expected_version: int) -> list[Check]:
    """The database answers, its schema is the one this tier writes, and the users' tokens are sound
    (every stored hash a SHA-256, no two users sharing one, at least one enabled user in team mode)."""
    checks = [Check("database", True, f"{getattr(ledger, 'engine_name', 'sqlite')} ledger at {ledger.path} answers")]
    version = ledger.schema_version()
    checks.append(Check("schema", version == expected_version,
                        f"schema version {version}" + ("" if version == expected_version
                                                        else f", this tier writes {expected_version}")))
    users = ledger.list_users()
    bad = [u["id"] for u in users if len(u["token_hash"] or "") != 64
           or any(c not in "0123456789abcdef" for c in u["token_hash"])]
    hashes = [u["token_hash"] for u in users]
    shared = len(hashes) != len(set(hashes))
    enabled = sum(1 for u in users if not u["disabled"])
    if not users:
        checks.append(Check("users", True, "no users (one-person mode: `tier users add NAME` for a team)"))
    elif bad or shared:
        checks.append(Check("users", False, (f"malformed token hash for {', '.join(bad)}; " if bad else "")
                            + ("two users share a token; " if shared else "") + "rotate them: tier users rotate NAME"))
    else:
        checks.append(Check("users", enabled > 0, f"{len(users)} user(s), {enabled} enabled, tokens stored as SHA-256"))
    return checks
