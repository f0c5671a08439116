"""A request in flight through the gateway, and `tier run`'s pin (shared by the gateway's modules)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable

from tiercli import calls, guards
from tiercli.config import Config, LoadedConfig
from tiercli.router import Decision
from tiercli.serve.wire import Incoming


@dataclass(frozen=True)
class Pin:
    """`tier run` hook: while set on a Gateway, every request is one attempt's call: sent to the
    decision's tier (source "run"), recorded in `session` with `task_id`, admitted under `caps`."""

    decision: Decision
    session: str
    task_id: str
    caps: tuple[guards.Cap, ...] = ()
    refusals: list[str] = field(default_factory=list, compare=False)  # budget refusals, for tier run
    # decision.reasons[-1] names the attempt: a request routed by an earlier pin is refused at admission


@dataclass
class Flight:
    """One request in flight: what was asked, its recorded call, whether stickiness applies."""

    inc: Incoming
    call: calls.RecordedCall
    sticky_ok: bool
    meta: dict[str, Any] = field(default_factory=dict)
    endpoint: str = ""
    adapted: list[str] = field(default_factory=list)  # what was changed for the target (row meta)

def tools_text(inc: Incoming) -> str:
    if inc.tools_text is not None:  # encoded when the request was read
        return inc.tools_text
    tools = inc.body.get("tools")
    return json.dumps(tools, ensure_ascii=False) if tools else ""


class GatewayParts:
    """What serve.gateway.Gateway provides to its routing and relay mixins (declared for the type
    checker; annotations only, no values)."""

    cfg: Config
    loaded: LoadedConfig
    _ledger: Any
    _http: Any
    _small: Any
    pin: Any
    sticky: dict[str, tuple[str, float]]
    sessions: dict[str, Any]
    tasks: dict[str, Decision]
    shared_ledger: bool
    _on_db: Callable[..., Any]
    _later: Callable[..., None]
    _litellm: Callable[[], Any]
    _chain: Callable[[str, str], Any]
    _forwards_client_key: Callable[[Incoming], bool]
    _settle_ok: Callable[..., None]
    _settle_failed: Callable[..., None]
    _settle_interrupted: Callable[..., None]
    _remember: Callable[..., None]
    _settle_stream: Callable[..., None]
    _failure_response: Callable[..., Any]
    _router_request: Callable[..., tuple[dict[str, Any], dict[str, str]]]
