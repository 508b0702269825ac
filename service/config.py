"""Settings: defaults, then ``NECKCHECK_*`` environment variables (or an explicit dict), validated once.

A bad value stops the start with a message naming the variable; nothing reads the environment later.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from service.codebook import DEFAULT_CODES
from service.errors import ConfigError
from service.rules.table import DEFAULT_TABLE

PREFIX = "NECKCHECK_"
# Read by service/gunicorn.conf.py (the server process), not by the app.
SERVER_VARIABLES = frozenset(
    PREFIX + name
    for name in (
        "BIND",
        "WORKERS",
        "THREADS",
        "TIMEOUT",
        "GRACEFUL_TIMEOUT",
        "MAX_REQUESTS",
        "MAX_REQUESTS_JITTER",
    )
)


@dataclass(frozen=True)
class Settings:
    max_body_bytes: int = 1024 * 1024
    max_entries: int = 1000
    rules_file: Path = DEFAULT_TABLE
    codes_file: Path = DEFAULT_CODES
    log_level: str = "INFO"

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Settings:
        """Build from lower-case keys (``max_entries``) or env-style keys (``NECKCHECK_MAX_ENTRIES``)."""
        known = {f.name: f for f in fields(cls)}
        kwargs: dict[str, Any] = {}
        for key, raw in values.items():
            name = key[len(PREFIX) :].lower() if key.startswith(PREFIX) else key.lower()
            if name not in known:
                if key.startswith(PREFIX):
                    raise ConfigError(f"{key}: unknown setting (known: {', '.join(_env(n) for n in known)})")
                continue
            kwargs[name] = _convert(name, raw, known[name].type)
        settings = cls(**kwargs)
        settings.check()
        return settings

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if environ is None else environ
        return cls.from_mapping(
            {k: v for k, v in env.items() if k.startswith(PREFIX) and k not in SERVER_VARIABLES}
        )

    def check(self) -> None:
        if self.max_body_bytes < 1024:
            raise ConfigError(f"{_env('max_body_bytes')} must be at least 1024, got {self.max_body_bytes}")
        if self.max_entries < 1:
            raise ConfigError(f"{_env('max_entries')} must be at least 1, got {self.max_entries}")
        for name in ("rules_file", "codes_file"):
            path = getattr(self, name)
            if not Path(path).is_file():
                raise ConfigError(f"{_env(name)}: no such file: {path}")
        if self.log_level.upper() not in ("DEBUG", "INFO", "WARNING", "ERROR"):
            raise ConfigError(f"{_env('log_level')} must be DEBUG, INFO, WARNING or ERROR")


def _env(name: str) -> str:
    return PREFIX + name.upper()


def _convert(name: str, raw: Any, kind: Any) -> Any:
    text = str(raw)
    if kind in (int, "int"):
        try:
            return int(text)
        except ValueError:
            raise ConfigError(f"{_env(name)} must be an integer, got {text[:40]!r}") from None
    if kind in (Path, "Path"):
        return Path(text)
    return text
