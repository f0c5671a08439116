"""What `tier` says about itself: help (examples, placeholders, valid values, where the files are),
suggestions for mistyped options and commands, shell completion, `ask -m/--model`, config typos."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tiercli.cli import app
from tiercli.cli_help import EXAMPLES

runner = CliRunner()
TIER_SCRIPT = Path(sys.executable).parent / "tier"


@pytest.fixture
def wide(tier_home, monkeypatch):
    """Help rendered as a 100-column terminal without colour (robust to the real terminal)."""
    monkeypatch.setenv("COLUMNS", "100")
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("FORCE_COLOR", raising=False)
    return tier_home


def tier(*args, input=None):
    return runner.invoke(app, list(args), input=input, prog_name="tier")


def all_commands(group=None, path=()):
    """Every command path of the app, groups included: ('ask',), ('config', 'check'), ..."""
    import typer.main

    group = group or typer.main.get_command(app)
    for name, command in group.commands.items():
        if getattr(command, "hidden", False):
            continue  # internal (the warm worker's `_worker`): not in the help
        yield (*path, name)
        if hasattr(command, "commands"):
            yield from all_commands(command, (*path, name))


def flat(text: str) -> str:
    """The help as one line of words: panel borders dropped, wrapping undone."""
    return " ".join(text.replace("│", " ").split())


def examples_in(help_text: str) -> list[str]:
    lines = help_text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "Examples")
    out = []
    for line in lines[start + 1:]:
        if not line.strip().startswith("$ "):
            break
        out.append(line.strip())
    return out


# -- help ----------------------------------------------------------------------------------------
def test_root_help_snapshot(wide):
    result = tier("--help")
    assert result.exit_code == 0
    out = result.stdout
    for line in ("Usage: tier [OPTIONS] COMMAND [ARGS]...", "--version", "--install-completion",
                 "--show-completion", "Examples", '$ tier ask "where is the retry policy configured?"', "Files"):
        assert line in out, line
    for command in ("ask", "classify", "replay", "serve", "log", "report", "config", "import", "feedback"):
        assert re.search(rf"│ {command}\s", out), command
    # where the files are: the config that applies and the ledger (TIER_HOME from the fixture)
    assert "embedded offline default" in out
    assert str(wide / "ledger.db") in out.replace("\n ", "")


def test_root_help_names_the_config_file_in_use(wide, tmp_path, monkeypatch):
    cfg = tmp_path / "mine.yaml"
    cfg.write_text("model_list: []\n")  # help does not validate it
    monkeypatch.setenv("TIER_CONFIG", str(cfg))
    out = tier("--help").stdout.replace("\n ", "")
    assert f"{cfg} (TIER_CONFIG)" in out


def test_ask_help_snapshot(wide):
    result = tier("ask", "--help")
    assert result.exit_code == 0
    out = result.stdout
    assert "Usage: tier ask [OPTIONS] [PROMPT]" in out
    assert re.search(r"--task-type\s+-t\s+TYPE\s+Route statically by task type\. One of: file_lookup, search,", out)
    assert re.search(r"--tier\s+TIER\s+Force a tier \(recorded as an override\)\. Tiers: tier1, tier2,", out)
    assert re.search(r"--model\s+-m\s+NAME\s+A tier or a model of the config", out)
    assert re.search(r"--config\s+-c\s+FILE\s+Config file", out)
    assert re.search(r"--dry-run\s+Show the decision", out)  # a flag: no placeholder at all
    words = flat(out)
    assert "claude-haiku-4-5 (tier1)" in words and "algorithm" in words and "cross_refactor" in words
    assert examples_in(out)[0] == '$ tier ask "where is the retry policy configured?"'


def test_tiers_and_task_types_come_from_the_config_in_use(wide, tmp_path, monkeypatch):
    cfg = tmp_path / "two.yaml"
    cfg.write_text("""
