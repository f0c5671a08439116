"""Importers: read other coding agents' session logs into the ledger (`tier import ...`).

Each importer has a pure parser (files -> ledger rows + stats, no database) that replay can use on
its own, and an import function that writes the rows in one transaction, idempotently
(importers.common). Claude Code: importers.claude_code; Codex CLI: importers.codex.
"""

from __future__ import annotations

from tiercli.importers.claude_code import default_claude_code_dirs, import_claude_code, parse_claude_code
from tiercli.importers.common import ImportResult, ParseStats

__all__ = [
    "ImportResult",
    "ParseStats",
    "default_claude_code_dirs",
    "import_claude_code",
    "parse_claude_code",
]
