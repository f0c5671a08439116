"""OpenAI-shaped chat answers -> Anthropic Messages answers, on the gateway's hot path.

Two callers: the translated passthrough (serve/translated.py: an Anthropic client on an
OpenAI-compatible chain, the upstream's SSE parsed as dicts) and litellm's Router path (its chunk
objects), so every accessor takes either. litellm's own streaming adapter cost ~50 ms per 60-event
stream here (issue 17's profile); these events are small and documented (Anthropic's streaming
reference): message_start, content_block_start/delta/stop per thinking, text or tool_use block,
message_delta with stop_reason and usage, message_stop. `message_from_openai` does the same for a
whole (non-streamed) answer.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, AsyncIterator

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def _get(obj: Any, name: str) -> Any:
    """A field of a wire dict or of a litellm object alike."""
    return obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data}, ensure_ascii=False)}\n\n".encode()


_encode_text = json.JSONEncoder(ensure_ascii=False).encode


def _delta(index: int, kind: str, field: str, text: str) -> bytes:
    """A content_block_delta event, byte for byte what _event gives, with only the text encoded (the
    hot path: one event per streamed piece)."""
    return (f'event: content_block_delta\ndata: {{"type": "content_block_delta", "index": {index}, '
            f'"delta": {{"type": "{kind}", "{field}": {_encode_text(text)}}}}}\n\n').encode()


class Translator:
    """One stream's state: which block is open, the tool calls seen, the usage."""

    def __init__(self, model: str, tool_name_mapping: dict[str, str] | None = None):
        self.model = model
        self.names = tool_name_mapping or {}
        self.started = False
        self.block: int | None = None  # the open content block's index
        self.kind: str | None = None  # "thinking" | "text" | "tool_use"
        self.count = 0  # blocks opened so far
        self.tools: dict[int, int] = {}  # chunk tool-call index -> block index
        self.stop: str | None = None
        self.usage: dict[str, int] = {"input_tokens": 0, "output_tokens": 0}

    def _start(self) -> bytes:
        self.started = True
        message: dict[str, Any] = {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": self.model,
                   "content": [], "stop_reason": None, "stop_sequence": None,
                   "usage": {"input_tokens": 0, "output_tokens": 0}}
        return _event("message_start", {"message": message})

    def _close(self) -> bytes:
        if self.block is None:
            return b""
        out = _event("content_block_stop", {"index": self.block})
        self.block, self.kind = None, None
        return out

    def _open(self, kind: str, block: dict[str, Any]) -> bytes:
        out = self._close()
        self.block, self.kind = self.count, kind
        self.count += 1
        return out + _event("content_block_start", {"index": self.block, "content_block": block})

    def chunk(self, chunk: Any) -> bytes:
        out = b"" if self.started else self._start()
        usage = _get(chunk, "usage")
        if usage:
            self._usage(usage)
        for choice in _get(chunk, "choices") or []:
            delta = _get(choice, "delta") or {}
            thought = _get(delta, "reasoning_content")
            if thought:
                if self.kind != "thinking":
                    out += self._open("thinking", {"type": "thinking", "thinking": "", "signature": ""})
                out += _delta(self.block, "thinking_delta", "thinking", str(thought))  # type: ignore[arg-type]
            text = _get(delta, "content")
            if text:
                if self.kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out += _delta(self.block, "text_delta", "text", str(text))  # type: ignore[arg-type]
            for call in _get(delta, "tool_calls") or []:
                out += self._tool(call)
            reason = _get(choice, "finish_reason")
            if reason:
                self.stop = STOP_REASONS.get(reason, "end_turn")
        return out

    def _tool(self, call: Any) -> bytes:
        out = b""
        index = _get(call, "index") or 0
        fn = _get(call, "function") or {}
        if index not in self.tools:
            name = _get(fn, "name") or ""
            out += self._open("tool_use", {"type": "tool_use", "id": _get(call, "id") or f"toolu_{uuid.uuid4().hex[:20]}",
                                           "name": self.names.get(name, name), "input": {}})
            self.tools[index] = self.block  # type: ignore[assignment]
        arguments = _get(fn, "arguments")
        if arguments and self.block == self.tools[index]:
            out += _event("content_block_delta", {"index": self.block,
                                                  "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return out

    def _usage(self, usage: Any) -> None:
        self.usage = anthropic_usage(usage)

    def end(self) -> bytes:
        out = (b"" if self.started else self._start()) + self._close()
        out += _event("message_delta", {"delta": {"stop_reason": self.stop or "end_turn", "stop_sequence": None},
                                        "usage": self.usage})
        return out + _event("message_stop", {})


def anthropic_usage(usage: Any) -> dict[str, int]:
    """OpenAI usage (prompt tokens include cached ones) -> Anthropic's (input_tokens excludes them)."""
    prompt = int(_get(usage, "prompt_tokens") or 0)
    read = int(_get(usage, "cache_read_input_tokens") or 0)
    write = int(_get(usage, "cache_creation_input_tokens") or 0)
    details = _get(usage, "prompt_tokens_details")
    if not read and details:
        read = int(_get(details, "cached_tokens") or 0)
    out = {"input_tokens": max(prompt - read - write, 0), "output_tokens": int(_get(usage, "completion_tokens") or 0)}
    if read:
        out["cache_read_input_tokens"] = read
    if write:
        out["cache_creation_input_tokens"] = write
    return out


def message_from_openai(obj: dict[str, Any], model: str, tool_name_mapping: dict[str, str] | None = None) -> dict[str, Any]:
    """A whole OpenAI chat completion (wire JSON) -> an Anthropic Messages response."""
    names = tool_name_mapping or {}
    choice = (obj.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    content: list[dict[str, Any]] = []
    if message.get("reasoning_content"):
        content.append({"type": "thinking", "thinking": message["reasoning_content"], "signature": ""})
    if message.get("content"):
        content.append({"type": "text", "text": message["content"]})
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        try:
            args = json.loads(fn.get("arguments") or "{}")
        except ValueError:
            args = {}
        name = fn.get("name") or ""
        content.append({"type": "tool_use", "id": call.get("id") or f"toolu_{uuid.uuid4().hex[:20]}",
                        "name": names.get(name, name), "input": args if isinstance(args, dict) else {}})
    return {"id": f"msg_{uuid.uuid4().hex[:24]}", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": STOP_REASONS.get(choice.get("finish_reason") or "stop", "end_turn"),
            "stop_sequence": None, "usage": anthropic_usage(obj.get("usage") or {})}


async def events(stream: AsyncIterator[Any], model: str, tool_name_mapping: dict[str, str] | None = None) -> AsyncIterator[bytes]:
    """The Anthropic SSE body for a litellm chunk stream; the last event is yielded separately so the
    caller can hold it back until the call is settled."""
    t = Translator(model, tool_name_mapping)
    async for chunk in stream:
        out = t.chunk(chunk)
        if out:
            yield out
    yield t.end()
