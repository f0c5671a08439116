"""SIGKILL `tier ask` (real processes) before the provider call, mid-stream, after the response and
before the settling commit, and at random moments: the ledger still opens and passes SQLite's
integrity check, no row is duplicated, no acknowledged call (exit 0) is lost, and a killed call is
left `pending` (the crash marker: see docs/RELIABILITY.md).

The exact points use the TIER_TEST_PAUSE_AT hook in ask.py (pending | response): the process
announces the point on stderr and sleeps there until it is killed. benchmarks/crash.py does 100 kills.
"""

from __future__ import annotations

import json
import os
import random
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

from fakeprovider import Reply
from relhelp import kill_tier_ask, ledger_health, read_rows, run_tier_asks, two_tier_config

pytestmark = pytest.mark.slow


def ack_jobs(tag: str, n: int) -> list[list[str]]:
    return [["ask", "--json", "-s", f"{tag}-{k}", "-t", "search", f"acknowledged call {tag} {k}"] for k in range(n)]


def test_sigkill_at_each_point_loses_nothing_acknowledged(fake_provider, tmp_path, tier_home):
    env = dict(os.environ, OPENAI_API_KEY="sk-test-crash-000000000000")
    rng = random.Random(7)
    before, _ = run_tier_asks(ack_jobs("before", 2), env, parallel=2)

    kills = [("pending", dict(point="pending")) for _ in range(3)]
    kills += [("response", dict(point="response")) for _ in range(3)]
    kills += [("random", dict(after_s=rng.uniform(0.05, 0.8))) for _ in range(3)]
    words = " ".join(f"w{i}" for i in range(300))
    fake_provider.set_default("gpt-4o-mini", Reply(text=words, chunk_delay_s=0.05))
    online = two_tier_config(tmp_path / "online.yaml", "openai", fake_provider.openai_base, timeout_s=30)
    kills += [("midstream", dict(after_chunks=rng.randint(3, 40), extra=["-c", str(online)]))]  # litellm: 3 s to start

    def one(item):
        n, (kind, how) = item
        how = dict(how)
        extra = how.pop("extra", [])
        return kind, f"kill-{kind}-{n}", kill_tier_ask([*extra, "-s", f"kill-{kind}-{n}", "-t", "search",
                                                        f"killed call {n}"], env, **how)

    with ThreadPoolExecutor(4) as pool:
        during = pool.submit(run_tier_asks, ack_jobs("during", 3), env, 1)  # writers alongside the kills
        results = list(pool.map(one, enumerate(kills)))
        during = during.result()[0]

    after, _ = run_tier_asks(ack_jobs("after", 1), env, parallel=1)  # the ledger is still writable
    acknowledged = before + during + after
    for args, code, out, err in acknowledged:
        assert code == 0, (args, err[-2000:])
    ack_ids = {json.loads(out)["call_id"] for _, _, out, _ in acknowledged}

    health = ledger_health(tier_home / "ledger.db")
    assert health["integrity"] == "ok"
    rows = read_rows(tier_home / "ledger.db")
    assert not [i for i, n in Counter(r["id"] for r in rows).items() if n > 1]
    by_id = {r["id"]: r for r in rows}
    assert ack_ids <= set(by_id), "an acknowledged call was lost"
    assert all(by_id[i]["status"] == "ok" for i in ack_ids)

    by_session = Counter(r["session"] for r in rows)
    for kind, session, res in results:
        assert res["killed"] or kind == "random", (kind, res)
        mine = [r for r in rows if r["session"] == session]
        assert by_session[session] <= 1
        if kind in ("pending", "response", "midstream"):
            assert res["killed"] and len(mine) == 1, (kind, res["stderr"][-1000:])
            # the next tier process (the `after` writers) found its owner dead and settled it
            assert mine[0]["status"] == "interrupted" and mine[0]["error_class"] == "ProcessGone"
            assert mine[0]["cost_usd"] is None and mine[0]["reserved_usd"] is None  # cost unknown, never $0
        else:  # a random moment: not started, recovered, or (killed after its commit) settled
            assert len(mine) <= 1 and all(r["status"] in ("interrupted", "ok") for r in mine)
        if kind == "midstream":
            assert res["stdout"].startswith("w0 w1 w2")  # the answer was streaming when it died
        if kind == "response":
            assert "offline placeholder" in res["stdout"]  # the answer was shown, never acknowledged

    logged = run_tier_asks([["log", "--json", "-n", "1000"]], env, parallel=1)[0][0]
    assert logged[1] == 0 and len(json.loads(logged[2])) == len(rows)
