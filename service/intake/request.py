"""The request forms of $assess and $populate: the Bundle itself, or Parameters (parts ``bundle``, ``asOf``,
``_output``; $populate adds ``subject`` and ``questionnaire``); the parts an operation takes once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from service.errors import InvalidInput
from service.fhir_values import parse_datetime
from service.intake.fhir_json import check_envelope
from service.intake.fields import JSON, obj, opt_list, opt_obj, opt_str


def parts(parameters: JSON) -> Iterator[tuple[str | None, JSON, str]]:
    """Each ``Parameters.parameter`` as (name, part, location), type-checked (after ``check_envelope``)."""
    for i, raw in enumerate(opt_list(parameters, "parameter", "Parameters")):
        loc = f"Parameters.parameter[{i}]"
        part = obj(raw, loc)
        yield opt_str(part, "name", loc), part, loc


@dataclass(frozen=True)
class Cardinality:
    """The parts an operation takes at most once, read from the OperationDefinition the server publishes
    (``max`` "1"), so the check and the published contract cannot disagree. ``aliases``: other names of a
    part (SDC's ``canonical`` for ``questionnaire``), counted as that part."""

    operation: str  # "$assess"
    once: frozenset[str]
    aliases: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def of(cls, definition: JSON, aliases: Mapping[str, str] | None = None) -> Cardinality:
        once = [p["name"] for p in definition["parameter"] if p["use"] == "in" and p["max"] == "1"]
        return cls(f"${definition['code']}", frozenset(once), aliases or {})

    def check(self, parameters: JSON) -> None:
        """InvalidInput (400) naming a part given twice: otherwise one of the two would silently win."""
        seen: set[str] = set()
        for name, _, loc in parts(parameters):
            key = self.aliases.get(name or "", name)
            if key not in self.once:
                continue
            if key in seen:
                raise InvalidInput(
                    f"{loc}: more than one {key!r} part; {self.operation} takes at most one "
                    f"(max 1 in its OperationDefinition)",
                    loc,
                )
            seen.add(key)


@dataclass(frozen=True)
class Request:
    """One operation request as read: the patient's Bundle and the parts that say how to assess it.
    ``bundle`` is None when a Parameters body has no ``bundle`` part (refused when assessed)."""

    bundle: Any
    as_of: dt.datetime | None = None
    output: str | None = None
    subject: JSON | None = None  # $populate: the patient the data must be about
    questionnaire: str | None = None  # $populate: the canonical of the form to populate


def read_request(body: Any, cardinality: Cardinality | None = None) -> Request:
    """A request body as a ``Request``; a Bundle passes through untouched. A Parameters body with a part
    that ``cardinality`` allows once given twice is refused; a part of the wrong type is refused naming it."""
    resource = obj(body, "request body")
    if resource.get("resourceType") != "Parameters":
        return Request(resource)
    check_envelope(resource, "Parameters")
    if cardinality is not None:
        cardinality.check(resource)
    found: dict[str, Any] = {}
    for name, part, loc in parts(resource):
        if name == "bundle":
            found["bundle"] = opt_obj(part, "resource", loc)
        elif name == "asOf":
            text = opt_str(part, "valueDateTime", loc) or opt_str(part, "valueInstant", loc)
            if text is None:
                raise InvalidInput(f"{loc}: asOf needs a valueDateTime", loc)
            found["as_of"] = parse_datetime(text, f"{loc}.valueDateTime")
        elif name == "_output":
            found["output"] = opt_str(part, "valueCode", loc) or opt_str(part, "valueString", loc)
        elif name == "subject":
            found["subject"] = opt_obj(part, "valueReference", loc)
            if found["subject"] is None:
                raise InvalidInput(f"{loc}: subject needs a valueReference", loc)
        elif name in ("questionnaire", "canonical"):  # SDC STU 3 also names it ``canonical``
            found["questionnaire"] = opt_str(part, "valueCanonical", loc) or opt_str(part, "valueUri", loc)
            if found["questionnaire"] is None:
                raise InvalidInput(f"{loc}: {name} needs a valueCanonical (the Questionnaire's url)", loc)
    return Request(found.pop("bundle", None), **found)


def unwrap(body: Any, cardinality: Cardinality | None = None) -> tuple[Any, dt.datetime | None, str | None]:
    """(bundle, asOf, _output) from a request body: ``read_request`` with the bundle required."""
    request = read_request(body, cardinality)
    return bundle_of(request), request.as_of, request.output


def bundle_of(request: Request) -> Any:
    if request.bundle is None:
        raise InvalidInput("Parameters has no 'bundle' part with a resource", "Parameters.parameter")
    return request.bundle
