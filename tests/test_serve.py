"""`tier serve`: the gateway on a real uvicorn server on 127.0.0.1, driven by the official `openai` and
`anthropic` SDKs, with the fake provider upstream (Anthropic and OpenAI tiers in one config).

tier1 = anthropic/claude-haiku-4-5, tier2 = openai/gpt-5-mini, tier3 = anthropic/claude-sonnet-4-5.
An Anthropic client on tier1/tier3 and an OpenAI client on tier2 take the passthrough path, an Anthropic
client on tier2 the translated passthrough (serve/translated.py); the other
pairs (and every pair with `serve.passthrough: false`) go through litellm's Router.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import threading
import time
from pathlib import Path

import anthropic
import httpx
import openai
import pytest
import uvicorn

from fakeprovider import Reply
from tiercli import config as cfgmod
from tiercli.classify import run_local
from tiercli.errors import UsageError
from tiercli.router import decide
from tiercli.serve import create_app, is_loopback

ANTHROPIC_KEY = "sk-ant-config-0123456789abcdefSECRET"
OPENAI_KEY = "sk-openai-config-0123456789abcdefSECRET"
CLIENT_ANTHROPIC_KEY = "sk-ant-client-9876543210CLIENTKEY"
CLIENT_OPENAI_KEY = "sk-client-9876543210CLIENTKEY"

# litellm's import warns about its own TypedDicts (plural form of the message pyproject already filters)
pytestmark = pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")

HAIKU, GPT, SONNET = "claude-haiku-4-5", "gpt-5-mini", "claude-sonnet-4-5"
LOW_TASK = "rename the variable foo to bar in utils.py"
HIGH_TASK = "design the architecture for a distributed job scheduler with sharding and failover"
CC_USER_ID = "user_4f2a_account_9b1c_session_0d3e5f7a-1111-2222-3333-444455556666"
CC_SESSION = "0d3e5f7a-1111-2222-3333-444455556666"
TOOL = {"name": "read_file", "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]}}
OPENAI_TOOL = {"type": "function", "function": {"name": "read_file", "description": "Read a file",
                                                "parameters": TOOL["input_schema"]}}


def config_text(fake, extra: str = "") -> str:
    return f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: anthropic/{HAIKU}, api_base: "{fake.anthropic_base}", api_key: os.environ/ANTHROPIC_API_KEY}}
  - model_name: tier2
    litellm_params: {{model: openai/{GPT}, api_base: "{fake.openai_base}", api_key: os.environ/OPENAI_API_KEY}}
  - model_name: tier3
    litellm_params: {{model: anthropic/{SONNET}, api_base: "{fake.anthropic_base}", api_key: os.environ/ANTHROPIC_API_KEY}}
router_settings:
  fallbacks: [{{tier1: [tier3]}}]
  num_retries: 0
routing: {{classifier: local}}
{extra}
"""


MAIN_SERVE = """
serve:
  long_context_tokens: 2000
  long_context_tier: tier3
  thinking_tier: tier3
  web_search_tier: tier3
"""


