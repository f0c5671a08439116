"""The direct OpenAI -> Anthropic translation (serve/anthropic_sse.py) against litellm's own adapter, and
the translated passthrough (serve/translated.py: an Anthropic client on an OpenAI tier) end to end
through the fake provider: text, tool_use with input_json_delta, thinking, usage in message_delta,
stop reasons, an upstream that breaks mid-stream."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest

from fakeprovider import Reply
from test_serve import GPT, TOOL, gateways, keys  # noqa: F401 - fixtures reused
from tiercli import providers
from tiercli.serve import anthropic_sse

pytestmark = pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")


def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": GPT,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}


USAGE = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": GPT, "choices": [],
         "usage": {"prompt_tokens": 50, "completion_tokens": 7, "total_tokens": 57,
                   "prompt_tokens_details": {"cached_tokens": 20}}}
TEXT = [chunk({"role": "assistant", "content": "Hel"}), chunk({"content": "lo"}), chunk({}, "stop"), USAGE]
TOOL_USE = [chunk({"role": "assistant", "content": "Reading."}),
            chunk({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                   "function": {"name": "read_file", "arguments": ""}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"path": '}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"a.py"}'}}]}),
            chunk({}, "tool_calls"), USAGE]
THINKING = [chunk({"role": "assistant", "reasoning_content": "think "}), chunk({"reasoning_content": "more"}),
            chunk({"content": "answer"}), chunk({}, "length"), USAGE]


def parse(sse: bytes) -> list[dict[str, Any]]:
    """The data objects of an SSE body, ids left out (both sides make their own)."""
    out = []
    for event in sse.decode().split("\n\n"):
        for line in event.split("\n"):
            if line.startswith("data:"):
                obj = json.loads(line[5:])
                if obj["type"] == "message_start":
                    obj["message"].pop("id")
                    obj["message"]["usage"] = {k: v for k, v in obj["message"]["usage"].items() if v}
                if obj["type"] == "message_delta":
                    obj["delta"].pop("stop_sequence", None)
                out.append(obj)
    return out


def direct(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    t = anthropic_sse.Translator(GPT)
    return parse(b"".join(t.chunk(c) for c in chunks) + t.end())


def litellms(chunks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from litellm.types.utils import ModelResponseStream

    async def stream():
        for c in chunks:
            yield ModelResponseStream(**c)

    async def collect() -> bytes:
        return b"".join([e if isinstance(e, bytes) else str(e).encode()
                         async for e in providers.anthropic_sse(stream(), GPT)])

    return parse(asyncio.run(collect()))


@pytest.mark.parametrize("chunks", [TEXT, TOOL_USE, THINKING], ids=["text", "tool_use", "thinking"])
def test_the_direct_translation_gives_litellms_events(chunks):
    ours, theirs = direct(chunks), litellms(chunks)
    assert [e["type"] for e in ours] == [e["type"] for e in theirs]
    assert ours[:-2] == theirs[:-2]  # every block start, delta and stop, in order
    assert ours[-2]["delta"] == theirs[-2]["delta"]  # the stop reason
    assert ours[-1] == theirs[-1] == {"type": "message_stop"}


def test_usage_in_message_delta_excludes_the_cached_tokens():
    delta = direct(TOOL_USE)[-2]
    assert delta["usage"] == {"input_tokens": 30, "output_tokens": 7, "cache_read_input_tokens": 20}
    assert delta["delta"]["stop_reason"] == "tool_use"
    assert [e["delta"]["partial_json"] for e in direct(TOOL_USE) if e.get("delta", {}).get("type") == "input_json_delta"] \
        == ['{"path": ', '"a.py"}']


@pytest.mark.parametrize("finish,reason", [("stop", "end_turn"), ("length", "max_tokens"), ("tool_calls", "tool_use"),
                                           ("content_filter", "refusal")])
def test_stop_reasons(finish, reason):
    assert direct([chunk({"content": "x"}, finish)])[-2]["delta"]["stop_reason"] == reason


def test_a_whole_answer_translates_like_litellms():
    from litellm.types.utils import ModelResponse

    obj = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": GPT,
           "choices": [{"index": 0, "finish_reason": "tool_calls",
                        "message": {"role": "assistant", "content": "hi", "reasoning_content": "hmm",
                                    "tool_calls": [{"id": "call_1", "type": "function",
                                                    "function": {"name": "read_file", "arguments": '{"path": "a"}'}}]}}],
           "usage": USAGE["usage"]}
    ours = anthropic_sse.message_from_openai(obj, GPT)
    theirs = providers.openai_to_anthropic(ModelResponse(**obj))
    for block in theirs["content"]:
        if block["type"] == "thinking":
            block["signature"] = block["signature"] or ""
    assert ours["content"] == theirs["content"]
    assert (ours["stop_reason"], ours["usage"]) == (theirs["stop_reason"], theirs["usage"])


# -- end to end: an Anthropic client on the OpenAI tier (tier2) ------------------------------------------
@pytest.fixture
def gw(gateways, fake_provider, keys):  # noqa: F811 - the fixtures imported above
    g = gateways("translated")
    g.clear()
    return g


def test_a_tool_call_stream_is_translated_and_recorded(gw, fake_provider):
    fake_provider.set_default(GPT, Reply(text="Reading it.", tool_calls=[{"id": "call_7", "name": "read_file",
                                                                        "arguments": {"path": "a.py"}}]))
    with gw.anthropic().messages.stream(model="tier2", max_tokens=100, tools=[TOOL],
                                        messages=[{"role": "user", "content": "read a.py"}]) as s:
        final = s.get_final_message()
    assert [b.type for b in final.content] == ["text", "tool_use"]
    assert final.content[1].input == {"path": "a.py"} and final.content[1].id == "call_7"
    assert final.stop_reason == "tool_use" and final.usage.output_tokens > 0
    sent = fake_provider.requests[-1]
    assert sent.path == "/v1/chat/completions" and sent.body["stream"] is True
    assert sent.body["stream_options"] == {"include_usage": True} and "max_completion_tokens" in sent.body
    [row] = gw.rows(1)
    assert (row["tier"], row["status"], row["served_model"]) == ("tier2", "ok", f"openai/{GPT}")
    assert row["output_tokens"] == final.usage.output_tokens and row["cost_usd"] is not None
    assert json.loads(row["meta_json"])["serve"]["tool_calls"] == ["read_file"]


def test_an_upstream_that_breaks_mid_stream_ends_in_an_error_event_and_an_error_row(gw, fake_provider):
    fake_provider.set_default(GPT, Reply(text="one two three four five six", cut_stream_after=2))
    body = {"model": "tier2", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "count"}]}
    with httpx.stream("POST", gw.url + "/v1/messages", json=body, timeout=30) as resp:
        events = parse(resp.read())
    assert events[0]["type"] == "message_start" and events[-1]["type"] == "error"
    assert "message_stop" not in [e["type"] for e in events]
    [row] = gw.rows(1)
    assert row["status"] == "error" and row["tier"] == "tier2"
    assert "upstream stream broke" in row["error_message"]


# -- the gateway's commits -------------------------------------------------------------------------------
def test_the_gateway_commits_with_synchronous_normal_unless_told_full(gw, monkeypatch):
    from tiercli.errors import UsageError
    from tiercli.serve.gateway import commit_sync

    gateway = gw.gw
    level = gateway._db.submit(lambda: gateway._ledger._connection().execute("PRAGMA synchronous").fetchone()[0]).result()
    assert level == 1  # NORMAL (FULL is 2): see docs/RELIABILITY.md
    monkeypatch.setenv("TIER_SERVE_SYNCHRONOUS", "full")
    assert commit_sync() == "FULL"
    monkeypatch.setenv("TIER_SERVE_SYNCHRONOUS", "sometimes")
    with pytest.raises(UsageError, match="TIER_SERVE_SYNCHRONOUS"):
        commit_sync()


@pytest.mark.parametrize("text", ["plain", 'a "quoted" \\ back\nslash', "café ünïcödé 日本 \U0001f600", "\t\x00\x1f", ""])
def test_the_fast_delta_event_is_byte_for_byte_the_generic_one(text):
    from tiercli.serve.anthropic_sse import _delta, _event

    for index in (0, 7):
        assert _delta(index, "text_delta", "text", text) == _event(
            "content_block_delta", {"index": index, "delta": {"type": "text_delta", "text": text}})
        assert _delta(index, "thinking_delta", "thinking", text) == _event(
            "content_block_delta", {"index": index, "delta": {"type": "thinking_delta", "thinking": text}})
