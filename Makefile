# Two commands set everything up: `make serve` and `make test`.
# Both create .venv on first use (and again when pyproject.toml changes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck unit bench clean

$(STAMP): pyproject.toml Makefile
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# The yardstick for `facekey bench`. Its metadata asks for the `dlib` sdist (a long
	# compile); dlib-bin provides the same module, so install it without dependencies.
	$(BIN)/python -m pip install --quiet --no-deps 'face_recognition==1.3.0'
	touch $(STAMP)

# Embedded defaults: SQLite and the key-encryption key under ./var, in-process FAISS index,
# the default engine. Create a network (and its API keys) with
#   .venv/bin/facekey admin create-network NAME
serve: $(STAMP)
	FACEKEY_DATA_DIR=$${FACEKEY_DATA_DIR:-var} $(BIN)/facekey serve --host $${HOST:-127.0.0.1} --port $${PORT:-8000}

test: lint typecheck unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_pipeline.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
