"""cli.main builds only the command being run (cli._only_the_command): every command's help, a
group's, errors for unknown commands and options, and the exit codes are the same as with the
whole command tree built; the tree is whole again after each run."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import contextlib, io, json, sys
from tiercli import cli

def run(argv, filtered):
    sys.argv = ["tier", *argv]
    out, err = io.StringIO(), io.StringIO()
    real = cli._only_the_command
    if not filtered:
        cli._only_the_command = lambda argv: None
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main()
            except SystemExit as exc:
                code = exc.code
    finally:
        cli._only_the_command = real
    return [code, out.getvalue(), err.getvalue()]

before = [len(cli.app.registered_commands), len(cli.app.registered_groups)]
names = [c.name or c.callback.__name__ for c in cli.app.registered_commands] + [g.name for g in cli.app.registered_groups]
cases = [[n.replace("_", "-") if not n.startswith("_") else n, "--help"] for n in names]
cases += [["config", "show", "--help"], ["import", "claude-code", "--help"], ["config"], ["import"], ["nope"],
          ["reprot"], ["report", "--bogus"], ["log", "-n", "0"], ["--help"], [], ["config", "nope"],
          ["log", "--json", "--db", sys.argv[1]], ["config", "path"]]
seen = 0
for argv in cases:
    a, b = run(argv, True), run(argv, False)
    assert a == b, (argv, a, b)
    assert [len(cli.app.registered_commands), len(cli.app.registered_groups)] == before
    seen += 1
assert "Usage: tier report" in run(["report", "--help"], True)[1]
assert "No such command" in run(["reprot"], True)[2]
print("CASES", seen)
"""


def test_only_the_command_run_is_built_and_nothing_else_changes(tmp_path):
    env = {"COLUMNS": "100", "TERM": "dumb", "NO_COLOR": "1"}
    import os

    proc = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path / "l.db")], capture_output=True, text=True,
                          timeout=300, env={**os.environ, **env})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "CASES" in proc.stdout and int(proc.stdout.split("CASES")[1]) >= 25


def test_a_run_builds_one_command():
    from tiercli import cli

    saved = cli._only_the_command(["tier", "report", "--all"])
    try:
        assert saved is not None
        assert [c.callback.__name__ for c in cli.app.registered_commands] == ["report"]
        assert cli.app.registered_groups == []
    finally:
        assert saved is not None
        cli.app.registered_commands[:], cli.app.registered_groups[:] = saved
    for argv in (["tier"], ["tier", "--help"], ["tier", "-V"], ["tier", "nope"]):
        assert cli._only_the_command(argv) is None
    saved = cli._only_the_command(["tier", "import", "claude-code"])
    assert saved is not None
    try:
        assert [g.name for g in cli.app.registered_groups] == ["import"] and cli.app.registered_commands == []
    finally:
        cli.app.registered_commands[:], cli.app.registered_groups[:] = saved
