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
from tiercli.serve.wire import MAX_BODY_BYTES, error_response

ENDPOINTS = ("POST /v1/chat/completions", "POST /v1/responses", "POST /v1/messages", "POST /v1/messages/count_tokens", "GET /v1/models",
             "GET /health")


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
            assert self.gateway._ledger is not None  # opened in startup, before any request
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

    async def responses_api(request: Request) -> Response:
        return await gateway.handle_responses(request)

    async def messages(request: Request) -> Response:
        return await gateway.handle(request, "anthropic")

    async def models(request: Request) -> Response:
        return gateway.models(request)

    async def count_tokens(request: Request) -> Response:
        return await gateway.count_tokens(request)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "tiers": loaded.config.routing.tiers,
                             "litellm": "ready" if gateway.litellm_ready.is_set() else "loading"})

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
        Route("/v1/responses", responses_api, methods=["POST"]),
        Route("/responses", responses_api, methods=["POST"]),
        Route("/v1/messages", messages, methods=["POST"]),
        Route("/v1/messages/count_tokens", count_tokens, methods=["POST"]),
        Route("/v1/models", models, methods=["GET"]),
        Route("/models", models, methods=["GET"]),
        Route("/health", health, methods=["GET"]),
    ]
    async def not_found(request: Request, exc: Exception) -> Response:
        """Unknown paths: a JSON error in the caller's protocol that names what is served (and a log line)."""
        status = getattr(exc, "status_code", 404)
        path = request.url.path
        protocol = "anthropic" if "messages" in path or "anthropic-version" in request.headers else "openai"
        message = (f"tier serve does not serve {request.method} {path}; endpoints: " + ", ".join(ENDPOINTS))
        gateway._emit(path, None, "not_found" if status == 404 else "bad_method", http_status=status, error=message)
        return error_response(protocol, status, message, "not_found_error" if protocol == "anthropic" and status == 404 else None)

    app = Starlette(routes=routes, lifespan=lifespan, exception_handlers={404: not_found, 405: not_found})
    app.state.gateway = gateway
    app.add_middleware(TokenGate, gateway=gateway)
    from tiercli.gateway_guard import GatewayGuard  # outermost: Host/Origin/content type/body size first
    app.add_middleware(GatewayGuard, bound_host=host, max_body_bytes=MAX_BODY_BYTES, allowed_hosts=loaded.config.serve.allowed_hosts, allowed_origins=loaded.config.serve.allowed_origins,
                       on_refusal=lambda r: gateway._emit(r.path, None, "refused", http_status=r.status, error=f"{r.reason}: {r.detail} (from {r.client})"))
    return app


def run(loaded: LoadedConfig, db_path: str | os.PathLike, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
        token: str | None = None, team: bool = False, on_ready: Callable[[str], None] | None = None,
        log: Callable[[dict], None] | None = None) -> None:
    """`tier serve`: check the ledger, bind, announce, then load litellm in the background (a
    request that needs it before then waits for the import); serve until Ctrl-C or SIGTERM."""
    import threading

    import uvicorn

    from tiercli.ledger import open_ledger

    open_ledger(db_path).close()  # a foreign, newer or unreadable ledger is refused here (exit 5), before the banner
    app = create_app(loaded, db_path, host=host, token=token, team=team)
    app.state.gateway.log = log
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="critical", access_log=False,
                                           lifespan="on"))
    bind = server.startup

    async def startup(sockets=None) -> None:
        await bind(sockets)
        if not server.started:
            return
        bound = server.servers[0].sockets[0].getsockname()[1] if server.servers and server.servers[0].sockets else port
        if on_ready:
            shown = f"[{host}]" if ":" in host else host
            on_ready(f"http://{shown}:{bound}")
        threading.Thread(target=app.state.gateway.warm, name="tier-serve-warm", daemon=True).start()

    app.state.gateway.litellm_ready.clear()  # set by the warm-up thread once litellm is loaded

    server.startup = startup  # type: ignore[method-assign]
    try:
        server.run()
    except SystemExit:  # uvicorn exits when it cannot bind
        pass
    if not server.started:
        raise ConfigError(f"cannot listen on {host}:{port}", "is another server on that port? pass --port")