model_list:
  - {model_name: cheap, litellm_params: {model: offline/claude-haiku-4-5}}
  - {model_name: smart, litellm_params: {model: offline/claude-opus-4-5}}
routing: {tiers: [cheap, smart], default_tier: cheap, task_types: {chores: cheap, hard_stuff: smart}, labels: {}}
guardrails: {compaction: {tier: cheap}}
""")
    monkeypatch.setenv("TIER_CONFIG", str(cfg))
    words = flat(tier("ask", "--help").stdout)
    assert f"Tiers: cheap, smart (from {str(cfg)[:20]}" in words  # a long path ends in an ellipsis
    assert "One of: chores, hard_stuff." in words
    assert "claude-opus-4-5 (smart)" in words


def test_a_broken_config_still_gives_help_with_the_defaults(wide, tmp_path, monkeypatch):
    cfg = tmp_path / "broken.yaml"
    cfg.write_text("model_list: [\n")
    monkeypatch.setenv("TIER_CONFIG", str(cfg))
    result = tier("ask", "--help")
    assert result.exit_code == 0
    assert "Tiers: tier1, tier2, tier3 (from the defaults (the config could not be read))" in flat(result.stdout)


@pytest.mark.parametrize("path", list(all_commands()), ids=" ".join)
def test_every_command_has_examples_and_no_python_types(wide, path):
    result = tier(*path, "--help")
    assert result.exit_code == 0, result.output
    out = result.stdout
    examples = examples_in(out)
    assert 1 <= len(examples) <= 3, f"tier {' '.join(path)}: add one to three examples to cli_help.EXAMPLES"
    assert all(e.startswith(("$ tier ", "$ git ", "$ ANTHROPIC_", "$ TIER_")) for e in examples), examples
    assert all(len(e) <= 90 for e in examples), "an example wraps at 100 columns"
    assert all(e in out for e in examples)
    for python_type in ("<bool>", "<str>", "<int>", "<float>", "<path>", "list[", "<list"):
        assert python_type not in out, (path, python_type)
    usage = next(line for line in out.splitlines() if "Usage:" in line)
    assert "{" not in usage and "}" not in usage, usage


def test_examples_table_names_only_real_commands():
    known = {" ".join(p) for p in all_commands()} | {""}
    assert set(EXAMPLES) <= known, set(EXAMPLES) - known


def test_help_imports_neither_pydantic_nor_sqlalchemy_nor_litellm(tier_home):
    code = ("import sys\nfrom tiercli.cli import app\n"
            "try:\n    app(['--help'], prog_name='tier')\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'sqlalchemy', 'sqlmodel', 'litellm'))\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Files" in result.stdout


# -- suggestions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("args, meant", [
    (["ask", "--modle", "x", "hi"], "--model"),
    (["ask", "--dry", "hi"], "--dry-run"),       # an abbreviation
    (["ask", "--qiet", "hi"], "--quiet"),
    (["ask", "--tiers", "tier1", "hi"], "--tier"),
    (["report", "--jsn"], "--json"),
    (["replay", "--sesion", "s"], "--session"),
    (["classify", "--batc", "f.jsonl"], "--batch"),
])
def test_a_mistyped_option_suggests_the_closest_option_of_that_command(wide, args, meant):
    result = tier(*args)
    assert result.exit_code == 2
    assert f"No such option: {args[1]}. Did you mean {meant}?" in result.stderr


@pytest.mark.parametrize("args", [
    ["report", "--model", "x"],      # click suggested --help for --model
    ["feedback", "--csv", "id", "good"],
    ["--verbose"],
    ["serve", "--out", "x"],
])
def test_no_suggestion_when_nothing_is_close(wide, args):
    result = tier(*args)
    assert result.exit_code == 2
    bad = next(a for a in args if a.startswith("--"))
    assert f"No such option: {bad}" in result.stderr
    assert "Did you mean" not in result.stderr and "Possible options" not in result.stderr


@pytest.mark.parametrize("typo, meant", [("lgo", "log"), ("reprot", "report"), ("asks", "ask")])
def test_a_mistyped_command_suggests_the_closest(wide, typo, meant):
    result = tier(typo)
    assert result.exit_code == 2
    assert f"No such command '{typo}'. Did you mean '{meant}'?" in result.stderr


def test_a_mistyped_subcommand_suggests_the_closest(wide):
    result = tier("config", "chek")
    assert result.exit_code == 2
    assert "Did you mean 'check'?" in result.stderr


# -- completion ----------------------------------------------------------------------------------
needs_script = pytest.mark.skipif(not TIER_SCRIPT.exists(), reason="the tier console script is not installed")


def run_script(args, env_extra=None, **kwargs):
    env = dict(os.environ, **(env_extra or {}))
    return subprocess.run([str(TIER_SCRIPT), *args], capture_output=True, text=True, timeout=60, env=env, **kwargs)


@needs_script
@pytest.mark.parametrize("shell, marker", [
    ("bash", "complete -o default -F _tier_completion tier"),
    ("zsh", "compdef _tier_completion tier"),
    ("fish", "complete --command tier"),
])
def test_show_completion_for_a_named_shell(tier_home, shell, marker):
    result = run_script(["--show-completion", shell])
    assert result.returncode == 0, result.stderr
    assert marker in result.stdout
    assert "_TIER_COMPLETE=complete_" in result.stdout


@needs_script
@pytest.mark.skipif(shutil.which("bash") is None, reason="no bash")
def test_show_completion_detects_the_running_shell(tier_home):
    # `; true` keeps bash alive as tier's parent (it would exec a lone command), so it is detected
    result = subprocess.run(["bash", "-c", f"'{TIER_SCRIPT}' --show-completion; true"], capture_output=True,
                            text=True, timeout=60)
    assert "complete -o default -F _tier_completion tier" in result.stdout, result.stderr


@needs_script
def test_install_completion_writes_the_script_for_bash(tier_home, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    result = run_script(["--install-completion", "bash"], {"HOME": str(home)})
    assert result.returncode == 0, result.stderr
    script = home / ".bash_completions" / "tier.sh"
    assert "_tier_completion" in script.read_text()
    assert f"source '{script}'" in (home / ".bashrc").read_text()


@needs_script
@pytest.mark.parametrize("words, cword, expected", [
    ("tier rep", "1", {"replay", "report"}),
    ("tier ask --ta", "2", {"--task-type"}),
    ("tier config ch", "2", {"check"}),
])
def test_completion_completes_commands_and_options(tier_home, words, cword, expected):
    result = run_script([], {"_TIER_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": cword})
    assert result.returncode == 0, result.stderr
    assert set(result.stdout.split()) == expected


# -- ask -m / --model ----------------------------------------------------------------------------
def ledger_rows(home):
    conn = sqlite3.connect(home / "ledger.db")
    conn.row_factory = sqlite3.Row
    return [dict(r) for r in conn.execute("SELECT * FROM calls ORDER BY started_at")]


@pytest.mark.parametrize("name, tier_name", [
    ("claude-haiku-4-5", "tier1"),          # a model, provider prefix left off
    ("offline/claude-opus-4-5", "tier3"),   # a model as the config writes it
    ("tier2", "tier2"),                     # a tier
])
def test_model_option_routes_to_the_models_tier_as_an_override(tier_home, name, tier_name):
    result = tier("ask", "-m", name, "--json", "-t", "architecture", "design the plugin system")
    assert result.exit_code == 0, result.output
    decision = json.loads(result.stdout)["decision"]
    assert decision["tier"] == tier_name and decision["source"] == "override"
    [row] = ledger_rows(tier_home)
    assert row["tier"] == tier_name and row["decision_source"] == "override"


def test_model_option_long_form_and_agreeing_tier(tier_home):
    result = tier("ask", "--model", "claude-sonnet-4-5", "--tier", "tier2", "--dry-run", "--json", "hi")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["decision"]["tier"] == "tier2"


def test_unknown_model_is_one_line_listing_the_valid_names(tier_home):
    result = tier("ask", "-m", "claude-haiku-4", "hi")
    assert result.exit_code == 2
    [line] = result.stderr.splitlines()
    assert line.startswith("tier: error: unknown --model 'claude-haiku-4'")
    assert "did you mean 'claude-haiku-4-5'?" in line
    assert "tier1, tier2, tier3" in line and "claude-opus-4-5" in line
    assert not (tier_home / "ledger.db").exists() or not ledger_rows(tier_home)


def test_model_and_tier_that_disagree_are_refused(tier_home):
    result = tier("ask", "-m", "claude-haiku-4-5", "--tier", "tier3", "hi")
    assert result.exit_code == 2
    assert "--tier tier3 and --model claude-haiku-4-5 (on tier1) disagree" in result.stderr


def test_a_model_deployed_by_two_tiers_is_ambiguous(tier_home, tmp_path):
    cfg = tmp_path / "dup.yaml"
    cfg.write_text("""
