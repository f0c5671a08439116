"""The rules' search prefilter (classify/prefilter.py) only skips searches that would fail."""

from __future__ import annotations

import re

from tiercli.classify import corpus, local
from tiercli.classify.prefilter import required_substrings, text_heads, word_heads


def test_required_substrings_of_simple_patterns():
    assert required_substrings(r"\bgrep\b") == ("grep",)
    assert set(required_substrings(r"§ (?:show|display) (?:a|an)\b") or ()) == {"§ show a", "§ display a"}
    assert required_substrings(r"\bwhich (?:\w+ )?files\b") in (("which ",), ("files",))
    assert required_substrings(r"\w+") is None  # nothing literal every match needs
    assert required_substrings(r"(?:foo)?bar|baz") == ("bar", "baz")
    assert required_substrings(r"colou?r") == ("color", "colour")
    assert required_substrings(r"grep", re.IGNORECASE) is None
    assert required_substrings(r"(?i)grep") is None


def test_every_match_contains_a_required_substring():
    """Checked on the normalised instructions of the tune corpora: no rule ever matches text that
    lacks all of its required substrings, for every regex the rules use."""
    rules = local.all_lazies()
    segments = []
    for it in corpus.old("tune") + corpus.blind("tune"):
        segments += [n for n, _ in local.analyse(it.text).normed if n]
    assert len(segments) > 500
    checked = 0
    for rx in rules:
        if rx.needs is None:
            continue
        for seg in segments:
            for m in rx.finditer(seg):
                checked += 1
                assert any(n in m.group(0) for n in rx.needs), (rx._p, m.group(0), rx.needs)
    assert checked > 1000


def _decisions_without(attribute: str) -> tuple[list, list]:
    """Every tune-part decision with each rule's prefilter `attribute` as shipped, and with it off (None)."""
    rules = local.all_lazies()
    texts = [it.text for it in corpus.blind("tune")]
    with_it = [local.classify(t) for t in texts]
    saved = [(rx, getattr(rx, attribute)) for rx in rules]
    try:
        for rx in rules:
            setattr(rx, attribute, None)
        without = [local.classify(t) for t in texts]
    finally:
        for rx, value in saved:
            setattr(rx, attribute, value)
    return with_it, without


def test_prefilter_changes_no_decision():
    with_prefilter, without = _decisions_without("needs")
    assert with_prefilter == without


def test_the_shipped_table_covers_every_pattern_and_is_right():
    """prefilter_table.json (regenerate: python -m tiercli.classify.train --prefilter-table)."""
    import json

    from tiercli.classify import prefilter

    table = json.loads(prefilter.TABLE_FILE.read_text(encoding="utf-8"))
    patterns = local.all_patterns()
    assert len(patterns) > 100
    for p, f in patterns:
        key = f"{f}:{p}"
        assert key in table, f"not in the table (regenerate it): {p[:60]}"
        expected = required_substrings(p, f)
        assert table[key] == (None if expected is None else list(expected))
        heads = word_heads(p, f)
        assert table["heads:" + key] == (None if heads is None else sorted(heads))


def test_word_heads_of_simple_patterns():
    assert word_heads(r"\bgrep\b") == {"grep"}
    assert word_heads(r"\b(?:foo|ba)r?\b") == {"foo", "ba"}
    assert word_heads(r"(?<!\w)(?:algorithms?|bigo)") == {"algori", "bigo"}
    assert word_heads(r"\bre-?format") == {"re"}  # "re-format" or "reformat"
    assert word_heads(r"§ find") is None  # does not start a word
    assert word_heads(r"grep") is None  # may start inside a word
    assert word_heads(r"\b\w+") is None and word_heads(r"\bgrep", re.IGNORECASE) is None
    assert text_heads("§ the xid-ok 500") >= {"t", "th", "the", "x", "xi", "xid", "o", "ok", "5", "50", "500"}
    assert "h" not in text_heads("the")


def test_every_match_starts_a_word_with_one_of_its_heads():
    rules = local.all_lazies()
    segments = []
    for it in corpus.old("tune") + corpus.blind("tune"):
        segments += [n for n, _ in local.analyse(it.text).normed if n]
    checked = 0
    for rx in rules:
        if rx.heads is None:
            continue
        for seg in segments:
            heads = text_heads(seg)
            for m in rx.finditer(seg):
                checked += 1
                assert any(h in heads and seg.startswith(h, m.start()) for h in rx.heads), (rx._p, m.group(0))
    assert checked > 1000


def test_word_heads_change_no_decision():
    with_heads, without = _decisions_without("heads")
    assert with_heads == without
