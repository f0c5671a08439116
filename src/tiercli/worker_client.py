"""`tier ask`'s side of the warm worker (worker.py): find it, hand it the request, relay its answer.

Imported by cli.py on every `tier ask`, so it stays light: the standard library and paths.py only,
never litellm, pydantic or SQLAlchemy (the worker has them loaded; that is the point).

Which worker: the socket's name carries a key over everything that shapes an answer: the config
file's bytes (not its validated hash: validating needs pydantic, ~0.4 s here, and a byte change is a
stricter key anyway), where it came from, tier's own code and Python, and a salted hash of the
values of the environment variables the config and its providers read (API keys among them; the
salt is a random file in the worker directory, so the name reveals nothing about a key). A changed
config or key gives a new name: a new worker starts, the old one exits when idle.

Protocol (one JSON object per line): the client sends {"v", "key", "opts", "db", "tty"}; the
worker answers "accepted", then "out"/"err" pieces as they are written, then "done", "error"
(class, message, hint, exit code), "interrupted" or "crash". Connection refused, or the socket
closed before "accepted" (a worker exiting on idle), or "decline": run in-process instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from tiercli import paths

PROTOCOL = 1
SOCKET_PATH_MAX = 100  # sun_path is 108 bytes on Linux, 104 on macOS
CONFIG_MAX_BYTES = 1_000_000  # config.py's limit
LOG_MAX_BYTES = 1 << 20  # worker.log starts over past this
SPAWN_GRACE_S = 30.0  # a worker started this recently is still loading: do not start another
_ENV_REF = re.compile(r"os\.environ/([A-Za-z_][A-Za-z0-9_]*)")
_PREFIX_REF = re.compile(r"""static_prefix\s*:\s*["']?@([^"'\s,}]+)""")  # caching.static_prefix: "@file"
_ENV_EXACT = {"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "no_proxy",
              "all_proxy", "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE",
              "TIKTOKEN_CACHE_DIR", "TIER_DEBUG"}
_ENV_PREFIXES = ("OTEL_", "LITELLM_", "AWS_", "AZURE_", "VERTEX", "GOOGLE_", "TIER_TEST_", "TIER_WORKER_")
_ENV_SUFFIXES = ("_API_KEY", "_API_BASE", "_BASE_URL", "_API_VERSION", "_TOKEN")


class WorkerLost(Exception):
    """The worker ended (killed, crashed) after it took the call: the row is recovered as interrupted."""


def enabled() -> bool:
    return os.environ.get("TIER_NO_WORKER", "").strip().lower() in ("", "0", "false", "no")


def worker_dir() -> Path:
    return paths.data_dir() / "worker"


def private_dir(path: Path) -> bool:
    """Create `path` 0700 if missing; True when it is ours and closed to others."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        st = os.stat(path)
    except OSError:
        return False
    if hasattr(os, "getuid") and st.st_uid != os.getuid():
        return False
    if st.st_mode & 0o077:
        try:
            os.chmod(path, 0o700)
        except OSError:
            return False
    return True


def _salt(directory: Path) -> bytes:
    path = directory / "salt"
    try:
        return path.read_bytes()
    except FileNotFoundError:
        salt = os.urandom(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()
        with os.fdopen(fd, "wb") as fh:
            fh.write(salt)
        return salt


def env_names(config_text: str, environ: dict[str, str]) -> list[str]:
    """The variables whose values can change an answer: the config's os.environ/ references and the
    usual provider, proxy and telemetry variables."""
    names = set(_ENV_REF.findall(config_text))
    names.update(n for n in environ if n in _ENV_EXACT or n.startswith(_ENV_PREFIXES) or n.endswith(_ENV_SUFFIXES))
    return sorted(names)


def _code_stamp() -> str:
    """tier's own code: a newer install (or an edited checkout) must not be served by an old worker."""
    root = Path(__file__).resolve().parent
    newest, count = 0, 0
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as entries:
            for entry in entries:
                if entry.is_dir(follow_symlinks=False) and entry.name != "__pycache__":
                    stack.append(Path(entry.path))
                elif entry.name.endswith((".py", ".yaml")):
                    newest, count = max(newest, entry.stat().st_mtime_ns), count + 1
    return f"{root}:{newest}:{count}"


def prefix_files(config_text: str) -> tuple[list[str], bool]:
    """The static-prefix files the config reads at load time: (key parts: path and content hash,
    whether a path is relative: then the worker must load the config from this directory)."""
    parts, relative = [], False
    for ref in _PREFIX_REF.findall(config_text):
        path = Path(ref).expanduser()
        if not path.is_absolute():
            relative, path = True, Path.cwd() / path
        try:
            with path.open("rb") as fh:  # bounded, as config.py reads it
                digest = hashlib.sha256(fh.read(1 << 21)).hexdigest() if path.is_file() else "not a file"
        except OSError as exc:
            digest = f"unreadable {exc.errno}"
        parts.append(f"{path}:{digest}")
    return parts, relative


def worker_key(config_source: str, config_bytes: bytes, directory: Path, environ: dict[str, str],
               extra: tuple[str, ...] | list[str] = ()) -> str:
    from tiercli import __version__

    text = config_bytes.decode("utf-8", "replace")
    secrets = hashlib.sha256(_salt(directory))
    for name in env_names(text, environ):
        secrets.update(f"{name}\0{environ.get(name, '')}\0".encode("utf-8", "surrogatepass"))
    h = hashlib.sha256()
    for part in (str(PROTOCOL), __version__, sys.executable, _code_stamp(), str(directory), config_source, *extra):
        h.update(part.encode("utf-8", "surrogatepass") + b"\0")
    h.update(hashlib.sha256(config_bytes).digest())
    h.update(secrets.digest())
    return h.hexdigest()[:24]


def socket_path(directory: Path, key: str) -> Path:
    path = directory / f"ask-{key}.sock"
    if len(os.fsencode(path)) <= SOCKET_PATH_MAX:
        return path
    import tempfile  # a deep TIER_HOME: a short private directory of our own instead

    short = Path(tempfile.gettempdir()) / f"tier-{os.getuid()}"
    return short / f"ask-{key}.sock"


def peer_uid(sock: socket.socket) -> int | None:
    """The other end's uid (Linux SO_PEERCRED), or None where the platform does not say."""
    option = getattr(socket, "SO_PEERCRED", None)
    if option is None:
        return None
    try:
        _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, option, struct.calcsize("3i")))
    except OSError:
        return None
    return uid


