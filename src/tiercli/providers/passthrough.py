"""Same-protocol passthrough: the gateway's provider HTTP without litellm.

When a caller's protocol is its deployments' own (Anthropic client -> anthropic/ models, OpenAI
client -> openai/ models, the whole fallback chain) and the deployments carry only model, api_base
and api_key, the body goes upstream unchanged but for the model name and the key, and the answer
comes back byte for byte. Tool calls, thinking signatures, cache markers and beta headers survive.
Fallbacks follow the config's chain; litellm's retries and cooldowns do not apply here.

This module owns that HTTP: the URL and headers per deployment, the key lookup, the send loop over
the chain, and the failure summary (the same `Attempt` records as litellm's path).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tiercli.config import ENV_REF, PROVIDER_KEY_VARS, Config, Deployment
from tiercli.providers import Attempt, CallFailed, scrub

if TYPE_CHECKING:
    import httpx

# deployments with only these litellm_params can be reached without litellm
PASSTHROUGH_PARAMS = frozenset({"model", "api_base", "api_key", "timeout", "stream_timeout", "max_retries", "rpm", "tpm"})
DEFAULT_BASES = {"anthropic": "https://api.anthropic.com", "openai": "https://api.openai.com/v1"}
CLIENT_ERRORS = frozenset({400, 413, 422})  # the request itself is wrong: no fallback, passed back
ERROR_CLASS_OF_STATUS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                         404: "NotFoundError", 408: "Timeout", 413: "BadRequestError", 422: "BadRequestError",
                         429: "RateLimitError", 503: "ServiceUnavailableError", 529: "OverloadedError"}
MESSAGE_CHARS = 300


def chain_for(cfg: Config, protocol: str, tier: str) -> list[tuple[str, Deployment]] | None:
    """The (group, deployment) chain for `tier` and its fallbacks when every deployment can be reached
    by passthrough in `protocol`; None otherwise (the litellm path serves it)."""
    if not cfg.serve.passthrough:
        return None
    chain: list[tuple[str, Deployment]] = []
    for group in [tier, *cfg.fallback_chain(tier)]:
        for d in cfg.deployments(group):
            if d.is_offline or d.provider() != protocol or set(d.litellm_params) - PASSTHROUGH_PARAMS:
                return None
            chain.append((group, d))
    return chain or None


def deployment_key(d: Deployment) -> str | None:
    """The deployment's API key from the config (an os.environ/ reference, a literal, or the
    provider's usual variable)."""
    key = d.litellm_params.get("api_key")
    if isinstance(key, str) and (m := ENV_REF.match(key)):
        return os.environ.get(m.group(1))
    if key:
        return str(key)
    var = PROVIDER_KEY_VARS.get(d.provider())
    return os.environ.get(var) if var else None


def request_for(protocol: str, body: dict[str, Any], d: Deployment, client_headers: dict[str, str],
                client_key: tuple[str, str] | None, stream: bool, requested_model: str = "",
                max_output_tokens: int = 4096) -> tuple[str, dict[str, str], bytes, list[str]]:
    """(url, headers, payload, changes) for sending `body` to deployment `d`, adapted to it (see
    adapt.py). `client_key`: the caller's own provider key (forward_client_key), else the config's
    key for `d`."""
    from tiercli.providers import adapt

    base = str(d.litellm_params.get("api_base") or DEFAULT_BASES[protocol]).rstrip("/")
    requested = requested_model or d.model
    if protocol == "anthropic":
        url = base if base.endswith("/v1/messages") else base + "/v1/messages"
        headers = {"content-type": "application/json",
                   "anthropic-version": client_headers.get("anthropic-version", "2023-06-01")}
        body, betas, changes = adapt.anthropic_request(body, client_headers.get("anthropic-beta"), requested, d.model,
                                                       max_output_tokens)
        if betas:
            headers["anthropic-beta"] = betas
    else:
        url = base if base.endswith("/chat/completions") else base + "/chat/completions"
        headers = {"content-type": "application/json"}
        body, changes = adapt.openai_request(body, requested, d.model, max_output_tokens)
    if client_key is not None:
        name, value = client_key
        headers[name] = value
    else:
        key = deployment_key(d) or ""
        headers.update({"x-api-key": key} if protocol == "anthropic" else {"authorization": f"Bearer {key}"})
    upstream = dict(body, model=d.model.split("/", 1)[1] if "/" in d.model else d.model)
    if protocol == "openai" and stream:
        upstream["stream_options"] = {**(body.get("stream_options") or {}), "include_usage": True}
    return url, headers, json.dumps(upstream, ensure_ascii=False).encode(), changes


