"""In-process timings: the engine next to two baselines on the same bytes, interleaved round-robin.

For each case (the small scenario Bundle, then generated Bundles of 100, 500 and 1,000 Observations) one
round calls every measurement once, in an order rotated each round, timing each call with
``time.perf_counter``. Noise (another process, a frequency change, a GC pause) therefore lands on all of
them alike, and the ratios between them are what the targets judge. Rounds continue until the case's
round limit or time budget is reached; a few untimed warm-up rounds come first. The garbage collector
stays enabled, as in the server.

Measurements (all on the same request bytes):

* ``assess_dict``   ``Assessor.run(parsed)`` on a dict parsed once beforehand (the engine alone);
* ``assess_bytes``  ``fhir_bytes(Assessor.run(parse_json(data)).bundle)``: what ``POST /fhir/$assess``
                    does inside Flask (the service's strict stdlib-json parser and its serialiser);
* ``orjson_floor``  ``orjson.dumps(orjson.loads(data))``: the floor, a parse and dump with no work;
* ``fhir_resources`` ``Bundle.model_validate_json(data).model_dump_json()`` with fhir.resources R4B:
                    full FHIR model parse, validation and dump;
* ``parse_json`` / ``fhir_bytes``: the two halves of the HTTP path's JSON work on their own, so the
                    difference between ``assess_bytes`` and ``assess_dict`` can be attributed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import orjson
from fhir.resources.R4B.bundle import Bundle

from benchmarks.stats import summary
from service.assess import Assessor
from service.intake.json_body import parse_json
from service.intake.strict import validate_strictly
from service.web.responses import fhir_bytes

MEASUREMENTS = (
    "assess_dict",
    "assess_bytes",
    "assess_strict",
    "orjson_floor",
    "fhir_resources",
    "parse_json",
    "fhir_bytes",
)

# per case: (warm-up rounds, minimum rounds, maximum rounds, time budget in seconds)
BUDGETS = {
    "small (S7)": (200, 300, 3000, 8.0),
    "a dozen (every fact)": (200, 300, 3000, 8.0),
    "100 obs": (20, 100, 1000, 10.0),
    "500 obs": (5, 40, 400, 14.0),
    "1000 obs": (3, 30, 300, 18.0),
}


def _strict(body: Any) -> Any:
    """The ``?_validate=strict`` path: full fhir.resources validation of the input, then the assessment."""
    validate_strictly(body)
    return body


def _calls(assessor: Assessor, data: bytes) -> dict[str, Callable[[], Any]]:
    parsed = parse_json(data)
    output = assessor.run(parsed).bundle
    return {
        "assess_dict": lambda: assessor.run(parsed),
        "assess_bytes": lambda: fhir_bytes(assessor.run(parse_json(data)).bundle),
        "assess_strict": lambda: fhir_bytes(assessor.run(_strict(parse_json(data))).bundle),
        "orjson_floor": lambda: orjson.dumps(orjson.loads(data)),
        "fhir_resources": lambda: Bundle.model_validate_json(data).model_dump_json(),
        "parse_json": lambda: parse_json(data),
        "fhir_bytes": lambda: fhir_bytes(output),
    }


def measure_case(
    assessor: Assessor, name: str, data: bytes, budget: tuple[int, int, int, float], scale: float = 1.0
) -> dict[str, Any]:
    warmup, min_rounds, max_rounds, seconds = budget
    calls = _calls(assessor, data)
    names = list(calls)
    reference = fhir_bytes(assessor.run(parse_json(data)).bundle)
    for _ in range(warmup):
        for n in names:
            calls[n]()
    samples: dict[str, list[float]] = {n: [] for n in names}
    perf = time.perf_counter
    deadline = perf() + seconds * scale
    rounds = 0
    while rounds < max_rounds and (rounds < min_rounds or perf() < deadline):
        k = rounds % len(names)
        for n in names[k:] + names[:k]:  # rotate the order: no measurement always runs first or last
            fn = calls[n]
            t0 = perf()
            fn()
            samples[n].append(perf() - t0)
        rounds += 1
    parsed = parse_json(data)
    # sanity: the engine is deterministic and left its input alone
    same_output = fhir_bytes(assessor.run(parsed).bundle) == reference
    intake = assessor.run(parsed).intake
    return {
        "case": name,
        "entries": len(parsed["entry"]),
        "request_bytes": len(data),
        "response_bytes": len(reference),
        "facts": len(intake.facts),
        "conflicts": len(intake.conflicts),
        "skipped": len(intake.skipped),
        "rounds": rounds,
        "deterministic_output": same_output,
        "input_unchanged": parsed == parse_json(data),
        "timings": {n: summary(samples[n]) for n in names},
    }


def run_all(
    cases: list[tuple[str, bytes]], scale: float = 1.0, log: Callable[[str], None] = print
) -> list[dict[str, Any]]:
    assessor = Assessor.load()  # built once, as the app does
    results = []
    for name, data in cases:
        started = time.perf_counter()
        result = measure_case(assessor, name, data, BUDGETS[name], scale)
        result["wall_s"] = round(time.perf_counter() - started, 2)
        t = result["timings"]
        log(
            f"  {name:<11} {result['rounds']:>5} rounds in {result['wall_s']:5.1f} s: "
            f"assess {t['assess_dict']['median_ms']:.3f} ms, bytes path {t['assess_bytes']['median_ms']:.3f} ms, "
            f"orjson {t['orjson_floor']['median_ms']:.3f} ms, fhir.resources {t['fhir_resources']['median_ms']:.2f} ms"
        )
        results.append(result)
    return results
