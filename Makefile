# Everything installs from nothing: a venv, then the pinned lock (constraints.txt).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# pytest workers: 2 cores on CI and developer machines.
WORKERS ?= 2

.PHONY: install test demo lint format clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" setuptools wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,ray]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest -q -n $(WORKERS) tests

demo: $(STAMP)
	$(BIN)/fl run recipes/tiny/study.yaml --workspace demo-workspace --stage-tables

lint: $(STAMP)
	$(BIN)/lint-imports
	$(BIN)/ruff format --check src tests benchmarks scripts
	$(BIN)/ruff check src tests benchmarks scripts

format: $(STAMP)
	$(BIN)/ruff format src tests benchmarks scripts
	$(BIN)/ruff check --fix src tests benchmarks scripts

clean:
	rm -rf $(VENV) demo-workspace
