"""A settlement writes only the columns that changed since the call's pending row (calls.RecordedCall
-> Ledger.upsert_call(update=...)): the stored row is still the whole settled row, a column nobody
settled keeps what the ledger holds, and a row that is missing is written whole."""

from __future__ import annotations

from tiercli import calls, config
from tiercli.ledger import Ledger
from tiercli.pricing import Usage
from tiercli.router import decide


def _loaded(tmp_path):
    path = tmp_path / "tier.yaml"
    path.write_text(config.embedded_default_text())
    return config.load(path)


def _plan(loaded, text: str) -> calls.Plan:
    decision = decide(loaded.config, task_type="search")
    return calls.Plan(decision, text, [{"role": "user", "content": text}], source="serve", session="s-1",
                      key_check=lambda tier: None)


def test_the_stored_row_is_the_whole_settled_row(tmp_path):
    loaded = _loaded(tmp_path)
    with Ledger(tmp_path / "l.db") as ledger:
        call = calls.open_call(loaded, ledger, _plan(loaded, "where is the parser?"))
        call.ok(text="in src/parse.py", served_group=call.decision.tier, served_model=call.decision.model,
                usage=Usage(input_tokens=11, cache_read_tokens=5, output_tokens=7), deployment_id="d1")
        stored = ledger.get_call(call.id)
    assert call.settled_row is not None
    for column, value in call.settled_row.items():
        assert stored[column] == value, column
    assert stored["status"] == "ok" and stored["owner_pid"] is None and stored["reserved_usd"] is None
    assert stored["session"] == "s-1" and stored["prompt_text"] == "where is the parser?"


def test_a_column_the_settlement_did_not_change_keeps_what_the_ledger_holds(tmp_path):
    loaded = _loaded(tmp_path)
    with Ledger(tmp_path / "l.db") as ledger:
        call = calls.open_call(loaded, ledger, _plan(loaded, "rename the flag"))
        ledger.update_call(call.id, label="HIGH")  # written by someone else while the call ran
        call.ok(text="done", served_group=call.decision.tier, served_model=call.decision.model,
                usage=Usage(input_tokens=3, output_tokens=1))
        stored = ledger.get_call(call.id)
    assert stored["label"] == "HIGH"
    assert stored["status"] == "ok" and stored["output_tokens"] == 1


def test_a_settlement_whose_pending_row_is_gone_writes_the_whole_row(tmp_path):
    loaded = _loaded(tmp_path)
    with Ledger(tmp_path / "l.db") as ledger:
        call = calls.open_call(loaded, ledger, _plan(loaded, "count the tests"))
        ledger._connection().execute("DELETE FROM calls WHERE id = ?", (call.id,))
        call.failed_with("BadGateway", "upstream gone")
        stored = ledger.get_call(call.id)
    assert stored["status"] == "error" and stored["error_class"] == "BadGateway"
    assert stored["prompt_text"] == "count the tests" and stored["session"] == "s-1"
