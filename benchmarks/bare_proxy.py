"""The anchor for the gateway benchmark: the barest useful proxy, Starlette + httpx, no routing, no
ledger. It forwards a POST body to UPSTREAM and streams the answer back. What `tier serve` adds
beyond this is the cost of routing and recording.

Run: python benchmarks/bare_proxy.py UPSTREAM_BASE PORT
"""

from __future__ import annotations

import sys

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

UPSTREAM = sys.argv[1].rstrip("/")
client = httpx.AsyncClient(timeout=60, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                           trust_env=False)


async def forward(request: Request) -> Response:
    body = await request.body()
    headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "authorization", "x-api-key",
                                                                        "anthropic-version")}
    upstream = await client.send(client.build_request("POST", UPSTREAM + request.url.path, content=body, headers=headers),
                                 stream=True)
    if upstream.headers.get("content-type", "").startswith("text/event-stream"):
        async def relay():
            try:
                async for chunk in upstream.aiter_raw():
                    yield chunk
            finally:
                await upstream.aclose()
        return StreamingResponse(relay(), status_code=upstream.status_code, media_type="text/event-stream")
    data = await upstream.aread()
    await upstream.aclose()
    return Response(data, status_code=upstream.status_code, media_type="application/json")


app = Starlette(routes=[Route("/{path:path}", forward, methods=["POST"]),
                        Route("/health", lambda r: Response("ok"), methods=["GET"])])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[2]), log_level="critical", access_log=False)
