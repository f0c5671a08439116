"""A fake LLM provider: a small HTTP server on 127.0.0.1 for the test suite.

It speaks the OpenAI Chat Completions API (``POST /v1/chat/completions``) and the Anthropic
Messages API (``POST /v1/messages``), JSON and SSE, so the REAL litellm client can be pointed at it
over real HTTP. Standard library only; it never touches any address but 127.0.0.1.

Quick use (the ``fake_provider`` fixture gives a started, reset server)::

    def test_x(fake_provider):
        fake_provider.script("m-cheap", Reply.error(429), Reply(text="second try"))
        litellm.completion(model="openai/m-cheap", api_base=fake_provider.openai_base,
                           api_key="sk-fake", messages=[...], num_retries=0, max_retries=0)
        assert fake_provider.requests_for("m-cheap")[0].body["messages"] == [...]

Fixtures: ``fake_provider`` (function scope: the one session-wide server, ``reset()`` before and
after the test) and ``fake_provider_server`` (session scope, started once, never reset by itself).
Load them with ``pytest_plugins = ["fakeprovider"]`` in the top-level ``tests/conftest.py``
(``tests/`` has no ``__init__.py``, so pytest puts it on ``sys.path``). A test that needs its own
server (e.g. ``sse_transport="close"``) uses ``with FakeProvider(...) as fake:``.

api_base forms (checked with litellm 1.110.2)
---------------------------------------------
- OpenAI: ``model="openai/<name>"``, ``api_base=fake.openai_base`` (``http://127.0.0.1:PORT/v1``).
  The openai SDK appends ``/chat/completions``. (``api_base=fake.base_url`` would POST to
  ``/chat/completions``; this server answers that alias too, but use ``openai_base``.)
- Anthropic: ``model="anthropic/<name>"``, ``api_base=fake.anthropic_base`` (``http://127.0.0.1:PORT``,
  NO ``/v1``): litellm appends ``/v1/messages``. A base ending in ``/v1/messages`` also works (litellm
  strips and re-adds it), but ``.../v1`` does NOT: it POSTs to ``/v1/v1/messages`` (404 ->
  ``litellm.NotFoundError``).
- The ``model`` field the server sees is ``<name>`` without the ``openai/`` / ``anthropic/`` prefix;
  scripts are keyed on it. Anthropic calls carry ``x-api-key`` and ``anthropic-version``; OpenAI calls
  ``authorization: Bearer <key>`` (see ``RecordedRequest.headers``, keys lower-cased).

Behaviour, per model name
-------------------------
``fake.script(model, *replies)`` queues replies (consumed in order); when a model's queue is empty,
``fake.set_default(model, reply)`` applies, then ``fake.set_default("*", reply)``, then ``Reply()``
(a success answering "fake answer"). A reply may also be a callable ``(RecordedRequest) -> Reply``.
Whether the answer is SSE or JSON follows the request's ``"stream"`` flag. Streamed text is split
into one chunk per word (whitespace kept, so the chunks join back to ``text`` exactly). Errors
(status >= 400) are always a JSON body, stream or not, as the real providers do.
``Reply(tool_calls=[{"id": ..., "name": ..., "arguments": {...}}])`` answers with tool calls after the
text (OpenAI ``tool_calls``, Anthropic ``tool_use`` blocks; streamed as partial-JSON pieces).
Strict by default (``FakeProvider(strict=False)`` or ``fake.strict = False`` to switch it off): for a
model litellm's model map knows (claude-haiku-4-5, gpt-5-mini, ...) a request the real API refuses
(``max_tokens`` over the model's output limit, ``thinking`` the model does not support, an unsupported
``anthropic-beta`` such as context-1m, ``output_config`` / compaction where unsupported, ``max_tokens``
or a non-default ``temperature`` on an OpenAI reasoning model, a prompt over the context window) is
answered with the provider's real 400 instead of the scripted reply (which stays queued). The rules
and their sources are in ``tests/fake_rules.py``. ``Reply.overloaded()`` is Anthropic's 529.
``fake.requests`` / ``fake.requests_for(model)`` list every POST (``RecordedRequest(path, model,
body, headers, ts)``); ``GET /health`` is not recorded. ``fake.reset()`` forgets scripts, defaults
and records.

Usage semantics (the same as the real providers)
------------------------------------------------
One ``Reply`` describes the *input* as three disjoint parts: fresh (uncached) tokens F,
``cache_read_tokens`` R and ``cache_write_tokens`` W. F defaults to
``len(all message + system text) // 4 + 1``; ``output_tokens`` O defaults to the number of words of
``text``. On the wire:

- OpenAI: ``usage.prompt_tokens`` INCLUDES cached tokens: ``prompt_tokens = F + R + W`` (OpenAI has no
  cache-write notion: written tokens are ordinary input), ``prompt_tokens_details.cached_tokens = R``
  (a subset of prompt_tokens), ``completion_tokens = O``, ``total_tokens = prompt + O``.
- Anthropic: ``usage.input_tokens`` EXCLUDES cache tokens: ``input_tokens = F``,
  ``cache_read_input_tokens = R``, ``cache_creation_input_tokens = W``, ``output_tokens = O``.

``Reply.prompt_tokens`` sets the OpenAI wire ``prompt_tokens`` (total incl. cache);
``Reply.input_tokens`` sets the Anthropic wire ``input_tokens`` (fresh only). Giving one derives the
other (F = prompt_tokens - R - W, floored at 0).

What litellm 1.110.2 reports (observed; asserted in tests/test_fakeprovider.py)
-------------------------------------------------------------------------------
For ``Reply(input_tokens=F, output_tokens=O, cache_read_tokens=R, cache_write_tokens=W)``:

- OpenAI, JSON: ``usage.prompt_tokens = F+R+W`` (wire value as is), ``usage.completion_tokens = O``,
  ``usage.total_tokens = F+R+W+O``, ``usage.prompt_tokens_details.cached_tokens = R``; no
  ``cache_read_input_tokens`` / ``cache_creation_input_tokens`` attributes at all.
- OpenAI, streaming: only with ``stream_options={"include_usage": True}`` (litellm does NOT add it):
  the last chunk has ``choices == []`` and ``chunk.usage`` equal to the JSON case;
  ``litellm.stream_chunk_builder(chunks).usage`` likewise. Without it no chunk carries usage and
  ``stream_chunk_builder`` silently ESTIMATES tokens locally (cache tokens lost).
- Anthropic, JSON: litellm ADDS the cache tokens to the wire input_tokens:
  ``usage.prompt_tokens = F+R+W``, ``usage.completion_tokens = O``, ``usage.total_tokens = F+R+W+O``,
  ``usage.cache_read_input_tokens = R``, ``usage.cache_creation_input_tokens = W``,
  ``usage.prompt_tokens_details.cached_tokens = R``, ``.cache_creation_tokens = W``
  (also ``.cache_write_tokens = W``), ``.text_tokens = F``.
- Anthropic, streaming: the same numbers (from message_start + message_delta). Without
  stream_options no chunk has a ``usage`` attribute, but the last chunk's
  ``_hidden_params["usage"]`` holds it and ``stream_chunk_builder(chunks).usage`` is exact. With
  ``stream_options={"include_usage": True}`` an extra final chunk (``choices == []``) carries it.
- So for both protocols: fresh = prompt_tokens - cached_tokens - cache_creation (the OpenAI
  cache_creation being 0), and prompt_tokens is never "fresh only" in litellm's Usage.

Faults and the exception litellm raises (num_retries=0, max_retries=0; both protocols unless noted)
----------------------------------------------------------------------------------------------------
- ``Reply.error(429)``  -> ``litellm.RateLimitError`` (JSON and stream). Headers of the error
  response: ``exc.litellm_response_headers`` (``exc.response.headers`` is empty for Anthropic).
- ``Reply.error(401)``  -> ``litellm.AuthenticationError``
- ``Reply.context_window_exceeded()`` -> ``litellm.ContextWindowExceededError`` (subclass of
  ``litellm.BadRequestError``), JSON and stream.
- ``Reply.error(400, "...")`` -> ``litellm.BadRequestError``
- ``Reply.error(500)`` -> ``litellm.InternalServerError``; 503 -> ``litellm.ServiceUnavailableError``;
  529 -> Anthropic ``InternalServerError``, OpenAI ``litellm.APIError``.
- ``Reply(malformed=True)``, JSON: OpenAI -> ``litellm.InternalServerError`` ("Unterminated
  string..."), Anthropic -> ``litellm.APIConnectionError`` ("Unable to get json response").
  Streamed: ``litellm.exceptions.MidStreamFallbackError`` while iterating.
- ``Reply(cut_stream_after=N)``: the stream does NOT end quietly: the N chunks are yielded, then
  iterating raises ``litellm.exceptions.MidStreamFallbackError`` (a ``ServiceUnavailableError``,
  status_code 500; ``.generated_content`` = text so far, ``.original_exception`` an
  APIConnectionError, ``.is_pre_first_chunk`` False). Same with ``sse_transport="close"``
  ("Stream ended before a finish_reason was received"). Through a Router with fallbacks the cut is
  NOT retried on the fallback group: it surfaces as ``litellm.APIConnectionError`` after the
  partial chunks.
- ``Reply(reset=True)`` (TCP RST, no response) -> ``litellm.InternalServerError`` ("Connection
  error." / "Connection reset by peer"), NOT APIConnectionError.
- ``Reply(delay_s=D)`` with ``timeout=T < D`` -> ``litellm.Timeout`` after ~T s (JSON and stream).
  A trickling stream (``chunk_delay_s > timeout``): OpenAI -> ``litellm.Timeout``, Anthropic ->
  ``MidStreamFallbackError`` wrapping a Timeout (status_code 408).
- NOTE: ``litellm.APIError`` is NOT a common base class. Every litellm exception above derives
  from ``openai.APIError`` (``openai.OpenAIError``); catch that for "any provider failure".
  ``MidStreamFallbackError`` is only importable from ``litellm.exceptions``.

Router: which deployment served
-------------------------------
Non-streaming: ``resp._hidden_params["model_id"]`` (the deployment's ``model_info.id``; set it, or
it is a hash), ``resp._hidden_params["additional_headers"]["x-litellm-model-group"]`` (the group that
answered, e.g. "tier2"), ``...["x-litellm-attempted-fallbacks"]`` (int; 1 after one fallback, 0
without), ``...["x-litellm-attempted-retries"]``, ``resp._hidden_params["api_base"]``,
``resp._hidden_params["litellm_model_name"]`` ("anthropic/m-tier2"), and ``resp.model`` (the model
name the provider echoed, e.g. "m-tier2"). Streaming: the same keys on the stream wrapper's
``_hidden_params`` (the chunks' ``_hidden_params["additional_headers"]`` lack the x-litellm-* keys).
Provider response headers show up as ``additional_headers["llm_provider-<name>"]`` (so
``Reply(headers={"x-foo": "1"})`` -> ``"llm_provider-x-foo"``).

SSE transport
-------------
Streams are sent with ``Transfer-Encoding: chunked`` on a keep-alive HTTP/1.1 connection (as the
real providers do); ``FakeProvider(sse_transport="close")`` sends ``Connection: close`` and no length
instead. httpx/litellm accept both. JSON answers carry a correct Content-Length.
``disable_nagle_algorithm`` is on: without it every call costs ~45 ms instead of ~4 ms.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import struct
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

__all__ = ["FakeProvider", "Reply", "RecordedRequest", "fake_provider", "fake_provider_server"]

OPENAI_PATHS = ("/v1/chat/completions", "/chat/completions")
ANTHROPIC_PATHS = ("/v1/messages",)

_CONTEXT_CODE = "context_length_exceeded"

# Default error bodies, close to what the real providers send.
_OPENAI_ERRORS: dict[int, tuple[str, str | None, str]] = {
    # status: (type, code, message)
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key",
          "Incorrect API key provided: sk-fake. You can find your API key at "
          "https://platform.openai.com/account/api-keys."),
    403: ("invalid_request_error", "unsupported_country_region_territory",
          "Country, region, or territory not supported"),
    404: ("invalid_request_error", "model_not_found",
          "The model does not exist or you do not have access to it."),
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for requests. Please try again in 1s."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    502: ("server_error", None, "Bad gateway."),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}
_ANTHROPIC_ERRORS: dict[int, tuple[str, str]] = {
    # status: (type, message)
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "The requested resource could not be found."),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "Number of request tokens has exceeded your per-minute rate limit."),
    500: ("api_error", "Internal server error"),
    529: ("overloaded_error", "Overloaded"),
}
_FINISH_TO_ANTHROPIC = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use",
                        "content_filter": "refusal"}


@dataclass
class Reply:
    """One scripted answer. Defaults: a 200 success answering "fake answer"."""

    text: str = "fake answer"
    status: int = 200
    # Usage overrides (None = compute). See the module docstring for the semantics.
    prompt_tokens: int | None = None  # OpenAI wire prompt_tokens (includes cache tokens)
    input_tokens: int | None = None  # Anthropic wire input_tokens (excludes cache tokens)
    output_tokens: int | None = None  # None = number of words in text
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering (timeouts)
    chunk_delay_s: float = 0.0  # sleep between SSE chunks (a trickling stream)
    cut_stream_after: int | None = None  # close the socket after N SSE content chunks
    malformed: bool = False  # 200 with an invalid JSON body (or invalid SSE data)
    reset: bool = False  # close the connection (TCP RST) without any response
    finish_reason: str = "stop"  # OpenAI vocabulary; mapped to Anthropic stop_reason
    # Error rendering (status >= 400). None = a provider-specific default for the status.
    error_message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    context_tokens: int = 250_000  # for the context-window-exceeded message
    error_param: str | None = None  # OpenAI error.param (None: "messages" for context overflow, else null)
    # Tool calls the model makes: [{"id": "call_1", "name": "read", "arguments": {...} or "json"}], sent
    # after the text (OpenAI message.tool_calls / Anthropic tool_use blocks, JSON and SSE). With tool
    # calls a finish_reason of "stop" becomes "tool_calls" (Anthropic stop_reason "tool_use").
    tool_calls: list[dict[str, Any]] | None = None

    @property
    def finish(self) -> str:
        return "tool_calls" if self.tool_calls and self.finish_reason == "stop" else self.finish_reason

    def tool_call_parts(self) -> list[tuple[str, str, str]]:
        """(id, name, arguments as a JSON string) per tool call."""
        out = []
        for n, call in enumerate(self.tool_calls or []):
            args = call.get("arguments", {})
            out.append((call.get("id") or f"call_fake{n + 1}", call["name"],
                        args if isinstance(args, str) else json.dumps(args)))
        return out

    # ---- helpers -------------------------------------------------------------------------
    @classmethod
    def error(cls, status: int, message: str | None = None, *, type: str | None = None,
              code: str | None = None, retry_after: float | None = None,
              headers: dict[str, str] | None = None, **kw: Any) -> "Reply":
        """A provider-shaped error: OpenAI ``{"error": {"message", "type", "param", "code"}}``,
        Anthropic ``{"type": "error", "error": {"type", "message"}}``."""
        hdrs = dict(headers or {})
        if retry_after is not None:
            hdrs["Retry-After"] = str(retry_after)
        return cls(text="", status=status, error_message=message, error_type=type, error_code=code,
                   headers=hdrs, **kw)

    @classmethod
    def rate_limited(cls, retry_after: float | None = None, message: str | None = None) -> "Reply":
        return cls.error(429, message, retry_after=retry_after)

    @classmethod
    def context_window_exceeded(cls, tokens: int = 250_000) -> "Reply":
        """400 as the providers send it when the prompt is too long. OpenAI: code
        ``context_length_exceeded``; Anthropic: ``prompt is too long: N tokens > 200000 maximum``."""
        return cls(text="", status=400, error_code=_CONTEXT_CODE, error_type="invalid_request_error",
                   context_tokens=tokens)

    @classmethod
    def overloaded(cls, message: str | None = None) -> "Reply":
        """Anthropic's 529 ``{"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}``."""
        return cls.error(529, message)

    # ---- rendering -----------------------------------------------------------------------
    def openai_error_body(self) -> dict[str, Any]:
        etype, ecode, emsg = _OPENAI_ERRORS.get(self.status, ("server_error" if self.status >= 500
                                                              else "invalid_request_error", None,
                                                              f"HTTP {self.status}"))
        code = self.error_code if self.error_code is not None else ecode
        if code == _CONTEXT_CODE and self.error_message is None:
            emsg = (f"This model's maximum context length is 128000 tokens. However, your messages "
                    f"resulted in {self.context_tokens} tokens. Please reduce the length of the messages.")
        param = self.error_param or ("messages" if code == _CONTEXT_CODE else None)
        return {"error": {"message": self.error_message or emsg, "type": self.error_type or etype,
                          "param": param, "code": code}}

    def anthropic_error_body(self) -> dict[str, Any]:
        etype, emsg = _ANTHROPIC_ERRORS.get(self.status, ("api_error" if self.status >= 500
                                                          else "invalid_request_error", f"HTTP {self.status}"))
        if self.error_code == _CONTEXT_CODE and self.error_message is None:
            etype, emsg = "invalid_request_error", f"prompt is too long: {self.context_tokens} tokens > 200000 maximum"
        return {"type": "error", "error": {"type": self.error_type or etype,
                                           "message": self.error_message or emsg}}

    def token_counts(self, body: dict[str, Any]) -> tuple[int, int, int, int]:
        """(fresh_input, cache_read, cache_write, output) for a request body."""
        read, write = self.cache_read_tokens, self.cache_write_tokens
        if self.input_tokens is not None:
            fresh = self.input_tokens
        elif self.prompt_tokens is not None:
            fresh = max(0, self.prompt_tokens - read - write)
        else:
            fresh = len(_request_text(body)) // 4 + 1
        out = self.output_tokens if self.output_tokens is not None else len(self.text.split())
        return fresh, read, write, out

    def openai_usage(self, body: dict[str, Any]) -> dict[str, Any]:
        fresh, read, write, out = self.token_counts(body)
        prompt = self.prompt_tokens if self.prompt_tokens is not None else fresh + read + write
        return {"prompt_tokens": prompt, "completion_tokens": out, "total_tokens": prompt + out,
                "prompt_tokens_details": {"cached_tokens": read, "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                              "accepted_prediction_tokens": 0,
                                              "rejected_prediction_tokens": 0}}

    def anthropic_usage(self, body: dict[str, Any]) -> dict[str, Any]:
        fresh, read, write, out = self.token_counts(body)
        return {"input_tokens": fresh, "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read, "output_tokens": out}


ReplyLike = Reply | Callable[["RecordedRequest"], Reply]


@dataclass
class RecordedRequest:
    path: str
    model: str | None
    body: dict[str, Any]
    headers: dict[str, str]
    ts: float  # time.time() at arrival

    @property
    def stream(self) -> bool:
        return bool(self.body.get("stream"))


def _request_text(body: dict[str, Any]) -> str:
    """All text of the messages (and the Anthropic system prompt), concatenated."""
    parts: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, str):
            parts.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if isinstance(node.get("text"), str):
                parts.append(node["text"])
            elif "content" in node:
                walk(node["content"])

    walk(body.get("system"))
    for msg in body.get("messages") or []:
        walk(msg.get("content") if isinstance(msg, dict) else msg)
    return "".join(parts)


