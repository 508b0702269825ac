"""Where a run reads and writes: OUTDIR apart from the export, and a finished OUTDIR kept.

A run writes ``fhir/ServiceRequest.ndjson``; were OUTDIR inside the export, the next run would read those
proposed orders back as referrals already made, and report no escalation due (observed: 0 patients
instead of 145, exit 0). So OUTDIR and the export (real paths, symbolic links resolved) must not contain
one another, checked before anything is read; nor may any file of the export be, by a link or a
manifest's URL, inside OUTDIR (checked before any of it is read). neckcheck's own folder under OUTDIR
(``.export``, where a downloaded export would go) is not the user's export. A finished OUTDIR is replaced
only with ``--force``; an unfinished one is continued (local engine).
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from pathlib import Path

from service.errors import InvalidInput
from service.screen.inputs import InputFile, list_inputs
from service.screen.outputs import INPUT_PROBLEMS, PER_PATIENT
from service.screen.summary import PICTURE, SUMMARY
from service.screen.workdir import WorkDir

WORK = ".work"
DOWNLOAD = ".export"  # neckcheck's own: where it would put an export it downloads (not the user's INPUT)
FINISHED = (SUMMARY, PICTURE, *PER_PATIENT, INPUT_PROBLEMS)  # what a run leaves in OUTDIR


def check_apart(source: Path, out: Path) -> None:
    """Raises InvalidInput when OUTDIR and the export contain one another: the export's directory, or
    the manifest file (the files a manifest names are checked once it is read: ``check_files_apart``)."""
    if not source.exists():
        raise InvalidInput(f"{source}: no such file or directory")
    target, export = out.resolve(), source.resolve()
    if export.is_relative_to(target / DOWNLOAD):
        return  # neckcheck's own, not the user's export
    if source.is_dir() and target.is_relative_to(export):
        raise InvalidInput(
            f"--out {out} lies inside the export {source}: a later run would read this run's outputs "
            "as input. Choose an OUTDIR outside the export"
        )
    if export.is_relative_to(target):
        raise InvalidInput(
            f"the export {source} lies inside --out {out}: its files would be mixed with the outputs. "
            "Choose an OUTDIR outside the export"
        )


def check_files_apart(files: list[InputFile], out: Path) -> None:
    """Raises InvalidInput for an input file that is, by a link, one of OUTDIR's files."""
    target = out.resolve()
    for file in files:
        if file.path.is_relative_to(target) and not file.path.is_relative_to(target / DOWNLOAD):
            raise InvalidInput(f"{file.name} is {file.path}, inside --out {out}: not read as input")


def inputs_for(source: Path, out: Path, allowed: Sequence[Path], force: bool) -> list[InputFile]:
    """The export's files, once none is inside OUTDIR and OUTDIR is ready: refused when finished (unless
    ``force``). Nothing of the export has been read yet, nor anything of OUTDIR removed, before both
    are checked."""
    files = list_inputs(source, allowed)
    check_files_apart(files, out)
    prepare_out(out, force)
    return files


def prepare_out(out: Path, force: bool) -> None:
    """Refuse a finished OUTDIR (InvalidInput) unless ``force``, which clears what a run left there (the
    outputs and the work folder; nothing else of OUTDIR)."""
    work = WorkDir(out / WORK)
    shutil.rmtree(work.removed, ignore_errors=True)  # a removal cut short
    left = [name for name in FINISHED if (out / name).exists()]
    if force:
        work.remove()
        for name in left:
            (out / name).unlink()
        return
    if left and not work.root.exists():
        raise InvalidInput(
            f"{out} holds the outputs of an earlier run ({', '.join(left[:3])}...): "
            "use --force to replace them, or another --out"
        )