class Gateway:
    """A gateway app on uvicorn in a thread, bound to a random port on 127.0.0.1."""

    def __init__(self, config_path: Path, db: Path, **kw):
        self.db = db
        self.loaded = cfgmod.load(config_path)
        self.app = create_app(self.loaded, db, **kw)
        self.gw = self.app.state.gateway
        self.gw.warm()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="on"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.time() + 10
        while not self.server.started:
            assert time.time() < deadline, "uvicorn did not start"
            time.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def openai(self, key: str = CLIENT_OPENAI_KEY, **kw) -> openai.OpenAI:
        return openai.OpenAI(base_url=self.url + "/v1", api_key=key, max_retries=0, **kw)

    def anthropic(self, key: str = CLIENT_ANTHROPIC_KEY, **kw) -> anthropic.Anthropic:
        return anthropic.Anthropic(base_url=self.url, api_key=key, max_retries=0, **kw)

    def rows(self, n: int | None = None, timeout: float = 3.0) -> list[dict]:
        """The ledger's calls, oldest first, once none is pending (settling runs after the answer)."""
        deadline = time.time() + timeout
        while True:
            self.gw.flush()
            conn = sqlite3.connect(self.db)
            conn.row_factory = sqlite3.Row
            rows = [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at, rowid")]
            conn.close()
            if all(r["status"] != "pending" for r in rows) and (n is None or len(rows) >= n):
                return rows
            if time.time() > deadline:
                return rows
            time.sleep(0.02)

    def clear(self) -> None:
        self.gw.flush()
        conn = sqlite3.connect(self.db, isolation_level=None)
        conn.execute("DELETE FROM calls")
        conn.close()
        self.gw.sticky.clear()


@pytest.fixture(scope="module")
def gateways(fake_provider_server, tmp_path_factory):
    """Start gateways on demand, one per (name, config); stopped at the end of the module."""
    started: dict[str, Gateway] = {}
    root = tmp_path_factory.mktemp("serve")

    def get(name: str, extra: str = MAIN_SERVE, **kw) -> Gateway:
        if name not in started:
            path = root / f"{name}.yaml"
            path.write_text(config_text(fake_provider_server, extra))
            started[name] = Gateway(path, root / f"{name}.db", **kw)
        return started[name]

    yield get
    for g in started.values():
        g.stop()


@pytest.fixture
def keys(tier_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)


@pytest.fixture
def gw(gateways, fake_provider, keys) -> Gateway:
    g = gateways("main")
    g.clear()
    return g


def meta(row: dict) -> dict:
    return json.loads(row["meta_json"])


def no_secret_in(rows: list[dict]) -> None:
    blob = json.dumps(rows)
    for secret in (ANTHROPIC_KEY, OPENAI_KEY, CLIENT_ANTHROPIC_KEY, CLIENT_OPENAI_KEY):
        assert secret not in blob


# -- the fake provider's tool calls -----------------------------------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_fake_provider_answers_with_tool_calls(fake_provider, stream):
    call = {"id": "call_1", "name": "read_file", "arguments": {"path": "a.py"}}
    fake_provider.set_default("*", Reply(text="", tool_calls=[call]))
    body = {"model": "m", "messages": [{"role": "user", "content": "read a.py"}], "stream": stream, "max_tokens": 10}
    with httpx.Client() as client:
        oa = client.post(fake_provider.openai_base + "/chat/completions", json=body)
        an = client.post(fake_provider.base_url + "/v1/messages", json=body)
    if not stream:
        choice = oa.json()["choices"][0]
        assert choice["finish_reason"] == "tool_calls" and choice["message"]["content"] is None
        assert choice["message"]["tool_calls"][0]["function"] == {"name": "read_file", "arguments": '{"path": "a.py"}'}
        msg = an.json()
        assert msg["stop_reason"] == "tool_use"
        assert msg["content"] == [{"type": "tool_use", "id": "call_1", "name": "read_file", "input": {"path": "a.py"}}]
    else:
        chunks = [json.loads(line[6:]) for line in oa.text.splitlines() if line.startswith("data: {")]
        args = "".join(tc["function"].get("arguments", "") for c in chunks for ch in c["choices"]
                       for tc in ch["delta"].get("tool_calls") or [])
        assert json.loads(args) == {"path": "a.py"} and chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
        events = [json.loads(line[6:]) for line in an.text.splitlines() if line.startswith("data: ")]
        partial = "".join(e["delta"]["partial_json"] for e in events if e["type"] == "content_block_delta"
                          and e["delta"]["type"] == "input_json_delta")
        assert json.loads(partial) == {"path": "a.py"}
        assert [e["delta"]["stop_reason"] for e in events if e["type"] == "message_delta"] == ["tool_use"]


# -- same protocol: passthrough ---------------------------------------------------------------------
def test_anthropic_sdk_json_and_stream_record_tokens_cost_and_session(gw, fake_provider):
    reply = Reply(text="cached answer", input_tokens=1_000, cache_read_tokens=20_000, cache_write_tokens=3_000, output_tokens=400)
    fake_provider.set_default(SONNET, reply)
    client = gw.anthropic()
    msg = client.messages.create(model="tier3", max_tokens=500, metadata={"user_id": CC_USER_ID},
                                 messages=[{"role": "user", "content": "fix it"}])
    assert msg.content[0].text == "cached answer" and msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.cache_read_input_tokens, msg.usage.cache_creation_input_tokens) == (1_000, 20_000, 3_000)
    with client.messages.stream(model="tier3", max_tokens=500, metadata={"user_id": CC_USER_ID},
                                messages=[{"role": "user", "content": "fix it"}]) as stream:
        assert "".join(stream.text_stream) == "cached answer"
        final = stream.get_final_message()
    assert final.usage.output_tokens == 400
    # the config's key went upstream, not the client's
    assert {r.headers["x-api-key"] for r in fake_provider.requests} == {ANTHROPIC_KEY}
    rows = gw.rows(2)
    expected = (1_000 * 3 + 20_000 * 0.30 + 3_000 * 3.75 + 400 * 15) / 1_000_000  # sonnet-4-5 per Mtok
    for row in rows:
        assert (row["kind"], row["source"], row["status"], row["session"]) == ("main", "serve", "ok", CC_SESSION)
        assert (row["tier"], row["served_tier"], row["served_model"]) == ("tier3", "tier3", f"anthropic/{SONNET}")
        assert (row["input_tokens"], row["cache_read_tokens"], row["cache_write_tokens"], row["output_tokens"]) == (1_000, 20_000, 3_000, 400)
        assert row["cost_usd"] == pytest.approx(expected, abs=1e-12) and not row["output_estimated"]
        assert row["decision_source"] == "override" and row["response_text"] == "cached answer"
        assert meta(row)["serve"]["protocol"] == "anthropic"
    assert [meta(r)["serve"]["stream"] for r in rows] == [False, True]
    no_secret_in(rows)


