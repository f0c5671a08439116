"""The fake provider, exercised through the REAL litellm client over real HTTP on 127.0.0.1.

These tests pin down what litellm 1.110.2 does with provider answers (usage fields, exception
classes, Router metadata); the findings are summarised in the docstring of tests/fakeprovider.py.
"""

from __future__ import annotations

import os

os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import http.client  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import threading  # noqa: E402
import time  # noqa: E402
import urllib.request  # noqa: E402
from contextlib import nullcontext  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402

from fakeprovider import FakeProvider, RecordedRequest, Reply  # noqa: E402

# The fixtures come from tests/conftest.py (pytest_plugins = ["fakeprovider"]), which also blocks
# every non-loopback connection.

litellm = pytest.importorskip("litellm")
litellm.suppress_debug_info = True
for _name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy"):
    logging.getLogger(_name).setLevel(logging.CRITICAL)

import openai  # noqa: E402  (installed with litellm)
from litellm.exceptions import MidStreamFallbackError  # noqa: E402

MESSAGES = [{"role": "user", "content": "hello there world"}]  # 17 chars -> 17 // 4 + 1 = 5 tokens
COMPUTED_INPUT = len("hello there world") // 4 + 1


def call_openai(fake: FakeProvider, model: str = "gpt-fake", **kw: Any) -> Any:
    return litellm.completion(model=f"openai/{model}", api_base=fake.openai_base, api_key="sk-fake",
                              messages=kw.pop("messages", MESSAGES), num_retries=0, max_retries=0, **kw)


def call_anthropic(fake: FakeProvider, model: str = "claude-fake", api_base: str | None = None, **kw: Any) -> Any:
    kw.setdefault("max_tokens", 100)
    return litellm.completion(model=f"anthropic/{model}", api_base=api_base or fake.anthropic_base,
                              api_key="sk-ant-fake", messages=kw.pop("messages", MESSAGES),
                              num_retries=0, max_retries=0, **kw)


CALLERS = {"openai": call_openai, "anthropic": call_anthropic}


def stream_text(chunks: list[Any]) -> str:
    return "".join((c.choices[0].delta.content or "") for c in chunks if c.choices)


CACHED = Reply(text="alpha beta gamma delta", input_tokens=100, output_tokens=7,
               cache_read_tokens=40, cache_write_tokens=5)


# ---------------------------------------------------------------------------------------------
# The server itself (raw HTTP, no litellm)
# ---------------------------------------------------------------------------------------------
def test_health_urls_and_lifecycle() -> None:
    with FakeProvider() as fake:
        assert fake.base_url.startswith("http://127.0.0.1:") and fake.port > 0
        assert fake.openai_base == fake.base_url + "/v1"
        assert fake.anthropic_base == fake.base_url
        with urllib.request.urlopen(fake.base_url + "/health", timeout=2) as resp:
            assert resp.status == 200 and json.load(resp) == {"status": "ok"}
        assert fake.requests == []  # /health is not recorded
    with pytest.raises(OSError):
        urllib.request.urlopen(fake.base_url + "/health", timeout=1)


def test_stop_is_prompt_while_a_handler_sleeps() -> None:
    fake = FakeProvider().start()
    fake.set_default("*", Reply(delay_s=30))
    errors: list[BaseException] = []

    def slow() -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
            conn.request("POST", "/v1/chat/completions", json.dumps({"model": "x", "messages": []}),
                         {"Content-Type": "application/json"})
            conn.getresponse().read()
        except Exception as exc:  # the server drops the connection on stop
            errors.append(exc)

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.time() + 2
    while not fake.requests and time.time() < deadline:
        time.sleep(0.01)
    start = time.perf_counter()
    fake.stop()
    assert time.perf_counter() - start < 1.0
    t.join(3)
    assert not t.is_alive() and errors


