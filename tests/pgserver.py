"""A real PostgreSQL server for the team-mode tests, started once per test session.

Debian's binaries (/usr/lib/postgresql/<version>/bin: `make test` installs the `postgresql` package
when missing) run initdb and pg_ctl on a temporary directory, listening on a free port of 127.0.0.1
only, with trust authentication for the one local role `tier`. fsync is off (the tests kill processes,
never the machine: the OS keeps what was written); synchronous_commit stays on, so a commit the
server acknowledged survives a kill -9 of the server, as in production. PostgreSQL refuses to run as root, so
under root the cluster belongs to the `postgres` system user (created by the package) and is run
through `runuser`. Each test gets its own database (`pg_url`); nothing is mocked.

Tests that need the server skip, saying why, only when the binaries are absent.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest


def _bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class PgServer:
    bin_dir: Path
    root: Path
    port: int
    run_as: list[str]

    @property
    def data(self) -> Path:
        return self.root / "data"

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://tier@127.0.0.1:{self.port}/{dbname}"

    def ctl(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return subprocess.run([*self.run_as, str(self.bin_dir / "pg_ctl"), "-D", str(self.data), *args],
                              capture_output=True, text=True, check=check, timeout=120)

    def start(self, timeout: float = 60) -> None:
        """Start the server; after a kill -9 the old backends may hold shared memory for a moment
        (they exit once they notice the postmaster's death), so a failed start is retried."""
        deadline = time.monotonic() + timeout
        while True:
            done = self.ctl("start", "-w", "-l", str(self.root / "server.log"), "-o",
                            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                            "-c full_page_writes=off -c max_connections=300", check=False)
            if done.returncode == 0:
                return
            if time.monotonic() > deadline:
                log = (self.root / "server.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"PostgreSQL did not start: {done.stderr.strip()}\n{log}")
            time.sleep(0.5)

    def stop(self, mode: str = "fast") -> None:
        self.ctl("stop", "-m", mode, "-w", check=False)

    def kill9(self) -> None:
        """SIGKILL the postmaster, as a crash would (its backends die with it)."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        os.kill(pid, 9)

    def create_database(self) -> str:
        import psycopg

        name = "t_" + uuid.uuid4().hex[:12]
        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)


def start_server() -> PgServer:
    bin_dir = _bin_dir()
    if bin_dir is None:
        pytest.skip("PostgreSQL server binaries not installed (apt-get install postgresql; `make test` does it as root)")
    root = Path(tempfile.mkdtemp(prefix="tier-pg-"))
    run_as: list[str] = []
    if os.geteuid() == 0:  # initdb and postgres refuse root
        shutil.chown(root, "postgres", "postgres")
        run_as = ["runuser", "-u", "postgres", "--"]
    root.chmod(0o700)
    subprocess.run([*run_as, str(bin_dir / "initdb"), "-D", str(root / "data"), "-U", "tier", "--auth=trust",
                    "-E", "UTF8", "--no-sync", "--no-instructions"], capture_output=True, text=True, check=True,
                   timeout=120)
    server = PgServer(bin_dir, root, free_port(), run_as)
    server.start()
    return server


@pytest.fixture(scope="session")
def pg_server():
    server = start_server()
    try:
        yield server
    finally:
        server.stop("immediate")
        shutil.rmtree(server.root, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server) -> str:
    """A fresh, empty database on the session's server."""
    pytest.importorskip("psycopg", reason="psycopg not installed (requirements/test.txt has it)")
    return pg_server.create_database()
