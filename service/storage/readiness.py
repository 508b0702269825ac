"""Readiness: may this replica take traffic?

Answers do not need the database: audit, card and feedback records go to a background writer
(service/storage/writer.py) and wait in the spool while the database is away, and the one check that
reads and writes on the way (a token's jti, service/storage/replay.py) falls back to the process's memory.
So one shared-database outage must not take every replica out of the load balancer at once. The states:

- ready: the database answers, with the current schema;
- degraded: the database is unreachable, but the spool is writable and under NECKCHECK_SPOOL_MAX_BYTES
  (still ready: answers go on, the records are kept; /metrics says so for alerting);
- not ready: the database is unreachable and the spool cannot take more, or the schema is behind (an
  operator's step is missing: `neckcheck db upgrade`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from service.storage.database import readiness as database_readiness
from service.storage.spool import Spool

READY, DEGRADED, NOT_READY = "ready", "degraded", "not ready"


@dataclass(frozen=True)
class Readiness:
    status: str
    reason: str | None
    spool_bytes: int
    spool_max_bytes: int
    database_back: bool  # the database answers again: time to replay the spool

    @property
    def http_status(self) -> int:
        return 503 if self.status == NOT_READY else 200


def check(engine: Engine, spool: Spool) -> Readiness:
    database = database_readiness(engine)
    spool_problem = None if database.ok else spool.problem()
    if database.ok:
        status, reason = READY, None
    elif not database.reachable and spool_problem is None:
        status, reason = DEGRADED, f"{database.problem}: answering, records wait in the spool"
    elif not database.reachable:
        status, reason = NOT_READY, f"{database.problem}, and {spool_problem}"
    else:
        status, reason = NOT_READY, database.problem
    return Readiness(status, reason, spool.size(), spool.max_bytes, database_back=database.ok)
