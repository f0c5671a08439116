"""message.usage of a Claude Code line: the typed decoder (counts checked by msgspec) judges every
usage exactly as the rule of importers.common.count does (an int in [0, 2**53), not a bool or float)."""

from __future__ import annotations

import itertools
import json

import msgspec
import pytest

from tiercli.importers.claude_code_lines import _Bad, _usage
from tiercli.importers.common import MAX_TOKENS, count


def _by_the_rule(text: bytes):
    """The reference: the usage judged field by field with common.count (the importer's rule)."""
    usage = json.loads(text)
    if not isinstance(usage, dict):
        return "bad"
    try:
        if usage.get("input_tokens") is None or usage.get("output_tokens") is None:
            return "bad"
        inp, out = count(usage["input_tokens"], "i"), count(usage["output_tokens"], "o")
        read = count(usage.get("cache_read_input_tokens"), "r")
        creation = usage.get("cache_creation")
        w1h = w5m = 0
        if creation is not None:
            if not isinstance(creation, dict):
                return "bad"
            w1h = count(creation.get("ephemeral_1h_input_tokens"), "1h")
            w5m = count(creation.get("ephemeral_5m_input_tokens"), "5m")
        write = usage.get("cache_creation_input_tokens")
        write = w1h + w5m if write is None else count(write, "w")
    except ValueError:
        return "bad"
    return "bad" if w1h > write else (inp, read, write, w1h, out)


def _judged(text: bytes):
    try:
        return _usage(msgspec.Raw(text))
    except _Bad:
        return "bad"


VALUES = [0, 7, MAX_TOKENS - 1, MAX_TOKENS, -1, 2**70, True, False, 3.0, 1e3, "5", None, [], {}]


@pytest.mark.parametrize("inp, out", list(itertools.product(VALUES, [12, None, True, -3])))
def test_counts_judged_as_the_rule_says(inp, out):
    text = json.dumps({"input_tokens": inp, "output_tokens": out, "cache_read_input_tokens": 4}).encode()
    assert _judged(text) == _by_the_rule(text)


@pytest.mark.parametrize("read, write, creation", list(itertools.product(
    [None, 0, 9, -1, 2.5, MAX_TOKENS],
    [None, 0, 30, True, "30"],
    [None, {}, {"ephemeral_1h_input_tokens": 10, "ephemeral_5m_input_tokens": 20}, {"ephemeral_1h_input_tokens": 40},
     {"ephemeral_5m_input_tokens": -1}, {"ephemeral_1h_input_tokens": None}, [], "x", {"other": 1}],
)))
def test_cache_buckets_judged_as_the_rule_says(read, write, creation):
    usage = {"input_tokens": 1, "output_tokens": 2}
    for key, value in (("cache_read_input_tokens", read), ("cache_creation_input_tokens", write), ("cache_creation", creation)):
        if value is not None:
            usage[key] = value
    text = json.dumps(usage).encode()
    assert _judged(text) == _by_the_rule(text)


@pytest.mark.parametrize("text", [b"null", b'"usage"', b"[1, 2]", b"3"])
def test_a_usage_that_is_not_an_object_is_malformed(text):
    assert _judged(text) == "bad" == _by_the_rule(text)
