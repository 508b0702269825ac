"""``$populate`` (SDC STU 3 §Questionnaire Population, OperationDefinition Questionnaire-populate): the
patient's data in, a QuestionnaireResponse that asks only what is still missing out.

The data is read exactly as ``$assess`` reads it (the same Assessor, so the same codes, conflicts, dates,
recency and evaluation time); the response is the Assessment's own rendering (service/output/populated.py
says how it is encoded). This module is the operation around it: its parts (``subject``, ``questionnaire``),
the one Questionnaire this server populates, and the answer's Parameters.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

from service.assess import Assessment, Assessor, default_assessor
from service.codebook import CodeBook
from service.errors import InvalidInput, NotFound, Unprocessable
from service.rules.table import RuleTable

JSON = dict[str, Any]
_PATIENT = re.compile(r"(?:^|/)((?:Patient|Group)/[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass(frozen=True)
class Populated:
    parameters: JSON  # the operation's answer: Parameters with ``response`` and, if any, ``issues``
    response: JSON
    assessment: Assessment


def check_questionnaire(canonical: str | None, table: RuleTable, book: CodeBook) -> None:
    """This server populates one Questionnaire: a canonical, if given, must name it (and its version)."""
    if canonical is None:
        return
    url, _, version = canonical.partition("|")
    ours = book.canonical("Questionnaire", book.raw["questionnaire"]["id"])
    if url != ours or (version and version != table.version):
        raise NotFound(
            f"Questionnaire {canonical[:120]!r} is not published here; this server populates "
            f"{ours}|{table.version}"
        )


def _subject_key(ref: JSON, loc: str) -> str | None:
    text = _typed(ref, "reference", str, loc)
    if text:
        match = _PATIENT.search(text)
        return match.group(1) if match else text
    ident = _typed(ref, "identifier", dict, loc)
    if ident:
        return f"identifier {_typed(ident, 'system', str, loc)}|{_typed(ident, 'value', str, loc)}"
    return None


def _typed(holder: JSON, key: str, kind: type, loc: str) -> Any:
    """``holder[key]`` if absent or of ``kind``; a 400 naming it otherwise (R4 JSON: one type per element)."""
    value = holder.get(key)
    if value is not None and not isinstance(value, kind):
        raise InvalidInput(
            f"{loc}.{key} must be {'a string' if kind is str else 'an object'}", f"{loc}.{key}"
        )
    return value


def _check_subject(given: JSON | None, assessment: Assessment) -> None:
    if given is None:
        return
    loc = "Parameters.parameter.subject.valueReference"
    wanted, found = _subject_key(given, loc), _subject_key(assessment.subject_reference, "subject")
    if wanted is None:
        raise Unprocessable("the subject part names no patient (no reference, no identifier)", loc)
    if wanted.removeprefix("identifier None|") != (found or "").removeprefix("identifier None|"):
        raise Unprocessable(f"the data is about {found}, not the subject {wanted[:80]}", loc)


def populate(
    body: Any,
    assessor: Assessor | None = None,
    as_of: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> Populated:
    """Run $populate on a request body (Parameters, or the patient's Bundle alone)."""
    assessor = assessor or default_assessor()
    request = assessor.request(body, "populate")
    check_questionnaire(request.questionnaire, assessor.table, assessor.book)
    assessment = assessor.run(body, as_of=as_of, now=now, operation="populate")
    _check_subject(request.subject, assessment)
    response = assessment.populated_response()
    parameters: list[JSON] = [{"name": "response", "resource": response}]
    issues = assessment.not_used_outcome()
    if issues is not None:
        parameters.append({"name": "issues", "resource": issues})
    return Populated({"resourceType": "Parameters", "parameter": parameters}, response, assessment)


def populate_parameters(body: Any, as_of: dt.datetime | None = None) -> JSON:
    """The library form: the $populate answer (Parameters) for a request body, with the packaged rules."""
    return populate(body, as_of=as_of).parameters
