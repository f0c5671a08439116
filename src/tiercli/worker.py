"""The warm worker: serves `tier ask` on a private Unix socket with litellm already imported.

`tier ask` pays 3-5 s to import litellm on every call here; people run it in shell loops. The first
`tier ask` that finds no worker answers in-process as before, then starts one (`python -m tiercli
_worker`, detached, stderr to worker.log in the worker directory); the next calls hand it their
request (worker_client.py) and stream its answer back.

One pipeline: each request runs ask_command.execute() (ask.run and calls.py, exactly what the
in-process path runs) in its own thread, on the config loaded once at start (the socket name is
keyed by that config's bytes, tier's code and the key variables' values, so a change starts a new
worker), with the Router, its HTTP connections, the tokenizers and the classifier kept warm. The
ledger rows are written here, by the same code, so they are the in-process rows (owner: this pid).

The client hanging up (Ctrl-C, `| head`) makes the next piece of text raise ClientGone, a
KeyboardInterrupt: the pipeline settles the call `interrupted` with the partial answer, as for
Ctrl-C in-process. If this process dies mid-call, its pending rows carry its pid; the client (or
any later tier process) settles them with Ledger.recover_orphans.

Security: the directory is 0700, the socket 0600, and each connection's peer uid (SO_PEERCRED,
Linux) must be ours. No network listener. Exits after worker.idle_s (TIER_WORKER_IDLE_S) idle.
"""

from __future__ import annotations

import json
import os
import select
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from tiercli import worker_client

MAX_REQUEST_BYTES = 40 * 1024 * 1024  # an 8 MB prompt and an 8 MB system file, JSON-escaped
REQUEST_TIMEOUT_S = 30.0  # a connection that sends no request does not keep the worker from idling out


class ClientGone(KeyboardInterrupt):
    """The `tier ask` at the other end went away: settle the call as interrupted."""


def log(message: str) -> None:
    sys.stderr.write(f"{time.strftime('%Y-%m-%dT%H:%M:%S')} tier worker {os.getpid()}: {message}\n")
    sys.stderr.flush()


class Channel:
    """One client connection: JSON lines out; any send after a hang-up raises ClientGone."""

    def __init__(self, conn: socket.socket):
        self.conn = conn
        self.gone = False

    def _hung_up(self) -> bool:
        try:
            readable, _, _ = select.select([self.conn], [], [], 0)
            return bool(readable) and self.conn.recv(1, socket.MSG_PEEK) == b""  # the client sends nothing more
        except OSError:
            return True

    def send(self, msg: dict[str, Any]) -> None:
        if self.gone or self._hung_up():
            self.gone = True
            raise ClientGone()
        try:
            self.conn.sendall(json.dumps(msg).encode("ascii") + b"\n")  # ASCII: any str survives the trip
        except OSError:
            self.gone = True
            raise ClientGone() from None

    def send_quietly(self, msg: dict[str, Any]) -> None:
        try:
            self.send(msg)
        except ClientGone:
            pass

    def out(self, text: str) -> None:
        self.send({"t": "out", "s": text})

    def err(self, text: str) -> None:
        self.send({"t": "err", "s": text})


