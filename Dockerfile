# syntax=docker/dockerfile:1
# neckcheck: FHIR R4 + CDS Hooks clinical decision support service.
#   docker build -t neckcheck .
#   docker run --rm --read-only --tmpfs /tmp -p 8080:8080 neckcheck
# Settings are NECKCHECK_* environment variables (docs/operations/configuration.md, service/config.py and
# service/gunicorn.conf.py). Kubernetes manifests and a compose file for a local trial: deploy/.
#
# Runs with a read-only root filesystem. Writable: /tmp (mount a tmpfs / emptyDir; gunicorn heartbeats,
# Prometheus multiprocess files) and the VOLUME /var/lib/neckcheck: the audit spool (records kept while
# the database is down) and the default SQLite database - for a single container only. With several
# replicas (Kubernetes) NECKCHECK_DATABASE_URL must be PostgreSQL (deploy/kubernetes requires it).
#
# Base image: pinned to a patch release; bump it (both stages) for Python/Debian security fixes.
ARG PYTHON_IMAGE=python:3.11.13-slim-bookworm

# ---- builder: install the project and its pinned dependencies into a venv ----
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
# The runtime dependencies exactly as locked (`make lock`): every file checked against its hash in
# requirements.lock, nothing resolved at build time.
COPY requirements.lock /src/
RUN pip install --no-cache-dir --require-hashes -r /src/requirements.lock
# Then the project alone (--no-deps), as a wheel: service/data/ links to schemas/ and openapi.yaml, and the
# wheel build copies their contents into the package (pyproject.toml package-data). The image runs the
# installed package, never the sources, and needs no PYTHONPATH.
COPY pyproject.toml README.md openapi.yaml /src/
COPY schemas/ /src/schemas/
COPY service/ /src/service/
COPY tests/fixtures/scenarios/ /src/tests/fixtures/scenarios/
# The clinician app's browser library is in the sources (service/app_ui/static/vendor/), checked here
# against its pinned sha512 (service/app_ui/vendor.json), offline: it ships inside the wheel, so the
# running app never reaches out to a CDN.
RUN python -m service.app_ui.vendor
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels /src \
    && pip install --no-cache-dir --no-deps /wheels/neckcheck-*.whl

# ---- final: the venv, the code and its data, a non-root user ----
FROM ${PYTHON_IMAGE}

LABEL org.opencontainers.image.title="neckcheck" \
      org.opencontainers.image.description="FHIR R4 + CDS Hooks clinical decision support (neck pain with facial numbness)"

# HOME=/tmp: nothing in the image is writable but /tmp and /var/lib/neckcheck.
# NECKCHECK_APP_DEMO=0: no demo patients in a deployed image (set 1 to show /app/demo).
ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    NECKCHECK_BIND=0.0.0.0:8080 \
    NECKCHECK_DATABASE_URL=sqlite:////var/lib/neckcheck/neckcheck.db \
    NECKCHECK_SPOOL_DIR=/var/lib/neckcheck/spool \
    NECKCHECK_APP_DEMO=0

RUN groupadd --system --gid 10001 neckcheck \
    && useradd --system --uid 10001 --gid 10001 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin neckcheck \
    && mkdir -p /var/lib/neckcheck \
    && chown 10001:10001 /var/lib/neckcheck

COPY --from=builder /opt/venv /opt/venv

# Nothing else: the venv holds the installed package with its data, byte-compiled by pip at install time
# (at run time the root filesystem is read-only). Owned by root, so the service cannot change its own code
# or rules.
WORKDIR /var/lib/neckcheck

VOLUME ["/var/lib/neckcheck"]
USER 10001:10001
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

CMD ["neckcheck", "serve"]
