"""The README's shell examples name only files that exist in the repo (or that they create), the
shipped sample logs import like the originals, and the demo prints no escape codes when piped."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiercli.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
FILE_SUFFIXES = {".yaml", ".yml", ".json", ".jsonl", ".csv", ".md", ".py", ".sh", ".log", ".db", ".txt", ".toml"}
TOP_LEVEL = {p.name for p in ROOT.iterdir()} - {".git"}
# made by the commands themselves: the install, the demo's home
GENERATED = (".venv/", ".tier-demo/")


def shell_lines(markdown: str) -> list[str]:
    """Command lines of the ```sh blocks (continuations joined) and of `$ ` lines in plain blocks."""
    lines = []
    for lang, body in re.findall(r"```(\w*)\n(.*?)```", markdown, re.S):
        body = body.replace("\\\n", " ")
        for line in body.splitlines():
            if lang == "sh":
                lines.append(line)
            elif lang == "" and line.startswith("$ "):
                lines.append(line[2:])
    return [line for line in lines if line.strip()]


def named_files(line: str) -> list[str]:
    """Paths a command line reads: tokens with a file suffix or under a top-level folder of the repo.
    Redirect targets (`> out.csv`) are written, not read, and left out."""
    tokens = shlex.split(line, comments=True)
    out = []
    skip_next = False
    for token in tokens:
        if skip_next:
            skip_next = False
            continue
        if token in (">", ">>", "2>", "&>"):
            skip_next = True
            continue
        if "=" in token and not token.startswith("-"):
            token = token.split("=", 1)[1]  # VAR=value
        elif token.startswith("--") and "=" in token:
            token = token.split("=", 1)[1]
        token = token.replace("$PWD/", "")
        if token.startswith(("~", "$", "http://", "https://", "-", "@")):
            continue
        first = token.split("/", 1)[0]
        if Path(token).suffix in FILE_SUFFIXES or ("/" in token and first in TOP_LEVEL):
            out.append(token)
    return out


def test_the_parser_finds_what_it_should():
    assert named_files("tier replay -c sample_configs/a.yaml --claude-code examples/claude-code  # x.csv") == [
        "sample_configs/a.yaml", "examples/claude-code"]
    assert named_files("export TIER_CONFIG=$PWD/sample_configs/b.yaml") == ["sample_configs/b.yaml"]
    assert named_files("tier report --csv > report.csv") == []
    assert named_files("aider --model openai/auto") == []
    assert named_files("tier replay --map mistralai/Mixtral-8x7B-Instruct-v0.1=tier1 --outcomes t.csv") == ["t.csv"]


def test_every_file_a_readme_example_names_is_in_the_repo():
    lines = shell_lines(README.read_text(encoding="utf-8"))
    assert len(lines) > 10  # the examples were found
    checked, missing = [], []
    for line in lines:
        for name in named_files(line):
            if name.startswith(GENERATED):
                continue
            checked.append(name)
            if not (ROOT / name).exists():
                missing.append(f"{name}  (in: {line.strip()})")
    assert not missing, "README examples name files that are not in the repo:\n" + "\n".join(missing)
    assert "examples/claude-code" in checked and "examples/outcomes/gsm8k_100.csv" in checked
    assert "../" not in README.read_text(encoding="utf-8"), "the README points outside the repo"


def test_the_example_sessions_import_as_the_readme_says(tier_home):
    result = CliRunner().invoke(app, ["import", "claude-code", str(ROOT / "examples" / "claude-code"), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["files"] == 3 and data["malformed"] == 0 and data["unpriced_calls"] == 0
    text = README.read_text(encoding="utf-8")
    # the README's walk-through figures are this sample's
    assert f"({data['calls_added']} calls, all on claude-sonnet-4-20250514)" in text
    assert f"before ${data['cost_usd']:.2f} as it happened" in text


def test_the_trimmed_sample_counts_like_the_original_logs(tier_home, tmp_path):
    originals = next((p for p in (ROOT.parent / "shared" / "data" / "claude-code", Path("/work/shared/data/claude-code"))
                      if p.is_dir()), None)
    if originals is None:
        pytest.skip("the original sessions (shared/data/claude-code) are not here")
    from tiercli.importers.claude_code import parse_claude_code
    from tiercli.pricing import PriceBook

    def parsed(path):
        rows, stats = parse_claude_code([str(path)], PriceBook({}))
        return sorted(rows, key=lambda r: r["id"]), stats

    sample_rows, sample_stats = parsed(ROOT / "examples" / "claude-code")
    original_rows, original_stats = parsed(originals)
    assert sample_stats == original_stats
    assert sample_rows == original_rows  # every column: ids, tokens, costs, requests, tools, meta


def test_the_sample_logs_hold_no_home_paths_or_user_names():
    for path in (ROOT / "examples").rglob("*.jsonl"):
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"/(home|Users)/[^/\"\s]+", text), path
        assert not re.search(r"[\w.+-]+@[\w-]+\.[a-z]{2,}", text), path  # no e-mail addresses


@pytest.mark.slow
def test_the_demo_prints_no_escape_codes_when_piped(tmp_path):
    env = dict(os.environ, TIER_HOME=str(tmp_path / "demo-home"), TIER_BIN=str(Path(sys.executable).parent / "tier"))
    env.pop("NO_COLOR", None)
    env.pop("FORCE_COLOR", None)
    result = subprocess.run(["bash", str(ROOT / "scripts" / "demo.sh")], capture_output=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr.decode()[-2000:]
    assert b"$ tier ask" in result.stdout and b"tier log" in result.stdout  # it ran
    assert b"\x1b" not in result.stdout and b"\x1b" not in result.stderr
