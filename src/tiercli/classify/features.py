"""Hashed text features shared by the learned model (model.py, train.py) and the user's correction
layer (learn.py). Standard library only; deterministic across processes (crc32, not hash()).

Model features come from the rules' analysis of a prompt (local.analyse): the normalised instruction
(identifiers already replaced by "xid", sentence heads marked "§", pasted material left out), as
word unigrams, word bigrams, sentence-head words and character 4-grams of the words, each hashed into
2**18 buckets; plus a few dense values (the rules' per-type scores, their winner, pasted-material
hints). Similarity vectors for `tier learn` use the raw lower-cased text instead, so identifiers
count: two prompts about different files are different instructions there.
"""

from __future__ import annotations

import math
import re
from zlib import crc32

BITS = 18
MASK = (1 << BITS) - 1
CHAR_N = 4
MAX_WORDS = 400  # a bounded instruction (local.py keeps at most 6 segments of 1,000 characters)

_WORD = re.compile(r"[a-z§][a-z0-9'+#]*")
_RAW_WORD = re.compile(r"[^\W_]+", re.UNICODE)


def bucket(name: str) -> int:
    return crc32(name.encode("utf-8")) & MASK


def _words(norm: str) -> list[str]:
    return _WORD.findall(norm)[:MAX_WORDS]


def sparse_names(normed: list[tuple[str, float]] | tuple[tuple[str, float], ...]) -> set[str]:
    """The binary feature names of a normalised instruction (segments joined; weights ignored)."""
    names: set[str] = set()
    words: list[str] = []
    for seg, _ in normed:
        words.extend(_words(seg))
        words.append("|")  # segment boundary: no bigram across it
    prev = "|"
    head = False
    for w in words:
        if w == "|":
            prev, head = "|", False
            continue
        if w == "§":
            head = True
            prev = "§"
            continue
        names.add("w:" + w)
        if prev != "|":
            names.add("b:" + prev + " " + w)
        if head:
            names.add("h:" + w)
            head = False
        prev = w
    for w in {w for w in words if len(w) > 2 and w not in ("§", "|", "xid")}:
        padded = f" {w} "
        for i in range(len(padded) - CHAR_N + 1):
            names.add("c:" + padded[i:i + CHAR_N])
    if not names:
        names.add("empty")
    return names


def sparse_buckets(names: set[str]) -> list[int]:
    return sorted({bucket(n) for n in names})


_WORD_BUCKETS: dict[str, tuple[int, ...]] = {}  # word -> buckets of "w:word" and its char 4-grams
_WORD_CACHE_MAX = 50_000


def _word_buckets(w: str) -> tuple[int, ...]:
    found = _WORD_BUCKETS.get(w)
    if found is None:
        names = ["w:" + w]
        if len(w) > 2 and w != "xid":
            padded = f" {w} "
            names += ["c:" + padded[i:i + CHAR_N] for i in range(len(padded) - CHAR_N + 1)]
        found = tuple(bucket(n) for n in names)
        if len(_WORD_BUCKETS) < _WORD_CACHE_MAX:
            _WORD_BUCKETS[w] = found
    return found


_NAME_BUCKETS: dict[str, int] = {}  # bigram and sentence-head names -> bucket


def _name_bucket(name: str) -> int:
    found = _NAME_BUCKETS.get(name)
    if found is None:
        found = bucket(name)
        if len(_NAME_BUCKETS) < _WORD_CACHE_MAX:
            _NAME_BUCKETS[name] = found
    return found


def fast_buckets(normed: list[tuple[str, float]] | tuple[tuple[str, float], ...]) -> list[int]:
    """sparse_buckets(sparse_names(normed)), with each word's, bigram's and head's buckets cached (the hot path)."""
    out: set[int] = set()
    prev = "|"
    head = False
    any_name = False
    for seg, _ in normed:
        for w in _words(seg):
            if w == "§":
                head, prev = True, "§"
                continue
            out.update(_word_buckets(w))
            any_name = True
            if prev != "|":
                out.add(_name_bucket("b:" + prev + " " + w))
            if head:
                out.add(_name_bucket("h:" + w))
                head = False
            prev = w
        prev, head = "|", False
    if not any_name:
        out.add(bucket("empty"))
    return sorted(out)


def similarity_vector(text: str, max_chars: int = 4000) -> dict[int, float]:
    """A unit-length hashed vector of a prompt (words, word bigrams, char 4-grams of the words), read
    from its first and last `max_chars // 2` characters. For nearest-instruction look-ups."""
    if len(text) > max_chars:
        text = text[: max_chars // 2] + " " + text[-max_chars // 2:]
    words = _RAW_WORD.findall(text.lower())
    counts: dict[int, float] = {}

    def add(name: str, weight: float) -> None:
        b = bucket(name)
        counts[b] = counts.get(b, 0.0) + weight

    for i, w in enumerate(words):
        add("w:" + w, 1.0)
        if i:
            add("b:" + words[i - 1] + " " + w, 1.0)
        padded = f" {w} "
        for j in range(len(padded) - CHAR_N + 1):
            add("c:" + padded[j:j + CHAR_N], 0.5)
    norm = math.sqrt(sum(v * v for v in counts.values()))
    if not norm:
        return {}
    return {b: v / norm for b, v in counts.items()}


def cosine(a: dict[int, float], b: dict[int, float]) -> float:
    if len(a) > len(b):
        a, b = b, a
    return sum(v * b.get(k, 0.0) for k, v in a.items())
