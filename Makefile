# Easel: `make demo` runs the main job, `make test` runs the tests. Both set up .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: install demo test lint bench clean

$(STAMP): pyproject.toml
	@echo ">> creating $(VENV) with $(PYTHON) and installing Easel (first run: a few minutes, PyTorch is large)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet --progress-bar off -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/python -m easel.demo

test: install
	$(BIN)/ruff check .
	$(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	PYTHONPATH=.:tests $(BIN)/lint-imports
	$(BIN)/ruff format --check easel

bench: install
	$(BIN)/python benchmarks/slicing.py
	$(BIN)/python benchmarks/scheduler.py
	$(BIN)/python benchmarks/tuning.py
	$(BIN)/python benchmarks/serving.py

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