def test_raw_openai_wire_format_keepalive_and_sse(fake_provider: FakeProvider) -> None:
    fake_provider.script("raw", Reply(text="one two three", cache_read_tokens=2),
                         Reply(text="one two three"))
    conn = http.client.HTTPConnection("127.0.0.1", fake_provider.port, timeout=5)
    body = {"model": "raw", "messages": MESSAGES}
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    raw = resp.read()
    assert resp.status == 200 and int(resp.getheader("Content-Length")) == len(raw)
    data = json.loads(raw)
    assert data["object"] == "chat.completion" and data["model"] == "raw"
    assert data["choices"][0]["message"]["content"] == "one two three"
    assert data["choices"][0]["finish_reason"] == "stop"
    assert data["usage"] == {**data["usage"], "prompt_tokens": COMPUTED_INPUT + 2, "completion_tokens": 3,
                             "total_tokens": COMPUTED_INPUT + 5}
    assert data["usage"]["prompt_tokens_details"]["cached_tokens"] == 2
    # same connection (keep-alive), streamed
    conn.request("POST", "/v1/chat/completions",
                 json.dumps({**body, "stream": True, "stream_options": {"include_usage": True}}),
                 {"Content-Type": "application/json"})
    resp = conn.getresponse()
    assert resp.getheader("Transfer-Encoding") == "chunked"
    events = [e for e in resp.read().decode().split("\n\n") if e]
    assert events[-1] == "data: [DONE]"
    chunks = [json.loads(e.removeprefix("data: ")) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "one two three"
    assert sum(1 for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")) == 3
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 3
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    conn.close()
    assert [r.path for r in fake_provider.requests] == ["/v1/chat/completions"] * 2


def test_raw_anthropic_sse_event_sequence(fake_provider: FakeProvider) -> None:
    fake_provider.script("raw", Reply(text="one two", input_tokens=9, cache_read_tokens=3, cache_write_tokens=4))
    conn = http.client.HTTPConnection("127.0.0.1", fake_provider.port, timeout=5)
    conn.request("POST", "/v1/messages", json.dumps({"model": "raw", "messages": MESSAGES, "stream": True,
                                                     "max_tokens": 5}), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    events = [e for e in resp.read().decode().split("\n\n") if e]
    names = [e.split("\n")[0].removeprefix("event: ") for e in events]
    assert names == ["message_start", "content_block_start", "ping", "content_block_delta",
                     "content_block_delta", "content_block_stop", "message_delta", "message_stop"]
    datas = [json.loads(e.split("\n")[1].removeprefix("data: ")) for e in events]
    assert [d["type"] for d in datas] == names
    assert datas[0]["message"]["usage"] == {"input_tokens": 9, "cache_creation_input_tokens": 4,
                                            "cache_read_input_tokens": 3, "output_tokens": 1}
    assert [d["delta"] for d in datas[3:5]] == [{"type": "text_delta", "text": "one "},
                                                {"type": "text_delta", "text": "two"}]
    assert datas[6]["usage"] == {"output_tokens": 2} and datas[6]["delta"]["stop_reason"] == "end_turn"
    conn.close()


def test_scripting_order_defaults_callables_and_records(fake_provider: FakeProvider) -> None:
    fake = fake_provider
    fake.script("a", Reply(text="first"), Reply(text="second"))
    fake.set_default("a", Reply(text="a-default"))
    fake.set_default("*", Reply(text="star"))
    fake.script("c", lambda req: Reply(text=f"echo {req.body['messages'][0]['content']}"))
    assert fake.pending("a") == 2

    def post(model: str) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", fake.port, timeout=5)
        conn.request("POST", "/v1/chat/completions", json.dumps({"model": model, "messages": MESSAGES}))
        out = json.loads(conn.getresponse().read())["choices"][0]["message"]["content"]
        conn.close()
        return out

    assert [post("a"), post("a"), post("a"), post("b"), post("c"), post("c")] == [
        "first", "second", "a-default", "star", "echo hello there world", "star"]
    assert [r.model for r in fake.requests] == ["a", "a", "a", "b", "c", "c"]
    assert len(fake.requests_for("a")) == 3 and isinstance(fake.requests[0], RecordedRequest)
    assert fake.requests[0].body == {"model": "a", "messages": MESSAGES}
    assert fake.requests[0].ts <= fake.requests[-1].ts
    fake.reset()
    assert fake.requests == [] and fake.pending("a") == 0 and post("a") == "fake answer"


def test_records_are_thread_safe(fake_provider: FakeProvider) -> None:
    errors: list[BaseException] = []

    def post(i: int) -> None:
        try:
            conn = http.client.HTTPConnection("127.0.0.1", fake_provider.port, timeout=5)
            conn.request("POST", "/v1/messages", json.dumps({"model": f"m{i % 3}", "messages": MESSAGES,
                                                             "max_tokens": 5}))
            assert json.loads(conn.getresponse().read())["type"] == "message"
            conn.close()
        except BaseException as exc:  # surfaced below: a thread's exception would be lost
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(i,)) for i in range(60)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []  # a burst of connects must not be reset (listen backlog)
    assert len(fake_provider.requests) == 60
    assert sorted(len(fake_provider.requests_for(f"m{k}")) for k in range(3)) == [20, 20, 20]


def test_error_bodies_are_provider_shaped() -> None:
    r = Reply.context_window_exceeded(tokens=250_123)
    assert r.openai_error_body()["error"]["code"] == "context_length_exceeded"
    assert "250123 tokens" in r.openai_error_body()["error"]["message"]
    assert r.anthropic_error_body() == {"type": "error", "error": {
        "type": "invalid_request_error", "message": "prompt is too long: 250123 tokens > 200000 maximum"}}
    assert Reply.error(429).anthropic_error_body()["error"]["type"] == "rate_limit_error"
    assert Reply.error(401).openai_error_body()["error"]["code"] == "invalid_api_key"
    assert Reply.error(500, "boom").openai_error_body()["error"]["message"] == "boom"
    assert Reply.rate_limited(retry_after=3).headers == {"Retry-After": "3"}


# ---------------------------------------------------------------------------------------------
# OpenAI through litellm
# ---------------------------------------------------------------------------------------------
def test_openai_json_text_usage_and_request(fake_provider: FakeProvider) -> None:
    fake_provider.script("gpt-fake", CACHED)
    resp = call_openai(fake_provider)
    assert resp.choices[0].message.content == "alpha beta gamma delta"
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "gpt-fake"
    u = resp.usage
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (145, 7, 152)  # 100+40+5 incl. cache
    assert u.prompt_tokens_details.cached_tokens == 40
    assert not getattr(u, "cache_read_input_tokens", None) and not getattr(u, "cache_creation_input_tokens", None)
    (req,) = fake_provider.requests
    assert req.path == "/v1/chat/completions" and req.model == "gpt-fake" and not req.stream
    assert req.body["messages"] == MESSAGES
    assert req.headers["authorization"] == "Bearer sk-fake"


def test_openai_json_computed_usage(fake_provider: FakeProvider) -> None:
    resp = call_openai(fake_provider)
    assert resp.choices[0].message.content == "fake answer"
    assert (resp.usage.prompt_tokens, resp.usage.completion_tokens) == (COMPUTED_INPUT, 2)
    assert resp.usage.prompt_tokens_details.cached_tokens == 0


def test_openai_stream_with_include_usage(fake_provider: FakeProvider) -> None:
    fake_provider.script("gpt-fake", CACHED)
    chunks = list(call_openai(fake_provider, stream=True, stream_options={"include_usage": True}))
    assert stream_text(chunks) == "alpha beta gamma delta"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4  # one per word
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (145, 7, 152)
    assert last.usage.prompt_tokens_details.cached_tokens == 40
    built = litellm.stream_chunk_builder(chunks)
    assert built.choices[0].message.content == "alpha beta gamma delta"
    assert (built.usage.prompt_tokens, built.usage.completion_tokens) == (145, 7)
    assert built.usage.prompt_tokens_details.cached_tokens == 40
    assert fake_provider.requests[0].body["stream_options"] == {"include_usage": True}


def test_openai_stream_without_include_usage_has_no_usage(fake_provider: FakeProvider) -> None:
    fake_provider.script("gpt-fake", CACHED)
    chunks = list(call_openai(fake_provider, stream=True))
    assert stream_text(chunks) == "alpha beta gamma delta"
    assert not any(getattr(c, "usage", None) for c in chunks)
    assert "stream_options" not in fake_provider.requests[0].body  # litellm does not add it


def test_openai_response_headers_reach_hidden_params(fake_provider: FakeProvider) -> None:
    fake_provider.script("gpt-fake", Reply(headers={"x-fake-tag": "t1"}))
    resp = call_openai(fake_provider)
    assert resp._hidden_params["additional_headers"]["llm_provider-x-fake-tag"] == "t1"


# ---------------------------------------------------------------------------------------------
# Anthropic through litellm
# ---------------------------------------------------------------------------------------------
def test_anthropic_json_text_usage_and_request(fake_provider: FakeProvider) -> None:
    fake_provider.script("claude-fake", CACHED)
    resp = call_anthropic(fake_provider)
    assert resp.choices[0].message.content == "alpha beta gamma delta"
    assert resp.choices[0].finish_reason == "stop"  # end_turn mapped by litellm
    assert resp.model == "claude-fake"
    u = resp.usage
    # wire input_tokens=100 EXCLUDES cache; litellm's prompt_tokens INCLUDES read + write
    assert (u.prompt_tokens, u.completion_tokens, u.total_tokens) == (145, 7, 152)
    assert (u.cache_read_input_tokens, u.cache_creation_input_tokens) == (40, 5)
    assert u.prompt_tokens_details.cached_tokens == 40
    assert u.prompt_tokens_details.cache_creation_tokens == 5
    assert u.prompt_tokens_details.text_tokens == 100
    (req,) = fake_provider.requests
    assert req.path == "/v1/messages" and req.model == "claude-fake" and req.body["max_tokens"] == 100
    assert req.headers["x-api-key"] == "sk-ant-fake" and req.headers["anthropic-version"]


def test_anthropic_json_computed_usage_counts_system(fake_provider: FakeProvider) -> None:
    msgs = [{"role": "system", "content": "x" * 40}, *MESSAGES]
    resp = call_anthropic(fake_provider, messages=msgs)
    assert fake_provider.requests[0].body["system"]  # litellm moved it to the top-level field
    assert resp.usage.prompt_tokens == (40 + 17) // 4 + 1
    assert resp.usage.completion_tokens == 2


def test_anthropic_stream_text_and_usage(fake_provider: FakeProvider) -> None:
    fake_provider.script("claude-fake", CACHED, CACHED)
    chunks = list(call_anthropic(fake_provider, stream=True))
    assert stream_text(chunks) == "alpha beta gamma delta"
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) == 4
    assert not any(getattr(c, "usage", None) for c in chunks)  # no usage attribute on chunks...
    hidden = chunks[-1]._hidden_params["usage"]  # ...but it rides along in _hidden_params
    assert (hidden.prompt_tokens, hidden.completion_tokens) == (145, 7)
    built = litellm.stream_chunk_builder(chunks)
    assert (built.usage.prompt_tokens, built.usage.completion_tokens, built.usage.total_tokens) == (145, 7, 152)
    assert (built.usage.cache_read_input_tokens, built.usage.cache_creation_input_tokens) == (40, 5)
    assert built.usage.prompt_tokens_details.cached_tokens == 40

    chunks = list(call_anthropic(fake_provider, stream=True, stream_options={"include_usage": True}))
    last = chunks[-1]
    assert last.choices == []
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (145, 7)
    assert (last.usage.cache_read_input_tokens, last.usage.cache_creation_input_tokens) == (40, 5)
    assert all(r.stream for r in fake_provider.requests)


def test_anthropic_api_base_forms(fake_provider: FakeProvider) -> None:
    for base in (fake_provider.base_url, fake_provider.base_url + "/", fake_provider.base_url + "/v1/messages"):
        fake_provider.reset()
        assert call_anthropic(fake_provider, api_base=base).choices[0].message.content == "fake answer"
        assert fake_provider.requests[0].path == "/v1/messages"
    fake_provider.reset()
    with pytest.raises(litellm.NotFoundError):
        call_anthropic(fake_provider, api_base=fake_provider.base_url + "/v1")
    assert fake_provider.requests[0].path == "/v1/v1/messages"


def test_both_protocols_from_one_server(fake_provider: FakeProvider) -> None:
    fake_provider.set_default("cheap", Reply(text="cheap answer"))
    fake_provider.set_default("smart", Reply(text="smart answer"))
    assert call_openai(fake_provider, "cheap").choices[0].message.content == "cheap answer"
    assert call_anthropic(fake_provider, "smart").choices[0].message.content == "smart answer"
    assert [(r.path, r.model) for r in fake_provider.requests] == [
        ("/v1/chat/completions", "cheap"), ("/v1/messages", "smart")]


# ---------------------------------------------------------------------------------------------
# Faults -> litellm exceptions
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("proto", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
@pytest.mark.parametrize(("reply", "exc"), [
    (Reply.error(429, retry_after=7), litellm.RateLimitError),
    (Reply.error(401), litellm.AuthenticationError),
    (Reply.context_window_exceeded(), litellm.ContextWindowExceededError),
    (Reply.error(400, "bad thing"), litellm.BadRequestError),
    (Reply.error(500), litellm.InternalServerError),
    (Reply.error(503), litellm.ServiceUnavailableError),
], ids=["429", "401", "context", "400", "500", "503"])
def test_http_errors_map_to_litellm_exceptions(fake_provider: FakeProvider, proto: str, stream: bool,
                                               reply: Reply, exc: type[Exception]) -> None:
    fake_provider.script("m", reply)
    with pytest.raises(exc) as info:
        CALLERS[proto](fake_provider, "m", stream=stream)
    assert info.value.status_code == reply.status
    assert isinstance(info.value, openai.APIError)  # the real common base; litellm.APIError is not
    if reply.status == 400 and reply.error_code is None:
        assert not isinstance(info.value, litellm.ContextWindowExceededError)
        assert "bad thing" in str(info.value)
    if reply.status == 429:
        assert info.value.litellm_response_headers["retry-after"] == "7"
    assert len(fake_provider.requests) == 1  # no hidden retries


def test_529_differs_between_protocols(fake_provider: FakeProvider) -> None:
    fake_provider.set_default("m", Reply.error(529))
    with pytest.raises(litellm.InternalServerError):
        call_anthropic(fake_provider, "m")
    with pytest.raises(litellm.APIError):
        call_openai(fake_provider, "m")


def test_malformed_json(fake_provider: FakeProvider) -> None:
    fake_provider.set_default("m", Reply(malformed=True))
    with pytest.raises(litellm.InternalServerError, match="Unterminated string"):
        call_openai(fake_provider, "m")
    with pytest.raises(litellm.APIConnectionError, match="Unable to get json response"):
        call_anthropic(fake_provider, "m")


@pytest.mark.parametrize("proto", ["openai", "anthropic"])
def test_malformed_stream(fake_provider: FakeProvider, proto: str) -> None:
    fake_provider.set_default("m", Reply(malformed=True))
    with pytest.raises(MidStreamFallbackError):
        list(CALLERS[proto](fake_provider, "m", stream=True))


@pytest.mark.parametrize("transport", ["chunked", "close"])
@pytest.mark.parametrize("proto", ["openai", "anthropic"])
def test_cut_stream_yields_partial_then_raises(fake_provider: FakeProvider, proto: str, transport: str) -> None:
    reply = Reply(text="a b c d e f", cut_stream_after=2)
    got: list[str] = []
    with FakeProvider(sse_transport=transport) if transport == "close" else nullcontext(fake_provider) as fake:
        fake.script("m", reply)
        with pytest.raises(MidStreamFallbackError) as info:
            for chunk in CALLERS[proto](fake, "m", stream=True):
                got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "a b "
    assert info.value.generated_content == "a b "
    assert isinstance(info.value, litellm.ServiceUnavailableError)


@pytest.mark.parametrize("proto", ["openai", "anthropic"])
def test_close_transport_streams_fine(proto: str) -> None:
    with FakeProvider(sse_transport="close") as fake:
        fake.set_default("m", CACHED)
        chunks = list(CALLERS[proto](fake, "m", stream=True, stream_options={"include_usage": True}))
        assert stream_text(chunks) == "alpha beta gamma delta"
        assert chunks[-1].usage.prompt_tokens == 145


@pytest.mark.parametrize("proto", ["openai", "anthropic"])
def test_reset_connection(fake_provider: FakeProvider, proto: str) -> None:
    fake_provider.script("m", Reply(reset=True))
    with pytest.raises(litellm.InternalServerError):
        CALLERS[proto](fake_provider, "m")
    # the server is fine afterwards
    assert CALLERS[proto](fake_provider, "m").choices[0].message.content == "fake answer"


@pytest.mark.parametrize("proto", ["openai", "anthropic"])
@pytest.mark.parametrize("stream", [False, True], ids=["json", "sse"])
def test_delay_beyond_timeout_raises_timeout(fake_provider: FakeProvider, proto: str, stream: bool) -> None:
    fake_provider.script("m", Reply(delay_s=3))
    start = time.perf_counter()
    with pytest.raises(litellm.Timeout):
        list(CALLERS[proto](fake_provider, "m", timeout=0.2, stream=stream) if stream
             else [CALLERS[proto](fake_provider, "m", timeout=0.2)])
    assert time.perf_counter() - start < 1.5


@pytest.mark.parametrize("proto", ["openai", "anthropic"])
def test_trickling_stream(fake_provider: FakeProvider, proto: str) -> None:
    fake_provider.script("m", Reply(text="w1 w2 w3 w4", chunk_delay_s=0.04))
    arrivals: list[float] = []
    start = time.perf_counter()
    for chunk in CALLERS[proto](fake_provider, "m", stream=True):
        if chunk.choices and chunk.choices[0].delta.content:
            arrivals.append(time.perf_counter() - start)
    assert len(arrivals) == 4
    assert arrivals[-1] - arrivals[0] >= 0.1  # the words really arrived over time


def test_trickling_stream_beyond_timeout(fake_provider: FakeProvider) -> None:
    fake_provider.set_default("m", Reply(text="a b c", chunk_delay_s=0.5))
    with pytest.raises(litellm.Timeout):
        list(call_openai(fake_provider, "m", stream=True, timeout=0.2))
    with pytest.raises(MidStreamFallbackError) as info:
        list(call_anthropic(fake_provider, "m", stream=True, timeout=0.2))
    assert info.value.status_code == 408


# ---------------------------------------------------------------------------------------------
# Router: tier1 -> tier2 fallback
# ---------------------------------------------------------------------------------------------
def _router(fake: FakeProvider) -> Any:
    return litellm.Router(
        model_list=[
            {"model_name": "tier1",
             "litellm_params": {"model": "openai/m-tier1", "api_base": fake.openai_base, "api_key": "sk-fake",
                                "max_retries": 0},
             "model_info": {"id": "tier1-dep"}},
            {"model_name": "tier2",
             "litellm_params": {"model": "anthropic/m-tier2", "api_base": fake.anthropic_base,
                                "api_key": "sk-fake", "max_retries": 0, "max_tokens": 50},
             "model_info": {"id": "tier2-dep"}},
        ],
        fallbacks=[{"tier1": ["tier2"]}],
        num_retries=0,
    )


def test_router_fallback_tier1_429_goes_to_tier2(fake_provider: FakeProvider) -> None:
    router = _router(fake_provider)
    fake_provider.script("m-tier1", Reply.error(429))
    fake_provider.script("m-tier2", Reply(text="from tier two", input_tokens=10, output_tokens=3,
                                          cache_read_tokens=4))
    resp = router.completion(model="tier1", messages=MESSAGES)
    assert resp.choices[0].message.content == "from tier two"
    assert [(r.path, r.model) for r in fake_provider.requests] == [
        ("/v1/chat/completions", "m-tier1"), ("/v1/messages", "m-tier2")]
    hp = resp._hidden_params
    assert resp.model == "m-tier2"
    assert hp["model_id"] == "tier2-dep"
    assert hp["litellm_model_name"] == "anthropic/m-tier2"
    assert hp["api_base"] == fake_provider.anthropic_base
    assert hp["additional_headers"]["x-litellm-model-group"] == "tier2"
    assert hp["additional_headers"]["x-litellm-attempted-fallbacks"] == 1
    assert (resp.usage.prompt_tokens, resp.usage.cache_read_input_tokens) == (14, 4)

    # no failure: tier1 serves, zero fallbacks
    resp = router.completion(model="tier1", messages=MESSAGES)
    assert resp._hidden_params["model_id"] == "tier1-dep"
    assert resp._hidden_params["additional_headers"]["x-litellm-model-group"] == "tier1"
    assert resp._hidden_params["additional_headers"]["x-litellm-attempted-fallbacks"] == 0


def test_router_stream_fallback_metadata_on_wrapper(fake_provider: FakeProvider) -> None:
    router = _router(fake_provider)
    fake_provider.script("m-tier1", Reply.error(429))
    stream = router.completion(model="tier1", messages=MESSAGES, stream=True)
    assert stream_text(list(stream)) == "fake answer"
    assert stream._hidden_params["model_id"] == "tier2-dep"
    assert stream._hidden_params["additional_headers"]["x-litellm-attempted-fallbacks"] == 1
    assert [r.model for r in fake_provider.requests] == ["m-tier1", "m-tier2"]


def test_router_cut_stream_is_not_retried_on_fallback(fake_provider: FakeProvider) -> None:
    router = _router(fake_provider)
    fake_provider.script("m-tier1", Reply(text="a b c d", cut_stream_after=2))
    got: list[str] = []
    with pytest.raises(litellm.APIConnectionError):
        for chunk in router.completion(model="tier1", messages=MESSAGES, stream=True):
            got.append(chunk.choices[0].delta.content or "")
    assert "".join(got) == "a b "
    assert [r.model for r in fake_provider.requests] == ["m-tier1"]

