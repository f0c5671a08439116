"""OpenTelemetry spans with GenAI attributes, checked with the SDK's in-memory exporter."""

import pytest

pytest.importorskip("opentelemetry.sdk")

from opentelemetry import trace  # noqa: E402
from opentelemetry.sdk.trace import TracerProvider  # noqa: E402
from opentelemetry.sdk.trace.export import SimpleSpanProcessor  # noqa: E402
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from fakeprovider import Reply, tier_config  # noqa: E402
from tiercli import telemetry  # noqa: E402
from tiercli.cli import app  # noqa: E402

EXPORTER = InMemorySpanExporter()
_provider = TracerProvider()
_provider.add_span_processor(SimpleSpanProcessor(EXPORTER))
trace.set_tracer_provider(_provider)


@pytest.fixture(autouse=True)
def clean():
    EXPORTER.clear()
    telemetry._tracer = None
    yield


def write_config(fake, tmp_path, enabled):
    body = ("routing: {tiers: [tier1, tier2], default_tier: tier1, classifier: static, task_types: {search: tier1}, labels: {}}\n"
            f"guardrails: {{compaction: {{tier: tier1}}}}\ntelemetry: {{enabled: {str(enabled).lower()}}}")
    return tier_config(fake, tmp_path / "otel.yaml", ["anthropic/claude-haiku-4-5", "anthropic/claude-sonnet-4-5"],
                       fallbacks=False, body=body)


def test_spans_per_decision_and_call_with_genai_attributes(fake_provider, tmp_path, tier_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-otel-0000000000000000")
    fake_provider.set_default("claude-haiku-4-5", Reply(text="ok", input_tokens=100, cache_read_tokens=900, cache_write_tokens=50, output_tokens=7))
    result = CliRunner().invoke(app, ["ask", "-c", write_config(fake_provider, tmp_path, True), "-t", "search", "where?"])
    assert result.exit_code == 0, result.output
    spans = {s.name: s for s in EXPORTER.get_finished_spans()}
    route = spans["tier.route"]
    assert route.attributes["tier.tier"] == "tier1" and route.attributes["tier.task_type"] == "search"
    assert route.attributes["tier.decision_source"] == "static"
    call = spans["chat anthropic/claude-haiku-4-5"]
    a = call.attributes
    assert a["gen_ai.operation.name"] == "chat" and a["gen_ai.request.model"] == "anthropic/claude-haiku-4-5"
    assert a["gen_ai.response.model"] == "anthropic/claude-haiku-4-5"
    assert (a["gen_ai.usage.input_tokens"], a["gen_ai.usage.output_tokens"]) == (1050, 7)
    assert (a["gen_ai.usage.cache_read.input_tokens"], a["gen_ai.usage.cache_creation.input_tokens"]) == (900, 50)
    # haiku-4-5: $1 in, $0.10 cache read, $1.25 cache write, $5 out per Mtok
    assert a["tier.cost_usd"] == pytest.approx((100 * 1 + 900 * 0.1 + 50 * 1.25 + 7 * 5) / 1e6)


def test_failed_call_span_has_error_status(fake_provider, tmp_path, tier_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-otel-0000000000000000")
    fake_provider.set_default("*", Reply.error(401, "bad key"))
    result = CliRunner().invoke(app, ["ask", "-c", write_config(fake_provider, tmp_path, True), "-t", "search", "x"])
    assert result.exit_code == 6
    [call] = [s for s in EXPORTER.get_finished_spans() if s.name.startswith("chat ")]
    assert call.status.status_code.name == "ERROR" and call.attributes["error.type"] == "AuthenticationError"


def test_off_by_default(fake_provider, tmp_path, tier_home, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-otel-0000000000000000")
    for var in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER"):
        monkeypatch.delenv(var, raising=False)
    result = CliRunner().invoke(app, ["ask", "-c", write_config(fake_provider, tmp_path, False), "-t", "search", "x"])
    assert result.exit_code == 0
    assert EXPORTER.get_finished_spans() == ()


def test_standard_otel_variable_switches_it_on(monkeypatch):
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    assert telemetry.enabled(False)
    monkeypatch.delenv("OTEL_TRACES_EXPORTER")
    assert not telemetry.enabled(False)
