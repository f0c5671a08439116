"""`tier serve`: a local gateway that coding agents reach through a base URL.

OpenAI-compatible `POST /v1/chat/completions` and `GET /v1/models`, Anthropic-compatible
`POST /v1/messages` and `POST /v1/messages/count_tokens`, JSON and SSE. Each request is routed like
`tier ask` (explicit tier name > scenario rules > the classifier on the last user message's text;
then prompt-cache stickiness), admitted by the same budget checks (ask.py's helpers, one pending row
written before the call), answered in the caller's protocol whatever the upstream, and settled in the
ledger (kind main, source serve) after the answer is sent.

Two ways to reach a provider:
- passthrough: the caller's protocol is the deployments' own (Anthropic client -> anthropic/ models,
  OpenAI client -> openai/ models, the whole fallback chain) and the deployments carry only model,
  api_base and api_key: the body goes upstream unchanged but for the model name and the key, and the
  answer comes back byte for byte (usage read on the way). Tool calls, thinking signatures, cache
  markers and beta headers survive untouched, and the gateway adds ~2.5 ms on loopback. Fallbacks
  follow the config's chain; litellm's retries and cooldowns do not apply here.
- router: everything else (cross-protocol, other providers, extra litellm params) goes through
  providers.complete_raw(), the same cached litellm Router and attempt log as `tier ask`; Anthropic
  requests are translated with litellm's Messages adapter both ways.

No litellm import here: providers.py does every litellm call. Ledger writes run on one dedicated
thread that owns the SQLite connection (the event loop never waits on an fsync, except for the pending
row, which must exist before the call).
"""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import json
import os
import re
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from tiercli import ask as ask_core
from tiercli import guards, providers
from tiercli.config import ENV_REF, PROVIDER_KEY_VARS, Deployment, LoadedConfig
from tiercli.errors import ConfigError, GuardrailRefusal, TierError, UsageError
from tiercli.pricing import PriceBook, Usage
from tiercli.router import Decision, decide

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4141
MAX_BODY_BYTES = 64 * 1024 * 1024
SESSION_MAX_CHARS = 128
# deployments with only these litellm_params can be reached without litellm
PASSTHROUGH_PARAMS = frozenset({"model", "api_base", "api_key", "timeout", "stream_timeout", "max_retries", "rpm", "tpm"})
DEFAULT_BASES = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
CLIENT_ERRORS = frozenset({400, 413, 422})  # the request itself is wrong: no fallback, passed back as is
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                         403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                         429: "rate_limit_error", 500: "api_error", 502: "api_error", 503: "overloaded_error",
                         504: "api_error"}
ERROR_CLASS_OF_STATUS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                         404: "NotFoundError", 408: "Timeout", 413: "BadRequestError", 422: "BadRequestError",
                         429: "RateLimitError", 503: "ServiceUnavailableError"}


def is_loopback(host: str) -> bool:
    if host in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]").split("%")[0]).is_loopback
    except ValueError:
        return False


# -- reading a request ---------------------------------------------------------------------------------
@dataclass
class Incoming:
    protocol: str  # openai | anthropic
    body: dict[str, Any]
    model: str  # what the client asked for
    stream: bool
    session: str | None
    text: str  # the last user message's text: the classifier's input
    flat: list[dict[str, str]]  # every message as {role, content: text}, for token counts
    char_count: int
    thinking: bool
    web_search: bool
    max_tokens: int | None
    wants_usage: bool  # OpenAI stream_options.include_usage
    client_key: tuple[str, str] | None  # (header, value) the client authenticated with
    headers: dict[str, str]  # upstream-relevant client headers (anthropic-version, anthropic-beta)


def _block_text(block: Any) -> str:
    """Text of one content block of either protocol (tool calls and results as their JSON/text)."""
    if isinstance(block, str):
        return block
    if not isinstance(block, dict):
        return ""
    kind = block.get("type")
    if kind in ("text", "input_text", "output_text"):
        return str(block.get("text") or "")
    if kind == "thinking":
        return str(block.get("thinking") or "")
    if kind == "tool_use":
        return f"{block.get('name', '')} {json.dumps(block.get('input'), ensure_ascii=False)}"
    if kind == "tool_result":
        return _content_text(block.get("content"))
    return ""


def _content_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(t for t in (_block_text(b) for b in content) if t)
    return ""


