"""Make a small, shareable copy of Claude Code session logs (how examples/claude-code/ was made).

Every line is kept, in order, with every field the importer reads (type, ids, parentUuid, sidechain
flag, model, usage, timestamps, the user's text requests), so `tier import` counts the same calls,
tokens and costs as on the originals. What makes the files big is shortened: tool results, tool
inputs and long assistant texts keep their first characters and say how much was cut.
Home-directory paths (/home/NAME, /Users/NAME) become /path/to.

    python scripts/trim_claude_log.py SRC.jsonl... --out examples/claude-code/-path-to-Demo
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

KEEP_CHARS = 80
HOME = re.compile(r"/(?:home|Users)/[^/\s\"']+")


def _cut(text: str) -> str:
    text = HOME.sub("/path/to", text)
    if len(text) <= KEEP_CHARS:
        return text
    return f"{text[:KEEP_CHARS]} [... {len(text) - KEEP_CHARS:,} characters cut for this sample]"


def _shorten(value):
    """Every string inside `value` cut to KEEP_CHARS (keys and structure kept)."""
    if isinstance(value, str):
        return _cut(value)
    if isinstance(value, list):
        return [_shorten(v) for v in value]
    if isinstance(value, dict):
        return {k: _shorten(v) for k, v in value.items()}
    return value


def trim_line(obj: dict) -> dict:
    obj = {k: (HOME.sub("/path/to", v) if isinstance(v, str) else v) for k, v in obj.items()}
    if "toolUseResult" in obj:  # Claude Code's own copy of the tool's output: not read by tier
        value = obj["toolUseResult"]
        obj["toolUseResult"] = value if isinstance(value, str) and len(value) <= KEEP_CHARS else _cut(json.dumps(value))
    message = obj.get("message")
    if isinstance(message, dict) and isinstance(message.get("content"), list):
        blocks = []
        for block in message["content"]:
            if isinstance(block, dict) and block.get("type") in ("tool_result", "tool_use", "text", "thinking"):
                if obj.get("type") == "user" and block.get("type") == "text":
                    block = {**block, "text": HOME.sub("/path/to", block["text"])}  # the request: kept whole
                else:
                    block = _shorten(block)
            blocks.append(block)
        message = {**message, "content": blocks}
        obj["message"] = message
    return obj


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    for source in args.sources:
        lines = []
        for raw in source.read_text(encoding="utf-8").splitlines():
            if raw.strip():
                lines.append(json.dumps(trim_line(json.loads(raw)), ensure_ascii=False, separators=(",", ":")))
        target = args.out / source.name
        target.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"{source.name}: {source.stat().st_size:,} -> {target.stat().st_size:,} bytes, {len(lines)} lines")


if __name__ == "__main__":
    main()
