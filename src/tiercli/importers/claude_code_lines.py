"""What one line of a Claude Code session log holds for the importer (importers.claude_code): the
fields read, decoded with msgspec into typed structs that name only them (tool results, file
contents and tool inputs are skipped by the decoder, never turned into Python objects), and the
checks that make a line malformed (`_Bad`)."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Annotated, Any, Optional, Union

import msgspec

from tiercli.importers.common import MAX_TOKENS


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


# a token count: an int in [0, 2**53) (not a bool, not a float), as common.count judges one; the
# decoder checks it, so a wrong count fails the usage's decode and the line is malformed
_Count = Annotated[int, msgspec.Meta(ge=0, lt=MAX_TOKENS)]


class _CacheCreation(msgspec.Struct):
    ephemeral_1h_input_tokens: Optional[_Count] = None
    ephemeral_5m_input_tokens: Optional[_Count] = None


class _Usage(msgspec.Struct):
    """The counts we read off message.usage (server_tool_use, service_tier, ... are skipped)."""

    input_tokens: Optional[_Count] = None
    output_tokens: Optional[_Count] = None
    cache_read_input_tokens: Optional[_Count] = None
    cache_creation_input_tokens: Optional[_Count] = None
    cache_creation: Optional[_CacheCreation] = None


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
    except msgspec.MsgspecError:  # not an object (null, a string, ...), or a count that is not one
        raise _Bad("message.usage") from None
    inp, out = raw.input_tokens, raw.output_tokens
    if inp is None or out is None:
        raise _Bad("usage counts missing")
    read = raw.cache_read_input_tokens or 0
    creation = raw.cache_creation
    w1h = w5m = 0
    if creation is not None:
        w1h = creation.ephemeral_1h_input_tokens or 0
        w5m = creation.ephemeral_5m_input_tokens or 0
    write = raw.cache_creation_input_tokens
    if write is None:
        write = w5m + w1h
    if w1h > write:
        raise _Bad("1h cache writes exceed cache writes")
    return inp, read, write, w1h, out