@dataclass
class Sent:
    """The deployment that answered (status < 400) with its open response, or the last error."""

    group: str | None
    deployment: Deployment | None
    response: "httpx.Response | None"
    attempts: list[Attempt]
    last_error: tuple[int, bytes, dict[str, str]] | None = None  # status, body (scrubbed), headers
    adapted: list[str] | None = None  # what was changed in the request for the deployment that answered


async def send(http: "httpx.AsyncClient", cfg: Config, chain: list[tuple[str, Deployment]], protocol: str,
               body: dict[str, Any], client_headers: dict[str, str], client_key: tuple[str, str] | None,
               stream: bool, secrets: tuple[str, ...] = (), requested_model: str = "",
               max_output_tokens: int = 4096) -> Sent:
    """Try the chain in order; a client error (400/413/422) stops it (wrong for every tier)."""
    import httpx

    attempts: list[Attempt] = []
    last_error: tuple[int, bytes, dict[str, str]] | None = None
    for group, d in chain:
        url, headers, payload, changes = request_for(protocol, body, d, client_headers, client_key, stream,
                                                     requested_model, max_output_tokens)
        try:
            resp = await http.send(http.build_request("POST", url, content=payload, headers=headers), stream=True)
        except httpx.TimeoutException as exc:
            attempts.append(Attempt(group, d.model, "Timeout", scrub_all(str(exc) or "timed out", cfg, secrets)))
            continue
        except httpx.HTTPError as exc:
            attempts.append(Attempt(group, d.model, "APIConnectionError", scrub_all(str(exc) or type(exc).__name__, cfg, secrets)))
            continue
        if resp.status_code < 400:
            return Sent(group, d, resp, attempts, adapted=changes)
        data = await resp.aread()
        await resp.aclose()
        clean = scrub_all(data.decode("utf-8", "replace"), cfg, secrets)  # before any cut
        message = upstream_message(clean) or f"HTTP {resp.status_code}"
        attempts.append(Attempt(group, d.model, error_class(resp.status_code, message), message))
        keep = {k: v for k, v in resp.headers.items() if k.lower() in ("retry-after", "content-type")}
        last_error = (resp.status_code, clean.encode(), keep)
        if resp.status_code in CLIENT_ERRORS:
            break
    return Sent(None, None, None, attempts, last_error)


def scrub_all(text: str, cfg: Config, secrets: tuple[str, ...] = ()) -> str:
    """The config's keys, the caller's forwarded key(s) and common key shapes, removed."""
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "<client key>")
    return scrub(text, cfg)


def upstream_message(text: str) -> str | None:
    try:
        obj = json.loads(text)
    except ValueError:
        return text[:MESSAGE_CHARS] or None
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err)[:MESSAGE_CHARS]
    return str(err or obj)[:MESSAGE_CHARS]


def error_class(status: int, message: str) -> str:
    if status == 400 and ("too long" in message or "context length" in message or "context_length" in message):
        return "ContextWindowExceededError"
    return ERROR_CLASS_OF_STATUS.get(status, "InternalServerError" if status >= 500 else "APIError")


def failure(tier: str, attempts: list[Attempt]) -> CallFailed:
    """Every deployment of the chain failed: one summary, the same shape as litellm's path."""
    if not attempts:
        message = f"{tier} call failed"
    elif len(attempts) == 1:
        message = f"{tier} call failed: {attempts[0].error_class}: {attempts[0].message}"
    else:
        tried = ", ".join(f"{a.group} {a.error_class}" for a in attempts)
        message = f"{tier} call failed on every tier tried ({tried}): {attempts[-1].message}"
    return CallFailed(message, None, error_class=attempts[-1].error_class if attempts else "Error", attempts=attempts)
