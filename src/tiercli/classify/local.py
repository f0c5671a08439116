"""Local task classifier: no LLM call, standard library only, deterministic and explainable.

    classify(text) -> LocalClassification(task_type, label, confidence, reasons)

How it works
------------
1. Instruction vs. pasted material. Each line is judged as prose or paste: code fences, diffs (tracked
   from their header), tracebacks and exception lines, log lines (timestamps, IPs, JSON), tool output
   (path:line, dot leaders, lint codes), indented or symbol-dense lines, lines that are mostly
   identifiers. Runs of prose lines become instruction segments; a segment sandwiched between pastes
   weighs 0.3-0.8 (it is often part of the paste), the first and last weigh 1.0. Long prompts are
   bounded: only the first and last 6,000 characters (and 150 lines at each end) are read, and at most
   1,000 characters per segment, so 40 KB costs about as much as 12 KB.
2. Normalisation. Identifiers are not instruction words: `backticks`, paths, file names, dotted and
   called names, snake_case/camelCase, quoted strings, flags and URLs become "xid" (exception names
   become "exceptionname", O(...) becomes "bigo", *.md files "xdocfile"). Negated clauses ("don't fix
   it yet", "no changes to the algorithm") are dropped, politeness ("can you", "please", "hey") is
   stripped from sentence heads and each head is marked, so rules can tell an imperative "fix ..."
   from a mention of "fix".
3. Evidence. ~90 weighted regex rules (verb at the head, object nouns, question forms, symptoms) and a
   few conjunctions (change verb + codebase-wide scope -> cross_refactor; build verb + algorithmic
   object -> algorithm; request verb + product noun -> feature; yes/no question + pasted code ->
   code_review; a statement of behaviour with no ask -> bug report). Pasted material adds weak evidence
   only: a traceback +1.5 bug_fix, failing tests +1.0, lint output +1.5 reformat, a diff +1.0
   code_review, coverage +1.5 test_gen, logs +0.5 bug_fix. Every firing rule is a reason.
4. Decision. The highest score wins (ties broken in taxonomy order); no evidence at all -> "feature"
   (MEDIUM, the configured default tier2) with confidence 0.1. Confidence = 0.3 + 0.65 * strength *
   (0.3 + 0.7 * margin), strength = 1 - exp(-top/4), margin = (top - second) / top.
5. Safety hedge (the one case where the label is not the taxonomy label of the type): when a LOW-labelled
   type wins but a HIGH-labelled type scores >= 0.75 of it (and >= 2.0), the label is raised to MEDIUM
   with confidence <= 0.35 and a "hedged" reason. A MEDIUM winner with HIGH evidence that close keeps
   its label but gets confidence <= 0.45 (below the hybrid threshold, so the LLM is asked).

Rules and a learned model (issue 15)
------------------------------------
The first version was rules only: 0.990 on its author's eval split, but 0.801 label accuracy and HIGH
recall 0.63 on a blind corpus written from the taxonomy table alone (tests/data/blind). Two changes:
- families.py adds rules for the phrasing families the blind tune part exposed (pasted shell commands,
  verbless repo questions, distributed-consistency and every-layer changes as HIGH, textbook
  algorithms as feature, behaviour-preserving codebase-wide edits as reformat);
- model.py re-weighs the rules' evidence with a linear model over hashed n-grams of the instruction
  (trained by train.py on the old corpora and the blind tune part; calibrated confidence).
`classify` is rules + model; `classify_rules` the rules alone. Figures: benchmarks/classify.py (README,
"The local classifier"). The old corpus and these rules share an author, so its figures flatter.

Known weaknesses: English only (other languages get low confidence); the instruction must be in the
first or last 6 KB; a "fix it" that refers to an object named in an earlier sentence reads as
bug_fix; tasks that are both a design and a migration can come out as the other HIGH type; "explain
this code" has no type of its own; novel test design is test_gen (MEDIUM) like the taxonomy says.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from tiercli.classify import families, rules
from tiercli.classify.result import LocalClassification, RuleAnalysis
from tiercli.taxonomy import LABEL_OF_TASK_TYPE, TASK_TYPES

__all__ = ["LocalClassification", "RuleAnalysis", "analyse", "classify", "classify_rules"]


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


def all_patterns() -> list[tuple[str, int]]:
    """Every regex of the rules, as (pattern, flags): what prefilter_table.json covers."""
    found = [(rx._p, rx._f) for _, _, rx in _RULES]
    found += [(v._p, v._f) for v in globals().values() if isinstance(v, _Lazy)]
    return sorted(set(found))


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


# ------------------------------------------------------------------------------------------------
# Part 2: normalising the instruction (identifiers are not instruction words)
# ------------------------------------------------------------------------------------------------
_KEEP = {
    "javascript", "typescript", "graphql", "postgresql", "rabbitmq", "camelcase", "pascalcase", "snake_case",
    "snakecase", "kebab-case", "github", "gitlab", "mysql", "mongodb", "nodejs", "pep8", "flake8", "s3", "p99",
    "p50", "k8s", "e2e", "utf8", "utf-8", "python2", "python3", "py3", "es6", "oauth2", "base64", "sha256",
    "o(1)", "o(n)", "o(n^2)", "o(n^3)", "o(n2)", "o(log n)", "o(n log n)", "b+", "a*", "i18n", "x86_64",
    "dockerfile", "makefile", "readme", "jsdoc", "tsdoc", "godoc", "rustdoc", "javadoc", "pytest", "eslint",
}
_BIGO = _Lazy(r"\bO\((?:1|n|log n|n log n|n\^?2|n\^?3|n\*n|2\^n|k|m\s*\*\s*n|n\s*\*\s*m)\)", re.I)
_BACKTICK = _Lazy(r"`[^`\n]{1,200}`")
_URL = _Lazy(r"\bhttps?://\S+")
_DQUOTE = _Lazy(r"\"[^\"\n]{1,80}\"|“[^”\n]{1,80}”")
_SQUOTE = _Lazy(r"(?<![\w])'[^'\n]{1,60}'(?![\w])")
_FLAG = _Lazy(r"(?<![\w-])--?[A-Za-z][\w-]*")
_PATHLIKE = _Lazy(r"(?:[~.]?/)?[\w.@-]+(?:/[\w.@*-]+)+/?|[\w-]+\.(?:py|js|jsx|ts|tsx|go|rs|java|kt|rb|php|c|h|cpp|cs|"
                       r"ya?ml|json|toml|md|txt|sql|sh|cfg|ini|env|example|html|css|scss|lock|xml|tf|proto|csv|"
                       r"ipynb|log|conf|properties|gradle|jsonl)\b")
_SLASH_PAIR = _Lazy(r"\b([A-Za-z]+)/([A-Za-z]+)\b")


_CAMEL = _Lazy(r"^(?:[a-z]+[A-Z]|[A-Z][a-z0-9]+[A-Z])")


def _identifierish(tok: str) -> bool:
    if tok.isalpha() and (tok.islower() or tok.isupper() or tok[0].isupper() and tok[1:].islower()):
        return False  # a plain word (most tokens): no digit, dot, underscore or inner capital
    low = tok.lower()
    if low in _KEEP:
        return False
    core = tok.strip(".,:;!?()'’")
    if not core:
        return False
    if "_" in core or "(" in tok or ")" in tok or "=" in tok:
        return True
    if "." in core and not core.endswith("."):
        return True
    if any(c.isdigit() for c in core) and not core.isdigit():
        return True
    if _CAMEL.match(core):
        return True
    return False


_EXC_NAME = _Lazy(r"\b(?:[A-Za-z_][\w.]*)?(?:Error|Exception|Panic)\b")


def _path_token(m: re.Match) -> str:
    p = m.group(0)
    low = p.lower()
    if low in _KEEP:
        return p
    if low.endswith((".md", ".rst", ".adoc")) or low.endswith(".txt") and "readme" in low:
        return " xdocfile "  # a documentation file: editing it is documentation work
    return " xid "


_APPROX = _Lazy(r"(?<![\w~])[~≈] ?(?=\d)")  # "~120 components": a count, not an identifier


def _strip_identifiers(s: str) -> str:
    s = _sub(_APPROX, " about ", s)
    s = _sub(_BIGO, " bigo ", s)
    s = _sub(_EXC_NAME, " exceptionname ", s)
    s = _sub(_BACKTICK, " xid ", s)
    s = _sub(_URL, " xid ", s)
    s = _sub(_DQUOTE, " xid ", s)
    s = _sub(_SQUOTE, " xid ", s)
    s = _sub(_FLAG, " xflag ", s)
    s = _sub(_SLASH_PAIR, lambda m: m.group(0) if m.group(0).lower() in _KEEP else f"{m.group(1)} / {m.group(2)}", s)
    s = _sub(_PATHLIKE, _path_token, s)
    out = []
    for tok in s.split():
        if _identifierish(tok):
            trail = tok[-1] if tok[-1] in ".,:;!?" else ""
            out.append("xid" + trail)
        else:
            out.append(tok)
    return " ".join(out)


_SENT_SPLIT = _Lazy(r"(?:(?<=[.!?;])(?=\s|$)|:\s|\n|\s[-–—]{1,2}\s|\(\s*\d+\s*\)|^\s*\d+[.)]\s)")
_POLITE = _Lazy(
    r"^(?:(?:please|pls|plz|kindly|hey|hi|hello|ok|okay|so|now|also|and|then|quick(?:ly)?|just|first|finally|"
    r"can you|could you|would you|will you|can u|could u|pls can you|i need you to|i want you to|i'd like you to|"
    r"i would like you to|i'd like to|go ahead and|let's|lets|help me|we need to|i need to|need to|you should|"
    r"try to|could someone|can someone|can somebody|someone|folks|team|guys|ok so|alright|right|"
    r"i'd like|i want to|we want to|i need to see|tell me|quick question|remind me|quick q)\b[\s,!]*)+"
)
_NEGATED = _Lazy(
    r"\b(?:don'?t|do not|dont|never mind|please don'?t)\s+(?:fix|change|touch|modify|refactor|edit|implement|rewrite|"
    r"worry about|add|update)\b[^.,:;!?\n]*|\bno (?:other |logic |code )?changes?\b[^.,:;!?\n]*|\bnothing else\b|"
    r"\bwithout (?:changing|touching|modifying)\b[^.,:;!?\n]*|\bleave the rest\b"
)


_NAMED_THING = _Lazy(
    r"\b(the|this|our|my) (\w+) (command|script|endpoint|tool|generator|job|page|function|helper|worker|decorator|"
    r"parser|subcommand|cli|button|view|handler|route|service|module|class|method)\b"
)


def _normalise(segment: str) -> str:
    """Lower-cased instruction with identifiers replaced by 'xid' and '§' marking each sentence head."""
    s = segment.replace("’", "'").replace("‘", "'").replace("§", " ")
    s = _strip_identifiers(s)
    s = s.lower()
    s = _sub(_NEGATED, " ", s)
    s = _sub(_NAMED_THING, r"\1 xid \3", s)
    parts = _SENT_SPLIT.split(s)
    heads = []
    for p in parts:
        p = p.strip(" ,*#>-\t.;")
        if not p:
            continue
        p = _sub(_POLITE, "", p)
        heads.append("§ " + p)
    return " ".join(heads)


# ------------------------------------------------------------------------------------------------
# Part 3: weighted evidence
# ------------------------------------------------------------------------------------------------
# The weighted rules are in rules.py (their conventions are in its docstring).
_SCOPE, _CHANGE_VERBS, _ALGO_NOUNS = rules.SCOPE, rules.CHANGE_VERBS, rules.ALGO_NOUNS
_FEATURE_VERBS, _FEATURE_NOUNS = rules.FEATURE_VERBS, rules.FEATURE_NOUNS
_RULES_SRC = rules.RULES_SRC + families.RULES_SRC  # the issue-15 families (classify/families.py)
_RULES = [(t, w, _Lazy(p)) for t, w, p in _RULES_SRC]
_ALGO_RE = _Lazy(rf"(?<!\w)(?:{_ALGO_NOUNS})(?!\w)")
_ALGO_VERB_RE = _Lazy(r"§ (?:implement|design|devise|come up with|work out|derive|write|find|make|solve|"
                           r"compute|how (?:can|do|should) we (?:solve|compute))\b")
_SCOPE_RE = _Lazy(rf"\b(?:{_SCOPE})\b")
_CHANGE_RE = _Lazy(rf"\b(?:{_CHANGE_VERBS})\b")
_PRESERVING_RE = _Lazy(families.PRESERVING)
_DOC_REQUEST_RE = _Lazy(families.DOC_REQUEST)
_FEATURE_VERB_RE = _Lazy(_FEATURE_VERBS)
_FEATURE_NOUN_RE = _Lazy(_FEATURE_NOUNS)
_YESNO_RE = _Lazy(r"§ (?:is|are|does|do|can|could|would|will|should|any|anything|am i|did i)\b")
_REQUEST_HEAD = _Lazy(
    r"§ (?:add|implement|write|create|make|build|fix|find|show|list|search|grep|review|check|explain|design|plan|"
    r"propose|migrate|rename|move|convert|refactor|update|change|remove|delete|replace|sort|format|reformat|"
    r"document|test|generate|open|print|where|what|which|why|how|who|when|is|are|can|could|would|should|does|do|"
    r"did|any|give|tell|help|let|allow|support|use|get|run|set|put|turn|switch|upgrade|port|split|extract|"
    r"clean|tidy|indent|wrap|strip|we need|i need|we want|i want|users should|need|look|go|try|consider|"
    r"remind|see|apply|bump|drop|keep|make sure|ensure|pick|choose|decide|evaluate|compare|audit|count|"
    r"scan|enumerate|annotate|comment|pretty|minify|dedent|align|normali[sz]e|lowercase|uppercase)\b"
)
_DECLARATIVE = _Lazy(r"§ (?:the|our|my|this|that|these|those|it|its|it's|when|after|since|users?|customers?|"
                     r"everything|nothing|some|all|xid \w+s|\w+ (?:is|are|was|were|keeps|shows|returns|gives|"
                     r"fails|crashes))\b")
_ASK_ANYWHERE = _Lazy(r"\b(?:can you|could you|would you|please|pls|plz|help|need you|want you|let's|i need|we need|"
                      r"i want|we want|should)\b|\?")
_SYMPTOM = _Lazy(r"\b(?:shows?|returns?|gives?|displays?|crash\w*|fails?|breaks?|throws?|hangs?|loses?|drops?|"
                 r"ignores?|duplicat\w*|twice|wrong|never|always|stuck|missing|empty|blank|same)\b")
_PRIOR = {"feature": 0.2, "bug_fix": 0.1}

# weak hints from pasted material: (type, weight, reason)
_PASTE_HINTS = (
    (_TRACEBACK, "bug_fix", 1.5, "traceback/error pasted"),
    (_TEST_FAIL, "bug_fix", 1.0, "failing test output pasted"),
    (_LINT, "reformat", 1.5, "linter output pasted"),
    (_DOCLINT, "docstring", 2.0, "missing-docstring lint pasted"),
    (_COVERAGE, "test_gen", 1.5, "coverage report pasted"),
    (_LOGLINE, "bug_fix", 0.5, "log lines pasted"),
)
_DIFF_ANY = _Lazy(r"^(?:diff --git|@@ -\d|--- a/)", re.M)


def _short(m: re.Match) -> str:
    s = m.group(0).replace("§", "").strip()
    return s if len(s) <= 28 else s[:25] + "..."


def _score(split: _Split) -> tuple[dict[str, float], list[tuple[float, str, str]], list[tuple[str, float]]]:
    from tiercli.classify.prefilter import text_heads  # here, not at import: keeps the import cheap

    scores = {t: _PRIOR.get(t, 0.0) for t in TASK_TYPES}
    evidence: list[tuple[float, str, str]] = []  # (weight, type, reason)
    normed = [(_normalise(seg), sw) for seg, sw in split.segments]
    for norm, sw in normed:
        if not norm:
            continue
        seen: dict[str, re.Match | None] = {}  # pattern -> its search in this segment (some rules share one)
        heads = text_heads(norm)
        for t, w, rx in _RULES:
            m = seen[rx._p] = _search(rx, norm, heads)
            if m:
                scores[t] += w * sw
                evidence.append((w * sw, t, f'"{_short(m)}" -> {t}'))
        # conjunctions
        scope = _seen(_SCOPE_RE, norm, seen, heads)
        preserving = _seen(_PRESERVING_RE, norm, seen, heads) if scope else None
        change = _seen(_CHANGE_RE, norm, seen, heads) if scope and not preserving else None
        if preserving:
            m = preserving
            scores["reformat"] += 4.5 * sw
            evidence.append((4.5 * sw, "reformat", f'"{_short(m)}" across the codebase: behaviour-preserving -> reformat'))
        elif change:
            m = change
            scores["cross_refactor"] += 4.5 * sw
            evidence.append((4.5 * sw, "cross_refactor",
                             f'change "{_short(m)}" + codebase-wide scope -> cross_refactor'))
        if _seen(_FEATURE_VERB_RE, norm, seen, heads) and _seen(_FEATURE_NOUN_RE, norm, seen, heads):
            scores["feature"] += 1.5 * sw
            evidence.append((1.5 * sw, "feature", "request verb + product noun -> feature"))
        if split.paste_lines and _seen(_YESNO_RE, norm, seen, heads):
            scores["code_review"] += 1.5 * sw
            evidence.append((1.5 * sw, "code_review", "yes/no question about pasted code -> code_review"))
        if (_seen(_ALGO_RE, norm, seen, heads) and _seen(_ALGO_VERB_RE, norm, seen, heads)
                and not _search(_DOC_REQUEST_RE, norm, heads)):
            scores["algorithm"] += 2.0 * sw
            evidence.append((2.0 * sw, "algorithm", "build/design verb + algorithmic object -> algorithm"))
    joined = " ".join(n for n, _ in normed)
    if (joined and _DECLARATIVE.search(joined) and not _REQUEST_HEAD.search(joined)
            and not _ASK_ANYWHERE.search(joined) and _SYMPTOM.search(joined)):
        scores["bug_fix"] += 1.5
        evidence.append((1.5, "bug_fix", "describes behaviour without an ask -> bug report"))
    if split.paste_lines:
        sample = split.paste_sample
        for rx, t, w, why in _PASTE_HINTS:
            if rx.search(sample):
                scores[t] += w
                evidence.append((w, t, f"{why} ({split.paste_lines} lines) -> weak {t}"))
        if _DIFF_ANY.search(sample):
            scores["code_review"] += 1.0
            evidence.append((1.0, "code_review", f"diff pasted ({split.paste_lines} lines) -> weak code_review"))
    return scores, evidence, normed


# ------------------------------------------------------------------------------------------------
# Part 4: decision, confidence, safety hedge
# ------------------------------------------------------------------------------------------------
_FALLBACK = "feature"  # no evidence: MEDIUM (tier2 is the configured default tier)
_HEDGE_RATIO = 0.75
_CONF_FLOOR, _CONF_SPAN = 0.3, 0.65  # maps raw evidence to 0.3..0.95 (fitted on held-out probes, see docstring)


def classify(text: str) -> LocalClassification:
    """The local classifier: the rules below, re-weighed by the shipped linear model when present."""
    from tiercli.classify import model

    return model.decide(analyse(text))


def instruction(text: str) -> str:
    """The prose the rules read as the instruction (pasted material left out); the text itself when none."""
    segments = _split(text if isinstance(text, str) else str(text)).segments
    return "\n".join(seg for seg, _ in segments) if segments else text


def classify_rules(text: str) -> LocalClassification:
    """The rules alone (no learned model)."""
    return analyse(text).result


def analyse(text: str) -> RuleAnalysis:
    if not isinstance(text, str):
        text = str(text)
    split = _split(text)
    scores, evidence, normed = _score(split)
    joined = " ".join(n for n, _ in normed)
    for w, t, why in families.extra_evidence(text, joined):
        scores[t] += w
        evidence.append((w, t, why))
    if all(v <= _PRIOR.get(t, 0.0) for t, v in scores.items()) and families.short_question(text, joined):
        scores["file_lookup"] += 1.5
        evidence.append((1.5, "file_lookup", "short ask with no action word -> lookup"))
    ranked = sorted(scores.items(), key=lambda kv: (-kv[1], TASK_TYPES.index(kv[0])))
    (top, s1), (second, s2) = ranked[0], ranked[1]
    reasons: list[str] = []
    prior = _PRIOR.get(top, 0.0)
    if s1 - prior <= 0.0:
        top = _FALLBACK
        reasons.append("no recognisable instruction -> default (MEDIUM)")
        conf = 0.1
        label = LABEL_OF_TASK_TYPE[top]
    else:
        label = LABEL_OF_TASK_TYPE[top]
        strength = 1.0 - math.exp(-s1 / 4.0)  # how much evidence the winner has
        margin = (s1 - s2) / s1  # how clearly it beats the runner-up
        conf = _CONF_FLOOR + _CONF_SPAN * strength * (0.3 + 0.7 * margin)
        best_high = max((v for t, v in scores.items() if LABEL_OF_TASK_TYPE[t] == "HIGH"), default=0.0)
        if label == "LOW" and best_high >= _HEDGE_RATIO * s1 and best_high >= 2.0:
            # safety bias: never send a HIGH-looking task to LOW on thin evidence; meet it halfway
            label = "MEDIUM"
            conf = min(conf, 0.35)
            reasons.append("HIGH-type evidence close to the LOW winner -> hedged to MEDIUM")
        elif label == "MEDIUM" and best_high >= _HEDGE_RATIO * s1 and best_high >= 2.0:
            conf = min(conf, 0.45)
            reasons.append("HIGH-type evidence close behind -> low confidence")
    mine: list[str] = []
    for _, _, r in sorted((e for e in evidence if e[1] == top), key=lambda e: -e[0]):
        if r not in mine:
            mine.append(r)
    reasons = mine[:4] + reasons
    other = [e for e in evidence if e[1] != top and "pasted" in e[2]][:1]
    reasons += [r for _, _, r in other]
    if split.paste_lines and not any("pasted" in r for r in reasons):
        sampled = ", head+tail read" if split.truncated else ""
        reasons.append(f"pasted material ({split.paste_lines} lines{sampled}) -> context, not task")
    if second and s2 > 0 and top != second and s2 >= 0.6 * s1:
        reasons.append(f"runner-up: {second} ({s2:.1f} vs {s1:.1f})")
    result = LocalClassification(top, label, round(max(0.0, min(1.0, conf)), 3), tuple(reasons))
    return RuleAnalysis(result, scores, tuple(normed), tuple(evidence), split.paste_lines, s1 - prior <= 0.0)
