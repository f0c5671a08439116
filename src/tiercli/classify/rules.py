"""The local classifier's weighted rules (local.py reads them): each (task_type, weight, regex) adds
its weight to its type's score when it matches an instruction segment, at most once per segment.

Kept apart from local.py (which splits the text, normalises it and decides) so each stays readable;
the issue-15 families are in families.py. Rules read the normalised instruction: lower case,
identifiers replaced by "xid", "§ " marking the head of a sentence (after politeness), so "§ fix" is
an imperative "fix". Plain strings only: local.py compiles them lazily, and prefilter_table.json holds
each pattern's required substrings keyed by its exact text (`python -m tiercli.classify.train
--prefilter-table` after an edit).
"""

from __future__ import annotations

S = r"[^§]"  # within one sentence
FIX_OBJECT_WORDS = (r"format|lint|indent|flake8|eslint|ruff|pylint|isort|typos?\b|docstring|comment|whitespace|"
                     r"import order|quotes|semi|naming|style|doctest|pre-commit|black\b|prettier|pep ?8|line length|"
                     r"long lines|violations")
NOT_FIX_SENTENCE = rf"(?!{S}*\b(?:{FIX_OBJECT_WORDS}))"
ALGO_NOUNS = (
    r"algorithms?|algorithmic|bigo|complexity|quadratic|cubic|lock-free|wait-free|ring buffer|interval tree|"
    r"b\+ ?trees?|red-black|segment tree|fenwick|tries?|trie-based|suffix (?:tree|array)|crdts?|bloom filter|"
    r"consistent hashing|virtual nodes|t-digest|hyperloglog|count-min|raft|paxos|leader election|log replication|"
    r"myers|diff algorithm|dijkstra|a\*|shortest paths?|shortest cycle|nearest neighbou?rs?|knn|lsh|"
    r"locality[- ]sensitive|edit distance|levenshtein|fuzzy matching|topological|cycles? in|detect cycles|"
    r"dependency resolver|sat solver|makespan|bin packing|knapsack|scheduling algorithm|external (?:merge )?sort|"
    r"merge sort|dynamic programming|np-hard|tidy tree|streaming algorithm|bounded memory|sliding window|"
    r"amortized|occupancy|maximi[sz]ed?|minimi[sz]ing|minimal set|data structure|heuristic|palindrom\w*|"
    r"substrings?|subsequences?|permutations|bipartite|matching problem|max(?:imum)? flow|min(?:imum)? cut|"
    r"spanning tree|pathfind\w*|path ?finding|percentiles?|quantiles?|reservoir sampling|rolling median|top-k|"
    r"linear time|constant time|logarithmic|sub-?linear|optimal(?:ly)?|optimi[sz]ation problem|approximation|"
    r"backtracking|branch and bound|memoi[sz]\w*|skip ?list|hashing scheme|compression algorithm|graph search|"
    r"probabilistic|space-efficient|memory-efficient|cardinality|distinct count|fuzzy search|typo[- ]tolerant|"
    r"matching engine|order book|price-time|solver|eviction policy|lfu|minimum number of|fewest|edit script|"
    r"minim(?:um|al) (?:edit|cost|spanning|cut|set|path|distance|patch|diff)|minhash|simhash|near-duplicates?|"
    r"(?:million|billion)s? (?:of )?(?:\w+ )?(?:rows|records|items|names|vectors|events|keys|documents|users)"
)
SCOPE = (
    r"everywhere|across (?:the |all |our |every |both )?(?:whole |entire )?(?:[\w']+ ){0,2}(?:codebase|code base|"
    r"repo|repos|repositories|services|modules|packages|app|monorepo|project|frontend|backend|teams)|"
    r"(?:the )?whole (?:[\w.]+ )?(?:codebase|code base|app|frontend|backend|repo|project|monorepo)|"
    r"entire (?:[\w.]+ )?(?:codebase|code base|app|repo|project|frontend|backend)|"
    r"across all (?:of (?:the |our )?[\w./-]+|(?:\w+ )?environments|(?:\w+ )?envs)|"
    r"(?:all|every) (?:the |our |of the )?(?:services?|modules?|repos?|repositories|packages?|callers?|call sites|"
    r"imports?|node services|components|test classes|our repos)|in all (?:\w+ )?(?:services|modules|repos)|"
    r"\d+ (?:modules|files|call sites|services|repos|repositories|packages|components)|all (?:our|the) repos|"
    r"all over the codebase|every caller|throughout (?:the |our )?(?:whole |entire )?(?:codebase|code|"
    r"project|repo|app|services)|(?:codebase|repo|project)-wide|in every (?:module|file|service|repo|package)|"
    r"scattered (?:across|through|throughout|all over)|across the code|"
    r"(?:every|all) (?:\w+ ){0,3}(?:in|across|throughout) (?:the |our )?(?:app|application|codebase|code|repo|project)|"
    r"(?:all|every) (?:the )?layers?|across (?:the )?(?:schema|stack|layers|workspace)|(?:whole|entire) (?:workspace|stack)|"
    r"in the monorepo|all the project|\d+ (?:crates|tables|endpoints)|"
    r"(?:all|every) (?:the )?(?:tables?|endpoints?|clients?|consumers?|producers?|sdks?|crates?)|"
    r"(?:all |every )?(?:the )?code (?:that|which) (?:reads|writes|uses|calls)"  # a change that spans the layers
)
CHANGE_VERBS = (
    r"migrat\w*|renam\w*|replac\w*|mov(?:e|ing)|convert\w*|refactor\w*|restructur\w*|unify|extract\w*|split\w*|"
    r"upgrad\w*|switch\w*|port|update every|change (?:the |all )|move from|finish the|swap\w*|drop\w*|get rid of|"
    r"distribut\w*|rewrit\w*|chang\w*|get (?:us |me |them |it )?off|onto"
)

