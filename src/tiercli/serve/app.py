"""`tier serve` as an ASGI app: routes, the local-token gate, and running it under uvicorn."""

from __future__ import annotations

import os
from typing import Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tiercli.config import LoadedConfig
from tiercli.errors import ConfigError
from tiercli.serve.gateway import DEFAULT_HOST, DEFAULT_PORT, Gateway
from tiercli.serve.wire import error_response


class TokenGate:
    """Pure ASGI middleware: 401 in the caller's protocol without the local token (when one is set)."""

    def __init__(self, app, gateway: Gateway):
        self.app = app
        self.gateway = gateway

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and self.gateway.token and scope.get("path") != "/health":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}
            if not self.gateway.authorized(headers):
                path = scope.get("path") or ""
                protocol = "anthropic" if "/messages" in path or "anthropic-version" in headers else "openai"
                response = error_response(protocol, 401, "tier serve: missing or wrong local token "
                                          "(send it as Authorization: Bearer <token>, x-api-key or x-tier-token)")
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


def create_app(loaded: LoadedConfig, db_path: str | os.PathLike, *, host: str = DEFAULT_HOST,
               token: str | None = None) -> Starlette:
    """The gateway as an ASGI app (`app.state.gateway`). Raises UsageError for a non-loopback host
    without a token."""
    from contextlib import asynccontextmanager

    gateway = Gateway(loaded, db_path, host=host, token=token)

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
        token: str | None = None, on_ready: Callable[[str], None] | None = None) -> None:
    """`tier serve`: build, warm up, serve until Ctrl-C."""
    import uvicorn

    app = create_app(loaded, db_path, host=host, token=token)
    app.state.gateway.warm()
    if on_ready:
        shown = f"[{host}]" if ":" in host else host
        on_ready(f"http://{shown}:{port}")
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
    except OSError as exc:  # pragma: no cover - e.g. the port is taken
        raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
