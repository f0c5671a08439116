"""The local gateway's browser-attack and body-size defences, as one pure ASGI middleware.

A server on 127.0.0.1 is reachable from every web page the user opens: a page can POST to it
(`fetch(..., {mode: "no-cors"})` with `Content-Type: text/plain` needs no preflight) and spend the
user's provider key, and with DNS rebinding (evil.example resolving to 127.0.0.1) it can even read
the answers. So, before any route runs, the guard refuses:

- a `Host` that is not the bound address, `localhost`, `127.0.0.1` or `[::1]` (any port), or one of
  `serve.allowed_hosts` (403). Rebinding needs a host *name*, so when the gateway is bound to a
  wildcard address (0.0.0.0 / ::, which needs a token) any IP literal is accepted too;
- any request carrying an `Origin` not in `serve.allowed_origins` (empty by default: no browser page
  may call the gateway) (403); there is no CORS: OPTIONS is answered 405 and no `Access-Control-*`
  header ever leaves the gateway (they are stripped from every answer);
- a POST whose body is not `application/json` (parameters such as charset allowed) (415): a browser
  can send text/plain, form and multipart bodies without a preflight, never JSON;
- a body over the limit, counted on the bytes actually received, chunked bodies included (413). The
  guard reads the body itself, stops reading at the limit (nothing past it is buffered) and hands the
  app a replay of what it read.

Every refusal answers in the caller's protocol, chosen by path: Anthropic's
`{"type": "error", "error": {"type", "message"}}` under /v1/messages, OpenAI's
`{"error": {"message", "type", "param", "code"}}` elsewhere; and is reported once to `on_refusal`
(one log line). Non-HTTP scopes (lifespan) pass through untouched.
"""

from __future__ import annotations

import ipaddress
import json
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_log = logging.getLogger("tiercli.serve")


@dataclass(frozen=True)
class Refusal:
    """One refused request, for the log line."""

    status: int
    reason: str  # host | origin | preflight | content_type | too_large
    method: str
    path: str
    client: str
    detail: str

    def line(self) -> str:
        return f"refused {self.status} {self.reason}: {self.method} {self.path} from {self.client}: {self.detail}"


def _default_log(refusal: Refusal) -> None:
    _log.warning("%s", refusal.line())


def _printable(value: str, limit: int = 120) -> str:
    """Attacker-controlled header text, safe for one log line."""
    text = "".join(ch if ch.isprintable() else "?" for ch in value)
    return text if len(text) <= limit else text[:limit] + "..."


