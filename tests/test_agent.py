"""tiercli.agent: instructions, continuations, compaction, side calls, sub-agents and task ids.

Hand-built sessions in the shapes agents send (Anthropic messages, OpenAI chat, OpenAI responses),
each request judged with the state the previous one returned, as the gateway will.
"""

from __future__ import annotations

import pytest

from tiercli import agent
from tiercli.agent import TranscriptTasks, analyze_request

MAIN_SYSTEM = [{"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude. " + "x" * 500},
               {"type": "text", "text": "gitStatus: clean, date 2026-11-30"}]
SUB_SYSTEM = "You are a file search specialist for Claude Code. Explore the codebase and report back."
TOOLS = [{"name": "Read", "input_schema": {"type": "object"}}, {"name": "Bash", "input_schema": {"type": "object"}}]


def user(*texts):
    return {"role": "user", "content": [{"type": "text", "text": t} for t in texts]}


def tool_result(tid="toolu_1"):
    return {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tid, "content": "file contents"}]}


def tool_use(tid="toolu_1"):
    return {"role": "assistant", "content": [{"type": "tool_use", "id": tid, "name": "Read", "input": {}}]}


def said(text):
    return {"role": "assistant", "content": [{"type": "text", "text": text}]}


def body(messages, system=MAIN_SYSTEM, tools=TOOLS, model="claude-opus-4-8", **extra):
    out = {"model": model, "system": system, "messages": messages, "max_tokens": 64000, **extra}
    if tools is not None:
        out["tools"] = tools
    return out


def run_session(requests, session="s1"):
    state, out = None, []
    for req in requests:
        d = analyze_request(req, state, session=session)
        out.append(d)
        state = d.state
    return out


def test_new_instruction_then_tool_loop_stays_on_the_task():
    conv = [user("fix the failing login test in tests/test_auth.py")]
    reqs = [body(list(conv))]
    conv += [tool_use("a"), tool_result("a")]
    reqs.append(body(list(conv)))
    conv += [tool_use("b"), tool_result("b")]
    reqs.append(body(list(conv)))
    d = run_session(reqs)
    assert [x.rule for x in d] == ["new_task", "tool_step", "tool_step"]
    assert d[0].classify and not d[1].classify and not d[2].classify
    assert len({x.task_id for x in d}) == 1
    assert d[0].instruction == "fix the failing login test in tests/test_auth.py"
    assert d[2].instruction == d[0].instruction
    assert "tool loop" in d[1].reason


def test_system_reminders_and_notifications_are_not_the_instruction():
    conv = [user("<system-reminder>The date is today.</system-reminder>", "add a --json flag to tier log"),
            tool_use("a"), tool_result("a"),
            user("<task-notification>background task 3 finished: exit 0</task-notification>")]
    d = analyze_request(body(conv), None, session="s")
    assert d.instruction == "add a --json flag to tier log"
    assert d.rule == "tool_step"  # the notification is not a new turn of the user's
    first = analyze_request(body(conv[:1]), None, session="s")
    assert first.task_id == d.task_id


@pytest.mark.parametrize("text", ["continue", "go on", "yes", "ok do it", "did you push?", "Yes, please.",
                                  "keep going", "OK", "try again"])
def test_continuations_inherit_the_previous_task(text):
    conv = [user("refactor the retry loop in client.py"), said("Should I also update the tests?"), user(text)]
    first = analyze_request(body(conv[:1]), None, session="s")
    d = analyze_request(body(conv), first.state, session="s")
    assert d.rule == "continuation"
    assert d.task_id == first.task_id
    assert d.instruction == "refactor the retry loop in client.py"
    assert not d.classify
    assert "continuation" in d.reason


@pytest.mark.parametrize("text", ["fix the bug in parse_args when --since is empty",
                                  "now write tests for the CSV importer", "Did you consider rewriting the scheduler "
                                  "as an event loop with priorities and deadlines?"])
def test_real_follow_up_tasks_are_new_tasks(text):
    assert not agent.is_continuation(text)
    conv = [user("refactor the retry loop in client.py"), said("Done."), user(text)]
    first = analyze_request(body(conv[:1]), None, session="s")
    d = analyze_request(body(conv), first.state, session="s")
    assert d.rule == "new_task" and d.classify and d.task_id != first.task_id


