"""Bundle → Intake: one patient's facts, resolved, with everything the output needs to cite them.

Checks the Bundle as a whole (rules.md §4): entry limit, one subject, at least one usable fact; routes
each entry to its reader; sets aside readings older than their fact's lookback (rules.md §1, evidence
recency: stale, listed as not used); resolves conflicting current readings (latest wins, a tie goes to the
worse value); ages a recorded duration to the evaluation time; derives the duration from the onset when no
duration was given.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from service.codebook import CodeBook
from service.errors import InvalidInput, NoFacts, Problem, TooLarge, Unprocessable
from service.intake.fhir_json import check_envelope, check_resource, looks_clean
from service.intake.fields import JSON, obj, opt_datetime, opt_list, opt_obj, opt_str
from service.intake.observation import observation_readings
from service.intake.questionnaire_response import is_ours, questionnaire_readings
from service.intake.readings import Reading, Skipped
from service.rules.facts import Evidence, Fact
from service.rules.table import RuleTable

_TYPE_NAME = re.compile(r"[A-Z][A-Za-z]{1,63}")
_PATIENT_URL = re.compile(r"(?:^|/)(Patient|Group)/([A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


@dataclass(frozen=True)
class Intake:
    facts: dict[str, Fact]
    subject: JSON  # a FHIR Reference to emit
    encounter: JSON | None
    as_of: dt.datetime
    as_of_source: str  # "asOf" (explicit), "Bundle.timestamp" or "the server clock" (rules.md §1)
    basis: tuple[Evidence, ...]
    responses: tuple[Evidence, ...]  # QuestionnaireResponses that gave facts
    in_progress: bool
    conflicts: tuple[str, ...]
    skipped: tuple[Skipped, ...]
    stale: tuple[Reading, ...] = ()  # readings older than their fact's lookback: not used (also in skipped)
    times: dict[str, dt.datetime] = field(default_factory=dict)  # each resource used as evidence: its time


@dataclass(frozen=True)
class _AsOf:
    """The evaluation time and where it came from: ``asOf`` (explicit), ``Bundle.timestamp`` or the clock."""

    when: dt.datetime
    source: str

    @property
    def explicit(self) -> bool:
        return self.source == "asOf"

    def later(self, readings: list[Reading], loc: str) -> Skipped | None:
        """A note when the resource behind ``readings`` is dated after the evaluation time (rules.md §1)."""
        times = [r.when for r in readings if r.when is not None]
        if not times or max(times) <= self.when:
            return None
        dated, at = max(times).isoformat(), self.when.isoformat()
        if self.explicit:
            return Skipped(loc, f"dated {dated}, after the evaluation time {at} given as asOf: not used")
        return Skipped(
            loc,
            f"dated {dated}, after the evaluation time {at} ({self.source}): used all the same "
            "(most likely clock skew between systems)",
        )


@dataclass
class _Entry:
    loc: str
    resource_type: str
    resource: JSON
    evidence: Evidence
    full_url: str | None


def read_bundle(
    bundle: Any,
    book: CodeBook,
    table: RuleTable,
    as_of: dt.datetime | None = None,
    max_entries: int = 1000,
    now: dt.datetime | None = None,
) -> Intake:
    """The evaluation time is ``as_of``, else Bundle.timestamp, else ``now`` (rules.md §1).

    Evidence dated after it (rules.md §1, contract 1.0.1): with an explicit ``as_of`` the question is what
    the rules would have said then, so a later resource did not exist yet and is not used (listed as
    ignored); with Bundle.timestamp or the clock a later date is most likely clock skew, so the resource is
    used, with an informational note. A resource with no time is used either way.
    """
    bundle = obj(bundle, "Bundle")
    if bundle.get("resourceType") != "Bundle":
        kind = bundle.get("resourceType")
        raise InvalidInput(f"expected a Bundle (or Parameters with a 'bundle' part), got {str(kind)[:40]!r}")
    raw_entries = opt_list(bundle, "entry", "Bundle")
    if not raw_entries:
        raise InvalidInput("the Bundle has no entries: nothing to assess", "Bundle.entry")
    if len(raw_entries) > max_entries:
        raise TooLarge(
            f"the Bundle has {len(raw_entries)} entries; the limit is {max_entries}", "Bundle.entry"
        )
    stamp = opt_datetime(bundle, "timestamp", "Bundle")
    when = as_of or stamp or now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    source = "asOf" if as_of else "Bundle.timestamp" if stamp else "the server clock"
    clean = looks_clean(bundle)
    check_envelope(bundle, "Bundle", clean)
    entries = [_entry(raw, i) for i, raw in enumerate(raw_entries)]
    patients = {
        e.full_url: e.evidence.reference
        for e in entries
        if e is not None and e.resource_type == "Patient" and e.full_url
    }
    return _Reader(book, table, _AsOf(when, source), patients, clean).read(entries)


def _entry(raw: Any, i: int) -> _Entry | None:
    loc = f"Bundle.entry[{i}]"
    entry = obj(raw, loc)
    resource = opt_obj(entry, "resource", loc)
    if resource is None:
        return None
    where = f"{loc}.resource"
    rtype = opt_str(resource, "resourceType", where)
    if rtype is None:
        raise InvalidInput(f"{where}.resourceType is required", f"{where}.resourceType")
    full_url = opt_str(entry, "fullUrl", loc)
    rid = opt_str(resource, "id", where)
    if rid:
        evidence = Evidence(rtype, f"{rtype}/{rid}")
    elif full_url:
        evidence = Evidence(rtype, full_url)
    else:
        evidence = Evidence(rtype, f"{rtype} at {loc}", resolvable=False)
    return _Entry(where, rtype, resource, evidence, full_url)


class _Reader:
    def __init__(self, book: CodeBook, table: RuleTable, as_of: _AsOf, patients: dict[str, str], clean: bool):
        self.book, self.table, self.when = book, table, as_of
        self.as_of = as_of.when
        self.patients = patients  # Patient entry fullUrl -> Patient/id, so urn:uuid subjects compare equal
        self.clean = clean  # the whole Bundle holds no null and no control character (fhir_json)

    def read(self, entries: list[_Entry | None]) -> Intake:
        readings: list[Reading] = []  # current: what the facts are made of
        read: list[Reading] = []  # everything read, stale readings included
        stale: list[Reading] = []
        skipped: list[Skipped] = []
        times: dict[str, dt.datetime] = {}
        subjects: dict[str, list[str]] = defaultdict(list)
        subject_refs: dict[str, JSON] = {}
        encounters: list[str] = []
        no_subject: list[str] = []
        responses: list[Evidence] = []
        in_progress = False
        for entry in entries:
            if entry is None:
                continue
            got, notes, progress = self._read_entry(entry)
            if got or entry.resource_type in ("Patient", "Encounter"):  # what is read must be FHIR JSON
                check_resource(entry.resource, entry.loc, self.clean, entry.full_url)
            later = self.when.later(got, entry.loc)
            if later is not None:
                notes.append(later)
                got = [] if self.when.explicit else got
            current, old = self._by_age(got)
            if old:
                stale += old
                notes.append(self._stale_note(old, entry))
            read += got
            readings += current
            if current and current[0].when is not None:  # one time per resource (effective[x], authored)
                times[entry.evidence.reference] = current[0].when
            skipped += notes
            # an unfinished questionnaire holds the result back only through an answer that is used
            in_progress = in_progress or (progress and bool(current))
            if current and entry.resource_type == "QuestionnaireResponse":
                responses.append(entry.evidence)
            if entry.resource_type in ("Observation", "QuestionnaireResponse", "Encounter"):
                key, ref = self._subject(entry)
                if key is None:
                    if got:
                        no_subject.append(entry.loc)
                    continue
                if not got and not self._is_patient(key):
                    continue  # e.g. an Observation about a Device: not another patient
                subjects[key].append(entry.loc)
                subject_refs.setdefault(key, ref)
                encounter = self._encounter(entry)
                if encounter and (got or entry.resource_type == "Encounter"):
                    encounters.append(encounter)
            elif entry.resource_type != "Patient":  # Patient entries resolve references (see __init__)
                skipped.append(Skipped(entry.loc, f"{_type_name(entry.resource_type)} not read by neckcheck"))
        _check_subjects(subjects, no_subject, read, skipped)  # a stale reading is still a fact given
        facts, conflicts = resolve(readings, self.table, self.as_of)
        basis = tuple(dict.fromkeys(ev for fact in facts.values() for ev in fact.evidence))
        distinct = list(dict.fromkeys(encounters))
        return Intake(
            facts=facts,
            subject=next(iter(subject_refs.values())),
            encounter={"reference": distinct[0]} if len(distinct) == 1 else None,
            as_of=self.as_of,
            as_of_source=self.when.source,
            basis=basis,
            responses=tuple(dict.fromkeys(responses)),
            in_progress=in_progress,
            conflicts=tuple(conflicts),
            skipped=tuple(skipped),
            stale=tuple(stale),
            times=times,
        )

    def _by_age(self, readings: list[Reading]) -> tuple[list[Reading], list[Reading]]:
        """Current and stale readings: stale when older than its own fact's lookback; exactly the window
        is still current (rules.md §1). Each reading is judged alone: a QuestionnaireResponse item by item."""
        as_of, windows = self.as_of, self.table.windows
        # no time, or still going on (seen None): age zero; dated after the evaluation time: a negative age
        stale = [r for r in readings if r.seen is not None and as_of - r.seen > windows[r.fact]]
        if not stale:  # the common case: every reading current
            return readings, []
        return [r for r in readings if r not in stale], stale

    def _stale_note(self, stale: list[Reading], entry: _Entry) -> Skipped:
        """The not-used note: which facts (a QuestionnaireResponse's linkIds), how old, which window."""
        names = list(dict.fromkeys(r.fact for r in stale))
        windows = list(dict.fromkeys(str(self.table.facts[n].lookback) for n in names))
        what = ("items " if entry.resource_type == "QuestionnaireResponse" else "") + ", ".join(names)
        window = f"the {windows[0]} window" if len(windows) == 1 else f"their windows ({', '.join(windows)})"
        first = stale[0]
        recorded = f"recorded {first.when.date().isoformat()}, " if first.when is not None else ""
        return Skipped(
            entry.loc,
            f"{what}: {recorded}{age_text(first.age(self.as_of))} before the evaluation time, "
            f"older than {window}: stale, not used",
        )

    def _read_entry(self, entry: _Entry) -> tuple[list[Reading], list[Skipped], bool]:
        if entry.resource_type == "Observation":
            got, notes = observation_readings(
                entry.resource, entry.loc, entry.evidence, self.book, self.table
            )
            return got, notes, False
        if entry.resource_type == "QuestionnaireResponse":
            if not is_ours(entry.resource, entry.loc, self.book, "neckcheck-screen"):
                return [], [Skipped(entry.loc, "QuestionnaireResponse for another Questionnaire")], False
            return questionnaire_readings(entry.resource, entry.loc, entry.evidence, self.book, self.table)
        return [], [], False

    def _subject(self, entry: _Entry) -> tuple[str | None, JSON]:
        key = "subject"  # Observation, QuestionnaireResponse and (R4) Encounter alike
        ref = opt_obj(entry.resource, key, entry.loc)
        if ref is None:
            return None, {}
        where = f"{entry.loc}.{key}"
        reference = opt_str(ref, "reference", where)
        if reference:
            normal = subject_key(self.patients.get(reference, reference))
            return normal, {"reference": normal}
        identifier = opt_obj(ref, "identifier", where)
        if identifier:
            system = opt_str(identifier, "system", f"{where}.identifier")
            value = opt_str(identifier, "value", f"{where}.identifier")
            if value:
                ident = {"system": system, "value": value} if system else {"value": value}
                return f"identifier {system}|{value}", {"identifier": ident}
        return None, {}

    def _is_patient(self, key: str) -> bool:
        return key.startswith(("Patient/", "Group/", "identifier ")) or key in self.patients.values()

    def _encounter(self, entry: _Entry) -> str | None:
        if entry.resource_type == "Encounter":
            return entry.evidence.reference if entry.evidence.resolvable else None
        ref = opt_obj(entry.resource, "encounter", entry.loc)
        return None if ref is None else opt_str(ref, "reference", f"{entry.loc}.encounter")


@lru_cache(maxsize=4096)  # every entry of a Bundle names the same patient
def subject_key(reference: str) -> str:
    """``Patient/<id>`` (or ``Group/<id>``) for a relative, absolute or versioned reference to one, so
    the same patient compares equal however it is written; any other reference as it is. Population
    screening groups an export's resources by this same key."""
    match = _PATIENT_URL.search(reference)
    return f"{match.group(1)}/{match.group(2)}" if match else reference


def _type_name(resource_type: str) -> str:
    """The type as given if it is a FHIR type name; otherwise nothing of it is echoed."""
    return resource_type if _TYPE_NAME.fullmatch(resource_type) else "a resource of no FHIR type"


def _check_subjects(
    subjects: dict[str, list[str]], no_subject: list[str], readings: list[Reading], skipped: list[Skipped]
) -> None:
    if len(subjects) > 1:
        problems = [Problem(f"{loc} is about {key}", loc) for key, locs in subjects.items() for loc in locs]
        names = ", ".join(sorted(subjects))
        raise Unprocessable(
            f"one patient per request: the entries are about {len(subjects)} subjects ({names})",
            problems=[Problem(f"one patient per request, found {len(subjects)}: {names}"), *problems],
        )
    if no_subject:
        raise Unprocessable(
            "entries that give facts must have a subject",
            problems=[Problem(f"{loc} has no subject", f"{loc}.subject") for loc in no_subject],
        )
    if not readings:
        reasons = [Problem(f"{s.location}: {s.reason}", s.location) for s in skipped[:20]]
        raise NoFacts(
            "no entry gives any neckcheck fact",
            problems=[
                Problem("no entry gives any neckcheck fact (see codes in the Questionnaire)"),
                *reasons,
            ],
        )


def _rank(kind: str, value: object) -> float:
    """How bad a value is, for the conservative tie-break (unknown sits between present and absent)."""
    if value is None:
        return math.inf if kind in ("days", "date") else 1
    if kind == "bool":
        return 2 if value is True else 0
    if kind == "side":
        return 0 if value == "both" else 2
    if kind == "date" and isinstance(value, dt.datetime):
        return -value.timestamp()  # an earlier onset means a longer duration
    return float(value) if isinstance(value, int | float) else 0


def age_text(age: dt.timedelta) -> str:
    """An age as a clinician reads it: whole days when it is days, else hours to the second (a reading
    24 h 1 s old is stale, one 24 h old is not)."""
    seconds = int(age.total_seconds())
    if seconds >= 3 * 86400:
        return f"{seconds // 86400} days"
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{hours} h"] + ([f"{minutes} min"] if minutes else []) + ([f"{seconds} s"] if seconds else [])
    return " ".join(parts)


DURATION = "facial-numbness-days"
_NUMBNESS = "facial-numbness"


def resolve(
    readings: list[Reading], table: RuleTable, as_of: dt.datetime
) -> tuple[dict[str, Fact], list[str]]:
    """Latest reading wins; on a tie (or when a reading has no time) the worse value wins (rules.md §4).

    The duration is resolved last, in whole days at the evaluation time (see ``_duration_now``).
    """
    by_fact: dict[str, list[Reading]] = defaultdict(list)
    for reading in readings:
        by_fact[reading.fact].append(reading)
    facts: dict[str, Fact] = {}
    conflicts: list[str] = []
    order = list(by_fact)  # the facts keep the order they were first read in (basis, evidence)
    durations = by_fact.pop(DURATION, None)
    if durations:
        by_fact[DURATION] = durations  # after facial-numbness, whose value decides whether it grows
    for name, group in by_fact.items():
        if name == DURATION:
            # a table from before lookbacks (contract 1.0.0, retired) took a duration as recorded
            dated = table.facts[DURATION].lookback is not None
            grows = dated and (_NUMBNESS not in facts or facts[_NUMBNESS].value is not False)
            group = [r._replace(value=_duration_now(r, as_of, grows)) for r in group]
        if len(group) == 1:  # most facts: one reading, nothing to resolve
            facts[name] = Fact(group[0].value, (group[0].evidence,))
            continue
        kind = table.facts[name].kind
        values = {_plain(r.value) for r in group}
        if len(values) == 1:
            facts[name] = Fact(group[0].value, tuple(dict.fromkeys(r.evidence for r in group)))
            continue
        timed = all(r.when is not None for r in group)
        latest = max(r.when for r in group if r.when is not None) if timed else None
        candidates = [r for r in group if not timed or r.when == latest]
        winner = max(candidates, key=lambda r: _rank(kind, r.value))
        why = (
            "the latest record" if timed and len(candidates) == 1 else "the more cautious value of the latest"
        )
        sentence = (
            f"Conflicting records for {table.facts[name].label} "
            f"({', '.join(sorted(shown(v) for v in values))}): used {shown(_plain(winner.value))}, {why}."
        )
        chosen = tuple(dict.fromkeys(r.evidence for r in candidates if r.value == winner.value))
        facts[name] = Fact(winner.value, chosen, conflict=sentence)
        conflicts.append(sentence)
    if durations:
        facts = {name: facts[name] for name in order}
    _days_from_onset(facts, as_of)
    return facts, conflicts


def _duration_now(reading: Reading, as_of: dt.datetime, grows: bool) -> int | None:
    """A recorded duration in whole days at the evaluation time (rules.md §1): the value plus the reading's
    age while the numbness goes on, the sum rounded down. "Goes on" is read conservatively: present, or
    not known to have stopped (unknown is not "no"; §3 then assumes it present, and so does this)."""
    if not isinstance(reading.value, int | float) or isinstance(reading.value, bool):
        return None
    days = reading.value + (reading.age(as_of).total_seconds() / 86400 if grows else 0)
    return math.floor(days + 1e-9)  # a unit conversion's float error must not lose a day


def _plain(value: object) -> object:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def shown(value: object) -> str:
    """A fact's value in a clinician's words: present, absent, unknown, a date, or the value itself."""
    if value is None or isinstance(value, bool):
        return {True: "present", False: "absent", None: "unknown"}[value]
    return str(value.isoformat() if isinstance(value, dt.date) else value)


def _days_from_onset(facts: dict[str, Fact], as_of: dt.datetime) -> None:
    onset = facts.get("facial-numbness-onset")
    if onset is None or not isinstance(onset.value, dt.datetime):
        return
    if "facial-numbness-days" not in facts:
        elapsed = (as_of - onset.value).total_seconds() / 86400
        if elapsed < 0:
            where = ", ".join(ev.describe() for ev in onset.evidence)
            raise Unprocessable(
                f"the numbness onset ({onset.value.date()}) is after the evaluation time ({where})"
            )
        facts["facial-numbness-days"] = Fact(math.floor(elapsed), onset.evidence)
    facts["facial-numbness-onset"] = Fact(onset.value.date(), onset.evidence, onset.conflict)
