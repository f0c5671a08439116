"""The relay reads each SSE event once, as it passes (serve/accounting.Outcome.feed_event): what it
takes from real event shapes of both protocols, what it hides, and what it survives."""

from __future__ import annotations

import json

from tiercli.serve.accounting import Outcome


def _anthropic(kind: str, obj: dict) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(obj)}".encode()


def test_an_anthropic_stream_gives_text_tool_calls_usage_and_finish():
    out = Outcome("anthropic")
    events = [
        _anthropic("message_start", {"type": "message_start", "message": {"usage": {
            "input_tokens": 12, "cache_read_input_tokens": 3, "cache_creation_input_tokens": 4, "output_tokens": 1}}}),
        b"event: ping\ndata: {\"type\": \"ping\"}",
        _anthropic("content_block_delta", {"type": "content_block_delta", "index": 0,
                                           "delta": {"type": "text_delta", "text": "data: a \"quoted\" line\n"}}),
        _anthropic("content_block_start", {"type": "content_block_start", "index": 1,
                                           "content_block": {"type": "tool_use", "name": "Read"}}),
        _anthropic("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"},
                                     "usage": {"output_tokens": 9}}),
        _anthropic("message_stop", {"type": "message_stop"}),
    ]
    assert all(out.feed_event(e) for e in events)  # an Anthropic event is never hidden
    assert "".join(out.text) == "data: a \"quoted\" line\n"
    assert out.tool_calls == ["Read"]
    assert out.finish == "tool_use"
    assert out.usage is not None
    assert (out.usage.input_tokens, out.usage.cache_read_tokens, out.usage.cache_write_tokens,
            out.usage.output_tokens) == (12, 3, 4, 9)


def test_an_openai_usage_chunk_is_hidden_only_when_the_client_did_not_ask_for_it():
    usage_chunk = b'data: {"choices": [], "usage": {"prompt_tokens": 7, "completion_tokens": 2, "total_tokens": 9}}'
    text_chunk = b'data: {"choices": [{"index": 0, "delta": {"content": "hi"}, "finish_reason": "stop"}]}'
    for wants_usage in (False, True):
        out = Outcome("openai", wants_usage=wants_usage)
        assert out.feed_event(text_chunk) is True
        assert out.feed_event(usage_chunk) is wants_usage
        assert out.feed_event(b"data: [DONE]") is True
        assert "".join(out.text) == "hi" and out.finish == "stop"
        assert out.usage is not None and out.usage.output_tokens == 2


def test_the_last_of_several_data_lines_is_read_and_an_id_line_is_skipped():
    out = Outcome("openai")
    event = (b'id: 1\ndata: {"choices": [{"delta": {"content": "old"}}]}\n'
             b'data: {"choices": [{"delta": {"content": "new"}}]}')
    assert out.feed_event(event) is True
    assert out.text == ["new"]


def test_an_error_event_inside_a_stream_is_kept_for_the_settlement():
    out = Outcome("anthropic")
    out.feed_event(_anthropic("error", {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}}))
    assert out.error == {"type": "overloaded_error", "message": "busy"}


def test_events_that_are_not_json_or_have_odd_field_types_are_passed_on_unread():
    out = Outcome("anthropic")
    odd = [b"event: content_block_delta\ndata: {not json", b"data: [1, 2]", b": a comment only",
           _anthropic("content_block_delta", {"type": "content_block_delta", "delta": "a string, not an object"}),
           b"data: \xff\xfe", b""]
    assert all(out.feed_event(e) for e in odd)
    assert out.text == [] and out.usage is None and out.error is None
