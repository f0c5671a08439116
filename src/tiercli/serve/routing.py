"""The gateway's routing: a request's task (agent.py), the scenario rules and stickiness
(scenarios.py), the context window, the classifier; a mixin of serve.gateway.Gateway."""

from __future__ import annotations

import time
from dataclasses import replace
from typing import Any

from tiercli import scenarios
from tiercli.providers import adapt
from tiercli.router import Decision, decide
from tiercli.serve.flight import Flight, GatewayParts, tools_text
from tiercli.serve.wire import Incoming

TYPICAL_TASK_STEPS = 9  # calls per agent task (median over the sample Claude Code sessions)
TYPICAL_STEP = (500, 1000, 400)  # a step's uncached input, cache write and output tokens


class Routing(GatewayParts):
    _windows: tuple[dict[str, int | None], int | None] | None = None  # each tier's context window, the smallest

    def _prompt_tokens(self, inc: Incoming, tier: str, exact: bool = False) -> int:
        """Prompt tokens, counted exactly only near the long-context threshold (a 100 KB prompt costs
        several ms to tokenize) or when asked."""
        rough = inc.char_count // 4
        limit = self.cfg.serve.long_context_tokens
        if not exact and (rough < limit // 2 or rough > limit * 2):
            return rough
        from tiercli import tokens

        model = self.cfg.primary_model(tier).removeprefix("offline/")
        return tokens.count_messages(inc.flat, model) + tokens.count(tools_text(inc), model)

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
        rule: str | None
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
                assert self._ledger is not None  # opened in startup, before any request
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
        if self._windows is None:  # the config does not change under a running gateway: once
            windows = {t: adapt.facts(self.cfg.primary_model(t)).max_input for t in self.cfg.routing.tiers}
            self._windows = (windows, min((w for w in windows.values() if w), default=None))
        windows, smallest = self._windows
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
