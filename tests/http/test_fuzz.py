"""Property test of POST /fhir/$assess: FHIR-shaped Bundles with random (often wrong) content.

Whatever arrives, the answer is never a 5xx; a 200 is valid FHIR R4 (the Bundle and every entry); a 4xx
is an OperationOutcome saying why. Each example draws a "junk rate" (none, a little, a lot) that sets how
often a field gets a value of a wrong type, so clean inputs reach the rules and output while dirty ones
probe the intake's type checks.

Numbers stay within ±1e9 (integers within 32 bits): the overflow cases beyond that are pinned in
tests/bad_inputs as strict xfails rather than rediscovered every run.
"""

from __future__ import annotations

import json
from typing import Any

from flask.testing import FlaskClient
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.support import CODES, validate_fhir

QUESTIONNAIRE = f"{CODES['canonicalBase']}/Questionnaire/{CODES['questionnaire']['id']}"
UCUM = CODES["units"]["system"]
YN = CODES["yesNo"]["system"]
FACTS = sorted(CODES["facts"])
FACT_CODINGS = [
    {"system": c["system"], "code": c["code"]} for f in CODES["facts"].values() for c in f["codings"]
]
SIDE_CODINGS = [{k: CODES["laterality"][s][k] for k in ("system", "code")} for s in ("left", "right", "both")]
LATERALITY = {k: CODES["laterality"]["attribute"][k] for k in ("system", "code")}
SYMPTOM = {k: CODES["symptom"][k] for k in ("system", "code")}
ASKED_UNKNOWN = {k: CODES["askedUnknown"][k] for k in ("system", "code")}
DAYS_CODING = {"system": CODES["localFactSystem"], "code": "facial-numbness-days"}
YES_NO = [{"system": YN, "code": "Y"}, {"system": YN, "code": "N"}]
MISSING = object()  # a field left out

small_ints = st.integers(min_value=-3, max_value=40)
ints = st.one_of(small_ints, st.integers(min_value=-(2**31), max_value=2**31 - 1))
floats = st.floats(min_value=-1e9, max_value=1e9, allow_nan=False, allow_infinity=False)
text = st.text(max_size=12)
junk = st.one_of(
    st.none(), st.booleans(), small_ints, floats, text, st.just([]), st.just({}), st.just([1]), st.just("x")
)
valid_datetimes = st.sampled_from(
    [
        "2026-03-10T09:00:00Z",
        "2026-03-01",
        "2026-02",
        "2026",
        "2025-12-31T23:59:59.123+14:00",
        "2026-03-10T09:00:00-05:00",
        "2026-03-09T10:00:00",
        "2026-03-20T00:00:00Z",
        "1970-01-01",
        "0001-01-01T00:00:00Z",
        "9999-12-31T23:59:59Z",
    ]
)
invalid_datetimes = st.sampled_from(
    ["2026-02-30", "2026-13-01", "yesterday", "2026-03-10T25:00:00Z", "", "2026-3-1", "2026-03-10T09:00Z"]
)
random_codings = st.fixed_dictionaries(
    {"system": st.sampled_from(["http://snomed.info/sct", "http://loinc.org", "urn:x", YN]), "code": text}
)
known_codings = st.sampled_from(
    [*FACT_CODINGS, *SIDE_CODINGS, LATERALITY, SYMPTOM, ASKED_UNKNOWN, DAYS_CODING, *YES_NO]
)


class Draw:
    """``draw`` plus the example's junk rate (percent): how often a field gets a wrong-type value."""

    def __init__(self, draw: st.DrawFn, rate: int):
        self.draw, self.rate = draw, rate

    def __call__(self, strategy: st.SearchStrategy[Any]) -> Any:
        return self.draw(strategy)

    def field(self, good: st.SearchStrategy[Any], absent: int = 10) -> Any:
        """A good value, or (``absent`` %) no field, or (the junk rate) a value of a wrong type."""
        roll = self.draw(st.integers(0, 99))  # Hypothesis favours 0: keep the good value there
        if roll >= 100 - self.rate:
            return self.draw(junk)
        if roll >= 100 - self.rate - absent:
            return MISSING
        return self.draw(good)

    def pick(self, *options: st.SearchStrategy[Any]) -> Any:
        return self.draw(st.one_of(*options))

    def datetime(self) -> Any:
        return self.draw(invalid_datetimes if self.draw(st.integers(0, 29)) == 29 else valid_datetimes)

    def coding(self) -> Any:
        return self.field(st.one_of(known_codings, known_codings, random_codings), absent=0)

    def concept(self, *preferred: dict[str, str]) -> Any:
        first = st.sampled_from(list(preferred)) if preferred else known_codings
        codings = [self.draw(first)] if self.draw(st.integers(0, 9)) < 9 else []
        extra = st.one_of(random_codings, random_codings, known_codings)
        codings += [
            self.field(extra, absent=0) for _ in range(self.draw(st.sampled_from([0, 0, 0, 0, 1, 2])))
        ]
        return self.field(st.just({"coding": codings}), absent=0)

    def value(self) -> dict[str, Any]:
        kind = self.draw(st.integers(0, 7))
        if kind == 0:
            return {}
        if kind == 1:
            return {"valueBoolean": self.field(st.booleans(), absent=0)}
        if kind == 2:
            return {"valueCodeableConcept": self.concept(*YES_NO, *SIDE_CODINGS, *FACT_CODINGS)}
        if kind == 3:
            return {"valueQuantity": self.quantity()}
        if kind == 4:
            return {"valueInteger": self.field(ints, absent=0)}
        if kind == 5:
            return {"valueString": self.field(text, absent=0)}
        if kind == 6:
            return {"valueDateTime": self.field(st.builds(self.datetime), absent=0)}
        return {"valueBoolean": True}

    def quantity(self) -> Any:
        value = {
            "value": self.field(st.one_of(small_ints, floats)),
            "system": self.field(st.sampled_from([UCUM, UCUM, "urn:other"])),
            "code": self.field(st.sampled_from(["d", "wk", "h", "mo", "a", "min"])),
            "unit": self.field(text, absent=50),
        }
        return self.field(st.just(strip(value)), absent=0)


