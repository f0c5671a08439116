"""Test-wide guards: no network but loopback, an isolated TIER_HOME, no real API keys.

The fake provider server (tests/fakeprovider.py) is loaded as a plugin for the `fake_provider`
fixture.
"""

from __future__ import annotations

import ipaddress
import os
import socket
import sys
from pathlib import Path

import pytest

pytest_plugins = ["fakeprovider", "pgserver"]

# litellm must never fetch its remote price map or tokenizers during tests (also for subprocesses).
os.environ["LITELLM_OFFLINE_MODE"] = "true"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

KEY_VARIABLES = (
    "ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENROUTER_API_KEY", "GEMINI_API_KEY", "PORTKEY_API_KEY",
    "MISTRAL_API_KEY", "GROQ_API_KEY", "DEEPSEEK_API_KEY",
)
ROOT = Path(__file__).resolve().parent.parent


def _is_loopback(host: object) -> bool:
    if host in ("localhost", "", None):
        return True
    try:
        return ipaddress.ip_address(str(host).split("%")[0]).is_loopback
    except ValueError:
        return False


class NetworkBlocked(RuntimeError):
    pass


@pytest.fixture(autouse=True)
def _block_network(monkeypatch):
    """Refuse every connection that is not to 127.0.0.0/8 or ::1, and every non-local DNS lookup."""
    real_connect = socket.socket.connect
    real_connect_ex = socket.socket.connect_ex
    real_getaddrinfo = socket.getaddrinfo

    def check(address):
        if isinstance(address, tuple) and address and not _is_loopback(address[0]):
            raise NetworkBlocked(f"test tried to reach {address!r}: tests may only use loopback")

    def connect(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        if self.family in (socket.AF_INET, socket.AF_INET6):
            check(address)
        return real_connect_ex(self, address)

    def getaddrinfo(host, *args, **kwargs):
        if not _is_loopback(host.decode() if isinstance(host, bytes) else host):
            raise NetworkBlocked(f"test tried to resolve {host!r}: tests may only use loopback")
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    yield


@pytest.fixture(autouse=True)
def tier_home(tmp_path, monkeypatch) -> Path:
    """Every test gets its own TIER_HOME (config and ledger) and no real API keys."""
    home = tmp_path / "tier-home"
    monkeypatch.setenv("TIER_HOME", str(home))
    for var in ("TIER_CONFIG", "TIER_DB", "TIER_DEBUG", "CLAUDE_CONFIG_DIR", *KEY_VARIABLES):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("TIER_NO_WORKER", "1")  # `tier ask` in-process: tests/test_worker.py turns the worker on
    return home


@pytest.fixture
def tier_bin() -> list[str]:
    """How to run the installed CLI in a subprocess."""
    return [sys.executable, "-m", "tiercli"]
