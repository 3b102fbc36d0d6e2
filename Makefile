# The two commands the README promises: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo ui test lint bench faults emulator clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

## Run the shipped sample list end to end: emulator + dagster (webserver + daemon).
demo: $(STAMP)
	$(BIN)/python -m crust_assets.demo

## Emulator + `dagster dev`, ready to materialise from the browser.
ui: $(STAMP)
	$(BIN)/python -m crust_assets.demo --ui

## The whole test suite (what CI runs).
test: $(STAMP)
	$(BIN)/ruff check crust_assets crust_assets_tests
	VIRTUAL_ENV=$(abspath $(VENV)) $(BIN)/dg check defs
	$(BIN)/pytest -q

## Speed and memory figures, as ratios against baselines measured in the same run.
bench: $(STAMP)
	$(BIN)/python -m crust_assets.bench

## The fault matrix, end to end through Dagster; one line per scenario.
faults: $(STAMP)
	$(BIN)/python -m crust_assets_tests.fault_matrix

lint: $(STAMP)
	$(BIN)/ruff check crust_assets crust_assets_tests
	$(BIN)/ruff format --check crust_assets crust_assets_tests

emulator: $(STAMP)
	$(BIN)/crust-assets emulator --port 8711

clean:
	rm -rf .dagster_home .crust_emulator data/warehouse data/staging
