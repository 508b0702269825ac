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
    wrong = [f"{name} is {said} but {file} has {seen}" for name, said, file, seen in claims if said != seen]
    unknown = set(found["risk"]) - set(data["byRisk"]) or set(found["rules"]) - set(data["patientsPerRule"])
    if unknown:
        wrong.append(f"{RESULTS} has values the summary does not count: {sorted(unknown)}")
    if wrong:
        raise Unsound(f"the outputs in {folder} do not agree with the summary: " + "; ".join(wrong))
