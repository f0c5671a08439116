"""What one line of a Claude Code session log holds for the importer (importers.claude_code): the
fields read, decoded with msgspec into typed structs that name only them (tool results, file
contents and tool inputs are skipped by the decoder, never turned into Python objects), and the
checks that make a line malformed (`_Bad`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any, Optional, Union

import msgspec

from tiercli.importers.common import count


# -- the fields we read (everything else on a line is skipped by the decoder) ---------------------
class _Block(msgspec.Struct):
    type: Any = None
    name: Any = None
    id: Any = None
    text: Any = None
    input: msgspec.Raw = msgspec.Raw(b"null")


class _Message(msgspec.Struct):
    id: Any = None
    model: Any = None
    content: Union[str, list[_Block], None] = None
    usage: msgspec.Raw = msgspec.Raw(b"null")  # decoded only on assistant lines (_usage)


class _Usage(msgspec.Struct):
    """The counts we read off message.usage (server_tool_use, service_tier, ... are skipped);
    typed Any so that `count` judges each value exactly as before."""

    input_tokens: Any = None
    output_tokens: Any = None
    cache_read_input_tokens: Any = None
    cache_creation_input_tokens: Any = None
    cache_creation: Any = None


class _Line(msgspec.Struct):
    type: Any = None
    uuid: Any = None
    parentUuid: Any = None
    sessionId: Any = None
    timestamp: Any = None
    requestId: Any = None
    isSidechain: Any = None
    isMeta: Any = None
    cwd: Any = None
    version: Any = None
    agentId: Any = None
    costUSD: Any = None
    message: Optional[_Message] = None


_DECODER = msgspec.json.Decoder(_Line)
_USAGE = msgspec.json.Decoder(_Usage).decode
_encode = msgspec.json.Encoder().encode


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _Bad(Exception):
    """The line is not what it claims to be: counted as malformed."""


def _epoch(value: Any) -> float:
    if not isinstance(value, str):
        raise _Bad("timestamp")
    try:
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise _Bad("timestamp") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=timezone.utc)
    return dt.timestamp()


def _decode_slowly(raw: bytes) -> _Line | None:
    """The stdlib decoder takes lone surrogates; re-encoding turns them into '?' (text SQLite can
    store), so every string the parser sees is valid UTF-8 and needs no further check."""
    try:
        clean = json.dumps(json.loads(raw.decode("utf-8")), ensure_ascii=False).encode("utf-8", "replace")
        return _DECODER.decode(clean)
    except (msgspec.MsgspecError, RecursionError, ValueError):
        return None


def _user_text(content: Any) -> str | None:
    """The text of a user message, or None when it is a tool_result (or has no text)."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return None
    parts: list[str] = []
    for block in content:
        if block.type == "tool_result":
            return None
        if block.type == "text" and isinstance(block.text, str):
            parts.append(block.text)
    return "\n\n".join(parts) if parts else None


def _usage(data: msgspec.Raw) -> tuple[int, int, int, int, int]:
    try:
        raw = _USAGE(data)
    except msgspec.MsgspecError:  # not an object (null, a string, ...)
        raise _Bad("message.usage") from None
    if raw.input_tokens is None or raw.output_tokens is None:
        raise _Bad("usage counts missing")
    try:
        inp = count(raw.input_tokens, "input")
        out = count(raw.output_tokens, "output")
        read = count(raw.cache_read_input_tokens, "cache read")
        w1h = w5m = 0
        creation = raw.cache_creation
        if creation is not None:
            if not isinstance(creation, dict):
                raise _Bad("usage.cache_creation")
            w1h = count(creation.get("ephemeral_1h_input_tokens"), "1h writes")
            w5m = count(creation.get("ephemeral_5m_input_tokens"), "5m writes")
        if raw.cache_creation_input_tokens is not None:
            write = count(raw.cache_creation_input_tokens, "cache writes")
        else:
            write = w5m + w1h
    except ValueError as exc:
        raise _Bad(str(exc)) from None
    if w1h > write:
        raise _Bad("1h cache writes exceed cache writes")
    return inp, read, write, w1h, out