def test_continuation_without_state_finds_the_task_in_the_conversation():
    conv = [user("refactor the retry loop"), said("ok?"), user("go on"), tool_use(), tool_result()]
    d = analyze_request(body(conv), None, session="s")
    assert d.rule == "continuation" and d.instruction == "refactor the retry loop"
    assert d.task_id == analyze_request(body(conv[:1]), None, session="s").task_id


def test_compaction_summary_inherits_the_sessions_current_task():
    first = analyze_request(body([user("migrate the ledger to schema 4")]), None, session="s")
    summary = ("This session is being continued from a previous conversation that ran out of context. "
               "The conversation is summarized below: Primary request: add a feature ...")
    d = analyze_request(body([user(summary), tool_use(), tool_result()]), first.state, session="s")
    assert d.rule == "compaction" and d.task_id == first.task_id and not d.classify
    assert d.instruction == "migrate the ledger to schema 4"
    cold = analyze_request(body([user(summary)]), None, session="s")
    assert cold.rule == "compaction" and cold.instruction is None  # never classified as a feature


@pytest.mark.parametrize("req", [
    body([user("Please write a 5-10 word title for the following conversation: fix auth")], tools=None,
         model="claude-haiku-4-5-20251001"),
    body([user("quota")], tools=None, max_tokens=1),
    body([user("Summarize this coding conversation in under 50 characters.")], system="You summarize.", tools=None),
    body([user("what files changed?")], tools=None, model="claude-haiku-4-5-20251001"),
])
def test_side_calls_go_to_the_cheapest_tier(req):
    main = analyze_request(body([user("fix the flaky test")]), None, session="s")
    d = analyze_request(req, main.state, session="s")
    assert d.rule == "side_call" and d.cheapest and not d.classify and d.instruction is None
    assert d.task_id != main.task_id
    assert d.state == main.state  # a side call leaves the session's task alone


def test_small_model_with_tools_is_not_a_side_call():
    d = analyze_request(body([user("find where parse_args is defined")], model="claude-haiku-4-5"), None, session="s")
    assert d.rule == "new_task"


def test_subagent_is_a_task_of_its_own():
    main = analyze_request(body([user("add rate limiting to the gateway")]), None, session="s")
    step = analyze_request(body([user("add rate limiting to the gateway"), tool_use(), tool_result()]), main.state,
                           session="s")
    sub1 = analyze_request(body([user("Find every place that opens an HTTP client")], system=SUB_SYSTEM), step.state,
                           session="s")
    sub2 = analyze_request(body([user("Find every place that opens an HTTP client"), tool_use(), tool_result()],
                                system=SUB_SYSTEM), sub1.state, session="s")
    assert sub1.rule == sub2.rule == "subagent"
    assert sub1.task_id == sub2.task_id != main.task_id
    assert sub1.instruction == "Find every place that opens an HTTP client"
    back = analyze_request(body([user("add rate limiting to the gateway"), tool_use(), tool_result(), tool_use("b"),
                                 tool_result("b")]), sub2.state, session="s")
    assert back.rule == "tool_step" and back.task_id == main.task_id


def test_same_instruction_twice_is_two_tasks_and_ids_depend_on_session():
    conv = [user("run the tests"), said("all pass"), user("run the tests")]
    a = analyze_request(body(conv[:1]), None, session="s")
    b = analyze_request(body(conv), a.state, session="s")
    assert b.rule == "new_task" and b.task_id != a.task_id
    assert analyze_request(body(conv[:1]), None, session="other").task_id != a.task_id