def split_host(host: str) -> str:
    """The host part of a Host header value, lower-cased: `[::1]:4141` -> `::1`, `a.b:80` -> `a.b`."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[1:end] if end > 0 else host
    if host.count(":") == 1:
        return host.split(":", 1)[0]
    return host  # a bare IPv6 address (not valid in Host, but then it has no port either)


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name.split("%")[0])
        return True
    except ValueError:
        return False


def protocol_of(path: str) -> str:
    """anthropic for /v1/messages*, openai for everything else (chat completions, responses, ...)."""
    return "anthropic" if path.startswith(("/v1/messages", "/messages")) else "openai"


_ANTHROPIC_TYPE = {403: "permission_error", 405: "invalid_request_error", 413: "request_too_large",
                   415: "invalid_request_error"}
_OPENAI_CODE = {"host": "host_not_allowed", "origin": "origin_not_allowed", "preflight": "method_not_allowed",
                "content_type": "unsupported_media_type", "too_large": "request_too_large"}


def refusal_body(path: str, status: int, reason: str, message: str) -> dict[str, Any]:
    if protocol_of(path) == "anthropic":
        return {"type": "error", "error": {"type": _ANTHROPIC_TYPE.get(status, "invalid_request_error"),
                                           "message": message}}
    return {"error": {"message": message, "type": "invalid_request_error", "param": None,
                      "code": _OPENAI_CODE.get(reason)}}


class GatewayGuard:
    """Pure ASGI middleware; see the module docstring. `bound_host` is the address the server
    listens on; `allowed_hosts` / `allowed_origins` come from `serve.allowed_hosts` /
    `serve.allowed_origins`."""

    def __init__(self, app: Callable, *, bound_host: str, max_body_bytes: int,
                 allowed_hosts: Iterable[str] = (), allowed_origins: Iterable[str] = (),
                 on_refusal: Callable[[Refusal], None] | None = None):
        self.app = app
        self.max_body_bytes = max_body_bytes
        bound = split_host(bound_host) if bound_host.startswith("[") else bound_host.strip().lower()
        self.hosts = {bound, *LOOPBACK_NAMES, *(split_host(h) for h in allowed_hosts if h)}
        self.any_ip = bound in ("0.0.0.0", "::", "")
        self.origins = {o.strip().lower().rstrip("/") for o in allowed_origins if o and o.strip()}
        self.on_refusal = on_refusal or _default_log

    def __getattr__(self, name: str) -> Any:  # `app.state` etc. still reach the wrapped app
        if name == "app":
            raise AttributeError(name)
        return getattr(self.app, name)

    # -- checks ----------------------------------------------------------------------------------------
    def host_allowed(self, host: str | None) -> bool:
        if host is None:  # HTTP/1.0 without Host: never a browser (they always send one)
            return True
        name = split_host(host)
        return name in self.hosts or (self.any_ip and _is_ip(name))

    def origin_allowed(self, origin: str) -> bool:
        return origin.strip().lower().rstrip("/") in self.origins

    @staticmethod
    def is_json(content_type: str | None) -> bool:
        media = (content_type or "").split(";", 1)[0].strip().lower()
        return media == "application/json"

    # -- ASGI ------------------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        for k, v in scope.get("headers") or []:
            headers.setdefault(k.decode("latin-1").lower(), v.decode("latin-1"))
        method = scope.get("method", "GET").upper()
        path = scope.get("path") or "/"

        async def refuse(status: int, reason: str, message: str, detail: str,
                         extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
            client = scope.get("client") or ("?", 0)
            self.on_refusal(Refusal(status, reason, method, _printable(path), f"{client[0]}:{client[1]}",
                                    _printable(detail)))
            data = json.dumps(refusal_body(path, status, reason, message)).encode()
            await send({"type": "http.response.start", "status": status,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(data)).encode()), (b"connection", b"close"),
                                    *extra]})
            await send({"type": "http.response.body", "body": data})

        host = headers.get("host")
        if not self.host_allowed(host):
            await refuse(403, "host", "tier serve: Host header not allowed (DNS rebinding protection); "
                         "add the name to serve.allowed_hosts if you really reach the gateway by it",
                         f"Host {host!r}")
            return
        origin = headers.get("origin")
        if origin is not None and not self.origin_allowed(origin):
            await refuse(403, "origin", "tier serve: requests from web pages are refused (Origin not in "
                         "serve.allowed_origins)", f"Origin {origin!r}")
            return
        if method == "OPTIONS":
            await refuse(405, "preflight", "tier serve: no CORS; OPTIONS is not supported", "OPTIONS",
                         ((b"allow", b"GET, POST"),))
            return
        if method in BODY_METHODS and not self.is_json(headers.get("content-type")):
            await refuse(415, "content_type", "tier serve: the request body must be Content-Type: application/json",
                         f"Content-Type {headers.get('content-type')!r}")
            return
        limit_text = f"tier serve: request body over {self.max_body_bytes} bytes"
        length = headers.get("content-length")
        if length is not None and length.strip().isdigit() and int(length) > self.max_body_bytes:
            await refuse(413, "too_large", limit_text, f"Content-Length {length}")
            return

        # Read the body here, counting what really arrives; stop at the limit.
        body = bytearray()
        disconnected = False
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                break
            body += message.get("body", b"")
            if len(body) > self.max_body_bytes:
                del body[:]
                await refuse(413, "too_large", limit_text, "body (chunked or longer than its Content-Length)")
                return
            if not message.get("more_body", False):
                break
        if disconnected:
            return
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # after the body: http.disconnect when the client goes away

        async def send_without_cors(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = dict(message, headers=[(k, v) for k, v in message.get("headers") or []
                                                 if not k.lower().startswith(b"access-control-")])
            await send(message)

        await self.app(scope, replay, send_without_cors)
