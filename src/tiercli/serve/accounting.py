"""What a relayed call produced: text, tool calls, usage and errors, read from either protocol's
JSON or SSE (passthrough) or from litellm's objects (router path), for the call's settlement."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from tiercli import providers
from tiercli.pricing import Usage

_decode = json.JSONDecoder().decode
_NOTHING_TO_READ = frozenset({b"ping", b"content_block_stop", b"message_stop"})


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
        """Read one SSE event; False: drop it (an OpenAI usage chunk the client did not ask for). The
        relay calls this for every event as it passes, so it finds the lines without splitting the
        event and parses only events that carry text, tool calls, usage or an error."""
        name = None
        if event.startswith(b"event:"):
            end = event.find(b"\n")
            name = event[6:end if end >= 0 else len(event)].strip()
            if name in _NOTHING_TO_READ:
                return True
        at = event.rfind(b"\ndata:") + 1  # the last data line (a JSON payload holds no raw newline)
        if at == 0 and not event.startswith(b"data:"):
            return True
        end = event.find(b"\n", at)
        data = event[at + 5:end if end >= 0 else len(event)].strip()
        if not data or data == b"[DONE]":
            return True
        try:
            obj = _decode(data.decode("utf-8"))  # str: json.loads would sniff the bytes' encoding first
            if not isinstance(obj, dict):
                return True
            if self.protocol == "anthropic":
                self.feed_anthropic(obj)
                return True
            return self.feed_openai(obj)
        except (ValueError, AttributeError, TypeError):  # not JSON, or fields of unexpected types: not read
            return True

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
        content = getattr(message, "content", None)
        if content:
            self.text.append(content)
        for call in getattr(message, "tool_calls", None) or []:
            self.tool_calls.append(getattr(getattr(call, "function", None), "name", None) or "?")
        self.finish = getattr(choice, "finish_reason", None)
        self.usage = providers.usage_of(getattr(resp, "usage", None))


class Tap:
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

    @classmethod
    def from_sent(cls, sent: Any) -> "Served":
        """The deployment a passthrough send reached (providers.passthrough.Sent with a response)."""
        assert sent.group is not None and sent.deployment is not None
        d = sent.deployment
        return cls(sent.group, d.model, d.model_info.get("id", f"{d.model_name}:{d.model}"), sent.attempts)
