"""THE only module that imports litellm, and only inside the functions that make a model call.

`complete()` sends messages to a tier through a litellm Router built from the config's model_list
and router_settings (fallback chains and retries as configured) and returns the text, the usage
buckets, which group and deployment served, and every failed attempt with its reason.

Deployments whose model starts with `offline/` never reach litellm: they answer with a clearly
labelled placeholder whose tokens are counted with the stood-in model's tokenizer, so the ledger
and reports of the embedded offline default are real apart from the answer text.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from tiercli import redact
from tiercli.config import OFFLINE_PREFIX, Config, Deployment
from tiercli.errors import ConfigError, ProviderError
from tiercli.pricing import Usage

TextSink = Callable[[str], None]


@dataclass
class Attempt:
    group: str | None
    model: str | None
    error_class: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"group": self.group, "model": self.model, "error_class": self.error_class, "message": self.message}


@dataclass
class Completion:
    text: str
    usage: Usage
    usage_reported: bool  # False: counted locally because the provider sent none
    served_group: str
    served_model: str
    deployment_id: str | None
    attempts: list[Attempt] = field(default_factory=list)  # failed attempts before the one that served
    finish_reason: str | None = None


class CallFailed(ProviderError):
    """Every deployment and fallback failed. Carries what was tried and any partial text."""

    def __init__(self, message: str, hint: str | None, *, error_class: str, attempts: list[Attempt], partial_text: str = ""):
        super().__init__(message, hint)
        self.error_class = error_class
        self.attempts = attempts
        self.partial_text = partial_text


class DeadlineExceeded(Exception):
    """The whole call, streaming included, ran past its wall-clock limit (guardrails.timeout_s)."""


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during a call; carries the text received so far."""

    def __init__(self, partial_text: str, served_group: str | None, served_model: str | None):
        super().__init__("interrupted")
        self.partial_text = partial_text
        self.served_group = served_group
        self.served_model = served_model


def scrub(text: str, cfg: Config | None = None) -> str:
    """Remove API keys from text: every secret the config names (the one list of secret params,
    secrets_scrub.SECRET_PARAMS; their values whether written in the config or read from the
    environment) and common key shapes. Always before any cut (scrub, then truncate)."""
    from tiercli import secrets_scrub

    variables = {v for d in cfg.model_list for v in d.key_variables()} if cfg is not None else set()
    known = secrets_scrub.config_secrets(cfg) if cfg is not None else []
    return redact.scrub(secrets_scrub.scrub_secrets(text, known), variables)


# -- key checks ----------------------------------------------------------------------------------
def check_keys(cfg: Config, tier: str) -> None:
    """Raise ConfigError naming the first unset key variable of `tier` or its fallback chain.

    litellm would not fail at build time: the call would fail with "Missing credentials" and
    silently fall back to the next tier, hiding the real problem."""
    for group in [tier, *cfg.fallback_chain(tier)]:
        for d in cfg.deployments(group):
            for var in d.key_variables():
                if not os.environ.get(var):
                    raise ConfigError(
                        f"environment variable {var} is not set (needed by {group})",
                        f"export {var}=... or change the config's api_key for {group}",
                    )


# -- offline ---------------------------------------------------------------------------------------
def _offline_complete(cfg: Config, group: str, d: Deployment, messages: list[dict], on_text: TextSink | None) -> Completion:
    from tiercli import tokens

    stood_in = d.model[len(OFFLINE_PREFIX):]
    prompt_chars = sum(len(m["content"]) if isinstance(m.get("content"), str) else 0 for m in messages)
    text = (
        f"[offline placeholder: {group} standing in for {stood_in}]\n"
        "This is not a model answer. tier is running on its embedded offline config (no API key, no\n"
        f"network). The routing, the token counts ({prompt_chars} prompt characters) and the prices of\n"
        f"{stood_in} are real and recorded in the ledger. Point TIER_CONFIG at one of the sample_configs/\n"
        "with your API key set to get real answers.\n"
    )
    if on_text:
        for line in text.splitlines(keepends=True):
            on_text(line)
    usage = Usage(input_tokens=tokens.count_messages(messages, stood_in), output_tokens=tokens.count(text, stood_in))
    return Completion(text, usage, True, group, stood_in, d.model_info.get("id"), [], "stop")


