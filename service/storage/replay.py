"""Token ids (``jti``) already used, in the database, so a replay is refused whichever worker or replica
receives it (CDS Hooks 2.0.1 §Trusting CDS Clients: a jti is used once)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from service.storage.schema import jwt_replay

PRUNE_EVERY = 500  # first uses between two deletions of expired rows


class ReplayStore:
    def __init__(self, engine: Engine, leeway_seconds: int = 30):
        self.engine = engine
        self.leeway = leeway_seconds
        self._since_prune = 0

    def first_use(self, iss: str, jti: str, exp: float) -> bool:
        """True the first time (iss, jti) is seen; False for a replay. Raises SQLAlchemyError if the
        database is unavailable (the verifier then relies on its in-process memory)."""
        try:
            with self.engine.begin() as conn:
                conn.execute(insert(jwt_replay).values(iss=iss[:255], jti=jti[:255], exp=exp))
        except IntegrityError:
            return False
        self._since_prune += 1
        if self._since_prune >= PRUNE_EVERY:
            self._since_prune = 0
            with self.engine.begin() as conn:
                conn.execute(delete(jwt_replay).where(jwt_replay.c.exp < time.time() - self.leeway))
        return True
