"""Shared helpers for the reliability, hostile-input and secrets tests (not a test module).

Config builders pointing at the fake provider, a ledger reader that never writes, and the
one-line-error assertion every failure must satisfy.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from pathlib import Path

OPENAI_MODELS = ("gpt-4o-mini", "gpt-5-mini", "gpt-5")
ANTHROPIC_MODELS = ("claude-haiku-4-5", "claude-sonnet-4-5", "claude-opus-4-5")
KEY_VAR = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY"}


def models(proto: str) -> tuple[str, str, str]:
    return OPENAI_MODELS if proto == "openai" else ANTHROPIC_MODELS


def base_for(fake, proto: str) -> str:
    return fake.openai_base if proto == "openai" else fake.anthropic_base


def two_tier_config(path: Path, proto: str, base: str, *, fallbacks: bool = False, retries: int = 0,
                    timeout_s: float = 5.0, base2: str | None = None, api_key: str | None = None,
                    extra: str = "") -> Path:
    """tier1 -> (optionally) tier2, both on `proto`, every search task on tier1."""
    m1, m2, _ = models(proto)
    key = api_key or f"os.environ/{KEY_VAR[proto]}"
    fb = "fallbacks: [{tier1: [tier2]}]" if fallbacks else "fallbacks: []"
    path.write_text(f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: {proto}/{m1}, api_base: "{base}", api_key: "{key}"}}
  - model_name: tier2
    litellm_params: {{model: {proto}/{m2}, api_base: "{base2 or base}", api_key: "{key}"}}
router_settings:
  {fb}
  num_retries: {retries}
routing: {{tiers: [tier1, tier2], default_tier: tier1, classifier: static, task_types: {{search: tier1, bug_fix: tier1}}, labels: {{}}}}
guardrails: {{timeout_s: {timeout_s}, compaction: {{tier: tier1}}}}
{extra}
""")
    return path


def read_rows(db: Path) -> list[dict]:
    """Every calls row, oldest first, read without writing anything (no WAL switch, no migration)."""
    if not Path(db).exists():
        return []
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at, id")]
    finally:
        conn.close()