def test_openai_sdk_json_and_stream(gw, fake_provider):
    fake_provider.set_default(GPT, Reply(text="four words of answer", prompt_tokens=120, cache_read_tokens=100, output_tokens=4))
    client = gw.openai()
    resp = client.chat.completions.create(model="tier2", user="aider-7", messages=[{"role": "user", "content": "add a flag"}])
    assert resp.choices[0].message.content == "four words of answer"
    assert resp.usage.prompt_tokens == 120 and resp.usage.prompt_tokens_details.cached_tokens == 100
    chunks = list(client.chat.completions.create(model="tier2", user="aider-7", stream=True,
                                                 messages=[{"role": "user", "content": "add a flag"}]))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "four words of answer"
    assert all(c.choices for c in chunks)  # no usage chunk: the client did not ask for one
    with_usage = list(client.chat.completions.create(model="tier2", stream=True, stream_options={"include_usage": True},
                                                     messages=[{"role": "user", "content": "add a flag"}]))
    assert with_usage[-1].usage.completion_tokens == 4
    assert [r.headers["authorization"] for r in fake_provider.requests] == [f"Bearer {OPENAI_KEY}"] * 3
    rows = gw.rows(3)
    for row in rows:
        assert (row["tier"], row["served_model"], row["status"]) == ("tier2", f"openai/{GPT}", "ok")
        assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (20, 100, 4)
        assert row["cost_usd"] is not None and row["cost_usd"] > 0
    assert [r["session"] for r in rows][:2] == ["aider-7", "aider-7"]
    assert rows[2]["session"].startswith("conv-")  # no session named: the conversation's first message
    no_secret_in(rows)


def test_passthrough_falls_back_on_429_and_records_the_attempt(gw, fake_provider):
    fake_provider.script(HAIKU, Reply.rate_limited(retry_after=0))
    fake_provider.set_default(SONNET, Reply(text="tier3 saved the day"))
    msg = gw.anthropic().messages.create(model="tier1", max_tokens=50, messages=[{"role": "user", "content": "find x"}])
    assert msg.content[0].text == "tier3 saved the day"
    [row] = gw.rows(1)
    assert (row["tier"], row["served_tier"], row["attempts"], row["fallback_count"]) == ("tier1", "tier3", 2, 1)
    [failed] = json.loads(row["attempts_json"])
    assert failed["group"] == "tier1" and failed["error_class"] == "RateLimitError"


