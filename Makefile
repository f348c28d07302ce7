# loradex developer tasks. `make setup` is idempotent; every other target runs it first.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
HOME_DIR ?= .loradex

.PHONY: setup run test lint bench serve clean

setup: $(VENV)/.installed

# torch first, pinned: an unpinned torch would pull a multi-GB CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

# The main job on the embedded defaults: a SQLite registry in ./.loradex with the bundled samples.
run: setup
	$(VENV)/bin/loradex --home $(HOME_DIR) init
	$(VENV)/bin/loradex --home $(HOME_DIR) ingest samples/adapters $(patsubst %/manifest.json,%/adapters,$(wildcard benchmarks/zoo/*/manifest.json)); test $$? -le 1
	$(VENV)/bin/loradex --home $(HOME_DIR) train-encoder --text --bundled --tune
	$(VENV)/bin/loradex --home $(HOME_DIR) list

test: setup
	$(PY) -m pytest

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: setup
	$(PY) -m benchmarks.run

serve: setup
	$(VENV)/bin/loradex --home $(HOME_DIR) serve

clean:
	rm -rf $(VENV) $(HOME_DIR) .pytest_cache .ruff_cache .mypy_cache