FEATURE_VERBS = (r"§ (?:add|implement|support|create|build|make|let|allow|enable|introduce|expose|integrate|"
                     r"set up|setup|extend|convert)\b")
FEATURE_NOUNS = (r"\b(?:endpoint|flag|option|button|toggle|checkbox|page|column|subcommand|command|field|hook|"
                     r"counter|metrics?|notification|export|importer|pagination|paginated|cache|caching|"
                     r"rate limit\w*|translations?|i18n|webhooks?|validation|compression|uploads?|dark mode|undo|"
                     r"soft delete|password reset|feature|support for|ability to|form|dialog|components?|"
                     r"state management|retry|backoff|xlsx|localstorage|remember me|slack|configurable|settings?|"
                     r"preferences?|progress bar|screen|modal|tab|menu|filter|search box|login with|sso login|"
                     r"toast|banner|"
                     r"tooltip|spinner|popup|summary table)\b")

RULES_SRC: list[tuple[str, float, str]] = [
    # ---- file_lookup
    ("file_lookup", 3.0, r"§ where(?:'s|'d|s| is| are| do| does| did| can| exactly| the| our| my| we| i|"
                         r" you)\b(?! else)"),
    ("file_lookup", 1.5, r"\bwhere(?:'s| is| are| do we| does| did)\b(?! else)"),
    ("file_lookup", 3.0, r"\bwhich (?:file|module|directory|folder|dir|package|class|env file|test file|"
                         r"service's env file|ya?ml|json|toml|ini|config|script|dockerfile|manifest|chart|template|"
                         r"migration|env var|setting)\b"),
    ("file_lookup", 2.5, r"\bwhat(?:'s| does| do)? (?:our|the|my) [\w ]{1,30} look like\b(?! once| after| when| if)|"
                         r"\bpaste (?:it|them|that|the \w+) here\b"),
    ("file_lookup", 2.5, r"§ list (?:the |all the |me the )?(?:files|contents|directory|dir|folder|targets)\b"),
    # counterparts of the file_lookup verbs: "list <things>" is a search, "show a <toast>" is UI work
    ("search", 2.0, r"§ list\b(?! (?:the |all the |me the )?(?:files|contents|directory|dir|folder|targets)\b)"),
    ("feature", 2.5, r"§ (?:show|display) (?:a|an)\b"),
    ("file_lookup", 2.5, r"§ (?:show|print|cat|open|read|display|view|ls|see|pull up|bring up|dump|"
                         r"peek at)\b(?! (?:a|an)\b)(?! (?:me )?(?:all|every|each|any|the "
                         r"(?:places|callers|usages|occurrences|call sites|references)))"),
    ("file_lookup", 2.5, r"\b(?:locate|point me (?:to|at))\b"),
    ("file_lookup", 2.0, r"\bwhat(?:'s|s| is) in\b|\bwhat (?:port|version|value)\b|\bdefault value\b|"
                         r"\bdefaults? to\b|\bset to\b|\bpinned\b"),
    ("file_lookup", 2.5, r"§ find (?:me )?(?:the\b[^§]{0,30}\b(?:file|module|definition|config|directory)|"
                         r"where\b(?! else))"),
    ("file_lookup", 1.0, r"\b(?:defined|declared|implemented|configured|registered|instantiated|created|loaded|"
                         r"stored|lives?|located|defines|declares|registers)\b"),
    ("file_lookup", 1.0, r"\b(?:file|config|configuration|directory|folder|path|contents|entry point|makefile|"
                         r"dockerfile|readme|template)\b"),
    ("file_lookup", 1.5, r"\bis there an? \w+\b"),
    ("file_lookup", 2.0, r"\b(?:where (?:can|could|would) i find|name of the file|which \w+ (?:file|module|"
                         r"package|folder)|"
                         r"comes? from|what file|in which (?:file|module|directory|folder))\b"),
    # ---- search
    ("search", 3.0, r"\b(?:find|list|show(?: me)?|search(?: for)?|look for|grep(?: for)?|count|check|enumerate|"
                    r"collect|catalog(?:ue)?)\b (?:all|every|any|each)\b"),
    ("search", 2.0, r"\b(?:look (?:through|across|in|over) the (?:repo|codebase|code|project|source)|"
                    r"places (?:that|where|which)|how many (?:places|files|times|calls|modules|usages)|"
                    r"(?:any|all) remaining|remaining (?:references|usages|uses|calls)|"
                    r"(?:every|all (?:the )?)(?:routes?|endpoints?|functions?|files?|places?|calls?|usages?|tests?|"
                    r"classes|components?|quer(?:y|ies)|handlers?|instances?) (?:that|which|where|without|with|in)\b)"),
    ("search", 3.0, r"\bgrep\b"),
    ("search", 2.5, r"§ (?:search|look for|scan)\b"),
    ("search", 2.0, r"\bsearch (?:for|the|across|through)\b"),
    ("search", 2.5, r"\b(?:usages|usage of|occurrences?|call sites?|callers|references|instances)\b"),
    ("search", 2.0, r"\b(?:is|are|where) (?:xid |it |this |that )?(?:still )?(?:called|used|referenced|imported|"
                    r"invoked) (?:from|in|by)\b"),
    ("search", 2.5, r"\b(?:used|referenced|imported|called|mentioned|imports?) (?:anywhere|elsewhere|outside)\b"),
    ("search", 2.0, r"\b(?:anywhere|elsewhere|where else|where all|all the places|every place|any places?|"
                    r"other places|the full list)\b"),
    ("search", 2.5, r"\bwhat calls\b"),
    ("search", 2.5, r"§ list (?:the |all )?(?:places|callers|usages|occurrences|call sites|references)\b"),
    ("search", 3.0, r"\bwhich (?:\w+ )?(?:files|modules|tests|endpoints|components|classes|services|functions|"
                    r"places|handlers|routes|views|jobs|tasks|queries|models|pages|scripts|controllers|callers|"
                    r"packages|repos|migrations|templates|hooks)\b"),
    ("search", 2.0, r"\b(?:do we still use|still (?:use|uses|imports?|references?))\b"),
    ("search", 1.5, r"\b(?:dead code|never referenced|hardcoded)\b"),
    # ---- docstring
    ("docstring", 3.5, r"\b(?:docstrings?|doc ?comments?|doc-comments?|jsdoc|tsdoc|javadoc|godoc|rustdoc|"
                       r"doctest example|sphinx-style|numpy style|google-style)\b"),
    ("docstring", 3.0, r"(?<!leave )(?<!leave some )(?<!leave a few )(?<!own )(?<!their )(?<!user )(?<!users )"
                       r"(?<!customer )\bcomments?\b(?! (?:endpoint|table|thread|feed|api|service|model|count|widget|"
                       r"moderation))"),  # code comments, not the comments users post
    ("docstring", 2.0, r"§ (?:add|write|update|fix|generate|create|correct|improve)\b (?:a |an |the |some |"
                       r"short |brief |"
                       r"missing |proper |inline |header |doc )*(?:docstrings?|doc ?comments?|comments?|jsdoc|tsdoc|"
                       r"javadoc|godoc|rustdoc|documentation)\b"),
    ("docstring", 2.5, r"§ document\b|\bdocument (?:the|this|what|how|each|all|its|every)\b"),
    # "document the scheduling algorithm ...": the imperative asks for text, whatever the subject weighs
    ("docstring", 1.5, r"§ document (?:the|this|our|how|what|each|all|every)\b"),
    ("docstring", 2.0, r"\b(?:readme|documentation|docs section|header comment|:param:?|@param|@returns|docblocks?|"
                       r"api docs|write docs|docs for|annotate)\b"),
    ("docstring", 1.5, r"\bexplain(?:s|ing)?\b"),
    ("docstring", 2.5, r"§ (?:update|write|edit|fix|improve|rewrite|extend|add to|add a section to) (?:the |our |a )?"
                       r"(?:\w+ )?xdocfile\b"),
    ("docstring", 1.0, r"\bxdocfile\b"),
    ("docstring", 1.5, r"\btypos? in (?:the |my |our )?(?:comments?|docstrings?|docs|readme|documentation)\b|"
                       r"§ fix (?:the |all the )?typos\b"),
    ("docstring", 2.0, r"\b(?:readme|docs?|documentation|docstrings?|comments?|usage section)\b[^§]{0,40}\b"
                       r"(?:outdated|"
                       r"out of date|stale|wrong|incorrect|misleading)\b|\bupdate (?:the )?(?:readme|docs|"
                       r"documentation|changelog)\b"),
    # ---- reformat
    ("reformat", 3.5, r"\b(?:re-?format\w*|format(?:ting|ing|ted)?|pretty[- ]?print\w*|prettify|indent\w*|dedent\w*|"
                      r"whitespace|line endings?|tabs to spaces|minify|lint(?:er|ing)?|flake8|pylint|eslint|ruff|"
                      r"isort|black|prettier|gofmt|rustfmt|pep ?8|style guide|pre-commit|line length|"
                      r"style violations)\b(?! ?(?:config|configuration|settings|rules file|version))"),
    ("reformat", 2.5, r"\bsort(?:ed)? (?:the |this )?(?:imports|keys|list|properties|methods|requirements|"
                      r"dependencies|file)\b|\balphabetical\w*\b|\breorder\b"),
    ("reformat", 2.5, r"\b(?:rename|renaming)\b"),
    ("reformat", 3.0, r"\bconvert\w* (?:this |the |these )?(?:json|yaml|xml|csv|toml|shell output|output|"
                      r"% formatting|double quotes|quotes|tabs|sql keywords|camelcase|keys|xid keys)\b"),
    ("reformat", 2.5, r"\b(?:into|to) (?:an? )?(?:json|yaml|xml|csv|toml|markdown table|markdown|table|f-?strings|"
                      r"snake_?case|camel ?case|single quotes|double quotes|uppercase|lowercase|let / const|"
                      r"json array|lf|crlf|spaces|tabs)\b"),
    ("reformat", 2.5, r"\b(?:quotes|semicolons?|trailing commas?|unused imports|import order|naming consistent|"
                      r"readable|one line|mangled|line up|wrap (?:the )?(?:long )?lines|long lines?|reflow|ansi|"
                      r"\d+ (?:columns|cols|chars)|"
                      r"keywords to uppercase|bulleted list|beautify|autoformat|code style|consistent style|"
                      r"(?:lower|upper)case (?:all|the|every)|capitali[sz]e|one per line|unreadable|hard to read|"
                      r"no behaviou?r changes?|behaviou?r[- ]preserving|purely cosmetic|cosmetic|arrow functions?|"
                      r"tabs|(?:with|to) (?:\d+ )?spaces|consistent (?:naming|style|formatting|casing)|"
                      r"(?:naming|casing|keys|names) consistent|"
                      r"turn (?:this|it|these|the \w+) into (?:a |an )?(?:\w+ )?(?:list|table|json|yaml|csv|markdown|"
                      r"one-liner))\b"),
    ("reformat", 3.0, r"\bcommented[- ]out\b"),
    ("reformat", 3.0, r"\b(?:apply|run) (?:our |the )?(?:black|prettier|isort|gofmt|rustfmt|eslint --fix|ruff|"
                      r"formatter|"
                      r"linter|autopep8|clang-format|yapf)\b"),
    ("reformat", 2.0, r"\bmake this json valid\b|\bvalid json\b|\bas a table\b"),
    ("reformat", 2.0, r"§ (?:indent|sort|reformat|format|prettify|minify|dedent|align|wrap|rename|reorder|tidy|reflow|"
                      r"normali[sz]e|strip|remove the (?:unused|trailing|commented))\b"),
    # ---- test_gen
    ("test_gen", 2.5, r"\b(?:unit tests?|tests?|test cases?|specs?|test suite|doctests?|fixtures?|"
                      r"regression tests?|coverage)\b"),
    ("test_gen", 3.0, rf"§ (?:write|add|generate|create|get|need)\b(?:(?!doc|comment){S}){{0,50}}\b(?:tests?|specs?|"
                      rf"cases|coverage|fixtures?|doctests)\b"),
    ("test_gen", 2.5, r"\b(?:pytest|jest|junit|rspec|playwright|cypress|hypothesis|vitest|mocha|httptest|"
                      r"clirunner|property-based|snapshot tests?|integration tests?|e2e|end-to-end|contract tests?|"
                      r"mock(?:s|ing)?|parametri[sz]ed)\b"),
    ("test_gen", 3.0, r"\b(?:write|add|create) (?:a |an )?failing test\b|\bfailing test first\b"),
    ("test_gen", 1.5, r"\breproduces?\b"),
    # ---- bug_fix
    ("bug_fix", 3.0, rf"§ {NOT_FIX_SENTENCE}(?:fix|debug|resolve|troubleshoot|repair|patch|solve)\b"),
    ("bug_fix", 1.5, rf"§ {NOT_FIX_SENTENCE}{S}*?\bfix(?:es|ed|ing)?\b"),
    ("bug_fix", 3.0, r"\bhow (?:do|can|should|would|to) (?:i |we )?(?:fix|get rid of|solve|stop|resolve)\b"),
    ("bug_fix", 2.5, r"\bwhy (?:does|is|do|are|did|would|isn't|doesn't|won't|can't|am|the|it|this|my)\b"),
    ("bug_fix", 2.5, r"\bwhat'?s (?:wrong|causing|going on|happening|broken)\b|\bfigure out why\b|\blook into\b|"
                     r"\bfind (?:the|a) (?:bug|leak|issue|problem|cause)\b|\bhelp[,!.]"),
    ("bug_fix", 2.0, r"\b(?:any ideas?|what gives|what am i doing wrong|what did i do wrong|"
                     r"how come|is this a bug|track (?:it|this|them|that) down|gives (?:a|an|me)|"
                     r"(?:i|we) (?:get|see|keep getting)|getting (?:a|an|this))\b"),
    ("bug_fix", 3.5, r"\btests?(?: xid)? (?:are |is |keeps? |still )?(?:fail\w*|broken|red|flaky)\b|"
                     r"\b(?:failing|broken|flaky|red) tests?\b"),
    ("bug_fix", 2.0, r"\b(?:bugs?|regression|crash\w*|segfault|panics?|exception|traceback|stack ?trace|broken|"
                     r"fails?|failing|failed|failure|wrong|incorrect|garbled|infinite loop|leak\w*|race condition|"
                     r"deadlock|hangs?|oom\w*|duplicate rows|throws?|cors errors?|permission denied|exits? with|"
                     r"prod is down|dies|npe|breaks|breaking|does nothing|nothing happens|stopped working|"
                     r"stops working|"
                     r"not loading|blank (?:page|screen)|freez\w*|disconnects?|errors out|blows up|corrupt\w*|"
                     r"wrong result|regressed|spinning forever|timing out|endless|loops forever|redirect loop|"
                     r"off by (?:one|a)|"
                     r"exceptionname|even though|shows the same|same items|duplicated|passes locally|"
                     r"fails on ci|500|502|403|404|off-by-one|off by one|not working|doesn't work)\b"),
    ("bug_fix", 1.5, r"\b(?:should (?:\w+ ){1,3}instead|instead of (?:raising|returning|throwing|failing)|"
                     r"expected [^§]{1,40} (?:but|got)|but (?:it )?(?:returns|gives|shows|got|prints)|"
                     r"silently|go(?:es)? negative)\b"),
    ("bug_fix", 1.0, r"\b(?:errors?|ignores?|ignored|never|doesn'?t|isn'?t|won'?t|can'?t|shifted|twice|"
                     r"returns? none|always returns|stuck|missing|lost|deletes|killed|invalid|unexpected|"
                     r"instead of a|lets [\w ]+ through|since the|after the|since yesterday|(?:4[0-2]\d|5[0-3]\d))\b"),
    # ---- feature
    ("feature", 2.0, FEATURE_VERBS),
    ("feature", 0.75, FEATURE_NOUNS),
    ("feature", 3.0, rf"\b(?:refactor (?:this|the|that)|extract\w* (?:the |this |a )?{S}{{0,40}}\b(?:into|to) "
                     rf"(?:its own|a|an) (?:helper|function|method|class|module)|early returns?|"
                     rf"class component to a function component)\b"),
    ("feature", 2.0, r"\bimplement (?:the |a |an )?(?:todo|option|flag|endpoint|command|subcommand|feature)\b"),
    ("feature", 2.0, r"\bwrite a (?:small )?(?:function|script|helper|cli|command)\b|\bbuild a (?:small )?script\b"),
    ("feature", 1.5, r"§ (?:we|i) (?:need|want|would like|'d like)\b|\bit would be (?:nice|great)\b"),
    ("feature", 3.0, r"\b(?:check|step|job|stage) (?:to|in) (?:our |the )?(?:ci|pipeline|ci pipeline)\b"),
    # ---- code_review
    ("code_review", 4.0, r"\b(?:review\w*|lgtm|sanity[- ]check|second (?:pair of )?eyes|critique|"
                         r"audit(?! logs?| trail| logging| events?)|feedback|"
                         r"approve)\b"),
    ("code_review", 2.5, r"\b(?:what do you think|what would you change|anything(?:'s)? (?:off|wrong|missing)|"
                         r"any (?:problems|issues|red flags|concerns|mistakes)|red flags|"
                         r"is (?:this|it|my)(?: \w+){0,3} (?:ok|okay|correct|safe|thread[- ]safe|idiomatic|sound|fine|"
                         r"right|the right way|the idiomatic way)|"
                         r"is there (?:an? )?(?:\w+ )?(?:risk|issue|vulnerabilit\w*|injection)|"
                         r"does this (?:handle|break|look|cover)|best practices?|edge cases|"
                         r"security (?:issues|holes|problems)|injection|compare these|which one you'd merge|"
                         r"thoughts on|opinion on|look over|go (?:through|over) (?:this|the|my) (?:diff|pr|change|"
                         r"changes|code|patch)|point out|pull request|merge request|\bpr\b|did i miss|"
                         r"(?:anything|something) (?:i|we) missed|nitpick|nits|sign off|leave (?:some |"
                         r"a few )?(?:comments|feedback|notes)|"
                         r"what could go wrong|look at my (?:implementation|code|changes|pr|diff|patch)|once-over|"
                         r"before i merge|what would (?:a|an|you) [\w ]{0,30}say|how would you rate|rate (?:this|my)|"
                         r"grade (?:this|my))\b"),
    ("code_review", 2.5, rf"\bcheck (?:this|my|the)\b{S}{{0,40}}\b(?:for|against)\b"),
    ("code_review", 1.0, r"\b(?:thread[- ]safe|backwards? compatib\w*|performance problems|mistakes|idiomatic)\b"),
    # ---- architecture
    ("architecture", 3.5, r"\b(?:architect\w*|system design|target design|adrs?|tradeoffs?|trade-offs?|"
                          r"plugin system|event[- ]driven|multi[- ]region|multi[- ]tenant\w*|active[- ]active|"
                          r"disaster recovery|service boundaries|micro-?frontends?|module layout|layering|"
                          r"allowed to import|"
                          r"high[- ]level design|come up with a (?:\w+ )?design)\b"),
    ("architecture", 3.0, r"§ (?:design|plan|propose|architect)\b(?!" + S + r"*\b(?:tests?|algorithm))"),
    ("architecture", 3.0, r"\b(?:should we|how should (?:we|i)(?! fix)|what'?s the right way to|"
                          r"what is the right way to|(?:choos|pick|decid)\w* between|help us choose|"
                          r"which (?:one )?fits|"
                          r"lay out|recommend an? (?:approach|design|architecture))\b"),
    ("architecture", 1.5, r"\bwhere should\b"),
    ("architecture", 3.0, r"\b(?:how would you (?:structure|design|architect|organi[sz]e|split|build|lay out)|"
                          r"what architecture|recommend (?:a |an )?(?:architecture|design|stack|approach|setup)|"
                          r"target (?:setup|state|architecture)|evaluate (?:moving|migrating|switching|adopting)|"
                          r"bounded contexts|high availability|failover|consistency model|pros and cons|"
                          r"we're (?:thinking|considering) (?:of|about)|overall design|sketch out|decompos\w+|"
                          r"is it a good idea|would it make sense|does it make sense to|"
                          r"what (?:should|would) (?:our|the) [\w ]{1,30} look like|"
                          r"\w+, \w+,? or \w+\?|"
                          r"should (?:the|our|we|i|this) [^§]+ or\b)"),
    ("architecture", 1.5, r"\b(?:propose|data stores?|backend services|infrastructure|topology|message broker|"
                          r"own (?:its|their) own database|share the (?:main )?(?:database|db)|roadmap|gateways|"
                          r"outbox|cdc|"
                          r"dual writes|consistent with|websockets?|sse|polling|load balancer|dau|mau|rps|qps|"
                          r"throughput|"
                          r"consider (?:our|the)|polyrepos?)\b"),
    ("architecture", 1.5, r"\b(?:microservices?|monolith|services|kafka|rabbitmq|sharding|shard|federation|"
                          r"serverless|kubernetes|sandbox\w*|pipeline|data model|strategy|scal(?:e|able|ability)|"
                          r"rpo|rto|sso|regions|platform|the system|whole site|synchronously|reliably|"
                          r"isolation|retained|tamper-evident)\b"),
    # ---- cross_refactor
    ("cross_refactor", 2.0, r"\b(?:migrate|migrating|restructur\w*|unify)\b"),
    ("cross_refactor", 0.5, r"\bmigrations?\b"),
    ("cross_refactor", 0.75, rf"\b(?:{SCOPE})\b"),
    # ---- algorithm
    ("algorithm", 3.0, rf"(?<!\w)(?:{ALGO_NOUNS})(?!\w)"),
    ("algorithm", 2.0, r"\b(?:faster|speed (?:it )?up|too slow|times? out|takes \d+ minutes|better algorithm|"
                       r"more efficient|efficient|under \d+ ?ms|in o\b)\b"),
]
