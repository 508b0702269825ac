"""Whether a SMART token's scopes allow the searches (and reads) the clinician app makes for the launched
patient.

SMART App Launch defines two scope syntaxes, and an EHR may grant either:

- v1 (SMART 1.0, §Scopes and Launch Context): ``<compartment>/<type>.<read|write|*>``, e.g.
  ``patient/Observation.read``; ``read`` covers read and search.
- v2 (SMART 2.x, §Scopes for requesting FHIR resources): ``<compartment>/<type>.<cruds>``, the letters a
  subset of ``cruds`` in that order, e.g. ``patient/Observation.rs``; a search needs ``s``, a read ``r``.

The type may be ``*``. ``patient/`` scopes allow data in the launched patient's compartment; ``user/`` scopes
allow what the signed-in user may see, which includes it (the patient itself is checked separately, against
the token's ``patient``). ``system/`` scopes belong to backend services, never to a clinician's browser, and
are not taken. A v2 scope narrowed by a query (``patient/Observation.rs?category=vital-signs``) does not
allow the app's unrestricted searches, so it is not counted.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final

_SCOPE: Final = re.compile(r"(?:patient|user)/(?P<type>\*|[A-Z][A-Za-z]{0,63})\.(?P<access>[a-z*]+)")
_V2: Final = re.compile(r"c?r?u?d?s?")  # SMART 2.x: letters of "cruds", in that order, each at most once


def allows_search(scopes: Iterable[str], resource_type: str) -> bool:
    """True when one of ``scopes`` lets the holder search ``resource_type`` in the patient's compartment."""
    return any(_allowed(scope, resource_type, "s") for scope in scopes)


def allows_read(scopes: Iterable[str], resource_type: str) -> bool:
    """True when one of ``scopes`` lets the holder read ``resource_type`` by id (the launched Patient)."""
    return any(_allowed(scope, resource_type, "r") for scope in scopes)


def missing_searches(granted: str, resource_types: Iterable[str]) -> list[str]:
    """The types of ``resource_types`` that the space-separated ``granted`` scopes do not let us search."""
    scopes = granted.split()
    return sorted(t for t in set(resource_types) if not allows_search(scopes, t))


def _allowed(scope: str, resource_type: str, letter: str) -> bool:
    found = _SCOPE.fullmatch(scope)
    if found is None or found["type"] not in ("*", resource_type):
        return False
    access = found["access"]
    if access in ("read", "*"):  # v1
        return True
    return bool(access) and _V2.fullmatch(access) is not None and letter in access
