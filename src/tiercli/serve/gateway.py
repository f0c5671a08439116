"""The gateway: route a request, record it through the pipeline (calls.py), relay the answer.

Each request is read (wire.py), routed (explicit tier name > scenario rules > the classifier on the
user's text; then prompt-cache stickiness: scenarios.py), admitted and recorded by calls.open_call on
the ledger thread (the same iteration limit, budgets, key check and pending row as `tier ask`),
answered in the caller's protocol whatever the upstream, and settled exactly once.

Two ways to reach a provider:
- passthrough (providers/passthrough.py): the caller's protocol is the deployments' own; the body
  goes upstream unchanged but for the model and key, the answer comes back byte for byte;
- router: everything else goes through providers.complete_raw() (litellm), Anthropic requests
  translated with litellm's Messages adapter both ways.

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
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, AsyncIterator, Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from tiercli import calls, guards, providers, scenarios
from tiercli.config import Deployment, LoadedConfig
from tiercli.errors import BudgetExceeded, GuardrailRefusal, LedgerError, TierError, UsageError
from tiercli.providers import adapt, passthrough
from tiercli.router import Decision, decide
from tiercli.serve import anthropic_sse, responses
from tiercli.serve.accounting import Outcome, Served, Tap, is_hidden
from tiercli.serve.wire import (
    MAX_BODY_BYTES,
    BadRequest,
    Incoming,
    error_event,
    error_response,
    flatten,
    is_loopback,
    parse_body,
    read_incoming,
    render_text,
)

if TYPE_CHECKING:
    from tiercli.ledger import Ledger

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4141
DRAIN_S = 10.0  # shutdown waits this long for open calls to settle by themselves
TYPICAL_TASK_STEPS = 9  # calls per agent task (median over the sample Claude Code sessions)
TYPICAL_STEP = (500, 1000, 400)  # a step's uncached input, cache write and output tokens


@dataclass(frozen=True)
class Pin:
    """`tier run` hook: while set on a Gateway, every request is one attempt's call: sent to the
    decision's tier (source "run"), recorded in `session` with `task_id`, admitted under `caps`."""

    decision: Decision
    session: str
    task_id: str
    caps: tuple[guards.Cap, ...] = ()
    refusals: list[str] = field(default_factory=list, compare=False)  # budget refusals, for tier run
    # decision.reasons[-1] names the attempt: a request routed by an earlier pin is refused at admission


@dataclass
class Flight:
    """One request in flight: what was asked, its recorded call, whether stickiness applies."""

    inc: Incoming
    call: calls.RecordedCall
    sticky_ok: bool
    meta: dict[str, Any] = field(default_factory=dict)
    endpoint: str = ""
    adapted: list[str] = field(default_factory=list)  # what was changed for the target (row meta)


