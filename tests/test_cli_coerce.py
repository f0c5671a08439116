"""cli_coerce: tier's quick coercion of str, Path, bool, int and float values gives what typer's pydantic
adapter gives (values and error messages), for every parameter of every command; and the read
commands no longer load typer's adapter module at all."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import typer.main
from typer import _click
from typer._coercion import build_runtime_param

from tiercli.cli import app
from tiercli.cli_coerce import PlainPath, PlainPathList, PlainStr, Ready, quick_runtime_param
from tiercli.ledger import Ledger


def _all_params():
    found = []

    def walk(cmd: _click.Command, path: str) -> None:
        ctx = _click.Context(cmd, info_name=path or "tier")
        for param in cmd.get_params(ctx):
            found.append((f"{path} {param.name}".strip(), cmd, param))
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, f"{path} {name}".strip())

    walk(typer.main.get_command(app), "")
    return found


PARAMS = _all_params()


def _outcome(runtime, value, param, ctx):
    try:
        got = runtime.coerce(value, param=param, ctx=ctx)
    except Exception as exc:  # noqa: BLE001 - the error itself is what is compared
        return ("error", type(exc).__name__, getattr(exc, "message", str(exc)))
    return ("value", type(got).__name__, repr(got))  # repr: nan == nan


def _samples(tmp_path: Path, runtime) -> list:
    a_file = tmp_path / "f.txt"
    a_file.write_text("x")
    if isinstance(runtime, PlainStr):
        return ["x", "", "é ñ", "\udcff", b"bytes", b"\xff\xfe", 7, Path("p")]
    if isinstance(runtime, PlainPath):
        return [str(a_file), str(tmp_path), str(tmp_path / "missing"), "", "-", "~/x", a_file, "a\x00b"]
    if isinstance(runtime, PlainPathList):
        return [(), (str(a_file),), (str(a_file), str(tmp_path), "~/x"), [a_file, "-"], ("ok", "a\x00b"), str(a_file),
                ("\udcff",)]
    assert isinstance(runtime, Ready)
    return [True, False, 0, 1, 5, -1, 600, 2.5, 1e9, "7", "yes", "nope", "", "-3", "0", "30", "600", "100000",
            "100001", "65536", "0.5", "-0.25", "1.0", "3.0", "007", "1_000", " 5 ", "+5", "1e3", "nan", "inf",
            "0.300000000000000004", "99999999999999999999", "1.", ".5", "-"]


def test_most_parameters_take_the_quick_path():
    quick = [name for name, _, param in PARAMS if quick_runtime_param(param) is not None]
    assert len(quick) > 0.8 * len(PARAMS), sorted(set(n for n, _, _ in PARAMS) - set(quick))
    assert any(n == "report db" for n in quick) and any(n == "report retry_window" for n in quick)


@pytest.mark.parametrize("name, cmd, param", [p for p in PARAMS if quick_runtime_param(p[2]) is not None],
                         ids=lambda v: v if isinstance(v, str) else "")
def test_quick_coercion_matches_typers_adapter(tmp_path, name, cmd, param):
    ctx = _click.Context(cmd, info_name="tier")
    quick = quick_runtime_param(param)
    for value in _samples(tmp_path, quick):
        adapter = build_runtime_param(param.type_descriptor)
        param._runtime_param = None  # Ready hands unusual values to a fresh adapter of its own
        expected = _outcome(adapter, value, param, ctx)
        got = _outcome(quick_runtime_param(param), value, param, ctx)
        assert got == expected, (name, value)


def test_report_and_log_do_not_load_typers_pydantic_adapters(tmp_path):
    db = tmp_path / "l.db"
    Ledger(db).close()
    raw = sqlite3.connect(db)
    raw.execute("INSERT INTO calls (id, started_at, status, cost_usd) VALUES ('a', 1760000000.0, 'ok', 0.5)")
    raw.commit()
    raw.close()
    script = (
        "import sys\nfrom tiercli.cli import main\ndb = sys.argv[1]\n"
        "for argv in (['report', '--all', '--json'], ['report', '--all', '--retry-window', '30'], ['log', '-n', '3']):\n"
        "    sys.argv = ['tier', *argv, '--db', db]\n"
        "    try:\n        main()\n    except SystemExit as exc:\n        assert not exc.code, exc.code\n"
        "assert 'typer._adapters' not in sys.modules\n"
        "sys.argv = ['tier', 'report', '--all', '--retry-window', '1e3', '--db', db]\n"
        "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
        "assert 'typer._adapters' in sys.modules  # a number in another spelling goes to typer's adapter\n")
    proc = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "tier report" in proc.stdout and "1 call" in proc.stdout


def test_log_loads_no_pydantic(tmp_path):
    """`tier log` reads no config: with its options coerced here, nothing imports pydantic."""
    db = tmp_path / "l.db"
    Ledger(db).close()
    script = ("import sys\nfrom tiercli.cli import main\n"
              "sys.argv = ['tier', 'log', '-n', '5', '--since', '7d', '--db', sys.argv[1]]\n"
              "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
              "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core'))\n"
              "assert not loaded, loaded\n")
    proc = subprocess.run([sys.executable, "-c", script, str(db)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "no calls" in proc.stdout
