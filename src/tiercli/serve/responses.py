"""OpenAI's Responses API (`POST /v1/responses`, what current Codex speaks) on top of chat completions.

A Responses request is translated into an OpenAI chat request (instructions -> system, input items ->
messages, function tools -> chat tools), which the gateway routes, records and relays like any chat
request (passthrough to OpenAI deployments, litellm for the others); the chat answer, JSON or SSE,
is translated back into a Response object or the Responses event stream (response.created ...
output_text.delta ... function_call_arguments.delta ... response.completed with usage). The event
shapes follow OpenAI's API reference; the official `openai` SDK's `responses.create` parses them.
What chat cannot express (reasoning items, hosted tools such as web_search or local_shell) is left
out and listed in the row's meta.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any, AsyncIterable, AsyncIterator

from tiercli.serve.wire import BadRequest

PASSED_ON = ("temperature", "top_p", "user", "parallel_tool_calls", "metadata", "seed")


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text") or "") for p in content
                       if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text", "refusal"))
    return ""


def to_chat(body: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """(an OpenAI chat body, what was left out). Raises BadRequest for a malformed request."""
    left_out: list[str] = []
    messages: list[dict[str, Any]] = []
    if body.get("instructions") is not None:
        if not isinstance(body["instructions"], str):
            raise BadRequest("instructions must be a string")
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"type": "message", "role": "user", "content": items}]
    if not isinstance(items, list) or not items:
        raise BadRequest("input must be a string or a non-empty array of items")
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise BadRequest(f"input[{i}] must be an object")
        kind = item.get("type") or ("message" if "role" in item else None)
        if kind == "message":
            role = item.get("role")
            if role not in ("user", "assistant", "system", "developer"):
                raise BadRequest(f"input[{i}].role must be user, assistant, system or developer")
            messages.append({"role": "system" if role == "developer" else role, "content": _text(item.get("content"))})
        elif kind == "function_call":
            call = {"id": str(item.get("call_id") or item.get("id") or f"call_{i}"), "type": "function",
                    "function": {"name": str(item.get("name") or ""), "arguments": str(item.get("arguments") or "")}}
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant" and last.get("tool_calls") is not None:
                last["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append({"role": "tool", "tool_call_id": str(item.get("call_id") or ""),
                             "content": output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)})
        else:
            left_out.append(f"input item {kind!r}")
    if not any(m["role"] in ("user", "tool") for m in messages):
        raise BadRequest("input holds no user message")
    chat: dict[str, Any] = {"model": body.get("model"), "messages": messages, "stream": bool(body.get("stream"))}
    if chat["stream"]:
        chat["stream_options"] = {"include_usage": True}
    if isinstance(body.get("max_output_tokens"), int):
        chat["max_tokens"] = body["max_output_tokens"]
    for name in PASSED_ON:
        if body.get(name) is not None:
            chat[name] = body[name]
    tools = []
    for tool in body.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function" and tool.get("name"):
            fn = {k: tool[k] for k in ("name", "description", "parameters", "strict") if tool.get(k) is not None}
            tools.append({"type": "function", "function": fn})
        else:
            left_out.append(f"tool {tool.get('type') if isinstance(tool, dict) else tool!r}")
    if tools:
        chat["tools"] = tools
    choice = body.get("tool_choice")
    if isinstance(choice, str):
        chat["tool_choice"] = choice
    elif isinstance(choice, dict) and choice.get("type") == "function" and choice.get("name"):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    effort = (body.get("reasoning") or {}).get("effort") if isinstance(body.get("reasoning"), dict) else None
    if effort:
        chat["reasoning_effort"] = effort
    return chat, left_out


def _usage(u: dict[str, Any] | None) -> dict[str, Any] | None:
    if not u:
        return None
    cached = ((u.get("prompt_tokens_details") or {}).get("cached_tokens")) or 0
    reasoning = ((u.get("completion_tokens_details") or {}).get("reasoning_tokens")) or 0
    prompt, output = int(u.get("prompt_tokens") or 0), int(u.get("completion_tokens") or 0)
    return {"input_tokens": prompt, "input_tokens_details": {"cached_tokens": cached}, "output_tokens": output,
            "output_tokens_details": {"reasoning_tokens": reasoning}, "total_tokens": prompt + output}


def _response(rid: str, model: str, output: list[dict[str, Any]], usage: dict[str, Any] | None, status: str,
              request: dict[str, Any]) -> dict[str, Any]:
    return {"id": rid, "object": "response", "created_at": int(time.time()), "status": status, "model": model,
            "output": output, "usage": usage, "error": None, "incomplete_details": None,
            "instructions": request.get("instructions"), "parallel_tool_calls": request.get("parallel_tool_calls", True),
            "tool_choice": request.get("tool_choice", "auto"), "tools": request.get("tools") or [],
            "temperature": request.get("temperature"), "top_p": request.get("top_p"),
            "max_output_tokens": request.get("max_output_tokens"), "metadata": request.get("metadata") or {},
            "text": {"format": {"type": "text"}}, "reasoning": {"effort": None, "summary": None}}


def _message_item(text: str, status: str = "completed") -> dict[str, Any]:
    return {"type": "message", "id": f"msg_{uuid.uuid4().hex[:24]}", "status": status, "role": "assistant",
            "content": [{"type": "output_text", "text": text, "annotations": []}]}


def from_chat(chat: dict[str, Any], request: dict[str, Any]) -> dict[str, Any]:
    """A chat.completion object as a Response object."""
    choice = (chat.get("choices") or [{}])[0]
    message = choice.get("message") or {}
    output: list[dict[str, Any]] = []
    if message.get("content"):
        output.append(_message_item(str(message["content"])))
    for call in message.get("tool_calls") or []:
        fn = call.get("function") or {}
        output.append({"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:24]}", "call_id": call.get("id"),
                       "name": fn.get("name"), "arguments": fn.get("arguments") or "", "status": "completed"})
    status = "incomplete" if choice.get("finish_reason") == "length" else "completed"
    return _response(f"resp_{uuid.uuid4().hex[:24]}", str(chat.get("model") or request.get("model")), output,
                     _usage(chat.get("usage")), status, request)


class EventStream:
    """Chat completion SSE chunks in, Responses SSE events out."""

    def __init__(self, request: dict[str, Any]):
        self.request = request
        self.rid = f"resp_{uuid.uuid4().hex[:24]}"
        self.model = str(request.get("model") or "")
        self.seq = 0
        self.text: str | None = None  # None: no message item opened yet
        self.msg_id = f"msg_{uuid.uuid4().hex[:24]}"
        self.calls: dict[int, dict[str, Any]] = {}  # chat tool-call index -> item
        self.order: list[dict[str, Any]] = []  # output items in the order opened
        self.usage: dict[str, Any] | None = None
        self.finish: str | None = None

    def _event(self, kind: str, **data: Any) -> bytes:
        data = {"type": kind, "sequence_number": self.seq, **data}
        self.seq += 1
        return f"event: {kind}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n".encode()

    def start(self) -> bytes:
        base = _response(self.rid, self.model, [], None, "in_progress", self.request)
        return self._event("response.created", response=base) + self._event("response.in_progress", response=base)

    def chunk(self, obj: dict[str, Any]) -> bytes:
        out = b""
        if obj.get("model"):
            self.model = str(obj["model"])
        if obj.get("usage"):
            self.usage = _usage(obj["usage"])
        for choice in obj.get("choices") or []:
            delta = choice.get("delta") or {}
            if delta.get("content"):
                if self.text is None:
                    self.text = ""
                    item = {"type": "message", "id": self.msg_id, "status": "in_progress", "role": "assistant", "content": []}
                    self.order.append(item)
                    index = len(self.order) - 1
                    out += self._event("response.output_item.added", output_index=index, item=item)
                    out += self._event("response.content_part.added", item_id=self.msg_id, output_index=index,
                                       content_index=0, part={"type": "output_text", "text": "", "annotations": []})
                self.text += str(delta["content"])
                out += self._event("response.output_text.delta", item_id=self.msg_id, output_index=self._index(self.msg_id),
                                   content_index=0, delta=str(delta["content"]))
            for call in delta.get("tool_calls") or []:
                out += self._tool_delta(call)
            self.finish = choice.get("finish_reason") or self.finish
        return out

    def _index(self, item_id: str) -> int:
        return next(i for i, item in enumerate(self.order) if item["id"] == item_id)

    def _tool_delta(self, call: dict[str, Any]) -> bytes:
        out = b""
        index = int(call.get("index") or 0)
        fn = call.get("function") or {}
        item = self.calls.get(index)
        if item is None:
            item = {"type": "function_call", "id": f"fc_{uuid.uuid4().hex[:24]}", "call_id": call.get("id") or f"call_{index}",
                    "name": fn.get("name") or "", "arguments": "", "status": "in_progress"}
            self.calls[index] = item
            self.order.append(item)
            out += self._event("response.output_item.added", output_index=len(self.order) - 1, item=dict(item))
        if fn.get("arguments"):
            item["arguments"] += str(fn["arguments"])
            out += self._event("response.function_call_arguments.delta", item_id=item["id"],
                               output_index=self._index(item["id"]), delta=str(fn["arguments"]))
        return out

    def finish_events(self) -> bytes:
        out = b""
        output = []
        for index, item in enumerate(self.order):
            if item["type"] == "message":
                text = self.text or ""
                out += self._event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0, text=text)
                part = {"type": "output_text", "text": text, "annotations": []}
                out += self._event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0, part=part)
                done = {**item, "status": "completed", "content": [part]}
            else:
                out += self._event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                                   arguments=item["arguments"])
                done = {**item, "status": "completed"}
            out += self._event("response.output_item.done", output_index=index, item=done)
            output.append(done)
        status = "incomplete" if self.finish == "length" else "completed"
        final = _response(self.rid, self.model, output, self.usage, status, self.request)
        return out + self._event("response.completed" if status == "completed" else "response.incomplete", response=final)

    def failed(self, error: dict[str, Any]) -> bytes:
        final = _response(self.rid, self.model, [], self.usage, "failed", self.request)
        final["error"] = {"code": str(error.get("code") or error.get("type") or "server_error"),
                          "message": str(error.get("message") or "the call failed")}
        return self._event("response.failed", response=final)


async def translate_stream(chunks: AsyncIterable[str | bytes | memoryview], request: dict[str, Any]) -> AsyncIterator[bytes]:
    """The chat SSE body of the gateway's answer, as Responses events."""
    stream = EventStream(request)
    yield stream.start()
    buffer = b""
    failed = False
    try:
        async for chunk in chunks:
            buffer += chunk.encode() if isinstance(chunk, str) else bytes(chunk)
            *events, buffer = buffer.split(b"\n\n")
            for event in events:
                data = next((line[5:].strip() for line in event.split(b"\n") if line.startswith(b"data:")), b"")
                if not data or data == b"[DONE]":
                    continue
                try:
                    obj = json.loads(data)
                except ValueError:
                    continue
                if isinstance(obj, dict) and obj.get("error"):
                    failed = True
                    error = obj["error"] if isinstance(obj["error"], dict) else {"message": str(obj["error"])}
                    yield stream.failed(error)
                elif isinstance(obj, dict):
                    out = stream.chunk(obj)
                    if out:
                        yield out
        if not failed:
            yield stream.finish_events()
    finally:
        close = getattr(chunks, "aclose", None)
        if close is not None:
            await close()  # the gateway's relay settles the call in its own finally