class Gateway:
    def __init__(self, loaded: LoadedConfig, db_path: str | os.PathLike, *, host: str = DEFAULT_HOST,
                 token: str | None = None, team: bool = False):
        if not is_loopback(host) and not token and not team:
            raise UsageError(f"tier serve on {host} (beyond loopback) needs a local token or users",
                             "pass --token or set TIER_SERVE_TOKEN, or add users (tier users add NAME); "
                             "clients send the token as a Bearer token or x-api-key")
        self.loaded = loaded
        self.cfg = loaded.config
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
        self._ledger: "Ledger | None" = None
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
    def _prompt_tokens(self, inc: Incoming, tier: str, exact: bool = False) -> int:
        """Prompt tokens, counted exactly only near the long-context threshold (a 100 KB prompt costs
        several ms to tokenize) or when asked."""
        rough = inc.char_count // 4
        limit = self.cfg.serve.long_context_tokens
        if not exact and (rough < limit // 2 or rough > limit * 2):
            return rough
        from tiercli import tokens

        model = self.cfg.primary_model(tier).removeprefix("offline/")
        return tokens.count_messages(inc.flat, model) + tokens.count(_tools_text(inc), model)

    async def route(self, inc: Incoming, call_id: str) -> tuple[Decision, dict[str, Any], bool]:
        """(decision, meta for the row, whether stickiness may apply and be updated).

        The task is the unit (agent.py): a request is a step of the task its instruction started; a
        task's instruction is classified once and every step stays on its tier (cache-warm) unless a
        request-level rule (long context, web search, thinking, the context window) moves it. Side
        calls go to the cheapest tier; sub-agents are tasks of their own."""
        from tiercli import agent

        cfg = self.cfg
        state = self.sessions.get(inc.session) if inc.session else None
        task = agent.analyze_request(inc.body, state, session=inc.session, model=inc.model)
        inc.task = task
        if inc.session:
            self.sessions[inc.session] = task.state
            if len(self.sessions) > 10_000:
                self.sessions.pop(next(iter(self.sessions)))
        meta: dict[str, Any] = {"task_rule": task.rule}
        if task.retry_of:
            meta["retry_of"] = task.retry_of
        if self.pin is not None:  # tier run: the attempt's tier, whatever was asked
            return self.pin.decision, meta, False
        facts = scenarios.RequestFacts(inc.model, inc.session, inc.thinking, inc.web_search, 0)
        early = scenarios.before_classifier(cfg, facts, self._small)
        if early is not None:
            decision, rule = early
            if rule != "override":
                meta["rule"] = rule
            return replace(decision, reasons=(*decision.reasons, f"agent: {task.reason}")), meta, False
        if task.cheapest:
            tier = cfg.cheapest_tier
            meta["rule"] = "side_call"
            return Decision(tier=tier, model=cfg.primary_model(tier), source="scenario", decided_tier=tier,
                            reasons=(f"agent: {task.reason} -> {tier}",)), meta, False
        known = self.tasks.get(task.task_id)
        if known is not None and not task.classify:
            decision = replace(known, reasons=(*known.reasons, f"agent: {task.reason}"))
        else:
            classification = await self._classify(task.instruction or inc.text, inc.session, call_id)
            decision = decide(cfg, classification=classification)
            decision = replace(decision, reasons=(*decision.reasons, f"agent: {task.reason}"))
            warm = self.sticky.get(inc.session) if inc.session else None
            if inc.session and self.shared_ledger:  # several gateways: the session's warm tier is in the ledger
                warm = await self._on_db(self._ledger.session_warm_tier, inc.session) or warm
            decision = scenarios.stick(cfg, warm, decision, time.time(), meta,
                                       pays=lambda old, new: self._switch_pays(inc, old, new))
            self.tasks[task.task_id] = decision
            if len(self.tasks) > 10_000:
                self.tasks.pop(next(iter(self.tasks)))
        tokens = self._prompt_tokens(inc, decision.tier) if cfg.serve.long_context_tier else 0
        decision, rule = scenarios.after_classifier(cfg, scenarios.RequestFacts(
            inc.model, inc.session, inc.thinking, inc.web_search, tokens), decision)
        if rule:
            meta["rule"] = rule
        return self._fit_window(inc, decision, meta), meta, True

    def _switch_pays(self, inc: Incoming, old: str, new: str) -> bool:
        """Moving a session from `old`'s warm cache to `new` for a new task: only when the expected
        saving over the task's steps beats rebuilding the conversation's prefix in `new`'s cache
        (replay.cache.switch_pays, the rule replay prices with). Unpriced: stay."""
        from tiercli.pricing import PriceBook
        from tiercli.replay.base import FloatPrice
        from tiercli.replay.cache import switch_pays

        book = PriceBook(self.cfg.prices)
        prices = []
        for tier in (old, new):
            d = self.cfg.deployments(tier)[0]
            unit = book.lookup(d.model, d.litellm_params)
            if unit is None:
                return False
            prices.append(FloatPrice.of(unit))
        prefix = inc.char_count // 4
        per_call = (TYPICAL_STEP[0], prefix, TYPICAL_STEP[1], 0, TYPICAL_STEP[2])
        return switch_pays(prefix, TYPICAL_TASK_STEPS, per_call, prices[0], prices[1])[0]

    def _fit_window(self, inc: Incoming, decision: Decision, meta: dict[str, Any]) -> Decision:
        """Send an over-long prompt only where it fits (never to a smaller window after a failure)."""
        windows = {t: adapt.facts(self.cfg.primary_model(t)).max_input for t in self.cfg.routing.tiers}
        smallest = min((w for w in windows.values() if w), default=None)
        if smallest is None or inc.char_count // 5 < smallest // 2:  # far below every window: no count needed
            return decision
        fitted = scenarios.fit_window(self.cfg, decision, self._prompt_tokens(inc, decision.tier, exact=True), windows)
        if fitted is not decision:
            meta["rule"] = "context_window"
        return fitted

    async def _classify(self, text: str, session: str | None, call_id: str):
        from tiercli import classify as classify_pkg

        which = self.cfg.routing.classifier
        if which == "static" or not text.strip():
            return None
        if which == "local":
            return classify_pkg.run_local(text)
        # llm / hybrid call a model and record it: on the ledger thread, which owns the connection
        await self._litellm()
        return await self._on_db(lambda: classify_pkg.run(which, text, self.loaded, ledger=self._ledger,
                                                          parent_id=call_id, session=session))

    def _remember(self, flight: Flight, tier: str) -> None:
        inc = flight.inc
        if not flight.sticky_ok or not inc.session or not self.cfg.serve.sticky_ttl_s:
            return
        now = time.time()
        if len(self.sticky) > 10_000:  # forget cold sessions
            ttl = self.cfg.serve.sticky_ttl_s
            self.sticky = {s: v for s, v in self.sticky.items() if now - v[1] <= ttl}
        self.sticky[inc.session] = (tier, now)

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
        n = inc.body.get("n") if isinstance(inc.body.get("n"), int) else 1
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
                          extra_input_text=_tools_text(inc), answers=max(n, 1),
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
            row = self._ledger.get_call(call.id) if self._ledger is not None else None
            self._emit(flight.endpoint, flight.inc, call.status or "?", row)

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
                "call_id": row["id"], "tier": row["tier"], "served_tier": row["served_tier"],
                "model": row["served_model"] or row["requested_model"],
                "input_tokens": (row["input_tokens"] or 0) + (row["cache_read_tokens"] or 0) + (row["cache_write_tokens"] or 0),
                "output_tokens": row["output_tokens"], "cost_usd": row["cost_usd"], "ms": row["latency_ms"],
                "error": row["error_message"],
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
                     extra_meta: dict[str, Any] | None = None, scope: dict[str, Any] | None = None) -> Response:
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
        assert sent.group is not None and sent.deployment is not None
        d = sent.deployment
        served = Served(sent.group, d.model, d.model_info.get("id", f"{d.model_name}:{d.model}"), sent.attempts)
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
            self._remember(flight, sent.group)
            return Response(data, status_code=resp.status_code, media_type="application/json")
        return StreamingResponse(self._relay(flight, resp, served, out), status_code=resp.status_code,
                                 media_type="text/event-stream", headers={"cache-control": "no-cache"})

    async def _relay(self, flight: Flight, resp, served: Served, out: Outcome) -> AsyncIterator[bytes]:
        """The upstream SSE, event by event, as received (an OpenAI usage chunk the client did not ask
        for is left out). The last event is held back until the call is settled."""
        inc = flight.inc
        events: list[bytes] = []
        drop_usage = inc.protocol == "openai" and not inc.wants_usage
        buffer, held = b"", b""
        state, broke = "cancelled", ""
        try:
            async for chunk in resp.aiter_bytes():
                buffer += chunk.replace(b"\r\n", b"\n") if b"\r" in chunk else chunk
                if b"\n\n" not in buffer:
                    continue
                *parts, buffer = buffer.split(b"\n\n")
                kept = [e for e in parts if e and not is_hidden(e, drop_usage, events)]
                if kept:
                    if held:
                        yield held
                    held = b"\n\n".join(kept) + b"\n\n"
            if buffer.strip() and not is_hidden(buffer, drop_usage, events):
                if held:
                    yield held
                held = buffer + b"\n\n"
            state = "done"
            await self._on_db(self._settle_stream, flight, served, out, events, state, "")
            if not any(b"error" in e[:40] for e in events[-2:]):
                self._remember(flight, served.group)
            if held:
                yield held
        except Exception as exc:  # noqa: BLE001 - the upstream broke mid-stream
            state, broke = "broke", providers.scrub(f"upstream stream broke: {type(exc).__name__}: {exc}", self.cfg)
            if held:
                yield held
            yield error_event(inc.protocol, 502, broke)
        finally:  # under a cancelled scope (the client hung up) every await raises again: queue it
            self._later(self._settle_stream, flight, served, out, events, state, broke)
            await resp.aclose()

    def _settle_stream(self, flight: Flight, served: Served, out: Outcome, events: list[bytes],
                       state: str, broke: str) -> None:
        if flight.call.settled:
            return
        for event in events:
            out.feed_event(event)
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
        """litellm's kwargs for this request (Anthropic bodies translated); BadRequest if it cannot be."""
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
        return kwargs, mapping

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


def _tools_text(inc: Incoming) -> str:
    tools = inc.body.get("tools")
    return json.dumps(tools, ensure_ascii=False) if tools else ""


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
