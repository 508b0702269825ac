"""OUTDIR/.work: the spilled partitions and the ledgers that make an interrupted run resumable.

.work/run.json            the run's settings: input files, evaluation time, partitions, rule set. A second
                          run on the same OUTDIR continues only with the same settings (and the same
                          fixed clock when --as-of was not given), else it stops and says so.
.work/spilled/fNNNNN-cCCCC.json  ledger of phase 1: chunk CCCCC of file NNNNN has been read completely
                          (with its counts); a large uncompressed file is read in chunks, in parallel
.work/spill/pNNNN/fNNNNN-cCCCC.tsv  its lines for partition NNNN: ``patient \\t file \\t line \\t json``
.work/problems/fNNNNN-cCCCC.ndjson  its malformed lines and resources with no Patient subject
.work/parts/pNNNN/        ledger of phase 2: partition NNNN assessed, its outputs and counts. Written
                          under a temporary name and renamed, so it is there completely or not at all:
                          a patient is never counted twice (a patient lives in exactly one partition).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class WorkDir:
    root: Path

    @property
    def settings_file(self) -> Path:
        return self.root / "run.json"

    def spilled(self, chunk: str) -> Path:
        return self.root / "spilled" / f"{chunk}.json"

    def piece(self, partition: int, chunk: str) -> Path:
        return self.root / "spill" / f"p{partition:04d}" / f"{chunk}.tsv"

    def pieces(self, partition: int) -> list[Path]:
        return sorted((self.root / "spill" / f"p{partition:04d}").glob("f*.tsv"))

    def stale_pieces(self, chunk: str) -> list[Path]:
        return list((self.root / "spill").glob(f"p*/{chunk}.tsv"))

    def problems(self, chunk: str) -> Path:
        return self.root / "problems" / f"{chunk}.ndjson"

    def part(self, partition: int) -> Path:
        return self.root / "parts" / f"p{partition:04d}"

    def settings(self, wanted: dict[str, Any]) -> dict[str, Any] | None:
        """The recorded settings if a run was started here, else None (and ``wanted`` is recorded)."""
        if self.settings_file.exists():
            recorded: dict[str, Any] = json.loads(self.settings_file.read_text(encoding="utf-8"))
            return recorded
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomically(self.settings_file, json.dumps(wanted, indent=1).encode("utf-8"))
        return None


def write_atomically(path: Path, data: bytes) -> None:
    """Write, fsync, then rename: a reader sees the whole file or none of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("wb") as stream:
        stream.write(data)
        stream.flush()
        os.fsync(stream.fileno())
    tmp.replace(path)
