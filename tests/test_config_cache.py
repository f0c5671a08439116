"""config_cache: the validated-config cache behind `tier import` and `tier report`. It never serves a
stale config (edits, same-size same-mtime edits, another code version), never holds a secret, gives
a bad config's own one line and exit code, and a report or import reads the same figures from it as
from the validated Config."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from helpers import tier
from test_report import CONFIG_YAML, FEEDBACK, LEDGER_ROWS, NOW, _ledger
from tiercli import config, config_cache, paths
from tiercli.report import build_report

PRICED = """
model_list:
  - model_name: tier1
    litellm_params: {model: claude-haiku-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: tier2
    litellm_params: {model: my-own-model, api_key: sk-literal-secret-1234, api_base: "https://u:pw@example.invalid/v1",
                     input_cost_per_token: 0.000002, output_cost_per_token: 0.00001}
  - model_name: tier3
    litellm_params: {model: claude-opus-4-5}
prices:
  claude-haiku-4-5: {input: 0.5, output: 4}
routing: {default_tier: tier1}
"""


def _entries() -> list[Path]:
    return sorted(paths.cache_dir().glob("config-*.json"))


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _same_stat_edit(path: Path, old: str, new: str) -> None:
    """Replace `old` by `new` (same length) keeping the size and mtime_ns."""
    assert len(old) == len(new)
    st = path.stat()
    text = path.read_text()
    assert text.count(old) == 1
    path.write_text(text.replace(old, new))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns


def test_the_summary_is_the_configs_facts_and_the_second_load_is_a_hit(tmp_path, monkeypatch):
    path = _write(tmp_path / "c.yaml", PRICED)
    full = config.load(path)
    first = config_cache.load(path)
    assert len(_entries()) == 1
    calls = []
    monkeypatch.setattr(config, "load_parsed", lambda *a: calls.append(a))  # a hit validates nothing
    second = config_cache.load(path)
    assert calls == []
    for got in (first, second):
        assert (got.source, got.hash) == (full.source, full.hash)
        assert got.config.routing.tiers == full.config.routing.tiers == ["tier1", "tier2", "tier3"]
        assert got.config.top_tier == full.config.top_tier
        assert got.config.primary_model("tier2") == full.config.primary_model("tier2") == "my-own-model"
        assert got.config.prices == {k: p.model_dump() for k, p in full.config.prices.items()}
        assert got.config.ledger.url is None


def test_embedded_default_is_cached_too():
    full = config.load(None)
    assert config_cache.load(None) == config_cache.load(None)
    assert config_cache.load(None).hash == full.hash and len(_entries()) == 1


def test_no_secret_and_no_resolved_reference_is_written(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-from-the-environment")
    path = _write(tmp_path / "c.yaml", PRICED)
    config_cache.load(path)
    [entry] = _entries()
    body = entry.read_text()
    for secret in ("sk-literal-secret-1234", "sk-ant-from-the-environment", "os.environ", "pw@", "api_key", "api_base"):
        assert secret not in body
    assert entry.stat().st_mode & 0o077 == 0
    params = json.loads(body)["model_list"][1]["litellm_params"]
    assert params == {"model": "my-own-model", "input_cost_per_token": 0.000002, "output_cost_per_token": 0.00001}


def test_a_ledger_url_with_a_password_and_a_static_prefix_file_are_not_cached(tmp_path):
    with_pw = _write(tmp_path / "pw.yaml", CONFIG_YAML + "ledger: {url: 'postgresql://me:hunter2@db.example/tier'}\n")
    assert config_cache.load(with_pw).config.ledger.url == "postgresql://me:hunter2@db.example/tier"
    in_query = _write(tmp_path / "q.yaml", CONFIG_YAML + "ledger: {url: 'postgresql://me@db.example/tier?password=hunter2'}\n")
    assert "hunter2" in config_cache.load(in_query).config.ledger.url
    prefix = _write(tmp_path / "prefix.txt", "You are terse.")
    from_file = _write(tmp_path / "sp.yaml", CONFIG_YAML + f"caching: {{static_prefix: '@{prefix}'}}\n")
    assert config_cache.load(from_file).hash == config.load(from_file).hash
    assert _entries() == []
    no_pw = _write(tmp_path / "nopw.yaml", CONFIG_YAML + "ledger: {url: 'postgresql://me@db.example/tier'}\n")
    assert config_cache.load(no_pw).config.ledger.url == "postgresql://me@db.example/tier"
    assert len(_entries()) == 1


@pytest.mark.parametrize("same_stat", [False, True])
def test_an_edit_is_seen(tmp_path, same_stat):
    path = _write(tmp_path / "c.yaml", PRICED)
    assert config_cache.load(path).config.prices["claude-haiku-4-5"]["input"] == 0.5
    if same_stat:
        _same_stat_edit(path, "input: 0.5,", "input: 0.7,")
    else:
        _write(path, PRICED.replace("input: 0.5,", "input: 0.75,"))
    got = config_cache.load(path)
    assert got.config.prices["claude-haiku-4-5"]["input"] == (0.7 if same_stat else 0.75)
    assert got.hash == config.load(path).hash
    assert config_cache.load(path) == got  # and cached again


def test_another_code_version_is_a_miss(tmp_path, monkeypatch):
    path = _write(tmp_path / "c.yaml", PRICED)
    config_cache.load(path)
    monkeypatch.setattr(config_cache, "_code_digest", "another tier")
    calls = []
    real = config.load_parsed
    monkeypatch.setattr(config, "load_parsed", lambda *a: calls.append(a) or real(*a))
    config_cache.load(path)
    assert len(calls) == 1


@pytest.mark.parametrize("damage", ["", "{", "[]", '{"key": 1}', "null", "garbage\x00"])
def test_a_damaged_entry_is_validated_again(tmp_path, damage):
    path = _write(tmp_path / "c.yaml", PRICED)
    good = config_cache.load(path)
    [entry] = _entries()
    entry.write_text(damage)
    assert config_cache.load(path) == good


def test_a_damaged_entry_with_the_right_key_is_validated_again(tmp_path):
    path = _write(tmp_path / "c.yaml", PRICED)
    good = config_cache.load(path)
    [entry] = _entries()
    data = json.loads(entry.read_text())
    data["model_list"] = "not a list"
    entry.write_text(json.dumps(data))
    assert config_cache.load(path) == good


def test_cache_off(tmp_path, monkeypatch):
    monkeypatch.setenv("TIER_CONFIG_CACHE", "0")
    path = _write(tmp_path / "c.yaml", PRICED)
    assert config_cache.load(path).hash == config.load(path).hash
    assert _entries() == []


@pytest.mark.parametrize("broken", [
    "model_list:\n  - model_name: tier1\n   litellm_params: {model: x}\n",  # YAML error
    PRICED.replace("default_tier: tier1", "default_tier: tier9"),  # validation error
    PRICED.replace("input: 0.5,", "inptu: 0.5,"),  # unknown key
])
@pytest.mark.parametrize("command", [("import", "claude-code"), ("report", "--all")])
def test_a_config_broken_after_a_good_run_fails_as_before(tmp_path, monkeypatch, broken, command):
    """Cached while good, then broken: the same one line and exit code as with no cache at all."""
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "s.jsonl").write_text("")
    path = _write(tmp_path / "c.yaml", PRICED)
    args = [*command, *([logs] if command[0] == "import" else []), "--config", path, "--db", tmp_path / "l.db"]
    assert tier(*args).exit_code == 0
    assert len(_entries()) == 1
    _write(path, broken)
    got = tier(*args)
    monkeypatch.setenv("TIER_CONFIG_CACHE", "0")
    expected = tier(*args)
    assert got.exit_code == expected.exit_code != 0
    assert got.stderr == expected.stderr and got.stderr.startswith("tier: error: ") and got.stderr.count("\n") == 1


def test_a_missing_config_fails_as_before(tmp_path):
    got = tier("report", "--all", "--config", tmp_path / "nope.yaml", "--db", tmp_path / "l.db")
    assert got.exit_code != 0 and "config file not found" in got.stderr


def test_report_from_the_summary_is_the_report_from_the_config(tmp_path):
    path = _write(tmp_path / "c.yaml", CONFIG_YAML + "prices:\n  claude-sonnet-4-5: {input: 2.5, output: 12}\n")
    full = config.validate(yaml.safe_load(path.read_text()), "test")
    config_cache.load(path)
    summary = config_cache.load(path).config  # from the cache
    with _ledger(tmp_path / "ledger.db", LEDGER_ROWS, FEEDBACK) as led:
        a = build_report(led, full, since=None, until=None, session=None, now=NOW)
        b = build_report(led, summary, since=None, until=None, session=None, now=NOW)
    assert json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def test_a_cached_import_or_report_loads_no_pydantic_nor_yaml(tmp_path):
    """The point of the cache: with a warm entry, `tier import` and `tier report` import neither."""
    logs = tmp_path / "logs"
    logs.mkdir()
    path = _write(tmp_path / "c.yaml", PRICED)
    db = tmp_path / "l.db"
    script = ("import sys\nfrom tiercli.cli import main\n"
              "sys.argv = ['tier', *sys.argv[1:]]\n"
              "try:\n    main()\nexcept SystemExit as exc:\n    assert not exc.code, exc.code\n"
              "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'pydantic_core', 'yaml'))\n"
              "print('LOADED', loaded)\n")
    env = dict(os.environ)
    for argv in (["import", "claude-code", str(logs), "--config", str(path), "--db", str(db)],
                 ["report", "--all", "--json", "--config", str(path), "--db", str(db)]):
        outs = [subprocess.run([sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env,
                               timeout=120) for _ in range(2)]
        assert all(p.returncode == 0 for p in outs), [p.stderr for p in outs]
        if argv[0] == "import":
            assert "LOADED []" not in outs[0].stdout  # the first run validated (and cached)
        assert "LOADED []" in outs[1].stdout, outs[1].stdout


def test_an_unwritable_cache_dir_only_costs_the_validation(tmp_path):
    paths.cache_dir().parent.mkdir(parents=True, exist_ok=True)
    paths.cache_dir().write_text("a file where the cache dir would be")
    path = _write(tmp_path / "c.yaml", PRICED)
    assert config_cache.load(path).hash == config.load(path).hash
    assert config_cache.load(path).config.routing.tiers == ["tier1", "tier2", "tier3"]
    assert not list(tmp_path.rglob("config-*.json*"))


def test_the_code_hash_covers_every_config_module(tmp_path, monkeypatch):
    import shutil

    for pattern in config_cache._CODE_GLOBS:
        for path in config_cache._HERE.glob(pattern):
            shutil.copy(path, tmp_path / path.name)

    def digest() -> str:
        monkeypatch.setattr(config_cache, "_HERE", tmp_path)
        monkeypatch.setattr(config_cache, "_code_digest", None)
        return config_cache._code_hash()

    first = digest()
    assert digest() == first
    (tmp_path / "config_serve.py").write_text("# a new section module\n")
    second = digest()
    assert second != first
    with (tmp_path / "taxonomy.py").open("a") as fh:
        fh.write("\n# changed\n")
    assert digest() != second
