"""Structural check of deploy/compose.yaml without a container engine (stdlib + PyYAML).

Not a full Compose-spec validation: it checks what this project relies on - the two services, their
healthchecks, the start order (service_healthy), the database URL matching the PostgreSQL service, the
hardening, and that the insecure development switch is loudly marked.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

TOP_LEVEL = {"name", "services", "volumes", "networks", "secrets", "configs"}


def check(path: Path) -> list[str]:
    text = path.read_text(encoding="utf-8")
    spec: dict[str, Any] = yaml.safe_load(text)
    problems: list[str] = []

    def need(ok: object, message: str) -> None:
        if not ok:
            problems.append(message)

    need(set(spec) <= TOP_LEVEL, f"unknown top-level keys: {sorted(set(spec) - TOP_LEVEL)}")
    services = spec.get("services", {})
    need({"neckcheck", "postgres"} <= set(services), "services neckcheck and postgres are required")
    if problems:
        return problems
    for name, service in services.items():
        health = service.get("healthcheck", {})
        need(
            isinstance(health.get("test"), list) and health["test"][0] in ("CMD", "CMD-SHELL"),
            f"{name}: healthcheck.test must be a CMD or CMD-SHELL list",
        )
        for key in ("interval", "timeout", "retries"):
            need(key in health, f"{name}: healthcheck.{key} missing")
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if not source.startswith((".", "/")):
                need(source in (spec.get("volumes") or {}), f"{name}: volume {source} not declared")

    app, db = services["neckcheck"], services["postgres"]
    build = app.get("build", {})
    need(
        (path.parent / build.get("context", ".") / build.get("dockerfile", "Dockerfile")).is_file(),
        "neckcheck: build context/dockerfile does not point at the Dockerfile",
    )
    need(
        app.get("depends_on", {}).get("postgres", {}).get("condition") == "service_healthy",
        "neckcheck: depends_on postgres with condition service_healthy",
    )
    env = app.get("environment", {})
    need(
        isinstance(env, dict) and all(isinstance(v, str) for v in env.values()),
        "neckcheck: environment must be a mapping of quoted strings",
    )
    url = urlsplit(env.get("NECKCHECK_DATABASE_URL", ""))
    db_env = db.get("environment", {})
    need(url.scheme == "postgresql+psycopg", "NECKCHECK_DATABASE_URL must be postgresql+psycopg://")
    need(url.hostname == "postgres" and (url.port or 5432) == 5432, "database URL must name postgres:5432")
    need(
        url.username == db_env.get("POSTGRES_USER")
        and url.password == db_env.get("POSTGRES_PASSWORD")
        and url.path.lstrip("/") == db_env.get("POSTGRES_DB"),
        "database URL user/password/database must match the postgres service",
    )
    need(env.get("NECKCHECK_AUTO_MIGRATE") == "1", "NECKCHECK_AUTO_MIGRATE must be 1 (fresh database)")
    need(env.get("NECKCHECK_BIND") == "0.0.0.0:8080", "NECKCHECK_BIND must be 0.0.0.0:8080")
    if env.get("NECKCHECK_INSECURE_DEV") not in (None, "0"):
        need(
            "DEVELOPMENT ONLY" in text and "LOCAL TRIAL ONLY" in text,
            "NECKCHECK_INSECURE_DEV is on: the file must say DEVELOPMENT ONLY / LOCAL TRIAL ONLY",
        )
    need(
        all(str(p).startswith("127.0.0.1:") for p in app.get("ports", [])),
        "neckcheck: publish ports on 127.0.0.1 only",
    )
    need(
        app.get("read_only") is True and "/tmp" in app.get("tmpfs", []),
        "neckcheck: read_only root filesystem with a /tmp tmpfs",
    )
    need(str(app.get("user", "")).split(":")[0] == "10001", "neckcheck: user 10001")
    need(app.get("cap_drop") == ["ALL"], "neckcheck: cap_drop ALL")
    need(str(db.get("image", "")).startswith("postgres:16"), "postgres: image postgres:16")
    need("ports" not in db, "postgres: must not publish its port")
    return problems


def main(argv: list[str]) -> int:
    path = Path(argv[0] if argv else Path(__file__).with_name("compose.yaml"))
    problems = check(path)
    for problem in problems:
        print(f"{path}: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
