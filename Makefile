# Two commands on a fresh machine (see README):
#   make demo   install tier from the hash-locked requirements and run it offline on the embedded default
#   make test   install the test requirements too and run the whole suite
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP    := $(BIN)/pip --disable-pip-version-check -q

.PHONY: demo test test-agents install install-test postgres-server lock bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.runtime: requirements/runtime.txt pyproject.toml | $(BIN)/python
	$(PIP) install --require-hashes -r requirements/runtime.txt
	$(PIP) install --no-deps -e .
	@touch $@

$(VENV)/.test: requirements/test.txt $(VENV)/.runtime
	$(PIP) install --require-hashes -r requirements/runtime.txt -r requirements/test.txt
	@touch $@

install: $(VENV)/.runtime
install-test: $(VENV)/.test

demo: install
	@bash scripts/demo.sh

# Team mode's tests start a real PostgreSQL server from Debian's binaries; install them when missing
# (CI runs as root on a fresh machine). Without root and without the binaries those tests skip.
postgres-server:
	@ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "postgresql binaries missing: apt-get install postgresql (the PostgreSQL tests will skip)"; fi; }

test: install-test postgres-server
	$(BIN)/python scripts/check_supply_chain.py
	$(BIN)/ruff check src tests benchmarks scripts
	$(BIN)/mypy
	TIER_NO_WORKER=1 $(BIN)/python -m pytest  # `tier ask` in-process (tests/test_worker.py turns the worker on)

# Real coding agents (Claude Code, Codex from npm; aider from PyPI) into .agents/ (git-ignored), run through
# tier serve against the fake provider. Needs node/npm and network to the registries; not part of `make test`.
test-agents: install-test
	bash scripts/test_agents.sh

# Every benchmark with its anchor in the same run (anchors go into bench-out/, git-ignored; one that
# cannot be installed is skipped with a message); figures land in bench-out/results.json and the
# README's performance table is regenerated from it.
bench: install-test
	$(BIN)/python benchmarks/startup.py
	$(BIN)/python benchmarks/ask_overhead.py
	$(BIN)/python benchmarks/first_token.py
	$(BIN)/python benchmarks/first_token.py --runs 5 --no-worker
	$(BIN)/python benchmarks/classify.py
	$(BIN)/python benchmarks/report.py --sizes 10k,100k,1m --dir bench-out/ledgers
	$(BIN)/python benchmarks/report_pg.py --size 1m --dir bench-out/ledgers
	$(BIN)/python benchmarks/import_claude_code.py
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/guards.py
	$(BIN)/python benchmarks/concurrency.py
	$(BIN)/python benchmarks/crash.py
	$(BIN)/python benchmarks/serve.py
	$(BIN)/python benchmarks/team.py --seconds 8
	$(BIN)/python benchmarks/outcomes.py
	$(BIN)/python scripts/bench_readme.py

# Re-resolve the locks after editing requirements/*.in (needs uv: pip install uv).
lock:
	uv pip compile --python-version 3.11 --generate-hashes --no-header requirements/runtime.in -o requirements/runtime.txt
	uv pip compile --python-version 3.11 --generate-hashes --no-header requirements/test.in -o requirements/test.txt

clean:
	rm -rf $(VENV) .tier-demo .pytest_cache