def assert_one_line_error(result, code: int, *fragments: str) -> str:
    """A failure is one stderr line `tier: error: ...`, the documented exit code, no traceback."""
    assert result.exit_code == code, (result.exit_code, result.stdout[-500:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tier: error: "), result.stderr[-2000:]
    assert "Traceback" not in result.stderr and "Traceback" not in result.stdout
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


class BlackHole:
    """A 127.0.0.1 port whose accept queue is full, so a new connect() hangs: a real connect timeout
    without leaving loopback. (A closed port answers at once with a refusal instead.)"""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(0)
        self.port = self.listener.getsockname()[1]
        self.fillers = []
        for _ in range(4):
            s = socket.socket()
            s.setblocking(False)
            try:
                s.connect(("127.0.0.1", self.port))
            except BlockingIOError:
                pass
            self.fillers.append(s)
        time.sleep(0.05)

    def close(self) -> None:
        for s in self.fillers:
            s.close()
        self.listener.close()


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (connection refused)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


# -- concurrent ledger writers (a multiprocessing target: importable, no pytest) -----------------------
def ledger_writer(db: str, tag: str, n: int, barrier, results, reopen_every_call: bool = False) -> None:
    """n calls' worth of `tier ask` ledger traffic, each: a read (the session count), the pending row
    written with a budget check in one BEGIN IMMEDIATE transaction (read, then insert), and the
    settling upsert by id (every 10th sent twice: a retried write must not count the call twice).
    Puts (tag, ids written, cost written, lock errors, other errors, seconds) on `results`."""
    import traceback

    from tiercli.errors import LedgerError
    from tiercli.guards import Cap
    from tiercli.ledger import Ledger

    ids: list[str] = []
    cost = 0.0
    locked = 0
    other: list[str] = []
    ledger = Ledger(db)
    barrier.wait()
    started = time.perf_counter()
    cap = [Cap("daily", 1e12, since=0.0)]
    for i in range(n):
        call_id = f"{tag}-{i:05d}"
        try:
            if reopen_every_call:
                ledger.close()
                ledger = Ledger(db)
            ledger.session_calls(tag)
            now = time.time()
            row = {"id": call_id, "started_at": now, "session": tag, "kind": "main", "tier": "tier1",
                   "requested_model": "claude-haiku-4-5", "status": "pending", "prompt_hash": tag}
            if ledger.insert_pending(row, cap, 0.01) is not None:
                other.append(f"{call_id}: refused by the budget check")
                continue
            value = round((i % 7 + 1) * 1e-4, 10)
            settled = {**row, "status": "ok", "ended_at": time.time(), "input_tokens": 100 + i, "output_tokens": 10,
                       "cost_usd": value, "price_source": "test", "reserved_usd": None}
            ledger.upsert_call(settled)
            if i % 10 == 0:
                ledger.upsert_call(settled)  # a retried write: still one row
            ids.append(call_id)
            cost += value
        except LedgerError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                locked += 1
            else:
                other.append(f"{call_id}: {exc}")
        except Exception:  # noqa: BLE001 - reported to the parent, which fails the test
            other.append(f"{call_id}: {traceback.format_exc(limit=3)}")
    ledger.close()
    results.put((tag, ids, cost, locked, other, time.perf_counter() - started))


def run_ledger_writers(db: str, processes: int, n: int, reopen_every_call: bool = False) -> dict:
    """Start `processes` spawned writers at once (a barrier) and collect their results."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(processes + 1)
    results = ctx.Queue()
    procs = [ctx.Process(target=ledger_writer, args=(db, f"w{p:02d}", n, barrier, results, reopen_every_call))
             for p in range(processes)]
    from tiercli.ledger import Ledger

    Ledger(db).close()  # created and migrated once, as the first `tier ask` would
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    started = time.perf_counter()
    out = [results.get(timeout=600) for _ in procs]
    wall = time.perf_counter() - started
    for proc in procs:
        proc.join(timeout=60)
    return {
        "ids": [i for r in out for i in r[1]],
        "cost": sum(r[2] for r in out),
        "locked": sum(r[3] for r in out),
        "other": [e for r in out for e in r[4]],
        "wall_s": wall,
        "exitcodes": [p.exitcode for p in procs],
    }


DRIVER = Path(__file__).resolve().parent / "ask_driver.py"


def run_ask_drivers(config: str, db: str, processes: int, calls: int, env: dict, *, as_json: bool = False,
                    fork: int = 0, timeout: float = 600) -> dict:
    """`processes` ask_driver.py processes (each forking `fork` workers when fork > 0), started
    together once every one has imported litellm and made its warm-up call."""
    import json
    import subprocess
    import sys

    procs = [subprocess.Popen([sys.executable, str(DRIVER), "--config", config, "--db", db, "--calls", str(calls),
                               "--tag", f"d{p:02d}", *(["--json"] if as_json else []), *(["--fork", str(fork)] if fork else [])],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for p in range(processes)]
    for proc in procs:
        line = proc.stdout.readline()
        assert line.strip() == "ready", (line, proc.stderr.read()[-3000:] if proc.poll() is not None else "")
    started = time.perf_counter()
    for proc in procs:
        proc.stdin.write("go\n")
        proc.stdin.flush()
    summaries, stderrs = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        stderrs.append(err)
        assert proc.returncode == 0, err[-3000:]
        summaries.extend(json.loads(line) for line in out.strip().splitlines() if line.startswith("{"))
    return {"summaries": summaries, "wall_s": time.perf_counter() - started, "stderr": stderrs}


def run_tier_asks(jobs: list[list[str]], env: dict, parallel: int, timeout: float = 300) -> tuple[list, float]:
    """Run `tier ask ...` argument lists as real processes, `parallel` at a time:
    [(args, returncode, stdout, stderr)] in job order, and the wall time."""
    import subprocess
    import sys
    from concurrent.futures import ThreadPoolExecutor

    def one(args):
        proc = subprocess.run([sys.executable, "-m", "tiercli", *args], env=env, capture_output=True, text=True,
                              timeout=timeout)
        return args, proc.returncode, proc.stdout, proc.stderr

    started = time.perf_counter()
    with ThreadPoolExecutor(parallel) as pool:
        done = list(pool.map(one, jobs))
    return done, time.perf_counter() - started


# -- crash tests: SIGKILL a real `tier ask` at a chosen point ----------------------------------------------
def kill_tier_ask(args: list[str], env: dict, *, point: str | None = None, after_chunks: int | None = None,
                  after_s: float | None = None, timeout: float = 60) -> dict:
    """Start `tier ask ARGS` and SIGKILL it:
    - point="pending" | "response": when it announces the TIER_TEST_PAUSE_AT hook (see ask.py);
    - after_chunks=k: once k stream chunks (words) reached stdout;
    - after_s=t: t seconds after the start, wherever it is (it may have finished: then not killed).
    Returns {"killed": bool, "returncode", "stdout", "stderr"}."""
    import selectors
    import signal
    import subprocess
    import sys

    run_env = dict(env)
    if point:
        run_env["TIER_TEST_PAUSE_AT"] = point
    proc = subprocess.Popen([sys.executable, "-m", "tiercli", "ask", *args], env=run_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = b"", b""
    deadline = time.monotonic() + timeout
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ, "out")
    sel.register(proc.stderr, selectors.EVENT_READ, "err")
    start = time.monotonic()
    killed = False
    open_streams = 2
    while open_streams and time.monotonic() < deadline:
        wait = 0.2 if after_s is None else max(0.0, min(0.2, start + after_s - time.monotonic()))
        for key, _ in sel.select(timeout=wait):
            data = os.read(key.fileobj.fileno(), 65536)
            if not data:
                sel.unregister(key.fileobj)
                open_streams -= 1
                continue
            if key.data == "out":
                out += data
            else:
                err += data
        hit = (point is not None and f"tier-test: paused at {point}".encode() in err) or \
              (after_chunks is not None and len(out.split()) >= after_chunks) or \
              (after_s is not None and time.monotonic() - start >= after_s)
        if hit and proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed = True
            break
    sel.close()
    rest_out, rest_err = proc.communicate(timeout=timeout)
    return {"killed": killed and proc.returncode == -signal.SIGKILL, "returncode": proc.returncode,
            "stdout": (out + rest_out).decode("utf-8", "replace"), "stderr": (err + rest_err).decode("utf-8", "replace")}


def ledger_health(db: Path) -> dict:
    """Open the ledger as tier does (refusing damaged files), and run SQLite's integrity check."""
    import sqlite3

    from tiercli.ledger import Ledger

    with Ledger(db) as ledger:
        rows = ledger.recent_calls(1_000_000)
    conn = sqlite3.connect(db)
    try:
        check = conn.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        conn.close()
    return {"integrity": check, "rows": rows}


def report_totals(db: Path, env: dict) -> dict:
    """The report's totals for the whole ledger: `tier report --json` when the command exists, else
    tiercli.report.build_report (what that command renders) with the embedded default config."""
    import json
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "tiercli", "report", "--json", "--db", str(db)], env=env,
                          capture_output=True, text=True, timeout=120)
    if proc.returncode == 0:
        return json.loads(proc.stdout)["totals"]
    assert proc.returncode == 2, proc.stderr[-2000:]  # no `report` command in this build
    from tiercli import config
    from tiercli.ledger import Ledger
    from tiercli.report import build_report

    with Ledger(db) as ledger:
        return build_report(ledger, config.load(None).config, since=None, until=None, session=None)["totals"]


