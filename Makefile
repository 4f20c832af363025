# Development, test and demo entry points for tap-blogger.
#
#   make venv     the tap's own virtualenv (.venv) with the test extra
#   make targets  target-jsonl and target-postgres, each in its own virtualenv
#   make meltano  Meltano in its own virtualenv, plus `meltano install` of meltano.yml's plugins
#   make test     everything above, PostgreSQL server binaries, then the whole pytest suite
#   make demo     bundled emulator -> meltano run tap-blogger target-jsonl (and PostgreSQL if reachable)
#   make bench    the benchmark suite (bench/), dlt in its own virtualenv; BENCH_ARGS picks a subset,
#                 e.g. make bench BENCH_ARGS="--datasets bench2 --latencies 0"
#   make lint     ruff check + ruff format --check
#   make clean    remove virtualenvs, Meltano's project dir and outputs

SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
PIP_FLAGS ?= -qq --disable-pip-version-check

VENV := .venv
TARGETS_DIR := .venv-targets
JSONL_VENV := $(TARGETS_DIR)/jsonl
POSTGRES_VENV := $(TARGETS_DIR)/postgres
MELTANO_VENV := .venv-meltano
BENCH_VENV := .venv-bench

TARGET_JSONL_VERSION := 0.1.4
TARGET_POSTGRES_VERSION := 0.8.1
MELTANO_VERSION := 4.4.1
DLT_VERSION := 1.31.0

VENV_STAMP := $(VENV)/.installed
JSONL_STAMP := $(JSONL_VENV)/.installed
POSTGRES_STAMP := $(POSTGRES_VENV)/.installed
MELTANO_STAMP := $(MELTANO_VENV)/.installed
BENCH_STAMP := $(BENCH_VENV)/.installed
PLUGINS_STAMP := .meltano/.plugins-installed

TARGET_JSONL_BIN := $(CURDIR)/$(JSONL_VENV)/bin/target-jsonl
TARGET_POSTGRES_BIN := $(CURDIR)/$(POSTGRES_VENV)/bin/target-postgres
MELTANO_BIN := $(CURDIR)/$(MELTANO_VENV)/bin/meltano

# Handed to the tests (and the demo) so they run the exact executables built here.
TOOL_ENV := TARGET_JSONL_BIN=$(TARGET_JSONL_BIN) TARGET_POSTGRES_BIN=$(TARGET_POSTGRES_BIN) \
	MELTANO_BIN=$(MELTANO_BIN)

PYTEST_ARGS ?=
BENCH_ARGS ?=

.PHONY: help venv targets meltano meltano-install postgres-bin test demo bench lint format clean

help:
	@sed -n '/^#/!q; s/^# \{0,1\}//p' Makefile

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) --upgrade pip
	$(VENV)/bin/python -m pip install $(PIP_FLAGS) -e '.[test]'
	touch $@

targets: $(JSONL_STAMP) $(POSTGRES_STAMP)

# target-jsonl 0.1.4 pins old libraries (singer-python 5.x, jsonschema 2.x) that clash with
# singer-sdk: it gets a virtualenv of its own.
$(JSONL_STAMP):
	test -x $(JSONL_VENV)/bin/python || $(PYTHON) -m venv $(JSONL_VENV)
	$(JSONL_VENV)/bin/python -m pip install $(PIP_FLAGS) 'target-jsonl==$(TARGET_JSONL_VERSION)'
	touch $@

$(POSTGRES_STAMP):
	test -x $(POSTGRES_VENV)/bin/python || $(PYTHON) -m venv $(POSTGRES_VENV)
	$(POSTGRES_VENV)/bin/python -m pip install $(PIP_FLAGS) \
		'meltanolabs-target-postgres==$(TARGET_POSTGRES_VERSION)'
	touch $@

meltano: $(PLUGINS_STAMP)

$(MELTANO_STAMP):
	test -x $(MELTANO_VENV)/bin/python || $(PYTHON) -m venv $(MELTANO_VENV)
	$(MELTANO_VENV)/bin/python -m pip install $(PIP_FLAGS) 'meltano==$(MELTANO_VERSION)'
	touch $@

# Installs the plugins of meltano.yml into .meltano/ (tap-blogger editable from this checkout).
meltano-install: $(PLUGINS_STAMP)

$(PLUGINS_STAMP): $(MELTANO_STAMP) meltano.yml pyproject.toml
	MELTANO_SEND_ANONYMOUS_USAGE_STATS=false $(MELTANO_BIN) install
	touch $@

# PostgreSQL server binaries (initdb, pg_ctl) for the end-to-end tests.
postgres-bin:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || command -v initdb >/dev/null 2>&1; then \
		exit 0; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "Installing the PostgreSQL server with apt-get"; \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get update -qq && apt-get install -y -qq postgresql >/dev/null; \
	else \
		echo "PostgreSQL server binaries (initdb, pg_ctl) are missing." >&2; \
		echo "Install them, e.g. 'sudo apt-get install postgresql' (Debian/Ubuntu)," >&2; \
		echo "or put a PostgreSQL bin directory on PATH." >&2; \
		exit 1; \
	fi

# TAP_BLOGGER_* variables are removed so a developer's own settings never reach the tests.
# pytest's exit code 5 (no test collected) counts as a failure.
test: $(VENV_STAMP) $(JSONL_STAMP) $(POSTGRES_STAMP) $(PLUGINS_STAMP) postgres-bin
	@rc=0; set -x; \
	env $$(env | sed -n 's/^\(TAP_BLOGGER_[A-Za-z0-9_]*\)=.*/-u \1/p') $(TOOL_ENV) \
		$(VENV)/bin/python -m pytest -q -p no:cacheprovider tests $(PYTEST_ARGS) || rc=$$?; \
	{ set +x; } 2>/dev/null; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests" >&2; exit 1; fi; \
	exit $$rc

demo: $(VENV_STAMP) $(PLUGINS_STAMP)
	$(TOOL_ENV) $(VENV)/bin/python -m scripts.demo

# The comparison client dlt gets a virtualenv of its own; the tap runs from $(VENV).
$(BENCH_STAMP):
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install $(PIP_FLAGS) 'dlt[duckdb]==$(DLT_VERSION)'
	touch $@

bench: $(VENV_STAMP) $(BENCH_STAMP)
	$(BENCH_VENV)/bin/python -m bench $(BENCH_ARGS)

lint: $(VENV_STAMP)
	$(VENV)/bin/ruff check tap_blogger tests bench scripts
	$(VENV)/bin/ruff format --check tap_blogger tests bench scripts

format: $(VENV_STAMP)
	$(VENV)/bin/ruff check --fix tap_blogger tests bench scripts
	$(VENV)/bin/ruff format tap_blogger tests bench scripts

clean:
	rm -rf $(VENV) $(TARGETS_DIR) $(MELTANO_VENV) $(BENCH_VENV) .meltano output .pytest_cache .ruff_cache \
		build *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
