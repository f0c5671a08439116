"""`tier serve` as an ASGI app: routes, the local-token gate, and running it under uvicorn."""

from __future__ import annotations

import os
from typing import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tiercli.config import LoadedConfig
from tiercli.errors import ConfigError, TierError
from tiercli.serve.gateway import DEFAULT_HOST, DEFAULT_PORT, Gateway
from tiercli.serve.wire import error_response


class TokenGate:
    """Pure ASGI middleware: 401 in the caller's protocol without the local token (when one is set) or,
    in team mode (the ledger has users), without an enabled user's token. A user's request carries
    its user in scope["tier.user"] (recorded on the row, their budgets applied)."""

    def __init__(self, app, gateway: Gateway):
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope, receive, send):
        gateway = self.gateway
        if scope["type"] == "http" and (gateway.token or gateway.team) and scope.get("path") != "/health":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
            problem, status = None, 401
            if not (gateway.token and gateway.authorized(headers)):
                try:
                    problem = await self._user(scope, headers) if gateway.team else "missing or wrong local token"
                except TierError as exc:  # the ledger is unreachable: no user can be checked
                    problem, status = f"cannot check the token: {exc}", 503
            if problem:
                path = scope.get("path") or ""
                protocol = "anthropic" if "/messages" in path or "anthropic-version" in headers else "openai"
                hint = " (send it as Authorization: Bearer <token>, x-api-key or x-tier-token)" if status == 401 else ""
                response = error_response(protocol, status, f"tier serve: {problem}{hint}")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)

    async def _user(self, scope, headers) -> str | None:
        """None when a presented token is an enabled user's (set in scope), else what is wrong."""
        from tiercli import team

        for candidate in presented_tokens(headers):
            if not candidate.startswith(team.TOKEN_PREFIX):
                continue
            user = await self.gateway._on_db(self.gateway._ledger.user_by_token_hash, team.token_hash(candidate))
            if user is None:
                continue
            if user["disabled"]:
                return f"user {user['id']} is disabled (an admin can run: tier users enable {user['id']})"
            scope["tier.user"], scope["tier.token"] = user, candidate
            return None
        return "missing, wrong or rotated token"


def presented_tokens(headers) -> list[str]:
    found = [headers.get("x-tier-token"), headers.get("x-api-key")]
    auth = headers.get("authorization") or ""
    if auth.lower().startswith("bearer "):
        found.append(auth[7:])
    return [t for t in found if t]


def create_app(loaded: LoadedConfig, db_path: str | os.PathLike, *, host: str = DEFAULT_HOST,
               token: str | None = None, team: bool = False) -> Starlette:
    """The gateway as an ASGI app (`app.state.gateway`). Raises UsageError for a non-loopback host
    without a token."""
    from contextlib import asynccontextmanager

    gateway = Gateway(loaded, db_path, host=host, token=token, team=team)

    async def chat(request: Request) -> Response:
        return await gateway.handle(request, "openai")

    async def messages(request: Request) -> Response:
        return await gateway.handle(request, "anthropic")

    async def models(request: Request) -> Response:
        return gateway.models(request)

    async def count_tokens(request: Request) -> Response:
        return await gateway.count_tokens(request)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "tiers": loaded.config.routing.tiers})

    @asynccontextmanager
    async def lifespan(app):
        await gateway.startup()
        try:
            yield
        finally:
            await gateway.shutdown()

    routes = [
        Route("/v1/chat/completions", chat, methods=["POST"]),
        Route("/chat/completions", chat, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.gateway = gateway
    app.add_middleware(TokenGate, gateway=gateway)
    return app


def run(loaded: LoadedConfig, db_path: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        token: str | None = None, team: bool = False, on_ready: Callable[[str], None] | None = None) -> None:
    """`tier serve`: build, warm up, serve until Ctrl-C."""
    import uvicorn

    app = create_app(loaded, db_path, host=host, token=token, team=team)
    app.state.gateway.warm()
    if on_ready:
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{port}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    except OSError as exc:  # pragma: no cover - e.g. the port is taken
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
