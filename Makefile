# neckcheck — the two commands: `make run` and `make test`. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SBOM ?= sbom.cdx.json
# The locks are resolved for the image's platform (CPython 3.11 on Linux) whatever machine runs `make lock`;
# each pin lists the hashes of all its files on PyPI. UPGRADE=--upgrade moves every pin to the newest release.
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux \
	--custom-compile-command 'make lock' $(UPGRADE)

.PHONY: screenshots vendor run test lint typecheck unit deploy-check bench golden lock sbom schemas cql clean

# Dependencies are declared in pyproject.toml and installed from the hashed locks (`make lock`):
# the runtime ones (as in the image), then the project itself without dependencies, then the dev tools.
$(STAMP): pyproject.toml requirements.lock requirements-dev.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	$(BIN)/python -m service.app_ui.vendor
	touch $(STAMP)

## run: serve on http://127.0.0.1:8080 under gunicorn with the embedded default config, the app's demo on
run: vendor
	NECKCHECK_INSECURE_DEV=1 NECKCHECK_APP_DEMO=1 $(BIN)/neckcheck serve

## vendor: fetch the clinician app's pinned browser library (service/app_ui/vendor.json) from the npm registry
vendor: $(STAMP)
	$(BIN)/python -m service.app_ui.vendor

## test: ruff, mypy, the deployment checks, then every test
test: $(STAMP) vendor lint typecheck deploy-check unit

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

## screenshots: the clinician app's screens, as the browser tests see them -> docs/app-*.png
screenshots: vendor
	APP_SCREENSHOTS=$(CURDIR)/docs $(BIN)/pytest -q tests/browser/test_app.py -k demo

## golden: after a deliberate change to the output, rewrite the golden files that differ. Each rewritten
## file is a failed test (a rewrite never passes), so this fails when it changed something: review
## `git diff tests/fixtures/golden`, then `make test` compares against the new files.
golden: $(STAMP)
	NECKCHECK_WRITE_GOLDEN=1 $(BIN)/pytest tests/http/test_scenarios.py -k test_golden_output

## lock: resolve pyproject.toml's dependencies again into requirements.lock (runtime, used by the
## Dockerfile) and requirements-dev.lock (runtime + dev + the screen and spark extras), with hashes; commit both
lock: $(STAMP)
	$(UV_COMPILE) -o requirements.lock pyproject.toml
	$(UV_COMPILE) -o requirements-dev.lock --extra dev --extra screen --extra spark -c requirements.lock pyproject.toml

## sbom: CycloneDX JSON SBOM of the runtime environment -> $(SBOM): a venv holding only requirements.lock
## (installed with --require-hashes, as in the image), described by cyclonedx-py
sbom: $(STAMP)
	sh deploy/sbom.sh $(BIN) $(SBOM)

## schemas: rewrite schemas/cds-hooks/{hook-request,feedback}.schema.json and their openapi.yaml components
## from the marshmallow schemas in service/payloads (tests/payloads/test_publish.py fails on drift)
schemas: $(STAMP)
	$(BIN)/python -m service.payloads.publish

## cql: rewrite schemas/cql/ (the CQL library from the rule table and codes.json, and its ELM from the reference
## translator, run by Node.js); fetches the pinned CQL tools of cql/package-lock.json (tests/cql checks drift)
cql: $(STAMP)
	$(BIN)/python -m service.cql.build

clean:
	rm -rf $(VENV) $(SBOM) .mypy_cache .ruff_cache .pytest_cache .hypothesis
