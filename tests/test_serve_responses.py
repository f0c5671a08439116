"""`POST /v1/responses` (what current Codex speaks), through the official openai SDK's
`responses.create`, routed and recorded like the other protocols, JSON and SSE, tool calls, usage."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from fakeprovider import Reply
from helpers import rows as ledger_rows
from test_serve import ANTHROPIC_KEY, OPENAI_KEY, Gateway, config_text

pytestmark = pytest.mark.filterwarnings("ignore:Items .* are using the `ReadOnly` qualifier:UserWarning")
SHELL = {"type": "function", "name": "shell", "description": "Run a command",
         "parameters": {"type": "object", "properties": {"command": {"type": "array", "items": {"type": "string"}}},
                        "required": ["command"]}}


@pytest.fixture
def gw(fake_provider, tier_home, monkeypatch, tmp_path):
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    path = tmp_path / "r.yaml"
    path.write_text(config_text(fake_provider, "serve: {sticky_ttl_s: 0}"))
    g = Gateway(path, tmp_path / "r.db")
    yield g
    g.stop()


def client(gw) -> openai.OpenAI:
    return openai.OpenAI(base_url=gw.url + "/v1", api_key="codex-local", max_retries=0)


@pytest.mark.parametrize("tier,model", [("tier2", "gpt-5-mini"), ("tier1", "claude-haiku-4-5")])  # passthrough, litellm
def test_responses_json_with_text_and_usage(gw, fake_provider, tier, model):
    fake_provider.set_default(model, Reply(text="the answer", input_tokens=120, output_tokens=4))
    resp = client(gw).responses.create(model=tier, instructions="be brief", input="where is main defined?")
    assert resp.status == "completed" and resp.output_text == "the answer"
    assert resp.usage.input_tokens == 120 and resp.usage.output_tokens == 4
    [sent] = fake_provider.requests_for(model)
    [row] = gw.rows(1)
    assert row["status"] == "ok" and row["tier"] == tier and row["cost_usd"] > 0
    assert json.loads(row["meta_json"])["serve"]["api"] == "responses"
    assert row["prompt_text"] == "where is main defined?"


def test_responses_stream_with_a_tool_call_then_its_output(gw, fake_provider):
    call = {"id": "call_7", "name": "shell", "arguments": {"command": ["ls"]}}
    fake_provider.set_default("gpt-5-mini", Reply(text="", tool_calls=[call], input_tokens=200, output_tokens=9))
    events = list(client(gw).responses.create(model="tier2", input="list the files", tools=[SHELL], stream=True))
    kinds = [e.type for e in events]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.function_call_arguments.delta" in kinds and "response.output_item.done" in kinds
    final = events[-1].response
    [item] = final.output
    assert item.type == "function_call" and item.name == "shell" and json.loads(item.arguments) == {"command": ["ls"]}
    assert final.usage.input_tokens == 200 and final.usage.output_tokens == 9
    # the next turn sends the call and its output back; the chat request upstream carries both
    fake_provider.set_default("gpt-5-mini", Reply(text="two files", input_tokens=250, output_tokens=3))
    events = list(client(gw).responses.create(model="tier2", tools=[SHELL], stream=True, input=[
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "list the files"}]},
        {"type": "function_call", "call_id": "call_7", "name": "shell", "arguments": '{"command": ["ls"]}'},
        {"type": "function_call_output", "call_id": "call_7", "output": "a.py\nb.py"}]))
    assert events[-1].response.output_text == "two files"
    upstream = fake_provider.requests_for("gpt-5-mini")[-1].body["messages"]
    assert [m["role"] for m in upstream] == ["user", "assistant", "tool"]
    assert upstream[1]["tool_calls"][0]["id"] == "call_7" and upstream[2]["tool_call_id"] == "call_7"
    rows = gw.rows(2)
    assert [r["status"] for r in rows] == ["ok", "ok"] and all(r["output_tokens"] for r in rows)
    assert rows[0]["session"] == rows[1]["session"]  # one conversation


def test_malformed_responses_requests_are_400_and_unrecorded(gw, fake_provider):
    for body in ({"model": "tier2"}, {"model": "tier2", "input": 5}, {"model": "tier2", "input": [7]},
                 {"model": "tier2", "input": [{"type": "message", "role": "robot", "content": "x"}]}):
        resp = httpx.post(gw.url + "/v1/responses", json=body)
        assert resp.status_code == 400 and resp.json()["error"]["type"] == "invalid_request_error", resp.text
    assert ledger_rows(gw.db) == [] and fake_provider.requests == []