def flatten(protocol: str, body: dict[str, Any]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    if protocol == "anthropic" and body.get("system"):
        out.append({"role": "system", "content": _content_text(body["system"])})
    for m in body.get("messages") or []:
        if not isinstance(m, dict):
            continue
        text = _content_text(m.get("content"))
        for call in m.get("tool_calls") or []:  # OpenAI assistant tool calls
            fn = (call or {}).get("function") or {}
            text += f"\n{fn.get('name', '')} {fn.get('arguments', '')}"
        out.append({"role": str(m.get("role") or "user"), "content": text})
    return out


def last_user_text(protocol: str, body: dict[str, Any]) -> str:
    """The text of the last user message that has any (an agent's tool-result turns are skipped, so
    every step of one task is classified on the instruction that started it)."""
    for m in reversed(body.get("messages") or []):
        if not isinstance(m, dict) or m.get("role") != "user":
            continue
        content = m.get("content")
        if isinstance(content, str):
            text = content
        elif isinstance(content, list):
            text = "\n".join(str(b.get("text") or "") for b in content
                             if isinstance(b, dict) and b.get("type") in ("text", "input_text"))
        else:
            text = ""
        if text.strip():
            return text
    return ""


_SESSION_IN_USER_ID = re.compile(r"_session_([0-9A-Za-z-]+)$")


def session_of(protocol: str, body: dict[str, Any], headers) -> str | None:
    """The agent's session id: header x-session-id (or Claude Code's x-claude-code-session-id), else
    Anthropic metadata.user_id (its `_session_<uuid>` part when it has one), else OpenAI `user`."""
    value: Any = headers.get("x-session-id") or headers.get("x-claude-code-session-id")
    if not value and protocol == "anthropic":
        user_id = (body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None
        if isinstance(user_id, str) and user_id:
            value = user_id
            if user_id.startswith("{"):
                try:
                    value = json.loads(user_id).get("session_id") or user_id
                except (ValueError, AttributeError):
                    pass
            elif found := _SESSION_IN_USER_ID.search(user_id):
                value = found.group(1)
    if not value and protocol == "openai":
        value = body.get("user")
    return str(value)[:SESSION_MAX_CHARS] if value else None


def wants_thinking(protocol: str, body: dict[str, Any]) -> bool:
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") not in (None, "disabled"):
        return True
    effort = body.get("reasoning_effort")
    return protocol == "openai" and isinstance(effort, str) and effort not in ("none", "minimal")


def has_web_search(body: dict[str, Any]) -> bool:
    """A web-search tool: Anthropic's server tool (type web_search_*), OpenAI's web_search_options or
    web_search tool types. (Claude Code lists a client-side WebSearch tool in every request; only the
    server tool means a search is wanted now.)"""
    if body.get("web_search_options") is not None:
        return True
    return any(isinstance(t, dict) and str(t.get("type") or "").startswith("web_search") for t in body.get("tools") or [])


def _client_key(headers, token: str | None) -> tuple[str, str] | None:
    for name in ("x-api-key", "authorization"):
        value = headers.get(name)
        if not value:
            continue
        bare = value[7:] if name == "authorization" and value.lower().startswith("bearer ") else value
        if token and hmac.compare_digest(bare.encode(), token.encode()):
            continue  # that is our local token, not a provider key
        return name, value
    return None


def read_incoming(protocol: str, body: dict[str, Any], headers, token: str | None) -> Incoming:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _BadRequest("messages must be a non-empty list")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise _BadRequest("model is required (a tier name, `auto`, or any model name to let tier route)")
    flat = flatten(protocol, body)
    chars = sum(len(m["content"]) for m in flat)
    if body.get("tools"):
        chars += len(json.dumps(body["tools"], ensure_ascii=False))
    max_tokens = body.get("max_tokens") if protocol == "anthropic" else (
        body.get("max_completion_tokens") or body.get("max_tokens"))
    upstream_headers = {k: headers[k] for k in ("anthropic-version", "anthropic-beta") if headers.get(k)}
    return Incoming(
        protocol=protocol, body=body, model=model, stream=bool(body.get("stream")),
        session=session_of(protocol, body, headers), text=last_user_text(protocol, body), flat=flat,
        char_count=chars, thinking=wants_thinking(protocol, body), web_search=has_web_search(body),
        max_tokens=max_tokens if isinstance(max_tokens, int) and max_tokens > 0 else None,
        wants_usage=bool((body.get("stream_options") or {}).get("include_usage")) if isinstance(body.get("stream_options"), dict) else False,
        client_key=_client_key(headers, token), headers=upstream_headers,
    )


class _BadRequest(Exception):
    pass


# -- answers in the caller's protocol ------------------------------------------------------------------
def error_body(protocol: str, status: int, message: str, etype: str | None = None) -> dict[str, Any]:
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": etype or ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message}}
    etype = etype or ("invalid_request_error" if status < 500 else "server_error")
    code = {401: "invalid_api_key", 429: "rate_limit_exceeded", 402: "budget_exceeded"}.get(status)
    return {"error": {"message": message, "type": etype, "param": None, "code": code}}


def error_response(protocol: str, status: int, message: str, etype: str | None = None,
                   headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(protocol, status, message, etype), status_code=status, headers=headers)


def error_event(protocol: str, status: int, message: str) -> bytes:
    body = error_body(protocol, status, message)
    if protocol == "anthropic":
        return b"event: error\ndata: " + json.dumps(body).encode() + b"\n\n"
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _sse(obj: dict[str, Any], event: str | None = None) -> bytes:
    head = f"event: {event}\n".encode() if event else b""
    return head + b"data: " + json.dumps(obj, ensure_ascii=False).encode() + b"\n\n"


def render_text(protocol: str, text: str, model: str, usage: Usage, stream: bool, wants_usage: bool) -> Response:
    """A plain-text answer (the offline placeholder) in the caller's protocol, JSON or SSE."""
    rid, created = uuid.uuid4().hex[:24], int(time.time())
    if protocol == "anthropic":
        u = {"input_tokens": usage.input_tokens, "cache_creation_input_tokens": usage.cache_write_tokens,
             "cache_read_input_tokens": usage.cache_read_tokens, "output_tokens": usage.output_tokens}
        message = {"id": f"msg_{rid}", "type": "message", "role": "assistant", "model": model,
                   "content": [{"type": "text", "text": text}], "stop_reason": "end_turn", "stop_sequence": None, "usage": u}
        if not stream:
            return JSONResponse(message)
        events = [
            _sse({"type": "message_start", "message": {**message, "content": [], "stop_reason": None, "usage": {**u, "output_tokens": 0}}}, "message_start"),
            _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start"),
            _sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}}, "content_block_delta"),
            _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                  "usage": {"output_tokens": usage.output_tokens}}, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop"),
        ]
    else:
        prompt = usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens
        u = {"prompt_tokens": prompt, "completion_tokens": usage.output_tokens, "total_tokens": prompt + usage.output_tokens}
        base = {"id": f"chatcmpl-{rid}", "created": created, "model": model}
        if not stream:
            return JSONResponse({**base, "object": "chat.completion", "usage": u, "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}]})
        chunk = {**base, "object": "chat.completion.chunk"}
        events = [
            _sse({**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]}),
            _sse({**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}),
            *([_sse({**chunk, "choices": [], "usage": u})] if wants_usage else []),
            b"data: [DONE]\n\n",
        ]
    return StreamingResponse(iter(events), media_type="text/event-stream", headers={"cache-control": "no-cache"})


# -- what a call produced ------------------------------------------------------------------------------
@dataclass
class Outcome:
    protocol: str
    wants_usage: bool = True
    text: list[str] = field(default_factory=list)
    tool_calls: list[str] = field(default_factory=list)
    usage: Usage | None = None
    finish: str | None = None
    error: dict[str, Any] | None = None  # an error event inside a 200 stream

    # -- passthrough SSE: one event at a time ----------------------------------------------------------
    def feed_event(self, event: bytes) -> bool:
        """Read one SSE event; False: drop it (an OpenAI usage chunk the client did not ask for)."""
        name = data = None
        for line in event.split(b"\n"):
            if line.startswith(b"data:"):
                data = line[5:].strip()
            elif line.startswith(b"event:"):
                name = line[6:].strip()
        if not data or data == b"[DONE]" or name in (b"ping", b"content_block_stop", b"message_stop"):
            return True
        try:
            obj = json.loads(data)
        except ValueError:
            return True
        if not isinstance(obj, dict):
            return True
        if self.protocol == "anthropic":
            self.feed_anthropic(obj)
            return True
        return self.feed_openai(obj)

    def feed_anthropic(self, obj: dict[str, Any]) -> None:
        kind = obj.get("type")
        if kind == "content_block_delta":
            delta = obj.get("delta") or {}
            if delta.get("type") == "text_delta":
                self.text.append(str(delta.get("text") or ""))
        elif kind == "content_block_start":
            block = obj.get("content_block") or {}
            if block.get("type") in ("tool_use", "server_tool_use"):
                self.tool_calls.append(str(block.get("name")))
        elif kind == "message_start":
            self._anthropic_usage((obj.get("message") or {}).get("usage") or {})
        elif kind == "message_delta":
            self.finish = (obj.get("delta") or {}).get("stop_reason") or self.finish
            self._anthropic_usage(obj.get("usage") or {})
        elif kind == "error":
            self.error = obj.get("error") or {"message": "error event"}

    def _anthropic_usage(self, u: dict[str, Any]) -> None:
        prev = self.usage or Usage()

        def val(key: str, old: int) -> int:
            value = u.get(key)
            return int(value) if isinstance(value, (int, float)) and value is not None else old

        write = val("cache_creation_input_tokens", prev.cache_write_tokens)
        write_1h = int(((u.get("cache_creation") or {}).get("ephemeral_1h_input_tokens")) or prev.cache_write_1h_tokens)
        self.usage = Usage(input_tokens=val("input_tokens", prev.input_tokens),
                           cache_read_tokens=val("cache_read_input_tokens", prev.cache_read_tokens),
                           cache_write_tokens=write, cache_write_1h_tokens=min(write_1h, write),
                           output_tokens=val("output_tokens", prev.output_tokens))

    def feed_openai(self, obj: dict[str, Any]) -> bool:
        if obj.get("error"):
            self.error = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
            return True
        choices = obj.get("choices") or []
        for choice in choices:
            delta = choice.get("delta") or choice.get("message") or {}
            if delta.get("content"):
                self.text.append(str(delta["content"]))
            for call in delta.get("tool_calls") or []:
                name = (call.get("function") or {}).get("name")
                if name:
                    self.tool_calls.append(str(name))
            self.finish = choice.get("finish_reason") or self.finish
        if obj.get("usage"):
            self.usage = providers.usage_of(obj["usage"]) or self.usage
            if not choices and not self.wants_usage:
                return False
        return True

    def feed_anthropic_message(self, obj: dict[str, Any]) -> None:
        for block in obj.get("content") or []:
            if block.get("type") == "text":
                self.text.append(str(block.get("text") or ""))
            elif block.get("type") in ("tool_use", "server_tool_use"):
                self.tool_calls.append(str(block.get("name")))
        self.finish = obj.get("stop_reason")
        self._anthropic_usage(obj.get("usage") or {})

    # -- litellm objects (router path) -----------------------------------------------------------------
    def feed_chunk(self, chunk: Any) -> bool:
        """A litellm stream chunk; False: it is a usage-only chunk the client did not ask for."""
        choices = getattr(chunk, "choices", None) or []
        for choice in choices:
            delta = getattr(choice, "delta", None)
            piece = getattr(delta, "content", None)
            if piece:
                self.text.append(piece)
            for call in getattr(delta, "tool_calls", None) or []:
                name = getattr(getattr(call, "function", None), "name", None)
                if name:
                    self.tool_calls.append(name)
            self.finish = getattr(choice, "finish_reason", None) or self.finish
        usage = providers.usage_of(getattr(chunk, "usage", None))
        if usage is not None:
            self.usage = usage
            return bool(choices) or self.wants_usage
        return True

    def feed_response(self, resp: Any) -> None:
        choice = resp.choices[0] if resp.choices else None
        message = getattr(choice, "message", None)
        if getattr(message, "content", None):
            self.text.append(message.content)
        for call in getattr(message, "tool_calls", None) or []:
            self.tool_calls.append(getattr(getattr(call, "function", None), "name", None) or "?")
        self.finish = getattr(choice, "finish_reason", None)
        self.usage = providers.usage_of(getattr(resp, "usage", None))


class _Tap:
    """Passes a litellm chunk stream on (to litellm's Anthropic SSE adapter) while reading it."""

    def __init__(self, stream: Any, outcome: Outcome):
        self._stream = stream
        self._outcome = outcome

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)

    def __aiter__(self):
        return self._read()

    async def _read(self):
        async for chunk in self._stream:
            self._outcome.feed_chunk(chunk)
            yield chunk


