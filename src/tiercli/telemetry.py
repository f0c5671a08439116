"""Optional OpenTelemetry spans: one per routing decision, one per model call.

Off unless `telemetry.enabled: true` in the config or a standard OTEL_* variable
(OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, OTEL_TRACES_EXPORTER) is set, and
only when the `opentelemetry-api` package is installed (the `otel` extra); otherwise every call
here is a no-op and nothing is imported. Spans go to whatever tracer provider is installed (for
instance by `opentelemetry-instrument`); with OTEL_EXPORTER_OTLP_* set and the OTLP exporter
installed, tier installs one itself.

Attributes follow the GenAI semantic conventions (gen_ai.operation.name, gen_ai.request.model,
gen_ai.response.model, gen_ai.usage.input_tokens — all prompt tokens, cached included —,
gen_ai.usage.output_tokens, gen_ai.usage.cache_read.input_tokens,
gen_ai.usage.cache_creation.input_tokens) plus tier.* attributes for the routing and the cost.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator

_ENV_SWITCHES = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_TRACES_EXPORTER")
_tracer = None
_provider_installed = False


def enabled(config_switch: bool) -> bool:
    if not (config_switch or any(os.environ.get(v) for v in _ENV_SWITCHES)):
        return False
    try:
        import opentelemetry.trace  # noqa: F401
    except ImportError:
        return False
    return True


def _get_tracer():
    global _tracer, _provider_installed
    from opentelemetry import trace

    otlp = os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT") or os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if otlp and not _provider_installed:
        _provider_installed = True
        try:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import TracerProvider
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            if not isinstance(trace.get_tracer_provider(), TracerProvider):
                provider = TracerProvider(resource=Resource.create({"service.name": "tiercli"}))
                provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
                trace.set_tracer_provider(provider)
        except ImportError:
            pass  # no SDK/exporter: spans go to whatever provider the environment installed
    if _tracer is None:
        _tracer = trace.get_tracer("tiercli")
    return _tracer


class _NoSpan:
    def set_attributes(self, attributes: dict[str, Any]) -> None:
        pass

    def record_error(self, exc: BaseException) -> None:
        pass


class _Span:
    def __init__(self, span):
        self._span = span

    def set_attributes(self, attributes: dict[str, Any]) -> None:
        self._span.set_attributes({k: v for k, v in attributes.items() if v is not None})

    def record_error(self, exc: BaseException) -> None:
        from opentelemetry.trace import Status, StatusCode

        self._span.set_attribute("error.type", getattr(exc, "error_class", None) or type(exc).__name__)
        self._span.set_status(Status(StatusCode.ERROR, getattr(exc, "message", str(exc))[:200]))


@contextmanager
def span(on: bool, name: str, attributes: dict[str, Any] | None = None) -> Iterator[_NoSpan | _Span]:
    """A span when telemetry is on, else a no-op object with the same methods."""
    if not on:
        yield _NoSpan()
        return
    with _get_tracer().start_as_current_span(name, record_exception=False, set_status_on_exception=False) as raw:
        wrapped = _Span(raw)
        wrapped.set_attributes(attributes or {})
        try:
            yield wrapped
        except BaseException as exc:
            wrapped.record_error(exc)
            raise


def emit(on: bool, name: str, attributes: dict[str, Any], start: float, end: float,
         error: BaseException | None = None) -> None:
    """A finished span with explicit times (epoch seconds): the recorded-call pipeline reports a call
    when it settles, whichever path (tier ask, the gateway, a replay) made it."""
    if not on:
        return
    raw = _get_tracer().start_span(name, start_time=int(start * 1e9))
    wrapped = _Span(raw)
    wrapped.set_attributes(attributes)
    if error is not None:
        wrapped.record_error(error)
    raw.end(end_time=int(max(end, start) * 1e9))


def decision_attributes(decision) -> dict[str, Any]:
    return {
        "tier.tier": decision.tier, "tier.decided_tier": decision.decided_tier, "tier.task_type": decision.task_type,
        "tier.label": decision.label, "tier.decision_source": decision.source, "tier.classifier": decision.classifier,
        "tier.confidence": decision.confidence,
    }


def call_attributes(model: str, provider: str, usage=None, response_model: str | None = None,
                    cost_usd: float | None = None, served_tier: str | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "gen_ai.operation.name": "chat", "gen_ai.provider.name": provider, "gen_ai.request.model": model,
        "gen_ai.response.model": response_model, "tier.served_tier": served_tier, "tier.cost_usd": cost_usd,
        "tier.unpriced": None if usage is None else cost_usd is None,
    }
    if usage is not None:
        out.update({
            "gen_ai.usage.input_tokens": usage.prompt_tokens, "gen_ai.usage.output_tokens": usage.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": usage.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": usage.cache_write_tokens,
        })
    return out
