"""Identifiers: random ones for records and requests, and deterministic ones for outputs.

Random ones (``random_uuid``) are made without a system call.

``uuid.uuid4()`` reads os.urandom, a system call during which the interpreter lets go of the GIL. Under
load another thread (the other request thread of the worker, or the record writer) takes it, and the
request thread waits up to ``sys.getswitchinterval()`` (5 ms) to get it back: a cost paid in tail latency
by every request that made one. These ids must be unique, not secret, so they come from the ``random``
module's generator, which lives in the process (Python reseeds it from os.urandom in every forked child,
so gunicorn's workers do not share a sequence).

Deterministic ones (``content_hash``, ``evaluation_digest``, ``stable_uuid``): the same input, rule version
and asOf always give the same ids. That is what lets an EHR post a transaction Bundle twice without
duplicates (conditional create on the identifier) and what makes outputs byte-identical for a golden test.
Every front end that names what it made (a card, the app's answers, $populate's response) derives it the
same way.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from typing import Any

import orjson


def random_uuid() -> str:
    """A version 4 UUID (RFC 9562 §5.4: 122 random bits) as text."""
    return str(uuid.UUID(int=random.getrandbits(128), version=4))


NAMESPACE = uuid.UUID("7b4f0f3e-5a0c-5b8e-9a53-6e65636b6368")  # fixed; changing it changes every id
_NAMESPACE_BYTES = NAMESPACE.bytes
# hashlib lets go of the GIL while it hashes 2,048 bytes or more at once (CPython's HASHLIB_GIL_MINSIZE);
# under load another thread then takes the GIL and this request waits up to sys.getswitchinterval() (5 ms)
# to get it back. Fed in smaller pieces, the hash (microseconds for a hook's input) keeps it.
_HASH_CHUNK = 2047


def content_hash(request: Any) -> str:
    """SHA-256 of the input's canonical JSON (sorted keys, no spaces): computed once per assessment,
    shared by the identifiers and the audit record."""
    try:
        canonical = orjson.dumps(request, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # an integer beyond 64 bits (or a lone surrogate) in a field intake does not read
        text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        canonical = text.encode("utf-8", "surrogatepass")
    digest = hashlib.sha256()
    view = memoryview(canonical)
    for start in range(0, len(view), _HASH_CHUNK):
        digest.update(view[start : start + _HASH_CHUNK])
    return digest.hexdigest()


def evaluation_digest(input_hash: str, table_id: str, table_version: str, as_of: str) -> str:
    """The same input, rule version and evaluation time give the same digest, hence the same ids."""
    text = "\n".join((table_id, table_version, as_of, input_hash))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def stable_uuid(digest: str, name: str) -> str:
    """``str(uuid.uuid5(NAMESPACE, f"{digest}/{name}"))``, spelled out (RFC 9562 §5.5: SHA-1 of namespace
    and name, version 5, variant 10) without building a UUID object: an answer needs several."""
    octets = bytearray(hashlib.sha1(_NAMESPACE_BYTES + f"{digest}/{name}".encode()).digest()[:16])
    octets[6] = octets[6] & 0x0F | 0x50
    octets[8] = octets[8] & 0x3F | 0x80
    x = octets.hex()
    return f"{x[:8]}-{x[8:12]}-{x[12:16]}-{x[16:20]}-{x[20:]}"
