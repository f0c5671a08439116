"""Where Claude Code keeps its session logs, and which files a path names."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from tiercli.importers.common import find_files


def default_claude_code_dirs() -> list[Path]:
    """`$CLAUDE_CONFIG_DIR/projects` (if set), `~/.claude/projects`, `~/.config/claude/projects`: those that exist."""
    candidates: list[Path] = []
    env = os.environ.get("CLAUDE_CONFIG_DIR")
    if env:
        candidates.append(Path(env).expanduser() / "projects")
    home = Path.home()
    candidates += [home / ".claude" / "projects", home / ".config" / "claude" / "projects"]
    found: list[Path] = []
    seen: set[str] = set()
    for cand in candidates:
        real = os.path.realpath(cand)
        if real not in seen and cand.is_dir():
            seen.add(real)
            found.append(cand)
    return found


def find_log_files(paths: Iterable[str | os.PathLike] | None) -> list[Path]:
    return _find(paths)[0]


def _find(paths):
    return find_files(paths, default_claude_code_dirs, lambda name: name.endswith(".jsonl"),
                      "Claude Code session logs (~/.claude/projects/**/*.jsonl)")


# -- parsing -------------------------------------------------------------------------------------
