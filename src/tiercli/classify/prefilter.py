"""Required substrings of a regex: a cheap test that lets the rules skip a search that cannot match.

    required_substrings(pattern) -> tuple[str, ...] | None

Every match of `pattern` contains at least one of the returned strings, so when none of them is in
the text, `search` would return None and need not run. None means "no such guarantee found" (the
search always runs). Exact by construction: it reads the parsed pattern (the same parser re.compile
uses) and only ever keeps literal text every match must contain; it changes no decision, only skips
searches that would fail (the rules spend most of their time in ~100 failing searches per segment).

How: a node whose matches are a small finite set of strings (literals, alternations of literals,
`?`, small character classes, zero-width assertions) is "exact"; runs of exact nodes are multiplied
out into their concatenations; the best candidate of a sequence (the longest shortest string) wins;
an alternation needs a candidate from each branch. Case-insensitive patterns get no prefilter.

Word heads (`word_heads`, `text_heads`): most rules are `\b(?:word|word ...)`, too many alternatives
for the substring test. Every match of such a pattern starts at a word start with one of a known set of
1-6 word characters; the first 1-6 characters of the text's words are listed once per segment, and a
rule none of whose heads is among them is skipped by one set test (exact by the same construction).

Working the sets out for the ~140 patterns takes ~60-130 ms, more than many decisions save, so they
ship precomputed in prefilter_table.json (keyed by the exact pattern and flags, so an edited pattern
is simply not found and is worked out on first use; `python -m tiercli.classify.train
--prefilter-table` rewrites the table, a test checks it is complete and right).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

try:  # Python 3.11+
    from re import _constants as _c  # type: ignore[attr-defined]
    from re import _parser as _p  # type: ignore[attr-defined]
except ImportError:  # pragma: no cover - Python 3.10
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _p  # type: ignore[no-redef]

MAX_EXACT = 256  # the most strings an exact node may stand for before it is treated as "anything"
MAX_FACTORS = 32  # more alternatives than this: testing them all costs about as much as the search (measured)
MIN_USEFUL = 1  # a factor set whose shortest string is shorter than this is not used

Exact = frozenset  # of str
_ZERO_WIDTH = {_c.AT, _c.ASSERT, _c.ASSERT_NOT}


def _exact_items(items) -> Exact | None:
    out: Exact | None = Exact({""})
    for item in items:
        e = _exact(item)
        if e is None:
            return None
        out = _product(out, e)
        if out is None:
            return None
    return out


def _product(a: Exact | None, b: Exact | None) -> Exact | None:
    if a is None or b is None or len(a) * len(b) > MAX_EXACT:
        return None
    return Exact(x + y for x in a for y in b)


def _exact(item) -> Exact | None:
    """The finite set of strings `item` can match, or None when it is not small and finite."""
    op, av = item
    if op == _c.LITERAL:
        return Exact({chr(av)})
    if op in _ZERO_WIDTH:
        return Exact({""})  # matches no text: the neighbours stay contiguous
    if op == _c.SUBPATTERN:
        _group, add_flags, del_flags, sub = av
        if add_flags & re.IGNORECASE:
            return None
        return _exact_items(sub)
    if op == _c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            e = _exact_items(branch)
            if e is None:
                return None
            out |= e
            if len(out) > MAX_EXACT:
                return None
        return Exact(out)
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        lo, hi, sub = av
        if (lo, hi) == (0, 1):
            e = _exact_items(sub)
            return None if e is None else e | {""}
        if lo == hi == 1:
            return _exact_items(sub)
        return None
    if op == _c.IN:
        chars = set()
        for cop, cav in av:
            if cop != _c.LITERAL:
                return None
            chars.add(chr(cav))
        return Exact(chars) if len(chars) <= 8 else None
    return None


def _score(cands: Exact | set[str]) -> tuple[int, int]:
    return (min((len(s) for s in cands), default=0), -len(cands))


def _factors_items(items) -> set[str] | None:
    """A set of strings one of which every match of the sequence `items` contains (or None)."""
    candidates: list[set[str]] = []
    run: Exact | None = Exact({""})
    for item in list(items) + [None]:
        e = _exact(item) if item is not None else None
        if e is not None:
            nxt = _product(run, e)
            if nxt is not None:
                run = nxt
                continue
        if run is not None and run != {""}:
            candidates.append(set(run))
        run = e if e is not None else Exact({""})
        if item is not None and e is None:
            f = _factors_node(item)
            if f is not None:
                candidates.append(f)
    good = [c for c in candidates if "" not in c and len(c) <= MAX_FACTORS]
    if not good:
        return None
    return max(good, key=_score)


def _factors_node(item) -> set[str] | None:
    op, av = item
    if op == _c.SUBPATTERN:
        if av[1] & re.IGNORECASE:
            return None
        return _factors_items(av[3])
    if op == _c.BRANCH:
        out: set[str] = set()
        for branch in av[1]:
            f = _factors_items(branch)
            if f is None:
                return None
            out |= f
        return out
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT) and av[0] >= 1:
        return _factors_items(av[2])
    return None


def _minimal(factors: set[str]) -> tuple[str, ...]:
    """Drop a string that contains another one of the set (the shorter one already covers it)."""
    keep = [s for s in factors if not any(o != s and o in s for o in factors)]
    return tuple(sorted(keep, key=lambda s: (len(s), s)))


def required_substrings(pattern: str, flags: int = 0) -> tuple[str, ...] | None:
    """Strings one of which every match of `pattern` contains; None when no useful set was found."""
    if flags & (re.IGNORECASE | re.VERBOSE):
        return None
    try:
        parsed = _p.parse(pattern, flags)
    except re.error:
        return None
    if parsed.state.flags & re.IGNORECASE:  # an inline (?i)
        return None
    found = _factors_items(list(parsed))
    if not found or len(found) > MAX_FACTORS:
        return None
    factors = _minimal(found)
    if min(len(s) for s in factors) < MIN_USEFUL:
        return None
    return factors


# ---- word heads: the first characters of a match that starts at a word start --------------------------
HEAD_LEN = 6  # a match's head: its first 1-6 word characters
MAX_HEADS = 2000
_WORD_CHAR = re.compile(r"\w")
_TEXT_HEADS = re.compile(r"\b\w{1,%d}" % HEAD_LEN)
_State = tuple[str, bool, bool]  # (literal start so far, still exact, a word boundary guards the start)


def _is_word_start_guard(op, av) -> bool:
    r"""`\b`, or a `(?<!\w)` lookbehind: before a word character both mean "a word starts here"."""
    if op == _c.AT:
        return av == _c.AT_BOUNDARY
    if op == _c.ASSERT_NOT:
        direction, sub = av
        return direction == -1 and list(sub) == [(_c.IN, [(_c.CATEGORY, _c.CATEGORY_WORD)])]
    return False


def _heads_node(item, k: int) -> set[tuple[str, bool, bool]] | None:
    """The literal starts (up to k characters) of the matches of one node: (text, exact, guarded)."""
    op, av = item
    if op == _c.LITERAL:
        return {(chr(av), True, False)}
    if _is_word_start_guard(op, av):
        return {("", True, True)}
    if op in _ZERO_WIDTH:
        return {("", True, False)}
    if op == _c.SUBPATTERN:
        return None if av[1] & re.IGNORECASE else _heads_items(av[3], k)
    if op == _c.BRANCH:
        out: set[_State] = set()
        for branch in av[1]:
            h = _heads_items(branch, k)
            if h is None:
                return None
            out |= h
        return out
    if op in (_c.MAX_REPEAT, _c.MIN_REPEAT):
        lo, hi, sub = av
        if lo == hi == 1:
            return _heads_items(sub, k)
        if (lo, hi) == (0, 1):
            h = _heads_items(sub, k)
            return None if h is None else h | {("", True, False)}
        if lo >= 1:
            h = _heads_items(sub, k)
            return None if h is None else {(t, False, g) for t, _, g in h}
        return {("", False, False)}
    if op == _c.IN and all(cop == _c.LITERAL for cop, _ in av) and len(av) <= 8:
        return {(chr(cav), True, False) for _, cav in av}
    return {("", False, False)}


def _heads_items(items, k: int) -> set[_State] | None:
    states: set[_State] = {("", True, False)}
    for item in items:
        if not any(exact and len(t) < k for t, exact, _ in states):
            break
        nxt: set[_State] = set()
        for t, exact, guarded in states:
            if not exact or len(t) >= k:
                nxt.add((t, exact, guarded))
                continue
            h = _heads_node(item, k - len(t))
            if h is None:
                return None
            nxt |= {(t + u, e, guarded or (g and not t)) for u, e, g in h}
        if len(nxt) > MAX_HEADS:
            return None
        states = {(t[:k], e and len(t) <= k, g) for t, e, g in nxt}
    return states


def word_heads(pattern: str, flags: int = 0) -> frozenset[str] | None:
    r"""Strings of 1-HEAD_LEN word characters such that every match of `pattern` starts at a word start
    (after `\b` or `(?<!\w)`) with one of them; None when the pattern gives no such guarantee.
    `text_heads(s)` lists the starts of the words of `s`, so a pattern whose heads are all absent
    from it cannot match (one set test instead of a search)."""
    if flags & (re.IGNORECASE | re.VERBOSE | re.ASCII):
        return None
    try:
        parsed = _p.parse(pattern, flags)
    except re.error:
        return None
    if parsed.state.flags & (re.IGNORECASE | re.ASCII):
        return None
    states = _heads_items(list(parsed), HEAD_LEN)
    if not states:
        return None
    heads = set()
    for text, _, guarded in states:
        word = ""
        for ch in text:
            if not _WORD_CHAR.match(ch):
                break
            word += ch
        if not guarded or not word:
            return None
        heads.add(word)
    return frozenset(h for h in heads if not any(h.startswith(o) and o != h for o in heads))  # "re" covers "ref"


def text_heads(s: str) -> set[str]:
    """The first 1 to HEAD_LEN characters of every word of `s` (words as the regex `\\b\\w` sees them)."""
    found = set(_TEXT_HEADS.findall(s))
    out = set(found)
    for k in range(HEAD_LEN - 1, 0, -1):
        found = {h[:k] for h in found}
        out |= found
    return out


TABLE_FILE = Path(__file__).with_name("prefilter_table.json")
_TABLE: dict[str, list[str] | None] = {}


def _key(pattern: str, flags: int) -> str:
    return f"{flags}:{pattern}"


def needs_of(pattern: str, flags: int = 0) -> tuple[str, ...] | None:
    """required_substrings, from the shipped table when the pattern is in it."""
    if not _TABLE:
        _TABLE.update(json.loads(TABLE_FILE.read_text(encoding="utf-8")) if TABLE_FILE.exists() else {"": None})
    key = _key(pattern, flags)
    if key in _TABLE:
        found = _TABLE[key]
        return None if found is None else tuple(found)
    return required_substrings(pattern, flags)


def heads_of(pattern: str, flags: int = 0) -> frozenset[str] | None:
    """word_heads, from the shipped table when the pattern is in it."""
    if not _TABLE:
        needs_of("", 0)
    key = "heads:" + _key(pattern, flags)
    if key in _TABLE:
        found = _TABLE[key]
        return None if found is None else frozenset(found)
    return word_heads(pattern, flags)


def write_table(patterns: list[tuple[str, int]], path: Path = TABLE_FILE) -> int:
    table = {}
    for p, f in patterns:
        found = required_substrings(p, f)
        table[_key(p, f)] = None if found is None else list(found)
        heads = word_heads(p, f)
        table["heads:" + _key(p, f)] = None if heads is None else sorted(heads)
    path.write_text(json.dumps(table, ensure_ascii=False, sort_keys=True, indent=0) + "\n", encoding="utf-8")
    return len(table)