def test_rate_limited_everywhere_is_429_and_all_failed_is_502(gw, fake_provider):
    fake_provider.set_default(HAIKU, Reply.rate_limited(retry_after=0))
    fake_provider.set_default(SONNET, Reply.rate_limited(retry_after=0))
    client = gw.anthropic()
    with pytest.raises(anthropic.RateLimitError) as info:
        client.messages.create(model="tier1", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 429
    fake_provider.set_default(HAIKU, Reply.error(500))
    fake_provider.set_default(SONNET, Reply.error(503))
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="tier1", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 502 and "failed on every tier" in info.value.message
    fake_provider.set_default(SONNET, Reply.error(529))  # Anthropic's overloaded_error stays a 529, not a 502
    with pytest.raises(anthropic.APIStatusError) as info:
        client.messages.create(model="tier1", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 529 and info.value.body["error"]["type"] == "overloaded_error"
    # through the router too (an OpenAI client on Anthropic tiers)
    fake_provider.set_default(HAIKU, Reply.rate_limited(retry_after=0))
    fake_provider.set_default(SONNET, Reply.rate_limited(retry_after=0))
    with pytest.raises(openai.RateLimitError):
        gw.openai().chat.completions.create(model="tier1", messages=[{"role": "user", "content": "x"}])
    rows = gw.rows(4)
    assert [r["status"] for r in rows] == ["error"] * 4
    assert [r["error_class"] for r in rows] == ["RateLimitError", "ServiceUnavailableError", "OverloadedError", "RateLimitError"]


def test_a_bad_request_is_passed_back_not_fallen_back(gw, fake_provider):
    fake_provider.set_default(HAIKU, Reply.context_window_exceeded())
    with pytest.raises(anthropic.BadRequestError) as info:
        gw.anthropic().messages.create(model="tier1", max_tokens=50, messages=[{"role": "user", "content": "x"}])
    assert "prompt is too long" in info.value.message  # what Claude Code compacts on
    assert [r.model for r in fake_provider.requests] == [HAIKU]
    [row] = gw.rows(1)
    assert row["error_class"] == "ContextWindowExceededError"


# -- cross protocol: through litellm -------------------------------------------------------------------
def test_openai_client_on_an_anthropic_tier(gw, fake_provider):
    fake_provider.set_default(HAIKU, Reply(text="answer from haiku", input_tokens=10, cache_read_tokens=5, output_tokens=3))
    client = gw.openai()
    resp = client.chat.completions.create(model="tier1", messages=[{"role": "system", "content": "be brief"},
                                                                   {"role": "user", "content": "hello"}])
    assert resp.choices[0].message.content == "answer from haiku" and resp.choices[0].finish_reason == "stop"
    stream = client.chat.completions.create(model="tier1", stream=True, messages=[{"role": "user", "content": "hello"}])
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == "answer from haiku"
    first = fake_provider.requests[0]
    assert first.path == "/v1/messages" and first.headers["x-api-key"] == ANTHROPIC_KEY
    assert first.body["system"][0]["text"] == "be brief"
    rows = gw.rows(2)
    for row in rows:
        assert (row["tier"], row["served_model"], row["status"]) == ("tier1", f"anthropic/{HAIKU}", "ok")
        assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (10, 5, 3)
    no_secret_in(rows)


def test_anthropic_client_on_an_openai_tier(gw, fake_provider):
    fake_provider.set_default(GPT, Reply(text="answer from gpt", prompt_tokens=50, cache_read_tokens=20, output_tokens=3))
    client = gw.anthropic()
    msg = client.messages.create(model="tier2", max_tokens=100, system="be brief",
                                 messages=[{"role": "user", "content": "hello"}])
    assert msg.content[0].text == "answer from gpt" and msg.stop_reason == "end_turn"
    assert (msg.usage.input_tokens, msg.usage.output_tokens) == (30, 3)
    with client.messages.stream(model="tier2", max_tokens=100, messages=[{"role": "user", "content": "hello"}]) as s:
        assert "".join(s.text_stream) == "answer from gpt"
    first = fake_provider.requests[0]
    assert first.path == "/v1/chat/completions" and first.headers["authorization"] == f"Bearer {OPENAI_KEY}"
    assert first.body["messages"][0] == {"role": "system", "content": "be brief"}
    rows = gw.rows(2)
    for row in rows:
        assert (row["tier"], row["served_model"], row["status"]) == ("tier2", f"openai/{GPT}", "ok")
        assert (row["input_tokens"], row["cache_read_tokens"], row["output_tokens"]) == (30, 20, 3)


# -- tool calls ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("tier", ["tier2", "tier1"])  # passthrough, then through litellm
@pytest.mark.parametrize("stream", [False, True])
def test_openai_tool_call_round_trip(gw, fake_provider, tier, stream):
    model = GPT if tier == "tier2" else HAIKU
    fake_provider.script(model, Reply(text="", tool_calls=[{"id": "call_7", "name": "read_file", "arguments": {"path": "a.py"}}]),
                         Reply(text="a.py defines main"))
    client = gw.openai()
    messages = [{"role": "user", "content": "what is in a.py?"}]
    if stream:
        calls: dict[int, dict] = {}
        finish = None
        for chunk in client.chat.completions.create(model=tier, messages=messages, tools=[OPENAI_TOOL], stream=True):
            for choice in chunk.choices:
                finish = choice.finish_reason or finish
                for tc in choice.delta.tool_calls or []:
                    entry = calls.setdefault(tc.index, {"id": None, "name": "", "arguments": ""})
                    entry["id"] = tc.id or entry["id"]
                    entry["name"] += (tc.function.name or "") if tc.function else ""
                    entry["arguments"] += (tc.function.arguments or "") if tc.function else ""
        [call] = calls.values()
    else:
        resp = client.chat.completions.create(model=tier, messages=messages, tools=[OPENAI_TOOL])
        finish = resp.choices[0].finish_reason
        tc = resp.choices[0].message.tool_calls[0]
        call = {"id": tc.id, "name": tc.function.name, "arguments": tc.function.arguments}
    assert finish == "tool_calls"
    assert (call["id"], call["name"], json.loads(call["arguments"])) == ("call_7", "read_file", {"path": "a.py"})
    messages += [{"role": "assistant", "content": None, "tool_calls": [
                     {"id": call["id"], "type": "function", "function": {"name": call["name"], "arguments": call["arguments"]}}]},
                 {"role": "tool", "tool_call_id": call["id"], "content": "def main(): ..."}]
    resp = client.chat.completions.create(model=tier, messages=messages, tools=[OPENAI_TOOL])
    assert resp.choices[0].message.content == "a.py defines main"
    second = fake_provider.requests_for(model)[1].body
    if tier == "tier2":  # passthrough: exactly what the client sent
        assert second["messages"] == messages and second["tools"] == [OPENAI_TOOL]
    else:  # litellm translated it into Anthropic tool_use / tool_result blocks
        kinds = [b["type"] for m in second["messages"] for b in (m["content"] if isinstance(m["content"], list) else [])]
        assert "tool_use" in kinds and "tool_result" in kinds
        assert second["tools"][0]["name"] == "read_file"
    first, last = gw.rows(2)
    assert meta(first)["serve"]["tool_calls"] == ["read_file"] and last["response_text"] == "a.py defines main"


@pytest.mark.parametrize("tier", ["tier1", "tier2"])  # passthrough, then through litellm
@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_tool_call_round_trip(gw, fake_provider, tier, stream):
    model = HAIKU if tier == "tier1" else GPT
    fake_provider.script(model, Reply(text="Let me look.", tool_calls=[{"id": "toolu_7", "name": "read_file", "arguments": {"path": "a.py"}}]),
                         Reply(text="a.py defines main"))
    client = gw.anthropic()
    messages = [{"role": "user", "content": "what is in a.py?"}]
    if stream:
        with client.messages.stream(model=tier, max_tokens=200, messages=messages, tools=[TOOL]) as s:
            msg = s.get_final_message()
    else:
        msg = client.messages.create(model=tier, max_tokens=200, messages=messages, tools=[TOOL])
    assert msg.stop_reason == "tool_use"
    [text] = [b for b in msg.content if b.type == "text"]
    [use] = [b for b in msg.content if b.type == "tool_use"]
    assert text.text == "Let me look."
    assert (use.id, use.name, use.input) == ("toolu_7", "read_file", {"path": "a.py"})
    messages += [{"role": "assistant", "content": [{"type": "text", "text": text.text},
                                                   {"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
                 {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "def main(): ..."}]}]
    final = client.messages.create(model=tier, max_tokens=200, messages=messages, tools=[TOOL])
    assert final.content[0].text == "a.py defines main"
    second = fake_provider.requests_for(model)[1].body
    if tier == "tier1":  # passthrough: exactly what the client sent
        assert second["messages"] == messages and second["tools"] == [TOOL]
    else:  # litellm translated it into OpenAI tool_calls / a tool message
        assert second["messages"][1]["tool_calls"][0]["id"] == "toolu_7"
        assert second["messages"][2] == {"role": "tool", "tool_call_id": "toolu_7", "content": "def main(): ..."}
    first, last = gw.rows(2)
    assert meta(first)["serve"]["tool_calls"] == ["read_file"] and first["response_text"] == "Let me look."
    # the classifier read the instruction, not the tool result
    assert last["prompt_text"] == "what is in a.py?"


# -- routing ---------------------------------------------------------------------------------------------
def test_auto_routes_like_tier_ask(gw, fake_provider):
    client = gw.anthropic()
    for text in (LOW_TASK, HIGH_TASK):
        client.messages.create(model="auto", max_tokens=50, messages=[{"role": "user", "content": text}])
    low, high = gw.rows(2)
    cfg = gw.loaded.config
    for row, text in ((low, LOW_TASK), (high, HIGH_TASK)):
        expected = decide(cfg, classification=run_local(text))
        assert (row["tier"], row["task_type"], row["decision_source"]) == (expected.tier, expected.task_type, "local")
    assert (low["tier"], high["tier"]) == ("tier1", "tier3")
    assert low["prompt_text"] == LOW_TASK


def test_scenario_rules(gw, fake_provider):
    client = gw.anthropic(default_headers={"x-session-id": "scenarios"})

    class Fresh:  # each call a cold session: stickiness is tested on its own
        class messages:
            @staticmethod
            def create(**kw):
                gw.gw.sticky.clear()
                return client.messages.create(**kw)
    # Claude Code's background calls name a haiku model: tier1, whatever the text says
    Fresh.messages.create(model="claude-haiku-4-5-20251001", max_tokens=50, messages=[{"role": "user", "content": HIGH_TASK}])
    # long context (over serve.long_context_tokens = 2000) -> tier3
    Fresh.messages.create(model="claude-main-model", max_tokens=50, messages=[{"role": "user", "content": LOW_TASK + "\n" + "x = 1\n" * 3000}])
    # deep thinking requested (a budget of at least 10k tokens) -> tier3
    Fresh.messages.create(model="claude-main-model", max_tokens=20000, thinking={"type": "enabled", "budget_tokens": 16000},
                           messages=[{"role": "user", "content": LOW_TASK}])
    # a web search server tool -> tier3
    Fresh.messages.create(model="claude-main-model", max_tokens=50, messages=[{"role": "user", "content": LOW_TASK}],
                           tools=[{"type": "web_search_20250305", "name": "web_search", "max_uses": 3}])
    # none of them: the classifier
    Fresh.messages.create(model="claude-main-model", max_tokens=50, messages=[{"role": "user", "content": LOW_TASK}])
    # Claude Code's every-call default (adaptive thinking, a small budget) is not a request for the thinking tier
    Fresh.messages.create(model="claude-main-model", max_tokens=2048, extra_body={"thinking": {"type": "adaptive"}},
                           messages=[{"role": "user", "content": LOW_TASK}])
    Fresh.messages.create(model="claude-main-model", max_tokens=2048, thinking={"type": "enabled", "budget_tokens": 1024},
                           messages=[{"role": "user", "content": LOW_TASK}])
    rows = gw.rows(7)
    assert [r["tier"] for r in rows] == ["tier1", "tier3", "tier3", "tier3", "tier1", "tier1", "tier1"]
    assert [meta(r)["serve"].get("rule") for r in rows] == ["small_model", "long_context", "thinking", "web_search", None, None, None]
    assert [r["decision_source"] for r in rows] == ["scenario"] * 4 + ["local"] * 3
    assert rows[2]["decided_tier"] == "tier1"  # what the classifier said before the rule
    assert [r.model for r in fake_provider.requests] == [HAIKU, SONNET, SONNET, SONNET, HAIKU, HAIKU, HAIKU]


def test_a_new_task_leaves_a_warm_tier_only_when_the_switch_pays(gw, fake_provider, monkeypatch):
    """Stickiness is per task now: the steps of a task stay on its tier; a new task moves the session
    down from a warm tier only when the expected saving beats rebuilding the cache (switch_pays)."""
    client = gw.openai()

    def ask(text: str, session: str) -> None:
        client.chat.completions.create(model="auto", messages=[{"role": "user", "content": text}],
                                       extra_headers={"x-session-id": session})

    pays = {"value": False}
    monkeypatch.setattr(gw.gw, "_switch_pays", lambda inc, old, new: pays["value"])
    ask(HIGH_TASK, "s-warm")  # tier3
    ask(LOW_TASK, "s-warm")  # tier1 by itself: the switch does not pay, kept on the warm tier3
    ask(LOW_TASK, "s-other")  # another session: not affected
    gw.gw.sticky["s-warm"] = ("tier3", time.time() - 301)  # the 5-minute cache went cold
    ask(LOW_TASK + " (again)", "s-warm")
    ask(HIGH_TASK + " (again)", "s-warm")  # warm on tier1 now, but this one must rise
    pays["value"] = True
    ask(LOW_TASK + " (third)", "s-warm")  # warm on tier3, and now moving down pays
    rows = gw.rows(6)
    assert [r["tier"] for r in rows] == ["tier3", "tier3", "tier1", "tier1", "tier3", "tier1"]
    assert [r["decision_source"] for r in rows] == ["local", "sticky", "local", "local", "local", "local"]
    kept = meta(rows[1])
    assert kept["serve"]["sticky"]["kept"] is True and kept["serve"]["sticky"]["decided"] == "tier1"
    assert any(reason.startswith("sticky: session cache warm on tier3") for reason in kept["reasons"])
    assert rows[1]["decided_tier"] == "tier1"
    assert "sticky" not in meta(rows[3])["serve"]  # cold: no stickiness
    assert meta(rows[4])["serve"]["sticky"]["kept"] is False
    assert meta(rows[5])["serve"]["sticky"]["kept"] is False
    assert any("saves more than rebuilding the cache" in reason for reason in meta(rows[5])["reasons"])
    assert len({r["task_id"] for r in rows}) == 6  # every instruction is a task of its own
    # the report shows the cache hits kept
    from tiercli.ledger import Ledger
    from tiercli.report import build_report

    with Ledger(gw.db) as ledger:
        caching = build_report(ledger, gw.loaded.config, since=None, until=None, session=None)["caching"]
    assert caching["sticky_calls"] == 1
    assert caching["sticky_cache_read_tokens"] == rows[1]["cache_read_tokens"]


def test_every_step_of_a_task_stays_on_the_tier_its_instruction_got(gw, fake_provider):
    """One Claude Code style task: the instruction, then tool-result turns; classified once."""
    call = {"id": "toolu_1", "name": "read_file", "arguments": {"path": "a.py"}}
    fake_provider.script(SONNET, Reply(text="looking", tool_calls=[call]), Reply(text="looking", tool_calls=[call]),
                         Reply(text="done"))
    client = gw.anthropic(default_headers={"x-session-id": "s-task"})
    messages = [{"role": "user", "content": HIGH_TASK}]
    for _ in range(3):
        msg = client.messages.create(model="claude-main-model", max_tokens=200, messages=messages, tools=[TOOL])
        if msg.stop_reason != "tool_use":
            break
        use = next(b for b in msg.content if b.type == "tool_use")
        messages += [{"role": "assistant", "content": [{"type": "tool_use", "id": use.id, "name": use.name, "input": use.input}]},
                     {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "x = 1"}]}]
    rows = gw.rows(3)
    assert [r["tier"] for r in rows] == ["tier3"] * 3
    assert len({r["task_id"] for r in rows}) == 1 and rows[0]["task_id"]
    assert [meta(r)["serve"]["task_rule"] for r in rows] == ["new_task", "tool_step", "tool_step"]
    assert all(r["prompt_text"] == HIGH_TASK for r in rows)  # the task's instruction, not the tool result


# -- auth, keys, errors -------------------------------------------------------------------------------------
def test_non_loopback_needs_a_token():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10")
    loaded = cfgmod.load(None)
    with pytest.raises(UsageError, match="needs a local token"):
        create_app(loaded, "unused.db", host="0.0.0.0")


def test_401_without_the_token_when_bound_beyond_loopback(gateways, fake_provider, keys):
    # configured as if bound to 0.0.0.0 (served on 127.0.0.1 here: tests never leave loopback)
    g = gateways("public", host="0.0.0.0", token="local-s3cret")
    g.clear()
    with pytest.raises(openai.AuthenticationError):
        g.openai().chat.completions.create(model="tier2", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(anthropic.AuthenticationError):
        g.anthropic().messages.create(model="tier1", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert httpx.get(g.url + "/v1/models").status_code == 401
    assert fake_provider.requests == [] and g.rows() == []
    # with the token (as the client's API key, or its own header) it works; the token never goes upstream
    g.openai(key="local-s3cret").chat.completions.create(model="tier2", messages=[{"role": "user", "content": "x"}])
    g.anthropic(key="local-s3cret").messages.create(model="tier1", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    g.anthropic(default_headers={"x-tier-token": "local-s3cret"}).messages.create(
        model="tier1", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    assert [r.headers.get("x-api-key") or r.headers.get("authorization") for r in fake_provider.requests] == [
        f"Bearer {OPENAI_KEY}", ANTHROPIC_KEY, ANTHROPIC_KEY]


def test_client_key_is_forwarded_only_when_the_config_says_so(gateways, fake_provider, keys):
    g = gateways("forward", MAIN_SERVE.replace("serve:", "serve:\n  forward_client_key: true"))
    g.clear()
    g.anthropic().messages.create(model="tier1", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    g.anthropic(key=None, auth_token="sk-ant-oat-subscription").messages.create(
        model="tier1", max_tokens=10, messages=[{"role": "user", "content": "x"}])
    g.openai().chat.completions.create(model="tier2", messages=[{"role": "user", "content": "x"}])
    first, second, third = fake_provider.requests
    # forwarded in the header the client used (x-api-key or a Bearer token)
    assert CLIENT_ANTHROPIC_KEY in (first.headers.get("x-api-key") or first.headers.get("authorization"))
    assert second.headers["authorization"] == "Bearer sk-ant-oat-subscription" and "x-api-key" not in second.headers
    assert third.headers["authorization"] == f"Bearer {CLIENT_OPENAI_KEY}"
    no_secret_in(g.rows(3))


def test_bad_json_is_400_in_the_callers_protocol(gw):
    bad = httpx.post(gw.url + "/v1/chat/completions", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["type"] == "invalid_request_error"
    bad = httpx.post(gw.url + "/v1/messages", content=b"[1, 2]", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["type"] == "error"
    assert bad.json()["error"]["type"] == "invalid_request_error"
    empty = httpx.post(gw.url + "/v1/messages", json={"model": "auto", "max_tokens": 5, "messages": []})
    assert empty.status_code == 400 and "messages" in empty.json()["error"]["message"]
    assert gw.rows() == []


def test_budget_refusal_answers_402_and_is_recorded(gateways, fake_provider, keys):
    g = gateways("budget", MAIN_SERVE + "guardrails: {budget: {daily_usd: 0.000001}}\n")
    g.clear()
    with pytest.raises(anthropic.APIStatusError) as info:
        g.anthropic().messages.create(model="tier3", max_tokens=1000, messages=[{"role": "user", "content": "x"}])
    assert info.value.status_code == 402 and "daily budget" in info.value.message
    assert fake_provider.requests == []
    [row] = g.rows(1)
    assert (row["status"], row["error_class"]) == ("refused", "BudgetExceeded")


# -- through litellm for the same protocol, other endpoints, offline -----------------------------------------
@pytest.mark.parametrize("stream", [False, True])
def test_router_path_for_the_same_protocol(gateways, fake_provider, keys, stream):
    g = gateways("router", MAIN_SERVE.replace("serve:", "serve:\n  passthrough: false"))
    g.clear()
    fake_provider.set_default(HAIKU, Reply(text="via litellm", input_tokens=7, output_tokens=2))
    fake_provider.set_default(GPT, Reply(text="via litellm too", prompt_tokens=9, output_tokens=3))
    if stream:
        with g.anthropic().messages.stream(model="tier1", max_tokens=50, messages=[{"role": "user", "content": "x"}]) as s:
            assert "".join(s.text_stream) == "via litellm"
        chunks = g.openai().chat.completions.create(model="tier2", stream=True, messages=[{"role": "user", "content": "x"}])
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "via litellm too"
    else:
        msg = g.anthropic().messages.create(model="tier1", max_tokens=50, messages=[{"role": "user", "content": "x"}])
        assert msg.content[0].text == "via litellm" and msg.usage.input_tokens == 7
        resp = g.openai().chat.completions.create(model="tier2", messages=[{"role": "user", "content": "x"}])
        assert resp.choices[0].message.content == "via litellm too"
    a, o = g.rows(2)
    assert (a["tier"], a["input_tokens"], a["output_tokens"]) == ("tier1", 7, 2)
    assert (o["tier"], o["input_tokens"], o["output_tokens"]) == ("tier2", 9, 3)


def test_models_and_count_tokens(gw):
    assert [m.id for m in gw.openai().models.list()] == ["auto", "tier1", "tier2", "tier3"]
    assert [m.id for m in gw.anthropic().models.list()] == ["auto", "tier1", "tier2", "tier3"]
    counted = gw.anthropic().messages.count_tokens(model="claude-main-model", system="be brief",
                                                    messages=[{"role": "user", "content": "hello there " * 50}], tools=[TOOL])
    assert 100 < counted.input_tokens < 400
    assert gw.rows() == []  # counting calls no model


def test_offline_default_answers_a_placeholder(tmp_path, keys):
    app = create_app(cfgmod.load(None), tmp_path / "offline.db")
    from starlette.testclient import TestClient

    with TestClient(app, base_url="http://127.0.0.1:4141") as client:  # TestClient's own Host, testserver, is refused
        resp = client.post("/v1/chat/completions", json={"model": "auto", "messages": [{"role": "user", "content": LOW_TASK}]})
        assert resp.status_code == 200 and "offline placeholder" in resp.json()["choices"][0]["message"]["content"]
        resp = client.post("/v1/messages", json={"model": "tier3", "max_tokens": 10, "stream": True,
                                                 "messages": [{"role": "user", "content": "x"}]})
        assert resp.status_code == 200 and "event: message_stop" in resp.text
        app.state.gateway.flush()
    conn = sqlite3.connect(tmp_path / "offline.db")
    assert [r[0] for r in conn.execute("SELECT tier FROM calls ORDER BY started_at")] == ["tier1", "tier3"]


# -- streams that end early ---------------------------------------------------------------------------------
@pytest.mark.parametrize("tier", ["tier2", "tier1"])  # passthrough, then through litellm
def test_an_upstream_cut_mid_stream_is_an_error_event_and_an_error_row(gw, fake_provider, tier):
    model = GPT if tier == "tier2" else HAIKU
    fake_provider.set_default(model, Reply(text="one two three four five six", cut_stream_after=2))
    pieces = []
    with pytest.raises(openai.APIError):
        for chunk in gw.openai().chat.completions.create(model=tier, stream=True, messages=[{"role": "user", "content": "x"}]):
            pieces += [c.delta.content or "" for c in chunk.choices]
    assert "".join(pieces) == "one two "
    [row] = gw.rows(1)
    assert row["status"] == "error" and row["response_text"] == "one two "


def test_a_client_hanging_up_mid_stream_is_recorded_as_interrupted(gw, fake_provider):
    fake_provider.set_default(HAIKU, Reply(text="word " * 40, chunk_delay_s=0.05))
    body = {"model": "tier1", "max_tokens": 100, "stream": True, "messages": [{"role": "user", "content": "x"}]}
    with httpx.Client(timeout=10) as client, client.stream("POST", gw.url + "/v1/messages", json=body) as resp:
        for chunk in resp.iter_bytes():
            if b"content_block_delta" in chunk:
                break
    [row] = gw.rows(1, timeout=5)
    assert row["status"] == "interrupted" and row["error_class"] == "ClientDisconnected"
    assert row["response_text"].startswith("word ") and row["input_tokens"] > 0


def test_router_fallback_records_the_failed_attempt(gw, fake_provider):
    fake_provider.script(HAIKU, Reply.rate_limited(retry_after=0))
    fake_provider.set_default(SONNET, Reply(text="tier3 via litellm"))
    resp = gw.openai().chat.completions.create(model="tier1", messages=[{"role": "user", "content": "x"}])
    assert resp.choices[0].message.content == "tier3 via litellm"
    [row] = gw.rows(1)
    assert (row["tier"], row["served_tier"], row["fallback_count"]) == ("tier1", "tier3", 1)
    [failed] = json.loads(row["attempts_json"])
    assert failed["group"] == "tier1" and failed["error_class"] == "RateLimitError"
    from tiercli import providers

    assert row["id"] not in providers._ATTEMPT_LOG.failures  # collected, not piling up


def test_an_unset_key_variable_is_named(gw, fake_provider, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(openai.InternalServerError) as info:
        gw.openai().chat.completions.create(model="tier2", messages=[{"role": "user", "content": "x"}])
    assert "OPENAI_API_KEY is not set" in info.value.message
    assert fake_provider.requests == [] and gw.rows() == []


def test_the_iteration_limit_applies_only_when_configured(gateways, fake_provider, keys):
    g = gateways("iterations", MAIN_SERVE.replace("serve:", "serve:\n  max_iterations: 2"))
    g.clear()
    client = g.openai()
    for _ in range(2):
        client.chat.completions.create(model="tier2", user="loop-1", messages=[{"role": "user", "content": "x"}])
    with pytest.raises(openai.PermissionDeniedError) as info:
        client.chat.completions.create(model="tier2", user="loop-1", messages=[{"role": "user", "content": "x"}])
    assert "iteration limit is 2" in info.value.message
    client.chat.completions.create(model="tier2", user="loop-2", messages=[{"role": "user", "content": "x"}])
    assert [r["status"] for r in g.rows(4)] == ["ok", "ok", "refused", "ok"]


def test_tier_help_loads_no_web_stack():
    import subprocess
    import sys

    code = ("import sys\nfrom tiercli import cli\nsys.argv = ['tier', '--help']\ntry:\n    cli.main()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('starlette', 'uvicorn', 'litellm') or m == 'tiercli.serve'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_serve_rules_must_name_known_tiers(tmp_path, fake_provider_server):
    from tiercli.errors import ConfigError

    path = tmp_path / "bad.yaml"
    path.write_text(config_text(fake_provider_server, "serve: {thinking_tier: tier9}"))
    with pytest.raises(ConfigError, match="serve.thinking_tier 'tier9' is not in routing.tiers"):
        cfgmod.load(path)
    path.write_text(config_text(fake_provider_server, "serve: {small_model_pattern: '(unclosed'}"))
    with pytest.raises(ConfigError, match="small_model_pattern is not a valid regular expression"):
        cfgmod.load(path)
