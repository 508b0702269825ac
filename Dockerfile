# syntax=docker/dockerfile:1
# neckcheck: FHIR R4 clinical decision support service.
#   docker build -t neckcheck .
#   docker run --rm -p 8080:8080 neckcheck
# Settings are NECKCHECK_* environment variables (see service/config.py and service/gunicorn.conf.py).

# ---- builder: install the project and its pinned dependencies into a venv ----
FROM python:3.11-slim AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH="/opt/venv/bin:$PATH"

WORKDIR /src
# README.md* : pyproject.toml names README.md as the readme; the glob keeps the build working while
# the file does not exist yet (setuptools then only warns).
COPY pyproject.toml README.md* /src/
COPY service/ /src/service/
RUN pip install /src

# ---- final: the venv, the code and its data, a non-root user ----
FROM python:3.11-slim

ENV PATH="/opt/venv/bin:$PATH" \
    PYTHONPATH=/app \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    NECKCHECK_BIND=0.0.0.0:8080

RUN useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
        --shell /usr/sbin/nologin neckcheck

COPY --from=builder /opt/venv /opt/venv

# The package finds its rule table and codes at <repo root>/schemas, i.e. next to service/:
# /app/service and /app/schemas must stay siblings, and the code runs from /app.
WORKDIR /app
COPY service/ /app/service/
COPY schemas/ /app/schemas/

USER 10001
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status == 200 else 1)"]

CMD ["gunicorn", "--config", "service/gunicorn.conf.py", "service.app:create_app()"]