model_list:
  - {model_name: tier1, litellm_params: {model: offline/claude-haiku-4-5}}
  - {model_name: tier2, litellm_params: {model: offline/claude-sonnet-4-5}}
  - {model_name: tier2, litellm_params: {model: offline/claude-haiku-4-5}}
routing: {tiers: [tier1, tier2], default_tier: tier1, task_types: {}, labels: {}}
guardrails: {compaction: {tier: tier1}}
""")
    result = tier("ask", "-c", str(cfg), "-m", "claude-haiku-4-5", "hi")
    assert result.exit_code == 2
    assert "deployed by tier1, tier2" in result.stderr and "--tier" in result.stderr


# -- config typos --------------------------------------------------------------------------------
def test_unknown_config_keys_get_a_did_you_mean(tier_home, tmp_path):
    cfg = tmp_path / "typos.yaml"
    cfg.write_text("""
model_list:
  - {model_name: tier1, litellm_params: {model: offline/claude-haiku-4-5}}
routing: {tiers: [tier1], default_tier: tier1, task_type: {}}
guardrails: {budgt: {daily_usd: 1}, compaction: {tier: tier1, threshhold_tokens: 500}}
prices: {some-model: {input: 1, output: 2, cache_reed: 0.1}}
router_settings: {fallback: []}
telemetri: {}
""")
    result = tier("config", "check", "-c", str(cfg))
    assert result.exit_code == 3
    err = result.stderr
    assert "routing.task_type: unknown key (did you mean 'task_types'?)" in err
    assert "guardrails.budgt: unknown key (did you mean 'budget'?)" in err
    assert "guardrails.compaction.threshhold_tokens: unknown key (did you mean 'threshold_tokens'?)" in err
    assert "prices.some-model.cache_reed: unknown key (did you mean 'cache_read'?)" in err
    assert "telemetri: unknown key (did you mean 'telemetry'?)" in err
    assert "unknown key(s) fallback; did you mean fallbacks?" in err
    # a command that loads it says the first problem in one line
    result = tier("ask", "-c", str(cfg), "hi")
    assert result.exit_code == 3 and len(result.stderr.splitlines()) == 1


def test_an_unknown_key_with_nothing_close_lists_the_valid_ones(tier_home, tmp_path):
    cfg = tmp_path / "far.yaml"
    cfg.write_text("""
model_list:
  - {model_name: tier1, litellm_params: {model: offline/claude-haiku-4-5}}
routing: {tiers: [tier1], default_tier: tier1}
guardrails: {compaction: {tier: tier1}}
ledger: {zzz: 1}
""")
    result = tier("config", "check", "-c", str(cfg))
    assert "ledger.zzz: unknown key (valid: store_prompts, url)" in result.stderr
