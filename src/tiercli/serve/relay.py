"""The gateway's two ways to a provider and back, settling each call before its last byte: the
offline placeholder, same-protocol passthrough (providers/passthrough.py) and litellm's Router
(providers.complete_raw); a mixin of serve.gateway.Gateway."""

from __future__ import annotations

import asyncio
import json
from typing import Any, AsyncIterator

from starlette.responses import JSONResponse, Response, StreamingResponse

from tiercli import providers
from tiercli.config import Deployment
from tiercli.providers import adapt, passthrough
from tiercli.serve import anthropic_sse
from tiercli.serve.accounting import Outcome, Served, Tap
from tiercli.serve.flight import Flight, GatewayParts
from tiercli.serve.wire import (
    BadRequest,
    Incoming,
    body_chunks,
    error_event,
    error_response,
    render_text,
    sse_event_batches,
)


class Relays(GatewayParts):

    # -- offline placeholder -------------------------------------------------------------------------
    async def _offline(self, flight: Flight) -> Response:
        inc, tier = flight.inc, flight.call.decision.tier
        done = providers.offline_completion(self.cfg, tier, inc.flat)
        out = Outcome(inc.protocol, text=[done.text], usage=done.usage, finish="stop")
        await self._on_db(self._settle_ok, flight, Served(tier, done.served_model, done.deployment_id, []), out)
        self._remember(flight, tier)
        return render_text(inc.protocol, done.text, done.served_model, done.usage, inc.stream, inc.wants_usage)

    # -- passthrough ---------------------------------------------------------------------------------
    async def _passthrough(self, flight: Flight, chain: list[tuple[str, Deployment]]) -> Response:
        inc = flight.inc
        secrets = (inc.client_key[1],) if inc.client_key else ()
        client_key = inc.client_key if self._forwards_client_key(inc) else None
        sent = await passthrough.send(self._http, self.cfg, chain, inc.protocol, inc.body, inc.headers, client_key,
                                      inc.stream, secrets, inc.model, self.cfg.guardrails.max_output_tokens)
        if sent.adapted:
            flight.adapted = sent.adapted
        if sent.response is None:
            failed = passthrough.failure(flight.call.decision.tier, sent.attempts)
            await self._on_db(self._settle_failed, flight, failed)
            last = sent.last_error
            if last is not None and (last[0] in passthrough.CLIENT_ERRORS or last[0] == 529
                                     or all(a.error_class == "RateLimitError" for a in sent.attempts)):
                status, data, headers = last
                return Response(data, status_code=status, headers=headers)  # same protocol: the provider's own (scrubbed)
            return error_response(inc.protocol, 502, failed.message)
        served = Served.from_sent(sent)
        out = Outcome(inc.protocol, wants_usage=inc.wants_usage)
        resp = sent.response
        if not inc.stream:
            try:
                data = await resp.aread()
            finally:
                await resp.aclose()
            try:
                obj = json.loads(data)
                out.feed_anthropic_message(obj) if inc.protocol == "anthropic" else out.feed_openai(obj)
            except (ValueError, AttributeError, TypeError):
                pass  # counted locally when settled
            await self._on_db(self._settle_ok, flight, served, out)
            self._remember(flight, served.group)
            return Response(data, status_code=resp.status_code, media_type="application/json")
        return StreamingResponse(self._relay(flight, resp, served, out), status_code=resp.status_code,
                                 media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _relay(self, flight: Flight, resp, served: Served, out: Outcome) -> AsyncIterator[bytes]:
        """The upstream SSE, event by event, as received (an OpenAI usage chunk the client did not ask
        for is left out). Each event is read for the ledger as it passes (text, tool calls, usage), so
        settling needs no second pass; the last event is held back until the call is settled."""
        held = b""
        state, broke = "cancelled", ""
        settled = False
        feed = out.feed_event
        try:
            async for parts in sse_event_batches(body_chunks(resp)):
                kept = [e for e in parts if e and feed(e)]
                if kept:
                    if held:
                        yield held
                    held = b"\n\n".join(kept) + b"\n\n"
            state = "done"
            await self._on_db(self._settle_stream, flight, served, out, state, "")
            settled = True
            if out.error is None:
                self._remember(flight, served.group)
            if held:
                yield held
        except Exception as exc:  # noqa: BLE001 - the upstream broke mid-stream
            state, broke = "broke", providers.scrub(f"upstream stream broke: {type(exc).__name__}: {exc}", self.cfg)
            if held:
                yield held
            yield error_event(flight.inc.protocol, 502, broke)
        finally:  # under a cancelled scope (the client hung up) every await raises again: queue it
            if not settled:  # settled above saves a hop to the ledger thread
                self._later(self._settle_stream, flight, served, out, state, broke)
            await resp.aclose()

    def _settle_stream(self, flight: Flight, served: Served, out: Outcome, state: str, broke: str) -> None:
        """Settle a stream from what its relay read (`out`): ok, failed (an error event, or the
        upstream broke) or interrupted (the client hung up)."""
        if flight.call.settled:
            return
        if state == "cancelled":  # the client hung up
            self._settle_interrupted(flight, served, out)
        elif state == "broke" or out.error is not None:
            if state == "broke" or out.error is None:
                message = broke
            else:
                message = providers.scrub(str(out.error.get("message") or out.error), self.cfg)
            error_class = "APIConnectionError" if state == "broke" else str((out.error or {}).get("type") or "StreamError")
            failed = providers.CallFailed(message, None, error_class=error_class, partial_text="".join(out.text),
                                          attempts=[*served.attempts, providers.Attempt(served.group, served.model, error_class, message)])
            self._settle_failed(flight, failed, out, served)
        else:
            self._settle_ok(flight, served, out)

    # -- through litellm -----------------------------------------------------------------------------
    def _router_request(self, inc: Incoming, tier: str) -> tuple[dict[str, Any], dict[str, str]]:
        """litellm's kwargs for this request (Anthropic bodies translated); BadRequest if it cannot be.
        Built once per tier (the check before admission and the send share it; a new top-level dict
        each time, the caller may set keys)."""
        if inc.router_request is not None and inc.router_request[0] == tier:
            built, names = inc.router_request[1]
            return dict(built), names
        mapping: dict[str, str] = {}
        try:
            if inc.protocol == "anthropic":
                kwargs, mapping = providers.anthropic_to_openai(inc.body)
            else:
                kwargs = dict(inc.body)
        except Exception as exc:  # noqa: BLE001 - a translation failure is the request's fault
            raise BadRequest(providers.scrub(f"cannot translate the request: {type(exc).__name__}: {exc}", self.cfg)) from None
        kwargs = providers.client_params(kwargs)
        target = self.cfg.deployments(tier)[0]
        kwargs, changes = adapt.router_kwargs(kwargs, target.provider(), inc.model, target.model,
                                              self.cfg.guardrails.max_output_tokens)
        if changes:
            inc.adapted = changes
        if any(d.provider() != "anthropic" for g in [tier, *self.cfg.fallback_chain(tier)] for d in self.cfg.deployments(g)):
            kwargs["messages"] = _without_cache_control(kwargs.get("messages") or [])
        inc.router_request = (tier, (kwargs, mapping))
        return dict(kwargs), mapping

    async def _via_router(self, flight: Flight) -> Response:
        inc, call = flight.inc, flight.call
        cfg, tier, protocol = self.cfg, call.decision.tier, inc.protocol
        try:
            kwargs, mapping = self._router_request(inc, tier)
            flight.adapted = list(getattr(inc, "adapted", None) or [])
            resp = await providers.complete_raw(cfg, self.loaded.hash, tier, kwargs, call_id=call.id, stream=inc.stream,
                                                timeout=cfg.guardrails.timeout_s)
        except providers.CallFailed as exc:
            await self._on_db(self._settle_failed, flight, exc)
            self._forget_later(call.id)
            return self._failure_response(protocol, exc)
        except BadRequest as exc:
            await self._on_db(self._settle_failed, flight, providers.CallFailed(str(exc), None, error_class="BadRequestError", attempts=[]))
            return error_response(protocol, 400, str(exc))
        group, model, model_id = providers.served_by(resp, cfg, tier)
        out = Outcome(protocol, wants_usage=inc.wants_usage)
        if not inc.stream:
            out.feed_response(resp)
            served = Served(group, model, model_id, providers.pop_attempts(cfg, call.id))
            data = providers.openai_to_anthropic(resp, mapping) if protocol == "anthropic" else resp.model_dump()
            await self._on_db(self._settle_ok, flight, served, out)
            self._forget_later(call.id)
            self._remember(flight, group)
            return JSONResponse(data)
        stream_model = (model or cfg.primary_model(tier)).split("/", 1)[-1]
        return StreamingResponse(self._router_stream(flight, resp, out, mapping, stream_model),
                                 media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _router_stream(self, flight: Flight, resp, out: Outcome, mapping: dict[str, str],
                             stream_model: str) -> AsyncIterator[bytes]:
        inc, call = flight.inc, flight.call
        cfg, tier = self.cfg, call.decision.tier
        finished: bool | None = False
        held = b""
        try:
            if inc.protocol == "anthropic":
                async for event in anthropic_sse.events(Tap(resp, out), stream_model, mapping):
                    if held:
                        yield held
                    held = event if isinstance(event, bytes) else str(event).encode()
            else:
                async for chunk in resp:
                    if out.feed_chunk(chunk):
                        yield b"data: " + json.dumps(chunk.model_dump(exclude_none=True), ensure_ascii=False).encode() + b"\n\n"
                held = b"data: [DONE]\n\n"
            finished = True
            group, model, model_id = providers.served_by(resp, cfg, tier)
            served = Served(group, model, model_id, providers.pop_attempts(cfg, call.id))
            await self._on_db(self._settle_ok, flight, served, out)  # settled before the last event
            self._remember(flight, group)
            yield held
        except Exception as exc:  # noqa: BLE001 - the provider failed mid-stream
            failed = providers.raw_failure(cfg, tier, call.id, exc, partial_text="".join(out.text))
            self._later(self._settle_failed, flight, failed, out)
            finished = None
            if held and inc.protocol == "anthropic":
                yield held
            yield error_event(inc.protocol, 502, failed.message)
        finally:
            self._forget_later(call.id)
            if finished is False:  # the client hung up
                group, model, model_id = providers.served_by(resp, cfg, tier)
                providers.pop_attempts(cfg, call.id)
                self._later(self._settle_interrupted, flight, Served(group, model, model_id, []), out)

    def _forget_later(self, call_id: str) -> None:
        """litellm may log a failed attempt after the call returned (its async logging): drop whatever
        is left for this call a little later, so a long-running gateway does not accumulate them."""
        asyncio.get_running_loop().call_later(30, providers.pop_attempts, self.cfg, call_id)

    def _failure_response(self, protocol: str, exc: providers.CallFailed) -> JSONResponse:
        classes = [a.error_class for a in exc.attempts] or [exc.error_class]
        if all(c == "RateLimitError" for c in classes):
            return error_response(protocol, 429, exc.message)
        if exc.error_class == "ContextWindowExceededError":  # the code agents act on (aider compacts on it)
            return error_response(protocol, 400, exc.message, "invalid_request_error", code="context_length_exceeded")
        if exc.error_class == "BadRequestError" or getattr(exc, "status_code", None) in passthrough.CLIENT_ERRORS:
            return error_response(protocol, 400, exc.message, "invalid_request_error" if protocol == "anthropic" else None)
        return error_response(protocol, 502, exc.message)


def _without_cache_control(messages: list[Any]) -> list[Any]:
    """Anthropic cache markers removed (OpenAI-compatible providers forward them verbatim or reject them)."""
    out = []
    for m in messages:
        if isinstance(m, dict) and isinstance(m.get("content"), list):
            m = {**m, "content": [{k: v for k, v in b.items() if k != "cache_control"} if isinstance(b, dict) else b
                                  for b in m["content"]]}
        if isinstance(m, dict) and "cache_control" in m:
            m = {k: v for k, v in m.items() if k != "cache_control"}
        out.append(m)
    return out