@dataclass
class Served:
    group: str
    model: str  # the deployment's litellm model string
    deployment_id: str | None
    attempts: list[providers.Attempt]


# -- the gateway -----------------------------------------------------------------------------------------
class Gateway:
    def __init__(self, loaded: LoadedConfig, db_path: str | os.PathLike, *, host: str = DEFAULT_HOST,
                 token: str | None = None):
        if not is_loopback(host) and not token:
            raise UsageError(f"tier serve on {host} (beyond loopback) needs a local token",
                             "pass --token or set TIER_SERVE_TOKEN; clients send it as a Bearer token or x-api-key")
        self.loaded = loaded
        self.cfg = loaded.config
        self.db_path = Path(db_path)
        self.host = host
        self.token = token or None
        self.sticky: dict[str, tuple[str, float]] = {}  # session -> (tier, time of its last call)
        self.prices = PriceBook(self.cfg.prices)
        self._db: ThreadPoolExecutor | None = None
        self._ledger = None
        self._http = None
        self._small = re.compile(self.cfg.serve.small_model_pattern, re.I) if self.cfg.serve.small_model_pattern else None
        self._chains: dict[tuple[str, str], list[tuple[str, Deployment]] | None] = {}

    # -- lifecycle ---------------------------------------------------------------------------------------
    def warm(self) -> None:
        """Import litellm and build the router now, not on the first request (about 3 s)."""
        providers.warm_up(self.cfg, self.loaded.hash)

    async def startup(self) -> None:
        import httpx

        from tiercli.ledger import Ledger

        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tier-serve-ledger")
        self._ledger = await asyncio.get_running_loop().run_in_executor(self._db, Ledger, self.db_path)
        timeout = httpx.Timeout(self.cfg.guardrails.timeout_s, connect=min(10.0, self.cfg.guardrails.timeout_s))
        self._http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                                       trust_env=False)

    async def shutdown(self) -> None:
        if self._http is not None:
            await self._http.aclose()
        if self._db is not None:
            ledger, self._ledger = self._ledger, None
            if ledger is not None:
                self._db.submit(ledger.close)
            self._db.shutdown(wait=True)

    async def _on_db(self, fn: Callable, *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _later(self, fn: Callable, *args: Any) -> None:
        """Run on the ledger thread after what is queued; nobody waits (settling a finished call)."""
        self._db.submit(fn, *args)

    def flush(self) -> None:
        """Wait until every queued ledger write is done (tests, shutdown)."""
        if self._db is not None:
            self._db.submit(lambda: None).result()

    # -- auth ----------------------------------------------------------------------------------------------
    def authorized(self, headers) -> bool:
        if not self.token:
            return True
        want = self.token.encode()
        candidates = [headers.get("x-tier-token"), headers.get("x-api-key")]
        auth = headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:])
        return any(c and hmac.compare_digest(c.encode(), want) for c in candidates)

    # -- routing -------------------------------------------------------------------------------------------
    def _rule(self, decision: Decision, tier: str, source: str, reason: str) -> Decision:
        return replace(decision, tier=tier, model=self.cfg.primary_model(tier), source=source,
                       decided_tier=decision.decided_tier or decision.tier, reasons=(*decision.reasons, reason))

    def _estimate_tokens(self, inc: Incoming, tier: str) -> int:
        """Prompt tokens, counted exactly only near the long-context threshold (a 100 KB prompt costs
        several ms to tokenize)."""
        rough = inc.char_count // 4
        limit = self.cfg.serve.long_context_tokens
        if rough < limit // 2 or rough > limit * 2:
            return rough
        from tiercli import tokens

        model = self.cfg.primary_model(tier).removeprefix("offline/")
        tools = json.dumps(inc.body.get("tools"), ensure_ascii=False) if inc.body.get("tools") else ""
        return tokens.count_messages(inc.flat, model) + tokens.count(tools, model)

    async def route(self, inc: Incoming, call_id: str) -> tuple[Decision, dict[str, Any], bool]:
        """(decision, meta for the row, whether stickiness may apply and be updated)."""
        cfg, serve = self.cfg, self.cfg.serve
        tiers = cfg.routing.tiers
        meta: dict[str, Any] = {}
        if inc.model in tiers:
            return Decision(tier=inc.model, model=cfg.primary_model(inc.model), source="override",
                            decided_tier=inc.model, reasons=(f"model {inc.model!r} names a tier",)), meta, False
        if self._small is not None and self._small.search(inc.model):
            tier = serve.small_model_tier or cfg.cheapest_tier
            meta["rule"] = "small_model"
            return Decision(tier=tier, model=cfg.primary_model(tier), source="scenario", decided_tier=tier,
                            reasons=(f"serve: requested model {inc.model!r} matches small_model_pattern -> {tier}",)), meta, False
        classification = await self._classify(inc, call_id)
        decision = decide(cfg, classification=classification)
        if serve.long_context_tier and (n := self._estimate_tokens(inc, decision.tier)) > serve.long_context_tokens:
            meta["rule"] = "long_context"
            decision = self._rule(decision, serve.long_context_tier, "scenario",
                                  f"serve: long context ~{n:,} tokens > {serve.long_context_tokens:,} -> {serve.long_context_tier}")
        elif serve.web_search_tier and inc.web_search:
            meta["rule"] = "web_search"
            decision = self._rule(decision, serve.web_search_tier, "scenario", f"serve: web search tool -> {serve.web_search_tier}")
        elif serve.thinking_tier and inc.thinking:
            meta["rule"] = "thinking"
            decision = self._rule(decision, serve.thinking_tier, "scenario", f"serve: thinking requested -> {serve.thinking_tier}")
        return self._stick(inc, decision, meta), meta, True

    def _stick(self, inc: Incoming, decision: Decision, meta: dict[str, Any]) -> Decision:
        """Keep a session on the tier whose prompt cache is warm, unless the decision must rise."""
        ttl = self.cfg.serve.sticky_ttl_s
        if not ttl or not inc.session or inc.session not in self.sticky:
            return decision
        tier, last = self.sticky[inc.session]
        age = time.time() - last
        if age > ttl or tier not in self.cfg.routing.tiers:
            return decision
        rank = self.cfg.tier_rank
        info = {"warm": True, "tier": tier, "decided": decision.tier, "age_s": round(age, 1)}
        meta["sticky"] = info
        if rank(decision.tier) > rank(tier):
            info["kept"] = False
            return replace(decision, reasons=(*decision.reasons, f"sticky: {decision.tier} ranks above the warm {tier}: the tier rises"))
        info["kept"] = True
        if decision.tier == tier:
            return decision
        return replace(decision, tier=tier, model=self.cfg.primary_model(tier), source="sticky",
                       decided_tier=decision.decided_tier or decision.tier,
                       reasons=(*decision.reasons, f"sticky: session cache warm on {tier} ({age:.0f} s since its last call): kept {tier} instead of {decision.tier}"))

    async def _classify(self, inc: Incoming, call_id: str):
        from tiercli import classify as classify_pkg

        which = self.cfg.routing.classifier
        if which == "static" or not inc.text.strip():
            return None
        if which == "local":
            return classify_pkg.run_local(inc.text)
        # llm / hybrid call a model and record it: on the ledger thread, which owns the connection
        return await self._on_db(lambda: classify_pkg.run(which, inc.text, self.loaded, ledger=self._ledger,
                                                          parent_id=call_id, session=inc.session))

    # -- admission (ledger thread) -------------------------------------------------------------------------
    def _ask_request(self, inc: Incoming) -> ask_core.AskRequest:
        return ask_core.AskRequest(prompt=inc.text or "(no text)", session=inc.session, max_tokens=inc.max_tokens,
                                   stream=inc.stream)

    def _admit(self, inc: Incoming, decision: Decision, call_id: str, meta: dict[str, Any]) -> tuple[Decision, dict[str, Any]]:
        """The iteration limit (serve.max_iterations), the budget caps (ask.py's own helpers: downgrade
        or refuse) and the pending row, written before the call."""
        loaded, ledger, cfg = self.loaded, self._ledger, self.cfg
        req = self._ask_request(inc)
        limit = cfg.serve.max_iterations
        if limit and inc.session:
            made = ledger.session_calls(inc.session)
            if made >= limit:
                refusal = guards.refuse_iterations(inc.session, made, limit)
                ask_core.record_refusal(loaded, ledger, req, decision, call_id, "main", None, "IterationLimit", refusal)
                raise refusal
        decision, estimate = ask_core.check_budget(loaded, req, ledger, decision, inc.flat, call_id, "main", None)
        serve_meta = {"protocol": inc.protocol, "requested_model": inc.model, "stream": inc.stream, **meta}
        row: dict[str, Any] = {
            "id": call_id, "started_at": time.time(), "session": inc.session, "kind": "main", "source": "serve",
            "parent_id": None, "task_type": decision.task_type, "label": decision.label,
            "decision_source": decision.source, "classifier": decision.classifier, "confidence": decision.confidence,
            "decided_tier": decision.decided_tier, "tier": decision.tier, "requested_model": decision.model,
            "status": "pending", "prompt_hash": ask_core.prompt_hash(req.prompt),
            "prompt_text": ask_core.stored_text(inc.text or None, cfg.ledger.store_prompts),
            "config_hash": loaded.hash,
            "meta_json": json.dumps({"reasons": list(decision.reasons), "serve": serve_meta}, ensure_ascii=False),
        }
        overrun = ask_core.write_pending(loaded, req, ledger, decision, inc.flat, row, estimate)
        if overrun is not None:
            refusal = guards.refuse_budget(overrun)
            ask_core.record_refusal(loaded, ledger, req, decision, call_id, "main", None, "BudgetExceeded", refusal)
            raise refusal
        return decision, row

    # -- settling (ledger thread, after the answer) --------------------------------------------------------
    def _settle_ok(self, row: dict[str, Any], inc: Incoming, served: Served, out: Outcome, ended: float) -> None:
        cfg = self.cfg
        deployment = next((d for d in cfg.deployments(served.group) if d.model.removeprefix("offline/") == served.model.removeprefix("offline/")), None)
        usage, reported = out.usage, out.usage is not None
        text = "".join(out.text)
        if usage is None:
            from tiercli import tokens

            model = served.model.removeprefix("offline/")
            usage = Usage(input_tokens=tokens.count_messages(inc.flat, model), output_tokens=tokens.count(text, model))
        cost, source = self.prices.cost(deployment.model if deployment else served.model, usage,
                                        deployment.litellm_params if deployment else None)
        fallbacks = sum(1 for a in served.attempts if a.group and a.group != served.group)
        if served.group != row["tier"]:
            fallbacks = max(fallbacks, 1)
        meta = json.loads(row["meta_json"])
        if out.tool_calls:
            meta["serve"]["tool_calls"] = out.tool_calls
        self._ledger.upsert_call({
            **row, **ask_core._usage_cols(usage), "status": "ok", "ended_at": ended, "reserved_usd": None,
            "served_tier": served.group, "served_model": served.model, "deployment_id": served.deployment_id,
            "attempts": len(served.attempts) + 1, "fallback_count": fallbacks,
            "attempts_json": json.dumps([a.as_dict() for a in served.attempts]) if served.attempts else None,
            "output_estimated": not reported, "cost_usd": cost, "price_source": source, "unpriced": cost is None,
            "latency_ms": (ended - row["started_at"]) * 1000,
            "response_text": ask_core.stored_text(text, cfg.ledger.store_prompts),
            "meta_json": json.dumps(meta, ensure_ascii=False),
        })

    def _settle_failed(self, row: dict[str, Any], failed: providers.CallFailed, ended: float, status: str = "error") -> None:
        cost, source = self.prices.cost(row["requested_model"], Usage())
        self._ledger.upsert_call({
            **row, "status": status, "ended_at": ended, "reserved_usd": None, "error_class": failed.error_class,
            "error_message": failed.message[:500], "attempts": len(failed.attempts),
            "fallback_count": max(len(failed.attempts) - 1, 0),
            "attempts_json": json.dumps([a.as_dict() for a in failed.attempts]),
            "cost_usd": cost, "price_source": source, "unpriced": cost is None,
            "latency_ms": (ended - row["started_at"]) * 1000,
            "response_text": ask_core.stored_text(failed.partial_text or None, self.cfg.ledger.store_prompts),
        })

    def _settle_interrupted(self, row: dict[str, Any], inc: Incoming, served: Served, out: Outcome, ended: float) -> None:
        """The client went away mid-stream: the partial answer, tokens counted locally unless the
        provider had already reported them."""
        from tiercli import tokens

        text = "".join(out.text)
        model = served.model.removeprefix("offline/")
        usage = out.usage or Usage(input_tokens=tokens.count_messages(inc.flat, model), output_tokens=tokens.count(text, model))
        cost, source = self.prices.cost(served.model, usage)
        self._ledger.upsert_call({
            **row, **ask_core._usage_cols(usage), "status": "interrupted", "ended_at": ended, "reserved_usd": None,
            "served_tier": served.group, "served_model": served.model, "output_estimated": out.usage is None,
            "cost_usd": cost, "price_source": source, "unpriced": cost is None,
            "latency_ms": (ended - row["started_at"]) * 1000,
            "response_text": ask_core.stored_text(text, self.cfg.ledger.store_prompts), "error_class": "ClientDisconnected",
        })

    def _remember(self, inc: Incoming, tier: str, sticky_ok: bool) -> None:
        if not sticky_ok or not inc.session or not self.cfg.serve.sticky_ttl_s:
            return
        now = time.time()
        if len(self.sticky) > 10_000:  # forget cold sessions
            ttl = self.cfg.serve.sticky_ttl_s
            self.sticky = {s: v for s, v in self.sticky.items() if now - v[1] <= ttl}
        self.sticky[inc.session] = (tier, now)

    # -- the request --------------------------------------------------------------------------------------
    async def handle(self, request: Request, protocol: str) -> Response:
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return error_response(protocol, 413, f"request body over {MAX_BODY_BYTES // (1024 * 1024)} MB")
        raw = await request.body()
        try:
            body = json.loads(raw)
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            inc = read_incoming(protocol, body, request.headers, self.token)
        except (ValueError, UnicodeDecodeError) as exc:
            return error_response(protocol, 400, f"invalid JSON body: {exc}")
        except _BadRequest as exc:
            return error_response(protocol, 400, str(exc))
        call_id = uuid.uuid4().hex
        try:
            decision, meta, sticky_ok = await self.route(inc, call_id)
            chain = self._passthrough_chain(protocol, decision.tier)
            if not (chain and self._forwards_client_key(inc)):
                providers.check_keys(self.cfg, decision.tier)  # before anything is recorded or sent
            tier = decision.tier
            decision, row = await self._on_db(self._admit, inc, decision, call_id, meta)
            if decision.tier != tier:  # the budget downgraded it
                chain = self._passthrough_chain(protocol, decision.tier)
                providers.check_keys(self.cfg, decision.tier)
        except GuardrailRefusal as exc:
            status = 402 if "budget" in exc.message else 403
            return error_response(protocol, status, str(exc), "budget_exceeded" if status == 402 else "iteration_limit")
        except TierError as exc:
            return error_response(protocol, 500, f"tier serve: {exc}", "api_error" if protocol == "anthropic" else "server_error")
        deployments = self.cfg.deployments(decision.tier)
        if all(d.is_offline for d in deployments):
            return self._offline(inc, decision, row, sticky_ok)
        if chain:
            return await self._passthrough(inc, decision, row, chain, sticky_ok)
        return await self._via_router(inc, decision, row, sticky_ok, call_id)

    # -- offline placeholder -------------------------------------------------------------------------------
    def _offline(self, inc: Incoming, decision: Decision, row: dict[str, Any], sticky_ok: bool) -> Response:
        done = providers.offline_completion(self.cfg, decision.tier, inc.flat)
        out = Outcome(inc.protocol, text=[done.text], usage=done.usage, finish="stop")
        served = Served(decision.tier, done.served_model, done.deployment_id, [])  # the stood-in model, as `tier ask` records it
        self._later(self._settle_ok, row, inc, served, out, time.time())
        self._remember(inc, decision.tier, sticky_ok)
        return render_text(inc.protocol, done.text, done.served_model, done.usage, inc.stream, inc.wants_usage)

    # -- passthrough ------------------------------------------------------------------------------------------
    def _passthrough_chain(self, protocol: str, tier: str) -> list[tuple[str, Deployment]] | None:
        key = (protocol, tier)
        if key not in self._chains:
            chain: list[tuple[str, Deployment]] | None = []
            if not self.cfg.serve.passthrough:
                chain = None
            else:
                for group in [tier, *self.cfg.fallback_chain(tier)]:
                    for d in self.cfg.deployments(group):
                        if d.is_offline or d.provider() != protocol or set(d.litellm_params) - PASSTHROUGH_PARAMS:
                            chain = None
                            break
                        chain.append((group, d))
                    if chain is None:
                        break
            self._chains[key] = chain or None
        return self._chains[key]

    def _forwards_client_key(self, inc: Incoming) -> bool:
        return self.cfg.serve.forward_client_key and inc.client_key is not None

    def _upstream(self, inc: Incoming, d: Deployment) -> tuple[str, dict[str, str], bytes]:
        protocol = inc.protocol
        base = str(d.litellm_params.get("api_base") or DEFAULT_BASES[protocol]).rstrip("/")
        if protocol == "anthropic":
            url = base if base.endswith("/v1/messages") else base + "/v1/messages"
            headers = {"content-type": "application/json",
                       "anthropic-version": inc.headers.get("anthropic-version", "2023-06-01")}
            if "anthropic-beta" in inc.headers:
                headers["anthropic-beta"] = inc.headers["anthropic-beta"]
        else:
            url = base if base.endswith("/chat/completions") else base + "/chat/completions"
            headers = {"content-type": "application/json"}
        if self._forwards_client_key(inc):
            name, value = inc.client_key
            headers[name] = value
        else:
            key = deployment_key(d) or ""
            headers.update({"x-api-key": key} if protocol == "anthropic" else {"authorization": f"Bearer {key}"})
        body = dict(inc.body, model=d.model.split("/", 1)[1] if "/" in d.model else d.model)
        if protocol == "openai" and inc.stream:
            body["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
        return url, headers, json.dumps(body, ensure_ascii=False).encode()

    async def _passthrough(self, inc: Incoming, decision: Decision, row: dict[str, Any],
                           chain: list[tuple[str, Deployment]], sticky_ok: bool) -> Response:
        import httpx

        protocol = inc.protocol
        attempts: list[providers.Attempt] = []
        last_error: tuple[int, bytes, dict[str, str]] | None = None
        for group, d in chain:
            url, headers, payload = self._upstream(inc, d)
            try:
                resp = await self._http.send(self._http.build_request("POST", url, content=payload, headers=headers), stream=True)
            except httpx.TimeoutException as exc:
                attempts.append(providers.Attempt(group, d.model, "Timeout", providers.scrub(str(exc) or "timed out", self.cfg)))
                continue
            except httpx.HTTPError as exc:
                attempts.append(providers.Attempt(group, d.model, "APIConnectionError", providers.scrub(str(exc) or type(exc).__name__, self.cfg)))
                continue
            if resp.status_code >= 400:
                data = await resp.aread()
                await resp.aclose()
                message = providers.scrub(_upstream_message(data) or f"HTTP {resp.status_code}", self.cfg)
                error_class = _error_class(resp.status_code, message)
                attempts.append(providers.Attempt(group, d.model, error_class, message))
                keep = {k: v for k, v in resp.headers.items() if k.lower() in ("retry-after", "content-type")}
                last_error = (resp.status_code, data, keep)
                if resp.status_code in CLIENT_ERRORS:
                    break  # the request is wrong for every tier: the client hears the provider itself
                continue
            served = Served(group, d.model, d.model_info.get("id", f"{d.model_name}:{d.model}"), attempts)
            out = Outcome(protocol, wants_usage=inc.wants_usage)
            if not inc.stream:
                try:
                    data = await resp.aread()
                finally:
                    await resp.aclose()
                try:
                    obj = json.loads(data)
                    if protocol == "anthropic":
                        out.feed_anthropic_message(obj)
                    else:
                        out.feed_openai(obj)
                except (ValueError, AttributeError, TypeError):
                    pass  # counted locally when settled
                self._later(self._settle_ok, row, inc, served, out, time.time())
                self._remember(inc, group, sticky_ok)
                return Response(data, status_code=resp.status_code, media_type="application/json")
            return StreamingResponse(self._relay(inc, resp, row, served, out, sticky_ok), status_code=resp.status_code,
                                     media_type="text/event-stream", headers={"cache-control": "no-cache"})
        failed = providers.CallFailed(_failure_summary(decision.tier, attempts), None,
                                      error_class=attempts[-1].error_class if attempts else "Error", attempts=attempts)
        self._later(self._settle_failed, row, failed, time.time())
        if last_error is not None and (last_error[0] in CLIENT_ERRORS or all(a.error_class == "RateLimitError" for a in attempts)):
            status, data, headers = last_error
            return Response(data, status_code=status, headers=headers)  # same protocol: the provider's own error
        return error_response(protocol, 502, failed.message)

    async def _relay(self, inc: Incoming, resp, row: dict[str, Any], served: Served, out: Outcome,
                     sticky_ok: bool) -> AsyncIterator[bytes]:
        """The upstream SSE, event by event, as received (an OpenAI usage chunk the client did not ask
        for is left out). The events are kept and read (usage, text, tool calls) on the ledger thread
        when the call is settled, so relaying costs no JSON parsing."""
        events: list[bytes] = []
        drop_usage = inc.protocol == "openai" and not inc.wants_usage
        buffer = b""
        state, broke = "cancelled", ""
        try:
            async for chunk in resp.aiter_bytes():
                buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
                if b"\n\n" not in buffer:
                    continue
                *parts, buffer = buffer.split(b"\n\n")
                kept = [e for e in parts if e and not _is_hidden(e, drop_usage, events)]
                if kept:
                    yield b"\n\n".join(kept) + b"\n\n"
            if buffer.strip() and not _is_hidden(buffer, drop_usage, events):
                yield buffer + b"\n\n"
            state = "done"
        except Exception as exc:  # noqa: BLE001 - the upstream broke mid-stream
            state, broke = "broke", providers.scrub(f"upstream stream broke: {type(exc).__name__}: {exc}", self.cfg)
            yield error_event(inc.protocol, 502, broke)
        finally:  # settle first: under a cancelled scope (the client hung up) every await raises again
            self._later(self._settle_stream, row, inc, served, out, events, state, broke, time.time())
            if state == "done" and not any(b"error" in e[:40] for e in events[-2:]):
                self._remember(inc, served.group, sticky_ok)
            await resp.aclose()

    def _settle_stream(self, row: dict[str, Any], inc: Incoming, served: Served, out: Outcome, events: list[bytes],
                       state: str, broke: str, ended: float) -> None:
        for event in events:
            out.feed_event(event)
        if state == "cancelled":  # the client hung up
            self._settle_interrupted(row, inc, served, out, ended)
        elif state == "broke" or out.error is not None:
            message = broke or providers.scrub(str(out.error.get("message") or out.error), self.cfg)
            error_class = "APIConnectionError" if state == "broke" else str(out.error.get("type") or "StreamError")
            failed = providers.CallFailed(message, None, error_class=error_class, partial_text="".join(out.text),
                                          attempts=[*served.attempts, providers.Attempt(served.group, served.model, error_class, message)])
            self._settle_failed(row, failed, ended)
        else:
            self._settle_ok(row, inc, served, out, ended)

    # -- through litellm --------------------------------------------------------------------------------------
    def _router_request(self, inc: Incoming, tier: str) -> tuple[dict[str, Any], dict[str, str]]:
        mapping: dict[str, str] = {}
        if inc.protocol == "anthropic":
            kwargs, mapping = providers.anthropic_to_openai(inc.body)
        else:
            kwargs = dict(inc.body)
        kwargs = providers.client_params(kwargs)
        if not (kwargs.get("max_tokens") or kwargs.get("max_completion_tokens")):
            kwargs["max_tokens"] = self.cfg.guardrails.max_output_tokens
        if any(d.provider() != "anthropic" for g in [tier, *self.cfg.fallback_chain(tier)] for d in self.cfg.deployments(g)):
            kwargs["messages"] = _without_cache_control(kwargs.get("messages") or [])
        return kwargs, mapping

    async def _via_router(self, inc: Incoming, decision: Decision, row: dict[str, Any], sticky_ok: bool,
                          call_id: str) -> Response:
        cfg, tier, protocol = self.cfg, decision.tier, inc.protocol
        try:
            kwargs, mapping = self._router_request(inc, tier)
            resp = await providers.complete_raw(cfg, self.loaded.hash, tier, kwargs, call_id=call_id, stream=inc.stream,
                                                timeout=cfg.guardrails.timeout_s)
        except providers.CallFailed as exc:
            self._later(self._settle_failed, row, exc, time.time())
            self._forget_later(call_id)
            return self._failure_response(protocol, exc)
        except Exception as exc:  # noqa: BLE001 - a translation failure is the request's fault
            failed = providers.CallFailed(f"cannot translate the request: {type(exc).__name__}: {exc}", None,
                                          error_class="BadRequestError", attempts=[])
            self._later(self._settle_failed, row, failed, time.time())
            return error_response(protocol, 400, providers.scrub(failed.message, cfg))
        group, model, model_id = providers.served_by(resp, cfg, tier)
        out = Outcome(protocol, wants_usage=inc.wants_usage)
        if not inc.stream:
            out.feed_response(resp)
            served = Served(group, model, model_id, providers.pop_attempts(cfg, call_id))
            data = providers.openai_to_anthropic(resp, mapping) if protocol == "anthropic" else resp.model_dump()
            self._later(self._settle_ok, row, inc, served, out, time.time())
            self._forget_later(call_id)
            self._remember(inc, group, sticky_ok)
            return JSONResponse(data)
        stream_model = (model or cfg.primary_model(tier)).split("/", 1)[-1]
        return StreamingResponse(self._router_stream(inc, resp, row, out, tier, call_id, mapping, stream_model, sticky_ok),
                                 media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _router_stream(self, inc: Incoming, resp, row, out: Outcome, tier: str, call_id: str,
                             mapping: dict[str, str], stream_model: str, sticky_ok: bool) -> AsyncIterator[bytes]:
        cfg = self.cfg
        finished = False
        try:
            if inc.protocol == "anthropic":
                async for event in providers.anthropic_sse(_Tap(resp, out), stream_model, mapping):
                    yield event if isinstance(event, bytes) else str(event).encode()
            else:
                async for chunk in resp:
                    if out.feed_chunk(chunk):
                        yield b"data: " + json.dumps(chunk.model_dump(exclude_none=True), ensure_ascii=False).encode() + b"\n\n"
                yield b"data: [DONE]\n\n"
            finished = True
        except Exception as exc:  # noqa: BLE001 - the provider failed mid-stream
            failed = providers.raw_failure(cfg, tier, call_id, exc, partial_text="".join(out.text))
            self._later(self._settle_failed, row, failed, time.time())
            finished = None
            yield error_event(inc.protocol, 502, failed.message)
        finally:
            self._forget_later(call_id)
            if finished:
                group, model, model_id = providers.served_by(resp, cfg, tier)
                served = Served(group, model, model_id, providers.pop_attempts(cfg, call_id))
                self._later(self._settle_ok, row, inc, served, out, time.time())
                self._remember(inc, group, sticky_ok)
            elif finished is False:
                group, model, model_id = providers.served_by(resp, cfg, tier)
                providers.pop_attempts(cfg, call_id)
                self._later(self._settle_interrupted, row, inc, Served(group, model, model_id, []), out, time.time())

    def _forget_later(self, call_id: str) -> None:
        """litellm may log a failed attempt after the call returned (its async logging): drop whatever
        is left for this call a little later, so a long-running gateway does not accumulate them."""
        asyncio.get_running_loop().call_later(30, providers.pop_attempts, self.cfg, call_id)

    def _failure_response(self, protocol: str, exc: providers.CallFailed) -> JSONResponse:
        classes = [a.error_class for a in exc.attempts] or [exc.error_class]
        if all(c == "RateLimitError" for c in classes):
            return error_response(protocol, 429, exc.message)
        if exc.error_class in ("BadRequestError", "ContextWindowExceededError") or getattr(exc, "status_code", None) in CLIENT_ERRORS:
            return error_response(protocol, 400, exc.message)
        return error_response(protocol, 502, exc.message)

    # -- other endpoints ----------------------------------------------------------------------------------
    def models(self, request: Request) -> JSONResponse:
        cfg = self.cfg
        entries = [("auto", "routed by tier: classifier, scenario rules, stickiness")]
        entries += [(t, cfg.primary_model(t)) for t in cfg.routing.tiers]
        if request.headers.get("anthropic-version"):
            data = [{"type": "model", "id": name, "display_name": f"{name} ({what})", "created_at": "2025-01-01T00:00:00Z"}
                    for name, what in entries]
            return JSONResponse({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "tier", "description": what} for name, what in entries]})

    async def count_tokens(self, request: Request) -> Response:
        from tiercli import tokens

        try:
            body = json.loads(await request.body())
            if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
                raise ValueError("messages must be a list")
        except (ValueError, UnicodeDecodeError) as exc:
            return error_response("anthropic", 400, f"invalid JSON body: {exc}")
        model = str(body.get("model") or "")
        if model in self.cfg.routing.tiers or not model or model == "auto":
            model = self.cfg.primary_model(model if model in self.cfg.routing.tiers else self.cfg.routing.default_tier)
        model = model.removeprefix("offline/")
        flat = flatten("anthropic", body)
        tools = json.dumps(body.get("tools"), ensure_ascii=False) if body.get("tools") else ""
        count = await asyncio.to_thread(lambda: tokens.count_messages(flat, model) + tokens.count(tools, model))
        return JSONResponse({"input_tokens": count})


