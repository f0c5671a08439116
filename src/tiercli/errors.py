"""One error family. cli.py turns each into a single stderr line and the exit code below.

Exit codes (documented in README):
  0 ok · 1 internal error (a bug: please report) · 2 usage (bad option or argument) ·
  3 config · 4 input (prompt/stdin/file) · 5 ledger · 6 provider (auth, overflow, all tiers failed) ·
  7 refused by a guardrail (budget, iteration limit) · 8 --check failed on every tier ·
  130 interrupted (Ctrl-C)
"""

from __future__ import annotations


class TierError(Exception):
    exit_code = 1

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class UsageError(TierError):
    exit_code = 2


class ConfigError(TierError):
    exit_code = 3


class InputError(TierError):
    exit_code = 4


class LedgerError(TierError):
    exit_code = 5


class ProviderError(TierError):
    exit_code = 6


class GuardrailRefusal(TierError):
    exit_code = 7


class BudgetExceeded(GuardrailRefusal):
    """A budget cap (daily, monthly, session, or a `tier run` attempt's cap) would be overrun."""


class IterationLimit(GuardrailRefusal):
    """A session made as many calls as its iteration limit allows."""


class CheckFailed(TierError):
    exit_code = 8


EXIT_INTERRUPTED = 130