def strip(resource: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in resource.items() if v is not MISSING}


SUBJECTS = [
    {"reference": "Patient/p1"},
    {"reference": "Patient/p2"},
    {"reference": "urn:uuid:00000000-0000-4000-8000-000000000000"},
    {"reference": "Device/d1"},
    {"reference": "http://ehr.example.org/fhir/Patient/p1/_history/2"},
    {"identifier": {"system": "urn:mrn", "value": "1"}},
    {"reference": ""},
    {},
]


def subject(d: Draw) -> Any:
    """Mostly Patient/p1, so a clean example is usually about one patient."""
    if d(st.integers(0, 9)) < 9:
        return d.field(st.just({"reference": "Patient/p1"}), absent=2)
    return d.field(st.sampled_from(SUBJECTS), absent=5)


def observation(d: Draw) -> dict[str, Any]:
    statuses = st.sampled_from(
        [
            "final",
            "final",
            "preliminary",
            "amended",
            "corrected",
            "entered-in-error",
            "cancelled",
            "registered",
        ]
    )
    when = st.builds(d.datetime)
    components = []
    for _ in range(d(st.integers(0, 2))):
        code = d(st.sampled_from([{"coding": [LATERALITY]}, {"coding": [DAYS_CODING]}]))
        part = {"code": code if d(st.integers(0, 5)) else d.concept(), **d.value()}
        if "valueCodeableConcept" in part and code["coding"][0] == LATERALITY and d(st.booleans()):
            part["valueCodeableConcept"] = d.concept(*SIDE_CODINGS)
        components.append(d.field(st.just(part), absent=0))
    resource = {
        "resourceType": "Observation",
        "id": d.field(st.sampled_from(["o1", "o2", "o3", "weird id", "x" * 70]), absent=20),
        "status": d.field(statuses, absent=3),
        "code": d.concept(*FACT_CODINGS, SYMPTOM),
        "subject": subject(d),
        "effectiveDateTime": d.field(when, absent=40),
        "effectivePeriod": d.field(
            st.builds(lambda: strip({"start": d.field(when), "end": d.field(when)})), 70
        ),
        "issued": d.field(when, absent=70),
        "component": d.field(st.just(components), absent=50),
        "bodySite": d.field(st.builds(lambda: d.concept(*SIDE_CODINGS)), absent=70),
        "dataAbsentReason": d.field(st.builds(lambda: d.concept(ASKED_UNKNOWN)), absent=90),
        "encounter": d.field(st.just({"reference": "Encounter/e1"}), absent=80),
    }
    return {**strip(resource), **d.value()}


def answer(d: Draw, depth: int) -> Any:
    kind = d(st.integers(0, 6))
    value: dict[str, Any] = [
        lambda: {"valueBoolean": d.field(st.booleans(), absent=0)},
        lambda: {
            "valueCoding": d.field(
                st.one_of(st.sampled_from([*YES_NO, *SIDE_CODINGS, ASKED_UNKNOWN]), random_codings), absent=0
            )
        },
        lambda: {"valueInteger": d.field(small_ints, absent=0)},
        lambda: {"valueDecimal": d.field(floats, absent=0)},
        lambda: {"valueDate": d.field(st.builds(d.datetime), absent=0)},
        lambda: {"valueString": d(text)},
        lambda: {},
    ][kind]()
    if depth < 3 and d(st.integers(0, 5)) == 0:
        value["item"] = items(d, depth + 1)
    return d.field(st.just(strip(value)), absent=0)


