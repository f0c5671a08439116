"""A scripted coding agent for the `tier run` tests (standard library only).

It does what a real agent does with the variables `tier run` gives it: reads the base URL and key
from its environment (ANTHROPIC_BASE_URL/ANTHROPIC_API_KEY, or OPENAI_BASE_URL/OPENAI_API_KEY with
--protocol openai or responses), makes one call per --max-tokens value, writes each answer's text into --file
(the last answer wins) and appends a line per call to agent.log, both in the working directory.
A call that is not answered (e.g. 402 past the attempt's cap) is printed on stderr and the agent
exits 1, as agents do. --hang MARKER: after the edits, write the pid to MARKER and sleep.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.request


def call(protocol: str, max_tokens: int, task: str) -> str:
    if protocol == "anthropic":
        url = os.environ["ANTHROPIC_BASE_URL"].rstrip("/") + "/v1/messages"
        headers = {"x-api-key": os.environ["ANTHROPIC_API_KEY"], "anthropic-version": "2023-06-01"}
        model = os.environ.get("ANTHROPIC_MODEL", "claude-opus-4-8")  # as Claude Code reads it
        body = {"model": model, "max_tokens": max_tokens, "messages": [{"role": "user", "content": task}]}
    elif protocol == "responses":  # what Codex speaks
        url = os.environ["OPENAI_BASE_URL"].rstrip("/") + "/responses"
        headers = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
        body = {"model": "gpt-5-codex", "max_output_tokens": max_tokens, "input": task}
    else:
        url = os.environ["OPENAI_BASE_URL"].rstrip("/") + "/chat/completions"
        headers = {"authorization": "Bearer " + os.environ["OPENAI_API_KEY"]}
        body = {"model": "gpt-5", "max_tokens": max_tokens, "messages": [{"role": "user", "content": task}]}
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={**headers, "content-type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as resp:
        data = json.loads(resp.read())
    if protocol == "anthropic":
        return "".join(b.get("text", "") for b in data["content"] if b.get("type") == "text")
    if protocol == "responses":
        return "".join(c.get("text", "") for item in data["output"] if item.get("type") == "message"
                       for c in item["content"] if c.get("type") == "output_text")
    return data["choices"][0]["message"]["content"]


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("task")
    parser.add_argument("--file", default="calc.py")
    parser.add_argument("--protocol", default="anthropic", choices=["anthropic", "openai", "responses"])
    parser.add_argument("--max-tokens", default="100", help="one call per comma-separated value")
    parser.add_argument("--hang", default=None)
    args = parser.parse_args()
    for n, max_tokens in enumerate(int(v) for v in args.max_tokens.split(",")):
        try:
            text = call(args.protocol, max_tokens, args.task)
        except urllib.error.HTTPError as exc:
            sys.stderr.write(f"fake-agent: call {n + 1} failed: HTTP {exc.code}: {exc.read().decode()[:300]}\n")
            return 1
        with open(args.file, "w") as fh:
            fh.write(text)
        with open("agent.log", "a") as fh:
            fh.write(f"call {n + 1}\n")
    if args.hang:
        with open(args.hang, "w") as fh:
            fh.write(str(os.getpid()))
        time.sleep(120)
    return 0


if __name__ == "__main__":
    sys.exit(main())
