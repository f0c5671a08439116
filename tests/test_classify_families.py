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


def test_a_command_followed_by_a_real_ask_is_not_a_lookup():
    text = ("kubectl top pods -A --sort-by=memory | head -20\n\nevery service's memory grows until OOM after we added "
            "the sidecar mesh. figure out what's going on across the fleet and what we should change at the platform "
            "level")
    assert not any("shell command" in r for r in classify_rules(text).reasons)


def test_code_comments_are_still_documentation():
    assert classify_rules("add comments to the retry helper in client.py").task_type == "docstring"
    assert classify_rules("the comments endpoint returns 500 for deleted posts").task_type != "docstring"
