#!/usr/bin/env python3
"""Build the bad-input corpus for POST /fhir/$assess (tests/bad_inputs, see README.md there).

Every request body and tests/bad_inputs/expected.json come from the CASES below, so a case is stated
once: its body, the status rules.md §4 and the README's errors section give it, and why.

Run from the repository root:  python tests/bad_inputs/build.py [OUT_DIR]   (default: this folder)
Stdlib only, deterministic (no clock, no randomness). Bodies of more than 64 KiB (deep nesting, the
900 KB note, the entry-limit Bundles, the 1 MiB boundary) are written too but listed in the generated
.gitignore: they are rebuilt by the tests rather than committed.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
BIG = 64 * 1024  # bodies above this are generated, not committed
MAX_BODY = 1_048_576  # NECKCHECK_MAX_BODY_BYTES default
MAX_ENTRIES = 1000  # NECKCHECK_MAX_ENTRIES default

TS = "2026-03-10T09:00:00Z"
PATIENT = "Patient/bad-1"
QUESTIONNAIRE = "https://neckcheck.org/fhir/Questionnaire/neckcheck-screen"
LOCAL = "https://neckcheck.org/fhir/CodeSystem/neckcheck-fact"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
YN = "http://terminology.hl7.org/CodeSystem/v2-0136"
FHIR = "application/fhir+json"

CODE = {
    "facial-numbness": (SCT, "309557009"),
    "facial-numbness-side": (LOCAL, "facial-numbness-side"),
    "facial-numbness-days": (LOCAL, "facial-numbness-days"),
    "neck-pain": (SCT, "81680005"),
    "neck-pain-severity": (LOINC, "72514-3"),
    "weakness": (SCT, "26544005"),
    "headache": (SCT, "25064002"),
}
LATERALITY = {"system": SCT, "code": "272741003"}
LEFT = {"system": SCT, "code": "7771000"}
RIGHT = {"system": SCT, "code": "24028007"}

CASES: dict[str, dict[str, Any]] = {}
BODIES: dict[str, bytes] = {}


def case(
    name: str,
    body: Any,
    status: int,
    why: str,
    content_type: str = FHIR,
    query: str | None = None,
    xfail: str | None = None,
    expression: str | None = None,
) -> None:
    """One corpus file: ``body`` is bytes as is, or a JSON value written with indent=1."""
    if name in CASES:
        raise SystemExit(f"duplicate case {name}")
    if isinstance(body, bytes):
        data = body
    else:
        data = (json.dumps(body, indent=1, ensure_ascii=False) + "\n").encode("utf-8")
    BODIES[name] = data
    entry: dict[str, Any] = {"status": status, "contentType": content_type, "why": why}
    if query:
        entry["query"] = query
    if xfail:
        entry["xfail"] = xfail
    if expression:
        entry["expression"] = expression  # an issue of the OperationOutcome names this path
    CASES[name] = entry


def coding(fact: str) -> dict[str, str]:
    system, code = CODE[fact]
    return {"system": system, "code": code}


def obs(fact: str = "weakness", rid: str | None = None, **fields: Any) -> dict[str, Any]:
    """A valid Observation of ``fact`` (valueBoolean true); a field given as None is removed."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "id": rid or fact,
        "status": "final",
        "code": {"coding": [coding(fact)]},
        "subject": {"reference": PATIENT},
        "effectiveDateTime": TS,
        "valueBoolean": True,
    }
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def days(value: Any = 20, rid: str = "days", **fields: Any) -> dict[str, Any]:
    fields.setdefault("valueQuantity", {"value": value, "unit": "d", "system": UCUM, "code": "d"})
    return obs("facial-numbness-days", rid, valueBoolean=None, **fields)


def qr(items: list[Any] | Any, rid: str = "qr", **fields: Any) -> dict[str, Any]:
    resource: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "id": rid,
        "questionnaire": QUESTIONNAIRE,
        "status": "completed",
        "subject": {"reference": PATIENT},
        "authored": TS,
        "item": items,
    }
    resource.update(fields)
    return {k: v for k, v in resource.items() if v is not None}


def answer(link_id: str, **value: Any) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [value]}


def bundle(*resources: Any, timestamp: Any = TS, **fields: Any) -> dict[str, Any]:
    entries = [
        {"fullUrl": f"urn:uuid:00000000-0000-4000-8000-{i:012d}", "resource": r}
        for i, r in enumerate(resources)
    ]
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "collection", "timestamp": timestamp}
    out.update(fields)
    out["entry"] = entries
    return {k: v for k, v in out.items() if v is not None}


def parameters(*parts: Any) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parts)}