def items(d: Draw, depth: int = 0) -> Any:
    out = []
    for _ in range(d(st.integers(0, 4 if depth == 0 else 2))):
        link = d.field(st.one_of(st.sampled_from(FACTS), st.sampled_from(["group", "q1", ""])), absent=5)
        item: dict[str, Any] = {"linkId": link}
        if depth < 3 and d(st.integers(0, 4)) == 0:
            item["item"] = items(d, depth + 1)
        else:
            item["answer"] = d.field(
                st.builds(lambda: [answer(d, depth) for _ in range(d(st.integers(0, 2)))])
            )
        out.append(d.field(st.just(strip(item)), absent=0))
    return d.field(st.just(out), absent=5)


def questionnaire_response(d: Draw) -> dict[str, Any]:
    canonicals = [
        QUESTIONNAIRE,
        QUESTIONNAIRE,
        f"{QUESTIONNAIRE}|1.0.0",
        "http://example.org/Questionnaire/x",
    ]
    statuses = ["completed", "completed", "amended", "in-progress", "entered-in-error", "stopped"]
    return strip(
        {
            "resourceType": "QuestionnaireResponse",
            "id": d.field(st.sampled_from(["qr1", "qr2"]), absent=30),
            "questionnaire": d.field(st.sampled_from(canonicals), absent=5),
            "status": d.field(st.sampled_from(statuses), absent=3),
            "subject": subject(d),
            "authored": d.field(st.builds(d.datetime), absent=30),
            "item": items(d),
        }
    )


def other(d: Draw) -> dict[str, Any]:
    kind = d(st.integers(0, 9))
    if kind in (0, 4, 5, 6, 7):
        return {"resourceType": "Patient", "id": d(st.sampled_from(["p1", "p2"]))}
    if kind == 1:
        return strip({"resourceType": "Encounter", "id": "e1", "subject": subject(d), "status": "finished"})
    if kind in (2, 8):
        rtype = d(st.sampled_from(["Basic", "Condition", "Flag", "MedicationRequest", "Observation "]))
        return strip({"resourceType": rtype, "subject": subject(d), "code": d.concept(), "status": d(junk)})
    return strip({"resourceType": d.field(text, absent=50), "id": d(text)})


@st.composite
def requests(draw: st.DrawFn) -> tuple[Any, str]:
    d = Draw(draw, draw(st.sampled_from([0, 0, 0, 1, 5])))
    entries: list[Any] = []
    for i in range(draw(st.integers(1, 6))):
        kind = d(st.integers(0, 9))
        resource = observation(d) if kind < 6 else questionnaire_response(d) if kind < 8 else other(d)
        full_url = d.field(st.just(f"urn:uuid:00000000-0000-4000-8000-{i:012d}"), absent=30)
        if d(st.integers(0, 49)) == 49:
            resource = MISSING  # an entry with no resource
        entries.append(d.field(st.just(strip({"fullUrl": full_url, "resource": resource})), absent=0))
    rtype = d.field(st.sampled_from(["Bundle"] * 20 + ["Parameters", "Observation"]), absent=1)
    bundle = strip(
        {
            "resourceType": rtype,
            "type": d.field(st.sampled_from(["collection", "searchset", "transaction"])),
            "timestamp": d.field(st.builds(d.datetime), absent=15),
            "entry": d.field(st.just(entries), absent=2),
        }
    )
    body: Any = bundle
    if draw(st.integers(0, 3)) == 0:
        parts: list[Any] = [{"name": "bundle", "resource": bundle}]
        if draw(st.booleans()):
            parts.append({"name": "asOf", "valueDateTime": d.field(st.builds(d.datetime), absent=0)})
        if draw(st.integers(0, 4)) == 0:
            parts.append({"name": "_output", "valueCode": draw(st.sampled_from(["transaction", "batch"]))})
        body = {"resourceType": "Parameters", "parameter": draw(st.permutations(parts))}
    query = draw(st.sampled_from([""] * 6 + ["?_output=transaction", "?_output=collection", "?_output=x"]))
    return body, query


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(request=requests())
def test_assess_never_fails_on_fhir_shaped_input(client: FlaskClient, request: tuple[Any, str]) -> None:
    body, query = request
    data = json.dumps(body, ensure_ascii=False, allow_nan=False).encode("utf-8")
    response = client.post(f"/fhir/$assess{query}", data=data, content_type="application/fhir+json")
    text = response.get_data(as_text=True)
    event(f"status {response.status_code}")
    assert response.status_code < 500, f"{data[:2000]!r} -> {text[:1000]}"
    assert "Traceback" not in text
    out = json.loads(text)
    if response.status_code == 200:
        assert out["resourceType"] == "Bundle"
        validate_fhir(out)
        for entry in out["entry"]:
            validate_fhir(entry["resource"])
    else:
        assert 400 <= response.status_code < 500
        assert out["resourceType"] == "OperationOutcome"
        assert any(str(i.get("diagnostics") or "").strip() for i in out["issue"])