class Route:
    """Where this `tier ask` would find its worker."""

    def __init__(self, key: str, directory: Path, sock: Path, config: str | None, db: str | None, cwd: Path):
        self.key, self.directory, self.sock, self.config, self.db = key, directory, sock, config, db
        self.cwd = cwd  # where the worker loads the config (a relative static_prefix @file)
        self.declined = False

    @classmethod
    def find(cls, config: os.PathLike | None, db: os.PathLike | None) -> "Route | None":
        """None when the worker is off (TIER_NO_WORKER) or cannot be keyed (an unreadable config:
        the in-process run reports it)."""
        if not enabled() or not hasattr(socket, "AF_UNIX") or not hasattr(os, "getuid"):
            return None
        path, _how = paths.config_file(config)
        try:
            if path is None:
                from importlib import resources

                source, raw = "embedded", resources.files("tiercli.data").joinpath("offline.yaml").read_bytes()
            else:
                path = path.absolute()
                if paths.not_a_regular_file(path):
                    return None
                with path.open("rb") as fh:
                    source, raw = str(path), fh.read(CONFIG_MAX_BYTES + 1)
                if len(raw) > CONFIG_MAX_BYTES:
                    return None  # the in-process run says what is wrong with it
        except OSError:
            return None
        directory = worker_dir()
        if not private_dir(directory):
            return None
        try:
            extra, relative = prefix_files(raw.decode("utf-8", "replace"))
            if relative:
                extra.append(f"cwd:{Path.cwd()}")
            key = worker_key(source, raw, directory, dict(os.environ), extra)
        except OSError:
            return None
        sock = socket_path(directory, key)
        if sock.parent != directory and not private_dir(sock.parent):
            return None
        return cls(key, directory, sock, None if path is None else str(path), _explicit_ledger(db),
                   Path.cwd() if relative else directory)

    # -- asking -------------------------------------------------------------------------------------
    def _connect(self) -> socket.socket | None:
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(str(self.sock))
        except OSError:
            conn.close()
            return None
        uid = peer_uid(conn)
        if uid is not None and uid != os.getuid():
            conn.close()
            return None
        return conn

    def ask(self, opts: Any, out: Callable[[str], None], err: Callable[[str], None], *, tty: bool) -> bool:
        """True: the worker answered (its output relayed). False: none took the call; run it here.
        Raises what the pipeline raised in the worker (TierError, KeyboardInterrupt, ...)."""
        conn = self._connect()
        if conn is None:
            return False
        accepted, last, ledger = False, "\n", None
        try:
            request = {"v": PROTOCOL, "key": self.key, "opts": opts.to_dict(), "db": self.db, "tty": tty}
            for msg in _messages(conn, json.dumps(request).encode("utf-8", "surrogatepass") + b"\n"):
                kind = msg.get("t")
                if kind == "accepted":
                    accepted, ledger = True, msg.get("ledger")
                elif kind == "out":
                    out(msg["s"])  # a BrokenPipeError here is our stdout's (`| head`): cli handles it
                    last = msg["s"][-1:] or last
                elif kind == "err":
                    err(msg["s"])
                elif kind == "done":
                    return True
                elif kind == "decline":
                    self.declined = True
                    return False
                else:
                    raise _rebuild(msg)
        finally:
            conn.close()
        if not accepted:
            return False  # the worker was exiting (idle) as we connected
        if last != "\n":
            out("\n")  # as the in-process run ends a broken-off answer
        raise _lost(ledger)

    # -- starting -----------------------------------------------------------------------------------
    def start_for_next_time(self) -> None:
        """Start a worker in the background (detached, its stderr to worker.log), unless one is
        running, declined, starting, or switched off by the config."""
        if self.declined or (self.directory / f"off-{self.key}").exists():
            return
        stamp = self.directory / f"starting-{self.key}"
        try:
            if time.time() - stamp.stat().st_mtime < SPAWN_GRACE_S:
                return
        except FileNotFoundError:
            pass
        try:
            stamp.touch(mode=0o600)
            log_path = self.directory / "worker.log"
            big = log_path.exists() and log_path.stat().st_size > LOG_MAX_BYTES
            log = open(log_path, "wb" if big else "ab")  # noqa: SIM115 - handed to the child
            os.chmod(log.name, 0o600)
        except OSError:
            return
        argv = [sys.executable, "-m", "tiercli", "_worker", "--key", self.key, "--socket", str(self.sock)]
        if self.config:
            argv += ["--config", self.config]
        try:
            subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log, cwd=self.cwd,
                             start_new_session=True, close_fds=True)
        except OSError:
            pass
        finally:
            log.close()


