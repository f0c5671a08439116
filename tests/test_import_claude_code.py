"""`tier import claude-code` core: parse_claude_code and import_claude_code.

Real SQLite ledgers under tmp_path, no network. The three real sessions are checked against an
independent count written here, and against figures computed with jq; the synthetic fixtures in
tests/data/claude_code/ cover the edge cases (their expected figures are worked out by hand below).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import pytest

from tiercli.errors import InputError
from tiercli.importers.claude_code import ImportResult, import_claude_code, parse_claude_code
from tiercli.ledger import Ledger
from tiercli.pricing import PriceBook

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
FIXTURES = HERE / "data" / "claude_code"
SESSION = "0d9c3b7e-1111-4a2b-9c3d-000000000001"
MAIN_FILE = FIXTURES / "-home-dev-demo" / f"{SESSION}.jsonl"
SUBAGENT_FILE = FIXTURES / "-home-dev-demo" / SESSION / "subagents" / "agent-5f2e.jsonl"


def _samples_dir() -> Path:
    for cand in (REPO.parent / "shared" / "data" / "claude-code", Path("/work/shared/data/claude-code")):
        if cand.is_dir() and list(cand.glob("*.jsonl")):
            return cand
    pytest.skip("the real Claude Code samples (shared/data/claude-code) are not here")


SAMPLE_1AF7 = "1af7fc5e-8455-4414-9ccd-011d40f70b2a.jsonl"
SAMPLE_5C03 = "5c0375b4-57a5-4f26-b12d-d022ee4e51b7.jsonl"
SAMPLE_FE5E = "fe5e1c67-53e7-4862-81ae-d0e013e3270b.jsonl"


@pytest.fixture
def ledger(tmp_path):
    with Ledger(tmp_path / "ledger.db") as led:
        yield led


def _by_ext(rows):
    return {r["external_id"]: r for r in rows}


def _db_rows(ledger: Ledger) -> list[dict]:
    return ledger._select("SELECT * FROM calls ORDER BY started_at, id")


# -- an independent count of the rules (deliberately naive: whole file in memory, no shared code) --
def _independent_count(files: list[Path]) -> dict:
    best: dict[tuple, dict] = {}
    for path in files:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            obj = json.loads(line)
            if obj.get("type") != "assistant":
                continue
            msg = obj["message"]
            if msg.get("model") == "<synthetic>" or "usage" not in msg:
                continue
            u = msg["usage"]
            total = (u["input_tokens"] + u.get("cache_read_input_tokens", 0)
                     + u.get("cache_creation_input_tokens", 0) + u["output_tokens"])
            key = (msg["id"], obj.get("requestId"))
            if key not in best or total > best[key]["total"]:
                best[key] = {"total": total, "usage": u}
    usages = [v["usage"] for v in best.values()]
    return {
        "calls": len(best),
        "input": sum(u["input_tokens"] for u in usages),
        "cache_read": sum(u.get("cache_read_input_tokens", 0) for u in usages),
        "cache_write": sum(u.get("cache_creation_input_tokens", 0) for u in usages),
        "output": sum(u["output_tokens"] for u in usages),
    }


def _totals(rows) -> dict:
    return {
        "calls": len(rows),
        "input": sum(r["input_tokens"] for r in rows),
        "cache_read": sum(r["cache_read_tokens"] for r in rows),
        "cache_write": sum(r["cache_write_tokens"] for r in rows),
        "output": sum(r["output_tokens"] for r in rows),
    }


# -- the three real sessions -----------------------------------------------------------------------
@pytest.mark.parametrize("name", [SAMPLE_1AF7, SAMPLE_5C03, SAMPLE_FE5E])
def test_real_sample_matches_independent_count(name):
    path = _samples_dir() / name
    rows, stats = parse_claude_code([path])
    assert _totals(rows) == _independent_count([path])
    assert stats.malformed == 0 and stats.synthetic_skipped == 0
    assert all(r["unpriced"] is False and r["cost_usd"] > 0 for r in rows)


def test_real_samples_all_files_and_ledger_totals(ledger):
    samples = _samples_dir()
    files = sorted(samples.glob("*.jsonl"))
    expected = _independent_count(files)
    result = import_claude_code([samples], ledger)
    assert result.calls_added == expected["calls"]
    assert result.tokens == {k: expected[k] for k in ("input", "cache_read", "cache_write", "output")}
    stored = _db_rows(ledger)
    assert _totals(stored) == expected


def test_real_samples_concrete_figures(ledger):
    """Figures computed with jq (group_by [message.id, requestId], max_by token total)."""
    samples = _samples_dir()
    rows, stats = parse_claude_code([samples / SAMPLE_1AF7])
    assert (stats.lines, stats.duplicates) == (29, 8)
    assert _totals(rows) == {"calls": 7, "input": 93, "cache_read": 103219, "cache_write": 12698, "output": 953}
    # claude-sonnet-4: $3 input, $0.30 cache read, $3.75 cache write (5m), $15 output per Mtok
    cost = (93 * 3 + 103219 * 0.30 + 12698 * 3.75 + 953 * 15) / 1e6
    assert sum(r["cost_usd"] for r in rows) == pytest.approx(cost, abs=1e-9)
    assert cost == pytest.approx(0.0931572)

    first = rows[0]
    assert first["external_id"] == "claude-code:msg_01TqDZoU6FcpxB4u2AmpgWfZ:req_011CSkYba8YAUvnXvqT4qm9G"
    assert first["output_tokens"] == 322  # the second line of this response (the first says 8)
    assert first["started_at"] == datetime(2025, 9, 3, 0, 47, 24, 652000, tzinfo=timezone.utc).timestamp()
    assert first["prompt_text"].startswith("Please analyze this codebase and create a CLAUDE.md file")

    result = import_claude_code([samples], ledger)
    assert result.files == 3
    assert result.lines == 29 + 53 + 438
    assert result.calls_added == 197
    assert result.duplicates_skipped == 108
    assert result.malformed == 0
    assert result.tokens == {"input": 1040, "cache_read": 4075332, "cache_write": 198421, "output": 56515}
    assert result.cost_usd == pytest.approx(2.817523, abs=1e-6)
    assert result.unpriced_calls == 0 and result.unpriced_models == []

    stored = _db_rows(ledger)
    assert sum(1 for r in stored if json.loads(r["meta_json"])["is_sidechain"]) == 171  # Task subagents
    assert all(r["prompt_text"] for r in stored)


# -- synthetic fixtures --------------------------------------------------------------------------
def test_fixture_stats():
    rows, stats = parse_claude_code([FIXTURES])
    assert stats.files == 2
    assert stats.lines == 31  # 27 non-blank lines in the session file + 4 in the subagent file
    # bad JSON, a JSON array, invalid UTF-8, output_tokens "12", no message.id, negative tokens, no usage
    assert stats.malformed == 7
    assert stats.synthetic_skipped == 1
    # msg_A: 2 more content-block lines + 1 sidechain replay; msg_C: 1; msg_G: 1; msg_B replayed in the subagent: 1
    assert stats.duplicates == 6
    assert stats.calls == len(rows) == 8
    assert sorted(_by_ext(rows)) == sorted([
        "claude-code:msg_A:req_A", "claude-code:msg_B:req_B", "claude-code:msg_C", "claude-code:msg_D:req_D",
        "claude-code:msg_E:req_E", "claude-code:msg_F:req_F", "claude-code:msg_G:req_G", "claude-code:msg_H:req_H",
    ])


def test_duplicates_keep_largest_and_sidechain_replay_not_counted():
    rows = _by_ext(parse_claude_code([FIXTURES])[0])
    a = rows["claude-code:msg_A:req_A"]
    assert (a["input_tokens"], a["cache_read_tokens"], a["cache_write_tokens"], a["output_tokens"]) == (3, 15000, 400, 90)
    meta = json.loads(a["meta_json"])
    assert meta["tools"] == ["Read", "Grep"]  # one tool_use per line, gathered across the response's lines
    assert meta["is_sidechain"] is False  # replayed in a sidechain, but it is a main-chain call
    assert a["cost_usd"] == pytest.approx((3 * 3 + 15000 * 0.30 + 400 * 3.75 + 90 * 15) / 1e6)  # $0.007359

    # a genuine sidechain call, and a genuine subagent call with its own ids
    f = rows["claude-code:msg_F:req_F"]
    assert json.loads(f["meta_json"])["is_sidechain"] is True
    g = rows["claude-code:msg_G:req_G"]
    assert g["output_tokens"] == 250
    g_meta = json.loads(g["meta_json"])
    assert g_meta["is_sidechain"] is True and g_meta["file"] == "agent-5f2e.jsonl" and g_meta["agent_id"] == "5f2e"
    assert g_meta["tools"] == ["Read", "Write"]
    assert g["session"] == SESSION

    # msg_B replayed in the subagent file: counted once, still the main file's call
    b = rows["claude-code:msg_B:req_B"]
    assert json.loads(b["meta_json"])["file"] == f"{SESSION}.jsonl"


def test_subagent_file_alone_is_found_and_counted():
    rows, stats = parse_claude_code([FIXTURES / "-home-dev-demo" / SESSION])
    assert stats.files == 1
    assert sorted(_by_ext(rows)) == ["claude-code:msg_B:req_B", "claude-code:msg_G:req_G"]


def test_one_hour_cache_writes_priced_at_twice_input():
    rows = _by_ext(parse_claude_code([MAIN_FILE])[0])
    b = rows["claude-code:msg_B:req_B"]
    assert b["served_model"] == "claude-haiku-4-5-20251001"
    assert (b["input_tokens"], b["cache_read_tokens"], b["cache_write_tokens"], b["cache_write_1h_tokens"], b["output_tokens"]) == (
        100, 20000, 30000, 20000, 1000)
    # haiku-4-5 per Mtok: $1 input, $0.10 cache read, $1.25 5m write, $2 1h write, $5 output
    # 100*1 + 20000*0.10 + 10000*1.25 + 20000*2 + 1000*5 = 100 + 2000 + 12500 + 40000 + 5000 = 59600
    assert b["cost_usd"] == pytest.approx(0.0596, abs=1e-12)
    assert b["unpriced"] is False and b["price_source"]


def test_config_prices_win():
    prices = PriceBook({"claude-haiku-4-5-20251001": {"input": 10, "output": 50}})
    rows = _by_ext(parse_claude_code([MAIN_FILE], prices)[0])
    b = rows["claude-code:msg_B:req_B"]
    # defaults for config prices: read 0.1x, 5m write 1.25x, 1h write 2x input
    assert b["cost_usd"] == pytest.approx((100 * 10 + 20000 * 1 + 10000 * 12.5 + 20000 * 20 + 1000 * 50) / 1e6)
    assert b["price_source"] == "config"


def test_synthetic_skipped_and_unknown_model_unpriced(ledger):
    rows = _by_ext(parse_claude_code([MAIN_FILE])[0])
    assert not any("synthetic" in ext for ext in rows)
    d = rows["claude-code:msg_D:req_D"]
    assert d["cost_usd"] is None and d["unpriced"] is True and d["price_source"] is None

    result = import_claude_code([MAIN_FILE], ledger)
    assert result.unpriced_calls == 1 and result.unpriced_models == ["acme-coder-9000"]
    stored = {r["external_id"]: r for r in _db_rows(ledger)}
    assert stored["claude-code:msg_D:req_D"]["cost_usd"] is None  # NULL, never 0
    assert stored["claude-code:msg_D:req_D"]["unpriced"] == 1
    priced = [r["cost_usd"] for r in stored.values() if r["cost_usd"] is not None]
    assert result.cost_usd == pytest.approx(sum(priced))


def test_message_without_request_id_and_reported_cost():
    rows = _by_ext(parse_claude_code([MAIN_FILE])[0])
    c = rows["claude-code:msg_C"]
    assert c["output_tokens"] == 10  # the larger of its two lines
    assert json.loads(c["meta_json"])["request_id_missing"] is True
    e = rows["claude-code:msg_E:req_E"]
    meta = json.loads(e["meta_json"])
    assert meta["reported_cost_usd"] == 0.0123
    assert e["cost_usd"] == pytest.approx((20 * 3 + 100 * 3.75 + 30 * 15) / 1e6)  # ours, not costUSD


def test_request_text_recovered_through_tool_results():
    rows = _by_ext(parse_claude_code([FIXTURES])[0])
    # msg_B's parent is a tool_result user line; the request is two steps further back
    assert rows["claude-code:msg_B:req_B"]["prompt_text"] == "Fix the failing test in tests/test_parser.py"
    assert rows["claude-code:msg_A:req_A"]["prompt_text"] == "Fix the failing test in tests/test_parser.py"
    # a user message whose content is a list of text blocks
    assert rows["claude-code:msg_C"]["prompt_text"] == "Now add a docstring to parse_header"
    # walks through assistant and system lines
    assert rows["claude-code:msg_E:req_E"]["prompt_text"] == "Now add a docstring to parse_header"
    assert rows["claude-code:msg_F:req_F"]["prompt_text"] == "Search the repo for TODO comments"
    # a lone surrogate (a cut emoji) is stored as '?', so SQLite can take it
    assert rows["claude-code:msg_H:req_H"]["prompt_text"] == "Explain this emoji: ? and the header format"
    # long requests: prompt_text 4,000 chars, meta request 200; the hash is of the whole text
    g = rows["claude-code:msg_G:req_G"]
    assert len(g["prompt_text"]) == 4000
    meta = json.loads(g["meta_json"])
    assert meta["request"] == g["prompt_text"][:200]
    import hashlib

    full = ("Write unit tests for the tokenizer module, covering empty input, unicode and very long lines. " * 50)
    # the hash is of the whole instruction (as tiercli.agent cleans it: stripped)
    assert g["prompt_hash"] == hashlib.sha256(full.strip().encode()).hexdigest()[:16]


def test_row_values_in_the_ledger(ledger):
    result = import_claude_code([FIXTURES], ledger)
    assert isinstance(result, ImportResult)
    assert result.calls_added == 8
    stored = {r["external_id"]: r for r in _db_rows(ledger)}
    a = stored["claude-code:msg_A:req_A"]
    assert a["id"].startswith("cc-") and len(a["id"]) == 27
    assert (a["source"], a["kind"], a["decision_source"], a["status"]) == ("claude-code", "import", "import", "ok")
    assert a["tier"] is None and a["response_text"] is None
    # the task's instruction, classified once by the local classifier (tier did not route it)
    assert (a["task_type"], a["label"], a["classifier"]) == ("bug_fix", "MEDIUM", "local")
    assert a["task_id"] and a["task_id"].startswith("t-")
    assert a["requested_model"] == a["served_model"] == "claude-sonnet-4-20250514"
    assert a["session"] == SESSION
    assert a["output_estimated"] == 0
    # the kept line (output 90) is the 4th timestamped line of the fixture: 09:00:04.500Z
    assert a["started_at"] == a["ended_at"] == datetime(2025, 10, 20, 9, 0, 4, 500000, tzinfo=timezone.utc).timestamp()
    meta = json.loads(a["meta_json"])
    assert meta["file"] == f"{SESSION}.jsonl" and meta["cwd"] == "/home/dev/demo" and meta["version"] == "2.0.14"
    assert meta["request"] == "Fix the failing test in tests/test_parser.py"

    js = result.to_json()
    for key in ("files", "lines", "calls_added", "duplicates_skipped", "malformed"):
        assert key in js
    assert js["calls_added"] == 8 and js["malformed"] == 7 and js["duplicates_skipped"] == 6
    json.dumps(js)  # plain JSON


def test_idempotent_second_import_adds_nothing(ledger):
    first = import_claude_code([FIXTURES], ledger)
    second = import_claude_code([FIXTURES], ledger)
    assert first.calls_added == 8
    assert second.calls_added == 0
    assert second.duplicates_skipped == 6 + 8
    assert second.tokens == {"input": 0, "cache_read": 0, "cache_write": 0, "output": 0} and second.cost_usd == 0
    assert len(_db_rows(ledger)) == 8
    # a path given twice (a directory and a file inside it) is read once
    third = import_claude_code([FIXTURES, MAIN_FILE], ledger)
    assert third.files == 2 and third.calls_added == 0


def test_insert_new_calls_dedups_on_external_id_too(ledger):
    """Ledger.insert_new_calls: ON CONFLICT DO NOTHING covers the unique external_id, not just id."""
    import_claude_code([MAIN_FILE], ledger)
    added, skipped = ledger.insert_new_calls(
        [{"id": "someone-else", "external_id": "claude-code:msg_A:req_A", "started_at": 1.0, "source": "claude-code"}]
    )
    assert (added, skipped) == (0, 1)


def test_a_failed_write_leaves_nothing(ledger, monkeypatch):
    real = ledger.insert_new_calls

    def crashing(rows):
        def gen():
            for i, row in enumerate(rows):
                if i == 3:
                    raise RuntimeError("disk on fire")
                yield row

        return real(gen())

    monkeypatch.setattr(ledger, "insert_new_calls", crashing)
    with pytest.raises(RuntimeError):
        import_claude_code([FIXTURES], ledger)
    assert _db_rows(ledger) == []


def test_request_id_seen_later_joins_the_same_call(tmp_path):
    lines = [
        {"type": "assistant", "timestamp": "2025-10-01T10:00:00Z", "sessionId": "s",
         "message": {"id": "msg_1", "model": "claude-sonnet-4-20250514", "content": [],
                     "usage": {"input_tokens": 1, "output_tokens": 2}}},
        {"type": "assistant", "timestamp": "2025-10-01T10:00:01Z", "sessionId": "s", "requestId": "req_1",
         "message": {"id": "msg_1", "model": "claude-sonnet-4-20250514", "content": [],
                     "usage": {"input_tokens": 1, "output_tokens": 7}}},
        {"type": "assistant", "timestamp": "2025-10-01T10:00:02Z", "sessionId": "s",
         "message": {"id": "msg_1", "model": "claude-sonnet-4-20250514", "content": [],
                     "usage": {"input_tokens": 1, "output_tokens": 5}}},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    rows, stats = parse_claude_code([path])
    assert [r["external_id"] for r in rows] == ["claude-code:msg_1:req_1"]
    assert rows[0]["output_tokens"] == 7 and rows[0]["prompt_text"] is None and rows[0]["prompt_hash"] is None
    assert stats.duplicates == 2


def test_user_line_mixing_tool_result_and_text_is_not_a_request(tmp_path):
    def user(uuid, parent, content):
        return {"type": "user", "uuid": uuid, "parentUuid": parent, "timestamp": "2025-10-01T10:00:00Z",
                "message": {"role": "user", "content": content}}

    lines = [
        user("u1", None, "Rename foo to bar everywhere"),
        {"type": "assistant", "uuid": "a1", "parentUuid": "u1", "timestamp": "2025-10-01T10:00:01Z", "requestId": "r1",
         "message": {"id": "m1", "model": "claude-sonnet-4-20250514",
                     "content": [{"type": "tool_use", "id": "t1", "name": "Grep", "input": {}}],
                     "usage": {"input_tokens": 1, "output_tokens": 2}}},
        user("u2", "a1", [{"type": "tool_result", "tool_use_id": "t1", "content": [{"type": "text", "text": "hits"}]},
                          {"type": "text", "text": "[Request interrupted by user for tool use]"}]),
        {"type": "assistant", "uuid": "a2", "parentUuid": "u2", "timestamp": "2025-10-01T10:00:02Z", "requestId": "r2",
         "message": {"id": "m2", "model": "claude-sonnet-4-20250514", "content": [],
                     "usage": {"input_tokens": 1, "output_tokens": 2}}},
    ]
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    rows = _by_ext(parse_claude_code([path])[0])
    assert rows["claude-code:m2:r2"]["prompt_text"] == "Rename foo to bar everywhere"


def test_missing_path_is_an_input_error(ledger, tmp_path):
    missing = tmp_path / "nope" / "session.jsonl"
    with pytest.raises(InputError) as info:
        import_claude_code([missing], ledger)
    assert str(missing) in info.value.message and "\n" not in info.value.message
    assert info.value.exit_code == 4


def test_empty_directory_imports_nothing(ledger, tmp_path):
    (tmp_path / "empty").mkdir()
    result = import_claude_code([tmp_path / "empty"], ledger)
    assert (result.files, result.lines, result.calls_added) == (0, 0, 0)


def test_default_directories(ledger, tmp_path, monkeypatch):
    home = tmp_path / "home"
    (home / ".claude" / "projects" / "p").mkdir(parents=True)
    (home / ".config" / "claude" / "projects").mkdir(parents=True)
    conf = tmp_path / "conf"
    (conf / "projects").mkdir(parents=True)
    (home / ".claude" / "projects" / "p" / "a.jsonl").write_bytes(MAIN_FILE.read_bytes())
    (home / ".config" / "claude" / "projects" / "b.jsonl").write_bytes(SUBAGENT_FILE.read_bytes())
    (conf / "projects" / "c.jsonl").write_text("not json\n")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(conf))
    result = import_claude_code(None, ledger)
    assert result.files == 3 and result.calls_added == 8 and result.malformed == 7 + 1

    monkeypatch.setenv("HOME", str(tmp_path / "nobody"))
    monkeypatch.delenv("CLAUDE_CONFIG_DIR")
    with pytest.raises(InputError):
        parse_claude_code(None)


def test_importer_does_not_import_litellm():
    env = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    code = (
        "import sys, tiercli.importers.claude_code as m\n"
        f"m.parse_claude_code([{str(MAIN_FILE)!r}])\n"
        "assert 'litellm' not in sys.modules, 'litellm was imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=60)


def test_deep_nesting_and_huge_counts_are_malformed_lines_not_a_failed_import(tmp_path, ledger):
    good = {"type": "assistant", "timestamp": "2025-10-01T10:00:00Z", "sessionId": "s", "requestId": "r1",
            "message": {"id": "m1", "model": "claude-sonnet-4-20250514", "content": [],
                        "usage": {"input_tokens": 1, "output_tokens": 2}}}
    huge = json.loads(json.dumps(good))
    huge["message"]["id"], huge["requestId"] = "m2", "r2"
    huge["message"]["usage"]["output_tokens"] = 10**30
    deep = '{"type":"user","uuid":"u9","message":{"role":"user","content":' + "[" * 5000 + "]" * 5000 + "}}"
    path = tmp_path / "s.jsonl"
    path.write_text("\n".join([json.dumps(huge), deep, json.dumps(good)]) + "\n")
    result = import_claude_code([path], ledger)
    assert result.calls_added == 1 and result.malformed == 2
    assert [r["external_id"] for r in _db_rows(ledger)] == ["claude-code:m1:r1"]
