"""wire.parse_body skips its re-encoding check only when the raw body cannot hold what the check
finds (a lone surrogate escape, nesting deep enough to fail a later encoding)."""

from __future__ import annotations

import json

import pytest

from tiercli.serve.wire import SAFE_NESTING, BadRequest, _may_hold_surrogate_or_deep_nesting, parse_body


def _agent_body(text: str, messages: int = 40) -> dict:
    return {"model": "auto", "messages": [{"role": "user" if i % 2 == 0 else "assistant",
                                           "content": [{"type": "text", "text": text}]} for i in range(messages)]}


def test_a_large_plain_body_needs_no_re_encoding_and_parses_to_the_same_object():
    body = _agent_body("def f(x):\n    return x + 1  # café\n" * 50)
    for ensure_ascii in (False, True):  # \u00e9 escapes are no surrogates
        raw = json.dumps(body, ensure_ascii=ensure_ascii).encode()
        assert not _may_hold_surrogate_or_deep_nesting(raw)
        assert parse_body(raw) == body


@pytest.mark.parametrize("escape", ["\\ud800", "\\uDFFF", "\\udc00"])
def test_a_lone_surrogate_escape_is_still_refused(escape):
    raw = ('{"model": "auto", "messages": [{"role": "user", "content": "cut ' + escape + ' emoji"}]}').encode()
    assert _may_hold_surrogate_or_deep_nesting(raw)
    with pytest.raises(BadRequest, match="lone UTF-16 surrogate"):
        parse_body(raw)


def test_a_surrogate_pair_escape_is_checked_and_accepted():
    raw = b'{"model": "auto", "messages": [{"role": "user", "content": "smile \\ud83d\\ude00"}]}'
    assert _may_hold_surrogate_or_deep_nesting(raw)
    assert parse_body(raw)["messages"][0]["content"] == "smile \U0001f600"


def test_many_brackets_keep_the_re_encoding_check():
    body = _agent_body("x", messages=SAFE_NESTING // 3 + 1)  # 3 brackets per message
    raw = json.dumps(body).encode()
    assert _may_hold_surrogate_or_deep_nesting(raw)
    assert parse_body(raw) == body
    deep = b'{"model": "auto", "messages": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    with pytest.raises(BadRequest, match="nested deeper"):
        parse_body(deep)


def test_an_upstream_body_is_read_raw_unless_it_has_a_content_encoding():
    import asyncio
    import gzip

    import httpx

    from tiercli.serve.wire import body_chunks

    async def read(resp: httpx.Response) -> bytes:
        return b"".join([c async for c in body_chunks(resp)])

    events = b"data: {\"a\": 1}\n\ndata: [DONE]\n\n"
    for headers, content in (({}, events), ({"content-encoding": "identity"}, events),
                             ({"content-encoding": "gzip"}, gzip.compress(events))):
        resp = httpx.Response(200, headers=headers, stream=httpx.ByteStream(content))
        assert asyncio.run(read(resp)) == events, headers
