"""The gateway: route a request, record it through the pipeline (calls.py), relay the answer.

Each request is read (wire.py), routed (explicit tier name > scenario rules > the classifier on the
user's text; then prompt-cache stickiness: scenarios.py), admitted and recorded by calls.open_call on
the ledger thread (the same iteration limit, budgets, key check and pending row as `tier ask`),
answered in the caller's protocol whatever the upstream, and settled exactly once.

Three ways to reach a provider:
- passthrough (providers/passthrough.py): the caller's protocol is the deployments' own; the body
  goes upstream unchanged but for the model and key, the answer comes back byte for byte;
- translated passthrough (serve/translated.py): an Anthropic client on a chain of plain
  OpenAI-compatible deployments; the request translated by litellm's adapter, sent and answered over
  the gateway's own HTTP client, the answer translated back directly (serve/anthropic_sse.py);
- router: everything else goes through providers.complete_raw() (litellm), Anthropic requests
  translated with litellm's Messages adapter, answers by serve/anthropic_sse.py.

Settlement comes before the last byte: a JSON answer is settled before it is returned, a stream
holds back its final event until the call is settled. Ledger work runs on one dedicated thread that
owns the SQLite connection; shutdown drains it and settles whatever is still open.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import os
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, MutableMapping

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tiercli import calls, guards, providers, scenarios
from tiercli.config import Deployment, LoadedConfig
from tiercli.errors import BudgetExceeded, GuardrailRefusal, LedgerError, TierError, UsageError
from tiercli.providers import passthrough
from tiercli.router import Decision
from tiercli.serve import responses
from tiercli.serve.accounting import Outcome, Served
from tiercli.serve.flight import Flight, Pin, tools_text
from tiercli.serve.relay import Relays
from tiercli.serve.routing import Routing
from tiercli.serve.translated import Translated
from tiercli.serve.wire import (
    MAX_BODY_BYTES,
    BadRequest,
    Incoming,
    error_response,
    flatten,
    is_loopback,
    parse_body,
    read_incoming,
)

if TYPE_CHECKING:
    from tiercli.ledger import LedgerLike

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4141
DRAIN_S = 10.0  # shutdown waits this long for open calls to settle by themselves
TYPICAL_TASK_STEPS = 9  # calls per agent task (median over the sample Claude Code sessions)
TYPICAL_STEP = (500, 1000, 400)  # a step's uncached input, cache write and output tokens


def commit_sync() -> str:
    """The gateway's SQLite commits: synchronous=NORMAL unless TIER_SERVE_SYNCHRONOUS=FULL. Two fsync'd
    commits per call (the pending row before the upstream call, the settlement before the last byte)
    cost 1-4 ms each on this machine's disk, on every request's path; in WAL mode NORMAL keeps both
    durable across a crash of the process (the crash tests), not across a power loss or OS crash
    (docs/RELIABILITY.md). `tier ask` and every other command keep FULL."""
    level = (os.environ.get("TIER_SERVE_SYNCHRONOUS") or "NORMAL").upper()
    if level not in ("FULL", "NORMAL"):
        raise UsageError(f"TIER_SERVE_SYNCHRONOUS={level} is not FULL or NORMAL", "unset it, or set FULL or NORMAL")
    return level


class Gateway(Routing, Relays, Translated):
    def __init__(self, loaded: LoadedConfig, db_path: str | os.PathLike, *, host: str = DEFAULT_HOST,
                 token: str | None = None, team: bool = False):
        if not is_loopback(host) and not token and not team:
            raise UsageError(f"tier serve on {host} (beyond loopback) needs a local token or users",
                             "pass --token or set TIER_SERVE_TOKEN, or add users (tier users add NAME); "
                             "clients send the token as a Bearer token or x-api-key")
        self.loaded = loaded
        self.cfg = loaded.config
        self.commit_sync = commit_sync()  # a bad TIER_SERVE_SYNCHRONOUS fails here, before binding
        self.db_path = db_path if isinstance(db_path, str) and "://" in db_path else Path(db_path)  # URL: PostgreSQL
        self.team = team  # users' tokens are checked (app.TokenGate); also set at startup when the ledger has users
        self.shared_ledger = isinstance(self.db_path, str)  # PostgreSQL: other gateways may answer a session too
        self.host = host
        self.token = token or None
        self.sticky: dict[str, tuple[str, float]] = {}  # session -> (tier, time of its last call)
        self.sessions: dict[str, Any] = {}  # session -> agent.SessionState (its current task)
        self.tasks: dict[str, Decision] = {}  # task id -> the decision its instruction got (steps reuse it)
        self.open_calls: dict[str, calls.RecordedCall] = {}  # admitted, not yet settled (ledger thread only)
        self._db: ThreadPoolExecutor | None = None
        self._ledger: "LedgerLike | None" = None
        self._http: Any = None
        self._small = re.compile(self.cfg.serve.small_model_pattern, re.I) if self.cfg.serve.small_model_pattern else None
        self._chains: dict[tuple[str, str], list[tuple[str, Deployment]] | None] = {}
        self.pin: Pin | None = None  # tier run: the attempt every request belongs to (run.py sets it)
        self.log: Callable[[dict[str, Any]], None] | None = None  # one record per request (the console)
        self.litellm_ready = threading.Event()  # cleared while a background warm-up imports litellm
        self.litellm_ready.set()

    # -- lifecycle -----------------------------------------------------------------------------------
    def warm(self) -> None:
        """Import litellm and build the router now, not on the first request (about 3 s). `tier serve`
        runs this in a background thread after binding: requests that need litellm wait for it
        (two threads importing litellm at once fail inside its package)."""
        try:
            providers.warm_up(self.cfg, self.loaded.hash)
        finally:
            self.litellm_ready.set()

    async def _litellm(self) -> None:
        if not self.litellm_ready.is_set():
            await asyncio.to_thread(self.litellm_ready.wait)

    async def startup(self) -> None:
        import httpx

        from tiercli.ledger import open_ledger

        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tier-serve-ledger")
        self._ledger = await asyncio.get_running_loop().run_in_executor(self._db, open_ledger, self.db_path)
        relax = getattr(self._ledger, "set_synchronous", None)  # SQLite only (PostgreSQL: its own durability)
        if relax is not None and getattr(self._ledger, "wal", False):
            await self._on_db(relax, self.commit_sync)
        self.team = self.team or bool(await self._on_db(self._ledger.count_users))
        timeout = httpx.Timeout(self.cfg.guardrails.timeout_s, connect=min(10.0, self.cfg.guardrails.timeout_s))
        self._http = httpx.AsyncClient(timeout=timeout, limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                                       trust_env=False)

    async def shutdown(self) -> None:
        """Drain: wait (up to DRAIN_S) for open calls to settle, settle what is left as interrupted,
        then close the ledger after every queued write."""
        if self._http is not None:
            await self._http.aclose()
        if self._db is None:
            return
        deadline = time.monotonic() + DRAIN_S
        while time.monotonic() < deadline and await self._on_db(lambda: bool(self.open_calls)):
            await asyncio.sleep(0.05)
        await self._on_db(self._settle_leftovers)
        ledger, self._ledger = self._ledger, None
        if ledger is not None:
            await self._on_db(ledger.close)
        self._db.shutdown(wait=True)

    def _settle_leftovers(self) -> None:
        for call in list(self.open_calls.values()):
            call.interrupted("", error_class="GatewayShutdown")
        self.open_calls.clear()

    async def _on_db(self, fn: Callable, *args: Any) -> Any:
        assert self._db is not None
        return await asyncio.get_running_loop().run_in_executor(self._db, fn, *args)

    def _later(self, fn: Callable, *args: Any) -> None:
        """Run on the ledger thread after what is queued; nobody waits."""
        assert self._db is not None
        self._db.submit(fn, *args)

    def flush(self) -> None:
        """Wait until every queued ledger write is done (tests)."""
        if self._db is not None:
            self._db.submit(lambda: None).result()

    # -- auth ----------------------------------------------------------------------------------------
    def authorized(self, headers) -> bool:
        if not self.token:
            return True
        want = self.token.encode()
        candidates = [headers.get("x-tier-token"), headers.get("x-api-key")]
        auth = headers.get("authorization") or ""
        if auth.lower().startswith("bearer "):
            candidates.append(auth[7:])
        return any(c and hmac.compare_digest(c.encode(), want) for c in candidates)

    # -- routing -------------------------------------------------------------------------------------
    # -- admission and settlement (ledger thread) ------------------------------------------------------
    def _chain(self, protocol: str, tier: str) -> list[tuple[str, Deployment]] | None:
        key = (protocol, tier)
        if key not in self._chains:
            self._chains[key] = passthrough.chain_for(self.cfg, protocol, tier)
        return self._chains[key]

    def _forwards_client_key(self, inc: Incoming) -> bool:
        return self.cfg.serve.forward_client_key and inc.client_key is not None

    def _key_check(self, inc: Incoming) -> Callable[[str], None]:
        def check(tier: str) -> None:
            if self._chain(inc.protocol, tier) and self._forwards_client_key(inc):
                return  # the caller's own key pays
            providers.check_keys(self.cfg, tier)
        return check

    def _admit(self, inc: Incoming, decision: Decision, call_id: str, meta: dict[str, Any],
               user: dict[str, Any] | None = None) -> calls.RecordedCall:
        assert self._ledger is not None
        serve_meta = {"protocol": inc.protocol, "requested_model": inc.model, "stream": inc.stream, **meta}
        n = inc.body.get("n")
        if not isinstance(n, int):
            n = 1
        # tier run: the pin routed this request only if it is still the one set (an attempt that ended
        # has no calls); its calls go in the attempt's session, under its caps
        pin = self.pin if decision.source == "run" else None
        if decision.source == "run" and (pin is None or pin.decision.reasons[-1] not in decision.reasons):
            raise BudgetExceeded("this call belongs to a tier run attempt that has ended")
        if pin is not None and inc.session:
            serve_meta["agent_session"] = inc.session
        guardrail = self.cfg.guardrails.max_output_tokens
        task = inc.task
        if pin is not None and task is not None:
            serve_meta["agent_task_id"] = task.task_id  # the run's task id is the row's
        plan = calls.Plan(decision=decision, prompt=(task.instruction if task and task.instruction else inc.text) or "(no text)",
                          messages=inc.flat, source="run" if pin else "serve", session=pin.session if pin else inc.session,
                          call_id=call_id, task_id=pin.task_id if pin else (task.task_id if task else None),
                          extra_caps=(*(pin.caps if pin else ()), *(guards.user_caps(user, time.time()) if user else ())),
                          max_output_tokens=min(inc.max_tokens or guardrail, guardrail),  # what is sent: clamped
                          extra_input_text=tools_text(inc), answers=max(n, 1),
                          iteration_limit=self.cfg.serve.max_iterations or None, meta={"serve": serve_meta},
                          key_check=self._key_check(inc),
                          injects_cache=not self._chain(inc.protocol, decision.tier),
                          user_id=user["id"] if user else None)
        try:
            call = calls.open_call(self.loaded, self._ledger, plan)
        except BudgetExceeded as exc:
            if pin is not None:
                pin.refusals.append(exc.message)
            raise
        self.open_calls[call.id] = call
        return call

    def _settle(self, flight: Flight, how: str, *args: Any, **kwargs: Any) -> None:
        """Settle on the ledger thread, once (a second settlement of the same call is ignored)."""
        call = flight.call
        if call.settled:
            return
        try:
            getattr(call, how)(*args, **kwargs)
        finally:
            self.open_calls.pop(call.id, None)
        if self.log is not None:
            self._emit(flight.endpoint, flight.inc, call.status or "?", call.settled_row)  # no read back

    def _emit(self, endpoint: str, inc: Incoming | None, status: str, row: dict[str, Any] | None = None,
              http_status: int | None = None, error: str | None = None) -> None:
        """One record per request for the console: never lets a logging problem reach the request."""
        if self.log is None:
            return
        record: dict[str, Any] = {
            "time": time.time(), "client": inc.client if inc else None, "session": inc.session if inc else None,
            "endpoint": endpoint, "requested_model": inc.model if inc else None, "status": status,
            "http_status": http_status,
        }
        if row is not None:
            record.update({
                "call_id": row["id"], "tier": row["tier"], "served_tier": row.get("served_tier"),
                "model": row.get("served_model") or row.get("requested_model"),
                "input_tokens": (row.get("input_tokens") or 0) + (row.get("cache_read_tokens") or 0)
                + (row.get("cache_write_tokens") or 0),
                "output_tokens": row.get("output_tokens"), "cost_usd": row.get("cost_usd"), "ms": row.get("latency_ms"),
                "error": row.get("error_message"),
            })
        if error:
            record["error"] = error
        try:
            self.log(record)
        except Exception:  # noqa: BLE001 - the console must never break a call
            pass

    def _settle_ok(self, flight: Flight, served: Served, out: Outcome) -> None:
        extra: dict[str, Any] = {}
        if out.tool_calls:
            extra["tool_calls"] = out.tool_calls
        if flight.adapted:
            extra["adapted"] = flight.adapted
        meta = {"serve": {**json.loads(flight.call.row["meta_json"])["serve"], **extra}} if extra else None
        self._settle(flight, "ok", text="".join(out.text), served_group=served.group,
                     served_model=served.model.removeprefix("offline/") if served.model.startswith("offline/") else served.model,
                     usage=out.usage, deployment_id=served.deployment_id, attempts=served.attempts, meta=meta)

    def _settle_failed(self, flight: Flight, failed: providers.CallFailed, out: Outcome | None = None,
                       served: Served | None = None) -> None:
        self._settle(flight, "failed", failed, usage=out.usage if out is not None and out.text else None,
                     served_group=served.group if served else None, served_model=served.model if served else None)

    def _settle_interrupted(self, flight: Flight, served: Served, out: Outcome) -> None:
        self._settle(flight, "interrupted", "".join(out.text), served_group=served.group, served_model=served.model,
                     usage=out.usage, error_class="ClientDisconnected")

    # -- the request ---------------------------------------------------------------------------------
    async def handle(self, request: Request, protocol: str) -> Response:
        endpoint = request.url.path
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return self._rejected(endpoint, None, protocol, 413, f"request body over {MAX_BODY_BYTES // (1024 * 1024)} MB")
        try:
            body = parse_body(await request.body())
        except BadRequest as exc:
            return self._rejected(endpoint, None, protocol, 400, str(exc))
        return await self._serve(endpoint, protocol, body, request.headers, scope=request.scope)

    async def handle_responses(self, request: Request) -> Response:
        """`POST /v1/responses`: translated to a chat request, served like one, translated back."""
        endpoint = request.url.path
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return self._rejected(endpoint, None, "openai", 413, f"request body over {MAX_BODY_BYTES // (1024 * 1024)} MB")
        try:
            body = parse_body(await request.body())
            chat, left_out = responses.to_chat(body)
        except BadRequest as exc:
            return self._rejected(endpoint, None, "openai", 400, str(exc))
        answer = await self._serve(endpoint, "openai", chat, request.headers,
                                   {"api": "responses", **({"left_out": left_out} if left_out else {})}, scope=request.scope)
        if answer.status_code >= 400:
            return answer  # the error shape {"error": {...}} is the Responses API's too
        if isinstance(answer, StreamingResponse):
            return StreamingResponse(responses.translate_stream(answer.body_iterator, body), status_code=200,
                                     media_type="text/event-stream", headers={"cache-control": "no-cache"})
        return JSONResponse(responses.from_chat(json.loads(bytes(answer.body)), body))

    async def _serve(self, endpoint: str, protocol: str, body: dict[str, Any], headers,
                     extra_meta: dict[str, Any] | None = None, scope: MutableMapping[str, Any] | None = None) -> Response:
        scope = scope or {}
        try:
            inc = read_incoming(protocol, body, headers, scope.get("tier.token") or self.token)  # a user's token is not a provider key
        except BadRequest as exc:
            return self._rejected(endpoint, None, protocol, 400, str(exc))
        call_id = calls.new_id()
        try:
            decision, meta, sticky_ok = await self.route(inc, call_id)
            meta.update(extra_meta or {})
            if not self._chain(protocol, decision.tier) and not all(d.is_offline for d in self.cfg.deployments(decision.tier)):
                await self._litellm()
                self._router_request(inc, decision.tier)  # a request that cannot be translated fails here, unrecorded
            call = await self._on_db(self._admit, inc, decision, call_id, meta, scope.get("tier.user"))
        except BadRequest as exc:
            return self._rejected(endpoint, inc, protocol, 400, str(exc))
        except scenarios.ContextTooLong as exc:
            return self._rejected(endpoint, inc, protocol, 400, str(exc), code="context_length_exceeded")
        except GuardrailRefusal as exc:
            status = 402 if isinstance(exc, BudgetExceeded) else 403
            return self._rejected(endpoint, inc, protocol, status, str(exc),
                                  "budget_exceeded" if status == 402 else "iteration_limit", "refused")
        except TierError as exc:  # the ledger unreachable: 503, the call was not made
            status = 503 if isinstance(exc, LedgerError) else 500
            return self._rejected(endpoint, inc, protocol, status, f"tier serve: {exc}",
                                  "api_error" if protocol == "anthropic" else "server_error")
        flight = Flight(inc, call, sticky_ok, meta, endpoint)
        try:
            deployments = self.cfg.deployments(call.decision.tier)
            if all(d.is_offline for d in deployments):
                return await self._offline(flight)
            chain = self._chain(protocol, call.decision.tier)
            if chain:
                return await self._passthrough(flight, chain)
            translated = self._chain("openai", call.decision.tier) if protocol == "anthropic" else None
            if translated:
                return await self._translated(flight, translated)
            return await self._via_router(flight)
        except BaseException as exc:  # nothing may leave an admitted call unsettled
            failed = providers.CallFailed(providers.scrub(f"tier serve: {type(exc).__name__}: {exc}", self.cfg), None,
                                          error_class=type(exc).__name__, attempts=[])
            await asyncio.shield(self._on_db(self._settle_failed, flight, failed))
            if not isinstance(exc, Exception):
                raise
            return error_response(protocol, 500, failed.message, "api_error" if protocol == "anthropic" else "server_error")

    def _rejected(self, endpoint: str, inc: Incoming | None, protocol: str, status: int, message: str,
                  etype: str | None = None, outcome: str = "rejected", code: str | None = None) -> JSONResponse:
        self._emit(endpoint, inc, outcome, http_status=status, error=message)
        return error_response(protocol, status, message, etype, code=code)


    # -- other endpoints -----------------------------------------------------------------------------
    def models(self, request: Request) -> JSONResponse:
        cfg = self.cfg
        entries = [("auto", "routed by tier: classifier, scenario rules, stickiness")]
        entries += [(t, cfg.primary_model(t)) for t in cfg.routing.tiers]
        if request.headers.get("anthropic-version"):
            data = [{"type": "model", "id": name, "display_name": f"{name} ({what})", "created_at": "2025-01-01T00:00:00Z"}
                    for name, what in entries]
            return JSONResponse({"data": data, "has_more": False, "first_id": data[0]["id"], "last_id": data[-1]["id"]})
        return JSONResponse({"object": "list", "data": [
            {"id": name, "object": "model", "created": 0, "owned_by": "tier", "description": what} for name, what in entries]})

    async def count_tokens(self, request: Request) -> Response:
        from tiercli import tokens

        try:
            body = parse_body(await request.body())
            if not isinstance(body.get("messages"), list):
                raise BadRequest("messages must be a list")
        except BadRequest as exc:
            return error_response("anthropic", 400, str(exc))
        model = str(body.get("model") or "")
        if model in self.cfg.routing.tiers or not model or model == "auto":
            model = self.cfg.primary_model(model if model in self.cfg.routing.tiers else self.cfg.routing.default_tier)
        model = model.removeprefix("offline/")
        flat = flatten("anthropic", body)
        tools = json.dumps(body.get("tools"), ensure_ascii=False) if body.get("tools") else ""
        count = await asyncio.to_thread(lambda: tokens.count_messages(flat, model) + tokens.count(tools, model))
        return JSONResponse({"input_tokens": count})

