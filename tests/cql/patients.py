"""Random patients for the differential test: every input shape intake reads, aged around the windows.

Deterministic for a seed. Each patient is one Bundle of Observations and/or QuestionnaireResponses with:
both Observation coding patterns (the fact's code, standard or local; LOINC 75325-1 Symptom with the finding
as value), every value form (valueBoolean, Y/N and asked-unknown concepts, a bare finding, dataAbsentReason,
values intake cannot read), sides (a side Observation, a laterality component, bodySite), durations in every
unit (d, wk, h, mo, valueInteger; a component) and onsets (effectivePeriod.start, an onset Observation, a
questionnaire date); QuestionnaireResponses (nested in groups and under answers, in progress, of another
Questionnaire, with or without |version); conflicts (several readings of a fact, ties at one instant);
statuses that are used and ignored; and times of every form intake reads (dateTime with and without a time,
offsets, milliseconds, instant, period open or closed, issued, none), at ages just inside and just outside
the 24 h and 14 d lookbacks, and after the evaluation time. The evaluation time comes from an explicit
asOf, the Bundle's timestamp or the clock.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from service.rules.table import load_table
from tests.cql.engine import Case
from tests.support import CODES

JSON = dict[str, Any]

BASE = dt.datetime(2026, 3, 10, 9, 0, tzinfo=dt.UTC)
QUESTIONNAIRE = f"{CODES['canonicalBase']}/Questionnaire/{CODES['questionnaire']['id']}"
TABLE = load_table()
URGENT = tuple(name for name, f in TABLE.facts.items() if f.lookback.span == dt.timedelta(hours=24))
BOOLS = tuple(name for name, f in TABLE.facts.items() if f.kind == "bool")
GROUPS = {group.link_id: group.facts for group in TABLE.groups}
H, D, S = dt.timedelta(hours=1), dt.timedelta(days=1), dt.timedelta(seconds=1)
# ages around each lookback: well inside, exactly on it (still current), a second past it (stale), far past
AGES = {
    "24 h": [0 * H, H, 12 * H, 24 * H - S, 24 * H, 24 * H + S, 25 * H, 2 * D, 10 * D, -2 * H],
    "14 d": [0 * H, 5 * H, D, 7 * D, 14 * D - S, 14 * D, 14 * D + S, 15 * D, 30 * D, -3 * H],
}
UCUM = CODES["units"]["system"]
YES_NO = CODES["yesNo"]
UNKNOWN = CODES["askedUnknown"]
DAR = {"coding": [{"system": UNKNOWN["system"], "code": "not-asked"}]}


def _stamp(when: dt.datetime, form: str) -> str:
    if form == "date":
        return when.date().isoformat()
    if form == "month":
        return when.strftime("%Y-%m")
    if form == "offset":
        return when.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    if form == "millis":
        return when.strftime("%Y-%m-%dT%H:%M:%S") + ".250Z"
    if form == "nozone":
        return when.strftime("%Y-%m-%dT%H:%M:%S")
    return when.strftime("%Y-%m-%dT%H:%M:%SZ")


class Generator:
    """One patient per call; ``rng`` decides everything, so a seed gives the same patients every run."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        self.serial = 0

    def pick(self, *options: Any) -> Any:
        return self.rng.choice(options)

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def rid(self, prefix: str) -> str:
        self.serial += 1
        return f"{prefix}-{self.serial}"

    # --- times -----------------------------------------------------------------------------------------

    def moment(self, fact: str, as_of: dt.datetime) -> dt.datetime:
        window = "24 h" if fact in URGENT else "14 d"
        return (
            as_of - self.pick(*AGES[window]) - self.pick(dt.timedelta(0), dt.timedelta(0), 3 * S, 40 * 60 * S)
        )

    def form(self) -> str:
        return self.pick("z", "z", "z", "z", "date", "date", "offset", "millis", "month", "nozone")

    def observation_time(self, fact: str, as_of: dt.datetime) -> JSON:
        when = self.moment(fact, as_of)
        shape = self.pick(
            *["dateTime"] * 6, "instant", "period-open", "period-closed", "period-end", "issued", "none"
        )
        if shape == "dateTime":
            return {"effectiveDateTime": _stamp(when, self.form())}
        if shape == "instant":
            return {"effectiveInstant": _stamp(when, "z")}
        if shape == "period-open":
            return {"effectivePeriod": {"start": _stamp(when - self.pick(H, 3 * D, 20 * D), self.form())}}
        if shape == "period-closed":
            start = when - self.pick(H, 3 * D, 20 * D)
            return {"effectivePeriod": {"start": _stamp(start, "z"), "end": _stamp(when, self.form())}}
        if shape == "period-end":
            return {"effectivePeriod": {"end": _stamp(when, self.form())}}
        if shape == "issued":
            return {"issued": _stamp(when, self.pick("z", "offset"))}
        return {}

    # --- codes ---------------------------------------------------------------------------------------

    def fact_code(self, fact: str) -> JSON:
        coding = self.pick(*CODES["facts"][fact]["codings"])
        return {"coding": [{"system": coding["system"], "code": coding["code"]}]}

    def side_coding(self, side: str) -> JSON:
        return {k: CODES["laterality"][side][k] for k in ("system", "code")}

    def yes_no(self, value: bool) -> JSON:
        return {"system": YES_NO["system"], "code": YES_NO["yes"] if value else YES_NO["no"]}

    # --- Observations --------------------------------------------------------------------------------

    def observation(self, patient: str, fact: str, as_of: dt.datetime, **value: Any) -> JSON:
        status = self.pick(
            *["final"] * 12,
            "amended",
            "preliminary",
            "corrected",
            "entered-in-error",
            "cancelled",
            "registered",
        )
        return {
            "resourceType": "Observation",
            "id": self.rid("obs"),
            "status": status,
            "code": self.fact_code(fact),
            "subject": {"reference": f"Patient/{patient}"},
            **self.observation_time(fact, as_of),
            **value,
        }

    def bool_value(self) -> JSON:
        kind = self.pick(*["boolean"] * 6, "yn", "yn", "unknown", "dar", "bare", "string", "other-coding")
        if kind == "boolean":
            return {"valueBoolean": self.chance(0.55)}
        if kind == "yn":
            codings = [self.yes_no(self.chance(0.5))]
            if self.chance(0.3):
                codings.insert(0, {"system": "http://example.org/answers", "code": "maybe"})
            return {"valueCodeableConcept": {"coding": codings}}
        if kind == "unknown":
            return {
                "valueCodeableConcept": {"coding": [{"system": UNKNOWN["system"], "code": UNKNOWN["code"]}]}
            }
        if kind == "dar":
            return {"dataAbsentReason": DAR}
        if kind == "string":
            return {"valueString": "yes"}
        if kind == "other-coding":
            return {
                "valueCodeableConcept": {"coding": [{"system": "http://example.org/answers", "code": "Y"}]}
            }
        return {}  # a bare coded finding: present

    def quantity_days(self) -> JSON:
        unit = self.pick("d", "d", "wk", "h", "mo", "min", "no-system", "integer")
        if unit == "integer":
            return {"valueInteger": self.rng.randint(0, 30)}
        value: float | int = {
            "d": self.rng.randint(0, 30),
            "wk": self.rng.randint(0, 4),
            "h": self.rng.randint(1, 400),
            "mo": self.pick(0, 1, 0.5),
            "min": 600,
            "no-system": 20,
        }[unit]
        if unit in ("d", "wk") and self.chance(0.2):
            value += 0.5
        if unit == "no-system":
            return {"valueQuantity": {"value": value, "unit": "days", "code": "d"}}
        return {"valueQuantity": {"value": value, "system": UCUM, "code": unit, "unit": unit}}

    def numbness(self, patient: str, as_of: dt.datetime) -> JSON:
        """The facial-numbness Observation, present, with what it may carry (side, duration, onset)."""
        obs = self.observation(patient, "facial-numbness", as_of, **self.pick({}, {"valueBoolean": True}))
        components = []
        if self.chance(0.4):
            attribute = {k: CODES["laterality"]["attribute"][k] for k in ("system", "code")}
            components.append(
                {
                    "code": {"coding": [attribute]},
                    "valueCodeableConcept": {
                        "coding": [self.side_coding(self.pick("left", "right", "both"))]
                    },
                }
            )
        if self.chance(0.3):
            components.append({"code": self.fact_code("facial-numbness-days"), **self.quantity_days()})
        if components:
            obs["component"] = components
        if self.chance(0.25):
            obs["bodySite"] = {"coding": [self.side_coding(self.pick("left", "right", "both"))]}
        if self.chance(0.3) and "effectivePeriod" not in obs:
            for key in ("effectiveDateTime", "effectiveInstant"):
                obs.pop(key, None)
            obs["effectivePeriod"] = {
                "start": _stamp(self.moment("facial-numbness", as_of) - self.pick(D, 10 * D, 20 * D), "z")
            }
        return obs

    def observations_of(self, patient: str, fact: str, as_of: dt.datetime) -> list[JSON]:
        # pattern 2: LOINC Symptom, the finding as value (for a fact that is no finding: no value)
        if self.chance(0.15 if fact in BOOLS else 0.04):
            symptom = {"system": CODES["symptom"]["system"], "code": CODES["symptom"]["code"]}
            obs = self.observation(patient, fact, as_of, valueCodeableConcept=self.fact_code(fact))
            obs["code"] = {"coding": [symptom]}
            return [obs]
        if fact in BOOLS:
            if fact == "facial-numbness" and self.chance(0.5):
                return [self.numbness(patient, as_of)]
            return [self.observation(patient, fact, as_of, **self.bool_value())]
        if fact == "facial-numbness-side":
            value = self.pick(
                {"valueCodeableConcept": {"coding": [self.side_coding(self.pick("left", "right", "both"))]}},
                {"valueCodeableConcept": {"coding": [{"system": "http://example.org", "code": "x"}]}},
                {"dataAbsentReason": DAR},
            )
            return [self.observation(patient, fact, as_of, **value)]
        if fact == "facial-numbness-days":
            value = self.quantity_days() if self.chance(0.85) else {"dataAbsentReason": DAR}
            return [self.observation(patient, fact, as_of, **value)]
        if fact == "facial-numbness-onset":
            onset = as_of - self.pick(2 * D, 10 * D, 20 * D, 40 * D) - self.pick(dt.timedelta(0), 5 * H)
            value = (
                {"valueDateTime": _stamp(onset, self.pick("z", "date"))}
                if self.chance(0.85)
                else {"dataAbsentReason": DAR}
            )
            return [self.observation(patient, fact, as_of, **value)]
        return [self.observation(patient, fact, as_of, valueInteger=self.rng.randint(0, 10))]  # severity

    # --- QuestionnaireResponses ----------------------------------------------------------------------

    def answer(self, fact: str, as_of: dt.datetime) -> JSON:
        if self.chance(0.08):
            return {"valueCoding": {"system": UNKNOWN["system"], "code": UNKNOWN["code"]}}
        if fact in BOOLS:
            return self.pick(
                {"valueBoolean": self.chance(0.5)}, {"valueCoding": self.yes_no(self.chance(0.5))}
            )
        if fact == "facial-numbness-side":
            return {"valueCoding": self.side_coding(self.pick("left", "right", "both"))}
        if fact == "facial-numbness-days":
            return {"valueInteger": self.rng.randint(0, 30)}
        if fact == "facial-numbness-onset":
            onset = as_of - self.pick(3 * D, 10 * D, 16 * D, 30 * D)
            return self.pick({"valueDate": onset.date().isoformat()}, {"valueDateTime": _stamp(onset, "z")})
        return {"valueInteger": self.rng.randint(0, 10)}

    def item(self, fact: str, as_of: dt.datetime) -> JSON:
        found: JSON = {"linkId": fact}
        if self.chance(0.9):
            found["answer"] = [self.answer(fact, as_of) for _ in range(self.pick(1, 1, 1, 1, 2))]
        return found

    def response(self, patient: str, facts: list[str], as_of: dt.datetime) -> JSON:
        items = [self.item(f, as_of) for f in facts]
        if self.chance(0.6):  # in the Questionnaire's groups, some nested under an answer
            grouped = []
            for group, members in GROUPS.items():
                inside = [i for i in items if i["linkId"] in members]
                if inside:
                    grouped.append({"linkId": group, "item": inside})
            items = grouped
            if self.chance(0.3) and items and items[0].get("item") and items[0]["item"][0].get("answer"):
                first = items[0]["item"]
                if len(first) > 1:
                    first[0]["answer"][0]["item"] = [first.pop()]
        canonical = self.pick(
            QUESTIONNAIRE, QUESTIONNAIRE, f"{QUESTIONNAIRE}|1.1.0", "https://example.org/Questionnaire/other"
        )
        qr: JSON = {
            "resourceType": "QuestionnaireResponse",
            "id": self.rid("qr"),
            "questionnaire": canonical,
            "status": self.pick(
                *["completed"] * 6, "in-progress", "in-progress", "amended", "entered-in-error", "stopped"
            ),
            "subject": {"reference": f"Patient/{patient}"},
            "item": items,
        }
        if self.chance(0.92):
            authored = self.moment(self.pick(*facts), as_of)
            qr["authored"] = _stamp(authored, self.pick("z", "z", "date", "offset"))
        return qr

    # --- patients ------------------------------------------------------------------------------------

    def patient(self, n: int) -> Case:
        patient = f"gen{n}"
        as_of = BASE + dt.timedelta(minutes=self.rng.randint(-3000, 3000))
        facts = [f for f in CODES["facts"] if self.chance(0.45)] or ["facial-numbness"]
        resources: list[JSON] = []
        answered: list[str] = []
        for fact in facts:
            for _ in range(self.pick(1, 1, 1, 2, 3)):  # several readings: conflicts, ties
                if self.chance(0.3):
                    answered.append(fact)
                else:
                    resources += self.observations_of(patient, fact, as_of)
        if len(resources) > 1 and self.chance(0.2):  # a tie: two readings at one instant
            twin = resources[-1]
            source = resources[0]
            for key in ("effectiveDateTime", "effectiveInstant", "effectivePeriod", "issued"):
                twin.pop(key, None)
                if key in source:
                    twin[key] = source[key]
        if answered:
            resources.append(self.response(patient, list(dict.fromkeys(answered)), as_of))
            if self.chance(0.15):
                resources.append(self.response(patient, list(dict.fromkeys(answered)), as_of))
        if self.chance(0.3):
            resources.append(
                {
                    "resourceType": "Observation",
                    "id": self.rid("hr"),
                    "status": "final",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
                    "subject": {"reference": f"Patient/{patient}"},
                    "valueQuantity": {"value": 72, "unit": "/min", "system": UCUM, "code": "/min"},
                }
            )
        self.rng.shuffle(resources)
        bundle: JSON = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": r} for r in resources],
        }
        mode = self.pick("asOf", "timestamp", "timestamp", "clock")
        if mode == "timestamp":
            bundle["timestamp"] = _stamp(as_of, "z")
            return Case(patient, bundle)
        if mode == "asOf":
            if self.chance(0.5):
                bundle["timestamp"] = _stamp(as_of + self.pick(H, 5 * D), "z")
            return Case(patient, bundle, as_of=as_of)
        return Case(patient, bundle, now=as_of)


def generated(count: int, seed: int) -> list[Case]:
    gen = Generator(seed)
    return [gen.patient(n) for n in range(count)]
