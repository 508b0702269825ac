# neckcheck — the two commands: `make run` and `make test`. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint typecheck unit deploy-check bench golden clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## run: serve on http://127.0.0.1:8080 under gunicorn with the embedded default config
run: $(STAMP)
	NECKCHECK_INSECURE_DEV=1 $(BIN)/neckcheck serve

## test: ruff, mypy, the deployment checks, then every test
test: $(STAMP) lint typecheck deploy-check unit

lint: $(STAMP)
	$(BIN)/ruff check service tests benchmarks deploy
	$(BIN)/ruff format --check service tests benchmarks deploy

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest

## deploy-check: Dockerfile (hadolint), Kubernetes manifests and compose file, validated offline
deploy-check: $(STAMP)
	PATH="$(CURDIR)/$(BIN):$$PATH" sh deploy/check.sh

## bench: benchmarks (a few minutes; never part of make test) -> benchmarks/results.json, results.png
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run.py

## golden: rewrite the golden output files after a deliberate change (review the diff!)
golden: $(STAMP)
	NECKCHECK_WRITE_GOLDEN=1 $(BIN)/pytest tests/http/test_golden.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache .hypothesis
