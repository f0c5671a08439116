"""The gateway's wire formats: reading a request of either protocol, and answering in it.

OpenAI chat (`/v1/chat/completions`) and Anthropic messages (`/v1/messages`): the request's text for
routing and token counts, the session, the agent's hints (thinking, web search), and every error and
plain answer in the caller's own shape. A request that is malformed in a way that would fail later
(wrong types, lone surrogates, nesting too deep) is refused here, before anything is recorded.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any, AsyncIterator

from starlette.responses import JSONResponse, Response, StreamingResponse

from tiercli.pricing import Usage

MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_JSON_DEPTH = 64
SESSION_MAX_CHARS = 128
ANTHROPIC_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 402: "billing_error",
                         403: "permission_error", 404: "not_found_error", 413: "request_too_large",
                         415: "invalid_request_error", 429: "rate_limit_error", 500: "api_error", 502: "api_error",
                         503: "overloaded_error", 504: "api_error", 529: "overloaded_error"}


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
    client: str = ""  # who is asking, from User-Agent (claude-cli, codex, aider, ...), for the console
    adapted: list[str] | None = None  # the router path's changes to the request for its target
    task: Any = None  # agent.AgentDecision: which task this request is a step of
    tools_text: str | None = None  # the tools as JSON (billed input the messages do not show); None: not read yet
    router_request: Any = None  # (tier, (kwargs, mapping)): the request as litellm's kwargs, built once per tier


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
    Anthropic metadata.user_id (its `_session_<uuid>` part when it has one), else OpenAI `user` or
    metadata.user_id, else `conv-` and a hash of the conversation's first user message (every request
    of one conversation repeats it), so every client's calls have a session."""
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
        value = body.get("user") or ((body.get("metadata") or {}).get("user_id") if isinstance(body.get("metadata"), dict) else None)
    if not value:  # a client that names no session (aider): the conversation's first user message is stable
        first = next((m for m in body.get("messages") or [] if isinstance(m, dict) and m.get("role") == "user"), None)
        if first is not None:
            text = _content_text(first.get("content"))
            if text:
                digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
                return f"conv-{digest}"
    return str(value)[:SESSION_MAX_CHARS] if value else None


THINKING_MIN_BUDGET = 10_000  # tokens: a thinking budget at least this large is a request for hard reasoning


def wants_thinking(protocol: str, body: dict[str, Any]) -> bool:
    """Deep thinking asked for explicitly: an Anthropic `thinking: {type: enabled}` with a budget of
    at least THINKING_MIN_BUDGET tokens, or OpenAI `reasoning_effort: high`. Claude Code sends
    `thinking: {type: adaptive}` on every main call: that is the client's default, not a request, and
    counting it sent every Claude Code call to the thinking tier."""
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") == "enabled":
        budget = thinking.get("budget_tokens")
        return isinstance(budget, int) and budget >= THINKING_MIN_BUDGET
    effort = body.get("reasoning_effort")
    if protocol == "openai" and isinstance(effort, str):
        return effort in ("high", "xhigh")
    return False


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


_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")
SAFE_NESTING = 500  # brackets: fewer than this many cannot nest deep enough to fail a later json.dumps


def _may_hold_surrogate_or_deep_nesting(raw: bytes) -> bool:
    """Whether the parsed body can hold a lone surrogate or nest deeper than a later encoding can
    walk. Valid UTF-8 cannot encode a surrogate, so one only comes from a \\uD800-\\uDFFF escape; and
    the nesting depth is at most the number of opening brackets."""
    if _SURROGATE_ESCAPE.search(raw):  # (a plain `b"\\u" in raw` first is slower: JSON is full of \\n)
        return True
    return len(raw) >= SAFE_NESTING and raw.count(b"[") + raw.count(b"{") >= SAFE_NESTING


def parse_body(raw: bytes) -> dict[str, Any]:
    """The request's JSON object. Raises BadRequest for anything that would fail later: invalid JSON
    or UTF-8, nesting deeper than Python can walk, or text that cannot be sent on (lone surrogates)."""
    try:
        body = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadRequest(f"invalid JSON body: {exc}") from None
    if not isinstance(body, dict):
        raise BadRequest("invalid JSON body: the body must be a JSON object")
    if not _may_hold_surrogate_or_deep_nesting(raw):
        return body  # the re-encoding below would find nothing (2 ms for a 300 KB agent request)
    try:
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except RecursionError:
        raise BadRequest(f"invalid JSON body: nested deeper than {MAX_JSON_DEPTH} levels") from None
    except UnicodeEncodeError:
        raise BadRequest("invalid JSON body: a string holds a lone UTF-16 surrogate (\\ud800-\\udfff), which is "
                         "not text; send valid UTF-8") from None
    return body


