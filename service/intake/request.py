"""The two request forms of $assess: the Bundle itself, or Parameters (parts ``bundle``, ``asOf``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

from service.errors import InvalidInput
from service.intake.fhir_json import check_envelope
from service.intake.fields import JSON, obj, opt_list, opt_obj, opt_str, parse_datetime


def parts(parameters: JSON) -> Iterator[tuple[str | None, JSON, str]]:
    """Each ``Parameters.parameter`` as (name, part, location), type-checked (after ``check_envelope``)."""
    for i, raw in enumerate(opt_list(parameters, "parameter", "Parameters")):
        loc = f"Parameters.parameter[{i}]"
        part = obj(raw, loc)
        yield opt_str(part, "name", loc), part, loc


def unwrap(body: Any) -> tuple[Any, dt.datetime | None, str | None]:
    """(bundle, asOf, _output) from a request body; a Bundle passes through untouched."""
    resource = obj(body, "request body")
    if resource.get("resourceType") != "Parameters":
        return resource, None, None
    check_envelope(resource, "Parameters")
    bundle: Any = None
    as_of: dt.datetime | None = None
    output: str | None = None
    for name, part, loc in parts(resource):
        if name == "bundle":
            bundle = opt_obj(part, "resource", loc)
        elif name == "asOf":
            text = opt_str(part, "valueDateTime", loc) or opt_str(part, "valueInstant", loc)
            if text is None:
                raise InvalidInput(f"{loc}: asOf needs a valueDateTime", loc)
            as_of = parse_datetime(text, f"{loc}.valueDateTime")
        elif name == "_output":
            output = opt_str(part, "valueCode", loc) or opt_str(part, "valueString", loc)
    if bundle is None:
        raise InvalidInput("Parameters has no 'bundle' part with a resource", "Parameters.parameter")
    return bundle, as_of, output