class Worker:
    def __init__(self, key: str, sock_path: Path, loaded, idle_s: float):
        self.key, self.sock_path, self.loaded, self.idle_s = key, sock_path, loaded, idle_s
        self.active = 0
        self.last = time.monotonic()
        self.lock = threading.Lock()
        self.listener: socket.socket | None = None
        self.warm = threading.Event()  # set when warm_up() ends: calls wait for it (see warm_up)
        self.inode: int | None = None

    # -- socket ---------------------------------------------------------------------------------------
    def bind(self) -> bool:
        """Listen on the socket unless another worker already answers there (then False)."""
        import fcntl

        with open(self.sock_path.parent / ".bind.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                probe.connect(str(self.sock_path))
                return False  # alive: leave it be
            except OSError:
                pass
            finally:
                probe.close()
            try:
                self.sock_path.unlink()  # a stale socket of a worker that died
            except FileNotFoundError:
                pass
            listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            old = os.umask(0o177)  # no other thread runs yet: the socket is born 0600
            try:
                listener.bind(str(self.sock_path))
            finally:
                os.umask(old)
            os.chmod(self.sock_path, 0o600)
            listener.listen(64)
            self.listener = listener
            self.inode = os.stat(self.sock_path).st_ino
        return True

    def still_ours(self) -> bool:
        try:
            return os.stat(self.sock_path).st_ino == self.inode
        except OSError:
            return False

    def close(self) -> None:
        if self.listener is not None:
            self.listener.close()
        if self.still_ours():
            try:
                self.sock_path.unlink()
            except OSError:
                pass

    # -- serving --------------------------------------------------------------------------------------
    def serve_forever(self) -> None:
        assert self.listener is not None
        self.listener.settimeout(min(1.0, self.idle_s))
        while True:
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                with self.lock:
                    idle = self.active == 0 and time.monotonic() - self.last > self.idle_s
                if idle:
                    log(f"idle for {self.idle_s:g} s: exiting")
                    return
                if not self.still_ours():
                    log("socket removed or replaced: exiting")
                    return
                continue
            with self.lock:
                self.active += 1
                self.last = time.monotonic()
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(None)
            uid = worker_client.peer_uid(conn)
            if uid is not None and uid != os.getuid():
                log(f"refused a connection from uid {uid}")
                return
            self._answer(conn)
        except Exception as exc:  # noqa: BLE001 - one request must not take the worker down
            from tiercli.redact import redact

            log(f"request failed: {type(exc).__name__}: {redact(str(exc))[:300]}")
        finally:
            try:
                conn.close()
            finally:
                with self.lock:
                    self.active -= 1
                    self.last = time.monotonic()

    def _read_request(self, conn: socket.socket) -> dict[str, Any] | None:
        """The request line; None for a client that sends none within REQUEST_TIMEOUT_S (or too much)."""
        buffer = b""
        conn.settimeout(REQUEST_TIMEOUT_S)
        try:
            while b"\n" not in buffer:
                chunk = conn.recv(1 << 20)
                if not chunk:
                    return None
                buffer += chunk
                if len(buffer) > MAX_REQUEST_BYTES:
                    return None
        except socket.timeout:
            return None
        conn.settimeout(None)
        return json.loads(buffer.split(b"\n", 1)[0])

    def _answer(self, conn: socket.socket) -> None:
        from tiercli import ask_command
        from tiercli.errors import TierError
        from tiercli.render_calls import inert

        channel = Channel(conn)
        request = self._read_request(conn)
        if request is None:
            return
        if request.get("v") != worker_client.PROTOCOL or request.get("key") != self.key:
            channel.send_quietly({"t": "decline", "why": "another protocol or key"})
            return
        opts = ask_command.AskOptions.from_dict(request.get("opts") or {})
        if opts.dry_run or ask_command.uses_check(self.loaded, opts):
            # a check command runs in the user's directory and environment: in-process only
            channel.send_quietly({"t": "decline", "why": "runs in-process"})
            return
        from tiercli import paths

        target = paths.ledger_target(request.get("db"), self.loaded.config.ledger.url)
        channel.send({"t": "accepted", "pid": os.getpid(), "ledger": str(target)})
        self.warm.wait()
        started, outcome = time.monotonic(), "ok"
        try:
            ask_command.execute(self.loaded, opts, target, out=channel.out, err=channel.err,
                                tty=bool(request.get("tty")), terminal_safe=lambda t: inert(t, keep_layout=True))
        except TierError as exc:
            outcome = f"{type(exc).__name__} (exit {exc.exit_code})"
            channel.send_quietly({"t": "error", "class": type(exc).__name__, "message": exc.message, "hint": exc.hint,
                                  "exit_code": exc.exit_code})
        except KeyboardInterrupt:  # ClientGone, settled as interrupted by the pipeline
            outcome = "interrupted (the client hung up)"
            channel.send_quietly({"t": "interrupted"})
        except Exception as exc:  # noqa: BLE001 - reported as the in-process run would (an internal error)
            from tiercli.redact import redact

            outcome = f"internal error: {type(exc).__name__}: {redact(str(exc))[:300]}"
            channel.send_quietly({"t": "crash", "class": type(exc).__name__, "message": redact(str(exc))[:1000]})
        else:
            channel.send_quietly({"t": "done"})
        log(f"answered a call in {(time.monotonic() - started) * 1000:.0f} ms: {outcome}")

    # -- warm-up --------------------------------------------------------------------------------------
    def warm_up(self) -> None:
        """litellm, the Router, the tokenizers and the classifier, before the first request needs them.
        Calls wait for it: two threads importing litellm at once fail inside its package (as the
        gateway found). Counts as activity: the idle clock starts when the worker is warm."""
        started = time.monotonic()
        with self.lock:
            self.active += 1
        try:
            from tiercli import ask, providers, tokens
            from tiercli.ledger import Ledger  # noqa: F401

            cfg = self.loaded.config
            providers.warm_up(cfg, self.loaded.hash)
            for tier in cfg.routing.tiers:
                tokens.count("warm up", cfg.primary_model(tier).removeprefix("offline/"))
            ask.classify_only(self.loaded, "warm up the classifier", None)
        except Exception as exc:  # noqa: BLE001 - a request will meet (and report) the same problem
            from tiercli.redact import redact

            log(f"warm-up incomplete: {type(exc).__name__}: {redact(str(exc))[:300]}")
        finally:
            with self.lock:
                self.active -= 1
                self.last = time.monotonic()
            log(f"warm in {time.monotonic() - started:.1f} s")
            self.warm.set()


def main(key: str, sock_path: str, config_path: str | None) -> int:
    from tiercli import config

    directory = worker_client.worker_dir()
    stamp = directory / f"starting-{key}"
    try:
        try:
            loaded = config.load(config_path or None)
        except Exception as exc:  # noqa: BLE001 - the in-process run reports it to the user
            log(f"not started: {type(exc).__name__}: {str(exc)[:300]}")
            return 1
        if not loaded.config.worker.enabled:
            (directory / f"off-{key}").touch(mode=0o600)
            log("not started: worker.enabled is false in the config")
            return 0
        idle = loaded.config.worker.idle_s
        if os.environ.get("TIER_WORKER_IDLE_S"):
            idle = max(float(os.environ["TIER_WORKER_IDLE_S"]), 0.05)
        worker = Worker(key, Path(sock_path), loaded, idle)
        if not worker.bind():
            log("another worker answers on this socket: exiting")
            return 0
    finally:
        try:
            stamp.unlink()
        except OSError:
            pass
    log(f"serving {loaded.source} (config {loaded.hash}) on {sock_path}, idle exit after {idle:g} s")
    threading.Thread(target=worker.warm_up, daemon=True).start()
    try:
        worker.serve_forever()
    finally:
        worker.close()
    return 0
