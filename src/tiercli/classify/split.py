"""Part 1 of the local classifier: which lines of a prompt are the instruction and which are pasted
material (code, diffs, tracebacks, logs, tool output), with the bounds that keep long prompts fast.
local.py's docstring describes the whole; `_split(text)` is what it reads.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from tiercli.classify.lazy import _Lazy

# ------------------------------------------------------------------------------------------------
# Bounds (keep long prompts fast: only a head and a tail of the text are looked at)
# ------------------------------------------------------------------------------------------------
_HEAD_CHARS = 6000
_TAIL_CHARS = 6000
_MAX_LINE = 400  # a longer single line is pasted data (minified JSON, one-line traces) unless it reads as prose
_EDGE_LINES = 150  # and at most this many lines from each end
_SEG_CHARS = 1000  # an instruction segment longer than this keeps its head and tail
_MAX_SEGMENTS = 6  # more prose segments than this: keep the first and last few

# ------------------------------------------------------------------------------------------------
# Part 1: separating the instruction from pasted material
# ------------------------------------------------------------------------------------------------
_FENCE = _Lazy(r"^\s*(```|~~~)")
_PASTE_START = _Lazy(
    r"""^(?:
        diff\ --git|index\ [0-9a-f]{6}|---\ |\+\+\+\ |@@\ |new\ file\ mode|Traceback\ \(|File\ "|\$\ |>>>\ |\#\d|\#!|
        npm\ (?:ERR|WARN)|-->|\d+\s*\||[{}\[\]<|>]|"[^"]*"\s*:|E\s{2,}|\.\.\.$|
        \d{4}-\d\d-\d\d|\[?\d\d:\d\d|\d{1,3}(?:\.\d{1,3}){3}\b|
        (?:error|warning|panic|fatal|note|help|caused\ by)(?:\[\w+\])?:|goroutine\ \d|created\ by\ |exit\ status\ \d|
        (?:FAILED|PASSED|ERROR|WARN|WARNING|INFO|DEBUG|FATAL|CRITICAL|DETAIL|HINT|SQL)\b[\s:\[]|
        (?:def|class|async\ def|func|fn|pub|impl|package|import|from\ [\w.]+\ import|return|const|let|var|export|
           function|
           public|private|protected|static|struct|type|module|require|elif|else|try|except|finally|raise|assert|with|
           while|for|if|switch|case|yield|await|lambda|print|console\.log|echo|cd|sudo|pip|npm|git|kubectl|docker)\b
           (?=.*[(){}\[\]=:;<>"'`$]|\s*$)|
        (?:SELECT|INSERT|UPDATE|DELETE|WITH|FROM|WHERE|JOIN|ORDER\ BY|GROUP\ BY|BEGIN|COMMIT|ALTER|CREATE|DROP|
           RUN|COPY|CMD|ENV|WORKDIR|EXPOSE|ENTRYPOINT)\b|
        (?:apiVersion|kind|metadata|spec|resource|variable|output|provider)\b\s*[:"{=]|
        [\w.-]+\.(?:py|js|jsx|ts|tsx|go|rs|java|kt|rb|php|c|cc|cpp|h|cs|scala|sql|ya?ml|json|toml|ini|cfg|sh)\b[:\s(]|
        [\w./\\-]+:\d+|(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Warning|Exit|Interrupt)\b:?|
        [-=_*~#+]{3,}|.*\.{4,}|-\s+[\w.-]+(?:\s[\w.-]+)?:\s*\S*$
    )""",
    re.X,
)
_DIFF_LINE = _Lazy(r"^(?:[ +\-@\\]|diff |index |new file|deleted file|similarity|rename (?:from|to))")
_DIFF_HEADER = _Lazy(r"^(?:diff --git|--- a/|\+\+\+ b/|@@ -\d)")
_TRACEBACK = _Lazy(
    r"Traceback \(most recent call last\)|^\s*File \"[^\"]+\", line \d+|^[\w.]*(?:Error|Exception)\b: |^panic: |"
    r"^\s+at [\w$.<>]+\(|^error\[E\d+\]|^npm ERR!|^goroutine \d+ \[|Segmentation fault|CrashLoopBackOff|"
    r"^\s*(?:Caused by|Exception in thread)",
    re.M,
)
_TEST_FAIL = _Lazy(r"^FAILED |^E\s{2,}assert|=+ \d+ failed|AssertionError|^--- FAIL:", re.M)
_LINT = _Lazy(r"\b[EFWC]\d{3,4}\b|\b(?:no-unused-vars|quotes|semi|indent)\s*$|\(invalid-name\)|\bI001\b|"
                   r"Imports are incorrectly sorted|\(indentation\)|hook id: ", re.M)
_DOCLINT = _Lazy(r"\bD1\d\d:? Missing docstring", re.M)
_COVERAGE = _Lazy(r"Stmts\s+Miss\s+Cover", re.M)
_LOGLINE = _Lazy(r"^(?:\[?\d{4}-\d\d-\d\d[T ]\d\d:\d\d|\d{1,3}(?:\.\d{1,3}){3} - |\{\"ts\")", re.M)
_PLAIN_TOKEN = _Lazy(r"^[(\"']?(?:[A-Za-z][a-z'’]*|[A-Z]{2,5}s?|\d+%?)[.,:;!?)\"']*$")
_NUM_TOKEN = _Lazy(r"^\d+[.,:;!?]*$")
_KEY_ONLY = _Lazy(r"^[\w.-]+:$")


def _plain_fraction(s: str) -> tuple[float, int]:
    toks = s.split()
    words = [t for t in toks if not _NUM_TOKEN.match(t)]
    if not words:
        return (1.0 if toks else 0.0), len(toks)
    plain = sum(1 for t in words if _PLAIN_TOKEN.match(t))
    return plain / len(words), len(words)


def _is_pasted(line: str, nxt: str) -> bool:
    """Does this (non-blank) line look like code, log, diff, traceback or tool output?"""
    if len(line) > _MAX_LINE:
        # a long line is data (minified JSON, one-line traces) unless it reads like a prose paragraph
        if line[:1].isspace():
            return True
        frac, n = _plain_fraction(line[:1200] + " " + line[-1200:])
        return n < 8 or frac < 0.75
    stripped = line.strip()
    indent = len(line) - len(line.lstrip())
    if indent >= 2 or line.startswith("\t"):
        return True
    if _PASTE_START.match(stripped):
        return True
    if _KEY_ONLY.match(stripped) and nxt[:1] in (" ", "\t", "-"):
        return True
    frac, n = _plain_fraction(stripped)
    if n >= 3:
        if frac < 0.5:
            return True
        if stripped[-1] in "{;,(=" and frac < 0.8:
            return True
        return False
    return frac < 0.6


@dataclass
class _Split:
    segments: list[tuple[str, float]]  # (instruction text, weight)
    paste_lines: int
    paste_sample: str  # bounded sample of the pasted material, for weak hints
    truncated: bool


def _bounded(text: str) -> tuple[str, bool]:
    if len(text) <= _HEAD_CHARS + _TAIL_CHARS + 2000:
        return text, False
    head = text[:_HEAD_CHARS]
    tail = text[-_TAIL_CHARS:]
    head = head[: head.rfind("\n") + 1] if "\n" in head else head
    tail = tail[tail.find("\n") + 1:] if "\n" in tail else tail
    return head + "\n\x00\n" + tail, True


def _split(text: str) -> _Split:
    body, truncated = _bounded(text)
    lines = body.split("\n")
    if len(lines) > 2 * _EDGE_LINES + 1:
        lines = lines[:_EDGE_LINES] + ["\x00"] + lines[-_EDGE_LINES:]
        truncated = True
    kinds: list[str] = []  # "p" prose, "c" pasted, "b" blank, "x" skipped middle
    in_fence = False
    in_diff = False
    n = len(lines)
    for i, line in enumerate(lines):
        if line == "\x00":
            kinds.append("x")
            continue
        if _FENCE.match(line):
            in_fence = not in_fence
            kinds.append("c")
            continue
        if in_fence:
            kinds.append("c")
            continue
        if not line.strip():
            kinds.append("b")
            continue
        if _DIFF_HEADER.match(line):
            in_diff = True
        elif in_diff and not _DIFF_LINE.match(line):
            in_diff = False
        if in_diff:
            kinds.append("c")
            continue
        nxt = lines[i + 1] if i + 1 < n else ""
        kinds.append("c" if _is_pasted(line, nxt) else "p")

    # group prose lines into segments; a segment is a run of prose lines (blank lines allowed)
    runs: list[tuple[int, int]] = []
    start = None
    last_prose = 0  # set together with start, read only while start is set
    for i, k in enumerate(kinds):
        if k == "p":
            if start is None:
                start = i
            last_prose = i
        elif k in ("c", "x"):
            if start is not None:
                runs.append((start, last_prose))
                start = None
    if start is not None:
        runs.append((start, last_prose))

    segments: list[tuple[str, float]] = []
    for idx, (a, b) in enumerate(runs):
        seg = " \n".join(lines[j] for j in range(a, b + 1) if kinds[j] == "p")
        before = any(k in ("c", "x") for k in kinds[:a])
        after = any(k in ("c", "x") for k in kinds[b + 1:])
        first_or_last = idx == 0 or idx == len(runs) - 1
        if before and after and not first_or_last:
            w = 0.3  # prose sandwiched in pasted material: probably part of it (log text, tool output)
        elif before and after:
            w = 0.8 if (b - a) < 3 else 0.6
        else:
            w = 1.0
        segments.append((seg, w))
    if len(segments) > _MAX_SEGMENTS:
        half = _MAX_SEGMENTS // 2
        segments = segments[:half] + segments[-half:]
    segments = [(seg if len(seg) <= _SEG_CHARS else seg[: _SEG_CHARS // 2] + " \n" + seg[-_SEG_CHARS // 2:], w)
                for seg, w in segments]
    if not segments:
        # no prose line at all: the first/last short non-code-looking line may still be the ask ("print package.json")
        cand = [i for i, k in enumerate(kinds) if k == "c" and len(lines[i]) < 120 and not lines[i][:1].isspace()
                and not _FENCE.match(lines[i]) and not _PASTE_START.match(lines[i].strip())]
        for i in sorted({cand[0], cand[-1]} if cand else set()):
            segments.append((lines[i], 0.5))
            kinds[i] = "p"
    paste_idx = [i for i, k in enumerate(kinds) if k == "c"]
    paste_lines = len(paste_idx)
    if truncated:
        paste_lines = max(paste_lines, text.count("\n") + 1 - sum(1 for k in kinds if k == "p"))
    sample = "\n".join(lines[i] for i in paste_idx[:150]) + "\n" + "\n".join(lines[i] for i in paste_idx[-150:]) \
        if paste_idx else ""
    return _Split(segments, paste_lines, sample, truncated)
