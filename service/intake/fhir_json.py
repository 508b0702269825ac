"""The FHIR JSON rules (R4 §2.6.2 JSON representation) for the resources neckcheck reads.

The field readers (``fields.py``) type-check each element the rules use. This module adds what FHIR JSON
forbids anywhere in a resource that neckcheck takes facts from (and in Patient, Encounter and the
Bundle/Parameters envelope), because such a resource is not FHIR and parts of it are echoed into the
output (ids and references become ``RiskAssessment.basis``):

- ``null`` is not a value (§2.6.2: "null is never a valid value"); it may only hold a place in an array
  of primitives whose extensions sit in the parallel ``_name`` array;
- a choice element (``value[x]``, ``effective[x]``...) appears once (§2.6.2 "choice elements");
- no string holds a control character other than tab, CR and LF (§2.24.0.1 ``string``);
- a resource ``id`` matches ``[A-Za-z0-9\\-\\.]{1,64}`` (§2.24.0.1 ``id``), and a reference the intake
  follows is a relative, absolute, ``urn:uuid:``/``urn:oid:`` or contained (``#id``) reference (§2.3.0.1).

Resources neckcheck ignores are not checked: one odd unrelated resource must not block an assessment.
The null and control-character checks walk a resource only when a fast scan of its compact JSON finds a
``null`` or a control-character escape, so a clean Bundle of 1,000 Observations pays one ``orjson.dumps``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Any

import orjson

from service.errors import InvalidInput, Problem
from service.fhir_values import ID

_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")  # and lone surrogates: not Unicode
# what orjson writes for a control character: \u0000-\u001f except the three allowed, or \b / \f; may
# also match an escaped backslash followed by b/f/u001 ("C:\\bin"), which the exact walk then clears
_CONTROL_ESCAPE = re.compile(rb"\\(?:u00[01]|[bf])")
_TYPED = r"[A-Z][A-Za-z]{1,63}/[A-Za-z0-9\-.]{1,64}(?:/_history/[A-Za-z0-9\-.]{1,64})?"
_REFERENCE = re.compile(
    rf"{_TYPED}"  # relative
    rf"|https?://[^\s/?#]+(?:/[^\s?#]*)?/{_TYPED}"  # absolute, to a RESTful FHIR server
    r"|urn:uuid:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|urn:oid:[0-2](?:\.(?:0|[1-9][0-9]*))+"
    r"|#[A-Za-z0-9\-.]{1,64}"  # a contained resource
)
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_OID = re.compile(r"[0-2](?:\.(?:0|[1-9][0-9]*))+")
_URL = re.compile(r"https?://\S+")

# Choice elements (the "[x]" names of the R4 element definitions) of what the intake reads, by path;
# tests/intake/test_fhir_json.py checks this table against the fhir.resources R4B models.
CHOICES: dict[str, tuple[str, ...]] = {
    "Observation": ("effective", "value"),
    "Observation.component": ("value",),
    "QuestionnaireResponse.item.answer": ("value",),
    "Patient": ("deceased", "multipleBirth"),
    "Encounter": (),
    "Parameters.parameter": ("value",),
}
# the references of a resource that the intake follows (subject, encounter), by resource type
FOLLOWED = {
    "Observation": ("subject", "encounter"),
    "QuestionnaireResponse": ("subject", "encounter"),
    "Encounter": ("subject",),
}


# In compact JSON, an "id", "reference" or "fullUrl" member whose string is not of the form the rules
# above allow (a nested Element.id is a plain string in FHIR, so a hit there only means "look closer")
_ODD_MEMBER = re.compile(
    rb'"id":"(?![A-Za-z0-9\-.]{1,64}")'
    rb'|"reference":"(?!(?:' + _REFERENCE.pattern.encode() + rb')")'
    rb'|"fullUrl":"(?!(?:https?://[^\s"\\]+|urn:uuid:[0-9a-fA-F-]{36}|urn:oid:[0-9.]+)")'
)


def looks_clean(value: Any) -> bool:
    """True when ``value`` certainly holds no ``null``, no control character, and no id, reference or
    fullUrl of another form than the rules allow: one fast scan of the whole request, after which the
    read resources need only their choice elements checked (``_plainly_valid``)."""
    try:
        raw = orjson.dumps(value)
    except TypeError:  # an integer beyond 64 bits somewhere: let the exact checks decide
        return False
    return b"null" not in raw and _CONTROL_ESCAPE.search(raw) is None and _ODD_MEMBER.search(raw) is None


# one search over an object's keys finds every choice-element key: "valueBoolean valueString" -> 2 values
_CHOICE_KEYS = {
    path: re.compile(rf"\b({'|'.join(prefixes)})[A-Z]") for path, prefixes in CHOICES.items() if prefixes
}


def _plainly_valid(resource: dict[str, Any]) -> bool:
    """The common case, decided without building a single message: an Observation (most of a large
    Bundle) in a request that ``looks_clean``, with one type per choice element."""
    if resource.get("resourceType") != "Observation" or "component" in resource:
        return False
    return _one_type_each(resource, "Observation")


def _one_type_each(holder: dict[str, Any], path: str) -> bool:
    """No choice element of ``holder`` given twice; may say False of a harmless key such as "a-valueX"
    (then ``_check_choices`` decides), never True of two types of one choice element."""
    found = _CHOICE_KEYS[path].findall(" ".join(holder))
    return len(found) == len(set(found))


def _plain_answers(holder: dict[str, Any]) -> bool:
    """True when no QuestionnaireResponse answer under ``holder``, at any depth, could give two types:
    the common case, decided without building a location (``_check_answers``, the same walk, names the
    places)."""
    for item in _objects(holder.get("item")):
        for answer in _objects(item.get("answer")):
            if len(answer) > 1 and not _one_type_each(answer, "QuestionnaireResponse.item.answer"):
                return False
            if not _plain_answers(answer):
                return False
        if not _plain_answers(item):
            return False
    return True


def check_resource(
    resource: dict[str, Any], loc: str, clean: bool = False, full_url: str | None = None
) -> None:
    """Raise ``InvalidInput`` naming every place where ``resource`` breaks the FHIR JSON rules above.

    ``clean`` is ``looks_clean`` of the whole request; ``full_url`` is the Bundle entry's, which stands in
    for the reference of a resource without an id.
    """
    if clean and _plainly_valid(resource):
        return
    problems: list[Problem] = []
    if full_url is not None and not _is_full_url(full_url):
        where = loc.removesuffix(".resource") + ".fullUrl"
        problems.append(Problem(f"{where} is not an absolute URL or a urn:uuid/urn:oid", where))
    if not clean and not looks_clean(resource):
        _walk(resource, loc, problems)
    rtype = str(resource.get("resourceType"))
    _check_id(resource, loc, problems)
    _check_choices(resource, rtype, loc, problems)
    for key in FOLLOWED.get(rtype, ()):
        ref = resource.get(key)
        if isinstance(ref, dict):
            _check_reference(ref.get("reference"), f"{loc}.{key}.reference", problems)
    if rtype == "Observation":
        for i, component in enumerate(_objects(resource.get("component"))):
            _check_choices(component, "Observation.component", f"{loc}.component[{i}]", problems)
    elif rtype == "QuestionnaireResponse" and not _plain_answers(resource):
        _check_answers(resource, loc, problems)
    _raise(problems)


def check_envelope(resource: dict[str, Any], loc: str, clean: bool = False) -> None:
    """The Bundle or Parameters itself, without the resources it carries (those are checked if read)."""
    problems: list[Problem] = []
    if not clean:
        _walk(resource, loc, problems, skip=("resource",))
    _check_id(resource, loc, problems)
    if resource.get("resourceType") == "Parameters":
        for i, part in enumerate(_objects(resource.get("parameter"))):
            _check_choices(part, "Parameters.parameter", f"{loc}.parameter[{i}]", problems)
    _raise(problems)


def _raise(problems: list[Problem]) -> None:
    if problems:
        raise InvalidInput("not valid FHIR JSON (R4 §2.6.2)", problems=problems[:20])


def _objects(value: Any) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _walk(value: Any, loc: str, problems: list[Problem], skip: tuple[str, ...] = ()) -> None:
    if isinstance(value, str):
        if _CONTROL.search(value):
            problems.append(
                Problem(f"{loc} holds a control character or a lone surrogate (tab, CR, LF are fine)", loc)
            )
    elif isinstance(value, dict):
        for key, child in value.items():
            if key in skip:
                continue
            # nulls may only keep places in a primitive array beside its "_name" extension array
            paired = (key[1:] if key.startswith("_") else f"_{key}") in value
            _walk_child(child, f"{loc}.{key}", problems, skip, paired and isinstance(child, list))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _walk_child(item, f"{loc}[{i}]", problems, skip, False)


def _walk_child(child: Any, where: str, problems: list[Problem], skip: tuple[str, ...], paired: bool) -> None:
    if child is None:
        problems.append(Problem(f"{where} is null: FHIR JSON has no null values; leave it out", where))
    elif paired:  # a primitive array with its extensions beside it: a null item keeps a place
        for i, item in enumerate(child):
            if item is not None:
                _walk(item, f"{where}[{i}]", problems, skip)
    else:
        _walk(child, where, problems, skip)


def _check_id(resource: dict[str, Any], loc: str, problems: list[Problem]) -> None:
    rid = resource.get("id")
    if isinstance(rid, str) and not ID.fullmatch(rid):
        where = f"{loc}.id"
        problems.append(Problem(f"{where} is not a FHIR id ([A-Za-z0-9-.], 1 to 64 characters)", where))


def _check_choices(holder: dict[str, Any], path: str, loc: str, problems: list[Problem]) -> None:
    """Name every key past the first of a choice element (the same _CHOICE_KEYS as _plainly_valid)."""
    pattern = _CHOICE_KEYS.get(path)
    if pattern is None:
        return
    first: dict[str, str] = {}
    for key in holder:
        match = pattern.match(key)  # a prefix then a type name: "valueBoolean"
        if match is None:
            continue
        prefix = match.group(1)
        if prefix in first:
            where = f"{loc}.{key}"
            problems.append(
                Problem(f"{loc} has both {first[prefix]} and {key}: {prefix}[x] takes one type", where)
            )
        else:
            first[prefix] = key


def _is_full_url(url: str) -> bool:
    """Bundle.entry.fullUrl: an absolute URL, or a urn:uuid / urn:oid (R4 §2.36.4)."""
    if url.startswith("urn:uuid:"):
        return _UUID.fullmatch(url, 9) is not None
    if url.startswith("urn:oid:"):
        return _OID.fullmatch(url, 8) is not None
    return _URL.fullmatch(url) is not None


@lru_cache(maxsize=4096)  # a Bundle names the same patient and encounter in every entry
def _is_reference(value: str) -> bool:
    return _REFERENCE.fullmatch(value) is not None


def _check_reference(value: Any, loc: str, problems: list[Problem]) -> None:
    if isinstance(value, str) and not _is_reference(value):
        problems.append(
            Problem(f"{loc} is not a relative, absolute, urn:uuid/urn:oid or contained reference", loc)
        )


def _check_answers(holder: dict[str, Any], loc: str, problems: list[Problem]) -> None:
    for i, item in enumerate(_objects(holder.get("item"))):
        where = f"{loc}.item[{i}]"
        for j, answer in enumerate(_objects(item.get("answer"))):
            at = f"{where}.answer[{j}]"
            _check_choices(answer, "QuestionnaireResponse.item.answer", at, problems)
            _check_answers(answer, at, problems)
        _check_answers(item, where, problems)
