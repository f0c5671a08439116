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

Where each part lives: 1 in split.py, 2, 4 and 5 here, 3's rules in rules.py and families.py (the
conjunctions here), and the lazily compiled, prefiltered regexes all of them use in lazy.py.

Rules and a learned model (issue 15)
------------------------------------
The first version was rules only: 0.990 on its author's eval split, but 0.801 label accuracy and HIGH
recall 0.63 on a blind corpus written from the taxonomy table alone (tests/data/blind). Two changes:
- families.py adds rules for the phrasing families the blind tune part exposed (pasted shell commands,
  verbless repo questions, distributed-consistency and every-layer changes as HIGH, textbook
  algorithms as feature, behaviour-preserving codebase-wide edits as reformat);
- model.py re-weighs the rules' evidence with a linear model over hashed n-grams of the instruction
  (trained by train.py on the old corpora, the blind tune part and the prompts of the taxonomy-only
  writers C-V but their holdout halves; calibrated confidence).
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

from tiercli.classify import families, rules
from tiercli.classify.lazy import _Lazy, _search, _seen, _sub
from tiercli.classify.result import LocalClassification, RuleAnalysis
from tiercli.classify.split import _COVERAGE, _DOCLINT, _LINT, _LOGLINE, _TEST_FAIL, _TRACEBACK, _Split, _split
from tiercli.taxonomy import LABEL_OF_TASK_TYPE, TASK_TYPES

__all__ = ["LocalClassification", "RuleAnalysis", "analyse", "classify", "classify_rules"]


def all_patterns() -> list[tuple[str, int]]:
    """Every regex of the rules, as (pattern, flags): what prefilter_table.json covers."""
    return sorted({(rx._p, rx._f) for rx in all_lazies()})


def all_lazies() -> list[_Lazy]:
    """Every regex object of the classifier: the rules and the module-level ones here and in split.py."""
    from tiercli.classify import split

    found = [rx for _, _, rx in _RULES]
    for namespace in (globals(), vars(split)):
        found += [v for v in namespace.values() if isinstance(v, _Lazy)]
    return found


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
