"""The import's task labels worked out in a forked child (importers.labeller) are the ones the import
computes in-process, and a child that dies, or cannot be forked safely, changes nothing."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path

import pytest

from tiercli.importers import labeller
from tiercli.importers.claude_code import parse_claude_code
from tiercli.importers.labeller import Labeller, classify_here

SAMPLES = Path(__file__).resolve().parent.parent / "examples" / "claude-code"
TEXTS = [
    "fix the off-by-one in the pagination helper",
    "design the sharding scheme for the ledger across regions, with a migration plan",
    "rename the variable x to count",
]

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="no os.fork on this platform")


@needs_fork
def test_the_child_answers_what_this_process_would():
    lab = Labeller(parallel=True)
    lab.submit(TEXTS[:2])
    lab.submit([TEXTS[1], TEXTS[2], "", "   ", None])  # repeats and blanks are not sent again
    assert lab._pid is not None  # a child was forked
    found = lab.results()
    assert found == {t: classify_here(t) for t in TEXTS}
    assert lab._pid is None


@needs_fork
def test_a_dead_child_means_labels_are_worked_out_here(monkeypatch):
    lab = Labeller(parallel=True)
    lab.submit(TEXTS)
    pid = lab._pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    lab.submit(["one more text after the child died"])  # no exception: the pipe error is absorbed
    assert lab.results() == {}
    with pytest.raises(ChildProcessError):  # reaped: no zombie left behind
        os.waitpid(pid, os.WNOHANG)


@needs_fork
def test_parsed_rows_identical_with_and_without_the_child(monkeypatch):
    forks: list[int] = []
    real_fork = os.fork
    monkeypatch.setattr(labeller.os, "fork", lambda: forks.append(1) or real_fork())
    monkeypatch.setattr(labeller, "can_fork", lambda: True)
    with_child, stats_child = parse_claude_code([SAMPLES])
    assert forks == [1]
    monkeypatch.setattr(labeller, "can_fork", lambda: False)
    alone, stats_alone = parse_claude_code([SAMPLES])
    assert forks == [1]
    assert with_child == alone
    assert stats_child == stats_alone
    labelled = [r for r in alone if r["task_type"] is not None]
    assert labelled and all(r["classifier"] == "local" for r in labelled)


def test_no_fork_on_a_machine_busy_on_every_core(monkeypatch):
    cores = os.cpu_count() or 1
    monkeypatch.setattr(labeller.threading, "active_count", lambda: 1)
    monkeypatch.setattr(labeller.os, "getloadavg", lambda: (cores + 1.0, 0.0, 0.0))
    assert Labeller().parallel is False
    monkeypatch.setattr(labeller.os, "getloadavg", lambda: (cores - 1.0, 0.0, 0.0))
    assert Labeller().parallel is hasattr(os, "fork")


def test_no_fork_while_other_threads_run():
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait)
    thread.start()
    try:
        assert Labeller().parallel is False
    finally:
        stop.set()
        thread.join()


@needs_fork
def test_an_interrupted_parse_leaves_no_child(monkeypatch):
    pids: list[int] = []
    real_fork = os.fork

    def fork() -> int:
        pid = real_fork()
        if pid:
            pids.append(pid)
        return pid

    monkeypatch.setattr(labeller.os, "fork", fork)
    monkeypatch.setattr(labeller, "can_fork", lambda: True)

    def progress(done: int, *_: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        parse_claude_code([SAMPLES], progress=progress)
    assert pids, "the first file's instructions went to a child"
    for pid in pids:
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
