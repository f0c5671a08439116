#!/usr/bin/env bash
# `make test-agents`: install the real coding agents into .agents/ (git-ignored) and run
# tests/agents/ against the fake provider through `tier serve`. Not part of `make test`.
# Versions are pinned here and recorded in docs/AGENTS.md; override with the env vars below.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
AGENTS="$ROOT/.agents"
CLAUDE_CODE_VERSION="${CLAUDE_CODE_VERSION:-2.1.332}"
CODEX_VERSION="${CODEX_VERSION:-0.171.0}"
AIDER_VERSION="${AIDER_VERSION:-0.86.2}"
PYTHON="${PYTHON:-python3}"

mkdir -p "$AGENTS/npm"
# npm: no audit/fund/update-notifier chatter; scripts are needed (codex ships a native binary per platform)
if [ ! -x "$AGENTS/npm/node_modules/.bin/claude" ] || [ ! -x "$AGENTS/npm/node_modules/.bin/codex" ] \
   || [ "$(cat "$AGENTS/npm/.versions" 2>/dev/null)" != "$CLAUDE_CODE_VERSION $CODEX_VERSION" ]; then
  echo "installing @anthropic-ai/claude-code@$CLAUDE_CODE_VERSION and @openai/codex@$CODEX_VERSION into .agents/npm"
  npm install --prefix "$AGENTS/npm" --no-audit --no-fund --no-update-notifier --loglevel=error \
    "@anthropic-ai/claude-code@$CLAUDE_CODE_VERSION" "@openai/codex@$CODEX_VERSION"
  echo "$CLAUDE_CODE_VERSION $CODEX_VERSION" > "$AGENTS/npm/.versions"
fi
if [ ! -x "$AGENTS/venv/bin/aider" ] || [ "$(cat "$AGENTS/venv/.version" 2>/dev/null)" != "$AIDER_VERSION" ]; then
  echo "installing aider-chat==$AIDER_VERSION into .agents/venv"
  "$PYTHON" -m venv "$AGENTS/venv"
  "$AGENTS/venv/bin/pip" install --disable-pip-version-check -q "aider-chat==$AIDER_VERSION"
  echo "$AIDER_VERSION" > "$AGENTS/venv/.version"
fi

export TIER_AGENTS_DIR="$AGENTS"
exec "$ROOT/.venv/bin/python" -m pytest tests/agents -m agents -p no:randomly -v "$@"
