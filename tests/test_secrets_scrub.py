"""secrets_scrub: known secrets by value (any shape), common key shapes, scrubbing before the cut, and
`tier config show` hiding every secret-bearing litellm param (SECRET_PARAMS)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from tiercli import config as cfgmod
from tiercli.cli import app
from tiercli.secrets_scrub import (
    SECRET_PARAMS,
    config_secrets,
    hide_params,
    is_secret_param,
    known_secrets,
    scrub_secrets,
    scrub_then_cut,
)

ANTHROPIC = "sk-ant-api03-Qw3rTy7uIoP9aSdFgHjKl0ZxCvBnM1234567890abcdEFGH"
AWS_SESSION = "IQoJb3JpZ2luX2VjEHwaCXVzLWVhc3QtMSJHMEUCIQDexampleSessionTokenValue0123456789"
CLIENT_ODD = "tok|7f3a~Zq.9!x"  # a forwarded client key of no known shape (short, punctuation)


def test_a_known_secret_of_any_shape_is_removed_by_value():
    text = f"upstream said: invalid key {CLIENT_ODD} (check it), again: '{CLIENT_ODD}'"
    out = scrub_secrets(text, [CLIENT_ODD])
    assert CLIENT_ODD not in out and "tok|" not in out and out.count("<redacted>") == 2
    assert CLIENT_ODD in scrub_secrets(text)  # no shape rule catches it: only the known value does


def test_longest_known_secret_first():
    short, long = "abcdef123456", "abcdef123456-and-more-ZZZ"
    out = scrub_secrets(f"k={long}", [short, long])
    assert "and-more" not in out and "abcdef" not in out


@pytest.mark.parametrize("text, secret", [
    ("error: bad key sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12", "sk-proj-Ab12Cd34Ef56Gh78Ij90Kl12"),
    (f"x-api-key: {ANTHROPIC}", ANTHROPIC),
    ("creds AKIAIOSFODNN7EXAMPLE used", "AKIAIOSFODNN7EXAMPLE"),
    ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9.payload.sig"),
    ('{"x-api-key": "Zq9-we1rd.k3y_value"}', "Zq9-we1rd.k3y_value"),
    ("api-key=Zq9we1rdk3yvalue", "Zq9we1rdk3yvalue"),
    ("the session token is Xk29fLq0aZmP4wRt7yUe1nBv", "Xk29fLq0aZmP4wRt7yUe1nBv"),
    ('"secret": "9fK2mQ7xR4tL8wZ1pN6vB3cY"', "9fK2mQ7xR4tL8wZ1pN6vB3cY"),
])
def test_common_key_shapes_without_knowing_them(text, secret):
    assert secret not in scrub_secrets(text)


@pytest.mark.parametrize("text", [
    "the key point is that tokens are counted per message",
    "max_tokens: 64000 exceeds the model's limit of 8192",
    "prompt is too long: 250000 tokens > 200000 maximum",
    "a 400 error: messages.0.content.1.tool_use_id must match a tool_use block",
])
def test_ordinary_error_text_is_left_alone(text):
    assert scrub_secrets(text) == text


@pytest.mark.parametrize("secret", [ANTHROPIC, CLIENT_ODD + "-long-enough-for-a-cut", AWS_SESSION])
def test_a_key_split_by_the_300_character_cut_does_not_escape(secret):
    for offset in range(270, 294, 3):  # the key starts 6..29 characters before the boundary
        text = "p" * offset + " " + secret + " trailing"
        left_in = secret[: 300 - offset - 1]  # what of the key is inside the first 300 characters
        assert left_in in text[:300]
        out = scrub_then_cut(text, 300, [secret])
        assert len(out) <= 300 and left_in not in out and "<redacted>" in text.replace(secret, "<redacted>")


def test_cutting_first_leaks_the_head_of_a_known_key():
    """Why the order matters: after the cut the known value no longer matches."""
    text = "p" * 285 + " " + CLIENT_ODD + "-long-enough-for-a-cut"
    key = CLIENT_ODD + "-long-enough-for-a-cut"
    assert key[:14] in scrub_secrets(text[:300], [key])
    assert key[:6] not in scrub_then_cut(text, 300, [key])


def test_the_unknown_shape_client_key_across_the_cut():
    key = "ck_" + "Q7" * 3 + "|weird~key.shape!" + "9" * 8
    text = "u" * 290 + key
    assert key[:10] in text[:300]  # the cut alone would leave its first 10 characters
    assert key[:6] not in scrub_then_cut(text, 300, [key])


def test_secret_params_cover_litellm_credentials():
    for name in ("api_key", "aws_secret_access_key", "aws_session_token", "aws_access_key_id", "vertex_credentials",
                 "azure_ad_token", "client_secret", "azure_password", "aws_web_identity_token"):
        assert name in SECRET_PARAMS and is_secret_param(name)
    for name in ("model", "api_base", "max_tokens", "timeout", "aws_region_name", "vertex_project", "rpm", "tpm"):
        assert not is_secret_param(name)


def test_hide_params_keeps_env_references():
    params = {"model": "bedrock/x", "aws_session_token": AWS_SESSION, "api_key": "os.environ/KEY",
              "vertex_credentials": {"private_key": "-----BEGIN PRIVATE KEY-----..."},
              "extra_headers": {"Authorization": "Bearer abc123abc123", "X-Trace": "1"}}
    shown = hide_params(params)
    assert shown["aws_session_token"] == "<hidden>" and shown["api_key"] == "os.environ/KEY"
    assert shown["vertex_credentials"] == "<hidden>" and shown["model"] == "bedrock/x"
    assert shown["extra_headers"] == {"Authorization": "<hidden>", "X-Trace": "1"}
    assert params["aws_session_token"] == AWS_SESSION  # the input is not changed


def test_config_secrets_resolves_env_references(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_KEY", "env-key-value-123456")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-openai-from-env-123456")
    path = tmp_path / "c.yaml"
    path.write_text(f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: anthropic/claude-haiku-4-5, api_key: os.environ/MY_KEY}}
  - model_name: tier2
    litellm_params: {{model: bedrock/anthropic.claude-3-5-sonnet, aws_session_token: "{AWS_SESSION}",
                     aws_access_key_id: AKIAIOSFODNN7EXAMPLE, aws_secret_access_key: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY}}
  - model_name: tier3
    litellm_params: {{model: openai/gpt-5}}
""")
    cfg = cfgmod.load(path).config
    found = config_secrets(cfg)
    for value in ("env-key-value-123456", AWS_SESSION, "AKIAIOSFODNN7EXAMPLE",
                  "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "sk-openai-from-env-123456"):
        assert value in found
    assert "os.environ/MY_KEY" not in found


def test_config_show_hides_a_literal_aws_session_token(tmp_path, monkeypatch):
    path = tmp_path / "c.yaml"
    path.write_text(f"""
model_list:
  - model_name: tier1
    litellm_params: {{model: bedrock/anthropic.claude-3-haiku, aws_session_token: "{AWS_SESSION}",
                     aws_secret_access_key: wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY, aws_region_name: us-east-1}}
  - model_name: tier2
    litellm_params: {{model: openai/gpt-5-mini, api_key: os.environ/OPENAI_API_KEY}}
  - model_name: tier3
    litellm_params: {{model: azure/gpt-5, azure_ad_token: "azure-ad-token-Xk29fLq0aZmP", api_base: "https://x.example"}}
""")
    runner = CliRunner()
    for args in (["config", "show", "--config", str(path)], ["config", "show", "--config", str(path), "--json"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        for secret in (AWS_SESSION, "wJalrXUtnFEMIK7MDENGbPxRfiCYEXAMPLEKEY", "azure-ad-token-Xk29fLq0aZmP"):
            assert secret not in result.output
        assert "os.environ/OPENAI_API_KEY" in result.output and "us-east-1" in result.output
    params = json.loads(result.output)["config"]["model_list"][0]["litellm_params"]
    assert params["aws_session_token"] == "<hidden>"


def test_a_forwarded_bearer_client_key_is_known_without_its_prefix(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model_list:\n  - model_name: tier1\n    litellm_params: {model: anthropic/claude-haiku-4-5, api_key: lit-KEY-0123456789}\n"
                    "  - model_name: tier2\n    litellm_params: {model: anthropic/claude-sonnet-4-5, api_key: lit-KEY-0123456789}\n"
                    "  - model_name: tier3\n    litellm_params: {model: anthropic/claude-opus-4-5, api_key: lit-KEY-0123456789}\n")
    cfg = cfgmod.load(path).config
    secrets = known_secrets(cfg, f"Bearer {CLIENT_ODD}", environ={})
    assert CLIENT_ODD in secrets and "lit-KEY-0123456789" in secrets
    echoed = f'{{"error": {{"message": "invalid x-api-key {CLIENT_ODD} for lit-KEY-0123456789"}}}}'
    out = scrub_secrets(echoed, secrets)
    assert CLIENT_ODD not in out and "lit-KEY" not in out and json.loads(out)["error"]["message"]