def _split_words(text: str) -> list[str]:
    """Chunks whose concatenation is exactly ``text`` (one per word, trailing space kept)."""
    if not text:
        return []
    pieces = re.findall(r"\s*\S+\s*", text)
    return pieces or [text]


class _CutStream(Exception):
    """Raised inside the handler to abort a stream half-way."""


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server_version = "FakeProvider/1.0"
    sys_version = ""
    server: "_Server"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - quiet
        pass

    # ---- plumbing ------------------------------------------------------------------------
    def _send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None,
                   raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _abort(self, rst: bool) -> None:
        """Drop the connection. rst=True sends a TCP RST instead of a FIN."""
        try:
            self.wfile.flush()
        except OSError:
            pass
        if rst:
            try:
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
        else:
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self.close_connection = True
        try:
            self.connection.close()
        except OSError:
            pass

    def _sleep(self, seconds: float) -> None:
        if seconds > 0:
            self.server.stop_event.wait(seconds)

    # ---- routes --------------------------------------------------------------------------
    def do_GET(self) -> None:  # noqa: N802
        if self.path.split("?")[0] == "/health":
            self._send_json(200, {"status": "ok"})
        else:
            self._send_json(404, {"error": {"message": f"no route GET {self.path}", "type": "not_found"}})

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        path = self.path.split("?")[0]
        try:
            body = json.loads(raw or b"{}")
            if not isinstance(body, dict):
                raise ValueError("body is not an object")
        except ValueError as exc:
            self.server.provider._record(path, None, {"_raw": raw.decode("utf-8", "replace")}, self.headers)
            self._send_json(400, {"error": {"message": f"invalid JSON body: {exc}", "type": "invalid_request_error"}})
            return
        model = body.get("model")
        rec = self.server.provider._record(path, model, body, self.headers)
        if path in OPENAI_PATHS:
            proto = "openai"
        elif path in ANTHROPIC_PATHS:
            proto = "anthropic"
        else:
            self._send_json(404, {"error": {"message": f"no route POST {path}", "type": "not_found"}})
            return
        reply = None
        if self.server.provider.strict:  # what the real API refuses for this model (tests/fake_rules.py)
            from fake_rules import violation

            reply = violation(proto, body, rec.headers)
        reply = reply or self.server.provider._next_reply(rec)
        try:
            self._serve(proto, reply, body)
        except _CutStream:
            self._abort(rst=False)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (e.g. a timeout)

    def _serve(self, proto: str, reply: Reply, body: dict[str, Any]) -> None:
        self._sleep(reply.delay_s)
        if self.server.stop_event.is_set():
            self._abort(rst=True)
            return
        if reply.reset:
            self._abort(rst=True)
            return
        if reply.status >= 400:
            err = reply.openai_error_body() if proto == "openai" else reply.anthropic_error_body()
            headers = dict(reply.headers)
            if proto == "openai":
                headers.setdefault("x-request-id", f"req_{self.server.provider._next_id()}")
            else:
                headers.setdefault("request-id", f"req_{self.server.provider._next_id()}")
            self._send_json(reply.status, err, headers)
            return
        stream = bool(body.get("stream"))
        if proto == "openai":
            if stream:
                self._openai_stream(reply, body)
            else:
                self._openai_json(reply, body)
        elif stream:
            self._anthropic_stream(reply, body)
        else:
            self._anthropic_json(reply, body)

    # ---- OpenAI --------------------------------------------------------------------------
    def _openai_json(self, reply: Reply, body: dict[str, Any]) -> None:
        if reply.malformed:
            self._send_json(reply.status, None, reply.headers, raw=b'{"id": "chatcmpl-bad", "choices": [{"mess')
            return
        payload = {
            "id": f"chatcmpl-fake{self.server.provider._next_id()}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body.get("model"),
            "system_fingerprint": "fp_fake",
            "choices": [{"index": 0, "message": _openai_message(reply),
                         "logprobs": None, "finish_reason": reply.finish}],
            "usage": reply.openai_usage(body),
        }
        self._send_json(reply.status, payload, reply.headers)

    def _openai_stream(self, reply: Reply, body: dict[str, Any]) -> None:
        cid = f"chatcmpl-fake{self.server.provider._next_id()}"
        created = int(time.time())
        model = body.get("model")

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                    "system_fingerprint": "fp_fake",
                    "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]}

        def events() -> Iterator[bytes]:
            yield _sse(chunk({"role": "assistant", "content": "", "refusal": None}))
            for n, piece in enumerate(_split_words(reply.text)):
                if reply.cut_stream_after is not None and n >= reply.cut_stream_after:
                    raise _CutStream
                if reply.malformed:
                    yield b'data: {"id": "' + cid.encode() + b'", "choices": [{"del\n\n'
                    continue
                yield _sse(chunk({"content": piece}))
            if reply.cut_stream_after is not None:
                raise _CutStream
            for n, (call_id, name, args) in enumerate(reply.tool_call_parts()):
                yield _sse(chunk({"tool_calls": [{"index": n, "id": call_id, "type": "function",
                                                  "function": {"name": name, "arguments": ""}}]}))
                for part in _halves(args):
                    yield _sse(chunk({"tool_calls": [{"index": n, "function": {"arguments": part}}]}))
            yield _sse(chunk({}, reply.finish))
            if (body.get("stream_options") or {}).get("include_usage"):
                yield _sse({"id": cid, "object": "chat.completion.chunk", "created": created, "model": model,
                            "system_fingerprint": "fp_fake", "choices": [], "usage": reply.openai_usage(body)})
            yield b"data: [DONE]\n\n"

        self._stream(reply, events())

    # ---- Anthropic -----------------------------------------------------------------------
    def _anthropic_json(self, reply: Reply, body: dict[str, Any]) -> None:
        if reply.malformed:
            self._send_json(reply.status, None, reply.headers, raw=b'{"id": "msg_bad", "type": "message", "cont')
            return
        payload = {
            "id": f"msg_fake{self.server.provider._next_id()}",
            "type": "message",
            "role": "assistant",
            "model": body.get("model"),
            "content": _anthropic_content(reply),
            "stop_reason": _FINISH_TO_ANTHROPIC.get(reply.finish, reply.finish),
            "stop_sequence": None,
            "usage": reply.anthropic_usage(body),
        }
        self._send_json(reply.status, payload, reply.headers)

    def _anthropic_stream(self, reply: Reply, body: dict[str, Any]) -> None:
        mid = f"msg_fake{self.server.provider._next_id()}"
        usage = reply.anthropic_usage(body)
        start_usage = dict(usage, output_tokens=1)

        def ev(name: str, data: dict[str, Any]) -> bytes:
            return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()

        def events() -> Iterator[bytes]:
            yield ev("message_start", {"type": "message_start", "message": {
                "id": mid, "type": "message", "role": "assistant", "model": body.get("model"), "content": [],
                "stop_reason": None, "stop_sequence": None, "usage": start_usage}})
            yield ev("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}})
            yield ev("ping", {"type": "ping"})
            for n, piece in enumerate(_split_words(reply.text)):
                if reply.cut_stream_after is not None and n >= reply.cut_stream_after:
                    raise _CutStream
                if reply.malformed:
                    yield b'event: content_block_delta\ndata: {"type": "content_block_delta", "ind\n\n'
                    continue
                yield ev("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                 "delta": {"type": "text_delta", "text": piece}})
            if reply.cut_stream_after is not None:
                raise _CutStream
            yield ev("content_block_stop", {"type": "content_block_stop", "index": 0})
            for n, (call_id, name, args) in enumerate(reply.tool_call_parts(), start=1):
                yield ev("content_block_start", {"type": "content_block_start", "index": n, "content_block": {
                    "type": "tool_use", "id": call_id, "name": name, "input": {}}})
                for part in _halves(args):
                    yield ev("content_block_delta", {"type": "content_block_delta", "index": n,
                                                     "delta": {"type": "input_json_delta", "partial_json": part}})
                yield ev("content_block_stop", {"type": "content_block_stop", "index": n})
            yield ev("message_delta", {"type": "message_delta",
                                       "delta": {"stop_reason": _FINISH_TO_ANTHROPIC.get(reply.finish,
                                                                                         reply.finish),
                                                 "stop_sequence": None},
                                       "usage": {"output_tokens": usage["output_tokens"]}})
            yield ev("message_stop", {"type": "message_stop"})

        self._stream(reply, events())

    # ---- SSE transport -------------------------------------------------------------------
    def _stream(self, reply: Reply, events: Iterator[bytes]) -> None:
        chunked = self.server.provider.sse_transport == "chunked"
        self.send_response(reply.status)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")
            self.close_connection = True
        for k, v in reply.headers.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.flush()
        first = True
        for data in events:
            if not first:
                self._sleep(reply.chunk_delay_s)
                if self.server.stop_event.is_set():
                    raise _CutStream
            first = False
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            else:
                self.wfile.write(data)
            self.wfile.flush()
        if chunked:
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()


def _sse(obj: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(obj).encode() + b"\n\n"


def _halves(text: str) -> list[str]:
    """A tool call's JSON arguments in two pieces, as providers stream them (partial JSON)."""
    mid = len(text) // 2
    return [p for p in (text[:mid], text[mid:]) if p]


def _openai_message(reply: Reply) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": reply.text, "refusal": None}
    if reply.tool_calls:
        message["content"] = reply.text or None
        message["tool_calls"] = [{"id": i, "type": "function", "function": {"name": n, "arguments": a}}
                                 for i, n, a in reply.tool_call_parts()]
    return message


def _anthropic_content(reply: Reply) -> list[dict[str, Any]]:
    content: list[dict[str, Any]] = [{"type": "text", "text": reply.text}]
    if reply.tool_calls:
        content = content if reply.text else []
        content += [{"type": "tool_use", "id": i, "name": n, "input": json.loads(a)} for i, n, a in reply.tool_call_parts()]
    return content


def tier_config(fake: "FakeProvider", path, models: list[str], *, key_var: str = "ANTHROPIC_API_KEY",
                fallbacks: bool = True, body: str = "routing: {classifier: static}") -> str:
    """Write a tier config whose tiers (tier1, tier2, ...) are `models` ("anthropic/..." or
    "openai/...") served by this fake provider; `body` adds sections. Returns the path as text."""
    lines = ["model_list:"]
    for i, model in enumerate(models, start=1):
        base = fake.anthropic_base if model.startswith("anthropic/") else fake.openai_base
        lines += [f"  - model_name: tier{i}",
                  f'    litellm_params: {{model: {model}, api_base: "{base}", api_key: os.environ/{key_var}}}']
    chain = ", ".join(f"{{tier{i}: [tier{i + 1}]}}" for i in range(1, len(models)))
    lines.append(f"router_settings: {{num_retries: 0{', fallbacks: [' + chain + ']' if fallbacks and chain else ''}}}")
    lines.append(body)
    Path(path).write_text("\n".join(lines) + "\n")
    return str(path)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256  # the default listen backlog of 5 resets bursts of concurrent connects
    provider: "FakeProvider"
    stop_event: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients that hang up (timeouts, cut streams) are expected here


class FakeProvider:
    """A scripted OpenAI + Anthropic server on 127.0.0.1:<random port>. See the module docstring."""

    def __init__(self, sse_transport: str = "chunked", strict: bool = True) -> None:
        if sse_transport not in ("chunked", "close"):
            raise ValueError("sse_transport must be 'chunked' or 'close'")
        self.sse_transport = sse_transport
        self.strict = strict  # refuse what the real API refuses for a known model (tests/fake_rules.py)
        self._lock = threading.Lock()
        self._scripts: dict[str, deque[ReplyLike]] = {}
        self._defaults: dict[str, ReplyLike] = {}
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self.base_url = ""

    # ---- lifecycle -----------------------------------------------------------------------
    def start(self) -> "FakeProvider":
        if self._server is not None:
            return self
        server = _Server(("127.0.0.1", 0), _Handler)
        server.provider = self
        server.stop_event = threading.Event()
        self._server = server
        self.base_url = f"http://127.0.0.1:{server.server_address[1]}"
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"FakeProvider:{server.server_address[1]}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stop_event.set()  # wake handlers sleeping in delay_s / chunk_delay_s
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> "FakeProvider":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    @property
    def openai_base(self) -> str:
        """api_base for ``openai/<name>`` models: ``http://127.0.0.1:PORT/v1``."""
        return self.base_url + "/v1"

    @property
    def anthropic_base(self) -> str:
        """api_base for ``anthropic/<name>`` models: ``http://127.0.0.1:PORT`` (litellm adds /v1/messages)."""
        return self.base_url

    # ---- scripting -----------------------------------------------------------------------
    def script(self, model: str, *responses: ReplyLike) -> None:
        """Queue replies for ``model`` (the request body's model field, without provider prefix)."""
        with self._lock:
            self._scripts.setdefault(model, deque()).extend(responses)

    def set_default(self, model: str, response: ReplyLike) -> None:
        """The reply for ``model`` once its queue is empty. ``model="*"``: any model without its own."""
        with self._lock:
            self._defaults[model] = response

    def pending(self, model: str) -> int:
        """How many scripted replies for ``model`` are not consumed yet."""
        with self._lock:
            return len(self._scripts.get(model, ()))

    def reset(self) -> None:
        """Forget scripts, defaults and recorded requests."""
        with self._lock:
            self._scripts.clear()
            self._defaults.clear()
            self._requests.clear()

    # ---- records -------------------------------------------------------------------------
    @property
    def requests(self) -> list[RecordedRequest]:
        """A snapshot of every POST received, oldest first (GET /health is not recorded)."""
        with self._lock:
            return list(self._requests)

    def requests_for(self, model: str) -> list[RecordedRequest]:
        with self._lock:
            return [r for r in self._requests if r.model == model]

    # ---- internals -----------------------------------------------------------------------
    def _record(self, path: str, model: str | None, body: dict[str, Any], headers: Any) -> RecordedRequest:
        rec = RecordedRequest(path=path, model=model, body=body,
                              headers={k.lower(): v for k, v in headers.items()}, ts=time.time())
        with self._lock:
            self._requests.append(rec)
        return rec

    def _next_reply(self, rec: RecordedRequest) -> Reply:
        model = rec.model or ""
        with self._lock:
            queue = self._scripts.get(model)
            if queue:
                chosen: ReplyLike = queue.popleft()
            else:
                chosen = self._defaults.get(model) or self._defaults.get("*") or Reply()
        return chosen(rec) if callable(chosen) and not isinstance(chosen, Reply) else chosen

    def _next_id(self) -> int:
        return next(self._ids)


# ---- pytest fixtures -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def fake_provider_server() -> Iterator[FakeProvider]:
    """One FakeProvider for the whole session (started once)."""
    with FakeProvider() as fake:
        yield fake


@pytest.fixture
def fake_provider(fake_provider_server: FakeProvider) -> Iterator[FakeProvider]:
    """The session FakeProvider, reset (no scripts, no records) before and after each test."""
    fake_provider_server.reset()
    yield fake_provider_server
    fake_provider_server.reset()

