"""Translated passthrough: an Anthropic client on an OpenAI-compatible chain, without litellm's call
path; a mixin of serve.gateway.Gateway.

Why: litellm's per-chunk stream wrapper (the OpenAI SDK building a pydantic object per chunk, then
litellm's chunk_creator) was most of the +70 ms a 60-event stream took through the gateway (issue 17's
profile); claude-code-router, the tool a user would pick instead, forwards over plain HTTP. So when
every deployment of the tier and its fallbacks is a plain OpenAI-compatible one (the same rule as
same-protocol passthrough, providers/passthrough.chain_for), the request is translated once (litellm's
Anthropic adapter, request side only), sent over the gateway's own HTTP client along the chain
(passthrough.send: the config's keys, never the client's Anthropic key), and the answer translated
back directly (anthropic_sse): SSE event by event as it arrives, JSON whole. As with same-protocol
passthrough, litellm's retries and cooldowns do not apply; everything else still goes through litellm.

Settlement as everywhere: before the last byte (the final events are held back until it is written).
"""

from __future__ import annotations

import json
from typing import Any, AsyncIterator

from starlette.responses import JSONResponse, Response, StreamingResponse

from tiercli import providers
from tiercli.config import Deployment
from tiercli.providers import passthrough
from tiercli.serve import anthropic_sse
from tiercli.serve.accounting import Outcome, Served
from tiercli.serve.flight import Flight, GatewayParts
from tiercli.serve.wire import body_chunks, error_event, sse_event_batches


def _event_json(event: bytes) -> dict[str, Any] | None:
    """The JSON object of one OpenAI SSE event, or None ([DONE], comments, keep-alives)."""
    for line in event.split(b"\n"):
        if line.startswith(b"data:"):
            data = line[5:].strip()
            if not data or data == b"[DONE]":
                return None
            try:
                obj = json.loads(data.decode("utf-8"))  # str: json.loads would sniff the bytes' encoding first
            except ValueError:
                return None
            return obj if isinstance(obj, dict) else None
    return None


class Translated(GatewayParts):

    async def _translated(self, flight: Flight, chain: list[tuple[str, Deployment]]) -> Response:
        inc, tier = flight.inc, flight.call.decision.tier
        kwargs, mapping = self._router_request(inc, tier)  # validated before admission (gateway._serve)
        kwargs.pop("stream_options", None)  # passthrough.request_for asks for usage in the stream itself
        if inc.stream:
            kwargs["stream"] = True
        sent = await passthrough.send(self._http, self.cfg, chain, "openai", kwargs, {}, None, inc.stream,
                                      (), inc.model, self.cfg.guardrails.max_output_tokens)
        flight.adapted = [*(getattr(inc, "adapted", None) or []), *(sent.adapted or [])]
        if sent.response is None:
            failed = passthrough.failure(tier, sent.attempts)
            failed.status_code = sent.last_error[0] if sent.last_error else None  # type: ignore[attr-defined]
            await self._on_db(self._settle_failed, flight, failed)
            return self._failure_response("anthropic", failed)
        served = Served.from_sent(sent)
        out = Outcome("openai")
        model = served.model.split("/", 1)[-1]
        resp = sent.response
        if inc.stream:
            return StreamingResponse(self._translate_stream(flight, resp, served, out, mapping, model),
                                     media_type="text/event-stream", headers={"cache-control": "no-cache"})
        try:
            data = await resp.aread()
        finally:
            await resp.aclose()
        try:
            obj = json.loads(data)
            if not isinstance(obj, dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:
            broke = providers.scrub(f"upstream answer unreadable: {exc}", self.cfg)
            await self._on_db(self._settle_stream, flight, served, out, "broke", broke)
            return self._failure_response("anthropic", providers.CallFailed(broke, None, error_class="APIError",
                                                                            attempts=[]))
        out.feed_openai(obj)
        await self._on_db(self._settle_ok, flight, served, out)
        self._remember(flight, served.group)
        return JSONResponse(anthropic_sse.message_from_openai(obj, model, mapping))

    async def _translate_stream(self, flight: Flight, resp, served: Served, out: Outcome, mapping: dict[str, str],
                                model: str) -> AsyncIterator[bytes]:
        """The upstream's OpenAI SSE as Anthropic events, each chunk translated as it arrives; the
        last batch of events is held back until the call is settled."""
        translator = anthropic_sse.Translator(model, mapping)
        held = b""
        state, broke = "cancelled", ""
        settled = False
        try:
            async for parts in sse_event_batches(body_chunks(resp)):
                piece = self._translate_events(parts, translator, out)
                if piece:
                    if held:
                        yield held
                    held = piece
            state = "done"
            await self._on_db(self._settle_stream, flight, served, out, state, "")
            settled = True
            if out.error is not None:  # an error event inside the 200 stream: settled as failed
                message = providers.scrub(str(out.error.get("message") or out.error), self.cfg)
                if held:
                    yield held
                yield error_event("anthropic", 502, message)
                return
            self._remember(flight, served.group)
            yield held + translator.end()
        except Exception as exc:  # noqa: BLE001 - the upstream broke mid-stream
            state, broke = "broke", providers.scrub(f"upstream stream broke: {type(exc).__name__}: {exc}", self.cfg)
            if held:
                yield held
            yield error_event("anthropic", 502, broke)
        finally:  # under a cancelled scope (the client hung up) every await raises again: queue it
            if not settled:  # settled above saves a hop to the ledger thread
                self._later(self._settle_stream, flight, served, out, state, broke)
            await resp.aclose()

    @staticmethod
    def _translate_events(events: list[bytes], translator: anthropic_sse.Translator, out: Outcome) -> bytes:
        piece = b""
        for event in events:
            obj = _event_json(event) if event else None
            if obj is None:
                continue
            out.feed_openai(obj)  # read once: the settlement uses what this saw
            if not obj.get("error"):
                piece += translator.chunk(obj)
        return piece
