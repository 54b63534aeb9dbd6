# Every target installs what it needs into .venv first; all are safe to re-run.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
QUESTION ?= How many workers did Fenghuang recover wages for?

.PHONY: install index run test test-all lint eval bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# The CPU build from local disk; see pyproject.toml.
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,eval]'
	touch $(STAMP)

index: install
	$(BIN)/rag index seeds

run: index
	$(BIN)/rag ask "$(QUESTION)"

test: install
	$(BIN)/python -m pytest -m "not slow"

test-all: install
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check rag api eval tests
	$(BIN)/ruff format --check rag api eval tests
	$(BIN)/mypy

eval: install
	$(BIN)/rag eval

bench: install
	$(BIN)/python -m eval.bench_index

clean:
	rm -rf $(VENV) index/CURRENT index/v-* index/.tmp-* .pytest_cache
