"""Regexes compiled on first use and skipped when they cannot match: what every part of the local
classifier (split.py, local.py) searches with."""

from __future__ import annotations

import re


class _Lazy:
    """A regex compiled on first use (keeps `import tiercli.classify.local` cheap). After the first
    call the bound methods of the compiled pattern sit on the instance, so later calls cost nothing extra.
    `needs`: substrings one of which every match contains (prefilter.py), or None; `_search`/`_sub`
    skip the regex when none is in the text (same result, most of the rules' searches fail). Read from
    the shipped table (classify/prefilter_table.json), worked out only for a pattern not in it; reading
    them does not compile the regex, so a rule the prefilter always skips is never compiled. `heads`: the
    word starts every match begins with (prefilter.word_heads), or None."""

    __slots__ = ("_p", "_f", "search", "match", "sub", "split", "finditer", "findall", "needs", "heads")

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._p = pattern
        self._f = flags

    def __getattr__(self, name: str):
        if name in ("_p", "_f"):
            raise AttributeError(name)
        if name in ("needs", "heads"):
            from tiercli.classify.prefilter import heads_of, needs_of

            self.needs = needs_of(self._p, self._f)
            self.heads = heads_of(self._p, self._f)
            return getattr(self, name)
        rx = re.compile(self._p, self._f)
        for m in ("search", "match", "sub", "split", "finditer", "findall"):
            setattr(self, m, getattr(rx, m))
        return getattr(self, name)


def _absent(rx: _Lazy, s: str) -> bool:
    """True when `rx` cannot match in `s`: none of the substrings its matches need is there."""
    needs = rx.needs
    if needs is None:
        return False
    for n in needs:
        if n in s:
            return False
    return True


def _search(rx: _Lazy, s: str, heads: set[str] | None = None) -> re.Match | None:
    """rx.search(s), skipped when it cannot match: `heads` (prefilter.text_heads(s)) holds none of the
    word starts every match of rx begins with, or s holds none of the substrings every match contains."""
    if heads is not None:
        need = rx.heads
        if need is not None and need.isdisjoint(heads):
            return None
    return None if _absent(rx, s) else rx.search(s)


def _seen(rx: _Lazy, s: str, seen: dict[str, re.Match | None], heads: set[str] | None = None) -> re.Match | None:
    """_search, reusing the result of a rule with the same pattern on the same text."""
    return seen[rx._p] if rx._p in seen and not rx._f else _search(rx, s, heads)


def _sub(rx: _Lazy, repl, s: str) -> str:
    return s if _absent(rx, s) else rx.sub(repl, s)
