"""The summary counted again from the files it describes, before a run says it finished.

summary.json is added up from the partitions' tallies; results.ndjson and the other files are
concatenated from the partitions' outputs. They are two records of one run and must agree: a partition
whose outputs were cut after its tally was written once gave a summary that disagreed with
results.ndjson, and exit 0. Here every count that results.ndjson (and the other per-patient files)
can show is recounted from them; any difference stops the run with a message naming it.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import orjson

from service.output.measure import POPULATIONS
from service.screen.measure_reports import MEASURE_REPORTS, POPULATION_KEYS
from service.screen.outputs import INPUT_PROBLEMS, NOT_ASSESSED, RESULTS, RISK_ASSESSMENTS, UNMATCHED


class Unsound(Exception):
    """The outputs do not agree with the summary: the run is not reported as finished."""


def _lines(path: Path) -> int:
    count = 0
    with path.open("rb") as stream:
        while block := stream.read(1 << 20):
            count += block.count(b"\n")
    return count


def recount(folder: Path) -> dict[str, Any]:
    """The summary's per-patient counts, from results.ndjson and the line counts of the other files."""
    risk: Counter[str] = Counter()
    status: Counter[str] = Counter()
    both: Counter[str] = Counter()
    rules: Counter[str] = Counter()
    with (folder / RESULTS).open("rb") as stream:
        for number, text in enumerate(stream, 1):
            try:
                line = orjson.loads(text)
                risk[line["risk"]] += 1
                status[line["status"]] += 1
                both[f"{line['risk']} {line['status']}"] += 1
                rules.update(line["rules"])
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                raise Unsound(f"{folder / RESULTS}, line {number}: not a result ({exc!r})") from exc
    return {
        "results": sum(status.values()),
        "risk": risk,
        "status": status,
        "riskAndStatus": both,
        "rules": rules,
        "riskAssessments": _lines(folder / RISK_ASSESSMENTS),
        "notAssessed": _lines(folder / NOT_ASSESSED),
        "unmatched": _lines(folder / UNMATCHED),
        "problems": _lines(folder / INPUT_PROBLEMS),
    }


def reconcile(folder: Path, data: dict[str, Any]) -> None:
    """Raises Unsound naming each count of ``data`` (the summary) that the files in ``folder`` contradict."""
    found = recount(folder)
    lines = data["input"]["lines"]
    problems = sum(lines.get(k, 0) for k in ("malformed", "no-patient", "too-long"))
    claims = [
        ("patients.withResult", data["patients"]["withResult"], RESULTS, found["results"]),
        ("byRisk", data["byRisk"], RESULTS, {k: found["risk"][k] for k in data["byRisk"]}),
        ("byStatus", data["byStatus"], RESULTS, {k: found["status"][k] for k in data["byStatus"]}),
        (
            "byRiskAndStatus",
            data["byRiskAndStatus"],
            RESULTS,
            {k: found["riskAndStatus"][k] for k in data["byRiskAndStatus"]},
        ),
        (
            "patientsPerRule",
            data["patientsPerRule"],
            RESULTS,
            {k: found["rules"][k] for k in data["patientsPerRule"]},
        ),
        ("patients.withResult", data["patients"]["withResult"], RISK_ASSESSMENTS, found["riskAssessments"]),
        ("patients.notAssessed", data["patients"]["notAssessed"], NOT_ASSESSED, found["notAssessed"]),
        (
            "escalationWithoutServiceRequest.patients",
            data["escalationWithoutServiceRequest"]["patients"],
            UNMATCHED,
            found["unmatched"],
        ),
        ("input problems", problems + len(data["input"]["tooLargeFiles"]), INPUT_PROBLEMS, found["problems"]),
    ]
    claims += _measure_claims(folder, data)
    wrong = [f"{name} is {said} but {file} has {seen}" for name, said, file, seen in claims if said != seen]
    unknown = set(found["risk"]) - set(data["byRisk"]) or set(found["rules"]) - set(data["patientsPerRule"])
    if unknown:
        wrong.append(f"{RESULTS} has values the summary does not count: {sorted(unknown)}")
    if wrong:
        raise Unsound(f"the outputs in {folder} do not agree with the summary: " + "; ".join(wrong))


def _populations(group: dict[str, Any]) -> dict[str, int | None]:
    """A report group's (or stratum's) counts, by summary.json's names."""
    counts = {p["code"]["coding"][0]["code"]: p["count"] for p in group["population"]}
    return dict(zip(POPULATION_KEYS, (counts.get(code) for code in POPULATIONS), strict=True))


def recount_measure(path: Path) -> dict[str, Any]:
    """What the MeasureReports say: how many summary reports, the last one's populations overall and in
    each rule's "true" stratum, and the individual reports in each population."""
    summary: dict[str, Any] = {"summaries": 0, "overall": None, "byRule": {}}
    individual: Counter[str] = Counter()
    with path.open("rb") as stream:
        for number, text in enumerate(stream, 1):
            try:
                report = orjson.loads(text)
                (group,) = report["group"]
                if report["type"] != "summary":
                    individual.update(k for k, n in _populations(group).items() if n)
                    continue
                fired = {
                    stratifier["code"][0]["text"]: _populations(stratum)
                    for stratifier in group["stratifier"]
                    for stratum in stratifier["stratum"]
                    if stratum["value"]["text"] == "true"
                }
                summary = {
                    "summaries": summary["summaries"] + 1,
                    "overall": _populations(group),
                    "byRule": fired,
                }
            except (orjson.JSONDecodeError, KeyError, IndexError, TypeError, ValueError) as exc:
                raise Unsound(f"{path}, line {number}: not a MeasureReport ({exc!r})") from exc
    return {**summary, "individual": individual}


def _measure_claims(folder: Path, data: dict[str, Any]) -> list[tuple[str, Any, str, Any]]:
    """The measure's counts against the MeasureReports written, and against the counts the other files
    already confirmed: its initial population is the patients with a result, and those in its denominator
    but not its numerator are the ones escalation-without-referral.ndjson lists."""
    section = data["measure"]
    found = recount_measure(folder / MEASURE_REPORTS)
    by_rule = {rule: {k: p[k] for k in POPULATION_KEYS} for rule, p in section["byRule"].items()}
    initial = {rule: p["initialPopulation"] for rule, p in by_rule.items()}
    gap = section["denominator"] - section["numerator"]
    unmatched = data["escalationWithoutServiceRequest"]["patients"]
    claims = [
        ("summary MeasureReports", 1, MEASURE_REPORTS, found["summaries"]),
        ("measure", {k: section[k] for k in POPULATION_KEYS}, MEASURE_REPORTS, found["overall"]),
        ("measure.byRule", by_rule, MEASURE_REPORTS, found["byRule"]),
        (
            "measure.subjectReports",
            section["subjectReports"],
            MEASURE_REPORTS,
            found["individual"]["denominator"],
        ),
        ("measure.initialPopulation", section["initialPopulation"], RESULTS, data["patients"]["withResult"]),
        ("measure.byRule initial populations", initial, RESULTS, data["patientsPerRule"]),
        ("measure.denominator - numerator", gap, UNMATCHED, unmatched),
    ]
    if section["subjectReports"]:
        claims.append(
            ("measure.numerator", section["numerator"], MEASURE_REPORTS, found["individual"]["numerator"])
        )
    return claims