def _messages(conn: socket.socket, request: bytes):
    """The worker's messages until it closes the connection (a reset counts as closed)."""
    try:
        conn.sendall(request)
    except OSError:
        return
    buffer = b""
    while True:
        try:
            chunk = conn.recv(65536)
        except (ConnectionError, OSError):
            return
        if not chunk:
            return
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            try:
                yield json.loads(line)
            except ValueError:
                return


def _rebuild(msg: dict[str, Any]) -> BaseException:
    """The worker's exception as this process would have raised it in-process."""
    from tiercli import errors

    kind = msg.get("t")
    if kind == "interrupted":
        return KeyboardInterrupt()
    if kind == "error":
        cls = getattr(errors, str(msg.get("class")), None)
        if not (isinstance(cls, type) and issubclass(cls, errors.TierError)):
            cls = errors.TierError
        exc = cls(msg.get("message") or "", msg.get("hint"))
        if exc.exit_code != msg.get("exit_code"):
            exc.exit_code = int(msg.get("exit_code") or 1)
        return exc
    if kind == "crash":  # rendered by cli._errors as an internal error, as in-process
        name = str(msg.get("class") or "Exception")
        return type(name if name.isidentifier() else "Exception", (Exception,), {})(msg.get("message") or "")
    return WorkerLost(f"unexpected message from the worker: {str(kind)[:40]}")


def _explicit_ledger(db: os.PathLike | None) -> str | None:
    """--db, else TIER_DB (a file made absolute: the worker runs elsewhere), else None: the worker
    resolves the config's ledger.url or the default file, as the in-process run would."""
    value = str(db) if db is not None else os.environ.get("TIER_DB")
    if not value:
        return None
    target = paths.ledger_target(value)
    return target if isinstance(target, str) else str(target.absolute())


def _lost(ledger_target: str | None) -> BaseException:
    """The worker died mid-call: settle its pending row now (recover_orphans) and say so in one line."""
    from tiercli.errors import TierError

    recovered = 0
    for _ in range(20 if ledger_target else 0):  # the dead worker may take a moment to be reaped
        assert ledger_target is not None  # the loop runs only with one
        try:
            from tiercli.ledger import open_ledger

            ledger = open_ledger(ledger_target, create=False)
            recovered = len(ledger.recovered)
            ledger.close()
        except Exception:  # noqa: BLE001 - the error below is what matters
            break
        if recovered:
            break
        time.sleep(0.05)
    what = f"; its call is recorded as interrupted ({recovered} recovered)" if recovered else ""
    return TierError(f"the tier worker ended during the call{what}",
                     "run it again (TIER_NO_WORKER=1 runs in this process; see worker.log in the worker directory)")
