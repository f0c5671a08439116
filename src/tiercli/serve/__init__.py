"""`tier serve`: a local gateway that coding agents reach through a base URL.

OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`, Anthropic-compatible
`POST /v1/messages` and `POST /v1/messages/count_tokens`, JSON and SSE.

- wire.py        reading a request of either protocol; errors and plain answers in its shape
- accounting.py  what a relayed call produced (text, tool calls, usage), from JSON, SSE or litellm
- gateway.py     routing (scenarios.py), the recorded-call pipeline (calls.py), relaying
- app.py         the ASGI app, the local-token gate, uvicorn
No litellm import here: providers/ does every provider call (providers/passthrough.py the HTTP one).
"""

from tiercli.serve.app import create_app, run
from tiercli.serve.gateway import DEFAULT_HOST, DEFAULT_PORT, Gateway
from tiercli.serve.wire import is_loopback

__all__ = ["DEFAULT_HOST", "DEFAULT_PORT", "Gateway", "create_app", "is_loopback", "run"]
