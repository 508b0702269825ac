"""A screening job's settings, and whether OUTDIR already holds a compatible unfinished run.

Without ``--as-of`` the job takes one instant at its start as the clock for every patient and records it:
a resumed run uses the same instant, so a patient's result does not depend on when its partition ran.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, replace
from functools import cache
from pathlib import Path
from typing import Any

from service.assess import Assessor
from service.errors import InvalidInput
from service.fhir_values import fhir_datetime, parse_datetime
from service.screen.inputs import InputFile
from service.screen.partitions import MAX_PATIENT_BYTES
from service.screen.patient import EvaluationTime
from service.screen.places import WORK
from service.screen.reader import Limits
from service.screen.spill import CHUNK_BYTES
from service.screen.workdir import WorkDir

PARTITION_BYTES = 2 << 20  # about this much NDJSON per partition: what one worker holds at a time
GZIP_RATIO = 8  # NDJSON of FHIR compresses about this much
MIN_PARTITIONS, MAX_PARTITIONS = 8, 2048
LIMITS = Limits()


@dataclass(frozen=True)
class Job:
    source: Path
    out: Path
    when: EvaluationTime
    workers: int
    partitions: int  # 0: chosen from the export's size
    max_entries: int
    chunk_bytes: int = CHUNK_BYTES  # a larger uncompressed file is read in parallel chunks
    limits: Limits = LIMITS
    max_patient_bytes: int = MAX_PATIENT_BYTES
    allowed: tuple[Path, ...] = ()  # folders a manifest may name files in, besides its own
    force: bool = False  # replace a finished run in OUTDIR
    subject_reports: bool = False  # an individual MeasureReport for each patient of the denominator

    @property
    def work(self) -> WorkDir:
        return WorkDir(self.out / WORK)

    def evaluation_time(self) -> dict[str, str]:
        if self.when.as_of is not None:
            return {"asOf": fhir_datetime(self.when.as_of)}
        assert self.when.now is not None
        return {"now": fhir_datetime(self.when.now)}

    def settings(self, files: list[InputFile], rule_set: str) -> dict[str, Any]:
        return {
            "inputs": [[f.name, f.size] for f in files],
            "evaluationTime": self.evaluation_time(),
            "partitions": self.partitions or default_partitions(files),
            "maxEntries": self.max_entries,
            "chunkBytes": self.chunk_bytes,
            "maxLineBytes": self.limits.max_line,
            "maxDecompressedBytes": self.limits.max_decompressed,
            "maxPatientBytes": self.max_patient_bytes,
            "ruleSet": rule_set,
            "subjectReports": self.subject_reports,
        }

    def resume(self, files: list[InputFile], rule_set: str) -> Job:
        """This job, or the unfinished one in OUTDIR with its recorded clock and partitions.

        Raises InvalidInput when OUTDIR holds an unfinished run with other settings.
        """
        wanted = self.settings(files, rule_set)
        recorded = self.work.settings(wanted)
        if recorded is None:
            return replace(self, partitions=wanted["partitions"])
        keep = dict(wanted)
        if self.when.as_of is None and "now" in recorded["evaluationTime"]:
            keep["evaluationTime"] = recorded["evaluationTime"]
        if not self.partitions:
            keep["partitions"] = recorded["partitions"]
        if keep != recorded:
            differ = sorted(k for k in keep if keep[k] != recorded.get(k))
            raise InvalidInput(
                f"{self.out} holds an unfinished run with other settings ({', '.join(differ)}): "
                "run it again with the same ones to continue, or use another --out"
            )
        now = recorded["evaluationTime"].get("now")
        when = EvaluationTime(self.when.as_of, parse_datetime(now, "now") if now else None)
        return replace(self, when=when, partitions=recorded["partitions"])


def default_partitions(files: list[InputFile]) -> int:
    size = sum(f.size * (GZIP_RATIO if f.gzipped else 1) for f in files)
    return min(max(math.ceil(size / PARTITION_BYTES), MIN_PARTITIONS), MAX_PARTITIONS)


def evaluation_time(as_of: str | None) -> EvaluationTime:
    if as_of:
        return EvaluationTime(as_of=parse_datetime(as_of, "--as-of"))
    return EvaluationTime(now=dt.datetime.now(dt.UTC).replace(microsecond=0))


@cache
def assessor_for(max_entries: int) -> Assessor:
    """The packaged rule table and codes, loaded once per process (each worker, each Spark executor)."""
    return Assessor.load(max_entries=max_entries)