def compact(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def padded_to(size: int) -> bytes:
    """A valid one-fact Bundle whose compact JSON is exactly ``size`` bytes (padding in a note)."""
    base = len(compact(bundle(obs(note=[{"text": ""}]))))
    body = compact(bundle(obs(note=[{"text": "n" * (size - base)}])))
    assert len(body) == size, (len(body), size)
    return body


def cases() -> None:
    """The corpus, one case per call, grouped by status."""
    ok = bundle(obs())

    # --- 400: not readable JSON -------------------------------------------------------------
    case(
        "truncated-json.json",
        b'{"resourceType": "Bundle", "entry": [{"resource": {"resourceTy',
        400,
        "JSON cut off mid-string",
    )
    case("empty-body.json", b"", 400, "empty body")
    case("whitespace-only.json", b" \r\n\t \n", 400, "only whitespace: empty after stripping")
    case(
        "nan.json",
        b'{"resourceType": "Bundle", "total": NaN, "entry": []}',
        400,
        "NaN is not JSON (RFC 8259) though Python's json reads it",
    )
    case(
        "infinity.json",
        b'{"resourceType": "Bundle", "total": Infinity, "entry": []}',
        400,
        "Infinity is not JSON",
    )
    case(
        "negative-infinity.json",
        b'{"resourceType": "Bundle", "total": -Infinity, "entry": []}',
        400,
        "-Infinity is not JSON",
    )
    body = compact(bundle(days())).replace(b'"value":20', b'"value":1e400')
    case("number-1e400.json", body, 400, "1e400 overflows a double: not a number the service can read")
    body = compact(bundle(days())).replace(b'"value":20', b'"value":' + b"7" * 5000)
    case(
        "integer-5000-digits.json", body, 400, "an integer of 5,000 digits is beyond Python's int parse limit"
    )
    body = compact(bundle(obs())).replace(b'"status":"final"', b'"status":"final","status":"cancelled"')
    case("duplicate-keys.json", body, 400, "duplicate property in an Observation (FHIR JSON forbids them)")
    case(
        "non-utf8.json",
        compact(bundle(obs(note=[{"text": "caf\u00e9"}]))).replace(b"\xc3\xa9", b"\xe9"),
        400,
        "Latin-1 byte 0xE9 in a note: not UTF-8",
    )
    case(
        "utf16-bom.json",
        b"\xff\xfe" + compact(ok).decode("utf-8").encode("utf-16-le"),
        400,
        "UTF-16LE with BOM: FHIR JSON is UTF-8",
    )
    case(
        "utf8-bom.json",
        b"\xef\xbb\xbf" + compact(ok),
        400,
        "UTF-8 BOM before the JSON: RFC 8259 says not to send one; refused with a reason, not guessed",
    )
    case(
        "deep-nesting-100000.json",
        b'{"resourceType":"Bundle","entry":[' + b"[" * 100_000 + b"]" * 100_000 + b"]}",
        400,
        "100,000 nested arrays: refused as too deep, not a RecursionError 500",
    )

    # --- 400: JSON, but not a Bundle ---------------------------------------------------------
    case("json-array.json", [ok], 400, "a JSON array holding a Bundle, not a resource")
    case("json-string.json", "Bundle", 400, "a JSON string")
    case("json-null.json", None, 400, "JSON null")
    case("json-number.json", 42, 400, "a JSON number")
    case("json-empty-object.json", {}, 400, "an object without resourceType")
    case(
        "patient-not-bundle.json",
        {"resourceType": "Patient", "id": "bad-1"},
        400,
        "a bare Patient: not a Bundle or Parameters",
    )
    case("observation-bare.json", obs(), 400, "a bare Observation: must be wrapped in a Bundle")
    case(
        "bundle-lowercase-resourcetype.json",
        {**ok, "resourceType": "bundle"},
        400,
        "resourceType is case-sensitive: 'bundle' is not a Bundle",
    )
    case("bundle-no-entry.json", bundle(), 400, "a Bundle with no entries: nothing to assess")
    case("bundle-entry-null.json", {**ok, "entry": None}, 400, "entry null is no entries")
    case(
        "bundle-entry-not-list.json",
        {**ok, "entry": {"resource": obs()}},
        400,
        "Bundle.entry is an object, not an array",
    )
    case(
        "bundle-entry-items-not-objects.json",
        {**ok, "entry": ["Observation/weakness", 1]},
        400,
        "Bundle.entry items are a string and a number",
    )
    case(
        "bundle-entry-resource-string.json",
        {**ok, "entry": [{"resource": "Observation/weakness"}]},
        400,
        "entry.resource is a string, not a resource",
    )
    case(
        "resource-without-resourcetype.json",
        bundle({k: v for k, v in obs().items() if k != "resourceType"}),
        400,
        "an entry resource without resourceType",
    )
    case(
        "resource-resourcetype-number.json",
        bundle({**obs(), "resourceType": 7}),
        400,
        "resourceType is a number",
    )

    # --- 400: a field the intake reads has the wrong type (Observation) ------------------------
    case("obs-status-number.json", bundle(obs(status=1)), 400, "Observation.status is a number")
    case("obs-status-missing.json", bundle(obs(status=None)), 400, "Observation.status is required")
    case("obs-code-string.json", bundle(obs(code="26544005")), 400, "Observation.code is a string")
    case(
        "obs-code-coding-object.json",
        bundle(obs(code={"coding": coding("weakness")})),
        400,
        "Observation.code.coding is an object, not an array",
    )
    case(
        "obs-coding-item-string.json",
        bundle(obs(code={"coding": ["26544005"]})),
        400,
        "a code.coding item is a string",
    )
    case(
        "obs-coding-system-number.json",
        bundle(obs(code={"coding": [{"system": 42, "code": "26544005"}]})),
        400,
        "Coding.system is a number",
    )
    case(
        "obs-coding-code-number.json",
        bundle(obs(code={"coding": [{"system": SCT, "code": 26544005}]})),
        400,
        "Coding.code is a number",
    )
    case(
        "obs-valueboolean-string.json",
        bundle(obs(valueBoolean="true")),
        400,
        "valueBoolean is the string 'true'",
    )
    case("obs-valueboolean-number.json", bundle(obs(valueBoolean=1)), 400, "valueBoolean is 1")
    case(
        "obs-valuecodeableconcept-string.json",
        bundle(obs(valueBoolean=None, valueCodeableConcept="Y")),
        400,
        "valueCodeableConcept is a string",
    )
    case(
        "obs-valuecodeableconcept-coding-object.json",
        bundle(obs(valueBoolean=None, valueCodeableConcept={"coding": {"system": YN, "code": "Y"}})),
        400,
        "valueCodeableConcept.coding is an object",
    )
    case(
        "obs-valuequantity-string.json",
        bundle(obs("facial-numbness"), days(valueQuantity="20 d")),
        400,
        "valueQuantity is a string",
    )
    case(
        "obs-valuequantity-value-string.json",
        bundle(obs("facial-numbness"), days("20")),
        400,
        "valueQuantity.value is a string",
    )
    case(
        "obs-valuequantity-code-number.json",
        bundle(obs("facial-numbness"), days(valueQuantity={"value": 20, "system": UCUM, "code": 1})),
        400,
        "valueQuantity.code is a number",
    )
    case(
        "obs-valueinteger-string.json",
        bundle(obs("facial-numbness"), days(valueQuantity=None, valueInteger="20")),
        400,
        "valueInteger is a string",
    )
    case(
        "obs-valueinteger-boolean.json",
        bundle(obs("facial-numbness"), days(valueQuantity=None, valueInteger=True)),
        400,
        "valueInteger is a boolean (bool is an int in Python, never in FHIR)",
    )
    case(
        "obs-valueinteger-decimal.json",
        bundle(obs("facial-numbness"), days(valueQuantity=None, valueInteger=2.5)),
        400,
        "valueInteger is 2.5",
    )
    case(
        "obs-effectivedatetime-number.json",
        bundle(obs(effectiveDateTime=20260310)),
        400,
        "effectiveDateTime is a number",
    )
    case(
        "obs-effectiveperiod-string.json",
        bundle(obs(effectiveDateTime=None, effectivePeriod="2026-03-01/")),
        400,
        "effectivePeriod is a string",
    )
    case(
        "obs-effectiveperiod-start-number.json",
        bundle(obs("facial-numbness", effectiveDateTime=None, effectivePeriod={"start": 20260301})),
        400,
        "effectivePeriod.start is a number",
    )
    case(
        "obs-issued-number.json",
        bundle(obs(effectiveDateTime=None, issued=1773133200)),
        400,
        "issued is a number (epoch seconds)",
    )
    case(
        "obs-component-object.json",
        bundle(obs("facial-numbness", component={"code": {"coding": [LATERALITY]}})),
        400,
        "component is an object, not an array",
    )
    case(
        "obs-component-item-string.json",
        bundle(obs("facial-numbness", component=["left"])),
        400,
        "a component item is a string",
    )
    case(
        "obs-component-code-string.json",
        bundle(
            obs(
                "facial-numbness",
                component=[{"code": "272741003", "valueCodeableConcept": {"coding": [LEFT]}}],
            )
        ),
        400,
        "component.code is a string",
    )
    case(
        "obs-component-value-string.json",
        bundle(
            obs(
                "facial-numbness",
                component=[{"code": {"coding": [LATERALITY]}, "valueCodeableConcept": "left"}],
            )
        ),
        400,
        "the laterality component's valueCodeableConcept is a string",
    )
    case(
        "obs-bodysite-string.json",
        bundle(obs("facial-numbness", bodySite="left")),
        400,
        "bodySite is a string",
    )
    case("obs-subject-string.json", bundle(obs(subject=PATIENT)), 400, "subject is a string, not a Reference")
    case(
        "obs-subject-reference-number.json",
        bundle(obs(subject={"reference": 1})),
        400,
        "subject.reference is a number",
    )
    case(
        "obs-dataabsentreason-string.json",
        bundle(obs(valueBoolean=None, dataAbsentReason="unknown")),
        400,
        "dataAbsentReason is a string, not a CodeableConcept",
    )

    # --- 400: wrong types in a QuestionnaireResponse --------------------------------------------
    yes = answer("weakness", valueBoolean=True)
    case(
        "qr-status-number.json", bundle(qr([yes], status=1)), 400, "QuestionnaireResponse.status is a number"
    )
    case("qr-questionnaire-number.json", bundle(qr([yes], questionnaire=1)), 400, "questionnaire is a number")
    case("qr-item-object.json", bundle(qr(yes)), 400, "item is an object, not an array")
    case(
        "qr-item-linkid-number.json",
        bundle(qr([{"linkId": 7, "answer": [{"valueBoolean": True}]}])),
        400,
        "item.linkId is a number",
    )
    case(
        "qr-item-answer-object.json",
        bundle(qr([{"linkId": "weakness", "answer": {"valueBoolean": True}}])),
        400,
        "item.answer is an object, not an array",
    )
    case(
        "qr-answer-valueboolean-string.json",
        bundle(qr([answer("weakness", valueBoolean="yes")])),
        400,
        "answer.valueBoolean is 'yes'",
    )
    case(
        "qr-answer-valuecoding-string.json",
        bundle(qr([answer("weakness", valueCoding="Y")])),
        400,
        "answer.valueCoding is a string",
    )
    case(
        "qr-answer-valueinteger-string.json",
        bundle(qr([answer("facial-numbness-days", valueInteger="20")])),
        400,
        "answer.valueInteger is a string",
    )
    case(
        "qr-answer-valuedate-number.json",
        bundle(qr([answer("facial-numbness-onset", valueDate=20260301)])),
        400,
        "answer.valueDate is a number",
    )
    case(
        "qr-answer-wrong-kind.json",
        bundle(qr([answer("weakness", valueString="yes")])),
        400,
        "a valueString answer to a boolean item: not the type the Questionnaire asks for",
    )
    case("qr-authored-number.json", bundle(qr([yes], authored=20260310)), 400, "authored is a number")

    # --- 400: Bundle / Parameters fields -----------------------------------------------------------
    case(
        "bundle-timestamp-number.json",
        bundle(obs(), timestamp=1773133200),
        400,
        "Bundle.timestamp is a number",
    )
    case(
        "parameters-parameter-object.json",
        {"resourceType": "Parameters", "parameter": {"name": "bundle"}},
        400,
        "Parameters.parameter is an object, not an array",
    )
    case(
        "parameters-name-number.json",
        parameters({"name": 1, "resource": ok}),
        400,
        "parameter.name is a number (so no bundle part either)",
    )
    case(
        "parameters-asof-number.json",
        parameters({"name": "bundle", "resource": ok}, {"name": "asOf", "valueDateTime": 20260310}),
        400,
        "asOf valueDateTime is a number",
    )
    case(
        "parameters-asof-no-value.json",
        parameters({"name": "bundle", "resource": ok}, {"name": "asOf", "valueString": TS}),
        400,
        "asOf given as valueString: asOf needs a valueDateTime",
    )
    case(
        "parameters-asof-2026-02-30.json",
        parameters({"name": "bundle", "resource": ok}, {"name": "asOf", "valueDateTime": "2026-02-30"}),
        400,
        "asOf is not a calendar date",
    )
    case(
        "parameters-no-bundle.json",
        parameters({"name": "asOf", "valueDateTime": TS}),
        400,
        "Parameters without a 'bundle' part",
    )
    case(
        "parameters-bundle-is-observation.json",
        parameters({"name": "bundle", "resource": obs()}),
        400,
        "the 'bundle' part holds an Observation",
    )
    case(
        "output-batch.json",
        ok,
        400,
        "_output=batch: only collection and transaction exist",
        query="_output=batch",
    )

    # --- 400: dates that are not dates ------------------------------------------------------------
    case("date-2026-02-30.json", bundle(obs(effectiveDateTime="2026-02-30")), 400, "February 30th")
    case("date-2026-13-01.json", bundle(obs(effectiveDateTime="2026-13-01")), 400, "month 13")
    case(
        "date-yesterday.json",
        bundle(obs(effectiveDateTime="yesterday")),
        400,
        "'yesterday' is not a dateTime",
    )
    case("date-hour-25.json", bundle(obs(effectiveDateTime="2026-03-10T25:00:00Z")), 400, "hour 25")
    case(
        "date-zone-plus-15.json",
        bundle(obs(effectiveDateTime="2026-03-10T09:00:00+15:00")),
        400,
        "time zone +15:00 does not exist",
    )
    case(
        "bundle-timestamp-invalid.json",
        bundle(obs(), timestamp="2026-03-10 09:00"),
        400,
        "Bundle.timestamp with a space and no seconds",
    )

    # --- 400: out-of-range values ---------------------------------------
    body = bundle(obs("facial-numbness"), days(valueQuantity=None, valueInteger=2_147_483_648))
    case(
        "obs-valueinteger-beyond-int32.json",
        body,
        400,
        "valueInteger 2^31: a FHIR integer is 32-bit signed",
    )
    huge = int("9" * 400)
    body = bundle(
        obs("facial-numbness"),
        days(valueQuantity=None, valueInteger=huge, rid="days-a"),
        days(3, rid="days-b"),
    )
    case(
        "obs-valueinteger-huge-conflict.json",
        body,
        400,
        "two durations at the same time, one a 400-digit valueInteger (not a FHIR integer)",
    )

    # --- 413: too big -------------------------------------------------------------------------------
    first = compact(obs())
    basic = b",".join(b'{"resource":{"resourceType":"Basic","id":"b%05d"}}' % i for i in range(1, 10_000))
    body = (
        b'{"resourceType":"Bundle","type":"collection","timestamp":"'
        + TS.encode()
        + b'","entry":[{"resource":'
        + first
        + b"},"
        + basic
        + b"]}"
    )
    assert len(body) < MAX_BODY, len(body)  # a 413 for the entry count, not for the size
    case(
        "entries-10000.json",
        body,
        413,
        "10,000 entries (one Observation + 9,999 Basic), under 1 MiB: entry limit",
    )
    many = [obs(rid=f"w{i:04d}") for i in range(MAX_ENTRIES + 1)]
    case("entries-1001.json", compact(bundle(*many)), 413, "1,001 Observations: one over the entry limit")
    case("body-over-1mib.json", padded_to(MAX_BODY + 1), 413, "a valid Bundle of 1 MiB + 1 byte: body limit")

    # --- 415: wrong content type ---------------------------------------------------------------------
    case(
        "content-type-text-plain.json",
        ok,
        415,
        "a valid Bundle sent as text/plain",
        content_type="text/plain",
    )
    xml = (
        b'<?xml version="1.0" encoding="UTF-8"?>\n'
        b'<Bundle xmlns="http://hl7.org/fhir"><type value="collection"/></Bundle>\n'
    )
    case("content-type-xml.xml", xml, 415, "FHIR XML: only JSON is served", content_type="application/xml")
    case("content-type-fhir-xml.xml", xml, 415, "application/fhir+xml", content_type="application/fhir+xml")

    # --- 422: well formed, cannot be assessed ---------------------------------------------------
    case(
        "two-patients.json",
        bundle(obs(), obs("headache", subject={"reference": "Patient/bad-2"})),
        422,
        "facts about Patient/bad-1 and Patient/bad-2",
    )
    case(
        "two-patients-urn-and-id.json",
        bundle(obs(subject={"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"}), obs("headache")),
        422,
        "an unresolved urn:uuid subject and Patient/bad-1 are two subjects",
    )
    case("fact-without-subject.json", bundle(obs(subject=None)), 422, "a fact with no subject")
    case(
        "fact-without-subject-beside-one-with.json",
        bundle(obs(), obs("headache", subject=None)),
        422,
        "one fact has a subject, the other none",
    )
    case(
        "no-fact-patient-only.json",
        bundle({"resourceType": "Patient", "id": "bad-1"}),
        422,
        "only a Patient: no entry gives a fact",
    )
    case(
        "no-fact-unrelated-observation.json",
        bundle(
            obs(
                code={"coding": [{"system": LOINC, "code": "8867-4"}]},
                valueBoolean=None,
                valueQuantity={"value": 72, "system": UCUM, "code": "/min"},
            )
        ),
        422,
        "a heart-rate Observation: no neckcheck fact",
    )
    case(
        "qr-other-questionnaire.json",
        bundle(qr([yes], questionnaire="http://example.org/Questionnaire/phq-9")),
        422,
        "a QuestionnaireResponse for another Questionnaire, alone: ignored, so no fact",
    )
    case(
        "entered-in-error-only.json",
        bundle(obs(status="entered-in-error"), qr([yes], status="entered-in-error")),
        422,
        "every entry is entered-in-error: ignored, so no fact",
    )
    case("negative-duration.json", bundle(obs("facial-numbness"), days(-3)), 422, "valueQuantity -3 d")
    case(
        "negative-duration-component.json",
        bundle(
            obs(
                "facial-numbness",
                component=[{"code": {"coding": [coding("facial-numbness-days")]}, "valueInteger": -1}],
            )
        ),
        422,
        "a duration component of -1 days",
    )
    case(
        "negative-duration-qr.json",
        bundle(
            qr(
                [
                    answer("facial-numbness", valueBoolean=True),
                    answer("facial-numbness-days", valueInteger=-2),
                ]
            )
        ),
        422,
        "QuestionnaireResponse duration -2 days",
    )
    case(
        "onset-after-asof.json",
        bundle(obs("facial-numbness", effectiveDateTime=None, effectivePeriod={"start": "2026-03-12"})),
        422,
        "numbness onset 2026-03-12, asOf (Bundle.timestamp) 2026-03-10",
    )
    case(
        "onset-after-asof-qr.json",
        bundle(
            qr(
                [
                    answer("facial-numbness", valueBoolean=True),
                    answer("facial-numbness-onset", valueDate="2026-04-01"),
                ]
            )
        ),
        422,
        "QuestionnaireResponse onset 2026-04-01 after asOf 2026-03-10",
    )
    case(
        "severity-11.json",
        bundle(obs("neck-pain"), obs("neck-pain-severity", valueBoolean=None, valueInteger=11)),
        422,
        "neck pain severity 11 on a 0-10 scale",
    )
    case(
        "code-names-two-facts.json",
        bundle(obs(code={"coding": [coding("weakness"), coding("headache")]})),
        422,
        "one Observation code naming two facts",
    )
    case(
        "laterality-two-sides.json",
        bundle(obs("facial-numbness", bodySite={"coding": [LEFT, RIGHT]})),
        422,
        "bodySite coded left and right",
    )
    body = bundle(obs("facial-numbness"), days(valueQuantity={"value": 1e308, "system": UCUM, "code": "mo"}))
    case(
        "duration-1e308-months.json",
        body,
        422,
        "a duration of 1e308 months (a finite JSON number) is no duration to assess",
    )
    body = bundle(obs("facial-numbness"), days(int("9" * 400)))
    case(
        "duration-400-digit-quantity.json",
        body,
        422,
        "a valueQuantity of 400 digits days is no duration to assess",
    )

    # --- 200: odd but valid ------------------------------------------------------------------------
    case(
        "subject-urn-no-patient-entry.json",
        bundle(obs(subject={"reference": "urn:uuid:11111111-1111-4111-8111-111111111111"})),
        200,
        "a urn:uuid subject with no Patient entry is just another subject string; alone it is one patient",
    )
    case(
        "subject-urn-resolved-by-patient-entry.json",
        {
            **bundle(
                obs(subject={"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}), obs("headache")
            ),
            "entry": [
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000000",
                    "resource": obs(subject={"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"}),
                },
                {
                    "fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000001",
                    "resource": {"resourceType": "Patient", "id": "bad-1"},
                },
                {"fullUrl": "urn:uuid:00000000-0000-4000-8000-000000000002", "resource": obs("headache")},
            ],
        },
        200,
        "urn:uuid subject resolved by a Patient entry equals Patient/bad-1: one patient",
    )
    case(
        "huge-note-900k.json",
        bundle(obs(note=[{"text": ("numbness " * 100_000)}])),
        200,
        "a 900 KB note on a valid Observation: under the body limit, read normally",
    )
    case("body-exactly-1mib.json", padded_to(MAX_BODY), 200, "a valid Bundle of exactly 1 MiB: at the limit")
    many = [obs(rid=f"w{i:04d}") for i in range(MAX_ENTRIES)]
    case("entries-1000.json", compact(bundle(*many)), 200, "exactly 1,000 entries: at the limit")
    case(
        "parameters-with-asof.json",
        parameters(
            {"name": "bundle", "resource": bundle(obs(), timestamp=None)},
            {"name": "asOf", "valueDateTime": TS},
        ),
        200,
        "the operation form with asOf",
    )
    case(
        "content-type-application-json.json",
        ok,
        200,
        "application/json is accepted",
        content_type="application/json",
    )
    case(
        "content-type-with-charset.json",
        ok,
        200,
        "a charset parameter is fine",
        content_type="application/fhir+json; charset=utf-8",
    )
    case(
        "content-type-uppercase.json",
        ok,
        200,
        "media types are case-insensitive",
        content_type="Application/FHIR+JSON",
    )
    case("output-transaction.json", ok, 200, "_output=transaction", query="_output=transaction")
    case(
        "unknown-resource-types.json",
        bundle(obs(), {"resourceType": "Basic", "id": "b1"}, {"resourceType": "Flag", "status": 1}),
        200,
        "unknown resource types are ignored (even with junk fields)",
    )
    case(
        "entry-without-resource.json",
        {**ok, "entry": [{"fullUrl": "urn:uuid:x"}, *ok["entry"]]},
        200,
        "an entry with no resource is skipped",
    )
    case(
        "qr-versioned-questionnaire.json",
        bundle(qr([yes], questionnaire=QUESTIONNAIRE + "|1.0.0")),
        200,
        "questionnaire canonical with |version",
    )
    case(
        "qr-nested-under-answer.json",
        bundle(
            qr(
                [
                    {
                        "linkId": "g",
                        "item": [{"linkId": "q", "answer": [{"valueBoolean": True, "item": [yes]}]}],
                    }
                ]
            )
        ),
        200,
        "a fact item nested in a group and under an answer",
    )
    case(
        "data-absent-only.json",
        bundle(obs(valueBoolean=None, dataAbsentReason={"text": "not asked"})),
        200,
        "a fact with dataAbsentReason: unknown, a preliminary result",
    )
    case(
        "time-without-zone.json",
        bundle(obs(effectiveDateTime="2026-03-10T08:00:00")),
        200,
        "a dateTime without zone is read as UTC (documented leniency)",
    )
    case(
        "year-only-date.json",
        bundle(obs(effectiveDateTime="2026")),
        200,
        "a year-only dateTime is valid FHIR",
    )
    case(
        "unicode-everywhere.json",
        bundle(
            obs(
                rid="w\u00e9akness", note=[{"text": "engourdissement \u00e0 gauche \u2014 \U0001f9e0 \u0000"}]
            )
        ),
        400,
        "a NUL in a note and a non-ASCII id are not FHIR JSON (R4 \u00a72.24.0.1 string, id)",
        expression="Bundle.entry[0].resource.note[0].text",
    )
    strict_json_cases()
    case(
        "subject-identifier.json",
        bundle(obs(subject={"identifier": {"system": "urn:oid:1.2.3", "value": "MRN-1"}})),
        200,
        "subject by identifier, no reference",
    )
    case(
        "device-observation-beside-fact.json",
        bundle(
            obs(),
            obs(
                "headache",
                rid="h-device",
                subject={"reference": "Device/d1"},
                valueBoolean=None,
                code={"coding": [{"system": LOINC, "code": "8867-4"}]},
            ),
        ),
        200,
        "an unrelated Observation about a Device is not a second patient",
    )
    case(
        "entered-in-error-beside-fact.json",
        bundle(obs(), obs("headache", status="entered-in-error")),
        200,
        "an entered-in-error entry beside a usable fact is ignored",
    )
    case(
        "bundle-no-timestamp.json",
        bundle(obs(), timestamp=None),
        200,
        "no Bundle.timestamp: asOf is the server clock",
    )


def strict_json_cases() -> None:
    """FHIR JSON rules (R4 §2.6.2) on the resources neckcheck reads (issue 9 point 2)."""
    at = "Bundle.entry[0].resource"
    case(
        "unicode-valid.json",
        bundle(obs(note=[{"text": "engourdissement \u00e0 gauche \u2014 \U0001f9e0\ttab\r\nnew line"}])),
        200,
        "non-ASCII text, emoji, tab, CR and LF are valid in a string",
    )
    case(
        "obs-valueboolean-null-and-quantity-string.json",
        bundle(obs(valueBoolean=None) | {"valueBoolean": None, "valueQuantity": {"value": "ten"}}),
        400,
        "null is not a value, and an Observation has one value[x]",
        expression=f"{at}.valueBoolean",
    )
    case(
        "obs-id-nul.json",
        bundle(obs(rid="weak\u0000ness")),
        400,
        "a NUL in an id (it would be echoed into RiskAssessment.basis)",
        expression=f"{at}.id",
    )
    case(
        "obs-id-65-chars.json",
        bundle(obs(rid="a" * 65)),
        400,
        "an id is 1-64 characters",
        expression=f"{at}.id",
    )
    case(
        "obs-id-underscore.json",
        bundle(obs(rid="weak_ness")),
        400,
        "an id is [A-Za-z0-9-.] only",
        expression=f"{at}.id",
    )
    case(
        "obs-two-values.json",
        bundle(obs(valueString="yes")),
        400,
        "valueBoolean and valueString: value[x] takes one type",
        expression=f"{at}.valueString",
    )
    case(
        "obs-two-effective.json",
        bundle(obs(effectivePeriod={"start": TS})),
        400,
        "effectiveDateTime and effectivePeriod: effective[x] takes one type",
        expression=f"{at}.effectivePeriod",
    )
    case(
        "obs-component-two-values.json",
        bundle(
            obs(
                "facial-numbness",
                component=[
                    {
                        "code": {"coding": [LATERALITY]},
                        "valueCodeableConcept": {"coding": [LEFT]},
                        "valueString": "left",
                    }
                ],
            )
        ),
        400,
        "a component has one value[x]",
        expression=f"{at}.component[0].valueString",
    )
    case(
        "qr-answer-two-values.json",
        bundle(qr([answer("weakness", valueBoolean=True, valueString="yes")])),
        400,
        "a QuestionnaireResponse answer has one value[x]",
        expression=f"{at}.item[0].answer[0].valueString",
    )
    case(
        "obs-note-bell-character.json",
        bundle(obs(note=[{"text": "ding\u0007"}])),
        400,
        "control characters other than tab, CR and LF are not allowed in a string",
        expression=f"{at}.note[0].text",
    )
    case(
        "obs-null-in-array.json",
        bundle(obs(category=[None])),
        400,
        "null in an array is only a placeholder beside a _name extension array",
        expression=f"{at}.category[0]",
    )
    case(
        "obs-subject-reference-space.json",
        bundle(obs(subject={"reference": "Patient/bad 1"})),
        400,
        "a reference is relative (Type/id), absolute, urn:uuid/urn:oid or #contained",
        expression=f"{at}.subject.reference",
    )
    case(
        "obs-fullurl-not-a-uri.json",
        {**bundle(obs()), "entry": [{"fullUrl": "urn:uuid:not-a-uuid", "resource": obs()}]},
        400,
        "the fullUrl of a read entry stands in for its reference: an absolute URL or urn:uuid",
        expression="Bundle.entry[0].fullUrl",
    )
    case(
        "bundle-timestamp-null.json",
        bundle(obs(), timestamp=None) | {"timestamp": None},
        400,
        "null is not a value in the Bundle either",
        expression="Bundle.timestamp",
    )
    case(
        "parameters-part-null.json",
        parameters({"name": "bundle", "resource": bundle(obs())}, {"name": "asOf", "valueDateTime": None}),
        400,
        "null is not a value in the Parameters either",
        expression="Parameters.parameter[1].valueDateTime",
    )
    case(
        "patient-primitive-extension-array.json",
        bundle(
            {
                "resourceType": "Patient",
                "id": "bad-1",
                "name": [
                    {
                        "given": ["Ann", None],
                        "_given": [
                            None,
                            {"extension": [{"url": "https://example.org/x", "valueString": "y"}]},
                        ],
                    }
                ],
            },
            obs(),
        ),
        200,
        "a null keeps its place in a primitive array beside its _name array (R4 \u00a72.6.2.7)",
    )
    case(
        "lone-surrogate-escape.json",
        compact(bundle(obs(note=[{"text": "SURROGATE"}]))).replace(b"SURROGATE", b"\\udb8b"),
        400,
        "a \\u escape of a lone surrogate in a read resource is not Unicode text (it once gave a 500)",
        expression=f"{at}.note[0].text",
    )
    case(
        "lone-surrogate-in-ignored-resource.json",
        compact(bundle(obs(), {"resourceType": "SURROGATE", "id": "SURROGATE"})).replace(
            b"SURROGATE", b"\\udb8b"
        ),
        200,
        "lone surrogates in a resource neckcheck ignores: ignored, and nothing of them echoed",
    )
    case(
        "ignored-resource-with-nulls-and-nul.json",
        bundle(
            obs(),
            {"resourceType": "Basic", "id": "odd_one", "code": None, "text": {"div": "\u0000"}},
        ),
        200,
        "a resource neckcheck ignores stays ignored and listed, whatever it holds",
    )


def build(out: Path) -> None:
    CASES.clear()
    BODIES.clear()
    cases()
    out.mkdir(parents=True, exist_ok=True)
    for name, data in BODIES.items():
        (out / name).write_bytes(data)
    (out / "expected.json").write_text(json.dumps(CASES, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    big = sorted(name for name, data in BODIES.items() if len(data) > BIG)
    ignore = "# generated by build.py (bodies over 64 KiB): rebuilt by the tests, not committed\n"
    (out / ".gitignore").write_text(ignore + "".join(f"/{n}\n" for n in big), encoding="utf-8")


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE)
