# FinSentinel developer commands. Every target works on a fresh clone: `make demo`, `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test test-fast lint seed-model clean

install: $(STAMP)

# torch is pinned to the CPU build first: a looser pin would pull gigabytes of CUDA packages.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q torch==2.13.0
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

demo: install
	HF_HUB_OFFLINE=1 $(BIN)/finsentinel demo

test: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest

test-fast: install
	HF_HUB_OFFLINE=1 $(BIN)/python -m pytest -m "not slow"

seed-model: install
	HF_HUB_OFFLINE=1 $(BIN)/finsentinel seed-model

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy

clean:
	rm -rf demo-workspace var .pytest_cache .mypy_cache .ruff_cache
