"""`tier import` output: a Rich progress bar on a terminal (files, lines, MB/s; nothing when piped)
and the summary lines. Imported text is never printed here, only counts."""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from typing import Any, Iterator, Protocol

from tiercli.importers.common import ImportResult


class ProgressBar(Protocol):
    """An importer's `Progress` callback that can also count calls instead of bytes (unit="calls")."""

    def __call__(self, files: int, files_total: int, done: int, total: int, lines: int, unit: str = "bytes") -> None: ...


@contextmanager
def call_progress(label: str, stream: Any = None) -> Iterator[Any]:
    """(done, total) calls progress on a terminal (replay); None when piped."""
    with progress_bar(label, stream) as bar:
        if bar is None:
            yield None
            return

        def update(done: int, total: int) -> None:
            bar(0, 0, done, total, done, unit="calls")

        yield update


@contextmanager
def progress_bar(label: str, stream: Any = None) -> Iterator[ProgressBar | None]:
    """A progress callback drawing on stderr when it is a terminal; None (no output) otherwise."""
    stream = stream if stream is not None else sys.stderr
    if not (hasattr(stream, "isatty") and stream.isatty()):
        yield None
        return
    from rich.console import Console
    from rich.progress import BarColumn, TextColumn, TimeRemainingColumn
    from rich.progress import Progress as Bar

    bar = Bar(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.fields[info]}"), TimeRemainingColumn(),
              console=Console(file=stream), transient=True)
    started = time.perf_counter()
    with bar:
        task = bar.add_task(label, total=None, info="")

        def update(files: int, files_total: int, done: int, total: int, lines: int, unit: str = "bytes") -> None:
            elapsed = max(time.perf_counter() - started, 1e-6)
            if unit == "calls":
                info = f"{done:,}/{total:,} calls, {done / elapsed:,.0f} calls/s"
            else:
                info = f"{files:,}/{files_total:,} files, {lines:,} lines, {done / 1e6 / elapsed:,.0f} MB/s"
            bar.update(task, total=total or None, completed=done, info=info)

        yield update


def summary(result: ImportResult) -> list[str]:
    """What the import did, in words a first-time user can read."""
    mb = result.bytes / 1e6
    rate = f", {mb / result.seconds:,.0f} MB/s" if result.seconds > 0 and mb >= 1 else ""
    lines = [f"{result.files:,} file(s), {result.lines:,} lines ({mb:,.1f} MB in {result.seconds:.1f} s{rate}): "
             f"{result.calls_added:,} call(s) added; {result.tasks:,} task(s) in these logs"]
    notes = []
    if result.already_imported:
        notes.append(f"{result.already_imported:,} call(s) already in the ledger")
    if result.partial_lines and result.source == "codex":
        notes.append(f"{result.partial_lines:,} repeated token count(s) not counted again (Codex logs a turn's running "
                     "total more than once, and a forked session replays its parent's)")
    elif result.partial_lines:
        notes.append(f"{result.partial_lines:,} extra line(s) of calls already counted (a response is logged as "
                     "several streamed lines; counted once, with its final token counts)")
    if result.malformed:
        notes.append(f"{result.malformed:,} malformed line(s) skipped")
    if result.synthetic_skipped:
        notes.append(f"{result.synthetic_skipped:,} synthetic message(s) skipped (not model calls)")
    lines += [f"  {n}" for n in notes]
    if result.calls_added:
        t = result.tokens
        lines.append(f"tokens: {t['input']:,} input, {t['cache_read']:,} cache read, {t['cache_write']:,} cache write, "
                     f"{t['output']:,} output; cost ${result.cost_usd:,.2f}")
    return lines