def deployment_key(d: Deployment) -> str | None:
    """The deployment's API key from the config (an os.environ/ reference, a literal, or the
    provider's usual variable)."""
    key = d.litellm_params.get("api_key")
    if isinstance(key, str) and (m := ENV_REF.match(key)):
        return os.environ.get(m.group(1))
    if key:
        return str(key)
    var = PROVIDER_KEY_VARS.get(d.provider())
    return os.environ.get(var) if var else None


def _upstream_message(data: bytes) -> str | None:
    try:
        obj = json.loads(data)
    except ValueError:
        return data[:300].decode("utf-8", "replace") or None
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)[:300]
    return str(err or obj)[:300]


def _error_class(status: int, message: str) -> str:
    if status == 400 and ("too long" in message or "context length" in message or "context_length" in message):
        return "ContextWindowExceededError"
    return ERROR_CLASS_OF_STATUS.get(status, "InternalServerError" if status >= 500 else "APIError")


def _failure_summary(tier: str, attempts: list[providers.Attempt]) -> str:
    if not attempts:
        return f"{tier} call failed"
    if len(attempts) == 1:
        return f"{tier} call failed: {attempts[0].error_class}: {attempts[0].message}"
    tried = ", ".join(f"{a.group} {a.error_class}" for a in attempts)
    return f"{tier} call failed on every tier tried ({tried}): {attempts[-1].message}"


def _is_hidden(event: bytes, drop_usage: bool, events: list[bytes]) -> bool:
    """Keep `event` for the ledger; True when the client must not see it (an OpenAI usage-only chunk
    the client did not ask for)."""
    events.append(event)
    if not drop_usage or b'"usage"' not in event:
        return False
    data = next((line[5:] for line in event.split(b"\n") if line.startswith(b"data:")), b"")
    try:
        obj = json.loads(data)
    except ValueError:
        return False
    return isinstance(obj, dict) and not obj.get("choices") and bool(obj.get("usage"))


def _without_cache_control(messages: list[Any]) -> list[Any]:
    """Anthropic cache markers removed (OpenAI-compatible providers forward them verbatim or reject them)."""
    out = []
    for m in messages:
        if isinstance(m, dict) and isinstance(m.get("content"), list):
            m = {**m, "content": [{k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b
                                  for b in m["content"]]}
        if isinstance(m, dict) and "cache_control" in m:
            m = {k: v for k, v in m.items() if k != "cache_control"}
        out.append(m)
    return out


# -- the ASGI app ------------------------------------------------------------------------------------------
class _TokenGate:
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
    app.add_middleware(_TokenGate, gateway=gateway)
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
