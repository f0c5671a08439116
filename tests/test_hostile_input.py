"""A catalogue of hostile input, one table row per case, run through the CLI.

Every case either fails with ONE stderr line `tier: error: ...`, its documented exit code (README:
2 usage, 3 config, 4 input, 5 ledger) and no traceback, or is handled correctly; and nothing is lost:
the ledger's rows are unchanged (or gained exactly the one call that was asked), and a ledger file
that is refused is left byte for byte as it was. docs/RELIABILITY.md quotes the count of cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import pty
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest
from typer.testing import CliRunner

from fakeprovider import Reply
from relhelp import assert_one_line_error, read_rows, two_tier_config
from tiercli.cli import app

runner = CliRunner()

OFFLINE_ONE_TIER = """model_list:
  - model_name: tier1
    litellm_params: {model: offline/claude-haiku-4-5}
routing: {tiers: [tier1], default_tier: tier1, task_types: {search: tier1}, labels: {}}
guardrails: {compaction: {tier: tier1}}
"""


def billion_laughs(levels: int, width: int) -> str:
    lines = [f'  a0: &a0 [{", ".join(["lol"] * width)}]']
    lines += [f'  a{i}: &a{i} [{", ".join([f"*a{i - 1}"] * width)}]' for i in range(1, levels)]
    return OFFLINE_ONE_TIER + "litellm_settings:\n" + "\n".join(lines) + "\n"


def with_guardrails(extra: str) -> str:
    return OFFLINE_ONE_TIER.replace("guardrails: {compaction: {tier: tier1}}", "guardrails: {compaction: {tier: tier1}, " + extra + "}")


def with_price(price: str) -> str:
    return OFFLINE_ONE_TIER + f"prices:\n  claude-haiku-4-5: {price}\n"


@dataclass
class Case:
    id: str
    args: list[str]  # "{tmp}" is replaced by the case's directory
    code: int
    fragment: str = ""  # expected in the error line (or in stdout when code == 0)
    files: dict[str, bytes | str] = field(default_factory=dict)  # written under {tmp} first
    stdin: bytes | None = None
    env: dict[str, str] = field(default_factory=dict)
    adds_rows: int = 0  # a correctly handled ask adds its one row
    db: str | None = None  # a ledger file of the case's own, checked byte for byte when refused
    check: Callable[[Path, object], None] | None = None
    fifo: bool = False  # make {tmp}/fifo a named pipe with no writer (opening it would block for ever)


def _newer_schema(path: Path) -> None:
    from tiercli.ledger import Ledger

    Ledger(path).close()
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO schema_migrations (version, applied_at, description) VALUES (99, 0, 'from the future')")
    conn.execute("PRAGMA user_version=99")
    conn.commit()
    conn.execute("PRAGMA journal_mode=DELETE")
    conn.close()


def _foreign(path: Path) -> None:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT)")
    conn.execute("INSERT INTO photos (name) VALUES ('holiday.jpg')")
    conn.commit()
    conn.close()


def _corrupt(path: Path) -> None:
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(8192))


def _truncated(path: Path) -> None:
    from tiercli.ledger import Ledger

    with Ledger(path) as ledger:
        for i in range(50):
            ledger.upsert_call({"id": f"t{i}", "started_at": 1.0 + i, "status": "ok", "prompt_text": "x" * 500})
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.close()
    for side in ("-wal", "-shm"):
        Path(f"{path}{side}").unlink(missing_ok=True)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])


LEDGER_MAKERS = {"newer": _newer_schema, "foreign": _foreign, "corrupt": _corrupt, "truncated": _truncated}


def _no_escape_in_log(tmp: Path, result) -> None:
    assert "\x1b" not in result.stdout and "\\x1b[2J" in result.stdout


def _stored_verbatim(text: str) -> Callable[[Path, object], None]:
    def check(tmp: Path, result) -> None:
        assert json.loads(result.stdout)["call_id"]
        rows = read_rows(Path(os.environ["TIER_HOME"]) / "ledger.db")
        assert rows[-1]["prompt_text"] == text

    return check


ESCAPES = "\x1b[2J\x1b]0;pwned\x07[bold red]boom[/] \x9b31m"

CASES = [
    # -- config: YAML ------------------------------------------------------------------------------------
    Case("yaml-billion-laughs-many-aliases", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "more than 100 YAML aliases",
         files={"c.yaml": billion_laughs(12, 10)}),
    Case("yaml-bomb-72-aliases-387M-values", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "expands to more than",
         files={"c.yaml": billion_laughs(9, 9)}),
    Case("yaml-bomb-in-config-show", ["config", "show", "-c", "{tmp}/c.yaml"], 3, "expands to more than",
         files={"c.yaml": billion_laughs(9, 9)}),
    Case("yaml-nested-5000-deep", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "nested too deeply",
         files={"c.yaml": "model_list: " + "[" * 5000 + "]" * 5000 + "\n"}),
    Case("yaml-duplicate-keys", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "duplicate key 'routing'",
         files={"c.yaml": OFFLINE_ONE_TIER + "routing: {default_tier: tier1}\n"}),
    Case("yaml-python-object-tag", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "YAML error",
         files={"c.yaml": OFFLINE_ONE_TIER + "x: !!python/object/apply:os.system ['touch {tmp}/pwned']\n"},
         check=lambda tmp, r: not (tmp / "pwned").exists() or pytest.fail("the tag ran")),
    Case("yaml-syntax-error-has-line", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "line 3, column 1",
         files={"c.yaml": "model_list:\n  - model_name: x\n\tbad: tab\n"}),
    Case("config-empty-file", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "must be a YAML mapping", files={"c.yaml": ""}),
    Case("config-is-a-yaml-list", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "must be a YAML mapping",
         files={"c.yaml": "- model_name: tier1\n- model_name: tier2\n"}),
    Case("config-is-a-scalar", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "must be a YAML mapping", files={"c.yaml": "42\n"}),
    Case("config-is-a-directory", ["ask", "-c", "{tmp}", "hi"], 3, "is a directory"),
    Case("config-missing", ["ask", "-c", "{tmp}/nope.yaml", "hi"], 3, "not found"),
    Case("config-not-utf8", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "not UTF-8", files={"c.yaml": b"model_list: \xff\xfe\n"}),
    Case("config-over-1-mb", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "larger than 1 MB",
         files={"c.yaml": OFFLINE_ONE_TIER + "#" + "x" * 1_100_000 + "\n"}),
    Case("config-is-dev-zero", ["ask", "-c", "/dev/zero", "hi"], 3, "is a device, not a file"),
    Case("config-via-env-is-dev-null", ["ask", "hi"], 3, "is a device, not a file", env={"TIER_CONFIG": "/dev/null"}),
    Case("config-is-a-fifo", ["ask", "-c", "{tmp}/fifo", "hi"], 3, "named pipe", fifo=True),
    # -- config: types and numbers -----------------------------------------------------------------------
    Case("wrong-type-timeout-string", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "guardrails.timeout_s",
         files={"c.yaml": with_guardrails("timeout_s: fast")}),
    Case("wrong-type-model-list-int", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "model_list",
         files={"c.yaml": "model_list: 5\n"}),
    Case("wrong-type-tiers-string", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "routing.tiers",
         files={"c.yaml": OFFLINE_ONE_TIER.replace("tiers: [tier1]", "tiers: tier1")}),
    Case("negative-timeout", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "greater than 0",
         files={"c.yaml": with_guardrails("timeout_s: -1")}),
    Case("zero-max-output-tokens", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "max_output_tokens",
         files={"c.yaml": with_guardrails("max_output_tokens: 0")}),
    Case("huge-int-max-iterations", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "max_iterations",
         files={"c.yaml": with_guardrails("max_iterations: " + "9" * 40)}),
    Case("negative-price", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "prices.claude-haiku-4-5.input",
         files={"c.yaml": with_price("{input: -1, output: 5}")}),
    Case("infinite-price", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "prices.claude-haiku-4-5.input",
         files={"c.yaml": with_price("{input: .inf, output: 5}")}),
    Case("nan-price", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "prices.claude-haiku-4-5.input",
         files={"c.yaml": with_price("{input: .nan, output: 5}")}),
    Case("absurd-price-1e308", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "prices.claude-haiku-4-5.output",
         files={"c.yaml": with_price("{input: 1, output: 1e308}")}),
    Case("deployment-price-infinite", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "input_cost_per_token must be dollars per token",
         files={"c.yaml": OFFLINE_ONE_TIER.replace("{model: offline/claude-haiku-4-5}",
                                                   "{model: offline/house, input_cost_per_token: .inf, output_cost_per_token: 0.00001}")}),
    Case("deployment-price-negative", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "output_cost_per_token must be dollars per token",
         files={"c.yaml": OFFLINE_ONE_TIER.replace("{model: offline/claude-haiku-4-5}",
                                                   "{model: offline/house, input_cost_per_token: 0.000001, output_cost_per_token: -1}")}),
    Case("deployment-price-a-string", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "cache_read_input_token_cost must be dollars",
         files={"c.yaml": OFFLINE_ONE_TIER.replace("{model: offline/claude-haiku-4-5}",
                                                   "{model: offline/claude-haiku-4-5, cache_read_input_token_cost: cheap}")}),
    Case("unknown-top-level-key", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "unknown key",
         files={"c.yaml": OFFLINE_ONE_TIER + "surprise: 1\n"}),
    Case("unknown-router-setting", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "unknown key(s) rm_rf",
         files={"c.yaml": OFFLINE_ONE_TIER + "router_settings: {rm_rf: true}\n"}),
    Case("fallback-to-unknown-group", ["ask", "-c", "{tmp}/c.yaml", "hi"], 3, "unknown group",
         files={"c.yaml": OFFLINE_ONE_TIER + "router_settings: {fallbacks: [{tier1: [tier9]}]}\n"}),
    # -- input -------------------------------------------------------------------------------------------
    Case("stdin-nul-bytes", ["ask", "-t", "search"], 4, "NUL bytes", stdin=b"log line\x00\x01\x02 more"),
    Case("stdin-invalid-utf8", ["ask", "-t", "search"], 4, "not UTF-8 text (bad byte at offset 4)", stdin=b"abc \xff\xfe"),
    Case("stdin-9-mb", ["ask", "-t", "search"], 4, "larger than 8 MB", stdin=b"x" * (9 * 1024 * 1024)),
    Case("prompt-empty", ["ask", "-t", "search", ""], 4, "the prompt is empty"),
    Case("prompt-whitespace-only", ["ask", "-t", "search"], 4, "the prompt is empty", stdin=b" \n\t\n"),
    Case("prompt-argument-invalid-utf8", ["ask", "-t", "search", "bad \udcff\udcfe"], 4, "prompt argument is not UTF-8"),
    Case("session-invalid-utf8", ["ask", "-t", "search", "-s", "s\udcff", "hi"], 4, "not UTF-8 text"),
    Case("system-file-missing", ["ask", "-t", "search", "--system-file", "{tmp}/none.txt", "hi"], 4, "cannot read --system-file"),
    Case("system-file-directory", ["ask", "-t", "search", "--system-file", "{tmp}", "hi"], 4, "is a directory"),
    Case("system-file-fifo", ["ask", "-t", "search", "--system-file", "{tmp}/fifo", "hi"], 4, "named pipe", fifo=True),
    Case("ledger-is-a-fifo", ["ask", "--db", "{tmp}/fifo", "-t", "search", "hi"], 5, "named pipe", fifo=True),
    Case("serve-db-is-a-fifo", ["serve", "--db", "{tmp}/fifo", "--port", "1"], 5, "named pipe", fifo=True),
    Case("system-file-binary", ["ask", "-t", "search", "--system-file", "{tmp}/s.bin", "hi"], 4, "cannot read --system-file",
         files={"s.bin": b"\x89PNG\r\n\x1a\n\xff\xfe"}),
    Case("system-file-dev-zero", ["ask", "-t", "search", "--system-file", "/dev/zero", "hi"], 4, "is a device"),
    Case("unknown-classifier", ["ask", "--classifier", "oracle", "hi"], 4, "unknown --classifier"),
    Case("feedback-unknown-id", ["feedback", "ffffffff", "good"], 4, "no call with id"),
    # -- usage -------------------------------------------------------------------------------------------
    Case("unknown-task-type", ["ask", "-t", "world_domination", "hi"], 2, "world_domination"),
    Case("log-n-zero", ["log", "-n", "0"], 2, ""),
    Case("log-n-negative", ["log", "-n", "-5"], 2, ""),
    Case("log-n-huge", ["log", "-n", "9" * 30], 2, ""),
    Case("feedback-bad-verdict", ["feedback", "abc", "meh"], 2, "good or bad"),
    # -- ledger --------------------------------------------------------------------------------------------
    Case("ledger-newer-schema", ["ask", "--db", "{tmp}/l.db", "-t", "search", "hi"], 5, "schema version 99", db="newer"),
    Case("ledger-newer-schema-log", ["log", "--db", "{tmp}/l.db"], 5, "newer than this tier knows", db="newer"),
    Case("ledger-foreign-sqlite", ["ask", "--db", "{tmp}/l.db", "-t", "search", "hi"], 5, "another program", db="foreign"),
    Case("ledger-corrupt", ["log", "--db", "{tmp}/l.db"], 5, "damaged or unreadable", db="corrupt"),
    Case("ledger-truncated", ["ask", "--db", "{tmp}/l.db", "-t", "search", "hi"], 5, "damaged or unreadable", db="truncated"),
    Case("ledger-is-a-text-file", ["ask", "--db", "{tmp}/notes.txt", "-t", "search", "hi"], 5, "not a SQLite database",
         files={"notes.txt": "my notes\n"}),
    Case("ledger-is-a-directory", ["ask", "--db", "{tmp}", "-t", "search", "hi"], 5, "is a directory"),
    Case("data-dir-under-a-regular-file", ["ask", "-t", "search", "hi"], 5, "cannot create the ledger directory",
         files={"blocker": "a file, not a directory\n"}, env={"TIER_HOME": "{tmp}/blocker/home"}),
    # root: "cannot open the ledger" (sysfs refuses the file); others: "the ledger directory /sys is not writable"
    Case("data-dir-on-read-only-sysfs", ["ask", "--db", "/sys/tier-ledger.db", "-t", "search", "hi"], 5, "the ledger"),
    Case("data-dir-in-procfs", ["ask", "--db", "/proc/tier/ledger.db", "-t", "search", "hi"], 5, "cannot create the ledger directory"),
    # -- handled correctly ---------------------------------------------------------------------------------
    Case("paths-with-spaces", ["ask", "--json", "-c", "{tmp}/my configs/tier config.yaml", "--db", "{tmp}/my data/the ledger.db",
                               "-t", "search", "hi"], 0, '"call_id"', files={"my configs/tier config.yaml": OFFLINE_ONE_TIER},
         check=lambda tmp, r: len(read_rows(tmp / "my data" / "the ledger.db")) == 1 or pytest.fail("no row")),
    Case("tier-home-with-spaces", ["ask", "--json", "-t", "search", "hi"], 0, '"call_id"', env={"TIER_HOME": "{tmp}/a home/with spaces"},
         check=lambda tmp, r: len(read_rows(tmp / "a home" / "with spaces" / "ledger.db")) == 1 or pytest.fail("no row")),
    Case("escapes-and-markup-in-prompt-stored-verbatim", ["ask", "--json", "-t", "search", ESCAPES], 0, '"call_id"',
         adds_rows=1, check=_stored_verbatim(ESCAPES)),
    Case("escapes-in-stdin-stored-verbatim", ["ask", "--json", "-t", "search"], 0, '"call_id"', stdin=ESCAPES.encode(),
         adds_rows=1, check=_stored_verbatim(ESCAPES)),
    Case("escapes-in-session-are-inert-in-log", ["log"], 0, "\\x1b[2J", env={"COLUMNS": "200"}, check=_no_escape_in_log),
    Case("unicode-prompt", ["ask", "--json", "-t", "search", "naïve 日本語 עברית e\u0301 🙂"], 0, '"call_id"', adds_rows=1,
         check=_stored_verbatim("naïve 日本語 עברית e\u0301 🙂")),
    Case("stdin-8-mb-limit-is-exact", ["ask", "-t", "search"], 4, "larger than 8 MB", stdin=b"y" * (8 * 1024 * 1024 + 1)),
]


@pytest.fixture
def seeded(tier_home):
    """A default ledger holding two calls, one with a hostile session name."""
    from tiercli.ledger import Ledger

    with Ledger(tier_home / "ledger.db") as ledger:
        ledger.upsert_call({"id": "seed-1", "started_at": 1_700_000_000.0, "status": "ok", "cost_usd": 0.25,
                            "tier": "tier1", "session": ESCAPES, "prompt_text": "first"})
        ledger.upsert_call({"id": "seed-2", "started_at": 1_700_000_100.0, "status": "error", "cost_usd": 0.0,
                            "tier": "tier2", "prompt_text": "second"})
    return read_rows(tier_home / "ledger.db")


def _fmt(value: str, tmp: Path) -> str:
    return value.replace("{tmp}", str(tmp))


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, seeded, tier_home, tmp_path, monkeypatch):
    tmp = tmp_path / "case dir"
    tmp.mkdir()
    for name, content in case.files.items():
        path = tmp / name
        path.parent.mkdir(parents=True, exist_ok=True)
        content = _fmt(content, tmp) if isinstance(content, str) else content
        path.write_bytes(content.encode() if isinstance(content, str) else content)
    if case.fifo:
        os.mkfifo(tmp / "fifo")
    refused_file = None
    if case.db:
        refused_file = tmp / "l.db"
        LEDGER_MAKERS[case.db](refused_file)
    elif case.code == 5 and "--db" in case.args:
        candidate = Path(_fmt(case.args[case.args.index("--db") + 1], tmp))
        refused_file = candidate if candidate.is_file() else None
    before = hashlib.sha256(refused_file.read_bytes()).hexdigest() if refused_file else None
    siblings = sorted(p.name for p in refused_file.parent.iterdir()) if refused_file else None
    for name, value in case.env.items():
        monkeypatch.setenv(name, _fmt(value, tmp))

    started = time.monotonic()
    result = runner.invoke(app, [_fmt(a, tmp) for a in case.args], input=case.stdin)
    elapsed = time.monotonic() - started

    assert elapsed < 120, f"{case.id} took {elapsed:.1f} s"  # a hang guard, not a performance check
    if case.code == 0:
        assert result.exit_code == 0, result.stderr[-2000:]
        assert case.fragment in result.stdout
    elif case.code == 2:  # click's usage errors: a short usage block, then one "Error:" line, no traceback
        assert result.exit_code == 2, (result.exit_code, result.stderr)
        assert "Traceback" not in result.stderr and case.fragment in result.stderr
    else:
        assert_one_line_error(result, case.code, case.fragment)
    if case.check:
        case.check(tmp, result)
    if refused_file is not None:
        assert hashlib.sha256(refused_file.read_bytes()).hexdigest() == before, "a refused ledger was modified"
        appeared = sorted(set(p.name for p in refused_file.parent.iterdir()) - set(siblings))
        if case.db == "truncated":  # a WAL-mode file: SQLite's read-only open adds its (empty) side files
            assert appeared in ([], [f"{refused_file.name}-shm", f"{refused_file.name}-wal"])
            assert not appeared or Path(f"{refused_file}-wal").stat().st_size == 0
        else:
            assert appeared == [], "files appeared next to it"
    after = read_rows(tier_home / "ledger.db")
    assert after[: len(seeded)] == seeded, "rows were lost or changed"
    assert len(after) == len(seeded) + case.adds_rows


def test_the_catalogue_has_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.id for c in CASES}) == len(CASES)


def test_a_50_mb_stdin_is_refused_at_once_in_little_memory(tier_home, tmp_path):
    """Measured on a real process: 50 MB used to be accepted and cost ~70 s and ~6 GB of RSS to
    count offline; now it is refused after reading 8 MB + 1 byte. (Peak RSS through /usr/bin/time:
    a child forked from pytest would count pytest's own pages until it execs.)"""
    big = tmp_path / "big.txt"
    big.write_bytes(b"def f(x):\n    return x\n" * (50 * 1024 * 1024 // 24))
    timer = ["/usr/bin/time", "-f", "maxrss_kb=%M"] if Path("/usr/bin/time").exists() else []
    with big.open("rb") as stdin:
        started = time.monotonic()
        proc = subprocess.run([*timer, sys.executable, "-m", "tiercli", "ask", "-t", "search"], stdin=stdin,
                              capture_output=True, text=True, timeout=60)
        elapsed = time.monotonic() - started
    lines = proc.stderr.strip().splitlines()
    rss_mb = int(lines.pop().split("=")[1]) / 1024 if timer else None
    lines = [line for line in lines if not line.startswith("Command exited")]
    assert proc.returncode == 4, proc.stderr
    assert lines == ["tier: error: stdin is larger than 8 MB (send a smaller excerpt)"]
    print(f"50 MB stdin: exit 4 in {elapsed:.2f} s, max RSS {rss_mb} MB")
    assert elapsed < 5 and (rss_mb is None or rss_mb < 200)
    assert read_rows(tier_home / "ledger.db") == []


def test_model_output_with_escapes_is_stored_verbatim_and_shown_inert_on_a_terminal(fake_provider, tmp_path, tier_home, monkeypatch):
    """The fake provider answers with a screen clear, a title change, a C1 CSI and Rich markup."""
    nasty = "\x1b[2J\x1b]0;owned\x07 [bold red]x[/] \x9b31m"
    fake_provider.set_default("gpt-4o-mini", Reply(text=nasty))
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-hostile-000000000000")
    cfg = two_tier_config(tmp_path / "c.yaml", "openai", fake_provider.openai_base)

    piped = runner.invoke(app, ["ask", "-c", str(cfg), "-t", "search", "hi"])  # stdout is a pipe: verbatim
    assert piped.exit_code == 0 and piped.stdout == nasty + "\n"

    master, slave = pty.openpty()  # stdout is a terminal: control characters are shown, not run
    tty = os.fdopen(slave, "w", encoding="utf-8", closefd=True)
    monkeypatch.setattr(sys, "stdout", tty)
    monkeypatch.setattr(sys, "stdin", open(os.devnull))  # noqa: SIM115
    try:
        app(["ask", "-c", str(cfg), "-t", "search", "-q", "hi"], standalone_mode=False)
    finally:
        tty.flush()
    shown = os.read(master, 65536).decode("utf-8")
    tty.close()
    os.close(master)
    assert "\x1b" not in shown and "\x9b" not in shown and "\x07" not in shown
    assert "\\x1b[2J\\x1b]0;owned\\x07 [bold red]x[/] \\x9b31m" in shown

    rows = read_rows(tier_home / "ledger.db")
    assert [r["response_text"] for r in rows] == [nasty, nasty]  # the ledger keeps the bytes as they came
    log = runner.invoke(app, ["log", "--json"])
    assert log.exit_code == 0 and "\x1b" not in log.stdout  # JSON escapes them