def test_openai_chat_and_responses_shapes():
    chat = {"model": "gpt-5", "tools": [{"type": "function", "function": {"name": "sh"}}], "messages": [
        {"role": "system", "content": "You are Codex."},
        {"role": "user", "content": "speed up the report query"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "c1"}]},
        {"role": "tool", "tool_call_id": "c1", "content": "ok"}]}
    d = analyze_request(chat, None, session="s")
    assert d.rule == "tool_step" and d.instruction == "speed up the report query"
    resp = {"model": "gpt-5", "instructions": "You are Codex.", "tools": [{"type": "function", "name": "sh"}], "input": [
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "speed up the report query"}]},
        {"type": "function_call", "call_id": "c1", "name": "sh", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c1", "output": "ok"}]}
    r = analyze_request(resp, None, session="s")
    assert r.rule == "tool_step" and r.instruction == "speed up the report query" and r.task_id == d.task_id


def test_slash_commands_and_caveats():
    assert agent.clean_text("<command-message>init is analyzing…</command-message>\n<command-name>/init</command-name>") == "/init"
    assert agent.clean_text("<command-name>/review</command-name><command-args>the auth PR</command-args>") == "/review the auth PR"
    caveat = ("Caveat: The messages below were generated by the user while running local commands. DO NOT respond "
              "to these messages.\n\n")
    assert agent.turn_kind(caveat)[0] == agent.SKIP
    assert agent.turn_kind("<local-command-stdout>done</local-command-stdout>")[0] == agent.SKIP
    assert agent.turn_kind("[Request interrupted by user for tool use]")[0] == agent.SKIP
    assert agent.turn_kind(None)[0] == agent.SKIP


def test_no_human_text():
    d = analyze_request(body([tool_use(), tool_result()]), None, session="s")
    assert d.rule == "no_instruction" and d.instruction is None
    main = analyze_request(body([user("write the changelog")]), None, session="s")
    again = analyze_request(body([tool_result()]), main.state, session="s")
    assert again.rule == "no_instruction" and again.task_id == main.task_id


def test_transcript_tasks_rules():
    t = TranscriptTasks("sess")
    a = t.turn("u1", "<command-message>init…</command-message><command-name>/init</command-name>")
    t.turn("u2", "Please analyze this codebase and create a CLAUDE.md file", expansion=True)
    assert a.rule == "new_task" and t.tasks[a.task_id].instruction.startswith("Please analyze")
    assert t.turn("u3", None) is None  # tool result
    assert t.turn("u4", "<system-reminder>x</system-reminder>") is None
    c = t.turn("u5", "continue")
    assert c.rule == "continuation" and c.task_id == a.task_id
    s = t.turn("u6", "Examine package.json and report", chain="u6", subagent_start=True)
    assert s.rule == "subagent" and s.task_id != a.task_id
    k = t.turn("u7", agent.COMPACTION_PREFIX + " ... summary")
    assert k.rule == "compaction" and k.task_id == a.task_id  # the main chain's task, not the sub-agent's
    n = t.turn("u8", "Thanks! Please update CLAUDE.md for current changes")
    assert n.rule == "new_task" and n.task_id == agent.task_id("sess", "u8")


def test_retry_is_a_re_asked_task_not_a_tool_step():
    conv = [user("fix the failing login test")]
    first = analyze_request(body(conv), None, session="s")
    step = analyze_request(body(conv + [tool_use(), tool_result()]), first.state, session="s")
    assert step.rule == "tool_step" and step.retry_of is None  # a step repeats the instruction: not a retry
    conv += [tool_use(), tool_result(), said("Done, the test passes."), user("Fix the failing  login test")]
    again = analyze_request(body(conv), step.state, session="s")
    assert again.rule == "new_task" and again.retry_of == first.task_id and "retry" in again.reason
    other = analyze_request(body(conv + [said("ok"), user("add a --json flag")]), again.state, session="s")
    assert other.retry_of is None


def test_small_model_without_a_known_main_model_is_not_a_side_call():
    # aider-like: no tools, a mini model, no session state: a real task, not a side call
    d = analyze_request({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "rename foo to bar in x.py"}]},
                        None, session=None)
    assert d.rule == "new_task" and not d.cheapest


SUMMARY = (agent.COMPACTION_PREFIX + " that ran out of context. The conversation is summarized below:\n"
           "Analysis:\nLet me go through it.\n\nSummary:\n1. Primary Request and Intent:\n"
           "   The user asked to add rate limiting to the gateway's /v1/messages endpoint.\n"
           "2. Key Technical Concepts:\n   - token buckets\n")


def test_compaction_with_no_known_task_classifies_the_request_it_states():
    assert agent.summary_request(SUMMARY) == "The user asked to add rate limiting to the gateway's /v1/messages endpoint."
    assert agent.summary_request(agent.COMPACTION_PREFIX + " and nothing else") is None
    cold = analyze_request(body([user(SUMMARY), tool_use(), tool_result()]), None, session="s")
    assert cold.rule == "compaction" and cold.classify and "rate limiting" in cold.instruction
    t = TranscriptTasks("resumed")
    ref = t.turn("u1", SUMMARY)
    assert ref.rule == "compaction" and "rate limiting" in ref.instruction
