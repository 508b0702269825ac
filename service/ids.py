"""Random identifiers for records and requests, made without a system call.

``uuid.uuid4()`` reads os.urandom, a system call during which the interpreter lets go of the GIL. Under
load another thread (the other request thread of the worker, or the record writer) takes it, and the
request thread waits up to ``sys.getswitchinterval()`` (5 ms) to get it back: a cost paid in tail latency
by every request that made one. These ids must be unique, not secret, so they come from the ``random``
module's generator, which lives in the process (Python reseeds it from os.urandom in every forked child,
so gunicorn's workers do not share a sequence).
"""

from __future__ import annotations

import random
import uuid


def random_uuid() -> str:
    """A version 4 UUID (RFC 9562 §5.4: 122 random bits) as text."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))
