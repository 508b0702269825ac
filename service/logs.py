"""JSON-lines logging for the ``neckcheck`` loggers.

A log line may carry only what ``json_line`` is given: the request log passes method, route template,
status, duration and request id - never bodies, tokens, patient ids or names (no URL either: a route
template such as ``/fhir/Questionnaire/<rid>`` cannot hold a patient identifier).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys

import orjson

_MARK = "_neckcheck_json"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        line.update(getattr(record, "fields", {}))
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        try:  # one line per request: orjson's encoder, several times faster than the stdlib's
            return orjson.dumps(line, default=str).decode("utf-8")
        except TypeError:  # an integer beyond 64 bits, or a key that is not a string
            return json.dumps(line, ensure_ascii=False, default=str)


def configure(level: str) -> None:
    """Give the ``neckcheck`` logger one JSON handler on stderr (idempotent: create_app may run often)."""
    logger = logging.getLogger("neckcheck")
    logger.setLevel(level.upper())
    if not any(getattr(h, _MARK, False) for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        setattr(handler, _MARK, True)
        logger.addHandler(handler)
