# neckcheck — the two commands: `make run` and `make test`. Both create .venv/ on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# Two sizes of one .venv: `make run` needs the runtime lock only (as in the image); `make test` adds the
# dev lock (tools, test servers, the screening extras). Each stamp marks one layer as installed, so
# `make test` after `make run` adds the dev layer, and `make run` after `make test` installs nothing.
RUNTIME := $(VENV)/.runtime
DEV := $(VENV)/.dev
SBOM ?= sbom.cdx.json
# The locks are resolved for the image's platform (CPython 3.11 on Linux) whatever machine runs `make lock`;
# each pin lists the hashes of all its files on PyPI. UPGRADE=--upgrade moves every pin to the newest release.
UV_COMPILE := $(BIN)/uv pip compile --quiet --generate-hashes --python-version 3.11 --python-platform linux \
	--custom-compile-command 'make lock' $(UPGRADE)

.PHONY: screenshots vendor run test docs lint typecheck unit deploy-check bench golden lock sbom schemas cql clean

# Dependencies are declared in pyproject.toml and installed from the hashed locks (`make lock`):
# the runtime ones (as in the image), then the project itself without dependencies ...
$(RUNTIME): pyproject.toml requirements.lock
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip==25.3
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --no-deps -e .
	touch $(RUNTIME)

# ... then, for everything but `make run`, the dev tools.
$(DEV): $(RUNTIME) requirements-dev.lock
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock
	touch $(DEV)

## run: serve on http://127.0.0.1:8080 under gunicorn with the embedded default config, the app's demo on
## (another address: NECKCHECK_BIND=127.0.0.1:8081 make run)
run: $(RUNTIME)
	NECKCHECK_INSECURE_DEV=1 NECKCHECK_APP_DEMO=1 $(BIN)/neckcheck serve

## vendor: fetch the clinician app's pinned browser library (service/app_ui/vendor.json) again from the npm
## registry (npm_config_registry, .npmrc), check it and record its files; needed only to move a pin
vendor: $(RUNTIME)
	$(BIN)/python -m service.app_ui.vendor --fetch

## test: ruff, mypy, the deployment checks, the docs build, then every test
test: $(DEV) lint typecheck deploy-check docs unit

## docs: the documentation site (MkDocs with Material, mkdocs.yml) -> site/, in strict mode: a broken link
## or anchor, or a page left out of the nav, fails. Offline (no plugin fetches anything); a few seconds.
## NO_MKDOCS_2_WARNING silences Material's banner about its successor, printed on every build. No --quiet:
## in MkDocs 1.6 it hides the warnings from --strict too, and a broken link then passes.
docs: $(DEV)
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

lint: $(DEV)
	$(BIN)/ruff check service tests benchmarks deploy
	$(BIN)/ruff format --check service tests benchmarks deploy

typecheck: $(DEV)
	$(BIN)/mypy

unit: $(DEV)
	$(BIN)/pytest

## deploy-check: Dockerfile (hadolint), Kubernetes manifests and compose file, validated offline
deploy-check: $(DEV)
	PATH="$(CURDIR)/$(BIN):$$PATH" sh deploy/check.sh

## bench: benchmarks (a few minutes; never part of make test) -> benchmarks/results.json, results.png
bench: $(DEV)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python benchmarks/run.py

## screenshots: the clinician app's screens, as the browser tests see them -> docs/app-*.png
screenshots: $(DEV)
	APP_SCREENSHOTS=$(CURDIR)/docs $(BIN)/pytest -q tests/browser/test_app.py -k demo

## golden: after a deliberate change to the output, rewrite the golden files that differ. Each rewritten
## file is a failed test (a rewrite never passes), so this fails when it changed something: review
## `git diff tests/fixtures/golden`, then `make test` compares against the new files.
golden: $(DEV)
	NECKCHECK_WRITE_GOLDEN=1 $(BIN)/pytest tests/http/test_scenarios.py -k test_golden_output

## lock: resolve pyproject.toml's dependencies again into requirements.lock (runtime, used by the
## Dockerfile) and requirements-dev.lock (runtime + dev + the screen and spark extras), with hashes; commit both
lock: $(DEV)
	$(UV_COMPILE) -o requirements.lock pyproject.toml
	$(UV_COMPILE) -o requirements-dev.lock --extra dev --extra screen --extra spark -c requirements.lock pyproject.toml

## sbom: CycloneDX JSON SBOM of the runtime environment -> $(SBOM): a venv holding only requirements.lock
## (installed with --require-hashes, as in the image), described by cyclonedx-py
sbom: $(DEV)
	sh deploy/sbom.sh $(BIN) $(SBOM)

## schemas: rewrite schemas/cds-hooks/{hook-request,feedback}.schema.json and their openapi.yaml components
## from the marshmallow schemas in service/payloads (tests/payloads/test_publish.py fails on drift)
schemas: $(DEV)
	$(BIN)/python -m service.payloads.publish

## cql: rewrite schemas/cql/ (the CQL library from the rule table and codes.json, and its ELM from the reference
## translator, run by Node.js); fetches the pinned CQL tools of cql/package-lock.json (tests/cql checks drift)
cql: $(STAMP)
	$(BIN)/python -m service.cql.build

clean:
	rm -rf $(VENV) $(SBOM) .mypy_cache .ruff_cache .pytest_cache .hypothesis
