"""Offline token counting without importing litellm.

tiktoken would download its BPE files at first use (fails offline); litellm ships them, so we point
TIKTOKEN_CACHE_DIR at litellm's tokenizer directory. Claude models use the Anthropic tokenizer file
litellm ships (via the `tokenizers` library, as litellm itself does); it is approximate for the
newest Claude models, and we say so in docs. Other models: o200k_base for the gpt-4o/gpt-5/o-series
family, cl100k_base otherwise.
"""

from __future__ import annotations

import functools
import os

from tiercli.pricing import litellm_package_dir


def family(model: str) -> str:
    bare = model.rsplit("/", 1)[-1]
    if "claude" in bare:
        return "anthropic"
    if bare.startswith(("gpt-4o", "gpt-4.1", "gpt-5", "o1", "o3", "o4", "chatgpt-4o")):
        return "o200k_base"
    return "cl100k_base"


@functools.lru_cache(maxsize=4)
def _tiktoken(name: str):
    root = litellm_package_dir()
    if root is not None:
        os.environ.setdefault("TIKTOKEN_CACHE_DIR", str(root / "litellm_core_utils" / "tokenizers"))
    import tiktoken

    return tiktoken.get_encoding(name)


@functools.lru_cache(maxsize=1)
def _anthropic():
    root = litellm_package_dir()
    if root is None:
        return None
    path = root / "litellm_core_utils" / "tokenizers" / "anthropic_tokenizer.json"
    try:
        from tokenizers import Tokenizer

        return Tokenizer.from_file(str(path))
    except Exception:  # noqa: BLE001 - any failure falls back to tiktoken below
        return None


def count(text: str, model: str) -> int:
    """Tokens of `text` for `model`'s tokenizer family (offline)."""
    if not text:
        return 0
    fam = family(model)
    if fam == "anthropic":
        tok = _anthropic()
        if tok is not None:
            return len(tok.encode(text, add_special_tokens=False).ids)
        fam = "cl100k_base"
    return len(_tiktoken(fam).encode(text, disallowed_special=()))


# Per-message framing overhead in chat formats (role markers etc.), as litellm and OpenAI count it.
MESSAGE_OVERHEAD = 3
REPLY_PRIMING = 3


def count_messages(messages: list[dict], model: str) -> int:
    total = REPLY_PRIMING
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            text = "".join(block.get("text", "") for block in content if isinstance(block, dict))
        else:
            text = content or ""
        total += MESSAGE_OVERHEAD + count(text, model)
    return total