def _first_open(path: str, barrier, results) -> None:
    from tiercli.ledger import Ledger

    barrier.wait()
    try:
        with Ledger(path) as ledger:
            ledger.upsert_call({"id": os.urandom(8).hex(), "started_at": time.time(), "status": "ok"})
        results.put("ok")
    except Exception as exc:  # noqa: BLE001 - reported to the parent
        results.put(f"{type(exc).__name__}: {exc}")


def concurrent_first_opens(tmp: Path, trials: int, processes: int) -> list[str]:
    """`processes` forked processes open (create) a fresh ledger at the same instant, `trials` times.
    Returns the outcome of every open ("ok" or the error)."""
    import multiprocessing as mp

    import sqlmodel  # noqa: F401 - imported before the fork, so the children start at once

    from tiercli.ledger import models  # noqa: F401

    ctx = mp.get_context("fork")
    out = []
    for trial in range(trials):
        path = str(tmp / f"fresh-{trial}" / "ledger.db")
        barrier, results = ctx.Barrier(processes), ctx.Queue()
        procs = [ctx.Process(target=_first_open, args=(path, barrier, results)) for _ in range(processes)]
        for p in procs:
            p.start()
        out += [results.get(timeout=120) for _ in procs]
        for p in procs:
            p.join(timeout=60)
    return out
