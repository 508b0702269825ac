"""Opt-in full FHIR validation of the input (``?_validate=strict``): every element of the request, not
only the fields the intake reads, checked by the fhir.resources R4B models (which read R4 4.0.1).

Off by default because it costs several times the assessment itself (docs/performance.md); the
default path still type-checks every field it reads, so bad input is a 400 either way.
"""

from __future__ import annotations

from typing import Any

from fhir.resources.R4B import get_fhir_model_class
from pydantic import ValidationError

from service.errors import InvalidInput, Problem


def validate_strictly(resource: Any) -> None:
    """Raise InvalidInput naming (up to 20 of) the elements that are not valid FHIR R4."""
    resource_type = resource.get("resourceType") if isinstance(resource, dict) else None
    try:
        model = get_fhir_model_class(str(resource_type))
    except KeyError as exc:
        raise InvalidInput(f"not a FHIR resource type: {str(resource_type)[:40]!r}") from exc
    try:
        model.model_validate(resource)
    except (ValidationError, ValueError, TypeError, KeyError) as exc:  # KeyError: fhir_core on an unknown
        # resourceType nested in a Bundle entry
        errors = exc.errors() if isinstance(exc, ValidationError) else [{"loc": (), "msg": str(exc)}]
        problems = [
            Problem(
                f"{'.'.join(map(str, e['loc'])) or resource_type}: {str(e['msg'])[:200]}",
                ".".join(map(str, e["loc"])) or None,
            )
            for e in errors[:20]
        ]
        raise InvalidInput("not valid FHIR R4 (strict validation)", problems=problems) from exc
