"""litellm's (OpenAI-shaped) stream chunks -> Anthropic Messages SSE events, on the gateway's hot path.

litellm still makes the provider call (its Router, fallbacks and retries); only the translation of
each chunk for an Anthropic client is done here. litellm's own streaming adapter cost ~50 ms per
60-event stream here (issue 17's profile); these events are small and documented (Anthropic's
streaming reference): message_start, content_block_start/delta/stop per text or tool_use block,
message_delta with stop_reason and usage, message_stop.
"""

from __future__ import annotations

import json
import uuid
from typing import Any, AsyncIterator

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "function_call": "tool_use",
                "content_filter": "refusal"}


def _event(kind: str, data: dict[str, Any]) -> bytes:
    return f"event: {kind}\ndata: {json.dumps({'type': kind, **data}, ensure_ascii=False)}\n\n".encode()


class Translator:
    """One stream's state: which block is open, the tool calls seen, the usage."""

    def __init__(self, model: str, tool_name_mapping: dict[str, str] | None = None):
        self.model = model
        self.names = tool_name_mapping or {}
        self.started = False
        self.block: int | None = None  # the open content block's index
        self.kind: str | None = None  # "text" | "tool_use"
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
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self._usage(usage)
        for choice in getattr(chunk, "choices", None) or []:
            delta = getattr(choice, "delta", None)
            text = getattr(delta, "content", None)
            if text:
                if self.kind != "text":
                    out += self._open("text", {"type": "text", "text": ""})
                out += _event("content_block_delta", {"index": self.block, "delta": {"type": "text_delta", "text": text}})
            for call in getattr(delta, "tool_calls", None) or []:
                out += self._tool(call)
            reason = getattr(choice, "finish_reason", None)
            if reason:
                self.stop = STOP_REASONS.get(reason, "end_turn")
        return out

    def _tool(self, call: Any) -> bytes:
        out = b""
        index = getattr(call, "index", None) or 0
        fn = getattr(call, "function", None)
        if index not in self.tools:
            name = getattr(fn, "name", None) or ""
            out += self._open("tool_use", {"type": "tool_use", "id": getattr(call, "id", None) or f"toolu_{uuid.uuid4().hex[:20]}",
                                           "name": self.names.get(name, name), "input": {}})
            self.tools[index] = self.block  # type: ignore[assignment]
        arguments = getattr(fn, "arguments", None)
        if arguments and self.block == self.tools[index]:
            out += _event("content_block_delta", {"index": self.block,
                                                  "delta": {"type": "input_json_delta", "partial_json": arguments}})
        return out

    def _usage(self, usage: Any) -> None:
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        read = int(getattr(usage, "cache_read_input_tokens", 0) or 0)
        write = int(getattr(usage, "cache_creation_input_tokens", 0) or 0)
        details = getattr(usage, "prompt_tokens_details", None)
        if not read and details is not None:
            read = int(getattr(details, "cached_tokens", 0) or 0)
        self.usage = {"input_tokens": max(prompt - read - write, 0), "output_tokens": int(getattr(usage, "completion_tokens", 0) or 0)}
        if read:
            self.usage["cache_read_input_tokens"] = read
        if write:
            self.usage["cache_creation_input_tokens"] = write

    def end(self) -> bytes:
        out = (b"" if self.started else self._start()) + self._close()
        out += _event("message_delta", {"delta": {"stop_reason": self.stop or "end_turn", "stop_sequence": None},
                                        "usage": self.usage})
        return out + _event("message_stop", {})


async def events(stream: AsyncIterator[Any], model: str, tool_name_mapping: dict[str, str] | None = None) -> AsyncIterator[bytes]:
    """The Anthropic SSE body for a litellm chunk stream; the last event is yielded separately so the
    caller can hold it back until the call is settled."""
    t = Translator(model, tool_name_mapping)
    async for chunk in stream:
        out = t.chunk(chunk)
        if out:
            yield out
    yield t.end()
