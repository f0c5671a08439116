"""Scrubbing secrets from text that leaves the gateway or enters the ledger, and the one list of
secret-bearing config keys.

Two layers, in this order:
1. every *known* secret is removed by value, whatever its shape: the config's keys (literal or
   `os.environ/VAR`, resolved now), the provider key variables litellm reads on its own, and a
   client's own key when `serve.forward_client_key` sends it upstream. Longest first, so a key that
   contains another is never left half-masked.
2. common key *shapes*: sk-..., sk-ant-..., AKIA..., ghp_..., private-key blocks (redact.py), bearer
   tokens, `x-api-key` / `api-key` header values, and long high-entropy tokens right after a word
   like key, token, secret or password.

Truncation comes after scrubbing (`scrub_then_cut`): cutting first can split a key at the boundary
so that neither half matches a pattern or the known value, and the first half escapes.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from typing import Any, Iterable, Mapping

from tiercli.redact import MASK, redact

# litellm_params that hold a credential (litellm 1.110.2, types/router.py CredentialLiteLLMParams;
# litellm itself masks any param containing authorization/token/key/secret/credentials/password when
# it logs, litellm_logging._SENSITIVE_KEYWORDS, which is too broad for display: max_tokens).
SECRET_PARAMS = frozenset({
    "api_key", "azure_ad_token", "client_secret", "azure_password",
    "vertex_credentials", "aws_access_key_id", "aws_secret_access_key", "aws_session_token",
    "aws_web_identity_token", "anthropic_identity_token", "watsonx_token", "password", "token",
})
# litellm_params whose value is a mapping of HTTP headers (values of auth headers are secret)
HEADER_PARAMS = frozenset({"extra_headers", "headers"})
_SECRET_NAME = re.compile(r"(?i)(?:^|[_-])(?:api[_-]?key|secret|password|passwd|credentials?|ad_token|"
                          r"session_token|identity_token|access_key(?:_id)?|auth(?:orization)?|token)$")
_SENSITIVE_WORDS = ("authorization", "token", "key", "secret", "credential", "password", "passwd", "cookie")
MIN_SECRET_CHARS = 6  # shorter "secrets" would mangle ordinary text when removed by value

_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=\-]{8,})")
_HEADER_VALUE = re.compile(r"""(?i)((?:x-api-key|api-key|x-goog-api-key|authorization|proxy-authorization|"""
                           r"""x-tier-token|cookie)["']?\s*[:=]\s*["']?)(?!(?:bearer|basic)\s)([^\s"',;}<]{6,})""")
_NEAR_WORD = re.compile(r"""(?i)\b((?:api[_\s-]?)?(?:key|token|secret|password|passwd|credentials?)s?\b"""
                        r"""["']?\s*(?:[:=]|\bis\b|\bwas\b)?\s*["']?)([A-Za-z0-9_\-./+=~]{20,})""")


def is_secret_param(name: str) -> bool:
    """A litellm_params key whose value is a credential (api_key, aws_session_token, ...)."""
    return name in SECRET_PARAMS or bool(_SECRET_NAME.search(name))


def is_sensitive_header(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SENSITIVE_WORDS)


def hide_params(params: dict[str, Any], hidden: str = "<hidden>") -> dict[str, Any]:
    """A copy of litellm_params for display: every literal credential replaced by `hidden`
    (`os.environ/VAR` references are not secrets and stay), auth header values too."""
    out = dict(params)
    for name, value in params.items():
        if is_secret_param(name):
            if isinstance(value, str) and value.startswith("os.environ/"):
                continue
            if value is not None:
                out[name] = hidden
        elif name in HEADER_PARAMS and isinstance(value, dict):
            out[name] = {k: (hidden if is_sensitive_header(str(k)) and not str(v).startswith("os.environ/") else v)
                         for k, v in value.items()}
    return out


def _values(value: Any) -> Iterable[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _values(v)
    elif isinstance(value, (list, tuple)):
        for v in value:
            yield from _values(v)


def _resolve(value: str, environ: Mapping[str, str]) -> str | None:
    if value.startswith("os.environ/"):
        return environ.get(value.split("/", 1)[1])
    return value


def config_secrets(cfg: Any, environ: Mapping[str, str] | None = None) -> list[str]:
    """Every credential a config can send: literal values and `os.environ/VAR` values of its
    secret params and auth headers, plus the provider key variables litellm reads when a deployment
    names none (ANTHROPIC_API_KEY, ...)."""
    from tiercli.config import PROVIDER_KEY_VARS

    environ = os.environ if environ is None else environ
    found: list[str] = []
    for d in getattr(cfg, "model_list", ()) or ():
        for name, value in (d.litellm_params or {}).items():
            if is_secret_param(name):
                found += [v for v in (_resolve(s, environ) for s in _values(value)) if v]
            elif name in HEADER_PARAMS and isinstance(value, dict):
                found += [v for k, s in value.items() if is_sensitive_header(str(k)) and isinstance(s, str)
                          for v in [_resolve(s, environ)] if v]
    found += [environ[var] for var in PROVIDER_KEY_VARS.values() if environ.get(var)]
    return found


def known_secrets(cfg: Any, client_key: str | None = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """config_secrets() plus a client's own key (a header value: a `Bearer ` prefix is dropped), for
    the gateway when `serve.forward_client_key` sends that key upstream."""
    found = config_secrets(cfg, environ)
    if client_key:
        value = client_key.strip()
        found.append(value[7:].strip() if value.lower().startswith("bearer ") else value)
    return found


def _entropy(token: str) -> float:
    counts = Counter(token)
    return -sum(n / len(token) * math.log2(n / len(token)) for n in counts.values())


def _looks_random(token: str) -> bool:
    """A key, not a word: mixed letters and digits and at least ~3.5 bits of entropy per character."""
    has_digit = any(c.isdigit() for c in token)
    has_alpha = any(c.isalpha() for c in token)
    return has_digit and has_alpha and _entropy(token) >= 3.5


def scrub_secrets(text: str, known_secrets: Iterable[str] = ()) -> str:
    """`text` without any of `known_secrets` (by value, longest first) and without common key shapes."""
    if not text:
        return text
    for secret in sorted({s for s in known_secrets if s and len(s) >= MIN_SECRET_CHARS}, key=len, reverse=True):
        text = text.replace(secret, MASK)
    text = redact(text)
    text = _BEARER.sub(lambda m: m.group(1) + m.group(2) + MASK, text)
    text = _HEADER_VALUE.sub(lambda m: m.group(1) + MASK, text)
    return _NEAR_WORD.sub(lambda m: m.group(1) + MASK if _looks_random(m.group(2)) else m.group(0), text)


def scrub_then_cut(text: str, limit: int, known_secrets: Iterable[str] = ()) -> str:
    """Scrub first, then cut to `limit` characters (a key across the cut cannot escape in part)."""
    return scrub_secrets(text, known_secrets)[:limit]
