"""Random record and request ids (service/ids.py): valid version 4 UUIDs, and no two workers share them."""

from __future__ import annotations

import multiprocessing
import uuid

from service.ids import random_uuid


def _ids(count: int) -> list[str]:
    return [random_uuid() for _ in range(count)]


def test_a_random_uuid_is_an_rfc_9562_version_4_uuid() -> None:
    for text in _ids(200):
        value = uuid.UUID(text)
        assert str(value) == text
        assert value.version == 4 and value.variant == uuid.RFC_4122


def test_forked_workers_do_not_repeat_each_others_ids() -> None:
    """gunicorn forks its workers from one master: each child must draw a sequence of its own."""
    random_uuid()  # the parent's generator is in use before the fork, as in a preloaded master
    with multiprocessing.get_context("fork").Pool(2) as pool:
        first, second = pool.map(_ids, [500, 500], chunksize=1)
    assert len(set(first) | set(second) | set(_ids(500))) == 1500
