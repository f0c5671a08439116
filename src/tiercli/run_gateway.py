"""The in-process gateway of `tier run`: `tier serve`'s app (serve/) under uvicorn in a background
thread, on 127.0.0.1 with an ephemeral port and a one-time random token, whose Pin (serve/gateway.py)
the run sets for each attempt.

Inside a run, `guardrails.budget.on_exceed: downgrade` does not apply: an attempt is pinned to one
tier, so a call that a budget (daily, monthly, session or the attempt's cap) cannot take is refused
(HTTP 402) instead of being sent to a cheaper tier.
"""

from __future__ import annotations

import os
import secrets
import socket
import threading
import time

from tiercli.config import LoadedConfig
from tiercli.errors import TierError

START_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 10.0


class LocalGateway:
    def __init__(self, app, server, thread: threading.Thread, url: str, token: str):
        self.app, self.server, self.thread = app, server, thread
        self.url, self.token = url, token
        self.gateway = app.state.gateway

    @classmethod
    def start(cls, loaded: LoadedConfig, db_path: str | os.PathLike) -> "LocalGateway":
        import uvicorn

        from tiercli.serve import create_app

        cfg = loaded.config
        budget = cfg.guardrails.budget.model_copy(update={"on_exceed": "refuse"})
        pinned = LoadedConfig(cfg.model_copy(update={"guardrails": cfg.guardrails.model_copy(update={"budget": budget})}),
                              loaded.source, loaded.hash)
        token = secrets.token_urlsafe(32)
        app = create_app(pinned, db_path, host="127.0.0.1", token=token)
        app.state.gateway.warm()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="tier-run-gateway", daemon=True)
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                raise TierError("the in-process gateway did not start", "try `tier serve` to see why")
            time.sleep(0.01)
        return cls(app, server, thread, url, token)

    def set_pin(self, pin) -> None:
        self.gateway.pin = pin

    def settle_session(self, session: str) -> None:
        """Wait (up to SETTLE_TIMEOUT_S) until no call of `session` is open, its writes done."""
        deadline = time.monotonic() + SETTLE_TIMEOUT_S
        while True:
            self.gateway.flush()
            if not any(c.plan.session == session for c in list(self.gateway.open_calls.values())):
                return
            if time.monotonic() > deadline:
                return
            time.sleep(0.05)

    def stop(self) -> None:
        """Shut uvicorn down (the gateway drains and settles what is open)."""
        self.server.should_exit = True
        self.thread.join(timeout=30)
