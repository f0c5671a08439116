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


def write_table(patterns: list[tuple[str, int]], path: Path = TABLE_FILE) -> int:
    table = {}
    for p, f in patterns:
        found = required_substrings(p, f)
        table[_key(p, f)] = None if found is None else list(found)
    path.write_text(json.dumps(table, ensure_ascii=False, sort_keys=True, indent=0) + "\n", encoding="utf-8")
    return len(table)
