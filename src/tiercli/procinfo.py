"""Is the process that wrote a pending row still alive? (pid plus start time: pids are reused.)

On Linux the start time comes from /proc (boot time + the process's start in clock ticks), exact to
the tick; elsewhere only the pid's existence is checked (os.kill with signal 0).
"""

from __future__ import annotations

import functools
import os
import socket

_TOLERANCE_S = 2.0  # clock ticks and boot-time rounding
HOST = socket.gethostname()  # pids are per host: a shared (PostgreSQL) ledger records both


@functools.lru_cache(maxsize=1)
def _boot_time() -> float | None:
    try:
        with open("/proc/stat", "rb") as fh:
            for line in fh:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except OSError:
        return None
    return None


def started(pid: int) -> float | None:
    """The epoch time `pid` started, or None when unknown (no /proc) or the process is gone."""
    boot = _boot_time()
    if boot is None:
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # the command name (field 2) may hold spaces and parentheses: fields resume after the last ')'
    fields = stat[stat.rfind(b")") + 2:].split()
    if fields[:1] == [b"Z"]:
        return None  # a zombie has ended; only its exit status waits to be collected
    try:
        ticks = int(fields[19])  # field 22 of the whole line
    except (IndexError, ValueError):
        return None
    return boot + ticks / os.sysconf("SC_CLK_TCK")


@functools.lru_cache(maxsize=1)
def _own_start() -> float | None:
    return started(os.getpid())


def this_process_started() -> float | None:
    if os.getpid() != _own_pid[0]:  # a forked child is another process
        _own_pid[0] = os.getpid()
        _own_start.cache_clear()
    return _own_start()


_own_pid = [os.getpid()]


def alive(pid: int | None, start: float | None) -> bool:
    """False when the process that wrote the row is certainly gone (or its pid now names another)."""
    if pid is None:
        return False
    if _boot_time() is not None:
        now_started = started(pid)
        if now_started is None:
            return False
        return start is None or abs(now_started - start) <= _TOLERANCE_S
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True
