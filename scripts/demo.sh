#!/usr/bin/env bash
# The main job, offline: a few coding-agent tasks through `tier ask` on the embedded default config
# (no API key, no network), then what the ledger recorded. Uses its own TIER_HOME (.tier-demo/) so
# your real ledger is untouched; `rm -rf .tier-demo` to start over.
set -euo pipefail
cd "$(dirname "$0")/.."
export TIER_HOME="${TIER_HOME:-$PWD/.tier-demo}"
unset TIER_CONFIG TIER_DB
tier="${TIER_BIN:-.venv/bin/tier}"
# bold step titles only on a terminal, and never with NO_COLOR (https://no-color.org), like tier itself
if [ -t 1 ] && [ -z "${NO_COLOR:-}" ] && [ "${TERM:-}" != dumb ]; then bold=$'\033[1m' plain=$'\033[0m'; else bold='' plain=''; fi
step() { printf '\n%s$ %s%s\n' "$bold" "$*" "$plain"; }

step tier config check
$tier config check

step 'tier ask "where is the retry policy configured?"'
$tier ask --session demo "where is the retry policy configured?"

step 'printf "Traceback ...KeyError: user_id" | tier ask "fix this"'
printf 'Traceback (most recent call last):\n  File "app/views.py", line 42, in profile\n    uid = request.session["user_id"]\nKeyError: '"'"'user_id'"'"'\n' \
  | $tier ask --session demo "fix this"

step 'tier ask "design a plugin architecture for our exporters, with versioned interfaces"'
$tier ask --session demo "design a plugin architecture for our exporters, with versioned interfaces"

step 'tier ask --task-type docstring "write a docstring for parse_window()"'
$tier ask --session demo --task-type docstring "write a docstring for parse_window()"

step 'tier ask --dry-run "review this diff for races"'
$tier ask --dry-run "review this diff for races"

step 'tier classify "rename the Order model to Purchase across all services"'
$tier classify "rename the Order model to Purchase across all services"

step tier log
$tier log -n 10

if $tier report --help >/dev/null 2>&1; then
  step tier report --all
  $tier report --all
fi
printf '\nLedger: %s/ledger.db. Real answers: TIER_CONFIG=sample_configs/anthropic.yaml with ANTHROPIC_API_KEY set.\n' "$TIER_HOME"
