"""Task labels for an import, worked out on the machine's second core while the logs are parsed.

The local classifier's first decisions in a process cost ~0.2-0.25 s (its rules' regexes compile on
first use), and every distinct instruction costs ~1 ms more: as much as parsing 50 MB of logs. So
`Labeller` forks a child as soon as the first instructions are known; the parser hands it each file's
new instructions (`submit`) and goes on parsing while the child classifies them. `results()` collects
the child's answers at the end, after all rows are built.

The child runs the very same `run_local` on the very same text, so the labels are the ones the import
would compute itself; only where they are computed changes. Without os.fork (Windows), with other
threads running (a Rich progress bar on a terminal: forking a threaded process is unsafe), with no
idle core (load average), or when the child fails in any way, the texts are classified in this
process instead, with the same result.

Protocol (pipes, pickle, our own child): lists of texts down, then None; the child answers once, at
the end, with {text: (task_type, label, confidence)}, so neither side ever waits on a full pipe while
the other waits on it.
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any, BinaryIO, Iterable

Label = tuple[Any, Any, Any]  # (task_type, label, confidence) as run_local gives them


def classify_here(text: str) -> Label:
    from tiercli.classify import run_local

    c = run_local(text)
    return c.task_type, c.label, c.confidence


def can_fork() -> bool:
    """Forking is safe (the platform has fork, this process runs no other thread) and pays: a core is
    idle. On a machine already busy on every core (1-minute load average >= cores - 0.5) the child
    only adds its own work (and its start) to the import's: measured at load 5.5 on 2 cores, CPU 1.57 s
    with the child vs 1.39 s without."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return False
    try:
        load = os.getloadavg()[0]
    except OSError:
        return True
    return load < (os.cpu_count() or 1) - 0.5


class Labeller:
    """Texts submitted while parsing; their labels when asked (a child process when `parallel`)."""

    def __init__(self, parallel: bool | None = None) -> None:
        self.parallel = can_fork() if parallel is None else parallel
        self._sent: set[str] = set()
        self._pid: int | None = None
        self._down: BinaryIO | None = None
        self._up: BinaryIO | None = None
        self._failed = False
        self._answered = False

    def submit(self, texts: Iterable[str | None]) -> None:
        """Texts worth classifying (not empty, not sent before) go to the child at once."""
        fresh = [t for t in texts if t and t not in self._sent and t.strip()]
        if not fresh:
            return
        self._sent.update(fresh)
        if not self.parallel or self._failed:
            return
        import pickle  # here, not at import: a run without a child never loads it

        try:
            if self._pid is None:
                self._start()
            assert self._down is not None
            pickle.dump(fresh, self._down, protocol=pickle.HIGHEST_PROTOCOL)
            self._down.flush()
        except (OSError, pickle.PickleError):
            self._fail()

    def results(self) -> dict[str, Label]:
        """{text: label} the child worked out: all submitted texts, or none when it failed (or there
        is no child); the caller classifies what is missing itself (label_tasks does)."""
        found: dict[str, Label] = {}
        if self._pid is not None and not self._failed:
            import pickle

            try:
                assert self._down is not None and self._up is not None
                pickle.dump(None, self._down)
                self._down.close()
                answer = pickle.load(self._up)
                self._answered = True
                if isinstance(answer, dict):
                    found = answer
            except (OSError, EOFError, pickle.PickleError, ValueError):
                found = {}
        self.close()
        return found

    def close(self) -> None:
        """End the child (if any) and reap it; safe to call twice. A child that has not answered
        (an interrupted import) is killed rather than waited for: it may be mid-way through a batch."""
        for f in (self._down, self._up):
            if f is not None:
                try:
                    f.close()
                except OSError:
                    pass
        self._down = self._up = None
        pid, self._pid = self._pid, None
        if pid is not None:
            if not self._answered:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass

    def _fail(self) -> None:
        self._failed = True
        self.close()

    def _start(self) -> None:
        down_r, down_w = os.pipe()
        up_r, up_w = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            code = 1
            try:
                os.close(down_w)
                os.close(up_r)
                code = _serve(os.fdopen(down_r, "rb"), os.fdopen(up_w, "wb"))
            finally:
                os._exit(code)
        os.close(down_r)
        os.close(up_w)
        self._pid = pid
        self._down = os.fdopen(down_w, "wb")
        self._up = os.fdopen(up_r, "rb")


def _serve(down: BinaryIO, up: BinaryIO) -> int:
    """The child: classify each batch as it arrives; answer once, after the end mark."""
    import pickle

    found: dict[str, Label] = {}
    try:
        while True:
            batch = pickle.load(down)
            if batch is None:
                break
            for text in batch:
                found[text] = classify_here(text)
        pickle.dump(found, up, protocol=pickle.HIGHEST_PROTOCOL)
        up.flush()
        return 0
    except BaseException:  # noqa: BLE001 (the parent works the labels out itself)
        return 1
