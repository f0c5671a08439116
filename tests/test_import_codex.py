"""`tier import codex`: Codex CLI rollout files (fixture in tests/data/codex, built from the real
Codex 0.142 line shapes: session_meta, turn_context, response_item, event_msg user_message and
token_count with total_token_usage / last_token_usage). Expected figures worked out by hand below."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tiercli.errors import InputError
from tiercli.importers.codex import import_codex, parse_codex
from tiercli.ledger import Ledger
from tiercli.pricing import PriceBook

FIXTURES = Path(__file__).resolve().parent / "data" / "codex"
PARENT = FIXTURES / "2026" / "07" / "03" / "rollout-2026-07-03T18-15-07-c1.jsonl"


def test_each_turn_counted_once_cached_split_out():
    rows, stats = parse_codex([PARENT])
    # 4 increases of the running total; the repeated T1 line is not a call; info:null is a heartbeat
    assert stats.calls == len(rows) == 4 and stats.duplicates == 1
    # a 10**30 token count and a 5000-deep line are malformed; the rest imports
    assert stats.malformed == 2
    # OpenAI input includes cached input: uncached = input - cached
    assert [(r["input_tokens"], r["cache_read_tokens"], r["output_tokens"]) for r in rows] == [
        (14475 - 2432, 2432, 216), (15000 - 14000, 14000, 300), (16000 - 15000, 15000, 100), (1000, 0, 50)]
    assert all(r["cache_write_tokens"] == 0 and r["served_model"] == "gpt-5" and r["session"] == "c1" for r in rows)
    # the sum of the counted turns is the last running total (46475 input, 31432 cached, 666 output)
    assert sum(r["input_tokens"] + r["cache_read_tokens"] for r in rows) == 46475
    assert sum(r["cache_read_tokens"] for r in rows) == 31432 and sum(r["output_tokens"] for r in rows) == 666


def test_tasks_continuation_and_tools():
    rows, stats = parse_codex([PARENT])
    rules = [json.loads(r["meta_json"])["task_rule"] for r in rows]
    assert rules == ["new_task", "tool_step", "continuation", "new_task"]
    assert rows[0]["task_id"] == rows[1]["task_id"] == rows[2]["task_id"] != rows[3]["task_id"]
    assert rows[2]["prompt_text"] == "add a Dockerfile"  # "continue" inherits the task's instruction
    assert json.loads(rows[0]["meta_json"])["tools"] == ["exec_command"]
    assert json.loads(rows[1]["meta_json"])["tools"] == ["apply_patch"]
    assert stats.tasks == 2 and rows[3]["task_type"] == "test_gen"


def test_forked_session_replaying_its_parent_is_not_counted_twice():
    rows, stats = parse_codex([FIXTURES])
    assert stats.files == 2 and len(rows) == 5
    fork = [r for r in rows if r["session"] == "c2"]
    assert len(fork) == 1
    assert (fork[0]["input_tokens"], fork[0]["cache_read_tokens"], fork[0]["output_tokens"]) == (500, 1500, 40)
    assert json.loads(fork[0]["meta_json"])["tools"] == []  # the replayed calls' tools are not its own
    assert stats.duplicates == 1 + 3  # parent's repeat; the fork's replay of T1, T1 again, T2


def test_import_is_idempotent_and_priced(tmp_path):
    prices = PriceBook({"gpt-5": {"input": 1.25, "output": 10, "cache_read": 0.125}})
    with Ledger(tmp_path / "l.db") as led:
        first = import_codex([FIXTURES], led, prices)
        second = import_codex([FIXTURES], led, prices)
    assert first.calls_added == 5 and second.calls_added == 0 and second.already_imported == 5
    want = ((12043 + 1000 + 1000 + 1000 + 500) * 1.25 + (2432 + 14000 + 15000 + 1500) * 0.125
            + (216 + 300 + 100 + 50 + 40) * 10) / 1e6
    assert first.cost_usd == pytest.approx(want)


def test_a_yaml_file_is_not_a_rollout(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("model_list:\n  - model_name: tier1\n")
    with pytest.raises(InputError) as info:
        parse_codex([bad])
    assert "not a Codex rollout file" in info.value.message
