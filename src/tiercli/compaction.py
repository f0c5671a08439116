"""`tier ask --session S --history`: carry a session's conversation, compacted past a threshold.

The turns come from the ledger (the session's answered main calls, so `ledger.store_prompts` must
be `full`). Once they exceed `guardrails.compaction.threshold_tokens`, the compaction tier (tier2
by default, never the top tier) summarises them; the summary is recorded as a call of kind
`compaction` (its cost shows in the report, with the tokens it removed), and later calls continue
from the latest summary plus the turns after it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from tiercli import calls
from tiercli.errors import InputError
from tiercli.router import Decision

if TYPE_CHECKING:
    from tiercli.config import LoadedConfig
    from tiercli.ledger import Ledger

COMPACTION_PROMPT = (
    "You compact a coding assistant's conversation so the work can continue in a fresh context. "
    "Write a concise summary that keeps: the user's goal, decisions made and why, file names, "
    "function and variable names, commands and their results, errors still open, and what was "
    "about to happen next. No preamble."
)
SUMMARY_MAX_TOKENS = 1024
ACK = "Understood. I will continue from that summary."


def transcript(turns: list[dict]) -> str:
    parts = []
    for turn in turns:
        parts.append(f"User:\n{turn['prompt_text']}")
        parts.append(f"Assistant:\n{turn['response_text']}")
    return "\n\n".join(parts)


def _as_messages(summary: str | None, turns: list[dict]) -> list[dict]:
    messages: list[dict] = []
    if summary:
        messages.append({"role": "user", "content": f"Summary of this session so far:\n{summary}"})
        messages.append({"role": "assistant", "content": ACK})
    for turn in turns:
        messages.append({"role": "user", "content": turn["prompt_text"]})
        messages.append({"role": "assistant", "content": turn["response_text"]})
    return messages


def history_for(loaded: "LoadedConfig", ledger: "Ledger", session: str | None, call_id: str) -> list[dict]:
    """The messages that carry the session so far; runs (and records) a compaction when needed.
    The compaction row's parent is `call_id`, the call it serves."""
    from tiercli import tokens

    cfg = loaded.config
    if not session:
        raise InputError("--history needs --session S (the conversation to continue)")
    if cfg.ledger.store_prompts != "full":
        raise InputError("--history needs the conversation's text: set ledger.store_prompts: full")
    last = ledger.last_compaction(session)
    summary, after = None, 0.0
    if last is not None:
        summary = last["response_text"]
        after = json.loads(last["meta_json"] or "{}").get("covers_until", last["started_at"])
    turns = [t for t in ledger.session_turns(session, after) if t["prompt_text"] and t["response_text"]]
    history = _as_messages(summary, turns)
    tier = cfg.guardrails.compaction.tier
    model = cfg.primary_model(tier).removeprefix("offline/")
    size = tokens.count_messages(history, model)
    if size <= cfg.guardrails.compaction.threshold_tokens or not turns:
        return history
    text = transcript(turns)
    if summary:
        text = f"Earlier summary:\n{summary}\n\n{text}"
    decision = Decision(tier=tier, model=cfg.primary_model(tier), source="compaction", decided_tier=tier,
                        reasons=(f"history of {size} tokens > threshold {cfg.guardrails.compaction.threshold_tokens}",))
    plan = calls.Plan(decision=decision, prompt=text, kind="compaction", session=session, parent_id=call_id,
                      messages=[{"role": "system", "content": COMPACTION_PROMPT}, {"role": "user", "content": text}],
                      max_output_tokens=SUMMARY_MAX_TOKENS,
                      meta={"covers_until": turns[-1]["started_at"], "history_tokens": size,
                            "turns": len(turns) + (1 if summary else 0)})
    answer = calls.complete(loaded, ledger, plan, temperature=0)
    return _as_messages(answer.completion.text, [])