# -- litellm ---------------------------------------------------------------------------------------
def _quiet_litellm():
    os.environ.setdefault("LITELLM_OFFLINE_MODE", "true")
    os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
    from tiercli.pricing import litellm_package_dir

    root = litellm_package_dir()
    if root is not None:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(root / "litellm_core_utils" / "tokenizers"))
    import logging

    for name in ("LiteLLM", "LiteLLM Router", "LiteLLM Proxy", "httpx"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    import litellm

    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


class _AttemptLog:
    """A litellm CustomLogger that sees every deployment attempt, failures included."""

    def __init__(self, litellm_mod):
        from litellm.integrations.custom_logger import CustomLogger

        log = self

        class _Logger(CustomLogger):
            def log_failure_event(self, kwargs, response_obj, start_time, end_time):  # noqa: D401
                log.record_failure(kwargs)

            async def async_log_failure_event(self, kwargs, response_obj, start_time, end_time):
                log.record_failure(kwargs)

        self.failures: dict[str, list[Attempt]] = {}
        self.logger = _Logger()

    def record_failure(self, kwargs: dict) -> None:
        params = kwargs.get("litellm_params") or {}
        metadata = params.get("metadata") or {}
        call_id = metadata.get("tier_call_id")
        if not call_id:
            return
        exc = kwargs.get("exception")
        group = metadata.get("model_group")
        model = kwargs.get("model") or params.get("model")
        # kept whole: pop_attempts scrubs it with the config's secrets, then cuts it
        attempt = Attempt(group, model, type(exc).__name__ if exc else "Error", _short_error(exc, limit=None))
        bucket = self.failures.setdefault(call_id, [])
        if not any(a.as_dict() == attempt.as_dict() for a in bucket):
            bucket.append(attempt)


_ROUTERS: dict[str, Any] = {}
_ATTEMPT_LOG: _AttemptLog | None = None


_PROVIDER_MESSAGE = re.compile(r"""["']message["']\s*:\s*["']((?:[^"'\\]|\\.){1,300})["']""")


def _short_error(exc: BaseException | None, cfg: Config | None = None, limit: int | None = 300) -> str:
    """The provider's own message where one can be found, without litellm's boilerplate; scrubbed
    of keys before it is cut to 300 characters (a key across the cut would escape in part)."""
    if exc is None:
        return ""
    text = scrub(str(getattr(exc, "message", None) or exc), cfg)
    text = re.sub(r"\s+", " ", text).strip()
    found = _PROVIDER_MESSAGE.search(text)
    if found:
        return found.group(1)[:limit]
    text = re.sub(r"^(?:(?:litellm\.)?\w*(?:Error|Exception|Timeout): )+", "", text)  # "litellm.X: X: ..." -> "..."
    for marker in (" Handle with `litellm", " LiteLLM: model group", " Received Model Group", "LiteLLM Retried"):
        text = text.split(marker, 1)[0]
    return text.strip()[:limit]


def _router(cfg: Config, cfg_hash: str):
    global _ATTEMPT_LOG
    if cfg_hash in _ROUTERS:
        return _ROUTERS[cfg_hash]
    litellm = _quiet_litellm()
    if _ATTEMPT_LOG is None:
        _ATTEMPT_LOG = _AttemptLog(litellm)
        litellm.callbacks = [*list(litellm.callbacks or []), _ATTEMPT_LOG.logger]
    model_list = []
    for d in cfg.model_list:
        if d.is_offline:
            continue
        entry = d.model_dump(mode="python", exclude_none=True)
        info = dict(entry.get("model_info") or {})
        info.setdefault("id", f"{d.model_name}:{d.model}")
        entry["model_info"] = info
        params = entry["litellm_params"]
        if cfg.caching.enabled and d.provider() == "anthropic" and "cache_control_injection_points" not in params:
            # litellm marks the system prompt (our static prefix) for Anthropic's prompt cache, for
            # this deployment only: OpenAI-compatible routes would forward the marker verbatim
            control = {"type": "ephemeral", **({"ttl": "1h"} if cfg.caching.ttl == "1h" else {})}
            params["cache_control_injection_points"] = [{"location": "message", "role": "system", "control": control}]
        model_list.append(entry)
    online = {d["model_name"] for d in model_list}
    settings = dict(cfg.router_settings)
    # Cooldowns make litellm refuse a deployment for a while after failures: useless for a one-call
    # CLI process and harmful in a long-lived one (a fallback target would be skipped). Opt-in only.
    settings.setdefault("disable_cooldowns", True)
    for key in ("fallbacks", "context_window_fallbacks", "content_policy_fallbacks"):
        if settings.get(key):
            settings[key] = [
                {src: [g for g in dsts if g in online]} for entry in settings[key] for src, dsts in entry.items() if src in online
            ]
    try:
        router = litellm.Router(model_list=model_list, **settings)
    except Exception as exc:  # noqa: BLE001 - Router rejects some settings only at build time
        raise ConfigError(f"litellm could not build a router from this config: {_short_error(exc, cfg)}") from None
    _ROUTERS[cfg_hash] = router
    return router


def _usage_from(usage: Any) -> Usage | None:
    if usage is None:
        return None

    def get(obj: Any, name: str) -> int:
        if obj is None:
            return 0
        value = obj.get(name) if isinstance(obj, dict) else getattr(obj, name, None)
        return int(value or 0)

    prompt = get(usage, "prompt_tokens")
    output = get(usage, "completion_tokens")
    details = usage.get("prompt_tokens_details") if isinstance(usage, dict) else getattr(usage, "prompt_tokens_details", None)
    cache_read = get(usage, "cache_read_input_tokens") or get(details, "cached_tokens")
    cache_write = get(usage, "cache_creation_input_tokens") or get(details, "cache_creation_tokens")
    if not prompt and not output:
        return None
    uncached = max(prompt - cache_read - cache_write, 0)
    return Usage(input_tokens=uncached, cache_read_tokens=cache_read, cache_write_tokens=cache_write, output_tokens=output)


def _served(resp: Any, cfg: Config, fallback_group: str) -> tuple[str, str, str | None]:
    hidden = getattr(resp, "_hidden_params", None) or {}
    headers = hidden.get("additional_headers") or {}
    group = headers.get("x-litellm-model-group") or fallback_group
    model_id = hidden.get("model_id")
    model = None
    if model_id:
        for d in cfg.model_list:
            if d.model_info.get("id", f"{d.model_name}:{d.model}") == model_id:
                group, model = d.model_name, d.model
                break
    if model is None:
        model = getattr(resp, "model", None) or cfg.primary_model(group)
    return group, model, model_id


def _classify_exception(exc: BaseException) -> tuple[str, str]:
    name = type(exc).__name__
    hints = {
        "AuthenticationError": "check the API key variable for this tier",
        "ContextWindowExceededError": "the prompt is longer than the model's context window: shorten it or use a tier with a larger window",
        "RateLimitError": "the provider is rate-limiting; retry later or add a fallback tier",
        "Timeout": "the provider did not answer in time; raise guardrails.timeout_s or retry",
        "APIConnectionError": "could not reach the provider; check the network or api_base",
        "NotFoundError": "the provider does not know this model name",
        "BadRequestError": "the provider rejected the request",
        "DeadlineExceeded": "guardrails.timeout_s also caps how long an answer may stream: raise it or ask for a shorter answer",
    }
    return name, hints.get(name, "see `tier log` for the failed attempts")


def _close_stream(resp: Any) -> None:
    """Best effort: stop reading a stream we abandon (its connection is released)."""
    for obj in (getattr(resp, "_sync_generator", None), resp):
        close = getattr(obj, "close", None)
        if callable(close):
            try:
                close()
            except Exception:  # noqa: BLE001 - we are failing the call anyway
                pass
            return


def complete(
    cfg: Config,
    cfg_hash: str,
    tier: str,
    messages: list[dict],
    *,
    call_id: str,
    stream: bool = True,
    on_text: TextSink | None = None,
    max_tokens: int | None = None,
    timeout: float | None = None,
    temperature: float | None = None,
) -> Completion:
    """Send `messages` to `tier` (with its fallbacks). Raises CallFailed, Interrupted, ProviderError."""
    deployments = cfg.deployments(tier)
    if all(d.is_offline for d in deployments):
        return _offline_complete(cfg, tier, deployments[0], messages, on_text)
    check_keys(cfg, tier)
    router = _router(cfg, cfg_hash)
    assert _ATTEMPT_LOG is not None
    kwargs: dict[str, Any] = {"metadata": {"tier_call_id": call_id}}
    if max_tokens:
        kwargs["max_tokens"] = max_tokens
    if timeout:
        kwargs["timeout"] = timeout
    if temperature is not None:
        kwargs["temperature"] = temperature
    text_parts: list[str] = []
    group: str | None = None
    model: str | None = None
    try:
        if not stream:
            resp = router.completion(model=tier, messages=messages, **kwargs)
            group, model, model_id = _served(resp, cfg, tier)
            text = resp.choices[0].message.content or ""
            if on_text:
                on_text(text)
            usage = _usage_from(getattr(resp, "usage", None))
            finish = resp.choices[0].finish_reason
        else:
            resp = router.completion(
                model=tier, messages=messages, stream=True, stream_options={"include_usage": True}, **kwargs
            )
            usage = None
            finish = None
            # litellm's timeout is per attempt and per read: a trickling stream would never trip it. So the
            # answer, once it starts streaming, gets timeout_s in total (the clock starts here, not at the
            # first attempt, so a fallback after a timed-out attempt still has its full time)
            deadline = time.monotonic() + timeout if timeout else None
            # for streams the served group and deployment are on the wrapper, not on the chunks
            group, model, model_id = _served(resp, cfg, tier)
            for chunk in resp:
                if chunk.choices:
                    delta = chunk.choices[0].delta
                    piece = getattr(delta, "content", None)
                    if piece:
                        text_parts.append(piece)
                        if on_text:
                            on_text(piece)
                    finish = chunk.choices[0].finish_reason or finish
                chunk_usage = _usage_from(getattr(chunk, "usage", None))
                if chunk_usage is not None:
                    usage = chunk_usage
                if deadline is not None and time.monotonic() > deadline:
                    _close_stream(resp)
                    raise DeadlineExceeded(f"the answer streamed for longer than guardrails.timeout_s ({timeout:g} s); "
                                           f"{len(text_parts)} chunk(s) received")
            text = "".join(text_parts)
            # a mid-stream fallback swaps the deployment under the wrapper: read who served at the end
            group, model, model_id = _served(resp, cfg, tier)
    except KeyboardInterrupt:
        _ATTEMPT_LOG.failures.pop(call_id, None)
        if stream and "resp" in locals():
            _close_stream(resp)  # a long-lived process (the worker) releases the connection now
        raise Interrupted("".join(text_parts), group, model) from None
    except Exception as exc:  # noqa: BLE001 - every provider failure becomes CallFailed
        raise raw_failure(cfg, tier, call_id, exc, partial_text="".join(text_parts), group=group, model=model) from None
    attempts = pop_attempts(cfg, call_id)
    reported = usage is not None
    # the 1-hour cache attribution of the writes is the pipeline's (calls.RecordedCall._price)
    if usage is None:
        from tiercli import tokens

        usage = Usage(input_tokens=tokens.count_messages(messages, model or tier), output_tokens=tokens.count(text, model or tier))
    return Completion(text, usage, reported, group or tier, model or cfg.primary_model(tier), model_id, attempts, finish)



# -- gateway (`tier serve`) ------------------------------------------------------------------------
# The gateway's provider calls: async, on the same cached Router and attempt log as complete(). The
# request and the answer stay in the provider-neutral OpenAI shape litellm speaks; Anthropic-format
# requests are translated with litellm's own Messages adapter (the one its proxy uses), both ways.

# What a client may set on a routed request. Everything else (api_base, api_key, base_url,
# extra_headers, mock_response, metadata, ...) is dropped: a client must never redirect a call made
# with the config's key, nor reach litellm's own knobs.
CLIENT_PARAMS = frozenset(
    """messages tools tool_choice parallel_tool_calls functions function_call max_tokens max_completion_tokens
    temperature top_p n stop presence_penalty frequency_penalty logit_bias logprobs top_logprobs
    response_format seed user reasoning_effort thinking modalities audio prediction service_tier
    web_search_options verbosity top_k""".split()
)


def warm_up(cfg: Config, cfg_hash: str) -> None:
    """Import litellm, build the Router and load the Messages adapter before the first request."""
    if any(not d.is_offline for d in cfg.model_list):
        _router(cfg, cfg_hash)
        from litellm.llms.anthropic.messages.adapters.transformation import AnthropicAdapter  # noqa: F401


def client_params(request: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in request.items() if k in CLIENT_PARAMS and v is not None}


def raw_failure(cfg: Config, tier: str, call_id: str, exc: BaseException, *, partial_text: str = "",
                group: str | None = None, model: str | None = None) -> CallFailed:
    """The CallFailed for `exc` (complete() and complete_raw()), with every failed attempt and the
    provider's HTTP status."""
    assert _ATTEMPT_LOG is not None
    attempts = _ATTEMPT_LOG.failures.pop(call_id, [])
    name, hint = _classify_exception(exc)
    message = scrub(_short_error(exc, cfg), cfg)
    if not attempts or isinstance(exc, DeadlineExceeded):  # litellm's logger saw nothing of it
        attempts.append(Attempt(group or tier, model, name, message))
    for a in attempts:
        a.message = scrub(a.message, cfg)
    if len(attempts) > 1:
        tried = ", ".join(f"{a.group} {a.error_class}" for a in attempts)
        summary = f"{tier} call failed on every tier tried ({tried}): {attempts[0].message}"
        name = attempts[-1].error_class if name.startswith("Router") else name
    else:
        summary = f"{tier} call failed: {name}: {message}"
    failed = CallFailed(summary, hint, error_class=name, attempts=attempts, partial_text=partial_text)
    failed.status_code = getattr(exc, "status_code", None)  # type: ignore[attr-defined]
    return failed


def pop_attempts(cfg: Config, call_id: str) -> list[Attempt]:
    """The failed attempts litellm logged for a call that in the end succeeded (fallbacks)."""
    attempts = _ATTEMPT_LOG.failures.pop(call_id, []) if _ATTEMPT_LOG is not None else []
    for a in attempts:
        a.message = scrub(a.message, cfg)[:300]  # scrubbed, then cut
    return attempts


async def complete_raw(
    cfg: Config,
    cfg_hash: str,
    tier: str,
    request_kwargs: dict[str, Any],
    *,
    call_id: str,
    stream: bool,
    timeout: float | None = None,
) -> Any:
    """Send one OpenAI-format chat request (the client's own fields, see CLIENT_PARAMS) to `tier` and
    its fallbacks, async. Returns litellm's ModelResponse, or its async stream wrapper (usage in the
    last chunk). Raises CallFailed (with `.status_code`) when every deployment failed."""
    check_keys(cfg, tier)
    router = _router(cfg, cfg_hash)
    kwargs: dict[str, Any] = {**client_params(request_kwargs), "metadata": {"tier_call_id": call_id}}
    if timeout:
        kwargs["timeout"] = timeout
    if stream:
        kwargs["stream"] = True
        kwargs["stream_options"] = {"include_usage": True}
    try:
        return await router.acompletion(model=tier, **kwargs)
    except Exception as exc:  # noqa: BLE001 - every provider failure becomes CallFailed
        raise raw_failure(cfg, tier, call_id, exc) from None


def served_by(resp: Any, cfg: Config, tier: str) -> tuple[str, str, str | None]:
    """(group, deployment model, deployment id) that answered: after a fallback, not `tier`."""
    return _served(resp, cfg, tier)


def usage_of(obj: Any) -> Usage | None:
    """A litellm (or OpenAI wire) usage object as the ledger's four token buckets."""
    return _usage_from(obj)


def anthropic_to_openai(body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """An Anthropic Messages request -> (OpenAI chat kwargs, tool-name mapping) via litellm's adapter:
    system, content blocks, images, tools, tool_use/tool_result, thinking, stop sequences, metadata."""
    from litellm.llms.anthropic.messages.adapters.transformation import AnthropicAdapter

    fields = {k: v for k, v in body.items() if k not in ("stream", "stream_options")}
    fields.setdefault("model", "tier")
    translated, mapping = AnthropicAdapter().translate_completion_input_params_with_tool_mapping(fields)
    return dict(translated or {}), dict(mapping or {})


def openai_to_anthropic(resp: Any, tool_name_mapping: dict[str, str] | None = None) -> dict[str, Any]:
    """A litellm ModelResponse -> an Anthropic Messages response (content blocks, stop_reason, usage)."""
    from litellm.llms.anthropic.messages.adapters.transformation import AnthropicAdapter

    out = AnthropicAdapter().translate_completion_output_params(resp, tool_name_mapping=tool_name_mapping)
    data = dict(out or {})
    data.pop("_hidden_params", None)
    return data


def anthropic_sse(stream: Any, model: str, tool_name_mapping: dict[str, str] | None = None):
    """A litellm async chunk stream -> Anthropic Messages SSE events (bytes), via litellm's adapter."""
    from litellm.llms.anthropic.messages.adapters.transformation import AnthropicAdapter

    return AnthropicAdapter().translate_completion_output_params_streaming(
        stream, model=model, tool_name_mapping=tool_name_mapping, is_async=True)


def offline_completion(cfg: Config, tier: str, messages: list[dict]) -> Completion:
    """The embedded offline default's placeholder answer for `tier` (no litellm, no network)."""
    return _offline_complete(cfg, tier, cfg.deployments(tier)[0], messages, None)
