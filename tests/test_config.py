"""Config loading, validation and `config.problems` (what `tier config check` prints)."""

from pathlib import Path

import pytest

from tiercli import config
from tiercli.errors import ConfigError

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = sorted((ROOT / "sample_configs").glob("*.yaml"))
ALL_KEYS = {v: "sk-test-not-a-real-key" for v in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "GEMINI_API_KEY", "PORTKEY_API_KEY")}

GOOD = """
model_list:
  - model_name: tier1
    litellm_params: {model: claude-haiku-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: tier2
    litellm_params: {model: claude-sonnet-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
  - model_name: tier3
    litellm_params: {model: claude-opus-4-5, api_key: os.environ/ANTHROPIC_API_KEY}
router_settings:
  fallbacks: [{tier1: [tier2]}, {tier2: [tier3]}]
"""


def write(tmp_path, text, name="c.yaml"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_embedded_default_is_offline_and_clean():
    loaded = config.load(None)
    assert loaded.source == "embedded:offline.yaml"
    assert all(d.is_offline for d in loaded.config.model_list)
    assert config.problems(None)[1:] == ([], [])


def test_sample_offline_is_the_embedded_default():
    assert (ROOT / "sample_configs" / "offline.yaml").read_text() == config.embedded_default_text()


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_config_passes_check_with_its_keys(path, monkeypatch):
    for var, value in ALL_KEYS.items():
        monkeypatch.setenv(var, value)
    source, errors, warnings = config.problems(path)
    assert errors == []
    assert warnings == []


def test_check_names_unset_key_variables(tmp_path):
    _, errors, _ = config.problems(write(tmp_path, GOOD))
    assert errors == ["environment variable ANTHROPIC_API_KEY is not set (needed by tier1, tier2, tier3)"]


def test_lookup_order(tmp_path, monkeypatch):
    user = tmp_path / "tier-home" / "config.yaml"
    user.parent.mkdir(parents=True)
    user.write_text(GOOD)
    assert config.locate(None) == (user, "user config")
    env = write(tmp_path, GOOD, "env.yaml")
    monkeypatch.setenv("TIER_CONFIG", str(env))
    assert config.locate(None) == (env, "TIER_CONFIG")
    assert config.locate(tmp_path / "x.yaml") == (tmp_path / "x.yaml", "--config")


def test_fallback_chain_and_tiers():
    cfg = config.validate(__import__("yaml").safe_load(GOOD), "t")
    assert cfg.fallback_chain("tier1") == ["tier2", "tier3"]
    assert cfg.top_tier == "tier3" and cfg.cheapest_tier == "tier1"


@pytest.mark.parametrize(
    "text, message",
    [
        (GOOD + "  nonsense_key: 1\n", "router_settings: unknown key(s) nonsense_key"),
        (GOOD.replace("{tier2: [tier3]}", "{tier2: [tier9]}"), "router_settings.fallbacks names unknown group 'tier9'"),
        (GOOD + "routing: {default_tier: tier7}\n", "routing.default_tier 'tier7' is not in routing.tiers"),
        (GOOD + "routing: {classifier: magic}\n", "routing.classifier"),
        (GOOD + "guardrails: {max_iterations: -3}\n", "guardrails.max_iterations"),
        (GOOD + "prices: {x: {input: -1, output: 1}}\n", "prices.x.input"),
        ("model_list: []\n", "model_list"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        (GOOD + "model_list: []\n", "duplicate key 'model_list'"),
        ("model_list:\n  - model_name: tier1\n    litellm_params: {api_key: x}\n", "litellm_params.model must name a model"),
    ],
)
def test_bad_configs_give_one_clear_message(tmp_path, text, message):
    with pytest.raises(ConfigError) as info:
        config.load(write(tmp_path, text))
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = write(tmp_path, "model_list:\n  - model_name: tier1\n    litellm_params: {model: [unclosed\n")
    with pytest.raises(ConfigError) as info:
        config.load(path)
    assert "line 4" in str(info.value) or "line 3" in str(info.value)
    assert str(path) in str(info.value)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        config.load(tmp_path / "nope.yaml")


def test_check_lists_every_problem(tmp_path):
    text = GOOD.replace("{tier2: [tier3]}", "{tier2: [tier8, tier9]}") + "  bogus: 1\n"
    _, errors, _ = config.problems(write(tmp_path, text))
    joined = "\n".join(errors)
    assert "tier8" in joined and "tier9" in joined and "bogus" in joined


def test_check_flags_unpriced_models(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-x")
    _, errors, _ = config.problems(write(tmp_path, GOOD.replace("claude-opus-4-5", "claude-opus-4-1")))
    assert any("claude-opus-4-1" in e and "no known price" in e for e in errors)
    priced = GOOD.replace("claude-opus-4-5", "claude-opus-4-1") + "prices: {claude-opus-4-1: {input: 15, output: 75}}\n"
    assert config.problems(write(tmp_path, priced, "p.yaml"))[1] == []


def test_alias_bomb_is_refused(tmp_path):
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(f"b{i}: &b{i} [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" for i in range(20))
    with pytest.raises(ConfigError, match="aliases"):
        config.load(write(tmp_path, bomb))


def test_config_hash_is_stable_and_sensitive(tmp_path):
    a = config.load(write(tmp_path, GOOD, "a.yaml")).hash
    b = config.load(write(tmp_path, GOOD + "\n# a comment\n", "b.yaml")).hash
    c = config.load(write(tmp_path, GOOD + "routing: {default_tier: tier1}\n", "c.yaml")).hash
    assert a == b != c


def test_an_invalid_environment_variable_name_is_a_config_error(tmp_path):
    """`os.environ/OPENAI-API-KEY` is not a variable name; it must not silently become another key."""
    import pytest

    from tiercli import config
    from tiercli.errors import ConfigError

    path = tmp_path / "c.yaml"
    path.write_text("model_list:\n  - model_name: tier1\n    litellm_params: {model: openai/gpt-4o-mini, "
                    "api_key: os.environ/OPENAI-API-KEY}\nrouting: {tiers: [tier1], default_tier: tier1, "
                    "task_types: {}, labels: {}}\nguardrails: {compaction: {tier: tier1}}\n")
    with pytest.raises(ConfigError, match="'OPENAI-API-KEY' is not an environment variable name"):
        config.load(path)