_TYPED_FIELDS: dict[str, tuple[type, ...]] = {
    "tools": (list,), "stream_options": (dict,), "metadata": (dict,), "max_tokens": (int,),
    "max_completion_tokens": (int,), "n": (int,), "stream": (bool,), "temperature": (int, float),
    "tool_choice": (str, dict), "thinking": (dict,), "system": (str, list),
}


def check_fields(body: dict[str, Any]) -> None:
    """The documented types of the fields tier reads or passes on (a 400 here, not a 500 later)."""
    for name, types in _TYPED_FIELDS.items():
        value = body.get(name)
        if value is not None and (not isinstance(value, types) or (isinstance(value, bool) and bool not in types)):
            wanted = " or ".join("number" if t is float else {"list": "array", "dict": "object", "str": "string",
                                                               "int": "integer", "bool": "boolean"}[t.__name__]
                                 for t in types if t is not int or float not in types)
            raise BadRequest(f"{name} must be {wanted}")
    for name in ("max_tokens", "max_completion_tokens", "n"):
        if isinstance(body.get(name), int) and body[name] < 1:
            raise BadRequest(f"{name} must be at least 1")
    for i, m in enumerate(body.get("messages") or []):
        if not isinstance(m, dict):
            raise BadRequest(f"messages[{i}] must be an object")
        if not isinstance(m.get("content"), (str, list, type(None))):
            raise BadRequest(f"messages[{i}].content must be a string or an array")
        if m.get("tool_calls") is not None and not isinstance(m["tool_calls"], list):
            raise BadRequest(f"messages[{i}].tool_calls must be an array")
        for j, block in enumerate(m["content"] if isinstance(m.get("content"), list) else []):
            if not isinstance(block, (dict, str)):
                raise BadRequest(f"messages[{i}].content[{j}] must be an object")
    for i, tool in enumerate(body.get("tools") or []):
        if not isinstance(tool, dict):
            raise BadRequest(f"tools[{i}] must be an object")


def read_incoming(protocol: str, body: dict[str, Any], headers, token: str | None) -> Incoming:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise BadRequest("messages must be a non-empty list")
    check_fields(body)
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise BadRequest("model is required (a tier name, `auto`, or any model name to let tier route)")
    flat = flatten(protocol, body)
    tools = json.dumps(body["tools"], ensure_ascii=False) if body.get("tools") else ""  # encoded once per request
    chars = sum(len(m["content"]) for m in flat) + len(tools)
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
        client=client_name(headers.get("user-agent") or ""), tools_text=tools,
    )


def client_name(user_agent: str) -> str:
    """A short name for the console line: the User-Agent's first product token."""
    token = user_agent.split(" ", 1)[0].split("/", 1)[0].strip()
    return token[:24] or "client"



class BadRequest(Exception):
    """The request is malformed: a 400 in the caller's protocol, nothing recorded."""


# -- answers in the caller's protocol ------------------------------------------------------------------
def error_body(protocol: str, status: int, message: str, etype: str | None = None,
               code: str | None = None) -> dict[str, Any]:
    if protocol == "anthropic":
        return {"type": "error", "error": {"type": etype or ANTHROPIC_ERROR_TYPES.get(status, "api_error"), "message": message}}
    etype = etype or ("invalid_request_error" if status < 500 else "server_error")
    code = code or {401: "invalid_api_key", 429: "rate_limit_exceeded", 402: "budget_exceeded"}.get(status)
    param = "messages" if code == "context_length_exceeded" else None
    return {"error": {"message": message, "type": etype, "param": param, "code": code}}


def error_response(protocol: str, status: int, message: str, etype: str | None = None,
                   headers: dict[str, str] | None = None, code: str | None = None) -> JSONResponse:
    return JSONResponse(error_body(protocol, status, message, etype, code), status_code=status, headers=headers)


def body_chunks(resp: Any) -> AsyncIterator[bytes]:
    """An upstream response's body as it arrives: the raw bytes when it has no content encoding (one
    generator layer and a decode call less per chunk than httpx's aiter_bytes, the same bytes), else
    decoded by httpx."""
    encoding = resp.headers.get("content-encoding")
    if not encoding or encoding.strip().lower() == "identity":
        return resp.aiter_raw()
    return resp.aiter_bytes()


async def sse_event_batches(chunks: AsyncIterator[bytes]) -> AsyncIterator[list[bytes]]:
    """An upstream SSE body as batches of whole events (CRLF folded to LF, split on blank lines),
    each batch as soon as a chunk completes one; what is left at the end comes last, as a batch of
    one, when it is not blank. The passthrough relay and the translated passthrough both read this."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
        if b"\n\n" not in buffer:
            continue
        *events, buffer = buffer.split(b"\n\n")
        yield events
    if buffer.strip():
        yield [buffer]


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

