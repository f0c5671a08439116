"""The phrasing families issue 15 named (its own examples, not the blind corpus's)."""

from __future__ import annotations

import pytest

from tiercli.classify.local import classify, classify_rules


@pytest.mark.parametrize(
    ("text", "label"),
    [
        # short repository questions and pasted commands are lookups
        ("which branch is this?", "LOW"),
        ("is there a Dockerfile?", "LOW"),
        ("how big is the vendor folder?", "LOW"),
        ("git log --oneline -5", "LOW"),
        ("grep -rn TODO lib/", "LOW"),
        ("cargo fmt --all", "LOW"),
        # hard problems without a design keyword
        ("the replicas of our kv store disagree after a failover; figure out why writes acknowledged by the "
         "leader go missing", "HIGH"),
        ("change user ids from int to uuid in the database schema, the services and the mobile and web clients",
         "HIGH"),
        ("move the payment service from threads to asyncio", "HIGH"),
        # replication lag users notice, a move of live data that must lose nothing (third round); a user's
        # comments are product data, not code comments
        ("the read replica lags and users don't see their own comments after posting", "HIGH"),
        ("move the 2TB orders table from mysql to postgres without downtime and without losing writes", "HIGH"),
        ("rename the column created to created_at in every table and the code that reads it", "HIGH"),
        # behavioural changes with "move"/"replace"/"file" in them
        ("replace the promise chains in api.js with async/await", "MEDIUM"),
        ("move the retry logic out of client.py into its own module", "MEDIUM"),
        # textbook algorithm from a clear spec vs. novel algorithm design
        ("implement edit distance between two strings in utils/text.py", "MEDIUM"),
        ("write a topological sort for the build steps", "MEDIUM"),
        ("design a novel algorithm to schedule deliveries with time windows that beats our greedy heuristic", "HIGH"),
    ],
)
def test_issue_15_families(text, label):
    assert classify(text).label == label


@pytest.mark.parametrize(
    ("text", "task_type"),
    [("git status", "file_lookup"), ("rg -n 'eval\\(' src/", "search"), ("npx prettier --write .", "reformat"),
     ("du -sh node_modules", "file_lookup")],
)
def test_a_pasted_command_is_typed_by_the_command(text, task_type):
    c = classify_rules(text)
    assert c.task_type == task_type and any("shell command" in r for r in c.reasons)


@pytest.mark.parametrize("text", ["which of those files import lodash directly?", "which one is faster here?",
                                  "git status?"])
def test_an_english_word_or_a_question_is_not_a_pasted_command(text):
    assert not any("shell command" in r for r in classify_rules(text).reasons)


def test_a_command_followed_by_a_real_ask_is_not_a_lookup():
    text = ("kubectl top pods -A --sort-by=memory | head -20\n\nevery service's memory grows until OOM after we added "
            "the sidecar mesh. figure out what's going on across the fleet and what we should change at the platform "
            "level")
    assert not any("shell command" in r for r in classify_rules(text).reasons)


def test_code_comments_are_still_documentation():
    assert classify_rules("add comments to the retry helper in client.py").task_type == "docstring"
    assert classify_rules("the comments endpoint returns 500 for deleted posts").task_type != "docstring"


# documentation of code that names its algorithm is documentation (fourth round); prompts written for the
# purpose, not taken from any corpus
@pytest.mark.parametrize(
    "text",
    [
        "Make please docstring for the class Graph and method shortest_path, say which algorithm it is using",
        "write a docstring for dedupe() in matcher.py and say which algorithm it uses and why",
        "add a doc comment to the Scheduler struct explaining how the round-robin algorithm picks the next job",
        "update the docstring of merge_intervals to mention which algorithm it implements",
        "generate docstrings for the raft module that explain how leader election works",
    ],
)
def test_docs_that_name_the_algorithm_are_documentation(text):
    rules = classify_rules(text)
    assert (rules.task_type, rules.label) == ("docstring", "LOW")
    assert not any("algorithmic object" in r for r in rules.reasons)
    assert classify(text).label == "LOW"


@pytest.mark.parametrize(
    ("text", "not_label"),
    [
        # a design task that also asks for docs is never sent LOW ...
        ("design a new sharding algorithm for the events table and add docstrings to it", "LOW"),
        ("design an algorithm that picks which replicas to read from so that p99 stays under 20 ms, and write a doc "
         "comment explaining the idea", "LOW"),
        # ... and documenting an existing algorithm is never sent HIGH
        ("document the scheduling algorithm in planner.py: what it optimises and why", "HIGH"),
    ],
)
def test_docs_and_design_in_one_prompt_never_cross(text, not_label):
    assert classify(text).label != not_label


def test_a_textbook_algorithm_with_its_docstring_is_feature_work():
    c = classify("implement Dijkstra in graph.py and add a docstring saying which algorithm it is")
    assert (c.task_type, c.label) == ("feature", "MEDIUM")


def test_inventory_is_not_invent():
    """"invent" marks an algorithm to invent; "inventory" is a noun about stock (fourth round's bug fix)."""
    lookup = classify_rules("could you locate the module that implements the inventory reconciliation for the "
                            "warehouse service? just the path please")
    assert not any("algorithm to invent" in r for r in lookup.reasons)
    assert lookup.label == "LOW"
    invent = classify_rules("invent a scheme to estimate distinct visitors per page in bounded memory")
    assert any("algorithm to invent" in r for r in invent.reasons)


# fifth round (writers C-F's tune half): the lead's own examples of each family, not the corpus's
@pytest.mark.parametrize(
    ("text", "task_type"),
    [
        # a question after one fact is a lookup, whatever domain word it holds
        ("Which index type does migration 0017 create on the orders table?", "file_lookup"),
        ("what's the partition key for the audit_log table according to the schema?", "file_lookup"),
        # counting or narrowing a search is still a search; "list them only" wants the places
        ("which of those files import lodash directly?", "search"),
        ("I'm about to rename this helper. Which callers across the repo would need changing? list them only, "
         "I'll do the edits.", "search"),
        # formatting asked in another language, and mechanical layout edits
        ("Formatea el archivo `settings.py` con sangría de 4 espacios.", "reformat"),
        ("put the chained builder calls in app/Query.java onto separate lines, one call per line", "reformat"),
        # a rename or swap through the whole app, all environments, or a language's code is cross-file work
        ("rename the Invoice model to Bill throughout the whole Django app, migrations and templates included",
         "cross_refactor"),
        ("rename the terraform workspace modules and move their state with moved blocks across all environments",
         "cross_refactor"),
        ("make all the C code use our arena allocator instead of malloc/free", "cross_refactor"),
        ("sostituisci `urllib` con `requests` in tutti i servizi del repository", "cross_refactor"),
        ("We need to split the `shared` package into `shared-models`, `shared-io` and `shared-cli` packages.",
         "cross_refactor"),
        # HIGH asks in other languages
        ("Necesitamos un algoritmo nuevo para agrupar pedidos por ruta minimizando la distancia total.", "algorithm"),
        ("Sollen wir einen Monolithen behalten oder Microservices bauen? Bitte Vor- und Nachteile und eine Empfehlung.",
         "architecture"),
    ],
)
def test_fifth_round_families(text, task_type):
    assert classify_rules(text).task_type == task_type


def test_an_approximate_count_is_a_count_not_an_identifier():
    from tiercli.classify.local import _normalise

    assert "about 120 components" in _normalise("this touches ~120 components")
    assert "about 40" in _normalise("(~40 files)")
